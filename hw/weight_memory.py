"""Weight SRAM: n_pe lanes of weight codes per address, so every PE reads one weight per cycle (sync read).

One memory of `n_pe * weight_bits`-bit words, lane i in bits [i * weight_bits, (i + 1) * weight_bits),
so synthesis packs the lanes side by side into block RAM modes as wide as the depth allows (256 x 16
on the iCE40, 2048 x 9 on the ECP5 for the default build) instead of one block RAM per lane. An SPRAM
build (`HwConfig.weight_spram`) marks it `ram_style = "huge"`, which Yosys maps to the iCE40 UP5K's
SB_SPRAM256KA (16 bits wide: eight 2-bit lanes per SPRAM, side by side for more). `slice_bits` cuts the
word into memories of that many bits (`slice0`, `slice1`, ...): the flow's choice on a target where
one memory would cascade block RAMs in depth, whose read multiplexer would be the critical path
(flows/fit.py). Reads and writes share one address: writes come from the host while the accelerator
is idle, reads while it runs, so the single port loses nothing, and a read never meets a write
(`NO_RW_CHECK`, hw/sram.py)."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.hw.images import pack_lanes
from mintaccel.hw.sram import NO_RW_CHECK, registered_read

#: The memory attribute that sends a memory to the iCE40 UP5K's SPRAM in Yosys's memory_libmap.
SPRAM_ATTRS = {"ram_style": "huge"}
#: The name of an SPRAM weight memory: Amaranth writes an all-zero $meminit for every memory, which
#: SPRAM cannot hold, so the flows delete the $meminit cells of memories of this name (flows/yosys.py).
SPRAM_NAME = "spram"
#: The name of a block-RAM weight memory (the netlist's `weights.mem`); slices add their number.
BRAM_NAME = "mem"
SLICE_NAME = "slice"


class WeightMemory(wiring.Component):
    def __init__(self, n_pe: int, weight_bits: int, depth: int, init=None, spram: bool = False,
                 slice_bits: int = 0):
        """`init`: codes per lane, [n_pe][<= depth] (hw/images.py's weight_banks), packed into words here;
        an SPRAM build takes none (SPRAM has no initial contents). `slice_bits`: 0 for one memory."""
        if init is not None and (len(init) != n_pe or any(len(b) > depth for b in init)):
            raise ValueError(f"init must be {n_pe} lanes of at most {depth} codes")
        if spram and init is not None:
            raise ValueError("an SPRAM weight memory has no initial contents: load the weights at run time")
        if slice_bits < 0 or (spram and slice_bits):
            raise ValueError("slice_bits must be >= 0, and 0 for an SPRAM weight memory")
        self.n_pe, self.weight_bits, self.depth, self.spram = n_pe, weight_bits, depth, spram
        self.slice_bits = slice_bits
        self._init = init
        abits = address_bits(depth)
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(n_pe * weight_bits),
            "waddr": In(abits), "wdata": In(n_pe * weight_bits), "wen": In(1),
        })

    def words(self) -> list[int]:
        """The initial contents as packed words (lane 0 in the low bits), trailing zero words dropped."""
        if self._init is None:
            return []
        lanes = np.zeros((self.n_pe, self.depth), np.int64)
        for i, codes in enumerate(self._init):
            lanes[i, :len(codes)] = codes
        words = [pack_lanes(lanes[:, a], self.weight_bits) for a in range(self.depth)]
        while words and not words[-1]:
            words.pop()
        return words

    def elaborate(self, platform):
        m = Module()
        addr = Signal.like(self.raddr)
        m.d.comb += addr.eq(Mux(self.wen, self.waddr, self.raddr))
        width, words = self.n_pe * self.weight_bits, self.words()
        if self.spram or not self.slice_bits:
            parts = [(SPRAM_NAME if self.spram else BRAM_NAME, 0, width)]
        else:
            parts = [(f"{SLICE_NAME}{i}", lo, min(lo + self.slice_bits, width))
                     for i, lo in enumerate(range(0, width, self.slice_bits))]
        for name, lo, hi in parts:
            mem = memory.Memory(shape=hi - lo, depth=self.depth, init=[w >> lo & ((1 << hi - lo) - 1) for w in words],
                                attrs={**NO_RW_CHECK, **(SPRAM_ATTRS if self.spram else {})})
            m.submodules[name] = mem
            wr = mem.write_port()
            m.d.comb += [
                self.rdata[lo:hi].eq(registered_read(m, mem, addr, self.ren & ~self.wen)),
                wr.addr.eq(addr), wr.data.eq(self.wdata[lo:hi]), wr.en.eq(self.wen),
            ]
        return m
