"""`mintaccel import` (NIR graph -> integer model) and `mintaccel export-nir` (the way back): docs/import.md."""

from __future__ import annotations

import contextlib

from mintaccel.cli import SEED_MAX, THREADS_MAX, integer, output_option, positive, report
from mintaccel.core.errors import UserError


def register(sub) -> None:
    from mintaccel.model_export.datasets import DATASETS
    from mintaccel.core.model import TIMESTEPS_MAX
    from mintaccel.model_export.nir_import import DEFAULT_DT
    p = sub.add_parser("import", help="integer model from a NIR graph (e.g. exported by snnTorch)")
    p.set_defaults(func=cmd_import)
    p.add_argument("graph", metavar="GRAPH.nir")
    output_option(p, "-o", "--output", required=True, metavar="MODEL")
    p.add_argument("--dataset", choices=DATASETS, help="the data the graph was trained on: sets the input levels, "
                   "reports float and integer accuracy, and feeds --calibrate and --finetune")
    p.add_argument("--data-dir", help="folder of MNIST IDX files (default ../shared/data/mnist-test)")
    p.add_argument("--levels", type=int, metavar="P", help="input pixels are integers 0..P (rate code), if no --dataset")
    p.add_argument("--timesteps", "-T", type=integer(1, TIMESTEPS_MAX),
                   help="time steps per sample (default: the graph's metadata, else 8)")
    p.add_argument("--dt", type=positive, default=DEFAULT_DT,
                   help=f"time step in seconds for tau -> beta = 1 - dt/tau (default {DEFAULT_DT:g}, snnTorch's)")
    p.add_argument("--weights", nargs="+", metavar="FMT",
                   help="per layer or for all: uniform:B (2,3,4,8), pot:B (2,3,4), binary (default uniform:4)")
    p.add_argument("--membrane", nargs="+", type=int, metavar="BITS", help="per layer or for all: 2, 3, 4, 8 (default 4)")
    p.add_argument("--bias-bits", type=int, help="width of the integer biases, 2..16 (default 8)")
    p.add_argument("--reset", choices=("hard", "soft"), default="hard",
                   help="how the source network resets: hard (NIR's reset to 0, snnTorch 'zero') or soft "
                        "(snnTorch 'subtract', which its exporter writes as a reset to 0)")
    p.add_argument("--calibrate", action="store_true", help="choose the per-layer scales on the training part of --dataset")
    p.add_argument("--calibration-samples", type=integer(1), default=2000, metavar="N")
    p.add_argument("--finetune", type=integer(0), default=0, metavar="EPOCHS", help="then quantization-aware training")
    p.add_argument("--lr", type=positive, default=1e-3, help="fine-tuning learning rate")
    p.add_argument("--batch-size", type=integer(1), default=64)
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    p.add_argument("--threads", type=integer(1, THREADS_MAX), default=1)
    output_option(p, "--json", metavar="PATH", help="also write the printed figures to this JSON file")

    p = sub.add_parser("export-nir", help="NIR graph of an integer model (for other SNN tools)")
    p.set_defaults(func=cmd_export_nir)
    p.add_argument("model")
    output_option(p, "-o", "--output", required=True, metavar="GRAPH.nir")
    p.add_argument("--dt", type=positive, default=DEFAULT_DT, help=f"time step in seconds (default {DEFAULT_DT:g})")
    output_option(p, "--json", metavar="PATH", help="also write the printed figures to this JSON file")


def import_config(args):
    from mintaccel.model_export.nir_import import ImportConfig
    return ImportConfig(
        weights=tuple(args.weights) if args.weights else None,
        membrane=tuple(args.membrane) if args.membrane else None,
        bias_bits=args.bias_bits, timesteps=args.timesteps, dt=args.dt, reset=args.reset, levels=args.levels,
        calibrate=args.calibrate, calibration_samples=args.calibration_samples, finetune_epochs=args.finetune,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, threads=args.threads)


def cmd_import(args) -> int:
    from mintaccel.model_export import datasets
    from mintaccel.model_export.format import save_model
    from mintaccel.model_export.nir_import import import_nir
    cfg = import_config(args)
    if args.data_dir and not args.dataset:
        raise UserError("--data-dir needs --dataset")
    split = datasets.load(args.dataset, args.data_dir) if args.dataset else None
    with contextlib.ExitStack() as stack:
        result = import_nir(args.graph, cfg, split, progress=_lazy_progress(stack, int(cfg.calibrate) + cfg.finetune_epochs))
    model = result.model
    save_model(model, args.output)
    layers = _layer_rows(result)
    _print_import(args, result, layers)
    report.maybe_json(args.json, {"graph": args.graph, "output": args.output, "layers": layers,
                                  "notes": list(result.notes), **result.figures,
                                  "footprint_bits": model.footprint_bits()})
    return 0


def _lazy_progress(stack: contextlib.ExitStack, steps: int):
    """A progress callback whose bar appears at the first step, so an early error stays one line."""
    bar = []

    def advance(stage: str, loss: float | None = None):
        if not bar:
            bar.append(stack.enter_context(report.progress("import", steps)))
        bar[0](1, stage if loss is None else f"{stage} loss {loss:.3f}")

    return advance


