"""Seeded random networks, input spikes and host stall patterns for the accelerator regression.

`case(seed, cfg)` is a pure function of the seed: the runner (pytest, `mintaccel regress`) and the
cocotb bench both call it, so a failing network is rebuilt from its seed alone. A case carries the
features it exercises (`features`), which the regression sums into a coverage table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mintaccel.core.model import LEAKS, MEMBRANE_BITS, RESETS, DenseLayer, IntModel, Leak, WeightFormat, narrow_max

FORMATS = WeightFormat.every()
LEAK_KS = (1, 1, 2, 3, 4, 7, 15)
#: Per-layer weight modes: random levels, or every weight at +w_max / -w_max (saturation corners).
MODES = ("random", "random", "random", "random", "all_max", "all_min")
#: Input patterns of one sample.
PATTERNS = ("random", "sparse", "dense", "zeros", "ones")
#: Host behaviour: probability of a valid gap on spikes_in / of a ready stall on spikes_out per cycle.
STALLS = {"none": (0.0, 0.0), "light": (0.15, 0.15), "heavy": (0.6, 0.6), "input_only": (0.4, 0.0),
          "output_only": (0.0, 0.6)}

#: Everything the fast subset must have covered (tests/cocotb/test_accelerator.py asserts it).
REQUIRED_FEATURES = (
    tuple(f"weights {f}" for f in FORMATS) + tuple(f"membrane {m}-bit" for m in MEMBRANE_BITS)
    + ("reset hard", "reset soft", "leak none", "leak shift", "leak decay", "bias", "no bias",
       "input random", "input sparse", "input dense", "input zeros", "input ones", "padding garbage",
       "stall spikes_in", "stall spikes_out", "threshold max", "threshold 1", "layers 1", "layers 2",
       "layers 3", "layer max size", "weights all +max", "weights all -max")
)


@dataclass
class Case:
    seed: int
    model: IntModel
    inputs: np.ndarray
    """uint8 [samples, T, n_in]: the input spikes (the reference model's input)."""
    words: list
    """Per sample, the spikes_in words in order (padding bits may carry garbage)."""
    stall: str
    """A key of STALLS."""
    features: set = field(default_factory=set)

    def describe(self) -> str:
        parts = []
        for i, l in enumerate(self.model.layers):
            if not hasattr(l, "weight"):  # a pool or a flatten
                parts.append(f"L{i} {l.kind} {l.n_in}->{l.n_out}" + (f" {l.op} k{l.kernel} s{l.stride}" if l.kind == "pool" else ""))
                continue
            geometry = f" k{l.kernel} s{l.stride} p{l.padding}" if l.kind == "conv2d" else ""
            parts.append(f"L{i} {l.kind}{geometry} {l.n_in}->{l.n_out} {l.weight_format} m{l.membrane_bits} "
                         f"thr {l.threshold} {l.reset} leak {l.leak}" + (f" bias{l.bias_bits}" if l.bias is not None else ""))
        return f"T={self.model.timesteps} stall={self.stall}; " + "; ".join(parts)


def _formats_for(cfg) -> list[WeightFormat]:
    return [f for f in FORMATS if f.bits <= cfg.weight_bits]


def _layer(rng, cfg, n_in: int, n_out: int, features: set) -> DenseLayer:
    fmt = _formats_for(cfg)[rng.integers(len(_formats_for(cfg)))]
    mbits = int(rng.choice([m for m in MEMBRANE_BITS if m <= cfg.membrane_bits]))
    mode = str(rng.choice(MODES))
    if mode == "all_max":
        weight = np.full((n_out, n_in), fmt.max_magnitude)
        features.add("weights all +max")
    elif mode == "all_min":
        weight = np.full((n_out, n_in), -fmt.max_magnitude)
        features.add("weights all -max")
    else:
        weight = rng.choice(fmt.levels(), size=(n_out, n_in))
    bias_bits, bias = 0, None
    if cfg.bias_bits and rng.random() < 0.4:
        bias_bits = int(rng.integers(2, cfg.bias_bits + 1))
        q = narrow_max(bias_bits)
        bias = rng.integers(-q, q + 1, size=n_out) if rng.random() < 0.8 else np.full(n_out, int(rng.choice([-q, q])))
    # thresholds around the typical |input|, plus the corners 1 and the largest the build takes
    limit = min(cfg.threshold_max, 2**20)
    r = rng.random()
    if r < 0.08:
        threshold = 1
        features.add("threshold 1")
    elif r < 0.14:
        threshold = limit
        features.add("threshold max")
    else:
        typical = max(2, int(fmt.max_magnitude * np.sqrt(n_in) * 1.5) + narrow_max(mbits))
        threshold = int(rng.integers(1, min(limit, typical) + 1))
    kind = str(rng.choice(LEAKS))
    leak = Leak(kind, 0 if kind == "none" else int(rng.choice(LEAK_KS)))
    reset = str(rng.choice(RESETS))
    features.update({f"weights {fmt}", f"membrane {mbits}-bit", f"reset {reset}", f"leak {kind}",
                     "bias" if bias is not None else "no bias"})
    return DenseLayer(weight=weight, weight_format=fmt, membrane_bits=mbits, threshold=threshold, reset=reset,
                      leak=leak, bias=bias, bias_bits=bias_bits)


def _pattern(rng, name: str, t: int, n: int) -> np.ndarray:
    if name == "zeros":
        return np.zeros((t, n), np.uint8)
    if name == "ones":
        return np.ones((t, n), np.uint8)
    p = {"sparse": rng.uniform(0.0, 0.1), "dense": rng.uniform(0.75, 1.0)}.get(name, rng.uniform(0.1, 0.75))
    return (rng.random((t, n)) < p).astype(np.uint8)


def words_of(x: np.ndarray, n_pe: int, garbage_rng=None) -> list[int]:
    """spikes_in words of one sample [T, n_in]: W per step, bit i of word w = input w*n_pe + i.
    With `garbage_rng`, the padding bits past n_in are random (the encoder must mask them)."""
    t, n = x.shape
    w = -(-n // n_pe)
    out = []
    for step in range(t):
        padded = np.zeros(w * n_pe, np.int64)
        padded[:n] = x[step]
        if garbage_rng is not None and w * n_pe > n:
            padded[n:] = garbage_rng.integers(0, 2, w * n_pe - n)
        for k in range(w):
            out.append(sum(int(b) << i for i, b in enumerate(padded[k * n_pe:(k + 1) * n_pe])))
    return out


def case(seed: int, cfg, samples: int = 3) -> Case:
    """The random network, inputs and stall pattern of `seed` for build `cfg`."""
    rng = np.random.default_rng(seed)
    features: set = set()
    n_layers = int(rng.integers(1, cfg.max_layers + 1))
    features.add(f"layers {n_layers}")
    if rng.random() < 0.15:
        sizes = [cfg.max_inputs] + [cfg.max_neurons] * n_layers
        features.add("layer max size")
    else:
        sizes = [int(rng.integers(1, cfg.max_inputs + 1))]
        sizes += [int(rng.integers(1, min(cfg.max_neurons, cfg.max_inputs) + 1)) for _ in range(n_layers - 1)]
        sizes += [int(rng.integers(1, cfg.max_neurons + 1))]
    layers = tuple(_layer(rng, cfg, a, b, features) for a, b in zip(sizes, sizes[1:]))
    timesteps = cfg.max_timesteps if rng.random() < 0.05 else int(rng.integers(1, min(8, cfg.max_timesteps) + 1))
    if timesteps == cfg.max_timesteps:
        features.add("T max")
    model = IntModel(layers, timesteps)
    xs, words = [], []
    for _ in range(samples):
        name = str(rng.choice(PATTERNS))
        features.add(f"input {name}")
        x = _pattern(rng, name, timesteps, sizes[0])
        garbage = sizes[0] % cfg.n_pe != 0 and rng.random() < 0.3
        if garbage:
            features.add("padding garbage")
        xs.append(x)
        words.append(words_of(x, cfg.n_pe, rng if garbage else None))
    stall = str(rng.choice(list(STALLS), p=[0.4, 0.2, 0.1, 0.15, 0.15]))
    gap, hold = STALLS[stall]
    if gap:
        features.add("stall spikes_in")
    if hold:
        features.add("stall spikes_out")
    return Case(seed, model, np.stack(xs), words, stall, features)


def _fixed(seed, cfg, sizes, timesteps, inputs, stall="none", threshold=None, fmt=WeightFormat("uniform", 3),
           weight=None, bias_bits=0, reset="hard", leak=Leak("shift", 1), membrane_bits=4) -> Case:
    rng = np.random.default_rng(abs(seed) + 1_000_000)
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        w = rng.choice(fmt.levels(), size=(b, a)) if weight is None else np.full((b, a), weight)
        bias = rng.integers(-narrow_max(bias_bits), narrow_max(bias_bits) + 1, size=b) if bias_bits else None
        thr = threshold if threshold is not None else max(1, int(fmt.max_magnitude * np.sqrt(a)))
        layers.append(DenseLayer(weight=w, weight_format=fmt, membrane_bits=membrane_bits, threshold=thr,
                                 reset=reset, leak=leak, bias=bias, bias_bits=bias_bits))
    model = IntModel(tuple(layers), timesteps)
    x = np.stack([_pattern(rng, p, timesteps, sizes[0]) for p in inputs])
    return Case(seed, model, x, [words_of(s, cfg.n_pe) for s in x], stall, {"corner"})


def corner_cases(cfg) -> list[Case]:
    """Controller corners: the smallest network, no events at all (E = 0 in every phase), every input
    and neuron active on the largest network, group and word boundaries (n = n_pe, n_pe + 1), the
    longest T, silent layers feeding biased ones, back-to-back runs under heavy back-pressure.
    Seeds are negative so they never collide with the random networks'."""
    n, mi, mn, tmax = cfg.n_pe, cfg.max_inputs, cfg.max_neurons, cfg.max_timesteps
    L = min(3, cfg.max_layers)
    return [
        _fixed(-1, cfg, (1, 1), 1, ["ones", "zeros", "ones"]),
        _fixed(-2, cfg, (mi,) + (mn,) * L, 2, ["zeros", "zeros"]),
        _fixed(-3, cfg, (mi,) + (mn,) * L, 2, ["ones"], threshold=1, weight=1, reset="soft"),
        _fixed(-4, cfg, (n, n, n + 1), 3, ["ones", "random", "dense"], threshold=2),
        _fixed(-5, cfg, (n + 1, n + 1, n), 3, ["ones", "sparse"], threshold=1, fmt=WeightFormat("binary", 1)),
        _fixed(-6, cfg, (3, 5), tmax, ["random", "ones"], leak=Leak("decay", 2)),
        _fixed(-7, cfg, (7, 6, 9), 4, ["ones", "ones"], threshold=cfg.threshold_max if cfg.threshold_max <= 2**20 else 2**20,
               weight=1, bias_bits=min(4, cfg.bias_bits) if cfg.bias_bits >= 2 else 0),
        _fixed(-8, cfg, (mi, mn), 3, ["dense", "ones", "random"], stall="heavy", threshold=3),
        _fixed(-9, cfg, (2 * n + 1, n - 1 if n > 1 else 1, 2 * n), 5, ["random", "random"], stall="light",
               fmt=WeightFormat("pot", 3 if cfg.weight_bits >= 3 else 2), reset="soft", leak=Leak("none")),
    ]


# ---------------------------------------------------------------- conv networks

def conv_network(rng, cfg=None, features: set | None = None) -> IntModel:
    """A random small conv network: the chain (pool first, flatten first, conv last, dense head),
    kernel, stride, padding, pool op / window / stride (overlapping too), channels (some past n_pe),
    formats, membranes, resets, leaks and biases drawn from `rng`; within `cfg`'s widths when given."""
    from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer
    feats = features if features is not None else set()
    formats = FORMATS if cfg is None else _formats_for(cfg)
    mbits = MEMBRANE_BITS if cfg is None else [m for m in MEMBRANE_BITS if m <= cfg.membrane_bits]
    bias_max = 4 if cfg is None else min(4, cfg.bias_bits)

    def neuron_options():
        fmt = formats[rng.integers(len(formats))]
        kind = str(rng.choice(LEAKS))
        bias_bits = int(rng.choice([0, bias_max])) if bias_max >= 2 else 0
        feats.update({f"weights {fmt}", "bias" if bias_bits else "no bias", f"leak {kind}"})
        return (fmt, int(rng.choice(mbits)), int(rng.integers(1, 4)), str(rng.choice(RESETS)),
                Leak(kind, 0 if kind == "none" else int(rng.choice(LEAK_KS[:4]))), bias_bits)

    def conv(shape):
        fmt, m, thr, reset, leak, bias_bits = neuron_options()
        k = int(rng.integers(1, min(4, min(shape[1:]) + 1)))
        c_out = int(rng.integers(1, 12))
        stride, padding = int(rng.choice([1, 2])), int(rng.integers(0, k))
        feats.update({f"conv k{k}", f"stride {stride}", "padding" if padding else "no padding"})
        if c_out > (cfg.n_pe if cfg else 8):
            feats.add("channels past n_pe")
        bias = rng.integers(-narrow_max(bias_bits), narrow_max(bias_bits) + 1, size=c_out) if bias_bits else None
        return Conv2dLayer(rng.choice(fmt.levels(), size=(c_out, shape[0], k, k)), fmt, m, thr, reset, leak,
                           bias, bias_bits, in_shape=shape, stride=stride, padding=padding)

    def pool(shape):
        k = int(rng.integers(1, min(3, min(shape[1:])) + 1))
        op, stride = str(rng.choice(["max", "sum"])), int(rng.integers(1, k + 1))
        feats.update({f"pool {op}", "pool overlapping" if stride < k else "pool tiled"})
        return PoolLayer(op, shape, k, stride)

    def dense(n_in, n_out):
        fmt, m, thr, reset, leak, bias_bits = neuron_options()
        bias = rng.integers(-narrow_max(bias_bits), narrow_max(bias_bits) + 1, size=n_out) if bias_bits else None
        return DenseLayer(weight=rng.choice(fmt.levels(), size=(n_out, n_in)), weight_format=fmt, membrane_bits=m,
                          threshold=thr, reset=reset, leak=leak, bias=bias, bias_bits=bias_bits)

    shape = (int(rng.integers(1, 4)), int(rng.integers(3, 7)), int(rng.integers(3, 7)))
    kind = int(rng.integers(4))
    if kind == 0:  # flatten first: a dense network on a map-shaped input
        flat = FlattenLayer(shape)
        feats.add("flatten first")
        return IntModel((flat, dense(flat.n_out, 4)), 3)
    layers = [pool(shape)] if kind == 1 else []
    if kind == 1:
        feats.add("pool first")
    layers.append(conv(layers[-1].out_shape if layers else shape))
    if rng.random() < 0.6:
        layers.append(pool(layers[-1].out_shape))
        layers.append(conv(layers[-1].out_shape))
    if kind == 3:
        feats.add("conv last")
        return IntModel(tuple(layers), 3)
    flat = FlattenLayer(layers[-1].out_shape)
    return IntModel(tuple(layers) + (flat, dense(flat.n_out, 3)), 3)


def conv_case(seed: int, cfg, samples: int = 2) -> Case:
    """A random conv network that fits `cfg` (a build with map buffers), its inputs and stall pattern,
    from `seed` alone (networks that do not fit are redrawn from the same generator)."""
    from mintaccel.core.errors import UserError
    from mintaccel.core.hwconfig import check_fits
    from mintaccel.hw.images import input_words
    rng = np.random.default_rng(seed)
    for _ in range(100):
        features = {"conv network"}
        model = conv_network(rng, cfg, features)
        try:
            check_fits(model, cfg)
            break
        except UserError:
            continue
    else:
        raise ValueError(f"seed {seed}: no conv network of 100 draws fits {cfg}")
    xs, words = [], []
    for _ in range(samples):
        name = str(rng.choice(PATTERNS))
        features.add(f"input {name}")
        x = _pattern(rng, name, model.timesteps, model.n_inputs)
        xs.append(x)
        words.append([w for t in range(model.timesteps) for w in input_words(model, cfg, x[t])])
    stall = str(rng.choice(list(STALLS), p=[0.4, 0.2, 0.1, 0.15, 0.15]))
    gap, hold = STALLS[stall]
    features.update({"stall spikes_in"} if gap else set())
    features.update({"stall spikes_out"} if hold else set())
    return Case(seed, model, np.stack(xs), words, stall, features)
