"""The layers of the quantization-aware network (model_export/qat.py): dense and conv2d LIF layers on the
integer track, pooling on spikes and flatten. Each one exports to its layer of the integer model.

Tensors between layers are flat, [frames, C*H*W] in (C, H, W) order as in the reference model; a conv or a
pool views them as maps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer, Shape, out_side
from mintaccel.core.model import THRESHOLD_MAX, DenseLayer, Leak, narrow_max
from mintaccel.model_export.quantizers import (
    ThresholdCentredMembrane, scale_gradient, straight_through, weight_quantizer)

#: Elements of one unfolded chunk in `exact_conv2d` (64 MB of float32).
UNFOLD_CHUNK = 2**24


class SpikeFn(torch.autograd.Function):
    """Heaviside(H - theta) forward, fast-sigmoid derivative in units of theta backward."""

    slope = 5.0

    @staticmethod
    def forward(ctx, h, theta):
        ctx.save_for_backward(h, theta)
        return (h >= theta).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        h, theta = ctx.saved_tensors
        z = (h - theta) / theta
        g = grad / (theta * (1 + SpikeFn.slope * z.abs()) ** 2)
        grad_theta = -g.sum().reshape(theta.shape) if ctx.needs_input_grad[1] else None
        return g, grad_theta


class Neurons(nn.Module):
    """What a dense and a conv2d layer share: the quantized weights, bias and threshold (one scale for
    weights and membrane, MINT), and steps 2-6 of docs/arithmetic.md on the integer track (or the float
    baseline: real weights, real threshold 1.0, exact real leak). Subclasses create `synapse` (the
    torch module holding weight and bias) and then call `_setup`."""

    synapse: nn.Module

    def _setup(self, spec, cfg) -> None:
        self.fmt = spec.weight_format()
        self.bias_bits = cfg.bias_bits if cfg.bias else 0
        if self.fmt is not None:
            self.quantizer = weight_quantizer(self.fmt, spec.sigmoid)
            init = self.quantizer.init_scale(self.synapse.weight.detach())
            self.scale = nn.Parameter(torch.tensor(init))
            self.grad_factor = 1.0 / math.sqrt(self.synapse.weight.numel() * max(1, self.fmt.max_magnitude))
        self.membrane_quantizer = None
        if spec.membrane.startswith("squat:"):
            self.membrane_quantizer = ThresholdCentredMembrane(int(spec.membrane.partition(":")[2]))
        self.membrane_max = None if not spec.membrane.isdigit() else narrow_max(int(spec.membrane))

    def _init_neuron(self, spec, cfg) -> None:
        self.spec = spec
        self.reset = cfg.reset
        self.leak = Leak.parse(cfg.leak)
        self.threshold_real = cfg.threshold

    def step_scale(self) -> torch.Tensor:
        return scale_gradient(self.scale.abs() + 1e-8, self.grad_factor)

    def integer_weight(self) -> torch.Tensor:
        """Integer-valued weights (real weights for a float layer)."""
        if self.fmt is None:
            return self.synapse.weight
        return self.quantizer(self.synapse.weight, self.step_scale())

    def integer_bias(self) -> torch.Tensor | None:
        if self.synapse.bias is None:
            return None
        if self.fmt is None:
            return self.synapse.bias
        v = self.synapse.bias / self.step_scale()
        q = narrow_max(self.bias_bits)
        return straight_through(torch.clamp(torch.round(v), -q, q), torch.clamp(v, -q, q))

    def integer_threshold(self) -> torch.Tensor:
        if self.fmt is None:
            return torch.tensor(self.threshold_real)
        v = self.threshold_real / self.step_scale()
        return straight_through(torch.clamp(torch.round(v), 1, THRESHOLD_MAX), v)

    def leak_step(self, r: torch.Tensor) -> torch.Tensor:
        k = self.leak.k
        if self.leak.kind == "none":
            return r
        if self.fmt is None:  # float baseline: exact real leak
            return r * 2.0**-k if self.leak.kind == "shift" else r * (1 - 2.0**-k)
        shifted = straight_through(torch.trunc(r / 2**k), r / 2**k)
        return shifted if self.leak.kind == "shift" else r - shifted

    def fire(self, h: torch.Tensor, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 3-6 from H: (spikes, the membrane written back)."""
        spike = SpikeFn.apply(h, theta)
        if self.reset == "hard":
            r = h * (1 - spike.detach())
        else:
            r = h - theta * spike.detach()
        u = self.leak_step(r)
        if self.membrane_max is not None:
            u = torch.clamp(u, -self.membrane_max, self.membrane_max)
        elif self.membrane_quantizer is not None:
            u = theta * self.membrane_quantizer(u / theta)
        return spike, u

    def _int_fields(self) -> dict:
        """The integer layer's neuron fields (call in eval mode, without gradients)."""
        b = self.integer_bias()
        return dict(weight=self.integer_weight().numpy().astype(np.int64), weight_format=self.fmt,
                    membrane_bits=int(self.spec.membrane), threshold=int(self.integer_threshold().item()),
                    reset=self.reset, leak=self.leak, bias=None if b is None else b.numpy().astype(np.int64),
                    bias_bits=self.bias_bits, scale=float(self.step_scale().item()))


