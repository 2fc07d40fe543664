"""The whole accelerator in amaranth.sim against the reference model and the cycle formula."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.hwlayer import hw_layers
from mintaccel.core.model import IntModel
from mintaccel.hw.images import spike_words
from mintaccel.model_export import datasets
from mintaccel.sim.cycle import simulate
from mintaccel.sim.encoding import rate_encode
from mintaccel.sim.reference import run
from tests.conftest import random_model, random_spikes
from tests.hw.driver import formula_cycles, run_accelerator


def check(model, cfg, x, results):
    ref = run(model, x)
    for b, res in enumerate(results):
        for l in range(len(model.layers)):
            assert np.array_equal(res.spikes[l], ref.spikes[l][b]), f"sample {b} layer {l} spikes"
            assert np.array_equal(res.membranes[l], ref.membranes[l][b]), f"sample {b} layer {l} membranes"
        expected_out = [w for t in range(model.timesteps) for w in spike_words(ref.spikes[-1][b, t], cfg.n_pe)]
        assert res.outputs == expected_out
        assert res.cycles - res.stall_cycles == formula_cycles(model, cfg.n_pe, x[b], cfg.lanes_per_unit)


def test_shipped_model_on_digits(shipped_model):
    cfg = HwConfig.for_model(shipped_model)
    x = rate_encode(datasets.digits().x_test[:3], shipped_model.timesteps, 16)
    results = run_accelerator(shipped_model, cfg, x)
    check(shipped_model, cfg, x, results)
    assert all(r.stall_cycles == 0 for r in results)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_loaded_at_run_time(seed):
    """Every weight and membrane format, both resets, both leaks, biases; odd n_pe and padding; odd seeds
    with the ECP5 build's event reads (bram_output_registers)."""
    model = random_model(seed, sizes=(11, 7, 5), timesteps=4)
    n_pe = [3, 4, 8][seed % 3]
    cfg = HwConfig.for_model(model, n_pe, bias_bits=8, weight_bits=8, membrane_bits=8)
    x = np.concatenate([random_spikes(seed, 2, 4, 11), np.zeros((1, 4, 11), np.uint8), np.ones((1, 4, 11), np.uint8)])
    check(model, cfg, x, run_accelerator(model, cfg, x, preload=False, bram_output_registers=seed % 2 == 1))


@pytest.mark.parametrize("seed", range(4))
def test_shared_threshold_units(seed):
    """U units for n_pe lanes (P = n_pe / U beats per group): sparse and dense inputs, so that groups
    both wait for the units and outlast them; preloaded and loaded at run time; the cycle-accurate
    simulator's cycles."""
    model = random_model(200 + seed, sizes=(12, 13, 5), timesteps=3)
    n_pe, units = [(8, 2), (8, 4), (6, 3), (8, 1)][seed]
    cfg = HwConfig.for_model(model, n_pe, threshold_units=units, bias_bits=8, weight_bits=8, membrane_bits=8)
    x = np.concatenate([random_spikes(seed, 2, 3, 12, density=0.08), random_spikes(seed + 9, 1, 3, 12)])
    results = run_accelerator(model, cfg, x, preload=seed % 2 == 0)
    check(model, cfg, x, results)
    assert [r.cycles for r in results] == simulate(model, x, cfg).cycles.tolist(), f"seed {seed}"


def test_back_pressure_adds_exactly_the_stall_cycles():
    model = random_model(7, sizes=(9, 6), timesteps=3)
    cfg = HwConfig.for_model(model, 4)
    rng = np.random.default_rng(7)
    gaps, stalls = set(rng.integers(0, 300, 60).tolist()), set(rng.integers(0, 300, 60).tolist())
    x = random_spikes(7, 2, 3, 9)
    results = run_accelerator(model, cfg, x, input_gaps=lambda c: c in gaps, output_stalls=lambda c: c in stalls)
    check(model, cfg, x, results)
    assert all(r.stall_cycles > 0 for r in results)


