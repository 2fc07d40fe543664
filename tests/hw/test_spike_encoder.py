"""The spike encoder emits the indices of the ones, in order, in one cycle per word plus one per one
(plus one DONE cycle)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.hw.images import spike_words
from mintaccel.hw.spike_encoder import SpikeEncoder


@pytest.mark.parametrize("seed", range(8))
def test_events_and_cycles(seed):
    rng = np.random.default_rng(seed)
    n_pe = int(rng.choice([1, 3, 4, 8]))
    n_in = int(rng.integers(1, 40))
    density = [0.0, 1.0, 0.1, 0.5][seed % 4]
    bits = (rng.random(n_in) < density).astype(np.uint8)
    words = spike_words(bits, n_pe)
    # padding bits past n_in set to 1 on purpose: the encoder must mask them
    if n_in % n_pe:
        words[-1] |= ((1 << n_pe) - 1) ^ ((1 << (n_in % n_pe)) - 1)
    gaps = set(rng.integers(0, 60, 10).tolist())
    dut = SpikeEncoder(n_pe, 64)

    async def tb(ctx):
        ctx.set(dut.n_in, n_in)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        queue, events, busy, stalls = list(words), [], 0, 0
        for cycle in range(1000):
            valid = bool(queue) and cycle not in gaps
            ctx.set(dut.words.valid, valid)
            ctx.set(dut.words.payload, queue[0] if queue else 0)
            ctx.set(dut.host_word, queue[0] if queue else 0)  # host words: trusted = 0
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
