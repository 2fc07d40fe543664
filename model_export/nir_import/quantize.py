"""Mapping the float network onto docs/arithmetic.md: one scale per neuron layer (MINT), weights on the
format's grid, the strict `v > 1` as an integer threshold, beta as the nearest leak."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer
from mintaccel.core.errors import UserError
from mintaccel.core.model import (BIAS_BITS, MEMBRANE_BITS, DenseLayer, Encoding, IntModel, Leak, ModelError,
                                  WeightFormat, narrow_max)
from mintaccel.model_export.nir_import.net import REL, FloatFlatten, FloatLayer, FloatNet, FloatPool

DEFAULT_WEIGHTS = "uniform:4"
DEFAULT_MEMBRANE = 4
DEFAULT_BIAS_BITS = 8


@dataclass(frozen=True)
class LayerFormat:
    weights: WeightFormat
    membrane_bits: int
    bias_bits: int


@dataclass(frozen=True)
class Choice:
    """The per-layer free parameters of the quantization."""

    scale: float
    """Real value of one integer unit, in units of the layer's (normalised) threshold."""
    threshold: int
    """Integer threshold: floor(1 / scale) + 1 for spiking layers, chosen for an LI/I readout."""


def leak_for(beta: float) -> tuple[Leak, float]:
    """The leak nearest to a decay factor beta, and the beta it realises (docs/import.md).

    beta >= 1/2: decay u - (u >> k) with k = round(-log2(1 - beta)) (beta = 1 - 2^-k exactly);
    beta < 1/2: shift u >> k with k = round(-log2(beta)) (beta = 2^-k). Beyond k = 15: none / shift:15.
    """
    if beta >= 1 - 2.0**-15.5:
        return Leak("none"), 1.0
    if beta >= 0.5:
        k = min(15, max(1, round(-math.log2(1 - beta))))
        return Leak("decay", k), 1 - 2.0**-k
    k = 15 if beta <= 2.0**-15 else min(15, max(1, round(-math.log2(beta))))
    return Leak("shift", k), 2.0**-k


def _leak_of(layer: FloatLayer) -> tuple[Leak, float]:
    """`leak_for`, unless the node says which equivalent leak mintaccel exported (beta 1/2 is both forms)."""
    hint = layer.hints.get("leak")
    if isinstance(hint, str):
        try:
            leak = Leak.parse(hint)
        except ModelError:
            leak = None
        if leak is not None:
            realised = _beta_of(leak)
            if abs(realised - layer.beta) <= REL:
                return leak, realised
    return leak_for(layer.beta)


def _beta_of(leak: Leak) -> float:
    return {"none": 1.0, "shift": 2.0**-leak.k, "decay": 1 - 2.0**-leak.k}[leak.kind]


def quantize_weights(w: np.ndarray, scale: float, fmt: WeightFormat) -> np.ndarray:
    """The integers of `fmt` that w / scale rounds to, with the QAT quantizers' own rule (eval mode)."""
    import torch
    from mintaccel.model_export.quantizers import weight_quantizer
    q = weight_quantizer(fmt).eval()
    with torch.no_grad():
        v = q(torch.from_numpy(np.ascontiguousarray(w, np.float64)), torch.tensor(float(scale), dtype=torch.float64))
    return v.numpy().astype(np.int64)


def spiking_threshold(scale: float) -> int:
    """Strict `v > 1` on integers H in units of scale: H > 1/s  <=>  H >= floor(1/s) + 1.

    The 1e-9 keeps an exact tie (1/s an integer, computed as 6.999...) on the strict side."""
    return math.floor(1.0 / scale + 1e-9) + 1


def layer_formats(net: FloatNet, weights: tuple[str, ...] | None, membrane: tuple[int, ...] | None,
                  bias_bits: int | None) -> list[LayerFormat]:
    """One format per layer, from the options (one for all, or one per layer) or the graph's mintaccel hints."""
    n = len(net.neuron_layers)
    for what, given in (("--weights", weights), ("--membrane", membrane)):
        if given is not None and len(given) not in (1, n):
            raise UserError(f"{what} has {len(given)} entries for {n} layers (give 1 or {n})")
    out = []
    for i, layer in enumerate(net.neuron_layers):
        w = _pick(weights, i, layer.hints.get("weight"), DEFAULT_WEIGHTS)
        m = _pick(membrane, i, layer.hints.get("membrane_bits"), DEFAULT_MEMBRANE)
        c = bias_bits if bias_bits is not None else layer.hints.get("bias_bits") or DEFAULT_BIAS_BITS
        try:
            fmt = WeightFormat.parse(str(w))
        except ModelError as e:
            raise UserError(f"--weights: {e}") from None
        if not isinstance(m, int) or m not in MEMBRANE_BITS:
            raise UserError(f"--membrane: choose bits from {MEMBRANE_BITS}, not {m}")
        if c not in BIAS_BITS:
            raise UserError(f"--bias-bits must be in 2..16, not {c}")
        out.append(LayerFormat(fmt, m, int(c)))
    return out


