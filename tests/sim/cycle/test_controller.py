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
        "drain": 24, "output": 8, "load": 0}


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


# ---- conv networks (docs/microarchitecture.md, "Conv networks") ----

def conv_doc_formula(model, x, n_pe, p=1) -> list[int]:
    """The doc's conv formula, scalar, from the model's layers and the reference run: every output
    position's events counted tap by tap over its receptive field (padding taps hold nothing)."""
    trace = run(model, x)
    layers = model.layers
    first_map = layers[0].kind in ("conv2d", "pool")  # layer 0 reads a map buffer: the input is LOADed
    # a build with map buffers (any layer reading a map): every layer but a stream-reading layer 0 reads
    # one, and its SETUP has a second cycle
    maps = any(l.kind in ("conv2d", "pool") for l in layers)
    totals = []
    for b in range(x.shape[0]):
        total = 2
        for t in range(model.timesteps):
            if first_map:
                c, h, w = layers[0].in_shape
                total += h * w * math.ceil(c / n_pe)
            last_words = 0
            for i, layer in enumerate(layers):
                if layer.kind not in ("dense", "conv2d"):
                    continue
                v = x[b, t] if i == 0 else trace.spikes[i - 1][b, t]
                before = [l for l in layers[:i] if l.kind != "flatten"]
                pool = before[-1] if before and before[-1].kind == "pool" else None
                kp = pool.kernel if pool else 1
                if layer.kind == "conv2d":
                    c, h, w = layer.in_shape
                    k, s, pad = layer.kernel, layer.stride, layer.padding
                    vm = v.reshape(c, h, w)
                    _, ho, wo = layer.out_shape
                    events = []
                    for oy in range(ho):
                        for ox in range(wo):
                            e = 0
                            for ky in range(k):
                                for kx in range(k):
                                    py, px = oy * s - pad + ky, ox * s - pad + kx
                                    if 0 <= py < h and 0 <= px < w:
                                        e += int(vm[:, py, px].sum())
                            events.append(e)
                    words, out_c = k * k * math.ceil(c / n_pe) * kp * kp, layer.out_channels
                elif i > 0 and layers[i - 1].kind == "flatten" and i - 1 > 0:  # the whole map is the window
                    c, h, w = layers[i - 1].in_shape
                    events, words, out_c = [int(v.sum())], h * w * math.ceil(c / n_pe) * kp * kp, layer.n_out
                else:
                    events, words, out_c = [int(v.sum())], math.ceil(layer.n_in / n_pe), layer.n_out
                g = math.ceil(out_c / n_pe)
                total += 1 + (maps and (i > 0 or first_map))  # SETUP (+ the map reader's first fetch)
                for q, e in enumerate(events):
                    encode = 1 + words + e + 1
                    total += encode + 5 + (max(0, p - (encode + 5)) if q else 0) + (g - 1) * max(e + 5, p)
                total += p - 1 + 6  # DRAIN
                last_words = len(events) * g
            total += last_words  # OUTPUT
        totals.append(total)
    return totals


def random_conv_net(seed: int) -> IntModel:
    """The regression's random conv network of `seed` (netgen.conv_network), with no build limits."""
    from mintaccel.verify.benches.netgen import conv_network
    return conv_network(np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(40))
def test_conv_cycles_equal_the_doc_formula(seed):
    model = random_conv_net(seed)
    rng = np.random.default_rng(seed)
    n_pe, units = [(1, 0), (2, 0), (4, 1), (8, 2), (8, 1), (16, 1)][seed % 6]  # P = 16: positions WAIT too
    x = random_spikes(seed, 3, model.timesteps, model.n_inputs, density=float(rng.choice([0.05, 0.3, 0.7])))
    cfg = HwConfig.for_model(model, n_pe, threshold_units=units)
    r = simulate(model, x, cfg)
    assert r.cycles.tolist() == conv_doc_formula(model, x, n_pe, cfg.lanes_per_unit), f"seed {seed}"
    assert (sum(r.phases.per_phase().values()) == r.cycles).all()
    assert np.array_equal(r.predictions, run(model, x).predictions)
    for name, b in r.blocks.items():
        assert (b.idle >= 0).all() and ((b.busy + b.idle + b.stall) == r.cycles).all(), name


