"""`mintaccel synth` (FPGA synthesis, place and route, report) and `mintaccel sweep` (design-space sweep)."""

from __future__ import annotations

import sys
from pathlib import Path

from mintaccel.cli import report as ui
from mintaccel.core.errors import UserError


def register(sub) -> None:
    from mintaccel.flows.targets import TARGETS

    p = sub.add_parser("synth", help="FPGA synthesis and place-and-route (Yosys, nextpnr): LUTs, Fmax, energy")
    p.set_defaults(func=cmd_synth)
    p.add_argument("--target", default="ice40-up5k", choices=tuple(TARGETS), help="FPGA (default ice40-up5k)")
    p.add_argument("--model", help="integer model file (default: the shipped digits model)")
    p.add_argument("--n-pe", type=int, default=8, metavar="N", help="processing elements (default 8)")
    p.add_argument("--out", metavar="DIR", help="build folder for logs and netlists (default build/synth/<target>)")
    p.add_argument("--freq", type=float, metavar="MHZ", help="clock constraint for nextpnr (default: the target's goal)")
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no Fmax)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-module (unflattened) synthesis")
    p.add_argument("--input", metavar="NPY", help="input spikes for latency and energy (default: the digits test split)")
    p.add_argument("--labels", metavar="NPY", help="labels for --input (accuracy)")
    p.add_argument("--fpga-energy-table", metavar="JSON", help="override entries of the FPGA energy table")
    p.add_argument("--check-baseline", action="store_true",
                   help="compare with flows/baselines.json; exit 1 on a regression beyond the tolerances")
    p.add_argument("--write-baseline", action="store_true",
                   help="record this run as the target's baseline in flows/baselines.json")
    p.add_argument("--json", metavar="PATH", help="also write the report to this JSON file")

    p = sub.add_parser("sweep", help="design-space sweep: N_PE x weight format x membrane bits, Pareto plots (long)")
    p.set_defaults(func=cmd_sweep)
    p.add_argument("--target", default="ice40-up5k", choices=tuple(TARGETS))
    p.add_argument("--n-pe", type=int, nargs="+", default=[4, 8, 16], metavar="N")
    p.add_argument("--schemes", nargs="+", default=["uniform", "pot"], metavar="SCHEME",
                   help="weight schemes: uniform, pot, binary (default uniform pot)")
    p.add_argument("--weight-bits", type=int, nargs="+", default=[2, 4], metavar="B")
    p.add_argument("--membrane-bits", type=int, nargs="+", default=[2, 4], metavar="B")
    p.add_argument("--epochs", type=int, default=8, help="QAT epochs per weight format (default 8)")
    p.add_argument("--hidden", type=int, default=64, help="hidden neurons (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no Fmax, latency in cycles only)")
    p.add_argument("--out", metavar="DIR", default="build/sweep", help="output folder (default build/sweep)")
    p.add_argument("--json", metavar="PATH", help="also write the rows to this JSON file")


# ---------------------------------------------------------------- synth

def _load(args):
    from mintaccel.core.hwconfig import HwConfig, check_fits
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    path = Path(args.model) if args.model else shipped_model_path()
    model = load_model(path)
    if args.n_pe < 1:
        raise UserError(f"--n-pe must be at least 1, not {args.n_pe}")
    cfg = HwConfig.for_model(model, n_pe=args.n_pe)
    check_fits(model, cfg)
    return path, model, cfg


def _inputs(args, model):
    """Input spikes and labels for latency, accuracy and energy (None, None if none fit the model)."""
    from mintaccel.cli.commands import load_spikes
    from mintaccel.sim.reference import check_input
    if args.input:
        spikes = check_input(model, load_spikes(args.input))
        labels = load_spikes(args.labels) if args.labels else None
        if labels is not None and labels.shape != (len(spikes),):
            raise UserError(f"labels must be shaped [{len(spikes)}], got {list(labels.shape)}")
        return spikes, labels, args.input
    from mintaccel.model_export import datasets
    from mintaccel.sim.encoding import rate_encode
    split = datasets.load("digits")
    if model.n_inputs != split.n_inputs or model.encoding.levels != split.levels:
        return None, None, "none (the model does not take digits inputs: give --input)"
    return rate_encode(split.x_test, model.timesteps, split.levels), split.y_test, f"{split.description} (test part)"


def _out_dir(args, target) -> Path:
    out = Path(args.out) if args.out else Path("build") / "synth" / target.name
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the folder ({e.strerror})") from None
    return out


