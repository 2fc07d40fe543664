"""The reference model's conv2d, pool and flatten against docs/arithmetic.md section 7: the worked
examples of 7.9 (read from the page's tables), the figures of 7.6 and 7.7, and an independent
plain-Python transcription of the page run on seeded random conv networks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from mintaccel.core.conv import IM2COL_CHUNK, Conv2dLayer, FlattenLayer, PoolLayer
from mintaccel.core.model import MEMBRANE_BITS, RESETS, DenseLayer, IntModel, Leak, WeightFormat
from mintaccel.sim.reference import run, run_batched
from tests.conftest import random_model, random_spikes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "arithmetic.md").read_text()
U2, U3, U8 = WeightFormat("uniform", 2), WeightFormat("uniform", 3), WeightFormat("uniform", 8)


# --- reading docs/arithmetic.md -------------------------------------------------------------------

def section(heading: str) -> str:
    """The text of the section titled `heading`, up to the next heading."""
    start = DOC.index(heading + "\n") + len(heading)
    end = re.search(r"^#{1,4} ", DOC[start:], re.M)
    return DOC[start:start + end.start()] if end else DOC[start:]


def table(text: str, header: bool = False) -> list[list[str]]:
    """The rows of the first markdown table in `text` (the header row too if `header`), as stripped cells."""
    lines = [l for l in text.splitlines() if l.startswith("|")]
    lines = lines[:1] + lines[2:] if header else lines[2:]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines]


def ints(cell: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", cell)]


def figure(text: str, name: str) -> int:
    """The value of "`name = ... = 30`" (or "`name = 30`") in `text`."""
    return int(re.search(rf"`{name} = (?:[^`]*= )?(\d+)`", text).group(1))


def literal(text: str, pattern: str):
    return ast.literal_eval(re.search(pattern, text, re.S).group(1))


# --- 7.9: the worked examples ---------------------------------------------------------------------

STEPS = ("I", "H", "spike", "R", "L", "u")


def steps_1_to_6(layer, x: np.ndarray) -> dict[str, np.ndarray]:
    """I, H, spike, R, L, u of every neuron at every step [T, n_out], recomputed from the reference's
    trace of a one-layer model: u comes from the trace, I from synaptic_input, the rest from section 2."""
    trace = run(IntModel((layer,), x.shape[1]), x)
    spikes, u = trace.spikes[0][0].astype(np.int64), trace.membranes[0][0].astype(np.int64)
    i = np.stack([layer.synaptic_input(x[:, t].astype(np.float32))[0] for t in range(x.shape[1])])
    h = i + np.vstack([np.zeros((1, layer.n_out), np.int64), u[:-1]])
    r = np.where(spikes == 1, 0 if layer.reset == "hard" else h - layer.threshold, h)
    return {"I": i, "H": h, "spike": spikes, "R": r, "u": u}


def example_input(rows: list[list[str]], cell: int, steps: int) -> np.ndarray:
    """The input maps of a 7.9.1-style table: one map row per table row, T maps of 4 rows."""
    maps = [ints(r[cell]) for r in rows]
    return np.array(maps, np.uint8).reshape(1, steps, -1)


def test_7_9_1_conv_stride_1():
    text = section("#### 7.9.1 conv2d, stride 1, padding 1")
    rows = table(text)
    layer = Conv2dLayer(np.array([[[[1, -1, 0], [2, 3, -2], [0, -1, 1]]]]), U3, 3, 3, "hard", Leak("shift", 1),
                        in_shape=(1, 4, 4), padding=1)
    assert (layer.bound, layer.accumulator_bits) == (figure(text, "B"), figure(text, "A")) == (30, 6)
    x = example_input(rows, 2, 3)
    got = steps_1_to_6(layer, x)
    for column, name in enumerate(STEPS, start=3):
        if name == "L":  # L is not observable in the trace; check it through u = clamp(L) and sr
            continue
        expected = np.array([ints(r[column]) for r in rows]).reshape(3, 16)
        assert got[name].tolist() == expected.tolist(), name
    expected_l = np.array([ints(r[7]) for r in rows]).reshape(3, 16)
    r = np.array([ints(row[6]) for row in rows]).reshape(3, 16)
    assert expected_l.tolist() == np.trunc(r / 2).astype(int).tolist()  # shift leak k = 1 on the table's R
    assert got["u"].tolist() == np.clip(expected_l, -3, 3).tolist()
    counts = literal(text, r"row by row:\s*`(\[\[.*?\]\])`")
    assert run(IntModel((layer,), 3), x).counts.reshape(4, 4).tolist() == counts


def test_7_9_2_conv_stride_2_bias_soft_reset():
    text = section("#### 7.9.2 conv2d, stride 2, two channels, bias, soft reset")
    rows = table(text)
    w = np.array([[[[1, 2, 1], [0, -3, 0], [1, 2, 1]]], [[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]])
    layer = Conv2dLayer(w, U3, 2, 3, "soft", Leak("decay", 1), bias=np.array([-1, 1]), bias_bits=2,
                        in_shape=(1, 4, 4), stride=2, padding=1)
    assert layer.out_shape == (2, 2, 2)
    assert (layer.bound, layer.accumulator_bits) == (figure(text, "B"), figure(text, "A")) == (29, 6)
    x = example_input(table(section("#### 7.9.1 conv2d, stride 1, padding 1")), 2, 3)  # "the same input"
    got = steps_1_to_6(layer, x)
    # rows are (t, o, y, x) in order: t-major, then the (C, H, W) order of 7.1
    assert [tuple(ints(" ".join(r[:4]))) for r in rows] == [
        (t, o, y, xx) for t in range(3) for o in range(2) for y in range(2) for xx in range(2)]
    for column, name in enumerate(STEPS, start=4):
        if name != "L":
            assert got[name].tolist() == np.array([ints(r[column])[0] for r in rows]).reshape(3, 8).tolist(), name
    for row in rows:  # L = R - sr(R, 1), u = clamp(L) to -1..1, "(clamped)" where they differ
        r_, l_, u_ = ints(row[7])[0], ints(row[8])[0], ints(row[9])[0]
        assert l_ == r_ - int(r_ / 2) and u_ == max(-1, min(1, l_))
        assert ("clamped" in row[9]) == (u_ != l_)
    flat = literal(text, r"at `t = 1` is `(\[.*?\])`")
    assert run(IntModel((layer,), 3), x).spikes[0][0, 1].tolist() == flat


def pool_model(op: str, k: int, s: int) -> IntModel:
    pool = PoolLayer(op, (1, 4, 4), k, s)
    flat = FlattenLayer(pool.out_shape)
    return IntModel((pool, flat, DenseLayer(np.ones((1, flat.n_out), np.int64), U2, 2, 1, "hard", Leak("none"))), 1)


def test_7_9_3_max_and_sum_pools():
    text = section("#### 7.9.3 Max and sum pools")
    v = np.array(literal(text, r"v = (\[\[.*?\]\])"), np.uint8)
    rows = table(text)
    assert len(rows) == 4
    for op, k, s, shape, out in rows:
        model = pool_model(op, int(k), int(s))
        assert model.layers[0].out_shape == tuple(ints(shape))
        got = run(model, v.reshape(1, 1, 16)).spikes[0][0, 0]
        assert got.tolist() == ints(out), (op, k, s)


def test_7_9_4_sum_pool_feeds_dense():
    text = section("#### 7.9.4 A sum pool feeding a dense layer")
    v = np.array(literal(section("#### 7.9.3 Max and sum pools"), r"v = (\[\[.*?\]\])"), np.uint8)
    pool = PoolLayer("sum", (1, 4, 4), 2)
    dense = DenseLayer(np.array([[1, -3, 2, -1], [-2, 3, 1, 3]]), U3, 3, 3, "hard", Leak("shift", 1))
    model = IntModel((pool, FlattenLayer(pool.out_shape), dense), 1)
    dense = model.layers[2]
    assert dense.input_max == 4
    assert (dense.bound, dense.accumulator_bits) == (figure(text, "B"), figure(text, "A")) == (51, 7)
    trace = run(model, v.reshape(1, 1, 16))
    counts = trace.spikes[1][0, 0]
    assert counts.tolist() == literal(text, r"counts = (\[.*?\])")
    rows = table(text)
    assert dense.synaptic_input(counts[None].astype(np.float32))[0].tolist() == [ints(r[1])[0] for r in rows]
    assert trace.spikes[2][0, 0].tolist() == [ints(r[3])[0] for r in rows]
    assert trace.membranes[2][0, 0].tolist() == [ints(r[6])[0] for r in rows]
    # "the count repeats W": the same as feeding the dense layer the spikes one by one
    assert dense.synaptic_input(counts[None].astype(np.float32)).tolist() == [
        [sum(int(c) * int(w) for c, w in zip(counts, row)) for row in dense.weight]]


def test_7_9_5_flatten_order():
    text = section("#### 7.9.5 Element order through a flatten")
    conv = Conv2dLayer(np.array([[[[1]]], [[[-1]]]]), U2, 2, 1, "hard", Leak("none"), bias=np.array([0, 1]),
                       bias_bits=2, in_shape=(1, 2, 3))
    w = np.zeros((2, 12), np.int64)
    w[0, 4] = w[1, 9] = 1
    model = IntModel((conv, FlattenLayer(conv.out_shape), DenseLayer(w, U2, 2, 1, "hard", Leak("none"))), 1)
    index, positions, values = table(text, header=True)
    assert ints(" ".join(index[1:])) == list(range(12))
    assert [tuple(ints(p)) for p in positions[1:]] == [(c, y, x) for c in range(2) for y in range(2) for x in range(3)]
    assert all(c * 6 + y * 3 + x == i for i, (c, y, x) in enumerate(tuple(ints(p)) for p in positions[1:]))
    trace = run(model, np.array([[[1, 0, 0, 1, 1, 0]]], np.uint8))
    assert trace.spikes[0][0, 0].tolist() == trace.spikes[1][0, 0].tolist() == [int(v) for v in values[1:]]
    assert trace.membranes[1] is None
    assert trace.spikes[2][0, 0].tolist() == [1, 0] and trace.predictions.tolist() == [0]


# --- 7.6 and 7.7: the figures ---------------------------------------------------------------------

def conv(c_out, in_shape, k, fmt=U2, padding=0, membrane_bits=2, **kw):
    return Conv2dLayer(np.full((c_out, in_shape[0], k, k), fmt.max_magnitude), fmt, membrane_bits, 1, "hard",
                       Leak("none"), in_shape=in_shape, padding=padding, **kw)


def mnist_net(membrane_bits: int) -> IntModel:
    c1 = conv(16, (1, 28, 28), 5, padding=2, membrane_bits=membrane_bits)
    p1 = PoolLayer("max", c1.out_shape, 2)
    c2 = conv(32, p1.out_shape, 5, padding=2, membrane_bits=membrane_bits)
    p2 = PoolLayer("max", c2.out_shape, 2)
    flat = FlattenLayer(p2.out_shape)
    return IntModel((c1, p1, c2, p2, flat, DenseLayer(np.ones((10, flat.n_out), np.int64), U2, membrane_bits, 1,
                                                      "hard", Leak("none"))), 8)


def test_7_6_bounds_quoted_are_the_models():
    text = section("### 7.6 Accumulator bound")
    for op, b, a in (("max", 401, 10), ("sum", 1601, 12)):
        pool = PoolLayer(op, (16, 28, 28), 2)
        c = IntModel((pool, conv(32, pool.out_shape, 5, padding=2)), 1).layers[1]
        assert (c.bound, c.accumulator_bits) == (b, a)
        assert f"`B = {b}`" in text or f"= {b}`" in text
    for channels, b in ((1024, 312_278_142), (64, 19_515_455)):
        pool = PoolLayer("sum", (channels, 49, 49), 7)
        c = conv(1, pool.out_shape, 7, fmt=U8, membrane_bits=8,
                 **({"bias": np.zeros(1, np.int64), "bias_bits": 16} if channels == 1024 else {}))
        c = IntModel((pool, c), 1).layers[1]
        assert c.bound == b and f"{b:,}" in text
    assert 312_278_142 < 2**29


def test_7_7_footprint_quoted_is_the_models():
    text = section("### 7.7 Memory footprint")
    at8, at2 = mnist_net(8).footprint_bits(), mnist_net(2).footprint_bits()
    assert at8["weights"] == at2["weights"] == 2 * 28_880 == 57_760
    assert (at8["membranes"], at2["membranes"]) == (8 * 18_826, 2 * 18_826) == (150_608, 37_652)
    assert (at8["quantized"], at2["quantized"]) == (208_368, 95_412)
    assert round(100 * at8["membranes"] / at8["quantized"]) == 72 and round(100 * (1 - 95_412 / 208_368)) == 54
    for figure_ in ("28,880", "18,826", "57,760", "150,608", "208,368", "37,652", "95,412", "72%", "54%"):
        assert figure_ in text


# --- an independent transcription of section 7 ---------------------------------------------------

def unflatten(flat: list[int], shape) -> list:
    """7.1: element (c, y, x) of a C x H x W map is flat[c*H*W + y*W + x]."""
    c_, h_, w_ = shape
    return [[[flat[c * h_ * w_ + y * w_ + x] for x in range(w_)] for y in range(h_)] for c in range(c_)]


def flatten(maps: list) -> list[int]:
    return [v for channel in maps for row in channel for v in row]


def neuron(layer, u: int, current: int) -> tuple[int, int]:
    """Section 2's steps 2-6 for one neuron: (u, I) -> (spike, new u)."""
    q = 2 ** (layer.membrane_bits - 1) - 1
    h = u + current
    spike = 1 if h >= layer.threshold else 0
    r = (0 if spike else h) if layer.reset == "hard" else (h - layer.threshold if spike else h)
    k = layer.leak.k
    sr = int(r / 2**k) if k else r  # int() truncates toward zero
    return spike, min(max({"none": r, "shift": sr, "decay": r - sr}[layer.leak.kind], -q), q)


