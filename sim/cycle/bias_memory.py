"""Bias memory (only in builds with `bias_bits > 0`): one word per output channel block (a dense
layer's groups), at most `membrane_depth` words.

Read at the START of every group, position, layer and step (with the membrane word), never written by an
inference. Returns None for a build without bias memory.
"""

from __future__ import annotations

import numpy as np

from mintaccel.sim.cycle.counts import BlockCounts, MemorySpec, per_layer

NAME = "bias_memory"


def account(act, phases, stalls, total) -> BlockCounts | None:
    cfg = act.cfg
    if not cfg.bias_bits:
        return None
    reads = per_layer(act.out_words * act.timesteps, act.batch)
    return BlockCounts(NAME, "memory", busy=reads.sum(axis=1), stall=0 * total, total=total,
                       ops={"reads": reads, "writes": np.zeros_like(reads)},
                       memory=MemorySpec(cfg.membrane_depth, cfg.n_pe * cfg.bias_bits))
