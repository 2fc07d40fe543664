"""Membrane SRAM: every neuron's membrane at the build's membrane width, n_pe lanes per word.

The same packed memory holds the biases (`bias_bits` lanes) when a build supports them.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits


class MembraneMemory(wiring.Component):
    def __init__(self, n_pe: int, lane_bits: int, depth: int, init=None):
        if lane_bits < 1 or n_pe < 1 or depth < 1:
            raise ValueError("n_pe, lane_bits and depth must be positive")
        if init is not None and len(init) > depth:
            raise ValueError(f"init has {len(init)} words, depth is {depth}")
        self.width, self.depth = n_pe * lane_bits, depth
        self._init = list(init) if init is not None else []
        abits = address_bits(depth)
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(self.width),
            "waddr": In(abits), "wdata": In(self.width), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=self._init)
        rd, wr = mem.read_port(), mem.write_port()
        m.d.comb += [
            rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata.eq(rd.data),
            wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen),
        ]
        return m