def repeated(acc: int, weight: int, v: int) -> int:
    """7.2: a value v adds the weight v times (repeated events, no multiplication)."""
    for _ in range(v):
        acc += weight
    return acc


def scalar_layer(layer, inp: list[int], u: list[int]) -> list[int]:
    """One layer, one time step, from the page: flat input values -> flat output (u updated in place)."""
    if layer.kind == "flatten":
        return flatten(unflatten(inp, layer.in_shape))
    if layer.kind == "pool":
        c_, h_, w_ = layer.in_shape
        k, s = layer.kernel, layer.stride
        v = unflatten(inp, layer.in_shape)
        ho, wo = (h_ - k) // s + 1, (w_ - k) // s + 1
        out = [[[0] * wo for _ in range(ho)] for _ in range(c_)]
        for c in range(c_):
            for y in range(ho):
                for x in range(wo):
                    window = [v[c][y * s + ky][x * s + kx] for ky in range(k) for kx in range(k)]
                    out[c][y][x] = (1 if any(window) else 0) if layer.op == "max" else sum(window)
        return flatten(out)
    bias = (lambda o: int(layer.bias[o])) if layer.bias is not None else (lambda o: 0)
    if layer.kind == "dense":
        currents = []
        for i in range(layer.n_out):
            acc = bias(i)
            for j in range(layer.n_in):
                acc = repeated(acc, int(layer.weight[i][j]), inp[j])
            currents.append(acc)
    else:
        c_in, h_, w_ = layer.in_shape
        k, s, p = layer.kernel, layer.stride, layer.padding
        ho, wo = (h_ + 2 * p - k) // s + 1, (w_ + 2 * p - k) // s + 1
        v = unflatten(inp, layer.in_shape)
        out_maps = [[[0] * wo for _ in range(ho)] for _ in range(layer.weight.shape[0])]
        for o in range(layer.weight.shape[0]):
            for y in range(ho):
                for x in range(wo):
                    acc = bias(o)
                    for c in range(c_in):
                        for ky in range(k):
                            for kx in range(k):
                                yy, xx = y * s + ky - p, x * s + kx - p
                                if 0 <= yy < h_ and 0 <= xx < w_:  # else padding: 0
                                    acc = repeated(acc, int(layer.weight[o][c][ky][kx]), v[c][yy][xx])
                    out_maps[o][y][x] = acc
        currents = flatten(out_maps)
    out = []
    for n, current in enumerate(currents):
        spike, u[n] = neuron(layer, u[n], current)
        out.append(spike)
    return out


