"""Weight SRAM: one bank per PE lane, so every PE reads one weight per cycle (sync read)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits


class WeightMemory(wiring.Component):
    def __init__(self, n_pe: int, weight_bits: int, depth: int, init=None):
        if init is not None and (len(init) != n_pe or any(len(b) > depth for b in init)):
            raise ValueError(f"init must be {n_pe} banks of at most {depth} codes")
        self.n_pe, self.weight_bits, self.depth = n_pe, weight_bits, depth
        self._init = init
        abits = address_bits(depth)
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(n_pe * weight_bits),
            "waddr": In(abits), "wdata": In(n_pe * weight_bits), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        wb = self.weight_bits
        for i in range(self.n_pe):
            init = [int(v) for v in self._init[i]] if self._init is not None else []
            bank = m.submodules[f"bank{i}"] = memory.Memory(shape=wb, depth=self.depth, init=init)
            rd, wr = bank.read_port(), bank.write_port()
            m.d.comb += [
                rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata[i * wb:(i + 1) * wb].eq(rd.data),
                wr.addr.eq(self.waddr), wr.data.eq(self.wdata[i * wb:(i + 1) * wb]), wr.en.eq(self.wen),
            ]
        return m
