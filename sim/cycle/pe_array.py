"""Processing-element array: `n_pe` accumulators, each adding its decoded weight on every ACC cycle.

Per event and neuron group, all `n_pe` lanes operate (lanes past `n_out` too, on padding):
`lane_ops` = E * G * n_pe. `sops` = E * n_out are the useful synaptic operations (E * C_out for a conv,
whose event reaches the C_out neurons of its position). Of the lane
operations, `additions` met a nonzero weight on a real neuron and `zero_additions` a zero weight or a
padding lane: the RTL adds them too (acc + 0), sim/energy.py prices them with `zero_add_factor`.
Binary weights add or subtract, power-of-two weights are decoded by a constant table (no multiplier,
no shifter), so no shifts are counted here. `loads`: accumulator initialisations (bias or 0), one per
group. Busy E * G cycles per layer and step (group 0's accumulations overlap ENCODE).
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts

NAME = "pe_array"


def account(act, phases, stalls, total) -> BlockCounts:
    cfg = act.cfg
    lane_ops = (act.events * act.groups * cfg.n_pe).sum(axis=1)
    additions = act.weight_hits.sum(axis=1)
    return BlockCounts(
        NAME, "compute", busy=(act.events * act.groups).sum(axis=(1, 2)), stall=0 * total, total=total,
        ops={"sops": (act.events * act.out_channels).sum(axis=1), "lane_ops": lane_ops,
             "additions": additions, "zero_additions": lane_ops - additions,
             "loads": (0 * act.events + act.out_words * cfg.n_pe).sum(axis=1)},
        op_bits={"additions": cfg.accumulator_bits, "zero_additions": cfg.accumulator_bits})
