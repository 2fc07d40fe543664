"""Import NIR graphs (and so snnTorch networks) into the integer model: docs/import.md.

Three steps, each a function:

1. `read_graph` + `float_net`: read a NIR file (HDF5), check that it is a chain of dense layers
   (Affine/Linear, then LIF/IF/LI/I/CubaLIF), refuse anything else naming the node, and turn the
   continuous-time parameters into one discrete-time float network at an explicit `dt` (forward Euler,
   which is what snnTorch computes). Input gains and per-neuron thresholds are folded into the weights,
   so every spiking layer has threshold 1 in its own units.
2. `quantize`: map that float network onto docs/arithmetic.md with one scale `s` per layer (MINT):
   integer weight = the format's rounding of w / s, integer threshold = floor(1 / s) + 1 (the strict
   `v > thr` of NIR and snnTorch), beta -> the nearest leak shift.
3. `calibrate` (optional): a small deterministic search over the per-layer scales that maximises
   accuracy on calibration data; `finetune` (optional): QAT from the imported weights and scales.

`simulate` runs the float network exactly as NIR/snnTorch define it, for the accuracy comparison.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mintaccel.core.errors import UserError
from mintaccel.core.model import (
    MEMBRANE_BITS, RESETS, THRESHOLD_MAX, TIMESTEPS_MAX, BIAS_BITS, DenseLayer, Encoding, IntModel, Leak, ModelError,
    WeightFormat, narrow_max)

#: snnTorch's exporter writes tau = dt / (1 - beta) with this dt, without recording it.
DEFAULT_DT = 1e-4
DEFAULT_WEIGHTS = "uniform:4"
DEFAULT_MEMBRANE = 4
DEFAULT_BIAS_BITS = 8
DEFAULT_TIMESTEPS = 8
WEIGHT_NODES = ("Affine", "Linear")
SPIKING_NODES = ("LIF", "IF", "CubaLIF")
READOUT_NODES = ("LI", "I")
#: Prefix of the per-node metadata that `nir_export` writes, so a round trip is exact.
META = "mintaccel_"
_REFUSED = {
    "Conv1d": "convolution is not supported yet (dense Affine/Linear layers only)",
    "Conv2d": "convolution is not supported yet (dense Affine/Linear layers only)",
    "Flatten": "Flatten is refused until convolution is supported (give a flat input and dense layers)",
    "SumPool2d": "pooling is not supported yet (dense Affine/Linear layers only)",
    "AvgPool2d": "pooling is not supported yet (dense Affine/Linear layers only)",
}
_REL = 1e-6  # relative tolerance for "equal" float parameters (float32 storage noise)


# ---------------------------------------------------------------- reading

def read_graph(path: str | Path):
    """Read a NIR file without nir's type check (we check, with messages naming the node)."""
    import h5py
    import nir
    from nir.serialization import hdf2dict
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such NIR file")
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("node"), h5py.Group):
                raise UserError(f"{path}: not a NIR file (no 'node' group)")
            data = hdf2dict(f["node"])
    except OSError as e:
        raise UserError(f"{path}: not a NIR file (not readable as HDF5: {e})") from None
    if data.get("type") != "NIRGraph" or not isinstance(data.get("nodes"), dict) or "edges" not in data:
        raise UserError(f"{path}: not a NIR graph (the root node is not a NIRGraph)")
    _prepare_nodes(data["nodes"])
    data["type_check"] = False
    try:
        return nir.dict2NIRNode(data)
    except (AssertionError, KeyError, TypeError, ValueError, IndexError) as e:
        raise UserError(f"{path}: damaged NIR graph ({type(e).__name__}: {e})") from None


def _prepare_nodes(nodes: dict) -> None:
    """Refuse unknown and nested nodes before nir builds them; let Input/Output lack a shape."""
    import nir
    known = set(nir.ir.__all__)
    for name, node in nodes.items():
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "NIRGraph":
            raise UserError(f"node '{name}' is a nested NIRGraph (snnTorch writes recurrent RLeaky/RSynaptic "
                            "layers this way): recurrent and nested graphs are not supported")
        if kind not in known:
            raise UserError(f"node '{name}' has type {kind!r}, which nir {nir.__version__} does not know")
        if kind in ("Input", "Output"):
            node.setdefault("shape", None)  # inferred from the neighbouring layer


