"""`mintaccel synth` (FPGA synthesis, place and route, report) and `mintaccel sweep` (design-space sweep)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from mintaccel.cli import report as ui
from mintaccel.core.errors import UserError


def _hardware_options(p) -> None:
    """The build options synth and sweep share."""
    from mintaccel.cli import integer
    from mintaccel.flows.fit import WEIGHT_MEMORY_CHOICES
    p.add_argument("--weight-memory", default="auto", choices=WEIGHT_MEMORY_CHOICES,
                   help="where the weights go: auto (default: block RAM when the build fits, else the iCE40 UP5K's "
                        "SPRAM, whose weights the host loads at run time), bram, spram (iCE40 UP5K only)")
    p.add_argument("--threshold-units", type=integer(0, 64), default=0, metavar="U",
                   help="threshold units shared by the lanes, a divisor of n_pe (0: the default build's)")


def register(sub) -> None:
    from mintaccel.cli import integer, job_options, output_option
    from mintaccel.flows.nextpnr import PNR_SEED, SEED_MAX
    from mintaccel.flows.targets import TARGETS

    p = sub.add_parser("synth", help="FPGA synthesis and place-and-route (Yosys, nextpnr): LUTs, Fmax, energy")
    p.set_defaults(func=cmd_synth)
    p.add_argument("--target", default="ice40-up5k", choices=tuple(TARGETS), help="FPGA (default ice40-up5k)")
    p.add_argument("--model", help="integer model file (default: the shipped digits model)")
    p.add_argument("--n-pe", type=integer(1, 64), default=8, metavar="N", help="processing elements, 1..64 (default 8)")
    _hardware_options(p)
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=PNR_SEED,
                   help=f"nextpnr placement seed (default {PNR_SEED}, the flow's fixed seed; the report records it)")
    output_option(p, "--out", folder=True, metavar="DIR",
                  help="build folder for logs and netlists, replaced whole (default build/synth/<target>)")
    p.add_argument("--freq", type=float, metavar="MHZ", help="clock constraint for nextpnr (default: the target's goal)")
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no Fmax)")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-module (unflattened) synthesis")
    p.add_argument("--input", metavar="NPY", help="input spikes for latency and energy (default: the digits test split)")
    p.add_argument("--labels", metavar="NPY", help="labels for --input (accuracy)")
    p.add_argument("--fpga-energy-table", metavar="JSON", help="override entries of the FPGA energy table")
    p.add_argument("--check-baseline", nargs="?", const="", metavar="PATH",
                   help="compare with the committed baselines (or the baselines file PATH); exit 1 on a regression "
                        "beyond the tolerances. A build without a baseline is refused before synthesis")
    output_option(p, "--write-baseline", metavar="PATH",
                  help="record this run as the target's baseline in the baselines file PATH (its other entries "
                       "kept; a new file starts from the committed one), e.g. flows/baselines.json in a checkout")
    output_option(p, "--json", metavar="PATH", help="also write the report to this JSON file")

    p = sub.add_parser("sweep", help="design-space sweep: N_PE x weight format x membrane bits, Pareto plots (long)")
    p.set_defaults(func=cmd_sweep)
    p.add_argument("--target", default="ice40-up5k", choices=tuple(TARGETS))
    p.add_argument("--n-pe", type=integer(1, 64), nargs="+", default=[4, 8, 16], metavar="N",
                   help="processing elements, 1..64 each (default 4 8 16); a point the device cannot hold is skipped")
    _hardware_options(p)
    p.add_argument("--seeds", type=integer(0, SEED_MAX), nargs="+", default=[PNR_SEED], metavar="S",
                   help=f"place and route every point with each seed: Fmax per seed, min and median; latency and "
                        f"energy at the first seed's Fmax (default {PNR_SEED})")
    p.add_argument("--schemes", nargs="+", default=["uniform", "pot"], metavar="SCHEME",
                   help="weight schemes: uniform, pot, binary (default uniform pot)")
    p.add_argument("--weight-bits", type=int, nargs="+", default=[2, 4], metavar="B")
    p.add_argument("--membrane-bits", type=int, nargs="+", default=[2, 4], metavar="B")
    p.add_argument("--epochs", type=int, default=8, help="QAT epochs per weight format (default 8)")
    p.add_argument("--hidden", type=int, default=64, help="hidden neurons (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pnr", action="store_true", help="skip place and route (no Fmax, latency in cycles only)")
    job_options(p, "trainings and points")
    output_option(p, "--out", folder=True, default="build/sweep",
                  help="output folder; a rerun reuses its finished trainings and points (jobs/) (default build/sweep)")
    output_option(p, "--json", metavar="PATH", help="also write the rows to this JSON file")


# ---------------------------------------------------------------- synth

def _load(args):
    from mintaccel.core.hwconfig import HwConfig, check_fits
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    path = Path(args.model) if args.model else shipped_model_path()
    model = load_model(path)
    cfg = HwConfig.for_model(model, n_pe=args.n_pe, **threshold_units(args))
    check_fits(model, cfg)
    return path, model, cfg


def threshold_units(args) -> dict:
    """HwConfig.for_model's override for --threshold-units (none for 0: the default build's units)."""
    n_pes = args.n_pe if isinstance(args.n_pe, list) else [args.n_pe]
    bad = [n for n in n_pes if args.threshold_units and n % args.threshold_units]
    if bad:
        raise UserError(f"--threshold-units {args.threshold_units} must divide --n-pe "
                        f"({', '.join(map(str, bad))} is not a multiple of it)")
    return {"threshold_units": args.threshold_units} if args.threshold_units else {}


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
    """The build folder; the default one is checked here, `--out` by the CLI before the command runs."""
    from mintaccel.core.files import check_output_folder
    if args.out:
        return Path(args.out)
    out = Path("build") / "synth" / target.name
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make the build folder {out}: {e.strerror}") from None
    check_output_folder(out, "build folder")
    return out


def _baselines(args, target, cfg) -> dict | None:
    """The baselines --check-baseline compares with, refused now if they hold nothing for this build."""
    from mintaccel.flows import report as freport
    if args.check_baseline is None:
        return None
    baselines = freport.load_baselines(args.check_baseline or None)
    why = freport.baseline_mismatch(baselines, target.name, cfg)
    if why:
        where = args.check_baseline or f"{freport.BASELINES_NAME} (package data)"
        raise UserError(f"--check-baseline: {why} in {where}: nothing to compare with")
    return baselines


def cmd_synth(args) -> int:
    from mintaccel.core.files import write_json
    from mintaccel.flows import report as freport
    from mintaccel.flows.energy import load_fpga_table
    from mintaccel.flows.fit import check_device, choose_weight_memory
    from mintaccel.flows.nextpnr import PNR_SEED
    from mintaccel.flows.flow import run_flow, stage_count
    from mintaccel.flows.targets import get_target

    # every check first: a bad option costs seconds, not the minutes of synthesis
    target = get_target(args.target)
    path, model, cfg = _load(args)
    if args.freq is not None and not (math.isfinite(args.freq) and args.freq > 0):
        raise UserError(f"--freq must be a positive number of MHz, not {args.freq}")
    cfg = choose_weight_memory(cfg, target, args.weight_memory)
    check_device(cfg, target)
    table = load_fpga_table(args.fpga_energy_table) if args.fpga_energy_table else None
    spikes, labels, data = _inputs(args, model)
    if args.write_baseline and (args.model or args.n_pe != 8 or args.no_pnr or args.freq or args.threshold_units
                                or args.weight_memory != "auto" or args.seed != PNR_SEED):
        raise UserError("--write-baseline records the default build only (shipped model, n_pe 8, default threshold "
                        f"units and weight memory, with P&R, default clock and seed {PNR_SEED})")
    baselines = _baselines(args, target, cfg)
    recorded = None
    if args.write_baseline:  # the file it updates: PATH's entries, or the committed ones for a new file
        recorded = freport.load_baselines(args.write_baseline if Path(args.write_baseline).exists() else None)
    out = _out_dir(args, target)

    ui.err_console.print(f"synthesizing {path.name} for {target.device}; logs in {out}/")
    total = stage_count(not args.no_breakdown, not args.no_pnr, spikes is not None)
    with ui.progress(f"synth {target.name}", total) as advance:
        rep = run_flow(cfg, model, target, out, breakdown=not args.no_breakdown, pnr=not args.no_pnr,
                       spikes=spikes, labels=labels, freq_mhz=args.freq, energy_table=table, advance=advance,
                       model_path=str(path), seeds=(args.seed,))
    rep["inputs"] = data
    rep["weight_memory"]["choice"] = args.weight_memory
    print_report(rep, target)
    status = _baseline_check(rep, baselines, args.check_baseline) if baselines is not None else 0
    write_json(out / "report.json", rep)
    if args.write_baseline:
        recorded[target.name] = freport.baseline_entry(rep)
        write_json(args.write_baseline, recorded)
        ui.err_console.print(f"baseline for {target.name} written to {args.write_baseline}")
    ui.maybe_json(args.json, rep)
    return status


def print_report(report: dict, target) -> None:
    """The synthesis report's tables (rows from flows.report) on the console."""
    from rich.table import Table

    from mintaccel.flows import report as freport
    ui.table(f"mintaccel synth: {report['target']}", freport.summary_rows(report, target))
    wm = report.get("weight_memory") or {}
    t = Table(title="memories: where synthesis put them", title_justify="left",
              caption=f"weights in SPRAM: {wm['note']}" if wm.get("kind") == "spram" else None, caption_justify="left")
    for col in ("memory", "depth x width", "read", "mapped to", "primitives", "modes"):
        t.add_column(col)
    for row in freport.memory_rows(report):
        t.add_row(*(str(v) for v in row))
    ui.console.print(t)
    if report.get("modules"):
        t = Table(title="per module (synthesized without flattening: no cross-boundary optimisation)",
                  title_justify="left")
        for col in ("module", "LUTs", "FFs", "carry", "BRAM+SPRAM", "LUT RAM", "DSP"):
            t.add_column(col, justify="left" if col == "module" else "right")
        for row in freport.module_rows(report):
            t.add_row(*(str(v) for v in row))
        ui.console.print(t)


