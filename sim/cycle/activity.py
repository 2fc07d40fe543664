"""The spike patterns every block's counts derive from, for a whole batch at once (numpy, no clock loop).

`events[b, t, l]` is docs/microarchitecture.md's E[l][t] for sample b: the number of ones in layer l's
input at step t (the input spikes for l = 0, the spikes of layer l-1 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mintaccel.core.hwconfig import HwConfig, Layout, layout
from mintaccel.core.model import IntModel
from mintaccel.sim.reference import Trace


@dataclass(frozen=True)
class Activity:
    model: IntModel
    cfg: HwConfig
    layout: Layout
    inputs: np.ndarray
    """uint8 [B, T, n_inputs]: the input spikes."""
    trace: Trace
    """The reference model's spikes and membranes for every layer and step (the arithmetic)."""
    events: np.ndarray
    """int64 [B, T, L]: E[l][t], ones in layer l's input at step t."""
    spikes: np.ndarray
    """int64 [B, T, L]: ones in layer l's output at step t."""
    weight_hits: np.ndarray
    """int64 [B, T, L]: over the events of layer l at step t, the nonzero weights met on real lanes."""

    @property
    def batch(self) -> int:
        return self.events.shape[0]

    @property
    def timesteps(self) -> int:
        return self.model.timesteps

    @property
    def n_layers(self) -> int:
        return len(self.model.layers)

    @property
    def n_in(self) -> np.ndarray:
        return np.array([l.n_in for l in self.model.layers], np.int64)

    @property
    def n_out(self) -> np.ndarray:
        return np.array([l.n_out for l in self.model.layers], np.int64)

    @property
    def words(self) -> np.ndarray:
        """W[l] = ceil(n_in / n_pe): input spike words per layer and step."""
        return np.array([p.words for p in self.layout.layers], np.int64)

    @property
    def groups(self) -> np.ndarray:
        """G[l] = ceil(n_out / n_pe): neuron groups per layer."""
        return np.array([p.groups for p in self.layout.layers], np.int64)

    def layer_input(self, l: int) -> np.ndarray:
        """uint8 [B, T, n_in[l]]: what layer l's encoder reads."""
        return self.inputs if l == 0 else self.trace.spikes[l - 1]


def activity(model: IntModel, cfg: HwConfig, inputs: np.ndarray, trace: Trace) -> Activity:
    """Count the spike patterns of `trace` (the reference model's run on `inputs`)."""
    lay = layout(model, cfg.n_pe)
    batch, steps = inputs.shape[0], model.timesteps
    events, spikes, hits = (np.zeros((batch, steps, len(model.layers)), np.int64) for _ in range(3))
    for l, layer in enumerate(model.layers):
        x = inputs if l == 0 else trace.spikes[l - 1]
        events[:, :, l] = x.sum(axis=2, dtype=np.int64)
        spikes[:, :, l] = trace.spikes[l].sum(axis=2, dtype=np.int64)
        nonzero = (layer.weight != 0).sum(axis=0)  # per input: the nonzero weights it meets
        hits[:, :, l] = _dot(x.reshape(-1, layer.n_in), nonzero, layer.n_in * layer.n_out).reshape(batch, steps)
    return Activity(model, cfg, lay, inputs, trace, events, spikes, hits)


def _dot(x: np.ndarray, v: np.ndarray, bound: int, rows: int = 16384) -> np.ndarray:
    """Exact int64 `x @ v` for 0/1 rows x and small non-negative v, through BLAS in bounded chunks.

    float32 holds every integer below 2^24 exactly (`bound` bounds every result), float64 below 2^53.
    """
    dtype = np.float32 if bound < 2**24 else np.float64
    vf = v.astype(dtype)
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), rows):
        out[start:start + rows] = x[start:start + rows].astype(dtype) @ vf
    return out
