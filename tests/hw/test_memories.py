"""The weight memory (lanes side by side, optionally in slices) and the packed membrane memory: writes, sync reads, initial contents."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.hw.membrane_memory import MembraneMemory
from mintaccel.hw.weight_memory import WeightMemory


def _run(dut, tb):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def test_weight_memory_init_and_write():
    rng = np.random.default_rng(0)
    init = rng.integers(0, 4, (4, 16)).tolist()
    dut = WeightMemory(4, 2, 16, init)

    async def tb(ctx):
        for addr in range(16):
            ctx.set(dut.raddr, addr)
            ctx.set(dut.ren, 1)
            await ctx.tick()
            word = ctx.get(dut.rdata)
            assert [(word >> (2 * i)) & 3 for i in range(4)] == [init[i][addr] for i in range(4)]
        ctx.set(dut.waddr, 5)
        ctx.set(dut.wdata, 0b11100100)
        ctx.set(dut.wen, 1)
        await ctx.tick()
        ctx.set(dut.wen, 0)
        ctx.set(dut.raddr, 5)
        await ctx.tick()
        assert ctx.get(dut.rdata) == 0b11100100
        ctx.set(dut.ren, 0)  # data holds while the read port is disabled
        ctx.set(dut.raddr, 0)
        await ctx.tick()
        assert ctx.get(dut.rdata) == 0b11100100

    _run(dut, tb)


@pytest.mark.parametrize("slice_bits", [0, 3, 8])
def test_weight_memory_slices_hold_the_same_words(slice_bits):
    """Cut into slices (the ECP5 flow's choice) or not, the memory reads back its packed words."""
    rng = np.random.default_rng(1)
    init = rng.integers(0, 4, (4, 12)).tolist()
    dut = WeightMemory(4, 2, 12, init, slice_bits=slice_bits)
    words = [sum(init[i][a] << (2 * i) for i in range(4)) for a in range(12)]
    new = int(rng.integers(0, 256))

    async def tb(ctx):
        ctx.set(dut.waddr, 7)
        ctx.set(dut.wdata, new)
        ctx.set(dut.wen, 1)
        await ctx.tick()
        ctx.set(dut.wen, 0)
        ctx.set(dut.ren, 1)
        for addr in range(12):
            ctx.set(dut.raddr, addr)
            await ctx.tick()
            assert ctx.get(dut.rdata) == (new if addr == 7 else words[addr]), addr

    _run(dut, tb)


def test_membrane_words():
    dut = MembraneMemory(8, 2, 4)

    async def tb(ctx):
        for addr in range(4):
            ctx.set(dut.waddr, addr)
            ctx.set(dut.wdata, 0x1234 * (addr + 1) & 0xFFFF)
            ctx.set(dut.wen, 1)
            await ctx.tick()
        ctx.set(dut.wen, 0)
        for addr in range(4):
            ctx.set(dut.raddr, addr)
            ctx.set(dut.ren, 1)
            await ctx.tick()
            assert ctx.get(dut.rdata) == 0x1234 * (addr + 1) & 0xFFFF

    _run(dut, tb)
