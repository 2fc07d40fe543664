"""The spike encoder emits the indices of the ones, in order, in one cycle per word plus one per one
(plus one DONE cycle)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.hw.images import spike_words
from mintaccel.hw.spike_encoder import SpikeEncoder, last_word_lanes_value


@pytest.mark.parametrize("seed", range(8))
def test_events_and_cycles(seed):
    rng = np.random.default_rng(seed)
    _check_events_and_cycles(seed, rng, int(rng.choice([1, 3, 4, 8])), 40, 64)


@pytest.mark.parametrize("trusted", [False, True], ids=["host", "buffer"])
@pytest.mark.parametrize("seed", range(8, 16))
def test_events_and_cycles_of_wide_words(seed, trusted):
    """Words of several 4-bit groups (and a partial last group): the per-group flags that decide
    "at most one 1 left" follow every event, for host words (padding masked) and spike-buffer words
    (`trusted`: padding 0, the `nonzero` flag given; `host_word` is noise then)."""
    rng = np.random.default_rng(seed)
    _check_events_and_cycles(seed, rng, [10, 13, 16, 32][seed % 4], 128, 128, trusted)


def _check_events_and_cycles(seed, rng, n_pe, max_n_in, max_inputs, trusted=False):
    n_in = int(rng.integers(1, max_n_in))
    density = [0.0, 1.0, 0.1, 0.5][seed % 4] if seed < 8 else [0.3, 0.8, 0.05, 0.6, 1.0, 0.5, 0.1, 0.9][seed % 8]
    bits = (rng.random(n_in) < density).astype(np.uint8)
    words = spike_words(bits, n_pe)
    # padding bits past n_in set to 1 on purpose: the encoder must mask them (a host word's)
    if n_in % n_pe and not trusted:
        words[-1] |= ((1 << n_pe) - 1) ^ ((1 << (n_in % n_pe)) - 1)
    gaps = set(rng.integers(0, 60, 10).tolist())
    dut = SpikeEncoder(n_pe, max_inputs)

    async def tb(ctx):
        ctx.set(dut.n_in, n_in)
        ctx.set(dut.last_lanes, last_word_lanes_value(n_in, n_pe))
        await ctx.tick()  # n_in is valid from the cycle before start
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        queue, events, busy, stalls = list(words), [], 0, 0
        for cycle in range(1000):
            valid = bool(queue) and cycle not in gaps
            ctx.set(dut.words.valid, valid)
            ctx.set(dut.words.payload, queue[0] if queue else 0)
            ctx.set(dut.trusted, trusted)
            ctx.set(dut.nonzero, bool(queue) and queue[0] != 0)
            nz, multi = _group_flags(queue[0] if queue and trusted else 0, n_pe)  # the spike buffer's
            ctx.set(dut.word_nz, nz)
            ctx.set(dut.word_multi, multi)
            # host words: trusted = 0; otherwise the host input carries noise the encoder must ignore
            ctx.set(dut.host_word, int(rng.integers(0, 1 << n_pe)) if trusted else queue[0] if queue else 0)
            if ctx.get(dut.event_valid):
                events.append(ctx.get(dut.event_index))
            busy += ctx.get(dut.busy)
            stalls += ctx.get(dut.stall)
            accepted = valid and ctx.get(dut.words.ready)
            finish = ctx.get(dut.finish)
            await ctx.tick()
            if accepted:
                queue.pop(0)
            if finish:
                break
        assert events == np.flatnonzero(bits).tolist(), f"seed {seed}"
        assert busy - stalls == len(words) + int(bits.sum()) + 1, f"seed {seed}"  # + DONE
        assert ctx.get(dut.event_count) == int(bits.sum())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


def _group_flags(word, n):
    """gates.group_flags from the doc: per 4-lane group, a 1 and two or more."""
    groups = [(word >> i) & 0xF for i in range(0, n, 4)]
    return (sum(1 << k for k, g in enumerate(groups) if g),
            sum(1 << k for k, g in enumerate(groups) if bin(g).count("1") >= 2))
