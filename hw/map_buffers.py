"""Map buffers of a conv build: two block RAMs of `max_map_words` spike words, read by the map reader's
walk for one layer while the layer's spike words are written into the other (docs/microarchitecture.md,
"Conv networks").

The reader's descriptors are fetched into a three-word queue: a read is issued while fewer than three
words are queued or in flight (registers of the count, so no decision waits on the encoder), the word comes
back the cycle after, is tested for a one (`nonzero`, the encoder's flag) and queued with its tap base
and flags; a padding tap queues a zero word without reading. At one word per cycle the queue never
runs dry once it has filled, so the encoder takes a word in every cycle it wants one. OUTPUT reads the
buffer being written (the last layer's), one cycle ahead of the word it streams.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.hw.map_reader import descriptor_layout

QUEUE = 3  # words queued or in flight: one read's latency plus one take per cycle, without a bubble


def word_layout(n_pe: int, index_bits: int) -> data.StructLayout:
    return data.StructLayout({"word": n_pe, "nonzero": 1, "base": index_bits + 1, "merge": 1,
                              "position_last": 1})


class MapBuffers(wiring.Component):
    def __init__(self, n_pe: int, map_words: int, index_bits: int):
        if n_pe < 1 or map_words < 1:
            raise ValueError("n_pe and map_words must be positive")
        self.n_pe, self.map_words, self.index_bits = n_pe, map_words, index_bits
        abits = address_bits(map_words)
        super().__init__({
            "reads": In(stream.Signature(descriptor_layout(map_words, index_bits))),
            "rsel": In(1),  # the buffer the reader reads; OUTPUT reads the other
            "words": Out(stream.Signature(word_layout(n_pe, index_bits))),
            "waddr": In(abits), "wdata": In(n_pe), "wen": In(1), "wsel": In(1),
            "out_addr": In(abits), "out_data": Out(n_pe),  # sync: out_data is out_addr's word a cycle later
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n_pe
        layout = word_layout(n, self.index_bits)
        m.submodules.queue = q = fifo.SyncFIFO(width=layout.size, depth=QUEUE)
        d = self.reads.payload
        # `held` counts the words queued or in flight (the queue's level plus the read in flight) and `room`
        # is its next value's `< QUEUE`, both registers: the reader's walk enables start at a flip-flop, not
        # behind the level's adder and compare. +1/-1 muxed, not a four-term sum (Yosys would make a $macc).
        inflight, room, held = Signal(), Signal(init=1), Signal(range(QUEUE + 1))
        issue = self.reads.valid & room
        take = q.r_rdy & self.words.ready
        held_next = Mux(issue == take, held, Mux(issue, held + 1, held - 1))
        m.d.comb += self.reads.ready.eq(issue)
        m.d.sync += [inflight.eq(issue), held.eq(held_next), room.eq(held_next < QUEUE)]

        fetched = []
        for k in range(2):
            mem = memory.Memory(shape=n, depth=self.map_words, init=[])
            m.submodules[f"buffer{k}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            reading = self.rsel == k
            m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen & (self.wsel == k)),
                         rd.addr.eq(Mux(reading, d.addr, self.out_addr)), rd.en.eq(Mux(reading, issue & d.inside, 1))]
            fetched.append(rd.data)
        rsel_d, meta = Signal(), Signal(layout)
        m.d.sync += [rsel_d.eq(self.rsel), meta.base.eq(d.base), meta.merge.eq(d.merge),
                     meta.position_last.eq(d.position_last), meta.nonzero.eq(d.inside)]  # inside, for now
        word = Mux(meta.nonzero, Mux(rsel_d, fetched[1], fetched[0]), 0)
        entry = Signal(layout)
        m.d.comb += [entry.eq(meta), entry.word.eq(word), entry.nonzero.eq(word != 0),
                     q.w_data.eq(entry), q.w_en.eq(inflight),
                     self.out_data.eq(Mux(rsel_d, fetched[0], fetched[1])),
                     self.words.valid.eq(q.r_rdy), self.words.payload.eq(q.r_data), q.r_en.eq(self.words.ready)]
        return m
