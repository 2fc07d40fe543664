"""Spike buffer: `max_neurons` bits as `max_neurons / n_pe` words of `n_pe` bits.

Written at FIRE with each group's spike word; read by the encoder of the next layer (W[l] words, the
reads are counted with the reading layer l) and by OUTPUT (G[L-1] words per step, counted with the
last layer).
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec, per_layer

NAME = "spike_buffer"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg, t, b = act.cfg, act.timesteps, act.batch
    writes = per_layer(act.groups * t, b)
    reads = per_layer(act.words * t, b)
    reads[:, 0] = 0  # layer 0 reads the host stream
    reads[:, -1] += act.groups[-1] * t
    return BlockCounts(NAME, "memory", busy=(reads + writes).sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": writes},
                       memory=MemorySpec(cfg.spike_words, cfg.n_pe))
