"""Weight SRAM: n_pe lanes of weight codes per address, so every PE reads one weight per cycle (sync read).

Block-RAM builds keep one bank per lane (synthesis packs each bank on its own). An SPRAM build
(`HwConfig.weight_spram`) is one wide single-port memory marked `ram_style = "huge"`, which Yosys maps
to the iCE40 UP5K's SB_SPRAM256KA (16 bits wide: eight 2-bit lanes per SPRAM, side by side for more).
Both share one address between reads and writes: writes come from the host while the accelerator is
idle, reads while it runs, so the single port loses nothing."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits

#: The memory attribute that sends a memory to the iCE40 UP5K's SPRAM in Yosys's memory_libmap.
SPRAM_ATTRS = {"ram_style": "huge"}
#: Its name: Amaranth writes an all-zero $meminit for every memory, which SPRAM cannot hold, so the
#: flows delete the $meminit cells of memories of this name before synthesis (flows/yosys.py).
SPRAM_NAME = "spram"


class WeightMemory(wiring.Component):
    def __init__(self, n_pe: int, weight_bits: int, depth: int, init=None, spram: bool = False):
        """`init`: codes per bank, [n_pe][<= depth]; an SPRAM build takes none (SPRAM has no initial
        contents)."""
        if init is not None and (len(init) != n_pe or any(len(b) > depth for b in init)):
            raise ValueError(f"init must be {n_pe} banks of at most {depth} codes")
        if spram and init is not None:
            raise ValueError("an SPRAM weight memory has no initial contents: load the weights at run time")
        self.n_pe, self.weight_bits, self.depth, self.spram = n_pe, weight_bits, depth, spram
        self._init = init
        abits = address_bits(depth)
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(n_pe * weight_bits),
            "waddr": In(abits), "wdata": In(n_pe * weight_bits), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        wb = self.weight_bits
        addr = Signal.like(self.raddr)
        m.d.comb += addr.eq(Mux(self.wen, self.waddr, self.raddr))
        if self.spram:
            width = self.n_pe * wb
            banks = [(memory.Memory(shape=width, depth=self.depth, init=[], attrs=SPRAM_ATTRS), 0, width)]
        else:
            banks = [(memory.Memory(shape=wb, depth=self.depth,
                                    init=[int(v) for v in self._init[i]] if self._init is not None else []),
                      i * wb, (i + 1) * wb) for i in range(self.n_pe)]
        for i, (bank, lo, hi) in enumerate(banks):
            m.submodules[SPRAM_NAME if self.spram else f"bank{i}"] = bank
            rd, wr = bank.read_port(), bank.write_port()
            m.d.comb += [
                rd.addr.eq(addr), rd.en.eq(self.ren & ~self.wen), self.rdata[lo:hi].eq(rd.data),
                wr.addr.eq(addr), wr.data.eq(self.wdata[lo:hi]), wr.en.eq(self.wen),
            ]
        return m
