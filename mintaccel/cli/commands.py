"""The subcommands of `mintaccel`: each takes parsed arguments and returns an exit status."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mintaccel.cli import report
from mintaccel.core.files import atomic_open
from mintaccel.core.errors import UserError

from mintaccel.core.shipped import shipped_model_path


# ---------------------------------------------------------------- train / export

def train_config(args):
    from mintaccel.model_export.qat import LayerSpec, TrainConfig
    weights, membranes = args.weights, args.membrane
    if len(weights) != len(membranes) and 1 not in (len(weights), len(membranes)):
        raise UserError(f"--weights has {len(weights)} entries and --membrane {len(membranes)}: give one or one per layer")
    n = max(len(weights), len(membranes))
    weights = weights * n if len(weights) == 1 else weights
    membranes = membranes * n if len(membranes) == 1 else membranes
    if args.arch is not None and args.hidden is not None:
        raise UserError("--arch and --hidden together: --arch describes the whole network (f<N> for dense layers)")
    arch = args.arch or ""
    if arch == "default":
        from mintaccel.model_export.arch import DEFAULTS
        arch = DEFAULTS[args.dataset]
    return TrainConfig(
        dataset=args.dataset, data_dir=args.data_dir, hidden=tuple(args.hidden if args.hidden is not None else [128]),
        arch=arch,
        layers=tuple(LayerSpec(w, m) for w, m in zip(weights, membranes)),
        timesteps=args.timesteps, reset=args.reset, leak=args.leak, threshold=args.threshold,
        bias=args.bias, bias_bits=args.bias_bits, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, threads=args.threads, augment_shift=args.augment_shift,
        float_init_epochs=args.float_init_epochs, label_smoothing=args.label_smoothing, weight_decay=args.weight_decay,
        distill=args.distill)


def _train_with_progress(cfg, label: str, split):
    from mintaccel.model_export.train import train
    with report.progress(label, cfg.epochs) as advance:
        return train(cfg, progress=lambda e, n, loss: advance(1, f"loss {loss:.3f}"), split=split)


def _verified_export(result, meta: dict):
    """Export the trained net and check that the reference model reproduces its test predictions."""
    from mintaccel.model_export import datasets
    from mintaccel.model_export.train import encoded, predict, predictions_digest
    from mintaccel.sim.reference import run_batched
    model = result.net.to_int_model(result.encoding, meta)
    split = datasets.load(result.config.dataset, result.config.data_dir)
    _, xte = encoded(split, result.config.timesteps)
    trace = run_batched(model, xte.numpy().astype(np.uint8))
    if not np.array_equal(trace.predictions, predict(result.net, xte)):
        raise RuntimeError("exported integer model disagrees with the torch eval model (a mintaccel bug)")
    # integer predictions reproduce on any machine, unlike the float training that made them
    return dataclasses.replace(model, meta={**meta, "test_predictions_sha256": predictions_digest(trace.predictions)})


def cmd_train(args) -> int:
    from mintaccel.model_export.qat import LayerSpec
    from mintaccel.model_export.format import save_model
    from mintaccel.model_export.train import save_checkpoint
    from mintaccel.model_export import datasets
    cfg = train_config(args)
    if args.export:
        for i, spec in enumerate(cfg.layer_specs()):
            if spec.is_float or not spec.membrane.isdigit():
                raise UserError(f"cannot export: layer {i} is a float layer or uses {spec.membrane} membranes "
                                "(integer models need quantized weights and membranes)")
    split = datasets.load(cfg.dataset, cfg.data_dir)  # bad data fails before any output
    report.err_console.print(f"training on {split.description}; seed {cfg.seed}")
    result = _train_with_progress(cfg, "train", split)
    figures = {"config": cfg.to_json(), "split": result.split, "test_accuracy": result.test_accuracy,
               "train_accuracy": result.train_accuracy, "train_seconds": round(result.seconds, 2)}
    rows = [("data", result.split), ("test accuracy", report.percent(result.test_accuracy)),
            ("train accuracy", report.percent(result.train_accuracy)),
            ("training time", f"{result.seconds:.1f} s ({cfg.threads} thread(s))")]
    if args.float_baseline:
        fcfg = dataclasses.replace(cfg, layers=(LayerSpec("float", "float"),), bias=cfg.bias)
        base = _train_with_progress(fcfg, "float baseline", split)
        figures["float_baseline"] = {"test_accuracy": base.test_accuracy, "train_seconds": round(base.seconds, 2)}
        rows.append(("float SNN test accuracy", report.percent(base.test_accuracy)))
        rows.append(("float SNN training time", f"{base.seconds:.1f} s"))
    if args.output:
        rows.append(("checkpoint", args.output))
    model = None
    if args.export:
        from mintaccel.model_export.train import environment
        meta = {"trained_with": cfg.to_json(), "made_with": environment(), "split": result.split,
                "test_accuracy": result.test_accuracy}
        if args.float_baseline:
            meta["float_baseline"] = {"test_accuracy": figures["float_baseline"]["test_accuracy"]}
        model = _verified_export(result, meta)
        fp = model.footprint_bits()
        figures["footprint_bits"] = fp
        rows.append(("integer model", f"{args.export} (reference model agrees with torch on every test sample)"))
        rows.append(("memory vs fp32", f"{fp['quantized']:,} / {fp['fp32']:,} bits, {report.percent(fp['reduction'])} smaller"))
    # every figure is computed: only now write the outputs, so a failure or Ctrl-C leaves none of them
    if args.output:
        save_checkpoint(result, args.output)
    if model is not None:
        save_model(model, args.export)
    report.table(f"mintaccel train: {', '.join(s.weights + '/' + s.membrane for s in cfg.layers)}", rows)
    report.maybe_json(args.json, figures)
    return 0


def cmd_export(args) -> int:
    from mintaccel.model_export.format import save_model
    from mintaccel.model_export.train import load_checkpoint
    net, encoding = load_checkpoint(args.checkpoint)
    model = net.to_int_model(encoding, {"trained_with": net.cfg.to_json()})
    save_model(model, args.output)
    fp = model.footprint_bits()
    report.table("mintaccel export", [("integer model", args.output), ("layers", len(model.layers)),
                                      ("memory vs fp32", report.percent(fp["reduction"]) + " smaller")])
    report.maybe_json(args.json, {"output": args.output, "footprint_bits": fp})
    return 0


# ---------------------------------------------------------------- info

def _dims(shape) -> str:
    return "x".join(map(str, shape))


def _geometry(layer) -> str:
    """`64 -> 128` (dense), `1x8x8 -> 8x8x8, k3 s1 p1` (conv2d), `8x8x8 -> 8x4x4, max k2 s2` (pool)."""
    if layer.kind == "dense":
        return f"{layer.n_in} -> {layer.n_out}"
    if layer.kind == "flatten":
        return f"{_dims(layer.in_shape)} -> {layer.n_out}"
    text = f"{_dims(layer.in_shape)} -> {_dims(layer.out_shape)}, "
    if layer.kind == "pool":
        return text + f"{layer.op} k{layer.kernel} s{layer.stride}"
    return text + f"k{layer.kernel} s{layer.stride} p{layer.padding}"


def _describe_layer(l) -> dict:
    d = {"kind": l.kind, "geometry": _geometry(l), "inputs": l.n_in, "outputs": l.n_out}
    if hasattr(l, "in_shape"):
        d["in_shape"] = list(l.in_shape)
    if hasattr(l, "out_shape"):
        d["out_shape"] = list(l.out_shape)
    if l.kind in ("conv2d", "pool"):
        d.update(kernel=l.kernel, stride=l.stride)
    if l.kind == "conv2d":
        d["padding"] = l.padding
    if l.kind == "pool":
        d["op"] = l.op
    if hasattr(l, "weight_format"):  # a neuron layer
        d.update(weight=str(l.weight_format), membrane_bits=l.membrane_bits, threshold=l.threshold, reset=l.reset,
                 leak=str(l.leak), bias_bits=l.bias_bits, accumulator_bits=l.accumulator_bits, scale=l.scale,
                 input_max=l.input_max)
    d["footprint_bits"] = l.footprint_bits()
    return d


def describe(model) -> dict:
    return {
        "timesteps": model.timesteps,
        "inputs": model.n_inputs,
        "input_shape": list(model.input_shape),
        "outputs": model.n_outputs,
        "encoding": {"kind": model.encoding.kind, "levels": model.encoding.levels},
        "accumulator_bits": model.accumulator_bits,
        "layers": [_describe_layer(l) for l in model.layers],
        "footprint_bits": model.footprint_bits(),
        "footprint_bits_8bit_membranes": model.footprint_bits(membrane_bits=8),
    }


def _kinds_text(model) -> str:
    """`2 dense layers`, `2 conv2d, 2 pool, 1 flatten, 1 dense layers` (in order of first appearance)."""
    kinds = [l.kind for l in model.layers]
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    return ", ".join(f"{n} {k}" for k, n in counts.items()) + (" layer" if len(kinds) == 1 else " layers")


def cmd_info(args) -> int:
    from mintaccel.model_export.format import load_model
    model = load_model(args.model)
    d = describe(model)
    from rich.table import Table
    shape = f"input {_dims(model.input_shape)} ({model.n_inputs} values), " if len(model.input_shape) == 3 else "input "
    t = Table(title=f"{args.model}: {_kinds_text(model)}, T = {model.timesteps}, "
                    f"{shape}{model.encoding.kind} code of 0..{model.encoding.levels}", title_justify="left")
    for c in ("layer", "kind", "geometry", "weights", "membrane", "threshold", "reset", "leak", "bias", "acc bits",
              "scale", "weight bits", "membrane bits"):
        t.add_column(c)
    for i, l in enumerate(d["layers"]):
        fp = l["footprint_bits"]
        if "weight" in l:
            neuron = [l["weight"], f"{l['membrane_bits']} bits", str(l["threshold"]), l["reset"], l["leak"],
                      f"{l['bias_bits']} bits" if l["bias_bits"] else "none", str(l["accumulator_bits"]),
                      "-" if l["scale"] is None else f"{l['scale']:.4g}"]
        else:
            neuron = ["-"] * 8
        t.add_row(str(i), l["kind"], l["geometry"], *neuron, f"{fp['weights']:,}", f"{fp['membranes']:,}")
    report.console.print(t)
    report.table("memory footprint", report.footprint_rows(d["footprint_bits"], d["footprint_bits_8bit_membranes"]))
    if model.meta.get("test_accuracy") is not None:  # meta is free-form: print whatever it holds
        split = model.meta.get("split")
        report.console.print(f"recorded test accuracy: {report.recorded(model.meta['test_accuracy'])}"
                             + (f" ({split})" if split else ""))
    d["meta"] = model.meta
    report.maybe_json(args.json, d)
    return 0


# ---------------------------------------------------------------- encode / run

def _dataset_inputs(name, data_dir, model=None, timesteps=None):
    from mintaccel.model_export import datasets
    from mintaccel.sim.encoding import rate_encode
    split = datasets.load(name, data_dir)
    if model is not None and split.levels != model.encoding.levels:
        raise UserError(f"dataset {name} has pixels 0..{split.levels}, the model was trained on 0..{model.encoding.levels}")
    steps = model.timesteps if model is not None else timesteps
    return rate_encode(split.x_test, steps, split.levels), split


def cmd_encode(args) -> int:
    spikes, split = _dataset_inputs(args.dataset, args.data_dir, timesteps=args.timesteps)
    with atomic_open(args.output, "wb") as f:
        np.save(f, spikes)
        if args.labels:  # inside: if the labels fail, the spikes are not written either
            with atomic_open(args.labels, "wb") as g:
                np.save(g, split.y_test.astype(np.uint8))
    report.table("mintaccel encode", [("data", split.description + " (test part)"),
                                      ("spikes", f"{args.output}: uint8 {list(spikes.shape)}"),
                                      ("labels", args.labels or "-")])
    return 0


def load_spikes(path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such input file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None


def _output_noun(layer) -> str:
    """What a layer's trace entry counts: spikes, except a sum pool's window counts (docs/arithmetic.md 7)."""
    return "window counts" if getattr(layer, "op", None) == "sum" else "spikes"


def cmd_run(args) -> int:
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.reference import run_batched
    from mintaccel.sim.cycle.summary import check_labels
    from mintaccel.sim.reference import check_input
    if args.labels and not args.input:
        raise UserError("--labels needs --input (the default input brings its own labels)")
    model = load_model(args.model)
    labels = None
    if args.input:
        spikes = load_spikes(args.input)
        if args.labels:
            labels = load_spikes(args.labels)
    else:
        spikes, split = _dataset_inputs(args.dataset, args.data_dir, model)
        labels = split.y_test
    spikes = check_input(model, spikes)
    labels = check_labels(labels, len(spikes), model.n_outputs if args.labels else None)
    with report.progress("reference model", len(spikes)) as advance:
        trace = run_batched(model, spikes, progress=advance)
    figures = {"samples": len(spikes), "predictions": trace.predictions.tolist(),
               "spikes_per_layer": [int(s.sum()) for s in trace.spikes]}
    rows = [("samples", len(spikes))] + [(f"layer {i} ({l.kind}) {_output_noun(l)} per sample",
                                          f"{s.sum() / max(1, len(spikes)):.1f}")
                                         for i, (l, s) in enumerate(zip(model.layers, trace.spikes))]
    if labels is not None:
        acc = float((trace.predictions == labels).mean())
        figures["accuracy"] = acc
        rows.append(("accuracy", report.percent(acc)))
    report.table(f"mintaccel run: {args.model}", rows)
    report.maybe_json(args.json, figures)
    return 0


# ---------------------------------------------------------------- demo

SYNTH_DIR = "synth-ice40-up5k"
SHIPPED_CONV_MODEL = "digits-conv-w2m2.npz"
"""The digits conv net the demo runs through the chain next to the MLP."""


def _demo_models(args):
    """The MLP (it runs on the accelerator, so it must be dense) and the conv model (None when the
    install ships none and none is given), both checked before any work."""
    from mintaccel.model_export.format import load_model
    path = Path(args.model) if args.model else shipped_model_path()
    model = load_model(path)
    if not model.dense_only:
        kinds = ", ".join(sorted({l.kind for l in model.layers if l.kind != "dense"}))
        raise UserError(f"{path} has {kinds} layers: the demo's --model is its dense network; "
                        "give a conv model with --conv-model")
    conv_path = Path(args.conv_model) if args.conv_model else shipped_model_path(SHIPPED_CONV_MODEL)
    conv = None
    if args.conv_model or conv_path.is_file():
        conv = load_model(conv_path)
        if conv.dense_only:
            raise UserError(f"--conv-model {conv_path} has dense layers only: give it as --model")
    return path, model, conv_path, conv


def _architecture(model) -> str:
    """`1x8x8 -> conv2d 8x8x8 -> max pool 8x4x4 -> flatten 128 -> dense 10`."""
    parts = [_dims(model.input_shape)]
    for l in model.layers:
        name = f"{l.op} pool" if l.kind == "pool" else l.kind
        parts.append(f"{name} {_dims(getattr(l, 'out_shape', (l.n_out,)))}")
    return " -> ".join(parts)


def _memory_rows(fp: dict, fp8: dict, prefix: str = "") -> list[tuple]:
    return [(f"{prefix}weights / membranes", f"{fp['weights']:,} / {fp['membranes']:,} bits"
             + (f" (+ {fp['biases']:,} bits of biases)" if fp["biases"] else "")),
            (f"{prefix}memory vs fp32", f"{fp['quantized']:,} / {fp['fp32']:,} bits: "
                                        f"{report.percent(fp['reduction'])} smaller"),
            (f"{prefix}memory vs 8-bit membranes", f"{fp['quantized']:,} / {fp8['quantized']:,} bits: "
                                                   f"{report.percent(1 - fp['quantized'] / fp8['quantized'])} smaller")]


def _demo_conv(conv_path: Path, conv, clock_mhz: float) -> tuple[list[tuple], dict | None]:
    """The conv model's rows and figures: accuracy on the reference model, its memory split, and the
    cycle-accurate simulator's figures (its conv datapath: docs/microarchitecture.md, "Conv networks")."""
    name = f"conv model ({conv_path.name})"
    if conv is None:
        return [(name, "not in this install (give one with --conv-model)")], None
    from mintaccel.sim.cycle import summary
    from mintaccel.sim.reference import run_batched
    spikes, split = _dataset_inputs("digits", None, conv)
    trace = run_batched(conv, spikes)
    acc = float((trace.predictions == split.y_test).mean())
    fp, fp8 = conv.footprint_bits(), conv.footprint_bits(membrane_bits=8)
    cyc = summary(conv, spikes, split.y_test, clock_mhz)
    rows = [(name, f"{_architecture(conv)}, {report.formats_text(conv)}, T = {conv.timesteps}"),
            ("conv quantized accuracy (integer reference model, now)", report.percent(acc)),
            *_memory_rows(fp, fp8, "conv "),
            ("conv on the cycle-accurate simulator", f"{report.percent(cyc['accuracy'])}, "
             f"{cyc['cycles_per_inference']:,.0f} cycles per inference ({cyc['n_pe']} PEs), "
             f"{cyc['latency_us']:,.0f} us at {clock_mhz:g} MHz, {cyc['energy_total_pj'] / 1000:.1f} nJ with memory (estimate)")]
    return rows, {"model": str(conv_path), "samples": len(spikes), "quantized_accuracy": acc,
                  "recorded_test_accuracy": conv.meta.get("test_accuracy"), "footprint_bits": fp,
                  "footprint_bits_8bit_membranes": fp8, "cycle_accurate": cyc}


