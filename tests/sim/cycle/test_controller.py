"""The cycle count of docs/microarchitecture.md ("Exact cycle cost"), checked independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.errors import UserError
from mintaccel.sim.cycle import FixedGap, simulate
from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat
from mintaccel.sim.reference import run
from tests.conftest import random_model, random_spikes


def doc_formula(model, x, n_pe, p=1) -> list[int]:
    """The doc's formula, scalar, straight from the spike patterns of the reference model's run."""
    trace = run(model, x)
    totals = []
    for b in range(x.shape[0]):
        total = 2
        for t in range(model.timesteps):
            total += math.ceil(model.layers[-1].n_out / n_pe)
            for l, layer in enumerate(model.layers):
                inp = x[b, t] if l == 0 else trace.spikes[l - 1][b, t]
                e = int(sum(int(v) for v in inp))
                w, g = math.ceil(layer.n_in / n_pe), math.ceil(layer.n_out / n_pe)
                # SETUP, encoder start and DONE, group 0 (during ENCODE) + 5, later groups of at least P cycles, + DRAIN (P - 1 + 6)
                total += 1 + 1 + w + e + 1 + 5 + (g - 1) * max(e + 5, p) + p - 1 + 6
        totals.append(total)
    return totals


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_pe", [1, 3, 8])
def test_total_cycles_equal_the_doc_formula(seed, n_pe):
    model = random_model(seed, sizes=(13, 9, 6, 4), timesteps=5)
    x = random_spikes(seed, 4, model.timesteps, model.n_inputs)
    r = simulate(model, x, n_pe=n_pe)  # for_model's build: n_pe = 8 shares one threshold unit (P = 8)
    assert r.cycles.tolist() == doc_formula(model, x, n_pe, r.cfg.lanes_per_unit)
    assert (r.stalls.total == 0).all()
    phases = r.phases.per_phase()
    assert (sum(phases.values()) == r.cycles).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_pe,units", [(8, 4), (8, 2), (8, 1), (6, 2), (12, 3)])
def test_shared_threshold_units_follow_the_doc_formula(seed, n_pe, units):
    """P = n_pe / units lanes per unit: groups of at least P cycles, DRAIN P - 1 + 6 (sparse inputs so
    that some groups wait)."""
    model = random_model(seed, sizes=(13, 17, 6), timesteps=4)
    x = random_spikes(seed, 3, model.timesteps, model.n_inputs, density=0.1)
    cfg = HwConfig.for_model(model, n_pe, threshold_units=units)
    r = simulate(model, x, cfg)
    assert r.cycles.tolist() == doc_formula(model, x, n_pe, n_pe // units)
    assert (sum(r.phases.per_phase().values()) == r.cycles).all()
    assert r.blocks["threshold_unit"].busy.tolist() == (r.phases.fire.sum(axis=(1, 2)) * (n_pe // units)).tolist()


def test_worked_example_by_hand(worked):
    model, x, cfg = worked
    # n_pe = 2, n_in = n_out = 3: W = 2 words, G = 2 groups. E[0][t] = 2, 3, 1, 1 (ones of x[t]).
    # Per step: OUTPUT G = 2, SETUP 1, ENCODE 1 + W + E + 1 = 4 + E, group 0 after ENCODE 5, group 1
    # E + 5, DRAIN 6: 23 + 2E.   t=0: 23 + 4 = 27   t=1: 23 + 6 = 29   t=2: 23 + 2 = 25   t=3: 25
    # -> 106, plus START and DONE: 108.
    r = simulate(model, x, cfg)
    assert r.cycles.tolist() == [108]
    assert r.phases.step[0].tolist() == [27, 29, 25, 25]
    assert {k: int(v[0]) for k, v in r.phases.per_phase().items()} == {
        "run": 2, "setup": 4, "encode": 4 + 8 + 7 + 4, "group_start": 4, "acc": 7, "group_drain": 28, "wait": 0, "fire": 8,
        "drain": 24, "output": 8}


def test_pot_zero_weight_example_by_hand():
    # 2 inputs, 1 neuron, pot:3 weights [0, 2], n_pe = 1: W = 2, G = 1; x[0] = [1, 1], x[1] = [0, 1].
    # Per step: OUTPUT 1 + SETUP 1 + ENCODE 1 + 2 + E + 1 + group 0 after ENCODE 5 + DRAIN 6 = 17 + E: 19 and
    # 18, plus 2 = 39.
    layer = DenseLayer(weight=np.array([[0, 2]]), weight_format=WeightFormat("pot", 3), membrane_bits=2,
                       threshold=1, reset="soft", leak=Leak("decay", 2))
    model = IntModel((layer,), 2)
    r = simulate(model, np.array([[[1, 1], [0, 1]]], np.uint8), n_pe=1)
    assert r.cycles.tolist() == [39]
    pe = r.blocks["pe_array"]
    assert pe.per_sample("lane_ops").tolist() == [3]       # 3 events x 1 group x 1 lane
    assert pe.per_sample("additions").tolist() == [2]      # the events of input 1 meet weight 2
    assert pe.per_sample("zero_additions").tolist() == [1]  # input 0's weight is 0


def test_stall_hook_adds_cycles_and_blocks_add_up():
    model = random_model(3, sizes=(20, 11, 5), timesteps=4)
    x = random_spikes(3, 3, 4, 20)
    quiet = simulate(model, x, n_pe=4)
    r = simulate(model, x, n_pe=4, stall_model=FixedGap(input_gap=2, output_gap=3))
    words_in, words_out = math.ceil(20 / 4), math.ceil(5 / 4)
    stalls = model.timesteps * (2 * words_in + 3 * words_out)
    assert (r.cycles - quiet.cycles).tolist() == [stalls] * 3
    assert (r.blocks["spike_encoder"].stall == model.timesteps * 2 * words_in).all()
    for name, b in r.blocks.items():
        assert (b.idle >= 0).all(), name
        assert ((b.busy + b.idle + b.stall) == r.cycles).all(), name
    assert (r.blocks["controller"].busy == quiet.cycles).all()


def test_model_that_does_not_fit_is_refused():
    model = random_model(1, sizes=(40, 8), timesteps=3)
    with pytest.raises(UserError, match="max_inputs"):
        simulate(model, random_spikes(1, 1, 3, 40), HwConfig(n_pe=8, max_inputs=16, weight_bits=8,
                                                             membrane_bits=8, bias_bits=16))


def test_vectorized_over_samples_equals_one_at_a_time():
    model = random_model(7)
    x = random_spikes(7, 5, model.timesteps, model.n_inputs)
    batch = simulate(model, x, n_pe=2)
    for b in range(5):
        one = simulate(model, x[b:b + 1], n_pe=2)
        assert one.cycles[0] == batch.cycles[b]
        for name, counts in one.blocks.items():
            for op, a in counts.ops.items():
                assert np.array_equal(a[0], batch.blocks[name].ops[op][b]), (name, op)
