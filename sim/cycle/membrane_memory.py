"""Membrane memory: `membrane_depth` words of `n_pe * membrane_bits` bits, one word per neuron group
(a conv layer's groups are its output positions times its channel blocks).

Read at START and written at FIRE, once per group, layer and step; at t = 0 the read is replaced by
zeros (every inference starts at rest), so an inference reads G * (T - 1) and writes G * T words per
layer (G over all positions).
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec, per_layer

NAME = "membrane_memory"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg, t = act.cfg, act.timesteps
    reads = per_layer(act.out_words * (t - 1), act.batch)
    writes = per_layer(act.out_words * t, act.batch)
    return BlockCounts(NAME, "memory", busy=(reads + writes).sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": writes},
                       memory=MemorySpec(cfg.membrane_depth, cfg.n_pe * cfg.membrane_bits))
