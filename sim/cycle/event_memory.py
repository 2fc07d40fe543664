"""Event memory: `max_inputs` words of `index_bits`, the indices of the current layer's input spikes.

Written once per event by the encoder; read once per event and neuron group after the first by the ACC
pipeline (group 0 takes the events from the encoder as it finds them).
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec

NAME = "event_memory"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg = act.cfg
    writes = act.events.sum(axis=1)
    reads = (act.events * (act.groups - 1)).sum(axis=1)
    return BlockCounts(NAME, "memory", busy=(reads + writes).sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": writes},
                       memory=MemorySpec(cfg.max_inputs, cfg.index_bits))