class QuantLIF(Neurons):
    """One dense LIF layer on the integer track (or the float baseline)."""

    def __init__(self, n_in: int, n_out: int, spec, cfg):
        super().__init__()
        self._init_neuron(spec, cfg)
        self.linear = nn.Linear(n_in, n_out, bias=cfg.bias)
        # Gain so that a dense input pattern can reach the threshold at initialisation.
        with torch.no_grad():
            self.linear.weight.mul_(2.0)
        self._setup(spec, cfg)

    @property
    def synapse(self) -> nn.Module:
        return self.linear

    @property
    def n_out(self) -> int:
        return self.linear.out_features

    def current(self, x: torch.Tensor, w: torch.Tensor, b) -> torch.Tensor:
        """Step 1 for a batch of frames: [N, n_in] -> [N, n_out] (a float32 matmul of integers below
        2^24 is exact)."""
        i = x @ w.t()
        return i if b is None else i + b

    def forward(self, x: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: (input spikes [B, n_in], membrane [B, n_out]) -> (spikes, new membrane)."""
        h = u + x @ w.t()
        if b is not None:
            h = h + b
        return self.fire(h, theta)

    def to_int_layer(self, input_max: int = 1) -> DenseLayer:
        return DenseLayer(**self._int_fields(), input_max=input_max)


def exact_conv2d(x: torch.Tensor, w: torch.Tensor, b, stride: int, padding: int) -> torch.Tensor:
    """conv2d as unfold + matmul: a BLAS product of integer-valued float32 whose every partial sum stays
    below 2^24 is exact in any summation order, which torch's own conv2d does not promise (NNPACK and
    oneDNN may pick Winograd or FFT kernels). Chunked to bound the unfolded copy."""
    n, c, h, wd = x.shape
    cout, _, k, _ = w.shape
    ho, wo = out_side(h, k, stride, padding), out_side(wd, k, stride, padding)
    wm = w.reshape(cout, -1)
    step = max(1, UNFOLD_CHUNK // (c * k * k * ho * wo))
    parts = [wm @ F.unfold(x[i:i + step], k, padding=padding, stride=stride) for i in range(0, n, step)]
    y = torch.cat(parts).view(n, cout, ho, wo)
    return y if b is None else y + b.view(1, -1, 1, 1)


class QuantConv(Neurons):
    """A conv2d layer of LIF neurons (one membrane per output position) on the integer track or float."""

    def __init__(self, in_shape: Shape, channels: int, kernel: int, stride: int, padding: int, spec, cfg):
        super().__init__()
        self._init_neuron(spec, cfg)
        self.in_shape = tuple(in_shape)
        self.stride, self.padding = stride, padding
        self.conv = nn.Conv2d(in_shape[0], channels, kernel, stride, padding, bias=cfg.bias)
        with torch.no_grad():  # the dense layer's gain, for the same reason
            self.conv.weight.mul_(2.0)
        self._setup(spec, cfg)

    @property
    def synapse(self) -> nn.Module:
        return self.conv

    def current(self, x: torch.Tensor, w: torch.Tensor, b) -> torch.Tensor:
        """Step 1 for a batch of frames: [N, C_in*H*W] -> [N, C_out*Ho*Wo]. Training uses torch's fast
        conv2d; eval, whose results must be the reference's, the provably exact `exact_conv2d`."""
        maps = x.view(-1, *self.in_shape)
        conv = F.conv2d if self.training else exact_conv2d
        return conv(maps, w, b, self.stride, self.padding).flatten(1)

    def to_int_layer(self, input_max: int = 1) -> Conv2dLayer:
        return Conv2dLayer(**self._int_fields(), in_shape=self.in_shape, stride=self.stride,
                           padding=self.padding, input_max=input_max)


class SpikePool(nn.Module):
    """Pooling on spikes: `max` is the OR of the window (torch's max: its gradient goes to the winning
    input), `sum` the count of spikes in it (exact: a sum of at most 49 ones)."""

    def __init__(self, op: str, in_shape: Shape, kernel: int, stride: int):
        super().__init__()
        self.op, self.in_shape, self.kernel, self.stride = op, tuple(in_shape), kernel, stride or kernel

    @property
    def output_max(self) -> int:
        return 1 if self.op == "max" else self.kernel * self.kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = x.view(-1, *self.in_shape)
        if self.op == "max":
            return F.max_pool2d(maps, self.kernel, self.stride).flatten(1)
        return F.avg_pool2d(maps, self.kernel, self.stride, divisor_override=1).flatten(1)

    def to_int_layer(self) -> PoolLayer:
        return PoolLayer(self.op, self.in_shape, self.kernel, self.stride)


class Flatten(nn.Module):
    """A map read as a vector: the flat data is already in (C, H, W) order, so nothing moves."""

    def __init__(self, in_shape: Shape):
        super().__init__()
        self.in_shape = tuple(in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def to_int_layer(self) -> FlattenLayer:
        return FlattenLayer(self.in_shape)
