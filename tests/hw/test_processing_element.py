"""The processing element decodes every weight format and accumulates without a multiplier."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.hw.images import weight_code
from mintaccel.hw.processing_element import ProcessingElement, format_index
from mintaccel.core.model import WeightFormat

FORMATS = list(WeightFormat.every())


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_accumulates_random_weights(fmt):
    seed = FORMATS.index(fmt)
    rng = np.random.default_rng(seed)
    dut = ProcessingElement(weight_bits=8, acc_bits=16)
    weights = rng.choice(fmt.levels(), 200)
    enables = rng.random(200) < 0.7
    bias = int(rng.integers(-100, 100))

    async def tb(ctx):
        ctx.set(dut.format, 1 << format_index(fmt, 8))
        ctx.set(dut.load, 1)
        ctx.set(dut.init, bias)
        await ctx.tick()
        ctx.set(dut.load, 0)
        expected = bias
        for w, en in zip(weights, enables):
            ctx.set(dut.code, int(weight_code(np.array([w]), fmt)[0]))
            ctx.set(dut.enable, int(en))
            assert ctx.get(dut.weight) == w, f"seed {seed}: decode of {w}"
            await ctx.tick()
            expected += int(w) * int(en)
            assert ctx.get(dut.acc) == expected, f"seed {seed}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="weight_bits"):
        ProcessingElement(weight_bits=9, acc_bits=16)
    with pytest.raises(ValueError, match="cannot hold"):
        ProcessingElement(weight_bits=4, acc_bits=4)
