"""The reference model against docs/arithmetic.md: the worked example, each step, and an independent
scalar implementation written from the page."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat
from mintaccel.sim.reference import BoundViolation, decode, leak, neuron_step, run, shift_toward_zero
from tests.conftest import random_model, random_spikes

W = np.array([[3, -2, 1], [1, 2, -3], [-3, -3, -3]])
X = np.array([[[1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 0, 0]]], np.uint8)


def example(reset: str, leak_: Leak) -> IntModel:
    layer = DenseLayer(weight=W, weight_format=WeightFormat("uniform", 3), membrane_bits=3, threshold=3,
                       reset=reset, leak=leak_, bias=np.array([0, 1, 0]), bias_bits=2)
    return IntModel((layer,), 4)


def test_worked_example_hard_shift():
    trace = run(example("hard", Leak("shift", 1)), X)
    assert trace.spikes[0][0].tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert trace.membranes[0][0].tolist() == [[0, 0, -3], [1, 0, -3], [0, 0, -3], [0, 1, -3]]
    assert trace.counts.tolist() == [[2, 1, 0]]
    assert trace.predictions.tolist() == [0]
    assert example("hard", Leak("shift", 1)).layers[0].bound == 13
    assert example("hard", Leak("shift", 1)).layers[0].accumulator_bits == 5


def test_worked_example_soft_decay():
    trace = run(example("soft", Leak("decay", 1)), X)
    assert trace.spikes[0][0].tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert trace.membranes[0][0].tolist() == [[1, -1, -3], [0, 0, -3], [-1, 0, -3], [1, 1, -3]]
    assert trace.counts.tolist() == [[2, 1, 0]]


def test_shift_rounds_toward_zero():
    r = np.array([5, -5, -1, 1, 7, -7, 0])
    assert shift_toward_zero(r, 1).tolist() == [2, -2, 0, 0, 3, -3, 0]
    assert shift_toward_zero(r, 2).tolist() == [1, -1, 0, 0, 1, -1, 0]
    assert leak(r, Leak("decay", 1)).tolist() == [3, -3, -1, 1, 4, -4, 0]
    assert leak(r, Leak("none")).tolist() == r.tolist()


def test_decode_ties_go_to_lowest_index():
    assert decode(np.array([[0, 0, 0], [1, 3, 3], [2, 1, 2]])).tolist() == [0, 1, 0]


def scalar_run(model: IntModel, x: np.ndarray):
    """docs/arithmetic.md transcribed literally, one neuron at a time, in plain Python integers."""
    spikes = [[[0] * l.n_out for _ in range(model.timesteps)] for l in model.layers]
    mems = [[[0] * l.n_out for _ in range(model.timesteps)] for l in model.layers]
    u = [[0] * l.n_out for l in model.layers]
    for t in range(model.timesteps):
        inp = [int(v) for v in x[t]]
        for li, l in enumerate(model.layers):
            out = []
            q = 2 ** (l.membrane_bits - 1) - 1
            for i in range(l.n_out):
                current = (int(l.bias[i]) if l.bias is not None else 0) + sum(
                    int(l.weight[i][j]) for j in range(l.n_in) if inp[j])
                h = u[li][i] + current
                s = 1 if h >= l.threshold else 0
                r = (0 if s else h) if l.reset == "hard" else (h - l.threshold if s else h)
                k = l.leak.k
                sr = int(r / 2**k) if k else r  # Python's int() truncates toward zero
                lk = {"none": r, "shift": sr, "decay": r - sr}[l.leak.kind]
                u[li][i] = min(max(lk, -q), q)
                out.append(s)
                spikes[li][t][i] = s
                mems[li][t][i] = u[li][i]
            inp = out
    return spikes, mems


@pytest.mark.parametrize("seed", range(40))
def test_matches_independent_scalar_implementation(seed):
    model = random_model(seed)
    x = random_spikes(seed, 3, model.timesteps, model.n_inputs)
    trace = run(model, x)
    for b in range(len(x)):
        spikes, mems = scalar_run(model, x[b])
        for l in range(len(model.layers)):
            assert trace.spikes[l][b].tolist() == spikes[l], f"seed {seed} layer {l}"
            assert trace.membranes[l][b].tolist() == mems[l], f"seed {seed} layer {l}"


def test_membranes_stay_on_their_grid():
    for seed in range(20):
        model = random_model(seed)
        trace = run(model, random_spikes(seed, 16, model.timesteps, model.n_inputs))
        for layer, mem in zip(model.layers, trace.membranes):
            assert np.abs(mem).max() <= layer.membrane_max


def test_saturation_corners_do_not_overflow():
    # Every weight at its largest magnitude, every input spiking: |H| reaches the bound B exactly.
    for fmt in (WeightFormat("uniform", 8), WeightFormat("pot", 4), WeightFormat("binary", 1)):
        for sign in (1, -1):
            w = np.full((4, 300), sign * fmt.max_magnitude)
            layer = DenseLayer(weight=w, weight_format=fmt, membrane_bits=8, threshold=2**20,
                               reset="soft", leak=Leak("none"), bias=np.full(4, sign * 127), bias_bits=8)
            model = IntModel((layer,), 3)
            trace = run(model, np.ones((1, 3, 300), np.uint8))
            assert np.abs(trace.membranes[0]).max() == 127
            assert layer.bound < 2 ** (layer.accumulator_bits - 1)


def test_bound_is_checked_on_every_step():
    """docs/arithmetic.md section 3: |H| <= B is asserted; H at +-B passes (the saturation corners above
    reach it), one past it is an internal error (a bug), not a user error."""
    layer = example("hard", Leak("shift", 1)).layers[0]
    u = np.array([[3, -3, 0]], np.int64)
    at_bound = np.array([[layer.bound - 3, -layer.bound + 3, 0]], np.int64)
    neuron_step(layer, u, at_bound)
    for i, delta in ((0, 1), (1, -1)):
        past = at_bound.copy()
        past[0, i] += delta
        with pytest.raises(BoundViolation, match=f"outside the layer bound B = {layer.bound}"):
            neuron_step(layer, u, past)
    assert not issubclass(BoundViolation, UserError)


def test_all_zero_input_is_silent_without_bias(shipped_model):
    trace = run(shipped_model, np.zeros((2, shipped_model.timesteps, shipped_model.n_inputs), np.uint8))
    assert all(s.sum() == 0 for s in trace.spikes)
    assert trace.predictions.tolist() == [0, 0]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 8, 63), np.uint8), "shaped"),
    (np.zeros((1, 7, 64), np.uint8), "shaped"),
    (np.full((1, 8, 64), 2, np.uint8), "0 or 1"),
    (np.zeros((1, 8, 64), np.float32), "uint8"),
])
def test_bad_input_is_refused(shipped_model, bad, message):
    with pytest.raises(UserError, match=message):
        run(shipped_model, bad)
