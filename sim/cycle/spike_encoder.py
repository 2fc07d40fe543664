"""Spike encoder: reads a layer's input spike words (host stream for layer 0, spike buffer or the map
reader otherwise) and writes the indices of their ones to the event memory, lowest index first.

Busy for the ENCODE phase but its first cycle (the encoder starts in it), W[l] + E[l][t][q] + 1 cycles
per position, layer and step; stalled while layer 0 waits for
`spikes_in` words. Arithmetic: one index addition `base + lsb` per event and one `base += n_pe` per
word, at the event-memory index width.
"""

from __future__ import annotations

from mintaccel.sim.cycle.counts import BlockCounts

NAME = "spike_encoder"


def account(act, phases, stalls, total) -> BlockCounts:
    t = act.timesteps
    events = act.events.sum(axis=1)
    words = (act.words * act.positions * t)[None, :].repeat(act.batch, axis=0)
    busy = phases.encode.sum(axis=(1, 2)) - t * act.positions.sum()  # ENCODE's first cycle: the start pulse
    return BlockCounts(NAME, "control", busy=busy, stall=stalls.input.sum(axis=1),
                       total=total, ops={"words": words, "events": events, "additions": events + words},
                       op_bits={"additions": act.cfg.index_bits})