def cmd_synth(args) -> int:
    from mintaccel.flows import report as freport
    from mintaccel.flows.energy import load_fpga_table
    from mintaccel.flows.flow import run_flow, stage_count
    from mintaccel.flows.targets import get_target

    target = get_target(args.target)
    path, model, cfg = _load(args)
    if args.freq is not None and not args.freq > 0:
        raise UserError(f"--freq must be a positive number of MHz, not {args.freq}")
    table = load_fpga_table(args.fpga_energy_table) if args.fpga_energy_table else None
    spikes, labels, data = _inputs(args, model)
    if args.write_baseline and (args.model or args.n_pe != 8 or args.no_pnr or args.freq):
        raise UserError("--write-baseline records the default build only (shipped model, n_pe 8, with P&R, default clock)")
    out = _out_dir(args, target)
    ui.err_console.print(f"synthesizing {path.name} for {target.device}; logs in {out}/")
    total = stage_count(not args.no_breakdown, not args.no_pnr, spikes is not None)
    with ui.progress(f"synth {target.name}", total) as advance:
        rep = run_flow(cfg, model, target, out, breakdown=not args.no_breakdown, pnr=not args.no_pnr,
                       spikes=spikes, labels=labels, freq_mhz=args.freq, energy_table=table, advance=advance,
                       model_path=str(path))
    rep["inputs"] = data
    from mintaccel.core.files import write_json
    freport.print_report(rep, target)
    status = _baseline_check(rep) if args.check_baseline else 0
    write_json(out / "report.json", rep)
    if args.write_baseline:
        baselines = freport.load_baselines()
        baselines[target.name] = freport.baseline_entry(rep)
        write_json(freport.BASELINES, baselines)
        ui.err_console.print(f"baseline for {target.name} written to {freport.BASELINES}")
    ui.maybe_json(args.json, rep)
    return status


def _baseline_check(rep: dict) -> int:
    from mintaccel.flows import report as freport
    result = freport.compare_baseline(rep)
    rep["baseline"] = {"status": result["status"], "rows": [list(r) for r in result["rows"]]}
    if result["status"] in ("no baseline", "other config"):
        ui.err_console.print(f"baseline check: {result['status']} for this build; nothing compared")
        return 0
    rows = [(m, f"{ref:g}", f"{now:g}", "-" if lim is None else f"{lim:g}", "ok" if ok else "REGRESSION")
            for m, ref, now, lim, ok in result["rows"]]
    ui.table(f"baseline check ({freport.BASELINES.name})", rows, ("metric", "baseline", "now", "limit", ""))
    if result["status"] != "ok":
        bad = ", ".join(r[0] for r in result["rows"] if not r[4])
        print(f"mintaccel: baseline regression: {bad}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- sweep

def cmd_sweep(args) -> int:
    from mintaccel.flows import sweep
    from mintaccel.flows.targets import get_target

    target = get_target(args.target)
    for n in args.n_pe:
        if n < 1:
            raise UserError(f"--n-pe values must be at least 1, not {n}")
    if args.epochs < 1 or args.hidden < 1:
        raise UserError("--epochs and --hidden must be at least 1")
    points, skipped = sweep.grid(args.n_pe, args.schemes, args.weight_bits, args.membrane_bits)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for note in skipped:
        ui.err_console.print(f"skipped: {note}")
    ui.err_console.print(f"sweep of {len(points)} points on {target.device}; results in {out}/")
    with ui.progress("sweep", len(points)) as advance:
        rows = sweep.run_sweep(points, target, out, epochs=args.epochs, hidden=args.hidden, seed=args.seed,
                               pnr=not args.no_pnr, advance=advance)
    marks = sweep.pareto(rows)
    for r, m in zip(rows, marks):
        r["pareto"] = m
    sweep.plot(rows, out / "pareto.png", target.name)
    from mintaccel.core.files import write_json
    write_json(out / "sweep.json", {"target": target.name, "rows": rows, "skipped": skipped})
    table = [(r["label"], f"{100 * r['accuracy']:.1f}%" if r["accuracy"] is not None else "-", r["luts"], r["bram"],
              r["dsp"], _g(r["fmax_mhz"]), _g(r["cycles"]), _g(r["latency_us"]), _g(r["energy_nj"]),
              "*" if r["pareto"] else "") for r in rows]
    ui.table(f"mintaccel sweep on {target.name} (energy: estimate; * = Pareto-optimal)", table,
             ("point", "accuracy", "LUTs", "BRAM", "DSP", "Fmax MHz", "cycles", "latency us", "energy nJ", "Pareto"))
    ui.console.print(f"CSV: {out / 'sweep.csv'}   plots: {out / 'pareto.png'}")
    ui.maybe_json(args.json, {"target": target.name, "rows": rows, "skipped": skipped})
    return 0


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"

