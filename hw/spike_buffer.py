"""Spike buffer: the spike words of the layer just processed, read back by the next layer's encoder.

Flip-flops (it is small: max_neurons bits). The encoder's read is registered so that the word it
tests comes straight from a register: each cycle both `buffer[index]` and `buffer[index + 1]` are
fetched, and the cycle after, the one matching the encoder's (possibly advanced) index is served,
with its `nonzero` flag (one flip-flop per word, set as the word is written), so the encoder learns
whether a word it takes has a one without an OR tree behind the multiplexer, and with its group flags
(`word_nz`, `word_multi`: gates.group_flags, set per word as it is written) for the same reason.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.hw.gates import flag_groups, group_flags


class SpikeBuffer(wiring.Component):
    def __init__(self, n_pe: int, words: int):
        if n_pe < 1 or words < 1:
            raise ValueError("n_pe and words must be positive")
        self.n_pe, self.words = n_pe, words
        super().__init__({
            "waddr": In(range(words)), "wdata": In(n_pe), "wen": In(1),
            # encoder side: the encoder's index (0 while it is idle, so also at `start`), `advance` moves it
            # to the next word; `next_index` is index + 1 (the encoder's register: no adder in front of the
            # read ahead)
            "start": In(1), "index": In(range(words + 1)), "next_index": In(range(words + 2)), "advance": In(1),
            "word": Out(n_pe), "nonzero": Out(1),
            # the word's group flags (gates.group_flags), served like `nonzero`
            "word_nz": Out(len(flag_groups(n_pe))), "word_multi": Out(len(flag_groups(n_pe))),
            # OUTPUT side (combinational read)
            "out_addr": In(range(words)), "out_data": Out(n_pe),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.n_pe, depth=self.words, init=[])
        wr = mem.write_port()
        here, ahead, out = (mem.read_port(domain="comb") for _ in range(3))
        m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen),
                     out.addr.eq(self.out_addr), self.out_data.eq(out.data)]
        m.d.comb += [here.addr.eq(self.index), ahead.addr.eq(self.next_index)]  # the encoder's index is 0 while idle
        word_here, word_ahead, advanced = Signal(self.n_pe), Signal(self.n_pe), Signal()
        m.d.sync += [word_here.eq(here.data), word_ahead.eq(ahead.data), advanced.eq(self.advance & ~self.start)]
        m.d.comb += self.word.eq(Mux(advanced, word_ahead, word_here))
        # the group flags of every word, set as it is written (like `nonzero`), read with the words
        nz_w, multi_w = group_flags(self.wdata)
        g = len(nz_w)
        table = Signal((self.words + 1) * 2 * g)  # + 1: index + 1 may pass the end
        with m.If(self.wen):
            m.d.sync += table.word_select(self.waddr, 2 * g).eq(Cat(nz_w, multi_w))
        flags_here, flags_ahead = Signal(2 * g), Signal(2 * g)
        m.d.sync += [flags_here.eq(table.word_select(here.addr, 2 * g)),
                     flags_ahead.eq(table.word_select(ahead.addr, 2 * g))]
        served = Mux(advanced, flags_ahead, flags_here)
        m.d.comb += [self.word_nz.eq(served[:g]), self.word_multi.eq(served[g:])]
        if self.n_pe == 1:  # a 1-bit word is its own flag
            m.d.comb += self.nonzero.eq(self.word)
            return m
        flags, nz_here, nz_ahead = Signal(self.words + 1), Signal(), Signal()  # + 1: index + 1 may pass the end
        with m.If(self.wen):
            m.d.sync += flags.bit_select(self.waddr, 1).eq(self.wdata != 0)
        m.d.sync += [nz_here.eq(flags.bit_select(here.addr, 1)), nz_ahead.eq(flags.bit_select(ahead.addr, 1))]
        m.d.comb += self.nonzero.eq(Mux(advanced, nz_ahead, nz_here))
        return m