def _layer_rows(result) -> list[dict]:
    """One row per neuron layer of the import (pools and flatten are listed in the notes of the model)."""
    rows = []
    for fl, il, ch, (beta, realised) in zip(result.net.neuron_layers, result.model.neuron_layers, result.choices,
                                            result.leaks):
        rows.append({"nodes": [fl.weight_node, fl.neuron_node], "kind": fl.kind, "layer": il.kind, "inputs": il.n_in,
                     "outputs": il.n_out, "weight": str(il.weight_format), "membrane_bits": il.membrane_bits,
                     "scale": il.scale, "threshold": il.threshold, "reset": il.reset, "leak": str(il.leak),
                     "beta": beta, "beta_realised": realised, "bias_bits": il.bias_bits})
    return rows


def _print_import(args, result, layers) -> None:
    from rich.table import Table
    t = Table(title=f"mintaccel import: {args.graph} -> {args.output}", title_justify="left")
    for c in ("layer", "nodes", "in -> out", "weights", "membrane", "scale", "threshold", "reset", "leak (beta)", "bias"):
        t.add_column(c)
    for i, l in enumerate(layers):
        beta = f"{l['beta']:.4g}" + ("" if abs(l["beta"] - l["beta_realised"]) < 1e-6 else f" -> {l['beta_realised']:.4g}")
        t.add_row(str(i), f"{l['nodes'][0]} + {l['nodes'][1]} ({l['layer']}, {l['kind']})", f"{l['inputs']} -> {l['outputs']}",
                  l["weight"], f"{l['membrane_bits']} bits", f"{l['scale']:.4g}", str(l["threshold"]), l["reset"],
                  f"{l['leak']} ({beta})", f"{l['bias_bits']} bits" if l["bias_bits"] else "none")
    report.console.print(t)
    f = result.figures
    rows = [("time steps", f["timesteps"]), ("dt", f"{f['dt']:g} s"), ("input", f"rate code of 0..{f['levels']}")]
    maps = [f"{l.node} ({l.kind} -> sum pool {l.kernel}x{l.kernel}, stride {l.stride})" if hasattr(l, "kernel")
            else f"{l.node} (Flatten)" for l in result.net.layers if not hasattr(l, "neuron_node")]
    if maps:
        rows.append(("pools and flatten", ", ".join(maps)))
    if "calibration" in f:
        c = f["calibration"]
        rows.append(("calibration", f"{c['data']}: accuracy {report.percent(c['accuracy'])}"))
    if "float_accuracy" in f:
        rows += [("data", f["split"]), ("float accuracy (NIR graph, forward Euler)", report.percent(f["float_accuracy"]))]
        if "test_accuracy_before_finetune" in f:
            rows.append(("integer accuracy before fine-tuning", report.percent(f["test_accuracy_before_finetune"])))
        rows += [("integer accuracy (reference model)", report.percent(f["test_accuracy"])),
                 ("integer agrees with float", report.percent(f["agreement_with_float"]))]
    fp = result.model.footprint_bits()
    rows.append(("memory vs fp32", f"{fp['quantized']:,} / {fp['fp32']:,} bits, {report.percent(fp['reduction'])} smaller"))
    rows += [("approximation", n) for n in result.notes]
    report.table("mapping", rows)


def cmd_export_nir(args) -> int:
    from mintaccel.model_export.format import load_model
    from mintaccel.model_export.nir_export import write_nir
    model = load_model(args.model)
    write_nir(model, args.output, args.dt)
    layers = [_export_row(i, l) for i, l in enumerate(model.layers)]
    report.table(f"mintaccel export-nir: {args.model} -> {args.output}",
                 [(f"layer {i}", l["text"]) for i, l in enumerate(layers)] + [("dt", f"{args.dt:g} s")])
    report.maybe_json(args.json, {"model": args.model, "output": args.output, "dt": args.dt, "layers": layers})
    return 0


def _export_row(i: int, l) -> dict:
    """The NIR nodes one integer layer became (nir_export's names)."""
    if l.kind == "pool":
        return {"node": f"pool{i}", "kind": "SumPool2d", "inputs": l.n_in, "outputs": l.n_out,
                "text": f"pool{i} (SumPool2d {l.kernel}x{l.kernel}, stride {l.stride}), {l.n_in} -> {l.n_out}"}
    if l.kind == "flatten":
        return {"node": f"flat{i}", "kind": "Flatten", "inputs": l.n_in, "outputs": l.n_out,
                "text": f"flat{i} (Flatten), {l.n_in} -> {l.n_out}"}
    s = l.scale if l.scale else 1.0
    kind = "IF" if l.leak.kind == "none" else "LIF"
    weight = "Conv2d" if l.kind == "conv2d" else ("Affine" if l.bias is not None else "Linear")
    row = {"weight_node": f"fc{i}", "neuron_node": f"lif{i}", "kind": kind, "weight_kind": weight, "inputs": l.n_in,
           "outputs": l.n_out, "scale": s, "v_threshold": (l.threshold - 0.5) * s, "leak": str(l.leak)}
    row["text"] = (f"fc{i} + lif{i} ({weight} + {kind}), {l.n_in} -> {l.n_out}, scale {s:.4g}, "
                   f"v_threshold {row['v_threshold']:.4g}, {l.leak}")
    return row