def test_conv_worked_example_by_hand():
    """A 1 x 2 x 2 input, a 1 x 1 conv to 3 channels (every weight 1, threshold 1: a channel spikes where
    the input does), flatten, dense 12 -> 1; n_pe = 2, one threshold unit per lane (P = 1), T = 1."""
    from mintaccel.core.conv import Conv2dLayer, FlattenLayer
    fmt = WeightFormat("uniform", 2)
    conv = Conv2dLayer(np.ones((3, 1, 1, 1), np.int64), fmt, 2, 1, "hard", Leak("none"), in_shape=(1, 2, 2))
    head = DenseLayer(weight=np.ones((1, 12), np.int64), weight_format=fmt, membrane_bits=2, threshold=1,
                      reset="hard", leak=Leak("none"))
    model = IntModel((conv, FlattenLayer(conv.out_shape), head), 1)
    x = np.array([[[1, 0, 1, 1]]], np.uint8)
    # LOAD: 4 input words (one per position, one channel block). Both layers read a map buffer: SETUP 2.
    # conv: SETUP 2; per position q (W = 1 word, E_q = 1, 0, 1, 1 events, G = 2 channel blocks):
    #   ENCODE 1 + 1 + E + 1, group 0 + 5, group 1 E + 5 -> 13 + 2E: 15, 13, 15, 15 = 58; DRAIN 6 -> 66.
    # dense: the whole 3 x 2 x 2 map is its window: W = 2 x 2 positions x 2 blocks = 8 words; E = 9
    #   spikes (3 channels at 3 positions): SETUP 2 + ENCODE 1 + 8 + 9 + 1 + group 0 5 + DRAIN 6 = 32.
    # OUTPUT 1 word; START and DONE 2: 2 + 4 + 66 + 32 + 1 = 105.
    r = simulate(model, x, HwConfig.for_model(model, 2))
    assert r.cycles.tolist() == [105]
    assert r.activity.position_events[0][0, 0].tolist() == [1, 0, 1, 1]
    assert r.activity.events[0, 0].tolist() == [3, 9]
    phases = {k: int(v[0]) for k, v in r.phases.per_phase().items()}
    assert phases["load"] == 4 and phases["output"] == 1 and phases["encode"] == (4 * 3 + 3) + (10 + 9)
    assert r.blocks["spike_buffer"].ops["reads"][0].tolist() == [4, 8 + 1]  # conv 4 (1 x 1 taps), dense 8, OUTPUT 1
    assert r.blocks["membrane_memory"].ops["writes"][0].tolist() == [8, 1]  # 4 positions x 2 blocks, 1 group


def test_conv_positions_wait_for_a_shared_threshold_unit():
    """P = 16 (n_pe 16, one unit) and a 1 x 1 conv of one word per position: ENCODE + 5 = 8 + E < 16, so
    group 0 of every position after the first waits 16 - (8 + E) cycles (the doc's WAIT0)."""
    from mintaccel.core.conv import Conv2dLayer
    conv = Conv2dLayer(np.ones((4, 2, 1, 1), np.int64), WeightFormat("uniform", 2), 2, 1, "hard", Leak("none"),
                       in_shape=(2, 1, 3))
    model = IntModel((conv,), 1)
    x = np.array([[[1, 0, 0, 1, 1, 1]]], np.uint8)  # channel 0: 1 0 0, channel 1: 1 1 1 -> E_q = 2, 1, 1
    r = simulate(model, x, HwConfig.for_model(model, 16, threshold_units=1))
    assert r.activity.position_events[0][0, 0].tolist() == [2, 1, 1]
    assert int(r.phases.wait[0, 0, 0]) == (16 - 9) + (16 - 9)
    assert r.cycles.tolist() == conv_doc_formula(model, x, 16, 16)