def chain(graph) -> list[str]:
    """Names of the nodes from the input to the output; refuses anything but a single chain."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                raise UserError(f"edge '{a}' -> '{b}' names node '{n}', which the graph does not hold")
        succ[a].append(b)
        pred[b].append(a)
    _refuse_cycles(nodes, succ)
    import nir
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)] or [k for k in nodes if not pred[k]]
    if len(inputs) != 1:
        raise UserError(f"the graph has {len(inputs)} inputs ({', '.join(map(repr, inputs))}): "
                        "mintaccel imports single-input chains")
    order, cur = [inputs[0]], inputs[0]
    while succ[cur]:
        if len(succ[cur]) > 1:
            raise UserError(f"node '{cur}' feeds {len(succ[cur])} nodes: only chains of layers are supported")
        cur = succ[cur][0]
        if len(pred[cur]) > 1:
            raise UserError(f"node '{cur}' has {len(pred[cur])} inputs: only chains of layers are supported")
        order.append(cur)
    stray = [k for k in nodes if k not in order]
    if stray:
        raise UserError(f"node '{stray[0]}' is not on the path from the input to the output")
    return order


def _refuse_cycles(nodes: dict, succ: dict) -> None:
    state = {}  # 1 on the DFS stack, 2 done

    def visit(n):
        state[n] = 1
        for m in succ[n]:
            if state.get(m) == 1:
                raise UserError(f"recurrent edge '{n}' -> '{m}': recurrent networks are not supported")
            if m not in state:
                visit(m)
        state[n] = 2

    for n in nodes:
        if n not in state:
            visit(n)


# ---------------------------------------------------------------- the float network

@dataclass(frozen=True)
class FloatLayer:
    """One dense layer of the graph as a discrete-time network at step dt (forward Euler).

    Spiking layers are normalised to threshold 1: each neuron's row of weights and its bias are
    divided by its NIR threshold (exact: between spikes the dynamics are linear and the reset goes to 0).
    """

    weight_node: str
    neuron_node: str
    kind: str
    """NIR type of the neuron node: LIF, IF, CubaLIF (spiking) or LI, I (non-spiking readout)."""
    weight: np.ndarray = field(repr=False)
    """[n_out, n_in] input per time step, input gains folded in (float64)."""
    bias: np.ndarray | None = field(repr=False)
    beta: float
    """Membrane decay per step, 1 - dt / tau (1 for IF and I)."""
    alpha: float = 0.0
    """Synaptic-current decay per step, 1 - dt / tau_syn (CubaLIF); 0 means no synaptic filter."""
    hints: dict = field(default_factory=dict, compare=False)
    """mintaccel metadata of the neuron node (from `nir_export`), if any."""

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING_NODES

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    def dc_weight(self) -> np.ndarray:
        """Weights with the synaptic filter replaced by its DC gain 1 / (1 - alpha) (what we quantize)."""
        return self.weight / (1 - self.alpha)

    def dc_bias(self) -> np.ndarray | None:
        return None if self.bias is None else self.bias / (1 - self.alpha)


@dataclass(frozen=True)
class FloatNet:
    layers: tuple[FloatLayer, ...]
    meta: dict = field(default_factory=dict, compare=False)
    """Graph metadata (mintaccel's exports record timesteps, encoding and dt)."""
    notes: tuple[str, ...] = ()
    """Where the import is approximate (reported to the user)."""

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out


def float_net(graph, dt: float = DEFAULT_DT) -> FloatNet:
    """Check the graph and map it to a float network at step `dt` (see docs/import.md)."""
    import nir
    names = chain(graph)
    body = [n for n in names if not isinstance(graph.nodes[n], (nir.Input, nir.Output))]
    for n in body:
        _check_supported(n, graph.nodes[n])
    if not body:
        raise UserError("the graph holds no layers")
    layers, notes = [], []
    for i in range(0, len(body), 2):
        w_name = body[i]
        n_name = body[i + 1] if i + 1 < len(body) else None
        _check_pair(w_name, graph.nodes[w_name], n_name, graph.nodes.get(n_name))
        layer, note = _layer(w_name, graph.nodes[w_name], n_name, graph.nodes[n_name], dt)
        if layers and layers[-1].n_out != layer.n_in:
            raise UserError(f"node '{w_name}' takes {layer.n_in} inputs but '{layers[-1].neuron_node}' "
                            f"has {layers[-1].n_out} neurons")
        layers.append(layer)
        notes += note
    for layer in layers[:-1]:
        if not layer.spiking:
            raise UserError(f"node '{layer.neuron_node}' is a {layer.kind}, which does not spike: mintaccel "
                            "supports LI and I only as the output layer")
    _check_io_shapes(graph, names, layers)
    meta = _plain(getattr(graph, "metadata", {}) or {})
    return FloatNet(tuple(layers), meta, tuple(notes))


def _check_supported(name: str, node) -> None:
    kind = type(node).__name__
    if kind in _REFUSED:
        raise UserError(f"node '{name}' is a {kind}: {_REFUSED[kind]}")
    if kind not in WEIGHT_NODES + SPIKING_NODES + READOUT_NODES:
        raise UserError(f"node '{name}' is a {kind}, which mintaccel cannot import "
                        f"(supported: {', '.join(WEIGHT_NODES + SPIKING_NODES + READOUT_NODES)})")


def _check_pair(w_name, w_node, n_name, n_node) -> None:
    if type(w_node).__name__ not in WEIGHT_NODES:
        raise UserError(f"node '{w_name}' is a {type(w_node).__name__} with no Affine or Linear node "
                        "before it: every neuron layer needs its own weights")
    if n_node is None:
        raise UserError(f"the graph ends with '{w_name}' ({type(w_node).__name__}): the output layer "
                        "must be neurons (LIF, IF, CubaLIF, or an LI/I readout)")
    if type(n_node).__name__ in WEIGHT_NODES:
        raise UserError(f"node '{w_name}' is followed by '{n_name}': two weight nodes in a row "
                        "(fold them into one, or put neurons between them)")


def _layer(w_name, w_node, n_name, n_node, dt: float) -> tuple[FloatLayer, list[str]]:
    w = _finite(np.asarray(w_node.weight, np.float64), w_name, "weight")
    if w.ndim != 2:
        raise UserError(f"node '{w_name}' has a weight of shape {list(w.shape)}: dense layers need [n_out, n_in]")
    bias = None
    if type(w_node).__name__ == "Affine":
        b = _finite(np.asarray(w_node.bias, np.float64), w_name, "bias")
        b = _per_neuron(b, w.shape[0], w_name, "bias")
        bias = None if not b.any() else b
    kind = type(n_node).__name__
    p = _neuron_params(n_name, n_node, kind, w.shape[0], dt)
    notes = list(p.pop("notes"))
    gain, thr = p.pop("gain"), p.pop("threshold")
    w = w * gain[:, None]
    bias = None if bias is None else bias * gain
    if thr is not None:  # normalise to threshold 1
        w = w / thr[:, None]
        bias = None if bias is None else bias / thr
    hints = {k[len(META):]: v for k, v in _plain(n_node.metadata or {}).items() if k.startswith(META)}
    return FloatLayer(w_name, n_name, kind, w, bias, hints=hints, **p), notes


def _neuron_params(name: str, node, kind: str, n: int, dt: float) -> dict:
    """beta, alpha, per-neuron input gain and threshold of one neuron node at step dt."""
    get = lambda attr: _per_neuron(_finite(np.asarray(getattr(node, attr), np.float64), name, attr), n, name, attr)
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
        if alpha > _REL:
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
    if beta < -_REL:
        raise UserError(f"node '{name}': {attr} = {tau:g} is shorter than dt = {dt:g}, so forward Euler "
                        "diverges (give a smaller --dt)")
    return max(beta, 0.0)


def _uniform(v: np.ndarray, name: str, attr: str) -> float:
    """The single value of a per-layer parameter; refuses a layer whose neurons differ."""
    lo, hi = float(v.min()), float(v.max())
    if hi - lo > _REL * max(abs(lo), abs(hi)):
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


def _check_io_shapes(graph, names: list[str], layers: list[FloatLayer]) -> None:
    """Input/Output types, where present, must hold as many values as the layers they touch."""
    import nir
    first, last = graph.nodes[names[0]], graph.nodes[names[-1]]
    for node, name, want, key, what in ((first, names[0], layers[0].n_in, "input_type", "input"),
                                        (last, names[-1], layers[-1].n_out, "output_type", "output")):
        if not isinstance(node, (nir.Input, nir.Output)):
            continue
        shape = (getattr(node, key) or {}).get(key.split("_")[0])
        if shape is None or np.size(shape) == 0:
            continue  # missing: inferred from the neighbouring layer
        if int(np.prod(shape)) != want:  # a leaked batch dimension of 1 is harmless
            raise UserError(f"{what} node '{name}' has shape {list(np.asarray(shape).tolist())} "
                            f"but its layer has {want} {what}s")


def _plain(d: dict) -> dict:
    """Metadata as plain Python values (h5py gives numpy scalars and bytes)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _plain(v)
        elif isinstance(v, bytes):
            out[k] = v.decode("utf8", "replace")
        elif isinstance(v, np.ndarray) and v.ndim == 0 or isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------- float simulation

def simulate(net: FloatNet, spikes: np.ndarray, reset: str = "hard") -> np.ndarray:
    """Run the float network on spikes [batch, T, n_in]; returns the readout [batch, n_out].

    Spiking output: spike counts. LI/I output: the membrane summed over the T steps.
    `reset`: `hard` is NIR's reset to 0 (snnTorch `zero`); `soft` is snnTorch's `subtract`, which
    subtracts the threshold from the *next* step's membrane after the leak (mem = beta*mem + I - s*thr).
    """
    x = np.asarray(spikes, np.float64)
    batch, steps = x.shape[0], x.shape[1]
    v = [np.zeros((batch, l.n_out)) for l in net.layers]
    syn = [np.zeros((batch, l.n_out)) for l in net.layers]
    fired = [np.zeros((batch, l.n_out), bool) for l in net.layers]
    out = np.zeros((batch, net.n_outputs))
    for t in range(steps):
        s = x[:, t]
        for i, layer in enumerate(net.layers):
            cur = s @ layer.weight.T + (0 if layer.bias is None else layer.bias)
            if layer.alpha:
                syn[i] = layer.alpha * syn[i] + cur
                cur = syn[i]
            if not layer.spiking:
                v[i] = layer.beta * v[i] + cur
                s = v[i]
                continue
            if reset == "hard":
                v[i] = layer.beta * np.where(fired[i], 0.0, v[i]) + cur
            else:
                v[i] = layer.beta * v[i] + cur - fired[i]
            fired[i] = v[i] > 1.0
            s = fired[i].astype(np.float64)
        out += s
    return out


# ---------------------------------------------------------------- quantization

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
            if abs(realised - layer.beta) <= _REL:
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
    n = len(net.layers)
    for what, given in (("--weights", weights), ("--membrane", membrane)):
        if given is not None and len(given) not in (1, n):
            raise UserError(f"{what} has {len(given)} entries for {n} layers (give 1 or {n})")
    out = []
    for i, layer in enumerate(net.layers):
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
    """The integer model for given per-layer formats and choices (docs/import.md)."""
    layers = []
    for i, (layer, fmt, ch) in enumerate(zip(net.layers, formats, choices)):
        bias = None
        if layer.bias is not None:
            q = narrow_max(fmt.bias_bits)
            bias = np.clip(np.round(layer.dc_bias() / ch.scale), -q, q).astype(np.int64)
        try:
            layers.append(DenseLayer(
                weight=quantize_weights(layer.dc_weight(), ch.scale, fmt.weights), weight_format=fmt.weights,
                membrane_bits=fmt.membrane_bits, threshold=ch.threshold,
                reset=reset if layer.spiking else "soft", leak=_leak_of(layer)[0],
                bias=bias, bias_bits=fmt.bias_bits if bias is not None else 0, scale=float(ch.scale)))
        except ModelError as e:  # e.g. weights so small against the threshold that theta > 2^20
            raise UserError(f"layer {i} ('{layer.neuron_node}'): {e}") from None
    return IntModel(tuple(layers), timesteps, encoding, meta or {})


def data_free_choices(net: FloatNet, formats: list[LayerFormat]) -> list[Choice]:
    """Scales without data: the scale mintaccel exported the graph with, else the weight-MSE-optimal one.

    (Measured on a digits net: flooring the scale so that theta <= Q(m) + 1 fits the membrane was worse
    than plain MSE at 2 and 3 bits, a little better at 4 and 8; calibration settles it with data.)"""
    out = []
    for layer, fmt in zip(net.layers, formats):
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


def candidates(layer: FloatLayer, start: Choice, steps: int = 8) -> list[Choice]:
    """Scales around `start` on a quarter-octave grid, nearest first (so ties keep the nearer one)."""
    out = []
    for i in sorted(range(-steps, steps + 1), key=lambda i: (abs(i), i)):
        s = start.scale * 2.0 ** (i / 4)
        if layer.spiking:
            theta = spiking_threshold(s)
            if theta <= THRESHOLD_MAX:
                out.append(Choice(s, theta))
        else:
            out.append(Choice(s, start.threshold))
    return out


@dataclass(frozen=True)
class Calibration:
    spikes: np.ndarray = field(repr=False)
    """Encoded calibration inputs uint8 [n, T, inputs]."""
    labels: np.ndarray = field(repr=False)
    float_predictions: np.ndarray = field(repr=False)
    description: str = ""


def calibrate(net: FloatNet, start: list[Choice], data: Calibration, build,
              passes: int = 2) -> tuple[list[Choice], tuple[float, float]]:
    """Coordinate search over the per-layer scales: keep a candidate only if it raises (accuracy on the
    calibration data, agreement with the float network). Deterministic: fixed candidate order."""
    from mintaccel.sim.reference import run_batched

    def score(choices):
        pred = run_batched(build(choices), data.spikes).predictions
        return float((pred == data.labels).mean()), float((pred == data.float_predictions).mean())

    choices, best = list(start), score(start)
    for _ in range(passes):
        changed = False
        for l, layer in enumerate(net.layers):
            for c in candidates(layer, choices[l]):
                trial = choices[:l] + [c] + choices[l + 1:]
                s = score(trial)
                if s > best:
                    choices, best, changed = trial, s, True
        if not changed:
            break
    return choices, best


# ---------------------------------------------------------------- fine-tuning (QAT)

def finetune(net: FloatNet, formats: list[LayerFormat], choices: list[Choice], model: IntModel, split,
             epochs: int, lr: float = 1e-3, batch_size: int = 64, seed: int = 0, threads: int = 1,
             progress=None):
    """QAT from the imported weights and scales (model_export.qat); returns the exported IntModel.

    The QuantSNN starts as the imported integer model: the same weights, scales, integer thresholds
    (its real threshold is set to theta * s), leaks and resets per layer.
    """
    import torch
    from mintaccel.model_export.qat import LayerSpec, QuantSNN, TrainConfig
    from mintaccel.model_export.train import encoded, fit, predict
    from mintaccel.sim.reference import run_batched
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = TrainConfig(
        dataset=split.name, hidden=tuple(l.n_out for l in net.layers[:-1]),
        layers=tuple(LayerSpec(str(f.weights), str(f.membrane_bits)) for f in formats),
        timesteps=model.timesteps, reset="hard", leak=str(model.layers[0].leak),
        bias=any(l.bias is not None for l in net.layers), bias_bits=max(f.bias_bits for f in formats),
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=threads)
    qnet = QuantSNN([net.n_inputs] + [l.n_out for l in net.layers], cfg)
    for qlayer, layer, fmt, ch, ilayer in zip(qnet.layers, net.layers, formats, choices, model.layers):
        _init_quant_layer(qlayer, layer, fmt, ch, ilayer)
    xtr, xte = encoded(split, model.timesteps)
    fit(qnet, xtr, torch.from_numpy(split.y_train), cfg, progress)
    out = qnet.to_int_model(model.encoding, dict(model.meta))
    if not np.array_equal(run_batched(out, xte.numpy().astype(np.uint8)).predictions, predict(qnet, xte)):
        raise RuntimeError("fine-tuned integer model disagrees with the torch eval model (a mintaccel bug)")
    return out


def _init_quant_layer(qlayer, layer: FloatLayer, fmt: LayerFormat, ch: Choice, ilayer: DenseLayer) -> None:
    import torch
    with torch.no_grad():
        qlayer.linear.weight.copy_(torch.from_numpy(layer.dc_weight()).float())
        if layer.bias is None:
            qlayer.linear.register_parameter("bias", None)
            qlayer.bias_bits = 0
        else:
            qlayer.linear.bias.copy_(torch.from_numpy(layer.dc_bias()).float())
            qlayer.bias_bits = fmt.bias_bits
        qlayer.scale.fill_(ch.scale)
    qlayer.threshold_real = ch.threshold * ch.scale
    qlayer.leak = ilayer.leak
    qlayer.reset = ilayer.reset


# ---------------------------------------------------------------- the whole import

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
            "nodes": [[l.weight_node, l.neuron_node] for l in net.layers]}

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
    leaks = tuple((l.beta, _leak_of(l)[1]) for l in net.layers)
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
    for i, (layer, fmt, ilayer) in enumerate(zip(net.layers, formats, model.layers)):
        leak, realised = _leak_of(layer)
        if abs(realised - layer.beta) > _REL:
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
    if reset == "soft" and any(l.spiking and l.beta < 1 for l in net.layers):
        notes.append("soft reset: mintaccel subtracts the threshold before the leak, snnTorch after it "
                     "(the membrane differs by (1 - beta) * threshold after each spike)")
    return notes
