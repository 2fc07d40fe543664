"""Event-driven input: turns n_pe-bit spike words into the indices of their ones.

Each word costs one cycle to take in, plus one cycle per 1 in it (lowest index first), plus one DONE
cycle at the end. Bits past `n_in` in the last word are masked, so padding never becomes an event.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits


class SpikeEncoder(wiring.Component):
    def __init__(self, n_pe: int, max_inputs: int):
        if n_pe < 1 or max_inputs < 2:
            raise ValueError("n_pe must be >= 1 and max_inputs >= 2")
        self.n_pe = n_pe
        self.index_bits = address_bits(max_inputs)
        count_bits = max_inputs.bit_length()
        super().__init__({
            "start": In(1),
            "n_in": In(count_bits),
            "words": In(stream.Signature(n_pe)),
            "word_index": Out(count_bits),
            "advance": Out(1),  # word_index moves to the next word at the end of this cycle
            "event_valid": Out(1),
            "event_index": Out(self.index_bits),
            "event_count": Out(count_bits),
            "busy": Out(1),
            "finish": Out(1),
            "stall": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n_pe
        ones = (1 << n) - 1
        base = Signal(len(self.n_in) + 1)
        remaining = Signal(len(self.n_in) + 1)  # inputs from the current word on
        last = Signal()  # the current word is the last one
        mask = Signal(n)  # lanes of the current word that are inputs (padding masked)
        pending = Signal(n)
        # `last` and `mask` are registered for the word being taken in, keeping the compare chains off
        # the path from the spike word to the state register
        masked = Signal(n)
        m.d.comb += masked.eq(self.words.payload & mask)

        lsb = Signal(range(n))
        for i in reversed(range(n)):
            with m.If(pending[i]):
                m.d.comb += lsb.eq(i)
        single = (pending & (pending - 1)) == 0

        def word(rem):
            m.d.sync += [remaining.eq(rem), last.eq(rem <= n), mask.eq(Mux(rem <= n, _low_mask(rem, n), ones))]

        def next_word():
            word(remaining - n)
            m.d.sync += [base.eq(base + n), self.word_index.eq(self.word_index + 1)]
            m.d.comb += self.advance.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    word(self.n_in)
                    m.d.sync += [base.eq(0), self.word_index.eq(0), self.event_count.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.words.ready.eq(1), self.stall.eq(~self.words.valid)]
                with m.If(self.words.valid):
                    with m.If(masked == 0):
                        with m.If(last):
                            m.next = "DONE"
                        with m.Else():
                            next_word()
                    with m.Else():
                        m.d.sync += pending.eq(masked)
                        m.next = "EXTRACT"
            with m.State("EXTRACT"):
                m.d.comb += [self.busy.eq(1), self.event_valid.eq(1), self.event_index.eq(base + lsb)]
                m.d.sync += [pending.eq(pending & (pending - 1)), self.event_count.eq(self.event_count + 1)]
                with m.If(single):
                    with m.If(last):
                        m.next = "DONE"
                    with m.Else():
                        next_word()
                        m.next = "LOAD"
            with m.State("DONE"):
                # `finish` comes from a register, so the controller's next state does not wait on a word
                m.d.comb += [self.busy.eq(1), self.finish.eq(1)]
                m.next = "IDLE"
        return m


def _low_mask(remaining, n):
    """Bit i set when i < remaining (remaining <= n on the last word)."""
    return Cat(*(remaining > i for i in range(n)))
