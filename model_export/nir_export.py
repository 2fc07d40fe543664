"""Export an integer model to NIR, so other tools can read what mintaccel runs (docs/import.md).

Each neuron layer becomes a weight node (Linear, or Affine with a bias; Conv2d for a conv layer) and a
neuron node: integers times the layer's scale as float32. A pool becomes a SumPool2d (a max pool, the OR
of spikes, has no NIR node and is refused), a flatten a Flatten. The leak maps back through the explicit
`dt` as the inverse of the import's forward-Euler step (beta = 1 - dt / tau, r = tau / dt so the input gain per step is 1):

- `decay:k` (beta = 1 - 2^-k): LIF with tau = 2^k dt, r = 2^k;
- `shift:k` (beta = 2^-k): LIF with tau = dt / (1 - 2^-k), r = tau / dt;
- `none`: IF with r = 1 / dt.

The integer `H >= theta` is the real `v > (theta - 1/2) * s`, half a unit from either neighbour.
What NIR cannot say (membrane clamp, the rounding of the leak, the time-step count and input code) goes
into metadata, which `nir_import` reads back so that export then import gives the same integer model.
A soft (subtract) reset has no NIR equivalent: such models are refused rather than written wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mintaccel.core.files import atomic_open
from mintaccel.core.errors import UserError
from mintaccel.model_export.nir_import import DEFAULT_DT, META, _beta_of
from mintaccel.core.model import IntModel


def to_nir(model: IntModel, dt: float = DEFAULT_DT):
    """The NIR graph of `model` at step `dt` (type-checked by nir)."""
    import nir
    if not (dt > 0 and np.isfinite(dt)):
        raise UserError(f"dt must be a positive number of seconds, not {dt}")
    nodes = {"input": nir.Input(input_type=np.array(model.input_shape))}
    names = ["input"]
    for i, layer in enumerate(model.layers):
        if layer.kind == "pool":
            if layer.op != "sum":
                raise UserError(f"layer {i} is a {layer.op} pool (the OR of spikes), which NIR cannot express "
                                "(it has SumPool2d and AvgPool2d only): only sum-pool models can be exported")
            nodes[f"pool{i}"] = nir.SumPool2d(kernel_size=np.array([layer.kernel] * 2),
                                              stride=np.array([layer.stride] * 2), padding=np.array([0, 0]))
            names.append(f"pool{i}")
            continue
        if layer.kind == "flatten":
            nodes[f"flat{i}"] = nir.Flatten(input_type={"input": np.array(layer.in_shape)}, start_dim=0, end_dim=-1)
            names.append(f"flat{i}")
            continue
        if layer.reset != "hard":
            raise UserError(f"layer {i} uses a soft (subtract) reset, which NIR cannot express "
                            "(NIR neurons reset to v_reset): only hard-reset models can be exported")
        if layer.scale is not None and not (math.isfinite(layer.scale) and layer.scale > 0):
            raise UserError(f"layer {i} has scale {layer.scale}: the real weights would be {layer.scale} x the "
                            "integers; export needs a positive finite scale (or none, for 1)")
        s = layer.scale if layer.scale else 1.0
        nodes[f"fc{i}"] = _weight_node(layer, s)
        nodes[f"lif{i}"] = _neuron_node(layer, s, dt)
        names += [f"fc{i}", f"lif{i}"]
    nodes["output"] = nir.Output(output_type=np.array(getattr(model.layers[-1], "out_shape", (model.n_outputs,))))
    names.append("output")
    meta = {"source": "mintaccel", "dt": float(dt), "timesteps": model.timesteps,
            "encoding": model.encoding.kind, "levels": model.encoding.levels,
            "readout": "spike_count, ties to the lowest index"}
    try:
        return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata=meta)
    except ValueError as e:  # nir's type check: a mintaccel bug, not the user's
        raise RuntimeError(f"exported NIR graph does not type-check: {e}") from None


def _weight_node(layer, s: float):
    import nir
    w = (layer.weight * s).astype(np.float32)
    if layer.kind == "conv2d":
        bias = np.zeros(layer.out_channels, np.float32) if layer.bias is None else (layer.bias * s).astype(np.float32)
        return nir.Conv2d(input_shape=np.array(layer.in_shape[1:]), weight=w, stride=np.array([layer.stride] * 2),
                          padding=np.array([layer.padding] * 2), dilation=np.array([1, 1]), groups=1, bias=bias)
    if layer.bias is None:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=(layer.bias * s).astype(np.float32))


def _neuron_node(layer, s: float, dt: float):
    import nir
    shape = getattr(layer, "out_shape", (layer.n_out,))
    full = lambda v: np.full(shape, v, np.float32)
    meta = {META + "threshold": layer.threshold, META + "scale": float(s), META + "weight": str(layer.weight_format),
            META + "membrane_bits": layer.membrane_bits, META + "leak": str(layer.leak), META + "reset": layer.reset,
            META + "bias_bits": layer.bias_bits}
    thr = full((layer.threshold - 0.5) * s)
    if layer.leak.kind == "none":
        return nir.IF(r=full(1.0 / dt), v_threshold=thr, v_reset=full(0.0), metadata=meta)
    tau = dt / (1.0 - _beta_of(layer.leak))
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=thr, v_reset=full(0.0),
                   metadata=meta)


def write_nir(model: IntModel, path: str | Path, dt: float = DEFAULT_DT) -> None:
    """Write the NIR graph of `model` to `path` (HDF5), whole or not at all."""
    import nir
    graph = to_nir(model, dt)
    with atomic_open(path, "w+b") as f:
        nir.write(f, graph)
