"""`mintaccel search`: the per-layer precision search (flows/search.py) on Ray Tune: the Pareto set of
accuracy, energy per inference and (with --luts) LUTs, as a table, CSV, JSON and a plot."""

from __future__ import annotations

from pathlib import Path

from mintaccel.cli import report as ui
from mintaccel.core.errors import UserError


def register(sub) -> None:
    from mintaccel.cli import integer, job_options, output_option, training_options
    from mintaccel.flows.search import FORMATS, MEMBRANES
    from mintaccel.flows.targets import TARGETS

    p = sub.add_parser("search", help="per-layer precision search (Ray Tune, Optuna TPE): Pareto set of accuracy, "
                                      "energy and LUTs (long)")
    p.set_defaults(func=cmd_search)
    training_options(p)
    p.add_argument("--trials", type=integer(1, 10000), default=40,
                   help="trials in all, earlier finished ones of the same search included (default 40)")
    p.add_argument("--formats", nargs="+", default=list(FORMATS), metavar="FMT",
                   help=f"weight formats a layer may take (default all: {' '.join(FORMATS)})")
    p.add_argument("--membranes", nargs="+", default=list(MEMBRANES), metavar="BITS",
                   help=f"membrane bits a layer may take (default {' '.join(MEMBRANES)})")
    p.add_argument("--n-pe", type=integer(1, 64), default=8, metavar="N",
                   help="processing elements of the build the energy (and LUTs) are measured on (default 8)")
    p.add_argument("--luts", action="store_true", help="also synthesize every trial for LUTs (Yosys; about 1 min each)")
    p.add_argument("--target", default="ice40-up5k", choices=tuple(TARGETS), help="FPGA for --luts (default ice40-up5k)")
    p.add_argument("--search-seed", type=integer(0, 2**31 - 1), default=0, help="the sampler's seed (default 0)")
    job_options(p, "trials")
    output_option(p, "--out", folder=True, default="build/search",
                  help="output folder: jobs/ (one folder per trial), pareto.csv, pareto.json, pareto.png; a rerun "
                       "reuses its finished trials (default build/search)")
    output_option(p, "--json", metavar="PATH", help="also write the Pareto set and every trial to this JSON file")


def cmd_search(args) -> int:
    from mintaccel.cli.commands import train_config
    from mintaccel.core.files import MARKER, write_json
    from mintaccel.core.jobs import check_address
    from mintaccel.flows import search
    from mintaccel.flows.targets import get_target
    from mintaccel.model_export import datasets

    args.weights, args.membrane = ["uniform:2"], ["2"]  # each trial sets its own
    base = train_config(args)
    cfg = search.SearchConfig(trials=args.trials, formats=tuple(args.formats), membranes=tuple(args.membranes),
                              n_pe=args.n_pe, luts=args.luts, target=get_target(args.target).name,
                              seed=args.search_seed)
    search.check(cfg, base)
    address = check_address(args.address)
    datasets.load(base.dataset, base.data_dir)  # bad data fails before Ray starts
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a mintaccel search folder: a rerun reuses the finished trials in jobs/\n")
    net = f"--arch {base.arch}" if base.arch else f"MLP {'-'.join(map(str, base.hidden))}"
    ui.err_console.print(f"search: {args.trials} trials on {base.dataset} ({net}, {base.n_neuron_layers} neuron layers, "
                         f"{base.epochs} epochs each), sampler seed {args.search_seed}, training seed {base.seed}; "
                         f"results in {out}/")
    with ui.progress("search trials", args.trials) as advance:
        result = search.run_search(base, cfg, out, workers=args.jobs, address=address, fresh=args.fresh,
                                   progress=lambda text: advance(1, info=text), say=ui.err_console.print)
    rows = result["rows"]
    if not rows:
        raise UserError("no trial finished: " + "; ".join(result["failed"][:3]))
    objectives = cfg.objectives
    search.write_csv(rows, out / "pareto.csv")
    names = {"accuracy": "accuracy", "energy_nj": "energy", "luts": "LUTs"}
    search.plot(rows, out / "pareto.png", f"mintaccel search on {base.dataset} ({net}): Pareto-optimal (ringed) in "
                                          + ", ".join(names[k] for k in objectives), objectives)
    summary = {"base": base.to_json(), "search": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in cfg.__dict__.items()},
               "objectives": objectives, "float_twin": result["float"], "trials": rows,
               "pareto": [r for r in rows if r["pareto"]], "failed": result["failed"],
               "earlier_trials": result["earlier"], "engine": result["engine"], "workers": result["workers"],
               "ray_startup_seconds": round(result["startup_seconds"], 2)}
    write_json(out / "pareto.json", summary)
    _print(rows, result, base, objectives)
    ui.console.print(f"CSV: {out / 'pareto.csv'}   JSON: {out / 'pareto.json'}   plot: {out / 'pareto.png'}")
    ui.maybe_json(args.json, summary)
    return 1 if result["failed"] else 0


def _print(rows, result, base, objectives) -> None:
    f = result["float"]
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: -r["accuracy"])
    table = [(r["trial"], r["weights"], r["membranes"], ui.percent(r["accuracy"]),
              f"{100 * (r['accuracy'] - f['accuracy']):+.2f}" if f else "-", f"{r['energy_nj']:.4g}",
              *((r["luts"],) if "luts" in objectives else ()), f"{r['avg_weight_bits']:.2f}", f"{r['compression']:.1f}x")
             for r in front]
    ui.table(f"Pareto set ({len(front)} of {len(rows)} trials; float twin "
             f"{ui.percent(f['accuracy']) if f else 'failed'}; energy: estimate)", table,
             ("trial", "weights per layer", "membranes", "accuracy", "vs float (points)", "energy nJ",
              *(("LUTs",) if "luts" in objectives else ()), "avg weight bits", "compression vs fp32"))
    ui.table("retrain a Pareto point", [(r["trial"], r["retrain"]) for r in front], ("trial", "command"))
    cached = sum(r["cached"] for r in rows)
    ui.err_console.print(f"{len(rows)} distinct trials ({cached} from earlier runs; --fresh runs them again) on "
                         f"{result['engine']} with {result['workers']} workers"
                         + (f", Ray started in {result['startup_seconds']:.1f} s" if result["startup_seconds"] else ""))
    for line in result["failed"]:
        ui.err_console.print(f"failed trial: {line}")