@pytest.mark.parametrize("seed", range(4))
def test_threshold_above_the_bound_widens_the_accumulator(seed):
    """docs/arithmetic.md section 3: A = max(bitlength(B), bitlength(theta)) + 1. One random layer gets a
    threshold above what the build's B-derived accumulator holds; for_model widens the accumulator to
    bitlength(theta) + 1, and the RTL (preloaded or loaded at run time) equals the reference model, the
    cycle formula and the cycle-accurate simulator."""
    rng = np.random.default_rng(100 + seed)
    base = random_model(100 + seed, sizes=(7, 5, 4), timesteps=4)
    n_pe = [2, 3, 4, 8][seed]
    narrow = HwConfig.for_model(base, n_pe)
    l = int(rng.integers(len(base.layers)))
    theta = int(rng.integers(narrow.threshold_max + 1, min(2**20, 8 * narrow.threshold_max) + 1))
    layers = list(base.layers)
    layers[l] = dataclasses.replace(layers[l], threshold=theta)
    model = IntModel(tuple(layers), base.timesteps)
    cfg = HwConfig.for_model(model, n_pe)
    assert cfg.accumulator_bits == theta.bit_length() + 1 > narrow.accumulator_bits, f"seed {seed}"
    assert dataclasses.replace(cfg, acc_bits=narrow.acc_bits) == narrow  # nothing else changes
    x = np.concatenate([random_spikes(seed, 2, 4, 7), np.ones((1, 4, 7), np.uint8)])
    results = run_accelerator(model, cfg, x, preload=seed % 2 == 0)
    check(model, cfg, x, results)
    assert [r.cycles for r in results] == simulate(model, x, cfg).cycles.tolist(), f"seed {seed}"


# ---- conv networks (docs/microarchitecture.md, "Conv networks") ----

def check_conv(model, cfg, x, results):
    """Spikes and membranes of every neuron layer and step equal the reference model's, the output stream
    is the last layer's words, and the cycles are the cycle-accurate simulator's (itself the doc's)."""
    from mintaccel.hw.images import output_words
    ref = run(model, x)
    sim = simulate(model, x, cfg)
    for b, res in enumerate(results):
        for l, layer in enumerate(model.layers):
            if res.spikes[l] is None:
                continue
            assert np.array_equal(res.spikes[l], ref.spikes[l][b]), f"sample {b} layer {l} spikes"
            assert np.array_equal(res.membranes[l], ref.membranes[l][b]), f"sample {b} layer {l} membranes"
        assert res.outputs == [w for t in range(model.timesteps) for w in output_words(model, cfg, ref.spikes[-1][b, t])]
        assert res.cycles - res.stall_cycles == sim.cycles[b], f"sample {b}: RTL {res.cycles - res.stall_cycles} cycles, simulator {sim.cycles[b]}"


@pytest.mark.parametrize("seed", range(8))
def test_random_conv_networks(seed):
    """Random conv networks (pool first, conv last, strides, padding, both pools, overlapping pool windows,
    channels past n_pe, biases, every format), preloaded or loaded at run time, shared threshold units;
    seeds 4 .. 7 with the ECP5 build's event reads (bram_output_registers)."""
    from tests.sim.cycle.test_controller import random_conv_net
    n_pe, units = [(2, 0), (4, 1), (8, 2), (3, 0)][seed % 4]
    net = next(k for k in range(seed, seed + 1000, 50) if not random_conv_net(k).layers[0].kind == "flatten")
    model = random_conv_net(net)
    cfg = HwConfig.for_model(model, n_pe, threshold_units=units, bias_bits=8, weight_bits=8, membrane_bits=8)
    x = random_spikes(seed, 2, model.timesteps, model.n_inputs, density=[0.2, 0.5][seed % 2])
    check_conv(model, cfg, x, run_accelerator(model, cfg, x, preload=seed % 2 == 0, bram_output_registers=seed >= 4))


