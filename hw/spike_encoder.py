"""Event-driven input: turns n_pe-bit spike words into the indices of their ones.

Each word costs one cycle to take in, plus one cycle per 1 in it (lowest index first), plus one DONE
cycle at the end. Bits past `n_in` in the last word are masked, so padding never becomes an event.

Timing: a word goes straight into the `pending` register, and every decision (take the next word,
extract an event, finish) is made from `empty` (pending == 0, itself a register), never from the
incoming word. A word taken while `pending` is empty costs its one cycle; a word with e ones then
spends e cycles in `pending`, one event each, and the next word comes in the cycle after its last
event: the same cycle count as testing the word on arrival. The mask and `last` of the next word are
computed from registers, off the word's path (`n_in` must be valid from the cycle before `start` to
`finish`, as the host's registers of the current layer are; a power-of-two n_pe masks the last word
with `last_lanes`, the host interface's register of it), and an event's index is encoded the cycle
after it is found (it only goes to the event memory). Above 4 lanes, "at most one 1 left" (the next `empty` after
an event) is decided from two registered flags per 4-bit group of `pending` (any 1, two or more), a
tree over n / 4 flags instead of n bits: the flags of the group losing its lowest 1 follow from its
own four bits. Words from the spike buffer come with their `nonzero` flag
(`trusted`), so only host words are tested here, in one OR tree.

A conv build (`maps`) also takes words from the map buffers (`mapped`): each comes with the tap index
of its bit 0 (`word_base`), `word_last` (the output position's last word) and `word_merge` (a max
pool: OR the word with the next, and extract the events once the window's last word is in); no mask
(map words hold zeros past the channels).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.hw.gates import at_least, at_most_one, flag_groups, greater_than, group_flags, thermometer


#: Up to this many lanes "at most one 1 left" is a tree over `pending` itself (one LUT level); above
#: it, over the flags (whose registers synthesis then keeps). Measured on the UP5K at 8 lanes: the
#: flags gave 49.4 / 50.0 / 50.4 MHz (seeds 1-3) for the shipped model, the 8-bit tree 47.6 / 47.5 / 42.3.
DIRECT_LANES = 4


class SpikeEncoder(wiring.Component):
    def __init__(self, n_pe: int, max_inputs: int, maps: bool = False):
        if n_pe < 1 or max_inputs < 2:
            raise ValueError("n_pe must be >= 1 and max_inputs >= 2")
        self.n_pe, self.maps = n_pe, maps
        self.index_bits = address_bits(max_inputs)
        count_bits = max_inputs.bit_length()
        mapped = {"mapped": In(1), "word_base": In(count_bits + 1), "word_last": In(1), "word_merge": In(1)} if maps else {}
        super().__init__({
            **mapped,
            "start": In(1),
            "n_in": In(count_bits),  # valid from the cycle before `start` to `finish`
            # a power-of-two n_pe: last_word_lanes(n_in's low bits), valid from `start` to `finish`
            "last_lanes": In(n_pe),
            "words": In(stream.Signature(n_pe)),
            # words from the spike buffer: padding bits are 0 and `nonzero` says whether a word has a one;
            # otherwise the word is `host_word` (the same bits, taken before the source multiplexer so
            # that its all-zeros test is not behind it)
            "trusted": In(1),
            "nonzero": In(1),
            "host_word": In(n_pe),
            # and their group flags (gates.group_flags of the word, as the spike buffer registers them),
            # so that the flags of a taken word are not computed behind the source multiplexer
            "word_nz": In(len(flag_groups(n_pe))),
            "word_multi": In(len(flag_groups(n_pe))),
            "word_index": Out(count_bits),
            "next_index": Out(count_bits),  # word_index + 1, a register of its own (the spike buffer's read ahead)
            "advance": Out(1),  # word_index moves to the next word at the end of this cycle
            # an event comes out the cycle after it is found (its index is encoded from a registered
            # one-hot word): write event_index at address event_addr when event_valid
            "event_valid": Out(1),
            "event_index": Out(self.index_bits),
            "event_addr": Out(count_bits),
            "event_count": Out(count_bits),  # events found so far (not delayed)
            "busy": Out(1),
            "finish": Out(1),
            "stall": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.n_pe
        # inputs after the next word to take (negative past the last word): the next word's `last` and
        # mask come from this register, not from a subtraction before them
        after = Signal(signed(len(self.n_in) + 2))
        last = Signal()  # the next word to take is the last one
        more = Signal()  # a word is still to be taken
        mask = Signal(n)  # lanes of the next word that are inputs (padding masked)
        base, next_base = Signal(len(self.n_in) + 1), Signal(len(self.n_in) + 1)  # first index of pending / next word
        pending = Signal(n)
        empty = Signal()  # pending == 0, as a register: finish and the next take are decided from it

        # per 4-bit group of pending: a 1 (`nz`), two or more (`multi`); after an event only the lowest
        # group with a 1 changes: it keeps a 1 if it had two, two if it had three
        groups = flag_groups(n)
        nz, multi = Signal(len(groups)), Signal(len(groups))
        lowest = Cat(*(nz[k] & ~nz[:k].any() if k else nz[0] for k in range(len(groups))))
        after_nz = Cat(*(Mux(lowest[k], multi[k], nz[k]) for k in range(len(groups))))
        after_multi = Cat(*(Mux(lowest[k], at_least(pending[g], 3), multi[k]) for k, g in enumerate(groups)))

        # the event found in a cycle: the lowest 1 of pending as a one-hot word (pending - 1 is the carry
        # chain that also clears it), registered with its word's base and number; its index is an OR
        # per bit of the one-hot word the cycle after
        below = pending - 1
        onehot, found_base, found = Signal(n), Signal.like(base), Signal()
        m.d.sync += [found.eq(0), onehot.eq(pending & ~below), found_base.eq(base), self.event_addr.eq(self.event_count)]
        lsb = Cat(*(Cat(*(onehot[i] for i in range(n) if i >> k & 1)).any() for k in range((n - 1).bit_length())))
        # with a power-of-two n_pe the word's first index has n's low bits clear: concatenate, no adder
        shift = (n - 1).bit_length()
        # (a map word's base is a tap index, not a multiple of n: add)
        concat = n == 1 << shift and not self.maps
        m.d.comb += [self.event_valid.eq(found),
                     self.event_index.eq(Cat(lsb, found_base[shift:]) if concat else found_base + lsb)]
        merging = Signal()  # the last word taken is OR-ed with the next (a max pool's window)

        # `n_in` is valid from the cycle before `start` to `finish`, so what `start` loads comes from
        # registers of it (the first word's `after`, `last` and mask), not from logic of an input; with a
        # power-of-two n_pe only the last word is masked, by `last_lanes` (a register per layer in the host
        # interface), chosen by the compare that sets `last`: no subtraction and no thermometer of `after`
        # behind the mask (on the UP5K MNIST build of 32 PEs, 7 LUT levels)
        concat_lanes = n > 1 and n == 1 << shift
        ones = (1 << n) - 1
        first_after, first_last, first_mask = Signal.like(after), Signal(), Signal(n)
        m.d.sync += [first_after.eq(self.n_in - n), first_last.eq(self.n_in <= n)]
        # `after <= n` (the word after the next is the last) as a register kept with `after`, so that the
        # compare is not in front of `last` and the mask's 32 flip-flops (on the UP5K MNIST build of 32 PEs
        # the mask's D inputs were 5-6 LUT levels deep). Gates, not compares: a carry-chain compare beside
        # `after - n` made ABC9's box check abort on the unflattened build of 2 PEs.
        after_le_n, first_after_le_n = Signal(), Signal()
        m.d.sync += first_after_le_n.eq(~greater_than(self.n_in, 2 * n))
        after_le_2n = after[-1] | ~greater_than(after[:-1], 2 * n)  # signed: a negative `after` is below
        if concat_lanes:
            last_mask = self.last_lanes
            m.d.comb += first_mask.eq(Mux(first_last, last_mask, ones))
        else:
            m.d.sync += first_mask.eq(thermometer(self.n_in, n))

        def take_word():  # the word after the one taken now has `after` inputs from its first lane on
            m.d.sync += [after.eq(after - n), last.eq(after_le_n), after_le_n.eq(after_le_2n),
                         mask.eq(Mux(after_le_n, last_mask, ones) if concat_lanes else thermometer(after, n))]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [after.eq(first_after), last.eq(first_last), mask.eq(first_mask),
                                 after_le_n.eq(first_after_le_n)]
                    m.d.sync += [next_base.eq(0), self.word_index.eq(0), self.next_index.eq(1), self.event_count.eq(0),
                                 pending.eq(0), nz.eq(0), multi.eq(0), empty.eq(1), more.eq(1)]
                    if self.maps:
                        m.d.sync += merging.eq(0)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(~empty & ~merging if self.maps else ~empty):  # one event per cycle, lowest index first
                    m.d.sync += [found.eq(1), pending.eq(pending & below), nz.eq(after_nz), multi.eq(after_multi),
                                 empty.eq(at_most_one(nz) & ~multi.any() if n > DIRECT_LANES else at_most_one(pending)),
                                 self.event_count.eq(self.event_count + 1)]
                with m.Elif(more):  # take the next word
                    m.d.comb += [self.words.ready.eq(1), self.stall.eq(~self.words.valid)]
                    if self.maps:
                        with m.If(self.words.valid & self.mapped):
                            merged = Mux(merging, pending | self.words.payload, self.words.payload)
                            m.d.sync += [pending.eq(merged),
                                         nz.eq(group_flags(merged)[0]), multi.eq(group_flags(merged)[1]),
                                         empty.eq((empty | ~merging) & ~self.nonzero), more.eq(~self.word_last),
                                         base.eq(self.word_base), merging.eq(self.word_merge)]
                    with (m.Elif if self.maps else m.If)(self.words.valid):
                        take_word()
                        word_in = self.words.payload & mask
                        host_nz, host_multi = group_flags(self.host_word & mask)
                        host_empty = ~host_nz.any()  # one OR tree shared with the flags
                        m.d.sync += [pending.eq(word_in),
                                     nz.eq(Mux(self.trusted, self.word_nz, host_nz)),
                                     multi.eq(Mux(self.trusted, self.word_multi, host_multi)),
                                     empty.eq(Mux(self.trusted, ~self.nonzero, host_empty)),
                                     more.eq(~last), base.eq(next_base),
                                     next_base.eq(next_base + n), self.word_index.eq(self.next_index),
                                     self.next_index.eq(self.next_index + 1)]
                        m.d.comb += self.advance.eq(1)
                with m.Else():  # the DONE cycle
                    m.d.comb += self.finish.eq(1)
                    # the index is 0 again while idle, so the spike buffer's read at `start` needs no select
                    m.d.sync += [self.word_index.eq(0), self.next_index.eq(1)]
                    m.next = "IDLE"
        return m


def last_word_lanes(low, n):
    """The lanes of a power-of-two n-lane word that hold the last `low` inputs (all n when low == 0), from
    `low` = n_in's low log2(n) bits: bit i is a constant table of `low` looked up, so every bit is its own
    small function of those bits rather than a comparison sharing a chain of gates with the next bit's."""
    return Cat(*(Const(sum(1 << v for v in range(n) if v == 0 or v > i), n).bit_select(low, 1) for i in range(n)))


def last_word_lanes_value(n_in: int, n: int) -> int:
    """`last_word_lanes` of a layer of n_in inputs, as an integer (reset values, testbenches)."""
    low = n_in % n
    return (1 << n) - 1 if low == 0 else (1 << low) - 1
