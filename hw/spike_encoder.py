"""Event-driven input: turns n_pe-bit spike words into the indices of their ones.

Each word costs one cycle to take in, plus one cycle per 1 in it (lowest index first). Bits past
`n_in` in the last word are masked, so padding never becomes an event.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SpikeEncoder(wiring.Component):
    def __init__(self, n_pe: int, max_inputs: int):
        if n_pe < 1 or max_inputs < 2:
            raise ValueError("n_pe must be >= 1 and max_inputs >= 2")
        self.n_pe = n_pe
        self.index_bits = (max_inputs - 1).bit_length()
        count_bits = max_inputs.bit_length()
        super().__init__({
            "start": In(1),
            "n_in": In(count_bits),
            "words": In(stream.Signature(n_pe)),
            "word_index": Out(count_bits),
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
        base = Signal(len(self.n_in) + 1)
        remaining = Signal(len(self.n_in) + 1)  # inputs from the current word on
        pending = Signal(n)
        last_word = remaining <= n
        masked = Signal(n)
        m.d.comb += masked.eq(self.words.payload & Mux(last_word, _low_mask(remaining, n), (1 << n) - 1))

        lsb = Signal(range(n))
        for i in reversed(range(n)):
            with m.If(pending[i]):
                m.d.comb += lsb.eq(i)
        single = (pending & (pending - 1)) == 0

        def next_word():
            m.d.sync += [base.eq(base + n), remaining.eq(remaining - n), self.word_index.eq(self.word_index + 1)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [base.eq(0), remaining.eq(self.n_in), self.word_index.eq(0), self.event_count.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.words.ready.eq(1), self.stall.eq(~self.words.valid)]
                with m.If(self.words.valid):
                    with m.If(masked == 0):
                        with m.If(last_word):
                            m.d.comb += self.finish.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            next_word()
                    with m.Else():
                        m.d.sync += pending.eq(masked)
                        m.next = "EXTRACT"
            with m.State("EXTRACT"):
                m.d.comb += [self.busy.eq(1), self.event_valid.eq(1), self.event_index.eq(base + lsb)]
                m.d.sync += [pending.eq(pending & (pending - 1)), self.event_count.eq(self.event_count + 1)]
                with m.If(single):
                    with m.If(last_word):
                        m.d.comb += self.finish.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        next_word()
                        m.next = "LOAD"
        return m


def _low_mask(remaining, n):
    """Bit i set when i < remaining (remaining <= n on the last word)."""
    return Cat(*(remaining > i for i in range(n)))
