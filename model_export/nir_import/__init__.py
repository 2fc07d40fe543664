"""Import NIR graphs (and so snnTorch networks) into the integer model: docs/import.md.

Three steps, one module each (this package's `__init__` ties them together):

1. `graph.read_graph` + `nodes.float_net`: read a NIR file (HDF5), check that it is a chain of neuron
   layers (Affine/Linear/Conv2d, then LIF/IF/LI/I/CubaLIF) with SumPool2d/AvgPool2d/Flatten between them,
   refuse anything else naming the node (one handler per node type), and turn the continuous-time
   parameters into one discrete-time float network (`net`) at an explicit `dt` (forward Euler, which is
   what snnTorch and SpikingJelly compute). Input gains, per-neuron (conv: per-channel) thresholds and an
   AvgPool2d's 1/K^2 are folded into the weights, so every spiking layer has threshold 1 in its own units.
2. `quantize`: map that float network onto docs/arithmetic.md with one scale `s` per neuron layer (MINT):
   integer weight = the format's rounding of w / s, integer threshold = floor(1 / s) + 1 (the strict
   `v > thr` of NIR and snnTorch), beta -> the nearest leak shift; pools become sum pools.
3. `calibrate` (optional): a small deterministic search over the per-layer scales that maximises
   accuracy on calibration data; `finetune` (optional): QAT from the imported weights and scales.

`float_sim.simulate` runs the float network exactly as NIR defines it, for the accuracy comparison.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace

import numpy as np

from mintaccel.core.errors import UserError
from mintaccel.core.model import RESETS, TIMESTEPS_MAX, Encoding, IntModel, narrow_max
from mintaccel.model_export.nir_import.calibrate import Calibration, calibrate, candidates
from mintaccel.model_export.nir_import.finetune import arch_of, finetune
from mintaccel.model_export.nir_import.float_sim import simulate
from mintaccel.model_export.nir_import.graph import chain, read_graph
from mintaccel.model_export.nir_import.net import (DEFAULT_DT, META, REL, FloatFlatten, FloatLayer, FloatNet,
                                                   FloatPool)
from mintaccel.model_export.nir_import.nodes import float_net
DEFAULT_TIMESTEPS = 8

from mintaccel.model_export.nir_import.quantize import (
    Choice, LayerFormat, _beta_of, _leak_of, data_free_choices, layer_formats, leak_for, mse_scale, quantize,
    quantize_weights, spiking_threshold)

__all__ = ["DEFAULT_DT", "META", "Calibration", "Choice", "FloatFlatten", "FloatLayer", "FloatNet", "FloatPool",
           "ImportConfig", "ImportResult", "LayerFormat", "calibrate", "candidates", "chain", "data_free_choices",
           "evaluate", "finetune", "float_net", "import_nir", "layer_formats", "leak_for", "mse_scale", "quantize",
           "quantize_weights", "read_graph", "simulate", "spiking_threshold"]


@dataclass(frozen=True)
class ImportConfig:
    """Everything that determines an import; equal configs on equal files give equal models."""

    weights: tuple[str, ...] | None = None
    """Weight format per layer or one for all (`uniform:4`); None: the graph's mintaccel hints, else uniform:4."""
    membrane: tuple[int, ...] | None = None
    """Membrane bits per layer or one for all; None: hints, else 4."""
    bias_bits: int | None = None
    timesteps: int | None = None
    """T (NIR has none); None: the graph's metadata, else 8."""
    dt: float = DEFAULT_DT
    reset: str = "hard"
    """How the source network resets: `hard` (NIR's reset to 0, snnTorch `zero`) or `soft` (snnTorch
    `subtract`, which snnTorch's exporter writes as a reset to 0 all the same)."""
    levels: int | None = None
    """Input pixel levels P of the rate code, if no dataset says."""
    calibrate: bool = False
    calibration_samples: int = 2000
    finetune_epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise UserError(f"dt must be a positive number of seconds, not {self.dt}")
        if self.reset not in RESETS:
            raise UserError(f"reset must be 'hard' or 'soft', not {self.reset!r}")
        if self.timesteps is not None and not 1 <= self.timesteps <= TIMESTEPS_MAX:
            raise UserError(f"timesteps must be in 1..{TIMESTEPS_MAX}, not {self.timesteps}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"the fine-tuning learning rate must be a positive number, not {self.lr}")
        if self.levels is not None and not 1 <= self.levels <= 65535:
            raise UserError(f"levels must be in 1..65535, not {self.levels}")
        for name in ("calibration_samples", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', '-')} must be at least 1")
        if self.finetune_epochs < 0:
            raise UserError("finetune epochs must be at least 0")


@dataclass(frozen=True)
class ImportResult:
    model: IntModel
    net: FloatNet
    choices: tuple[Choice, ...]
    leaks: tuple[tuple[float, float], ...]
    """Per layer: (beta of the graph, beta the integer leak realises)."""
    notes: tuple[str, ...]
    figures: dict
    """Accuracies and agreement (when a dataset was given), calibration score, sources."""


def import_nir(path, cfg: ImportConfig, split=None, progress=None) -> ImportResult:
    """Read, map, quantize (calibrate, fine-tune) and evaluate a NIR graph. `split`: a datasets.Split.

    Everything the user can get wrong is checked before torch is even imported."""
    if (cfg.calibrate or cfg.finetune_epochs) and split is None:
        raise UserError("--calibrate and --finetune need data: give --dataset")
    net = float_net(read_graph(path), cfg.dt)
    encoding = _encoding(net, cfg, split)
    formats = layer_formats(net, cfg.weights, cfg.membrane, cfg.bias_bits)
    if cfg.finetune_epochs:
        arch_of(net)  # refuses a graph the QAT network cannot express, before any work
    with _threads(cfg.threads):
        return _import(path, net, encoding, formats, cfg, split, progress)


@contextlib.contextmanager
def _threads(n: int):
    """Small matrices: BLAS and OpenMP threads only spin against each other (measured 6x slower on 2 cores)."""
    import torch
    from threadpoolctl import threadpool_limits
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _import(path, net: FloatNet, encoding: Encoding, formats, cfg: ImportConfig, split, progress) -> ImportResult:
    timesteps = cfg.timesteps or _meta_timesteps(net.meta) or DEFAULT_TIMESTEPS
    meta = {"imported_from": str(path), "dt": cfg.dt, "reset_assumed": cfg.reset,
            "nodes": [[l.weight_node, l.neuron_node] if isinstance(l, FloatLayer) else [l.node] for l in net.layers]}

    def build(choices):
        return quantize(net, formats, choices, cfg.reset, timesteps, encoding, meta)

    choices = data_free_choices(net, formats)
    figures = {"timesteps": timesteps, "dt": cfg.dt, "levels": encoding.levels, "reset": cfg.reset}
    if cfg.calibrate:
        data = _calibration(net, split, timesteps, cfg)
        choices, (acc, agree) = calibrate(net, choices, data, build)
        if progress:
            progress("calibrated")
        figures["calibration"] = {"data": data.description, "accuracy": acc, "agreement_with_float": agree}
    model = before = build(choices)
    notes = list(net.notes) + _quantization_notes(net, formats, model, cfg.reset)
    if cfg.finetune_epochs:
        epoch_done = (lambda e, n, loss: progress("finetune", loss)) if progress else None
        model = finetune(net, formats, choices, model, split, cfg.finetune_epochs, cfg.lr, cfg.batch_size,
                         cfg.seed, cfg.threads, progress=epoch_done)
        figures["finetune"] = {"epochs": cfg.finetune_epochs, "lr": cfg.lr}
    if split is not None:
        figures.update(evaluate(net, model, split, cfg.reset, before if cfg.finetune_epochs else None))
        # the fields `info` and `demo` show
        model = replace(model, meta={**model.meta, "test_accuracy": figures["test_accuracy"], "split": figures["split"],
                                     "float_baseline": {"test_accuracy": figures["float_accuracy"]}})
    leaks = tuple((l.beta, _leak_of(l)[1]) for l in net.neuron_layers)
    return ImportResult(model, net, tuple(choices), leaks, tuple(notes), figures)


def evaluate(net: FloatNet, model: IntModel, split, reset: str, before: IntModel | None = None) -> dict:
    """Float (forward Euler) and integer accuracy on the test part, and how often they agree."""
    from mintaccel.sim.encoding import rate_encode
    from mintaccel.sim.reference import decode, run_batched
    spikes = rate_encode(split.x_test, model.timesteps, split.levels)
    fpred = decode(simulate(net, spikes, reset))
    ipred = run_batched(model, spikes).predictions
    out = {"split": split.description + " (test part)", "samples": len(spikes),
           "float_accuracy": float((fpred == split.y_test).mean()),
           "test_accuracy": float((ipred == split.y_test).mean()),
           "agreement_with_float": float((ipred == fpred).mean())}
    if before is not None:
        out["test_accuracy_before_finetune"] = float((run_batched(before, spikes).predictions == split.y_test).mean())
    return out


def _encoding(net: FloatNet, cfg: ImportConfig, split) -> Encoding:
    if split is None and cfg.levels is None:
        raise UserError("the graph does not say how inputs are encoded: give --dataset (its pixel levels) "
                        "or --levels P (rate code of integer pixels 0..P)")
    if split is not None:
        if cfg.levels is not None and cfg.levels != split.levels:
            raise UserError(f"--levels {cfg.levels} contradicts {split.name}, whose pixels are 0..{split.levels}")
        if net.n_inputs != split.n_inputs:
            raise UserError(f"the graph takes {net.n_inputs} inputs but {split.name} has {split.n_inputs}")
        shape = getattr(split, "shape", None)
        if len(net.input_shape) == 3 and shape is not None and tuple(shape) != tuple(net.input_shape):
            raise UserError(f"the graph takes {'x'.join(map(str, net.input_shape))} maps but {split.name}'s images "
                            f"are {'x'.join(map(str, shape))}")
        if net.n_outputs < split.n_classes:
            raise UserError(f"the graph has {net.n_outputs} outputs but {split.name} has {split.n_classes} classes")
    return Encoding("rate", split.levels if split is not None else cfg.levels)


def _meta_timesteps(meta: dict) -> int | None:
    """T from the graph's metadata (mintaccel's exports record it): None when absent, refused when it is
    there but not a valid T (rather than silently using the default)."""
    if "timesteps" not in meta:
        return None
    v = meta["timesteps"]
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= TIMESTEPS_MAX:
        raise UserError(f"the graph's metadata gives timesteps = {v!r}, not an integer in 1..{TIMESTEPS_MAX}: "
                        "give --timesteps")
    return v


def _calibration(net: FloatNet, split, timesteps: int, cfg: ImportConfig) -> Calibration:
    """A seeded subset of the training part (never the test part)."""
    from mintaccel.sim.encoding import rate_encode
    from mintaccel.sim.reference import decode
    n = len(split.x_train)
    idx = np.arange(n)
    if n > cfg.calibration_samples:
        idx = np.sort(np.random.default_rng(cfg.seed).choice(n, cfg.calibration_samples, replace=False))
    spikes = rate_encode(split.x_train[idx], timesteps, split.levels)
    fpred = decode(simulate(net, spikes, cfg.reset))
    return Calibration(spikes, split.y_train[idx], fpred,
                       f"{len(idx)} samples of the training part of {split.name} (seed {cfg.seed})")


def _quantization_notes(net: FloatNet, formats, model: IntModel, reset: str) -> list[str]:
    notes = []
    for i, (layer, fmt, ilayer) in enumerate(zip(net.neuron_layers, formats, model.neuron_layers)):
        leak, realised = _leak_of(layer)
        if abs(realised - layer.beta) > REL:
            notes.append(f"layer {i} ('{layer.neuron_node}'): beta {layer.beta:.6g} has no exact leak; "
                         f"{leak} realises beta {realised:.6g}")
        clipped = np.abs(layer.dc_weight() / ilayer.scale) > fmt.weights.max_magnitude + 0.5
        if clipped.any() and fmt.weights.scheme != "binary":
            notes.append(f"layer {i}: {int(clipped.sum())} weights ({clipped.mean():.1%}) saturate at the "
                         f"{fmt.weights} grid")
        if layer.bias is not None:
            sat = np.abs(layer.dc_bias() / ilayer.scale) > narrow_max(fmt.bias_bits) + 0.5
            if sat.any():
                notes.append(f"layer {i}: {int(sat.sum())} biases saturate at the {fmt.bias_bits}-bit grid")
        if not layer.spiking:
            notes.append(f"layer {i} ('{layer.neuron_node}') is an {layer.kind} readout: it becomes a soft-reset "
                         f"layer with threshold {ilayer.threshold}, read by spike count instead of membrane")
    if reset == "soft" and any(l.spiking and l.beta < 1 for l in net.neuron_layers):
        notes.append("soft reset: mintaccel subtracts the threshold before the leak, snnTorch after it "
                     "(the membrane differs by (1 - beta) * threshold after each spike)")
    return notes
