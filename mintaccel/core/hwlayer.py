"""The neuron layers of a model as the accelerator runs them (docs/microarchitecture.md, "Conv networks").

The accelerator has no pool or flatten stage: every `dense` or `conv2d` layer reads its input map
through a **map reader** that applies the pool before it (OR of the window for `max`, each spike of the
window as its own event for `sum`) and walks the receptive field of each output position. A dense layer
after a flatten is a conv whose one output position's window is the whole (pooled) map; a dense layer
after a dense layer or the network input reads a vector `(n, 1, 1)` word after word, as it always has.

Maps are stored **position-major** in words of `n_pe` channels: word `(y*W + x)*CB + b` holds channels
`b*n_pe .. b*n_pe + n_pe - 1` at `(y, x)` (`CB = ceil(C / n_pe)` channel blocks; channels past `C` are
0). A neuron group is one channel block at one output position, so a group's spike word is one word
of the output map, written in order. An input spike of channel `c` in the window's tap `(ky, kx)` is
the event with tap index `(ky*Kw + kx)*C + c`, which addresses the layer's weights: counters and adders,
no multiplier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mintaccel.core.model import IntModel, NeuronLayer


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


Shape = tuple[int, int, int]


@dataclass(frozen=True)
class HwLayer:
    """One neuron layer of the model and the view its map reader takes of its input."""

    index: int
    """Position of the neuron layer in `IntModel.layers` (pools and flattens are counted too)."""
    layer: NeuronLayer
    """The model's layer (weights, formats, threshold, reset, leak)."""
    n_pe: int
    """Lanes (channels per map word) of the build."""
    in_shape: Shape
    """(C, H, W) of the stored input map, in channels and positions; a vector of n is (n, 1, 1)."""
    pool_op: str
    """`max`, `sum` or `` (no pool before the layer)."""
    pool_kernel: int
    """Pool window side in stored positions (1 without a pool)."""
    pool_stride: int
    """Pool stride in stored positions (1 without a pool)."""
    kernel: tuple[int, int]
    """Receptive-field window (rows, columns) in pooled positions: K x K for conv2d, the whole pooled
    map for a dense layer after a flatten, 1 x 1 for a dense layer on a vector."""
    stride: int
    """Step between output positions in pooled positions (1 or 2)."""
    padding: int
    """Zero positions around the pooled map on every side."""
    out_shape: Shape
    """(C, H, W) of the output map in channels and positions; a dense layer's is (n_out, 1, 1)."""
    from_host: bool
    """The layer reads the host's `spikes_in` stream word after word (layer 0 on a vector input);
    otherwise its input map is in a map buffer (for layer 0: LOADed from the stream first)."""

    @property
    def pooled_shape(self) -> Shape:
        c, h, w = self.in_shape
        k, s = self.pool_kernel, self.pool_stride
        return c, (h - k) // s + 1, (w - k) // s + 1

    @property
    def in_blocks(self) -> int:
        """CB_in: words per input position."""
        return ceil_div(self.in_shape[0], self.n_pe)

    @property
    def in_words(self) -> int:
        """Words of the stored input map."""
        return self.in_shape[1] * self.in_shape[2] * self.in_blocks

    @property
    def groups(self) -> int:
        """Neuron groups per output position: CB_out = ceil(C_out / n_pe)."""
        return ceil_div(self.out_shape[0], self.n_pe)

    @property
    def positions(self) -> int:
        """Output positions H_out * W_out (1 for a dense layer)."""
        return self.out_shape[1] * self.out_shape[2]

    @property
    def out_words(self) -> int:
        """Words of the output map = neuron groups of the layer = its membrane words."""
        return self.positions * self.groups

    @property
    def fan_in(self) -> int:
        """Tap indices per output channel: Kh * Kw * C_in (n_in for a dense layer)."""
        return self.kernel[0] * self.kernel[1] * self.in_shape[0]

    @property
    def reads(self) -> int:
        """Words the map reader delivers per output position: Kh * Kw * CB_in * pool_kernel^2 (padding
        taps deliver zero words, in the same cycles)."""
        return self.kernel[0] * self.kernel[1] * self.in_blocks * self.pool_kernel ** 2

    @property
    def max_events(self) -> int:
        """Most events one output position can have: every tap index once, pool_kernel^2 times each after
        a sum pool (the event memory's depth)."""
        return self.fan_in * (self.pool_kernel ** 2 if self.pool_op == "sum" else 1)

    @property
    def weight_words(self) -> int:
        """Weight words: fan_in per neuron group of a position (the kernel is stored once)."""
        return self.groups * self.fan_in

    @property
    def is_map(self) -> bool:
        """The layer reads through the map reader's windows (not a plain vector in order)."""
        return not (self.kernel == (1, 1) and self.in_shape[1:] == (1, 1) and not self.pool_op)

    def tap_weights(self) -> np.ndarray:
        """int64 [C_out, fan_in]: the layer's weights in tap-index order. A conv's W[o][c][ky][kx] and
        a dense layer's column c*H*W + y*W + x of a flattened (C, H, W) map both go to tap
        (ky*Kw + kx)*C + c; a dense layer on a vector keeps its columns."""
        w = self.layer.weight
        if not self.is_map:
            return w
        c = self.in_shape[0]
        return w.reshape(len(w), c, *self.kernel).transpose(0, 2, 3, 1).reshape(len(w), -1)


def hw_layers(model: IntModel, n_pe: int) -> tuple[HwLayer, ...]:
    """The neuron layers of `model` with their map-reader views (module docstring)."""
    out, source, pool = [], _shape_of_input(model), None
    for i, layer in enumerate(model.layers):
        if layer.kind == "pool":
            pool = layer
            continue
        if layer.kind == "flatten":
            continue
        op, pk, ps = (pool.op, pool.kernel, pool.stride) if pool else ("", 1, 1)
        pooled = source if pool is None else pool.out_shape
        if layer.kind == "conv2d":
            kernel, stride, padding = (layer.kernel, layer.kernel), layer.stride, layer.padding
            out_shape = layer.out_shape
        else:
            kernel, stride, padding = (pooled[1], pooled[2]), 1, 0
            out_shape = (layer.n_out, 1, 1)
        if pool is None and source[1:] != (1, 1) and layer.kind == "dense" and not out:
            # a flatten straight after the network input: the host streams the flat vector in order
            source, kernel = (source[0] * source[1] * source[2], 1, 1), (1, 1)
        hl = HwLayer(i, layer, n_pe, source, op, pk, ps, kernel, stride, padding, out_shape, False)
        out.append(dataclasses.replace(hl, from_host=True) if not out and not hl.is_map else hl)
        source, pool = out_shape, None
    return tuple(out)


def _shape_of_input(model: IntModel) -> Shape:
    shape = model.input_shape
    return tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)


def load_words(layers: tuple[HwLayer, ...]) -> int:
    """Words LOADed from the host into a map buffer per step (0 when layer 0 reads the stream itself)."""
    first = layers[0]
    return 0 if first.from_host else first.in_words