def scalar_run(model: IntModel, x: np.ndarray) -> tuple[list, list]:
    """One sample [T, inputs] -> per layer, per step: the flat output and the membranes (None: no neuron)."""
    u = [[0] * layer.n_out for layer in model.layers]
    outs, mems = [[] for _ in model.layers], [[] for _ in model.layers]
    for t in range(model.timesteps):
        inp = [int(v) for v in x[t]]
        for i, layer in enumerate(model.layers):
            inp = scalar_layer(layer, inp, u[i])
            outs[i].append(inp)
            mems[i].append(list(u[i]) if layer.kind in ("dense", "conv2d") else None)
    return outs, mems


FORMATS = WeightFormat.every()
LEAKS = (Leak("none"), Leak("shift", 1), Leak("shift", 3), Leak("decay", 1), Leak("decay", 2))
SEEDS = range(48)


def neuron_fields(rng: np.random.Generator, fmt: WeightFormat, n_bias: int) -> dict:
    bias_bits = int(rng.choice([0, 3, 6]))
    return dict(weight_format=fmt, membrane_bits=int(rng.choice(MEMBRANE_BITS)),
                threshold=int(rng.integers(1, max(2, 3 * fmt.max_magnitude))), reset=str(rng.choice(RESETS)),
                leak=LEAKS[rng.integers(len(LEAKS))], bias_bits=bias_bits,
                bias=rng.integers(-(2 ** (bias_bits - 1) - 1), 2 ** (bias_bits - 1), n_bias) if bias_bits else None)


