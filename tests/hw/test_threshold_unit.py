"""The threshold unit against the reference model's neuron step, on random and corner values."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.hw.threshold_unit import ThresholdUnit
from mintaccel.core.model import DenseLayer, Leak, WeightFormat
from mintaccel.sim.reference import neuron_step

CASES = [(m, reset, leak) for m in (2, 3, 4, 8) for reset in ("hard", "soft")
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
        ctx.set(dut.soft, reset == "soft")
        ctx.set(dut.leak_kind, {"none": 0, "shift": 1, "decay": 2}[leak.kind])
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
