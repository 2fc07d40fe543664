"""Weight memory: one memory of `weight_depth` words of `n_pe * weight_bits` bits (hw/weight_memory.py).

One read (one word = one weight per lane) per event and neuron group: sum of E[l][t] * G[l] words of
`n_pe * weight_bits` bits. Weights are loaded before the run (or are the build's initial contents),
so an inference writes nothing.
"""

from __future__ import annotations

import numpy as np

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec

NAME = "weight_memory"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg = act.cfg
    reads = (act.events * act.groups).sum(axis=1)
    return BlockCounts(NAME, "memory", busy=reads.sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": np.zeros_like(reads)},
                       memory=MemorySpec(cfg.weight_depth, cfg.n_pe * cfg.weight_bits))