def random_conv(rng: np.random.Generator, shape) -> Conv2dLayer:
    c, h, w = shape
    while True:
        k = int(rng.integers(1, 6))
        p = int(rng.integers(0, k))
        if k <= min(h, w) + 2 * p:
            break
    fmt = FORMATS[rng.integers(len(FORMATS))]
    c_out = int(rng.integers(1, 4))
    return Conv2dLayer(rng.choice(fmt.levels(), size=(c_out, c, k, k)), **neuron_fields(rng, fmt, c_out),
                       in_shape=shape, stride=int(rng.choice([1, 2])), padding=p)


def random_pool(rng: np.random.Generator, shape) -> PoolLayer:
    k = int(rng.integers(1, min(3, *shape[1:]) + 1))
    return PoolLayer(str(rng.choice(["max", "sum"])), shape, k, int(rng.integers(0, 4)))


def random_conv_model(seed: int) -> IntModel:
    """A seeded random conv network: conv/pool blocks (a pool may read the input), then a conv or
    flatten + dense readout; every format, membrane width, reset, leak, bias, stride, padding, pool."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 3)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    layers = []
    if rng.random() < 0.3:
        layers.append(random_pool(rng, shape))
    for _ in range(int(rng.integers(1, 3))):
        layers.append(random_conv(rng, getattr(layers[-1], "out_shape", shape) if layers else shape))
        if rng.random() < 0.6:
            layers.append(random_pool(rng, layers[-1].out_shape))
    if layers[-1].kind == "pool" or rng.random() < 0.7:
        flat = FlattenLayer(layers[-1].out_shape)
        fmt = FORMATS[rng.integers(len(FORMATS))]
        n_out = int(rng.integers(2, 5))
        layers += [flat, DenseLayer(rng.choice(fmt.levels(), size=(n_out, flat.n_out)),
                                    **neuron_fields(rng, fmt, n_out))]
    return IntModel(tuple(layers), int(rng.integers(2, 5)))


@pytest.mark.parametrize("seed", SEEDS)
def test_matches_independent_scalar_implementation(seed):
    model = random_conv_model(seed)
    x = random_spikes(seed, 2, model.timesteps, model.n_inputs)
    trace = run(model, x)
    for b in range(len(x)):
        outs, mems = scalar_run(model, x[b])
        for i, layer in enumerate(model.layers):
            assert trace.spikes[i][b].tolist() == outs[i], f"seed {seed} layer {i} ({layer.kind})"
            if trace.membranes[i] is None:
                assert layer.kind in ("pool", "flatten")
            else:
                assert trace.membranes[i][b].tolist() == mems[i], f"seed {seed} layer {i} ({layer.kind})"


@pytest.mark.parametrize("seed", range(8))
def test_section_7_on_a_dense_network_is_version_1(seed):
    """The transcription of section 7 run on a version-1 network (dense layers, spikes) gives what the
    reference gives, so it is version 1's arithmetic there (tests/sim/test_reference.py holds the v1 one)."""
    model = random_model(seed)
    x = random_spikes(seed, 2, model.timesteps, model.n_inputs)
    trace = run(model, x)
    for b in range(len(x)):
        outs, mems = scalar_run(model, x[b])
        assert [s[b].tolist() for s in trace.spikes] == outs and [m[b].tolist() for m in trace.membranes] == mems


