"""From a NIR graph to the float network: one handler per node type (as hls4ml's converters do).

The chain is walked once with the current map shape: a weight node (Affine, Linear, Conv2d) opens a neuron
layer that the next node (LIF, IF, CubaLIF, LI, I) closes; SumPool2d, AvgPool2d and Flatten stand alone.
An AvgPool2d's 1/K^2 is carried to the next neuron layer's weights (docs/import.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mintaccel.core.conv import KERNEL_SIZES, POOL_SIZES, STRIDES
from mintaccel.core.errors import UserError
from mintaccel.model_export.nir_import.graph import _plain, chain
from mintaccel.model_export.nir_import.net import (DEFAULT_DT, MAP_NODES, META, READOUT_NODES, REL, SPIKING_NODES,
                                                   WEIGHT_NODES, FloatFlatten, FloatLayer, FloatNet, FloatPool)

_REFUSED = {
    "Conv1d": "1-D convolution is not supported (Conv2d is)",
}


@dataclass
class _Walk:
    """State of the walk along the chain."""

    shape: tuple[int, ...] | None
    """Shape of what the next node receives: (C, H, W), (n,), or None before the first layer says."""
    dt: float
    input_name: str
    layers: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    pending: tuple | None = None
    """(name, node) of a weight node waiting for its neurons."""
    gain: float = 1.0
    """Input scaling carried from AvgPool2d nodes to the next neuron layer (1/K^2)."""
    conv: tuple[int, int] = (1, 0)
    """(stride, padding) of the pending Conv2d node."""
    spikes: bool = True
    """Whether the current values are 0/1 (the input or a neuron layer's spikes): a pool's input must be."""


def float_net(graph, dt: float = DEFAULT_DT) -> FloatNet:
    """Check the graph and map it to a float network at step `dt` (see docs/import.md)."""
    import nir
    names = chain(graph)
    body = [n for n in names if not isinstance(graph.nodes[n], (nir.Input, nir.Output))]
    for n in body:
        _check_supported(n, graph.nodes[n])
    if not body:
        raise UserError("the graph holds no layers")
    walk = _Walk(_input_shape(graph.nodes[names[0]]), dt, names[0])
    for name in body:
        node = graph.nodes[name]
        HANDLERS[type(node).__name__](walk, name, node)
    if walk.pending is not None:
        name, node = walk.pending
        raise UserError(f"the graph ends with '{name}' ({type(node).__name__}): the output layer "
                        "must be neurons (LIF, IF, CubaLIF, or an LI/I readout)")
    layers = walk.layers
    if not isinstance(layers[-1], FloatLayer):
        raise UserError(f"the graph ends with '{layers[-1].node}' ({type(graph.nodes[layers[-1].node]).__name__}): "
                        "the output layer must be neurons")
    for layer in layers[:-1]:
        if isinstance(layer, FloatLayer) and not layer.spiking:
            raise UserError(f"node '{layer.neuron_node}' is a {layer.kind}, which does not spike: mintaccel "
                            "supports LI and I only as the output layer")
    _check_output_shape(graph, names, layers[-1])
    meta = _plain(getattr(graph, "metadata", {}) or {})
    return FloatNet(tuple(layers), meta, tuple(walk.notes))


def _check_supported(name: str, node) -> None:
    kind = type(node).__name__
    if kind in _REFUSED:
        raise UserError(f"node '{name}' is a {kind}: {_REFUSED[kind]}")
    if kind not in HANDLERS:
        raise UserError(f"node '{name}' is a {kind}, which mintaccel cannot import "
                        f"(supported: {', '.join(WEIGHT_NODES + SPIKING_NODES + READOUT_NODES + MAP_NODES)})")


def _shape_of(value) -> tuple[int, ...] | None:
    """A NIR type's shape as integers, without a leaked leading batch dimension of 1; None when absent."""
    if value is None or np.size(value) == 0:
        return None
    shape = tuple(int(v) for v in np.asarray(value).reshape(-1))
    while len(shape) > 1 and shape[0] == 1 and (len(shape) > 3 or len(shape) == 2):
        shape = shape[1:]
    return shape


def _input_shape(node) -> tuple[int, ...] | None:
    import nir
    if not isinstance(node, nir.Input):
        return None
    shape = _shape_of((node.input_type or {}).get("input"))
    if shape is not None and len(shape) not in (1, 3):
        raise UserError(f"input node has shape {list(shape)}: mintaccel takes a vector or a (C, H, W) map")
    return shape


def _check_output_shape(graph, names, last) -> None:
    import nir
    node = graph.nodes[names[-1]]
    if not isinstance(node, nir.Output):
        return
    shape = _shape_of((node.output_type or {}).get("output"))
    if shape is not None and int(np.prod(shape)) != last.n_out:
        raise UserError(f"output node '{names[-1]}' has shape {list(shape)} but its layer has {last.n_out} outputs")


def _text(shape) -> str:
    return "x".join(map(str, shape))


# ---------------------------------------------------------------- weight nodes

def _open(walk: _Walk, name: str, node) -> None:
    if walk.pending is not None:
        prev, pnode = walk.pending
        raise UserError(f"node '{prev}' is followed by '{name}': two weight nodes in a row "
                        "(fold them into one, or put neurons between them)")
    walk.pending = (name, node)


def _dense(walk: _Walk, name: str, node) -> None:
    _open(walk, name, node)
    w = _finite(np.asarray(node.weight, np.float64), name, "weight")
    if w.ndim != 2:
        raise UserError(f"node '{name}' has a weight of shape {list(w.shape)}: dense layers need [n_out, n_in]")
    if walk.shape is not None and len(walk.shape) == 3 and walk.layers:
        raise UserError(f"node '{name}' ({type(node).__name__}) follows a {_text(walk.shape)} map: "
                        "put a Flatten node between them")
    if walk.shape is not None and int(np.prod(walk.shape)) != w.shape[1]:
        if not walk.layers:
            raise UserError(f"input node '{walk.input_name}' has shape {list(walk.shape)} but its layer has "
                            f"{w.shape[1]} inputs")
        prev = walk.layers[-1]
        raise UserError(f"node '{name}' takes {w.shape[1]} inputs but "
                        f"'{prev.neuron_node if isinstance(prev, FloatLayer) else prev.node}' gives {prev.n_out}")
    walk.shape = (w.shape[1],)


def _conv2d(walk: _Walk, name: str, node) -> None:
    _open(walk, name, node)
    w = _finite(np.asarray(node.weight, np.float64), name, "weight")
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise UserError(f"node '{name}': Conv2d weight of shape {list(w.shape)}: mintaccel needs square kernels "
                        "[C_out, C_in, K, K]")
    k = w.shape[2]
    if k not in KERNEL_SIZES:
        raise UserError(f"node '{name}': kernel {k} x {k} is outside 1..{KERNEL_SIZES[-1]}")
    if int(np.asarray(node.groups).reshape(-1)[0]) != 1:
        raise UserError(f"node '{name}': grouped convolution (groups = {node.groups}) is not supported")
    if any(int(d) != 1 for d in np.asarray(node.dilation).reshape(-1)):
        raise UserError(f"node '{name}': dilation {_pair_text(node.dilation)} is not supported (only 1)")
    stride = _square(node.stride, name, "stride")
    if stride not in STRIDES:
        raise UserError(f"node '{name}': stride {stride} is not supported (1 or 2)")
    padding = _conv_padding(node.padding, k, stride, name)
    shape = walk.shape
    if shape is None:  # the first layer: its own input shape, or the input node's
        hw = None if node.input_shape is None else tuple(int(v) for v in np.asarray(node.input_shape).reshape(-1))
        if hw is None or len(hw) != 2:
            raise UserError(f"node '{name}': the input map's height and width are unknown (no input shape on "
                            "the Conv2d or the Input node)")
        shape = (w.shape[1], *hw)
    if len(shape) != 3:
        raise UserError(f"node '{name}' (Conv2d) receives a vector of {shape[0]}: a convolution needs a "
                        "(C, H, W) map (give the Input node a 3-D shape)")
    if shape[0] != w.shape[1]:
        raise UserError(f"node '{name}' takes {w.shape[1]} input channels but receives a {_text(shape)} map")
    if k > min(shape[1:]) + 2 * padding:
        raise UserError(f"node '{name}': kernel {k} x {k} is larger than the padded input "
                        f"{shape[1] + 2 * padding} x {shape[2] + 2 * padding}")
    walk.shape = shape
    walk.conv = (stride, padding)


def _square(value, name: str, attr: str) -> int:
    v = [int(x) for x in np.asarray(value).reshape(-1)]
    if not v or len(set(v)) != 1:
        raise UserError(f"node '{name}': {attr} {_pair_text(value)} differs between height and width "
                        "(mintaccel takes square windows, one stride and one padding)")
    return v[0]


def _pair_text(value) -> str:
    return "x".join(str(int(v)) for v in np.asarray(value).reshape(-1))


def _conv_padding(padding, k: int, stride: int, name: str) -> int:
    """Symmetric zero padding 0..K-1; 'valid' is 0, 'same' is (K-1)/2 for odd K at stride 1."""
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SU":
        padding = str(padding.reshape(-1)[0]) if padding.size else ""
    if isinstance(padding, str):
        if padding == "valid":
            return 0
        if padding == "same" and stride == 1 and k % 2 == 1:
            return k // 2
        raise UserError(f"node '{name}': padding {padding!r} with a {k} x {k} kernel at stride {stride} is not "
                        "symmetric: give explicit padding")
    p = _square(padding, name, "padding")
    if not 0 <= p < k:
        raise UserError(f"node '{name}': padding {p} is outside 0..{k - 1} for a {k} x {k} kernel")
    return p


# ---------------------------------------------------------------- neuron nodes

def _neurons(walk: _Walk, name: str, node) -> None:
    kind = type(node).__name__
    if walk.pending is None:
        raise UserError(f"node '{name}' is a {kind} with no Affine, Linear or Conv2d node before it: every neuron "
                        "layer needs its own weights")
    w_name, w_node = walk.pending
    walk.pending = None
    conv = type(w_node).__name__ == "Conv2d"
    w = np.asarray(w_node.weight, np.float64) * walk.gain
    bias = None
    if type(w_node).__name__ != "Linear" and getattr(w_node, "bias", None) is not None:
        b = _finite(np.asarray(w_node.bias, np.float64), w_name, "bias").reshape(-1)
        b = _per_neuron(b, w.shape[0], w_name, "bias")
        bias = None if not b.any() else b
    in_shape, (stride, padding) = (walk.shape, walk.conv) if conv else (None, (1, 0))
    layer = FloatLayer(w_name, name, kind, w, bias, 0.0, in_shape=in_shape, stride=stride, padding=padding)
    channels = w.shape[0]
    p = _neuron_params(name, node, kind, layer.n_out, channels if conv else None, walk.dt)
    walk.notes += p.pop("notes")
    gain, thr = p.pop("gain"), p.pop("threshold")
    scale = gain if thr is None else gain / thr  # normalise to threshold 1
    if conv:
        scale = _per_channel(scale, channels, name, "the input gain over the threshold")
    w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    bias = None if bias is None else bias * scale
    hints = {k[len(META):]: v for k, v in _plain(node.metadata or {}).items() if k.startswith(META)}
    walk.layers.append(FloatLayer(w_name, name, kind, w, bias, hints=hints, in_shape=in_shape, stride=stride,
                                  padding=padding, **p))
    walk.shape = layer.out_shape
    walk.gain, walk.spikes = 1.0, True


def _neuron_params(name: str, node, kind: str, n: int, channels: int | None, dt: float) -> dict:
    """beta, alpha, per-neuron input gain and threshold of one neuron node at step dt."""
    def get(attr):
        v = _finite(np.asarray(getattr(node, attr), np.float64), name, attr).reshape(-1)
        if channels is not None and v.size == channels and channels != n:  # per channel: every position
            v = np.repeat(v, n // channels)
        return _per_neuron(v, n, name, attr)
    notes = []
    for attr in ("v_leak", "v_reset"):
        if hasattr(node, attr) and getattr(node, attr) is not None:
            v = get(attr)
            if np.any(v != 0):
                what = "a resting potential" if attr == "v_leak" else "a reset potential"
                raise UserError(f"node '{name}': {attr} is {_range(v)}, not 0 ({what} other than 0 is not supported)")
    alpha = 0.0
    if kind in ("LIF", "LI"):
        tau = _uniform(get("tau"), name, "tau")
        beta = _decay(tau, dt, name, "tau")
        gain = dt * get("r") / tau
    elif kind in ("IF", "I"):
        beta, gain = 1.0, dt * get("r")
    else:  # CubaLIF
        tau_syn = _uniform(get("tau_syn"), name, "tau_syn")
        alpha = _decay(tau_syn, dt, name, "tau_syn")
        tau = _uniform(get("tau_mem"), name, "tau_mem")
        beta = _decay(tau, dt, name, "tau_mem")
        gain = (1 - alpha) * get("w_in") * dt * get("r") / tau
        if alpha > REL:
            notes.append(f"CubaLIF '{name}': its synaptic filter (alpha = {alpha:.4g} per step) is replaced by its "
                         "DC gain; the integer layer has one state, the membrane")
        else:
            alpha = 0.0
    threshold = None
    if kind in SPIKING_NODES:
        threshold = get("v_threshold")
        if np.any(threshold <= 0):
            raise UserError(f"node '{name}': v_threshold must be positive, found {_range(threshold)}")
    return {"beta": beta, "alpha": alpha, "gain": gain, "threshold": threshold, "notes": notes}


def _decay(tau: float, dt: float, name: str, attr: str) -> float:
    """1 - dt / tau; forward Euler needs tau >= dt."""
    if tau <= 0:
        raise UserError(f"node '{name}': {attr} must be positive, not {tau:g}")
    beta = 1.0 - dt / tau
    if beta < -REL:
        raise UserError(f"node '{name}': {attr} = {tau:g} is shorter than dt = {dt:g}, so forward Euler "
                        "diverges (give a smaller --dt)")
    return max(beta, 0.0)


def _uniform(v: np.ndarray, name: str, attr: str) -> float:
    """The single value of a per-layer parameter; refuses a layer whose neurons differ."""
    lo, hi = float(v.min()), float(v.max())
    if hi - lo > REL * max(abs(lo), abs(hi)):
        raise UserError(f"node '{name}': {attr} differs across the layer ({lo:g}..{hi:g}); "
                        "mintaccel has one leak per layer")
    return float(np.median(v))


def _per_neuron(v: np.ndarray, n: int, name: str, attr: str) -> np.ndarray:
    v = v.reshape(-1)
    if v.size == 1:
        return np.full(n, v[0])
    if v.size != n:
        raise UserError(f"node '{name}': {attr} has {v.size} values for a layer of {n} neurons")
    return v

def _finite(v: np.ndarray, name: str, attr: str) -> np.ndarray:
    """Every parameter must be finite (an infinite tau gives a LIF no input at all: use an IF node)."""
    if not np.all(np.isfinite(v)):
        raise UserError(f"node '{name}': {attr} holds non-finite values")
    return v


def _range(v: np.ndarray) -> str:
    lo, hi = float(v.min()), float(v.max())
    return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"



def _per_channel(v: np.ndarray, channels: int, name: str, what: str) -> np.ndarray:
    """One value per output channel of a per-neuron vector in (C, H, W) order: a conv layer shares its
    weights across positions, so what is folded into them must not vary within a channel."""
    rows = v.reshape(channels, -1)
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    if np.any(hi - lo > REL * np.maximum(np.abs(lo), np.abs(hi))):
        c = int(np.argmax(hi - lo))
        raise UserError(f"node '{name}': {what} varies across the positions of channel {c} ({lo[c]:g}..{hi[c]:g}); "
                        "a convolution shares its weights, so it must be one value per channel")
    return rows[:, 0].copy()


# ---------------------------------------------------------------- pooling and flatten

def _pool(walk: _Walk, name: str, node) -> None:
    kind = type(node).__name__
    if walk.pending is not None:
        raise UserError(f"node '{name}' ({kind}) sits between '{walk.pending[0]}' and its neurons: "
                        "pooling takes spikes")
    if walk.shape is None or len(walk.shape) != 3:
        what = "an unknown shape" if walk.shape is None else f"a vector of {walk.shape[0]}"
        raise UserError(f"node '{name}' ({kind}) receives {what}: pooling needs a (C, H, W) map")
    if not walk.spikes:
        raise UserError(f"node '{name}' ({kind}) follows a pool: a pool's input must be spikes (0/1)")
    k = _square(node.kernel_size, name, "kernel_size")
    stride = _square(node.stride, name, "stride") if np.size(node.stride) else k
    if any(int(p) != 0 for p in np.asarray(node.padding).reshape(-1)):
        raise UserError(f"node '{name}' ({kind}): padding {_pair_text(node.padding)} is not supported "
                        "(pooling without padding only)")
    for attr, v in (("kernel_size", k), ("stride", stride)):
        if v not in POOL_SIZES:
            raise UserError(f"node '{name}' ({kind}): {attr} {v} is outside 1..{POOL_SIZES[-1]}")
    if k > min(walk.shape[1:]):
        raise UserError(f"node '{name}' ({kind}): window {k} x {k} is larger than its input {_text(walk.shape[1:])}")
    pool = FloatPool(name, kind, walk.shape, k, stride)
    walk.layers.append(pool)
    walk.shape, walk.spikes = pool.out_shape, False
    if kind == "AvgPool2d":
        walk.gain /= k * k


def _flatten(walk: _Walk, name: str, node) -> None:
    if walk.pending is not None:
        raise UserError(f"node '{name}' (Flatten) sits between '{walk.pending[0]}' and its neurons")
    shape = walk.shape or _shape_of((node.input_type or {}).get("input"))
    if shape is None:
        raise UserError(f"node '{name}' (Flatten): the shape of its input is unknown")
    out = _shape_of((node.output_type or {}).get("output")) if getattr(node, "output_type", None) else None
    if out is not None and len(out) != 1:
        raise UserError(f"node '{name}' flattens {_text(shape)} to {_text(out)}: only a flatten to a vector "
                        "is supported")
    if len(shape) == 1:  # already flat: nothing to do
        return
    walk.layers.append(FloatFlatten(name, shape))
    walk.shape = (int(np.prod(shape)),)


HANDLERS = {"Affine": _dense, "Linear": _dense, "Conv2d": _conv2d,
            **{k: _neurons for k in SPIKING_NODES + READOUT_NODES},
            "SumPool2d": _pool, "AvgPool2d": _pool, "Flatten": _flatten}