def _baseline_check(rep: dict, baselines: dict, source: str) -> int:
    from mintaccel.flows import report as freport
    result = freport.compare_baseline(rep, baselines)
    rep["baseline"] = {"status": result["status"], "source": source or f"{freport.BASELINES_NAME} (package data)",
                       "rows": [list(r) for r in result["rows"]]}
    rows = [(m, f"{ref:g}", f"{now:g}", "-" if lim is None else f"{lim:g}", "ok" if ok else "REGRESSION")
            for m, ref, now, lim, ok in result["rows"]]
    ui.table(f"baseline check ({rep['baseline']['source']})", rows, ("metric", "baseline", "now", "limit", ""))
    if result["status"] != "ok":
        bad = ", ".join(r[0] for r in result["rows"] if not r[4]) or result["status"]
        print(f"mintaccel: baseline regression: {bad}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- sweep

def cmd_sweep(args) -> int:
    from mintaccel.core.jobs import check_address
    from mintaccel.flows import sweep
    from mintaccel.flows.fit import check_weight_memory
    from mintaccel.flows.nextpnr import PNR_SEED
    from mintaccel.flows.targets import get_target

    target = get_target(args.target)
    if args.epochs < 1 or args.hidden < 1:
        raise UserError("--epochs and --hidden must be at least 1")
    check_weight_memory(args.weight_memory, target)
    units = threshold_units(args)
    if len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds: each seed once, not {' '.join(map(str, args.seeds))}")
    if args.no_pnr and args.seeds != [PNR_SEED]:
        raise UserError("--seeds places and routes every point: it cannot go with --no-pnr")
    points, skipped = sweep.grid(args.n_pe, args.schemes, args.weight_bits, args.membrane_bits)
    address = check_address(args.address)
    out = sweep.output_folder(args.out)  # --out and --json were checked before the command ran
    for note in skipped:
        ui.err_console.print(f"skipped: {note}")
    formats = len({(p.weights, p.membrane_bits) for p in points})
    ui.err_console.print(f"sweep of {len(points)} points ({formats} trainings) on {target.device}; results in {out}/")
    with ui.progress("sweep jobs", formats + len(points)) as advance:
        rows, reports = sweep.run_sweep(
            points, target, out, epochs=args.epochs, hidden=args.hidden, seed=args.seed, pnr=not args.no_pnr,
            weight_memory=args.weight_memory, seeds=tuple(args.seeds), hw=units, workers=args.jobs,
            address=address, fresh=args.fresh, progress=ui.job_progress(advance, _point_info),
            on_skip=lambda note: (skipped.append(note), ui.err_console.print(f"skipped: {note}")),
            say=ui.err_console.print)
    for r in reports:
        ui.err_console.print(ui.jobs_line(r.summary()))
    ui.job_failures(reports)
    if not rows:
        failed = sum(len(r.failures) for r in reports)
        if failed:
            raise UserError(f"every point of the sweep failed or was skipped ({failed} jobs failed: see their logs)")
        raise UserError(f"no point of the sweep fits the {target.device}: " + "; ".join(skipped))
    marks = sweep.pareto(rows)
    for r, m in zip(rows, marks):
        r["pareto"] = m
    sweep.plot(rows, out / "pareto.png", target.name)
    from mintaccel.core.files import write_json
    result = {"target": target.name, "seeds": args.seeds, "weight_memory": args.weight_memory,
              "threshold_units": args.threshold_units, "rows": rows, "skipped": skipped,
              "jobs": {"training": reports[0].summary(), "points": reports[1].summary()}}
    write_json(out / "sweep.json", result)
    many = len(args.seeds) > 1
    table = [(r["label"], f"{100 * r['accuracy']:.1f}%" if r["accuracy"] is not None else "-", r["luts"], r["bram"],
              r["spram"], r["dsp"], _g(r["fmax_mhz"]), *((_g(r["fmax_min_mhz"]), _g(r["fmax_median_mhz"])) if many else ()),
              _g(r["cycles"]), _g(r["latency_us"]), _g(r["energy_nj"]), "*" if r["pareto"] else "") for r in rows]
    fmax = (f"Fmax MHz (seed {args.seeds[0]})", "min", "median") if many else ("Fmax MHz",)
    ui.table(f"mintaccel sweep on {target.name} (energy: estimate; * = Pareto-optimal in LUTs, latency, energy, "
             "accuracy)", table,
             ("point", "accuracy", "LUTs", "BRAM", "SPRAM", "DSP", *fmax, "cycles", "latency us", "energy nJ", "Pareto"))
    ui.console.print(f"CSV: {out / 'sweep.csv'}   JSON: {out / 'sweep.json'}   plots: {out / 'pareto.png'}")
    ui.maybe_json(args.json, result)
    return 1 if any(r.failures for r in reports) else 0


def _point_info(outcome) -> str | None:
    """The progress line of a sweep job: a point's LUTs, or why it was skipped."""
    r = outcome.result
    if r is None or outcome.cached:
        return None
    if "row" in r:
        return f"{outcome.job.label}: {r['row']['luts']} LUTs"
    if "skipped" in r:
        return f"{outcome.job.label}: skipped"
    return None


def _g(v) -> str:
    return "-" if v is None else f"{v:.4g}"

