"""`mintaccel simulate`: the cycle-accurate simulator (sim/cycle/) with event counts and energy estimates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mintaccel.cli import integer, output_option, positive, report
from mintaccel.core.errors import UserError

PLOTS = ("energy.png", "cycles.png", "raster.png")


def register(sub) -> None:
    from mintaccel.model_export.datasets import DATASETS
    p = sub.add_parser("simulate", help="cycle-accurate simulation: cycles, latency, event counts, energy (estimate)")
    p.set_defaults(func=cmd_simulate)
    p.add_argument("--model", help="integer model file (default: the shipped digits model)")
    p.add_argument("--input", metavar="X.npy",
                   help="input spikes, .npy uint8 [batch, T, inputs] (default: the dataset's test split encoded with the model's T)")
    p.add_argument("--labels", metavar="Y.npy", help="labels for --input (.npy integers [batch]); enables accuracy")
    p.add_argument("--dataset", choices=DATASETS, help="default input when --input is not given "
                   "(default: digits, or mnist for a model of 0..255 pixels)")
    p.add_argument("--data-dir", help="folder of MNIST IDX files (default ../shared/data/mnist-test)")
    p.add_argument("--clock", type=positive, default=48.0, metavar="MHZ", help="clock frequency in MHz (default 48)")
    p.add_argument("--n-pe", type=int, default=8, metavar="N",
                   help="processing elements; the build is HwConfig.for_model(model, N) (default 8)")
    p.add_argument("--energy-table", metavar="JSON", help="override entries of the per-event energy table (docs/energy.md)")
    p.add_argument("--input-gap", type=integer(0), default=0, metavar="CYCLES",
                   help="host stall model: idle cycles before each spikes_in word (default 0: never stalls)")
    p.add_argument("--output-gap", type=integer(0), default=0, metavar="CYCLES",
                   help="host stall model: cycles before the host takes each spikes_out word (default 0)")
    output_option(p, "--out", folder=True, metavar="DIR",
                  help="write the plots (PNG) to this folder, replaced whole (for example mintaccel-sim)")
    output_option(p, "--json", metavar="PATH", help="also write the printed figures to this JSON file")


def _inputs(args, model):
    from mintaccel.cli.commands import _dataset_inputs, load_spikes
    if args.input:
        spikes = load_spikes(args.input)
        labels = load_spikes(args.labels) if args.labels else None
        return spikes, labels, str(args.input)
    if args.labels:
        raise UserError("--labels needs --input (the default input brings its own labels)")
    dataset = args.dataset or ("mnist" if model.encoding.levels == 255 else "digits")
    spikes, split = _dataset_inputs(dataset, args.data_dir, model)
    return spikes, split.y_test, split.description + " (test part)"


def cmd_simulate(args) -> int:
    from mintaccel.core.files import atomic_folder
    from mintaccel.core.hwconfig import HwConfig, check_fits
    from mintaccel.model_export.format import load_model
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.sim.cycle import FixedGap, simulate
    from mintaccel.sim.cycle.controller import check_n_pe
    from mintaccel.sim.cycle.summary import check_labels, figures
    from mintaccel.sim.energy import DEFAULT, estimate, load_table
    from mintaccel.sim.reference import check_input

    # ---- validate everything before computing or writing anything (ranges and outputs: the parser)
    table = load_table(args.energy_table) if args.energy_table else DEFAULT
    model_path = Path(args.model) if args.model else shipped_model_path()
    model = load_model(model_path)
    check_n_pe(args.n_pe)
    cfg = HwConfig.for_model(model, args.n_pe)
    check_fits(model, cfg)
    spikes, labels, data = _inputs(args, model)
    spikes = check_input(model, spikes)
    if len(spikes) == 0:
        raise UserError("input spikes hold no samples")
    labels = check_labels(labels, len(spikes), model.n_outputs if args.labels else None)

    # ---- simulate
    stall = FixedGap(args.input_gap, args.output_gap)
    with report.progress("cycle simulator", len(spikes)) as advance:
        result = simulate(model, spikes, cfg, stall_model=stall, batch_size=1024, progress=advance)
    est = estimate(result, table)
    summary = figures(result, est, labels, args.clock)

    # ---- print
    shape = " -> ".join(str(n) for n in [model.n_inputs] + [l.n_out for l in model.layers])
    _print(summary, result, est, model_path, shape, data)

    # ---- write: plots rendered first, the folder written whole or not at all
    written = []
    if args.out:
        out = Path(args.out)
        title = f"{model_path.name} ({shape}, T = {model.timesteps}), n_pe = {cfg.n_pe}"
        from mintaccel.sim.cycle import plots
        images = {"energy.png": plots.energy_png(est, title), "cycles.png": plots.cycles_png(result, args.clock, title),
                  "raster.png": plots.raster_png(result, 0, f"spike raster, sample 0 ({title})")}
        with atomic_folder(out) as tmp:
            for name, png in images.items():
                (tmp / name).write_bytes(png)
        written = [str(out / name) for name in images]
        report.err_console.print(f"plots written to {out}/ ({', '.join(images)})")
    report.maybe_json(args.json, _json(summary, result, est, model_path, data, stall, written))
    return 0


def effective_share(s: dict) -> float:
    """Effective SOPs / dense SOPs of a summary (sim/cycle/summary.py figures)."""
    return s["effective_sops_per_inference"] / s["sops_per_inference"] if s["sops_per_inference"] else 0.0


def _print(s: dict, result, est, model_path: Path, shape: str, data: str) -> None:
    from rich.table import Table
    cfg = result.cfg
    rows = [
        ("model", f"{model_path.name}: {shape}, T = {result.model.timesteps}"),
        ("data", f"{data}, {s['samples']} samples"),
        ("hardware", f"n_pe = {cfg.n_pe}, {cfg.accumulator_bits}-bit accumulators, clock {s['clock_mhz']:g} MHz"),
    ]
    if s["accuracy"] is not None:
        rows.append(("accuracy (simulated accelerator)", report.percent(s["accuracy"])))
    stall = f", {s['stall_cycles_per_inference']:,.1f} of them stalls" if s["stall_cycles_per_inference"] else ", no stalls"
    rows += [
        ("cycles per inference", f"{s['cycles_per_inference']:,.1f} mean ({s['cycles_min']:,} .. {s['cycles_max']:,}){stall}"),
        ("latency per inference", f"{s['latency_us']:,.2f} us ({s['inferences_per_second']:,.0f} inferences/s)"),
        ("effective synaptic ops per inference", f"{s['effective_sops_per_inference']:,.1f} (NeuroBench's effective SOPs: "
                                                 "input spike x nonzero weight)"),
        ("dense synaptic ops per inference", f"{s['sops_per_inference']:,.1f} (input spike x weight slot, zero "
                                             f"weights included: {report.percent(effective_share(s))} effective)"),
        ("PE lane operations per inference", f"{s['lane_ops_per_inference']:,.0f} (dense SOPs plus padding lanes: "
                                             f"{report.percent(s['pe_utilisation'])} are dense SOPs)"),
        ("throughput", f"{s['effective_sops_per_second'] / 1e6:,.1f} M effective SOP/s "
                       f"({s['sops_per_second'] / 1e6:,.1f} M dense)"),
        ("energy per inference, compute only (estimate)",
         f"{s['energy_compute_pj'] / 1e3:,.3f} nJ ({s['energy_per_effective_sop_compute_pj']:.4f} pJ per effective SOP, "
         f"{s['energy_per_sop_compute_pj']:.4f} per dense SOP)"),
        ("energy per inference, with memory (estimate)",
         f"{s['energy_total_pj'] / 1e3:,.3f} nJ ({s['energy_per_effective_sop_total_pj']:.4f} pJ per effective SOP, "
         f"{s['energy_per_sop_total_pj']:.4f} per dense SOP)"),
        ("vanilla uniform quantization (estimate)", f"compute {s['vanilla_energy_compute_pj'] / 1e3:,.3f} nJ, "
                                                    f"with memory {s['vanilla_energy_total_pj'] / 1e3:,.3f} nJ"),
        ("MINT vs vanilla, compute (estimate; lower is better)", f"x{s['mint_vs_vanilla_compute_ratio']:.3f} "
                                                f"({report.percent(1 - s['mint_vs_vanilla_compute_ratio'])} less; MINT paper: about 90%)"),
        ("MINT vs vanilla, with memory (estimate)", f"x{s['mint_vs_vanilla_total_ratio']:.3f} "
                                                    f"({report.percent(1 - s['mint_vs_vanilla_total_ratio'])} less)"),
        ("  if the rescale were paid per synaptic op", f"x{est.per_sop_rescale_compute_ratio:.3f} compute "
                                                       f"({report.percent(1 - est.per_sop_rescale_compute_ratio)} less)"),
        ("energy table", s["energy_table"] + " (docs/energy.md)"),
    ]
    report.table("mintaccel simulate", rows)

    act, ph = result.activity, result.phases
    t = Table(title="per layer (means per inference)", title_justify="left")
    for c in ("layer", "in -> out", "W x G (x positions)", "input events", "spikes out", "effective SOPs", "dense SOPs", "cycles",
              "compute (est.)", "memory (est.)"):
        t.add_column(c, justify="right")
    layer_cycles = ph.layer_step.sum(axis=1).mean(axis=0)
    pe = result.blocks["pe_array"].ops
    for l, view in enumerate(act.views):
        pl = est.per_layer[l]
        shape = f" x {view.positions}" if view.positions > 1 else ""
        t.add_row(f"{view.index} {view.layer.kind}", _in_out(view), f"{act.words[l]} x {act.groups[l]}{shape}",
                  f"{act.events[:, :, l].sum(axis=1).mean():,.1f}", f"{act.spikes[:, :, l].sum(axis=1).mean():,.1f}",
                  f"{pe['additions'][:, l].mean():,.0f}", f"{pe['sops'][:, l].mean():,.0f}", f"{layer_cycles[l]:,.1f}",
                  f"{pl['compute_pj']:,.1f} pJ", f"{pl['memory_pj']:,.1f} pJ")
    report.console.print(t)

    t = Table(title="per block (means per inference; energy is an estimate)", title_justify="left")
    for c in ("block", "busy", "idle", "stall", "events", "energy (est.)"):
        t.add_column(c, justify="right" if c not in ("block", "events") else "left")
    for name, b in result.blocks.items():
        m = b.mean()
        events = []
        for op in b.ops:
            text = f"{op} {m[op]:,.0f}"
            if op in ("reads", "writes") and b.memory:
                text += f" ({m[op.rstrip('s') + '_bits']:,.0f} bits)"
            events.append(text)
        pj = est.blocks.get(name, {}).get("pj")
        t.add_row(name, f"{m['busy_cycles']:,.0f}", f"{m['idle_cycles']:,.0f}", f"{m['stall_cycles']:,.0f}",
                  ", ".join(events), "-" if pj is None else f"{pj:,.1f} pJ")
    report.console.print(t)


def _in_out(view) -> str:
    """`64 -> 128` for a dense layer on a vector; `32x8x8 max2 -> 64x4x4` through the map reader."""
    if not view.is_map:
        return f"{view.layer.n_in} -> {view.layer.n_out}"
    pool = f" {view.pool_op}{view.pool_kernel}" if view.pool_op else ""
    return f"{'x'.join(map(str, view.in_shape))}{pool} -> {'x'.join(map(str, view.out_shape))}"


def _json(s: dict, result, est, model_path: Path, data: str, stall, plots: list) -> dict:
    ph = result.phases
    cfg = dataclasses.asdict(result.cfg)
    cfg["accumulator_bits"] = result.cfg.accumulator_bits
    act = result.activity
    return {
        "model": str(model_path),
        "data": data,
        "hardware": cfg,
        "stall_model": {"input_gap": stall.input_gap, "output_gap": stall.output_gap},
        "summary": s,
        "cycles": {
            "per_inference_mean": s["cycles_per_inference"],
            "per_phase_mean": {k: float(v.mean()) for k, v in ph.per_phase().items()},
            "stalls_mean": {"input": float(result.stalls.input.sum(axis=1).mean()),
                            "output": float(result.stalls.output.sum(axis=1).mean())},
            "per_step_mean": ph.step.mean(axis=0).tolist(),
            "per_layer_step_mean": ph.layer_step.mean(axis=0).tolist(),
        },
        "layers": [{
            "index": view.index, "kind": view.layer.kind, "inputs": view.layer.n_in, "outputs": view.layer.n_out,
            "words": int(act.words[l]), "groups": int(act.groups[l]), "positions": int(view.positions),
            "events_per_inference": float(act.events[:, :, l].sum(axis=1).mean()),
            "spikes_per_inference": float(act.spikes[:, :, l].sum(axis=1).mean()),
            "sops_per_inference": float(result.blocks["pe_array"].ops["sops"][:, l].mean()),
            "effective_sops_per_inference": float(result.blocks["pe_array"].ops["additions"][:, l].mean()),
            "cycles_per_inference": float(ph.layer_step[:, :, l].sum(axis=1).mean()),
        } for l, view in enumerate(act.views)],
        "blocks": {name: b.mean() for name, b in result.blocks.items()},
        "energy": est.to_json(),
        "predictions": result.predictions.tolist(),
        "plots": plots,
    }