def test_random_networks_cover_every_option():
    """The seeds above reach every weight format, membrane width, reset, leak kind, bias or none, stride,
    padding 0..2, pool op and a neuron layer reading counts, and most neuron layers neither stay silent
    nor fire always: the comparison cannot miss one by luck."""
    seen, rates = set(), []
    for seed in SEEDS:
        model = random_conv_model(seed)
        trace = run(model, random_spikes(seed, 2, model.timesteps, model.n_inputs))
        rates += [s.mean() for l, s in zip(model.layers, trace.spikes) if l.kind in ("conv2d", "dense")]
        for layer in model.layers:
            seen.add(("kind", layer.kind))
            if layer.kind == "pool":
                seen.add(("pool", layer.op))
                continue
            if layer.kind == "flatten":
                continue
            seen |= {("format", str(layer.weight_format)), ("membrane", layer.membrane_bits), ("reset", layer.reset),
                     ("leak", layer.leak.kind), ("bias", layer.bias is not None), ("counts", layer.input_max > 1)}
            if layer.kind == "conv2d":
                seen |= {("stride", layer.stride), ("padding", min(layer.padding, 2))}
        seen.add(("last", layer.kind))
    expected = ({("kind", k) for k in ("conv2d", "pool", "flatten", "dense")} | {("pool", "max"), ("pool", "sum")}
                | {("format", str(f)) for f in FORMATS} | {("membrane", m) for m in MEMBRANE_BITS}
                | {("reset", r) for r in RESETS} | {("leak", k) for k in ("none", "shift", "decay")}
                | {("bias", True), ("bias", False), ("counts", True), ("counts", False)}
                | {("stride", 1), ("stride", 2)} | {("padding", p) for p in (0, 1, 2)}
                | {("last", "conv2d"), ("last", "dense")})
    assert expected <= seen, sorted(expected - seen)
    assert np.mean([0 < r < 1 for r in rates]) > 0.5


