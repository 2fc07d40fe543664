"""Spike buffer: the spike words between layers. A dense build has one, `max_neurons` bits as
`max_neurons / n_pe` words of `n_pe` bits; a conv build has two map buffers of `max_map_words` words
each, one read by a layer while the other takes its output (docs/microarchitecture.md, "Conv networks").

Written at FIRE with each group's spike word (and, in a conv build, with the LOADed input map); read by
the next layer's reader (W[l] words per position, the reads are counted with the reading layer l; a
padding tap reads nothing) and by OUTPUT (the last layer's output words per step, counted with it).
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec, per_layer

NAME = "spike_buffer"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg, t, b = act.cfg, act.timesteps, act.batch
    writes = per_layer(act.out_words * t, b)
    writes[:, 0] += act.layout.load_words * t
    reads = per_layer(act.buffer_reads * t, b)
    reads[:, -1] += act.out_words[-1] * t
    # an access touches one map buffer: the geometry (and the energy per access) is one buffer's
    memory = MemorySpec(cfg.max_map_words or cfg.spike_words, cfg.n_pe)
    return BlockCounts(NAME, "memory", busy=(reads + writes).sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": writes}, memory=memory)