def cmd_demo(args) -> int:
    from mintaccel.core.files import atomic_folder
    from mintaccel.core.hwconfig import HwConfig
    from mintaccel.flows.targets import get_target
    from mintaccel.hw.generate import TOP_NAME, generate
    from mintaccel.sim.cycle import summary
    from mintaccel.sim.reference import run_batched
    path, model, conv_path, conv = _demo_models(args)
    out = Path(args.out)
    target = get_target("ice40-up5k")
    spikes, split = _dataset_inputs("digits", None, model)
    trace = run_batched(model, spikes)
    acc = float((trace.predictions == split.y_test).mean())
    fp, fp8 = model.footprint_bits(), model.footprint_bits(membrane_bits=8)
    baseline = model.meta.get("float_baseline")  # meta is free-form: show whatever it holds
    float_acc = baseline.get("test_accuracy") if isinstance(baseline, dict) else baseline
    rows = [
        ("model", f"{path.name}: {' -> '.join(str(n) for n in [model.n_inputs] + [l.n_out for l in model.layers])}, "
                  f"{report.formats_text(model)}, T = {model.timesteps}"),
        ("data", split.description + " (test part)"),
        ("float SNN accuracy (recorded at training)", report.recorded(float_acc)),
        ("quantized accuracy (integer reference model, now)", report.percent(acc)),
        ("weights + membranes", f"{fp['weights'] + fp['membranes']:,} bits"),
        ("same in fp32", f"{fp['fp32']:,} bits"),
        ("memory reduction vs fp32", report.percent(fp["reduction"])),
        ("memory reduction vs 8-bit membranes", report.percent(1 - fp["quantized"] / fp8["quantized"])),
    ]
    figures = {"model": str(path), "data": split.description, "samples": len(spikes),
               "float_accuracy": float_acc, "quantized_accuracy": acc, "footprint_bits": fp,
               "footprint_bits_8bit_membranes": fp8}
    conv_rows, figures["conv"] = _demo_conv(conv_path, conv, args.clock)  # shown last: every row above is the MLP's

    cyc = summary(model, spikes, split.y_test, args.clock)
    figures["cycle_accurate"] = cyc
    goal = " (the UP5K build's clock goal)" if args.clock == target.freq_mhz else ""
    rows += [
        ("cycle-accurate simulator accuracy", report.percent(cyc["accuracy"])),
        ("cycles per inference (mean, min..max)",
         f"{cyc['cycles_per_inference']:,.0f} ({cyc['cycles_min']:,}..{cyc['cycles_max']:,}), {cyc['n_pe']} PEs"),
        (f"latency per inference at {args.clock:g} MHz{goal}", f"{cyc['latency_us']:.1f} us"),
        ("synaptic operations (SOP) per inference",
         f"{cyc['effective_sops_per_inference']:,.0f} effective (NeuroBench: spike x nonzero weight), "
         f"{cyc['sops_per_inference']:,.0f} dense (spike x weight slot)"),
        ("energy per inference, compute only (estimate)",
         f"{cyc['energy_compute_pj'] / 1000:.3f} nJ ({cyc['energy_per_effective_sop_compute_pj']:.3f} pJ per effective SOP)"),
        ("energy per inference, with memory (estimate)",
         f"{cyc['energy_total_pj'] / 1000:.3f} nJ ({cyc['energy_per_effective_sop_total_pj']:.3f} pJ per effective SOP)"),
        ("MINT vs vanilla uniform energy (compute / with memory)",
         f"{cyc['mint_vs_vanilla_compute_ratio']:.3f} / {cyc['mint_vs_vanilla_total_ratio']:.3f} "
         "(MINT energy / vanilla energy: lower is better; 45 nm estimate)"),
    ]

    cfg = HwConfig.for_model(model)
    verilog = out / "rtl" / (TOP_NAME + ".v")
    report.err_console.print(f"demo of {path.name}: writing the Verilog"
                             + ("" if args.no_synth else f", then synthesis and place-and-route for {target.device}")
                             + f" into {out}/")
    with atomic_folder(out) as tmp:  # the whole folder or nothing, also on Ctrl-C
        generate(tmp / "rtl", cfg, model)
        rows.append(("accelerator Verilog", f"{verilog} ({cfg.n_pe} PEs, memories preloaded)"))
        figures["verilog"] = str(verilog)
        if not args.no_synth:
            rows += _demo_synthesis(cfg, model, target, tmp / SYNTH_DIR, out / SYNTH_DIR, cyc, figures)
        if conv is not None:  # the conv model through the same chain: its Verilog, and its synthesis
            conv_cfg = HwConfig.for_model(conv)
            generate(tmp / "rtl-conv", conv_cfg, conv)
            conv_rows.append(("conv accelerator Verilog", f"{out / 'rtl-conv' / (TOP_NAME + '.v')} "
                                                          f"({conv_cfg.n_pe} PEs, two map buffers of "
                                                          f"{conv_cfg.max_map_words} words, memories preloaded)"))
            figures["conv"]["verilog"] = str(out / "rtl-conv" / (TOP_NAME + ".v"))
            if not args.no_synth:
                conv_rows += _demo_synthesis(conv_cfg, conv, target, tmp / (SYNTH_DIR + "-conv"),
                                             out / (SYNTH_DIR + "-conv"), figures["conv"]["cycle_accurate"],
                                             figures["conv"], prefix="conv ")
    rows += conv_rows
    report.table("mintaccel demo", rows, ("", ""))
    report.maybe_json(args.json, figures)
    return 0


