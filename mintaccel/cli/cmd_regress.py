"""`mintaccel regress`: the long cocotb regression of the generated Verilog against the reference model.

Random networks (the default; every weight and membrane format, both resets, all leak forms, biases,
saturation corners, back-pressure on both spike streams) are loaded one after another into one generic
accelerator build through its load stream. With `--model M --input X`, the user's own model is built as
`mintaccel generate --model M` writes it (memories preloaded) and runs the user's input spikes. Either
way every spike and membrane of every layer and step, every output word and the cycles of every run
are checked against the reference model and the cycle simulator (docs/verification.md). The benches
ship in the package (mintaccel/verify).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from mintaccel.cli import report
from mintaccel.core.errors import UserError
from mintaccel.core.files import check_output_file

SIMULATORS = ("verilator", "icarus")
DEFAULT_NETWORKS = 200


def _harness():
    from mintaccel.verify import harness, regress
    return harness, regress


def _check_usage(args) -> None:
    """Combinations and ranges, before anything is built."""
    if args.model is not None:
        if args.input is None:
            raise UserError("regress --model needs --input X.npy (input spikes [batch, T, inputs])")
        given = [o for o, v in (("--networks", args.networks), ("--seed", args.seed), ("--conv", args.conv or None),
                                                ("--ecp5-rtl", args.ecp5_rtl or None))
                 if v is not None]
        if given:
            raise UserError(f"{' and '.join(given)} {'choose' if len(given) > 1 else 'chooses'} random "
                            "networks: not with --model")
    else:
        given = [o for o, v in (("--input", args.input), ("--labels", args.labels)) if v is not None]
        if given:
            raise UserError(f"{' and '.join(given)} {'need' if len(given) > 1 else 'needs'} --model")
        if args.networks is not None and args.networks < 1:
            raise UserError("--networks must be at least 1")
    if args.chunk < 1:
        raise UserError("--chunk must be at least 1")
    check_output_file(args.json, "--json file")
    from mintaccel.core.jobs import check_address
    args.address = check_address(args.address)  # a cluster that does not answer: refused before any build


def _simulators(args, harness) -> tuple[str, ...]:
    sims = SIMULATORS if args.sim == "all" else (args.sim,)
    for sim in sims:
        reason = harness.unavailable(sim)
        if reason:
            raise UserError(f"simulator {sim}: {reason}")
    return sims


def cmd_regress(args) -> int:
    _check_usage(args)
    harness, regress = _harness()
    sims = _simulators(args, harness)
    if args.model is not None:
        return _regress_model(args, sims)
    networks = DEFAULT_NETWORKS if args.networks is None else args.networks
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    regress.check_seed(seed, networks)
    if args.waves:
        os.environ[harness.WAVES_ENV] = "1"
    report.err_console.print(f"seed {seed}: network i is seed {seed}+i; rerun one with "
                             f"`mintaccel regress --seed <seed> --networks 1`")
    results = {}
    with _session(args) as jobs_kw:
        for sim in sims:
            with report.progress(f"{sim}: networks", networks) as advance:
                results[sim] = regress.regress(sim, networks, seed, chunk=args.chunk,
                                               run_name=f"regress-{'conv-' if args.conv else ''}"
                                                        f"{'ecp5-' if args.ecp5_rtl else ''}{seed}",
                                               progress=_counter(advance), conv=args.conv, ecp5=args.ecp5_rtl,
                                               **jobs_kw)
            results[sim]["jobs"]["startup_seconds"] = round(jobs_kw["session"].startup_seconds, 2)  # the session's
            report.err_console.print(report.jobs_line(results[sim]["jobs"], "chunks"))
    _print(results, "mintaccel regress: generated Verilog vs reference model and cycle simulator")
    for sim, r in results.items():
        cov = [(f, n) for f, n in r["coverage"].items()]
        report.table(f"{sim}: coverage (networks exercising each feature)", cov, ("feature", "networks"))
    _print_mismatches(results, "failed_seeds", "failed network seeds")
    report.maybe_json(args.json, {"seed": seed, "results": results})
    return 0 if all(r["mismatches"] == 0 for r in results.values()) else 1


def _counter(advance):
    """A progress callback for regress.regress*: advance by a chunk, show the mismatches so far."""
    mismatches = [0]

    def progress(count, r):
        mismatches[0] += int(r["summary"].get("mismatches", 0)) or int(not r["passed"])
        advance(count, info=f"{mismatches[0]} mismatches")

    return progress


@contextlib.contextmanager
def _session(args):
    """One Ray instance (or the cluster of --address) for every simulator's chunks; yields the
    run_jobs options."""
    from mintaccel.core.jobs import session
    with session(args.jobs, args.address, report.err_console.print) as ray_session:
        yield {"session": ray_session, "fresh": args.fresh}


def _labels(path: str, batch: int, n_outputs: int):
    """Labels .npy: integers [batch] in 0..n_outputs-1."""
    from mintaccel.cli.commands import load_spikes
    from mintaccel.sim.cycle.summary import check_labels
    y = check_labels(load_spikes(path), batch)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_outputs):
        raise UserError(f"{path}: labels must be in 0..{n_outputs - 1} (the model's outputs), "
                        f"got {int(y.min())}..{int(y.max())}")
    return y


def _regress_model(args, sims) -> int:
    import numpy as np
    from mintaccel.cli.commands import load_spikes
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.reference import check_input
    harness, regress = _harness()
    model = load_model(args.model)
    cfg = harness.model_config(model)  # exit 2, one line, if the model does not fit (or is a conv model)
    x = check_input(model, load_spikes(args.input))
    if len(x) == 0:
        raise UserError(f"{args.input}: no samples")
    labels = _labels(args.labels, len(x), model.n_outputs) if args.labels else None
    if args.waves:
        os.environ[harness.WAVES_ENV] = "1"
    report.err_console.print(f"{args.model}: generating its Verilog (HwConfig.for_model, n_pe {cfg.n_pe}, "
                             f"memories preloaded); {len(x)} samples in runs of {args.chunk}")
    verilog = harness.accelerator_verilog(cfg, model)
    # run folders named after the inputs: a rerun replaces its own, other inputs keep theirs
    run_name = "regress-" + hashlib.sha256(x.tobytes()).hexdigest()[:10]
    results = {}
    with _session(args) as jobs_kw:
        for sim in sims:
            with report.progress(f"{sim}: samples", len(x)) as advance:
                r = regress.regress_model(sim, Path(args.model), cfg, verilog, x, chunk=args.chunk,
                                          run_name=run_name, progress=_counter(advance), **jobs_kw)
            r["jobs"]["startup_seconds"] = round(jobs_kw["session"].startup_seconds, 2)  # the session's
            report.err_console.print(report.jobs_line(r["jobs"], "chunks"))
            results[sim] = r
    for sim, r in results.items():
        if labels is not None and r["predictions"] is not None:
            r["accuracy"] = float((np.asarray(r["predictions"]) == labels).mean())
    _print(results, f"mintaccel regress --model {args.model}: generated Verilog vs reference model and "
                    "cycle simulator", accuracy=labels is not None)
    sizes = " -> ".join(str(n) for n in [model.n_inputs] + [l.n_out for l in model.layers])
    rows = [("model", f"{args.model}: {sizes}, T = {model.timesteps}"),
            ("input", f"{args.input}: {len(x)} samples" + (f"; labels {args.labels}" if args.labels else "")),
            ("hardware", f"HwConfig.for_model: n_pe {cfg.n_pe}, {cfg.accumulator_bits}-bit accumulators, "
                         "memories preloaded (the Verilog of `mintaccel generate --model`)")]
    rows += [(f"{sim} build", r["build"]) for sim, r in results.items()]
    if labels is not None:
        rows.append(("accuracy", "from the output spikes the RTL produced (equal to the reference model's "
                                 "when there are 0 mismatches)"))
    report.table("model regression", rows)
    _print_mismatches(results, "failed_samples", "failed samples (numbered as in --input)")
    report.maybe_json(args.json, {"model": args.model, "input": args.input, "labels": args.labels,
                                  "config": harness.config_dict(cfg), "results": results})
    return 0 if all(r["mismatches"] == 0 for r in results.values()) else 1


def _print(results: dict, title: str, accuracy: bool = False) -> None:
    rows = []
    for sim, r in results.items():
        row = (sim, r["networks"], r["samples"], f"{r['run_cycles']:,}", f"{r['stall_cycles']:,}",
               f"{r['clock_cycles']:,}", f"{r['checks']:,}", r["mismatches"], f"{r['wall_seconds']:.1f}",
               f"{r['cycles_per_second']:,}")
        if accuracy:
            row += (report.percent(r["accuracy"]) if r.get("accuracy") is not None else "n/a (a run did not finish)",)
        rows.append(row)
    report.table(title, rows,
                 ("simulator", "networks run", "samples", "cycles simulated (runs)", "stall cycles",
                  "clock cycles (with loads)", "checks", "mismatches", "wall s", "cycles/s")
                 + (("accuracy",) if accuracy else ()))


def _print_mismatches(results: dict, failed_key: str, failed_what: str) -> None:
    for sim, r in results.items():
        if r["mismatches"]:
            lines = [(d,) for d in r["mismatch_details"][:20]] + [(e[:400],) for e in r["bench_errors"][:3]]
            report.table(f"{sim}: first mismatches ({failed_what} {r[failed_key][:10]})", lines, ("",))


def register(sub) -> None:
    from mintaccel.cli import job_options
    p = sub.add_parser("regress", help="cocotb regression of the generated Verilog (Verilator / Icarus): "
                                       "random networks, or your model on your inputs")
    p.add_argument("--sim", choices=SIMULATORS + ("all",), default="verilator", help="simulator (default verilator)")
    p.add_argument("--model", metavar="MODEL", help="regress this integer model (its generated Verilog, "
                                                    "memories preloaded) on --input instead of random networks")
    p.add_argument("--input", metavar="X.npy", help="with --model: input spikes, uint8 0/1 [batch, T, inputs]")
    p.add_argument("--labels", metavar="Y.npy", help="with --model: integer labels [batch], to report accuracy")
    p.add_argument("--networks", type=int, help=f"random networks per simulator (default {DEFAULT_NETWORKS})")
    p.add_argument("--conv", action="store_true",
                   help="random conv networks (conv2d, max and sum pools, flatten, dense heads) on the generic "
                        "conv build instead of dense ones")
    p.add_argument("--ecp5-rtl", action="store_true",
                   help="the generic build with the ECP5 build's RTL (one-port event memory read a cycle "
                        "ahead, registered fire, reset-less weight codes: Accelerator(bram_output_registers=True))")
    p.add_argument("--seed", type=int, help="first network's seed, 0..2^32-1 (default: a fresh one, printed)")
    job_options(p, "simulations (chunks)")
    p.add_argument("--chunk", type=int, default=50,
                   help="networks (with --model: samples) per simulation (default 50)")
    p.add_argument("--waves", action="store_true",
                   help="waveforms into each run's folder (VCD from Verilator, FST from Icarus)")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_regress)
