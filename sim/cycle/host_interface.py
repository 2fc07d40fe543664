"""Host interface: accepts `start`, streams the input words in (layer 0's, or the input map a conv network
LOADs) and the last layer's spike words out.

Busy in the START and DONE cycles and in every cycle a stream word is transferred; stalled while the
host keeps `spikes_in` invalid or `spikes_out` not ready. Stream traffic is counted in words; its
energy (off-chip I/O) is outside the estimate.
"""

from __future__ import annotations

import numpy as np

from mintaccel.sim.cycle.counts import BlockCounts

NAME = "host_interface"


def account(act, phases, stalls, total) -> BlockCounts:
    b, t, n = act.batch, act.timesteps, act.n_layers
    inputs = np.zeros((b, n), np.int64)
    outputs = np.zeros((b, n), np.int64)
    inputs[:, 0] = (act.layout.load_words or act.words[0]) * t  # LOADed map words, or layer 0's stream
    outputs[:, -1] = act.out_words[-1] * t
    busy = phases.run + inputs[:, 0] + outputs[:, -1]
    return BlockCounts(NAME, "io", busy=busy, stall=stalls.total, total=total,
                       ops={"input_words": inputs, "output_words": outputs})