def _demo_synthesis(cfg, model, target, build: Path, final: Path, cyc: dict, figures: dict,
                    prefix: str = "") -> list[tuple]:
    """Area and Fmax of the default build on iCE40 UP5K, and the latency at that Fmax; a tool failure
    becomes a row, not an abort. `build` is where the flow runs, `final` where its files end up;
    `prefix` names the model in the rows (the conv model's: "conv ")."""
    from mintaccel.flows.flow import run_flow, stage_count
    try:
        with report.progress(f"{prefix}synthesis (iCE40 UP5K)", stage_count(False, True, False)) as advance:
            rep = run_flow(cfg, model, target, build, breakdown=False, pnr=True, advance=advance)
    except UserError as e:
        return [(f"{prefix}iCE40 UP5K synthesis", f"failed: {e}")]
    syn, pnr = rep["synthesis"], rep.get("pnr") or {}
    fmax = pnr.get("fmax_mhz")
    figures["ice40_up5k"] = {"luts": syn["luts"], "ffs": syn["ffs"], "bram": syn["bram"], "dsp": syn["dsp"],
                             "fmax_mhz": fmax, "goal_mhz": target.freq_mhz,
                             "goal_met": None if fmax is None else fmax >= target.freq_mhz,
                             "latency_us_at_fmax": None if not fmax else cyc["cycles_per_inference"] / fmax}
    rows = [(f"{prefix}iCE40 UP5K area (Yosys)", f"{syn['luts']:,} LUTs, {syn['ffs']:,} FFs, {syn['bram']} block RAMs, "
                                                 f"{syn.get('spram', 0)} SPRAM, {syn['dsp']} DSP, "
                                                 f"{rep['generic']['multipliers']} multipliers")]
    if not fmax:
        return rows + [(f"{prefix}iCE40 UP5K Fmax (nextpnr)", f"not reported (reports in {final})")]
    verdict = "met" if fmax >= target.freq_mhz else "NOT met"
    return rows + [
        (f"{prefix}iCE40 UP5K Fmax (nextpnr)", f"{fmax:.1f} MHz: the {target.freq_mhz:g} MHz goal is {verdict} (reports in {final})"),
        (f"{prefix}latency per inference at the achieved {fmax:.1f} MHz", f"{cyc['cycles_per_inference'] / fmax:,.1f} us"),
    ]