def test_register_writes_land_before_a_start_that_follows_at_once():
    """`start` right after the last load beat sees every register: here the last beats are the registers,
    `load_words` the very last (the controller reads it in the `start` cycle itself), on a conv network
    whose layer 0 LOADs its map."""
    from mintaccel.core.encodings import LoadSpace
    from mintaccel.hw.registers import GLOBAL_LOAD_WORDS
    from tests.sim.cycle.test_controller import random_conv_net
    model = random_conv_net(next(k for k in range(1000) if random_conv_net(k).layers[0].kind == "conv2d"))
    cfg = HwConfig.for_model(model, 4, bias_bits=8, weight_bits=8, membrane_bits=8)

    def registers_last(seq):
        regs = [b for b in seq if b[0] == LoadSpace.registers.value]
        key = [b for b in regs if b[1] == GLOBAL_LOAD_WORDS]
        assert len(key) == 1 and key[0][2] > 0
        others = [b for b in regs if b[1] != GLOBAL_LOAD_WORDS]
        return [b for b in seq if b[0] != LoadSpace.registers.value] + others + key

    x = random_spikes(5, 2, model.timesteps, model.n_inputs, density=0.4)
    check_conv(model, cfg, x, run_accelerator(model, cfg, x, preload=False, order=registers_last))


@pytest.mark.parametrize("n_pe", [4, 8])
def test_dense_register_writes_land_before_a_start_that_follows_at_once(n_pe):
    """The same on a dense network: the registers last, layer 0's `n_in` the very last beat (the encoder
    masks its last word with the host interface's register of it): inputs not a multiple of n_pe, and 1s
    in the host words' padding."""
    from mintaccel.core.encodings import LoadSpace
    from mintaccel.hw.registers import LAYER_BASE
    model = random_model(3, sizes=(11, 7, 5), timesteps=3)
    cfg = HwConfig.for_model(model, n_pe, bias_bits=8, weight_bits=8, membrane_bits=8)

    def n_in_last(seq):
        regs = [b for b in seq if b[0] == LoadSpace.registers.value]
        key = [b for b in regs if b[1] == LAYER_BASE]  # layer 0, field 0: n_in
        assert len(key) == 1 and key[0][2] == 11
        return [b for b in seq if b[0] != LoadSpace.registers.value] + [b for b in regs if b not in key] + key

    x = np.concatenate([random_spikes(3, 2, 3, 11), np.ones((1, 3, 11), np.uint8)])
    check(model, cfg, x, run_accelerator(model, cfg, x, preload=False, order=n_in_last, padding_ones=True))


@pytest.mark.parametrize("seed", range(8, 12))
def test_conv_back_pressure_adds_exactly_the_stall_cycles(seed):
    """Gaps on spikes_in during LOAD and a host slow to take spikes_out: the stalls are counted, and
    cycles minus stalls stay the simulator's; P = 16 (n_pe 16, one unit) so that positions wait."""
    from tests.sim.cycle.test_controller import random_conv_net
    n_pe, units = [(4, 0), (16, 1), (2, 0), (8, 1)][seed % 4]
    # the first network reading a map whose walk is under 2,000 words a step: stalls need positions, not
    # size (seed 10's first, 5,190 words, took 99 s at 2 PEs); large networks run in `mintaccel regress`
    net = next(k for k in range(seed, seed + 1000, 50) if random_conv_net(k).layers[0].kind != "flatten"
               and _walk_words(random_conv_net(k), n_pe) < 2000)
    model = random_conv_net(net)
    cfg = HwConfig.for_model(model, n_pe, threshold_units=units, bias_bits=8, weight_bits=8, membrane_bits=8)
    x = random_spikes(seed, 2, model.timesteps, model.n_inputs, density=0.3)
    rng = np.random.default_rng(seed)
    gaps, stalls = rng.random(400_000) < 0.3, rng.random(400_000) < 0.5
    results = run_accelerator(model, cfg, x, input_gaps=lambda c: gaps[c], output_stalls=lambda c: stalls[c])
    check_conv(model, cfg, x, results)
    assert all(r.stall_cycles > 0 for r in results)


def _walk_words(model, n_pe) -> int:
    """Words the map readers deliver in one time step (docs/microarchitecture.md: W per output position)."""
    return sum(v.positions * v.reads for v in hw_layers(model, n_pe) if v.is_map)


def test_shipped_conv_model_on_digits():
    """The shipped digits conv model, one test sample, 16 PEs: every layer's spikes and membranes."""
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    model = load_model(shipped_model_path("digits-conv-w2m2.npz"))
    cfg = HwConfig.for_model(model, 16)
    x = rate_encode(datasets.digits().x_test[:1], model.timesteps, 16)
    results = run_accelerator(model, cfg, x, max_cycles=400_000)
    check_conv(model, cfg, x, results)
