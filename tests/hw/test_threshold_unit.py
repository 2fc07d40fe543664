"""The threshold unit against the reference model's neuron step, on random and corner values."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.core.encodings import MEMBRANE_BITS, LeakKind, ResetMode
from mintaccel.core.hwconfig import THRESHOLD_LATENCY
from mintaccel.hw.threshold_unit import ThresholdUnit
from mintaccel.core.model import RESETS, DenseLayer, Leak, WeightFormat
from mintaccel.sim.reference import neuron_step

CASES = [(m, reset, leak) for m in MEMBRANE_BITS for reset in RESETS
         for leak in (Leak("none"), Leak("shift", 1), Leak("shift", 3), Leak("decay", 1), Leak("decay", 4),
                      Leak("shift", 15))]


@pytest.mark.parametrize("membrane_bits, reset, leak", CASES, ids=lambda v: str(v))
def test_matches_reference_neuron_step(membrane_bits, reset, leak):
    acc_bits = 12
    seed = membrane_bits * 100 + len(str(leak)) + leak.k
    rng = np.random.default_rng(seed)
    q = (1 << (membrane_bits - 1)) - 1
    dut = ThresholdUnit(membrane_bits, acc_bits)
    thresholds = rng.integers(1, 2 ** (acc_bits - 1) - q, 12)
    thresholds[:4] = [1, 2, q + 1, 2 ** (acc_bits - 1) - q - 1]
    limit = 2 ** (acc_bits - 1) - q - 1  # |u + acc| stays within the accumulator (section 3)
    accs = np.concatenate([rng.integers(-limit, limit + 1, 60), [-limit, limit, 0, 1, -1]])

    async def tb(ctx):
        ctx.set(dut.reset_mode, ResetMode[reset])
        ctx.set(dut.leak_kind, LeakKind[leak.kind])
        ctx.set(dut.leak_k, leak.k)
        ctx.set(dut.membrane_max, q)
        ctx.set(dut.lane, 1)
        for theta in thresholds:
            # a wide layer, so that the bound B of section 3 admits every accumulator value used here
            layer = DenseLayer(weight=np.zeros((1, 4096), int), weight_format=WeightFormat("uniform", 2),
                               membrane_bits=membrane_bits, threshold=int(theta), reset=reset, leak=leak)
            us = rng.integers(-q, q + 1, len(accs))
            spikes, u_next = neuron_step(layer, us[:, None], accs[:, None])
            expected = list(zip(spikes[:, 0].astype(int).tolist(), u_next[:, 0].tolist()))
            ctx.set(dut.threshold, int(theta))
            got = []
            # one value per cycle; results come out LATENCY cycles later, in order
            for i in range(len(accs) + ThresholdUnit.LATENCY):
                feeding = i < len(accs)
                ctx.set(dut.valid_in, feeding)
                ctx.set(dut.u, int(us[i]) if feeding else 0)
                ctx.set(dut.acc, int(accs[i]) if feeding else 0)
                if ctx.get(dut.valid_out):
                    got.append((ctx.get(dut.spike), ctx.get(dut.u_next)))
                await ctx.tick()
            assert got == expected, f"seed {seed}: theta={theta}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_invalid_lane_never_spikes():
    dut = ThresholdUnit(2, 8)

    async def tb(ctx):
        ctx.set(dut.threshold, 1)
        ctx.set(dut.acc, 50)
        ctx.set(dut.valid_in, 1)
        for lane in (0, 1):
            ctx.set(dut.lane, lane)
            await ctx.tick().repeat(ThresholdUnit.LATENCY)
            assert ctx.get(dut.valid_out) and ctx.get(dut.spike) == lane

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_pipeline_depth_is_the_core_latency():
    """The RTL's measured valid_in -> valid_out depth is THRESHOLD_LATENCY, the constant the cycle model's
    LAYER_DRAIN and the benches' contract take."""
    dut = ThresholdUnit(2, 8)

    async def tb(ctx):
        ctx.set(dut.valid_in, 1)
        await ctx.tick()
        ctx.set(dut.valid_in, 0)
        seen = []
        for cycle in range(1, 2 * THRESHOLD_LATENCY):
            if ctx.get(dut.valid_out):
                seen.append(cycle)
            await ctx.tick()
        assert seen == [THRESHOLD_LATENCY]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_assertions_flag_removes_only_the_assert():
    """Synthesis builds (assertions=False) carry no Assert: no `assert` in the Verilog."""
    from amaranth.back import verilog
    checked = verilog.convert(ThresholdUnit(2, 8), name="tu")
    plain = verilog.convert(ThresholdUnit(2, 8, assertions=False), name="tu")
    assert "assert" in checked and "assert" not in plain