# --- batching and the float32 rule ----------------------------------------------------------------

def test_batch_spanning_several_im2col_chunks_equals_each_sample_alone():
    """synaptic_input works IM2COL_CHUNK elements at a time: a batch of several chunks gives every
    sample exactly what it gives alone, and run_batched what run gives."""
    rng = np.random.default_rng(7)
    c1 = Conv2dLayer(rng.choice(U3.levels(), size=(4, 1, 5, 5)), U3, 3, 4, "soft", Leak("decay", 1),
                     bias=rng.integers(-3, 4, 4), bias_bits=3, in_shape=(1, 28, 28), padding=2)
    pool = PoolLayer("sum", c1.out_shape, 2)
    c2 = Conv2dLayer(rng.choice(U3.levels(), size=(3, 4, 3, 3)), U3, 4, 5, "hard", Leak("shift", 1),
                     in_shape=pool.out_shape, stride=2, padding=1)
    model = IntModel((c1, pool, c2), 2)
    batch = 3 * IM2COL_CHUNK // (c1.fan_in * 28 * 28) + 5  # more than three chunks of the first layer
    x = random_spikes(7, batch, 2, model.n_inputs, density=0.3)
    whole = run(model, x)
    assert whole.spikes[0].any() and whole.spikes[2].any()
    for b in (0, batch // 3, batch // 2, batch - 1):
        alone = run(model, x[b:b + 1])
        for i in range(3):
            assert np.array_equal(whole.spikes[i][b], alone.spikes[i][0]), (b, i)
    batched = run_batched(model, x, batch_size=batch // 4)
    for i in range(3):
        assert np.array_equal(batched.spikes[i], whole.spikes[i])
        assert (batched.membranes[i] is None) == (whole.membranes[i] is None)
        if whole.membranes[i] is not None:
            assert np.array_equal(batched.membranes[i], whole.membranes[i])


@pytest.mark.parametrize("channels, dtype", [(55, np.float32), (56, np.float64)])
def test_float32_rule_at_its_edge(channels, dtype):
    """7.6: step 1 in float32 while B < 2^24, float64 above; at 8-bit weights after a 7 x 7 sum pool
    (every count 49, |I| up to B - 127) the product is exact either side of the edge."""
    pool = PoolLayer("sum", (channels, 49, 49), 7)
    rng = np.random.default_rng(channels)
    w = rng.choice([127, 127, 127, -127, 0], size=(2, channels, 7, 7))
    w[0] = 127  # one channel at the bound itself: every partial sum climbs to V * F * w_max
    layer = IntModel((pool, Conv2dLayer(w, U8, 8, 2**20, "hard", Leak("none"), in_shape=pool.out_shape)), 1).layers[1]
    assert (layer.bound < 2**24) == (dtype is np.float32) and layer._exact_dtype() is dtype
    counts = pool.forward(np.ones((1, pool.n_in), np.uint8)).astype(dtype)
    exact = np.einsum("cij,ocij->o", np.full((channels, 7, 7), 49, np.int64), layer.weight)
    assert layer.synaptic_input(counts)[0].tolist() == exact.tolist()
    assert exact[0] == layer.bound - 127
