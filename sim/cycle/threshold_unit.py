"""Threshold units, one per PE lane: integrate, fire, reset, leak, clamp (docs/arithmetic.md steps 2-6).

Each unit is busy P cycles per group (P = lanes per unit: one lane per cycle, from the FIRE cycle on;
P = 1 when every lane has its own unit). Every lane updates (padding lanes too, their spikes forced to
0), so `updates` = G * n_pe per layer and step. The operations counted per update are those the
layer's configuration needs, at the accumulator width:

| step | additions | shifts | comparisons |
|---|---|---|---|
| integrate `H = u + I` | 1 | | |
| fire `H >= theta` | | | 1 |
| reset: hard / soft (`H - theta`) | 0 / 1 | | |
| leak none / shift `sr(R, k)` / decay `R - sr(R, k)` | 0 / 1 / 2 | 0 / 1 / 1 | |
| clamp to `-Q(m)..Q(m)` | | | 2 |

(`sr(R, k) = (R + (R < 0 ? 2^k - 1 : 0)) >>> k`: the rounding add and the shift.)
"""

from __future__ import annotations

import numpy as np

from mintaccel.sim.cycle.counts import BlockCounts, per_layer

NAME = "threshold_unit"
LEAK_OPS = {"none": (0, 0), "shift": (1, 1), "decay": (2, 1)}  # (additions, shifts)


def ops_per_update(layer) -> dict[str, int]:
    adds, shifts = LEAK_OPS[layer.leak.kind]
    return {"additions": 1 + (layer.reset == "soft") + adds, "shifts": shifts, "comparisons": 3}


def account(act, phases, stalls, total) -> BlockCounts:
    cfg, b = act.cfg, act.batch
    updates = per_layer(act.out_words * cfg.n_pe * act.timesteps, b)
    per = [ops_per_update(v.layer) for v in act.views]
    ops = {"updates": updates, "spikes": act.spikes.sum(axis=1)}
    for kind in ("additions", "shifts", "comparisons"):
        ops[kind] = updates * np.array([p[kind] for p in per], np.int64)
    acc = cfg.accumulator_bits
    busy = phases.fire.sum(axis=(1, 2)) * cfg.lanes_per_unit
    return BlockCounts(NAME, "compute", busy=busy, stall=0 * total, total=total,
                       ops=ops, op_bits={"additions": acc, "shifts": acc, "comparisons": acc})
