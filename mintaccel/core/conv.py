"""Convolutional layers of the integer network (docs/arithmetic.md section 7): conv2d (a LIF neuron per
output position, kernel weights shared), pooling on spikes (max = OR, sum = count) and flatten.

Feature maps are flat vectors in (C, H, W) order: element (c, y, x) of a C x H x W map is at index
c*H*W + y*W + x, the order of torch's `flatten` and of NIR's `Flatten`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from mintaccel.core.model import ModelError, NeuronLayer

KERNEL_SIZES = range(1, 8)
STRIDES = (1, 2)
POOL_OPS = ("max", "sum")
POOL_SIZES = range(1, 8)
MAP_SIDE_MAX = 1024
CHANNELS_MAX = 1024
IM2COL_CHUNK = 2**21
"""Elements of one im2col copy in `Conv2dLayer.synaptic_input` (8 MB of float32): bounded memory for any
batch, and pieces that stay in cache between the copy and the product (with one BLAS thread about twice as
fast as one big copy: benchmarks/conv_reference_speed.py)."""

Shape = tuple[int, int, int]


def check_shape(shape, where: str) -> Shape:
    """A (C, H, W) feature-map shape of positive integers."""
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape)):
        raise ModelError(f"{where} must be three integers (channels, height, width), not {shape!r}")
    c, h, w = (int(v) for v in shape)
    if not 1 <= c <= CHANNELS_MAX:
        raise ModelError(f"{where}: channels must be in 1..{CHANNELS_MAX}, not {c}")
    if not (1 <= h <= MAP_SIDE_MAX and 1 <= w <= MAP_SIDE_MAX):
        raise ModelError(f"{where}: height and width must be in 1..{MAP_SIDE_MAX}, not {h} x {w}")
    return c, h, w


def out_side(side: int, kernel: int, stride: int, padding: int) -> int:
    """Output positions along one axis: floor((side + 2 * padding - kernel) / stride) + 1."""
    return (side + 2 * padding - kernel) // stride + 1


def windows(x: np.ndarray, shape: Shape, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Receptive fields of a batch of flat maps: x [batch, C*H*W] -> a view [C, K, K, batch, Ho, Wo]
    (zero padding explicit). Taps first and positions last: its im2col copy (a reshape to
    [C*K*K, batch*Ho*Wo]) moves runs of Wo values and is the right operand of one product with the weights."""
    c, h, w = shape
    maps = x.reshape(len(x), c, h, w)
    if padding:
        maps = np.pad(maps, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    view = np.lib.stride_tricks.sliding_window_view(maps, (kernel, kernel), axis=(2, 3))
    view = view[:, :, ::stride, ::stride]  # [batch, C, Ho, Wo, K, K]
    return view.transpose(1, 4, 5, 0, 2, 3)


class _MapIn:
    """Sizes of a layer that reads a (C, H, W) map and (with `out_shape`) writes one."""

    @property
    def n_in(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    @property
    def n_out(self) -> int:
        c, h, w = self.out_shape
        return c * h * w


class _Stateless(_MapIn):
    """A layer without weights or membranes (pool, flatten): it stores nothing."""

    def footprint_bits(self) -> dict:
        return {"weights": 0, "membranes": 0, "biases": 0, "fp32": 0}


@dataclass(frozen=True)
class Conv2dLayer(_MapIn, NeuronLayer):
    """A 2-D convolution of LIF neurons: one neuron (membrane) per output position, weights shared.

    `weight` is [C_out, C_in, K, K] (integer units, on `weight_format`'s grid)."""

    kind: ClassVar[str] = "conv2d"

    in_shape: Shape = field(kw_only=True)
    """(C_in, H, W) of the input map (channels, rows, columns)."""
    stride: int = field(default=1, kw_only=True)
    """Stride in positions, 1 or 2, both axes."""
    padding: int = field(default=0, kw_only=True)
    """Zero padding in positions on every side, 0..K-1."""

    def _check_weight_shape(self, w: np.ndarray) -> None:
        if w.ndim != 4 or w.shape[2] != w.shape[3] or min(w.shape) < 1:
            raise ModelError(f"conv2d weight must be [C_out, C_in, K, K] with a square kernel, got shape {w.shape}")
        shape = check_shape(self.in_shape, "conv2d input shape")
        object.__setattr__(self, "in_shape", shape)
        k = w.shape[2]
        if k not in KERNEL_SIZES:
            raise ModelError(f"conv2d kernel must be 1..{KERNEL_SIZES[-1]}, not {k}")
        if w.shape[1] != shape[0]:
            raise ModelError(f"conv2d weight has {w.shape[1]} input channels but its input map has {shape[0]}")
        if isinstance(self.stride, bool) or self.stride not in STRIDES:
            raise ModelError(f"conv2d stride must be 1 or 2, not {self.stride!r}")
        if isinstance(self.padding, bool) or not isinstance(self.padding, (int, np.integer)) or not 0 <= self.padding < k:
            raise ModelError(f"conv2d padding must be in 0..{k - 1} for a {k} x {k} kernel, not {self.padding!r}")
        _, h, wd = shape
        if k > min(h, wd) + 2 * self.padding:
            raise ModelError(f"conv2d kernel {k} x {k} is larger than the padded input "
                             f"{h + 2 * self.padding} x {wd + 2 * self.padding}")

    @property
    def kernel(self) -> int:
        return self.weight.shape[2]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def out_shape(self) -> Shape:
        _, h, w = self.in_shape
        return (self.out_channels, out_side(h, self.kernel, self.stride, self.padding),
                out_side(w, self.kernel, self.stride, self.padding))


    @property
    def fan_in(self) -> int:
        """Inputs of one neuron: C_in * K * K (the receptive field)."""
        return self.in_shape[0] * self.kernel * self.kernel

    @property
    def bias_shape(self) -> tuple[int]:
        return (self.out_channels,)

    def synaptic_input(self, spikes: np.ndarray) -> np.ndarray:
        """Step 1 for a batch: inputs [batch, C_in*H*W] -> I [batch, C_out*Ho*Wo] (int64), by im2col and
        BLAS products (float32 exact while |I| <= B < 2^24, float64 otherwise), a few samples at a time."""
        dtype = self._exact_dtype()
        w = self._weight_t.get(dtype)
        if w is None:  # [C_out, C_in*K*K] in the (C, ky, kx) order of the windows
            w = self._weight_t[dtype] = np.ascontiguousarray(self.weight.reshape(self.out_channels, -1), dtype=dtype)
        x = spikes.astype(dtype, copy=False)
        _, ho, wo = self.out_shape
        positions = ho * wo
        i = np.empty((len(x), self.out_channels, positions), np.int64)
        step = max(1, IM2COL_CHUNK // (self.fan_in * positions))
        for a in range(0, len(x), step):
            part = x[a:a + step]
            cols = windows(part, self.in_shape, self.kernel, self.stride, self.padding).reshape(self.fan_in, -1)
            i[a:a + step] = (w @ cols).reshape(self.out_channels, len(part), positions).transpose(1, 0, 2)
        if self.bias is not None:
            i += self.bias[:, None]
        return i.reshape(len(x), -1)

    def footprint_bits(self) -> dict:
        """Weights once (shared), one membrane per output position, one bias per output channel."""
        biases = self.out_channels if self.bias is not None else 0
        return {
            "weights": self.weight.size * self.weight_format.bits,
            "membranes": self.n_out * self.membrane_bits,
            "biases": biases * self.bias_bits,
            "fp32": 32 * (self.weight.size + self.n_out + biases),
        }


@dataclass(frozen=True)
class PoolLayer(_Stateless):
    """Pooling on spikes, no neuron: `op` `max` is the OR over the window (binary out), `sum` the count of
    spikes in it (0..K*K out). No padding. An average pool is a `sum` pool whose 1/(K*K) is folded into
    the next layer's scale (docs/arithmetic.md 7.3)."""

    kind: ClassVar[str] = "pool"

    op: str
    """`max` (OR of the window's spikes) or `sum` (their count)."""
    in_shape: Shape
    """(C, H, W) of the input map."""
    kernel: int
    """Window side K in positions (1..7)."""
    stride: int = 0
    """Step between windows in positions (1..7); 0 means `kernel` (non-overlapping windows)."""

    def __post_init__(self):
        if self.op not in POOL_OPS:
            raise ModelError(f"pool op must be one of {POOL_OPS}, not {self.op!r}")
        object.__setattr__(self, "in_shape", check_shape(self.in_shape, "pool input shape"))
        for name, value in (("kernel", self.kernel), ("stride", self.stride or self.kernel)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in POOL_SIZES:
                raise ModelError(f"pool {name} must be in 1..{POOL_SIZES[-1]}, not {value!r}")
        object.__setattr__(self, "stride", int(self.stride or self.kernel))
        _, h, w = self.in_shape
        if self.kernel > min(h, w):
            raise ModelError(f"pool window {self.kernel} x {self.kernel} is larger than its input {h} x {w}")

    @property
    def out_shape(self) -> Shape:
        c, h, w = self.in_shape
        return c, out_side(h, self.kernel, self.stride, 0), out_side(w, self.kernel, self.stride, 0)


    @property
    def output_max(self) -> int:
        """Largest value it passes on: 1 (max), K*K (sum)."""
        return 1 if self.op == "max" else self.kernel * self.kernel

    def forward(self, spikes: np.ndarray) -> np.ndarray:
        """[batch, C*H*W] 0/1 -> [batch, C*Ho*Wo] uint8 (the OR or the count of each window): K*K
        elementwise max/add of strided slices, which keeps the (C, H, W) order and copies nothing big."""
        c, h, w = self.in_shape
        _, ho, wo = self.out_shape
        k, s = self.kernel, self.stride
        maps = spikes.reshape(len(spikes), c, h, w).astype(np.uint8, copy=False)
        combine = np.maximum if self.op == "max" else np.add  # counts reach at most 7*7 = 49 in uint8
        out = None
        for ky in range(k):
            for kx in range(k):
                tap = maps[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s]
                out = tap.copy() if out is None else combine(out, tap, out=out)
        return out.reshape(len(spikes), -1)


@dataclass(frozen=True)
class FlattenLayer(_Stateless):
    """A (C, H, W) map read as a vector of C*H*W in (C, H, W) order: no arithmetic, the flat data is
    already in that order; it marks where a dense layer takes over."""

    kind: ClassVar[str] = "flatten"

    in_shape: Shape
    """(C, H, W) of the input map."""

    def __post_init__(self):
        object.__setattr__(self, "in_shape", check_shape(self.in_shape, "flatten input shape"))

    @property
    def n_out(self) -> int:
        return self.n_in

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x
