"""`mintaccel regress`: the long cocotb regression of the generated Verilog against the reference model.

Random networks (every weight and membrane format, both resets, all leak forms, biases, saturation
corners, back-pressure on both spike streams) are loaded one after another into one generic accelerator
build through its load stream; every spike and membrane of every layer and step, every output word and
the cycles of every run are checked (docs/verification.md). The benches ship in the package
(mintaccel/verify).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from mintaccel.cli import report
from mintaccel.core.errors import UserError

SIMULATORS = ("verilator", "icarus")


def _harness():
    from mintaccel.verify import harness, regress
    return harness, regress


def cmd_regress(args) -> int:
    if args.networks < 1:
        raise UserError("--networks must be at least 1")
    if args.jobs < 1 or args.chunk < 1:
        raise UserError("--jobs and --chunk must be at least 1")
    harness, regress = _harness()
    sims = SIMULATORS if args.sim == "all" else (args.sim,)
    for sim in sims:
        reason = harness.unavailable(sim)
        if reason:
            raise UserError(f"simulator {sim}: {reason}")
    if args.waves:
        os.environ[harness.WAVES_ENV] = "1"
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    report.err_console.print(f"seed {seed}: network i is seed {seed}+i; rerun one with "
                             f"`mintaccel regress --seed <seed> --networks 1`")
    results = {}
    for sim in sims:
        with report.progress(f"{sim}: networks", args.networks) as advance:
            mismatches = [0]

            def progress(count, r, advance=advance, mismatches=mismatches):
                mismatches[0] += int(r.summary.get("mismatches", 0)) or int(not r.passed)
                advance(count, info=f"{mismatches[0]} mismatches")

            results[sim] = regress.regress(sim, args.networks, seed, jobs=args.jobs, chunk=args.chunk,
                                           run_name=f"regress-{seed}", progress=progress)
    _print(results)
    report.maybe_json(args.json, {"seed": seed, "results": results})
    return 0 if all(r["mismatches"] == 0 for r in results.values()) else 1


def _print(results: dict) -> None:
    rows = []
    for sim, r in results.items():
        rows.append((sim, r["networks"], r["samples"], f"{r['run_cycles']:,}", f"{r['stall_cycles']:,}",
                     f"{r['clock_cycles']:,}", f"{r['checks']:,}", r["mismatches"], f"{r['wall_seconds']:.1f}",
                     f"{r['cycles_per_second']:,}"))
    report.table("mintaccel regress: generated Verilog vs reference model and cycle simulator", rows,
                 ("simulator", "networks run", "samples", "cycles simulated (runs)", "stall cycles",
                  "clock cycles (with loads)", "checks", "mismatches", "wall s", "cycles/s"))
    for sim, r in results.items():
        cov = [(f, n) for f, n in r["coverage"].items()]
        report.table(f"{sim}: coverage (networks exercising each feature)", cov, ("feature", "networks"))
        if r["mismatches"]:
            lines = [(d,) for d in r["mismatch_details"][:20]] + [(e[:400],) for e in r["bench_errors"][:3]]
            report.table(f"{sim}: first mismatches (failed network seeds {r['failed_seeds'][:10]})", lines, ("",))


def register(sub) -> None:
    p = sub.add_parser("regress", help="long cocotb regression of the generated Verilog (Verilator / Icarus)")
    p.add_argument("--sim", choices=SIMULATORS + ("all",), default="verilator", help="simulator (default verilator)")
    p.add_argument("--networks", type=int, default=200, help="random networks per simulator (default 200)")
    p.add_argument("--seed", type=int, help="first network's seed (default: a fresh one, printed)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="simulations in parallel (default: min(2, CPUs))")
    p.add_argument("--chunk", type=int, default=50, help="networks per simulation (default 50)")
    p.add_argument("--waves", action="store_true",
                   help="waveforms into each run's folder (VCD from Verilator, FST from Icarus)")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_regress)
