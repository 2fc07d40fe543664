"""The spike patterns every block's counts derive from, for a whole batch at once (numpy, no clock loop).

Layers here are the accelerator's: the model's neuron layers (`dense`, `conv2d`), each reading its input
through the map reader (mintaccel.core.hwlayer: a pool before it is part of its reader, a flatten is
nothing). `position_events[l][b, t, q]` is docs/microarchitecture.md's E[l][t][q] for sample b: the
events of output position q of layer l at step t, the values in its receptive field (input spikes, a max
pool's ORs, a sum pool's counts); a dense layer has one position, whose events are the ones of its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mintaccel.core.conv import IM2COL_CHUNK, windows
from mintaccel.core.hwconfig import HwConfig, Layout, layout
from mintaccel.core.hwlayer import HwLayer
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
    position_events: tuple[np.ndarray, ...]
    """Per accelerator layer: int64 [B, T, positions], E[l][t][q]."""
    events: np.ndarray
    """int64 [B, T, L]: E[l][t], the events of layer l at step t over all its positions."""
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
    def views(self) -> tuple[HwLayer, ...]:
        return tuple(p.view for p in self.layout.layers)

    @property
    def n_layers(self) -> int:
        """Accelerator layers: the model's neuron layers."""
        return len(self.layout.layers)

    def _per_layer(self, name: str) -> np.ndarray:
        return np.array([getattr(v, name) for v in self.views], np.int64)

    @property
    def n_in(self) -> np.ndarray:
        return np.array([v.layer.n_in for v in self.views], np.int64)

    @property
    def n_out(self) -> np.ndarray:
        return np.array([v.layer.n_out for v in self.views], np.int64)

    @property
    def out_channels(self) -> np.ndarray:
        """Neurons one event reaches: C_out of a conv, n_out of a dense layer."""
        return np.array([v.out_shape[0] for v in self.views], np.int64)

    @property
    def words(self) -> np.ndarray:
        """Words the reader delivers per output position: W = ceil(n_in / n_pe) for a dense layer on a
        vector, Kh * Kw * CB_in * pool_kernel^2 through the map reader."""
        return self._per_layer("reads")

    @property
    def groups(self) -> np.ndarray:
        """Neuron groups per output position: G = ceil(n_out / n_pe), CB_out for a conv."""
        return self._per_layer("groups")

    @property
    def positions(self) -> np.ndarray:
        return self._per_layer("positions")

    @property
    def out_words(self) -> np.ndarray:
        """Neuron groups of a layer over all positions: its membrane words and output map words."""
        return self._per_layer("out_words")

    @property
    def buffer_reads(self) -> np.ndarray:
        """Map-buffer words read per layer and step: the reader's words of taps inside the map (padding
        taps deliver zeros without a read); a layer reading the host stream reads none."""
        return np.array([0 if v.from_host else in_map_taps(v) * v.in_blocks * v.pool_kernel ** 2
                         for v in self.views], np.int64)

    def layer_input(self, l: int) -> np.ndarray:
        """uint8 [B, T, n_in[l]]: the values accelerator layer l's reader takes (flat, model order)."""
        i = self.views[l].index
        return self.inputs if i == 0 else self.trace.spikes[i - 1]


def in_map_taps(v: HwLayer) -> int:
    """Receptive-field taps inside the pooled map, summed over the layer's output positions."""
    _, hp, wp = v.pooled_shape
    _, ho, wo = v.out_shape
    rows = sum(_inside(oy * v.stride - v.padding, v.kernel[0], hp) for oy in range(ho))
    cols = sum(_inside(ox * v.stride - v.padding, v.kernel[1], wp) for ox in range(wo))
    return rows * cols


def _inside(start: int, k: int, side: int) -> int:
    return max(0, min(start + k, side) - max(start, 0))


def activity(model: IntModel, cfg: HwConfig, inputs: np.ndarray, trace: Trace) -> Activity:
    """Count the spike patterns of `trace` (the reference model's run on `inputs`)."""
    lay = layout(model, cfg.n_pe)
    batch, steps, n = inputs.shape[0], model.timesteps, len(lay.layers)
    events, spikes, hits = (np.zeros((batch, steps, n), np.int64) for _ in range(3))
    per_position = []
    for l, place in enumerate(lay.layers):
        v = place.view
        x = inputs if v.index == 0 else trace.spikes[v.index - 1]
        e, h = _events_and_hits(v, x.reshape(batch * steps, -1))
        per_position.append(e.reshape(batch, steps, -1))
        events[:, :, l] = per_position[-1].sum(axis=2)
        hits[:, :, l] = h.reshape(batch, steps, -1).sum(axis=2)
        spikes[:, :, l] = trace.spikes[v.index].sum(axis=2, dtype=np.int64)
    return Activity(model, cfg, lay, inputs, trace, tuple(per_position), events, spikes, hits)


def _events_and_hits(v: HwLayer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows x [N, n_in] (values in the model's flat order): events and nonzero-weight hits per output
    position, int64 [N, positions] each."""
    w = v.layer.weight
    if v.layer.kind == "dense":  # one position: the whole input
        nonzero = (w != 0).sum(axis=0)  # per input: the nonzero weights it meets
        bound = int(x.max(initial=0)) * v.layer.n_in * max(1, v.layer.n_out)
        return x.sum(axis=1, dtype=np.int64)[:, None], _dot(x, nonzero, bound)[:, None]
    # conv: window sums of the values with two kernels, ones (events) and the nonzero count per tap
    c, kk = v.pooled_shape[0], v.kernel[0]
    kernels = np.stack([np.ones(c * kk * kk), (w != 0).sum(axis=0).reshape(-1)])
    bound = int(x.max(initial=0)) * c * kk * kk * max(1, w.shape[0])
    dtype = np.float32 if bound < 2**24 else np.float64
    kernels = kernels.astype(dtype)
    positions = v.positions
    out = np.empty((2, len(x), positions), np.int64)
    step = max(1, IM2COL_CHUNK // (c * kk * kk * positions))
    for a in range(0, len(x), step):
        part = x[a:a + step].astype(dtype)
        cols = windows(part, v.pooled_shape, kk, v.stride, v.padding).reshape(c * kk * kk, -1)
        out[:, a:a + step] = (kernels @ cols).reshape(2, len(part), positions)
    return out[0], out[1]


def _dot(x: np.ndarray, v: np.ndarray, bound: int, rows: int = 16384) -> np.ndarray:
    """Exact int64 `x @ v` for rows x of small non-negative values and small non-negative v, through BLAS
    in bounded chunks.

    float32 holds every integer below 2^24 exactly (`bound` bounds every result), float64 below 2^53.
    """
    dtype = np.float32 if bound < 2**24 else np.float64
    vf = v.astype(dtype)
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), rows):
        out[start:start + rows] = x[start:start + rows].astype(dtype) @ vf
    return out