def _pick(given, i, hint, default):
    if given is not None:
        return given[0] if len(given) == 1 else given[i]
    return hint if hint is not None else default


def quantize(net: FloatNet, formats: list[LayerFormat], choices: list[Choice], reset: str,
             timesteps: int, encoding: Encoding, meta: dict | None = None) -> IntModel:
    """The integer model for given per-neuron-layer formats and choices (docs/import.md): pools become sum
    pools, flattens flattens."""
    layers, picks = [], iter(zip(formats, choices))
    for i, layer in enumerate(net.layers):
        if isinstance(layer, FloatPool):
            layers.append(PoolLayer("sum", layer.in_shape, layer.kernel, layer.stride))
        elif isinstance(layer, FloatFlatten):
            layers.append(FlattenLayer(layer.in_shape))
        else:
            layers.append(_neuron_layer(i, layer, *next(picks), reset))
    try:
        return IntModel(tuple(layers), timesteps, encoding, meta or {})
    except ModelError as e:
        raise UserError(f"the imported graph: {e}") from None


def _neuron_layer(i: int, layer: FloatLayer, fmt: LayerFormat, ch: Choice, reset: str):
    bias = None
    if layer.bias is not None:
        q = narrow_max(fmt.bias_bits)
        bias = np.clip(np.round(layer.dc_bias() / ch.scale), -q, q).astype(np.int64)
    fields = dict(weight=quantize_weights(layer.dc_weight(), ch.scale, fmt.weights), weight_format=fmt.weights,
                  membrane_bits=fmt.membrane_bits, threshold=ch.threshold,
                  reset=reset if layer.spiking else "soft", leak=_leak_of(layer)[0],
                  bias=bias, bias_bits=fmt.bias_bits if bias is not None else 0, scale=float(ch.scale))
    try:
        if layer.conv:
            return Conv2dLayer(**fields, in_shape=layer.in_shape, stride=layer.stride, padding=layer.padding)
        return DenseLayer(**fields)
    except ModelError as e:  # e.g. weights so small against the threshold that theta > 2^20
        raise UserError(f"layer {i} ('{layer.neuron_node}'): {e}") from None


def data_free_choices(net: FloatNet, formats: list[LayerFormat]) -> list[Choice]:
    """Scales without data: the scale mintaccel exported the graph with, else the weight-MSE-optimal one.

    (Measured on a digits net: flooring the scale so that theta <= Q(m) + 1 fits the membrane was worse
    than plain MSE at 2 and 3 bits, a little better at 4 and 8; calibration settles it with data.)"""
    out = []
    for layer, fmt in zip(net.neuron_layers, formats):
        theta = layer.hints.get("threshold")
        if layer.spiking and isinstance(theta, int) and theta >= 1 and layer.hints.get("weight") == str(fmt.weights):
            s = 1.0 / (theta - 0.5)  # nir_export wrote the threshold as (theta - 1/2) * scale
            out.append(Choice(s, spiking_threshold(s)))
            continue
        s = mse_scale(layer.dc_weight(), fmt.weights)
        if layer.spiking:
            out.append(Choice(s, spiking_threshold(s)))
        else:
            out.append(Choice(s, narrow_max(fmt.membrane_bits) + 1))
    return out


def mse_scale(w: np.ndarray, fmt: WeightFormat) -> float:
    """The scale (on a 1/8-octave grid) that minimises the weight quantization error."""
    top = float(np.abs(w).max())
    if top == 0:
        return 1.0
    base = top / fmt.max_magnitude
    best, best_err = base, math.inf
    for j in range(8, -49, -1):
        s = base * 2.0 ** (j / 8)
        err = float(np.square(w - s * quantize_weights(w, s, fmt)).sum())
        if err < best_err:
            best, best_err = s, err
    return best

