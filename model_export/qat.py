"""Quantization-aware training of LIF networks (PyTorch, CPU).

Quantized layers compute on an **integer track**: every value in the forward pass is an exact integer
(float32 holds them exactly: docs/arithmetic.md section 3 keeps them below 2^24), every decision
(spike, reset, leak rounding, clamp) follows docs/arithmetic.md, and the real values only carry
gradients (straight-through estimators and a surrogate spike derivative). So in eval mode this network
and `sim.reference` agree exactly, by construction and by test.

A `float` layer is the unquantized LIF baseline: real weights, real threshold 1.0, exact real leak.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mintaccel.core.errors import UserError
from mintaccel.model_export.quantizers import (
    SigmoidSumQuantizer, ThresholdCentredMembrane, scale_gradient, straight_through,
    weight_quantizer)
from mintaccel.core.model import (
    MEMBRANE_BITS, THRESHOLD_MAX, DenseLayer, Encoding, IntModel, Leak, ModelError, WeightFormat, narrow_max)


@dataclass(frozen=True)
class LayerSpec:
    """How one layer is quantized for training."""

    weights: str = "uniform:2"
    """`float`, `uniform:B`, `pot:B`, `binary`, or `sigmoid:uniform:2` (ternary through the sigmoid quantizer)."""
    membrane: str = "2"
    """Membrane bits (`2`, `3`, `4`, `8`), `float`, or `squat:B` (threshold-centred levels, not exportable)."""

    def __post_init__(self):
        self.weight_format()
        if self.membrane == "float" or self.membrane.startswith("squat:"):
            bits = self.membrane.partition(":")[2]
            if self.membrane != "float" and bits not in ("1", "2", "3", "4", "5", "6", "7", "8"):
                raise UserError(f"membrane {self.membrane!r}: squat needs bits 1..8, e.g. squat:2")
        elif not self.membrane.isdigit() or int(self.membrane) not in MEMBRANE_BITS:
            raise UserError(f"membrane {self.membrane!r}: choose bits from {MEMBRANE_BITS}, 'float' or 'squat:B'")
        if self.weights == "float" and self.membrane != "float":
            raise UserError("float weights go with float membranes (use --membrane float)")

    @property
    def is_float(self) -> bool:
        return self.weights == "float"

    @property
    def sigmoid(self) -> bool:
        return self.weights.startswith("sigmoid:")

    def weight_format(self) -> WeightFormat | None:
        if self.weights == "float":
            return None
        try:
            return WeightFormat.parse(self.weights.removeprefix("sigmoid:"))
        except ModelError as e:
            raise UserError(str(e)) from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run; two runs with equal configs give equal bits."""

    dataset: str = "digits"
    """`digits` (scikit-learn, offline) or `mnist` (IDX files in `data_dir`)."""
    hidden: tuple[int, ...] = (128,)
    """Hidden layer sizes (neurons); input and output sizes come from the dataset."""
    layers: tuple[LayerSpec, ...] = (LayerSpec(),)
    """One spec for every layer, or one per layer (hidden layers, then the output layer)."""
    timesteps: int = 8
    """T: time steps per sample."""
    reset: str = "hard"
    leak: str = "shift:1"
    """`none`, `shift:K` (u * 2^-K, MINT) or `decay:K` (u - u * 2^-K)."""
    threshold: float = 1.0
    """Real threshold; the integer threshold is round(threshold / scale), at least 1."""
    bias: bool = False
    """Train an integer bias per neuron (bias_bits wide)."""
    bias_bits: int = 8
    epochs: int = 30
    batch_size: int = 64
    lr: float = 5e-3
    """Adam learning rate (cosine-annealed to 0)."""
    seed: int = 0
    threads: int = 1
    """torch threads; fixed so that training is reproducible bit for bit."""
    data_dir: str | None = None
    """Folder of MNIST IDX files (default: ../shared/data/mnist-test beside the checkout)."""

    def __post_init__(self):
        if self.reset not in ("hard", "soft"):
            raise UserError(f"reset must be 'hard' or 'soft', not {self.reset!r}")
        try:
            Leak.parse(self.leak)
        except ModelError as e:
            raise UserError(f"--leak {self.leak}: {e}") from None
        n = len(self.hidden) + 1
        if len(self.layers) not in (1, n):
            raise UserError(f"{len(self.layers)} layer formats given for {n} layers (give 1 or {n})")
        for name in ("timesteps", "epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1")
        if any(h < 1 for h in self.hidden):
            raise UserError("hidden layer sizes must be at least 1")
        if not self.threshold > 0:
            raise UserError("threshold must be positive")
        if self.bias and not 2 <= self.bias_bits <= 16:
            raise UserError("bias bits must be in 2..16")

    def layer_specs(self) -> tuple[LayerSpec, ...]:
        return self.layers * (len(self.hidden) + 1) if len(self.layers) == 1 else self.layers

    def to_json(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["layers"] = [asdict(s) for s in self.layers]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        d["layers"] = tuple(LayerSpec(**s) for s in d["layers"])
        return cls(**d)


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


class QuantLIF(nn.Module):
    """One dense LIF layer on the integer track (or the float baseline)."""

    def __init__(self, n_in: int, n_out: int, spec: LayerSpec, cfg: TrainConfig):
        super().__init__()
        self.spec = spec
        self.reset = cfg.reset
        self.leak = Leak.parse(cfg.leak)
        self.threshold_real = cfg.threshold
        self.linear = nn.Linear(n_in, n_out, bias=cfg.bias)
        # Gain so that a dense input pattern can reach the threshold at initialisation.
        with torch.no_grad():
            self.linear.weight.mul_(2.0)
        self.fmt = spec.weight_format()
        self.bias_bits = cfg.bias_bits if cfg.bias else 0
        if self.fmt is not None:
            self.quantizer = weight_quantizer(self.fmt, spec.sigmoid)
            init = self.quantizer.init_scale(self.linear.weight.detach())
            self.scale = nn.Parameter(torch.tensor(init))
            self.grad_factor = 1.0 / math.sqrt(self.linear.weight.numel() * max(1, self.fmt.max_magnitude))
        self.membrane_quantizer = None
        if spec.membrane.startswith("squat:"):
            self.membrane_quantizer = ThresholdCentredMembrane(int(spec.membrane.partition(":")[2]))
        self.membrane_max = None if not spec.membrane.isdigit() else narrow_max(int(spec.membrane))

    @property
    def n_out(self) -> int:
        return self.linear.out_features

    def step_scale(self) -> torch.Tensor:
        return scale_gradient(self.scale.abs() + 1e-8, self.grad_factor)

    def integer_weight(self) -> torch.Tensor:
        """Integer-valued weights [n_out, n_in] (real weights for a float layer)."""
        if self.fmt is None:
            return self.linear.weight
        return self.quantizer(self.linear.weight, self.step_scale())

    def integer_bias(self) -> torch.Tensor | None:
        if self.linear.bias is None:
            return None
        if self.fmt is None:
            return self.linear.bias
        v = self.linear.bias / self.step_scale()
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

    def forward(self, x: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: (input spikes [B, n_in], membrane [B, n_out]) -> (spikes, new membrane)."""
        h = u + x @ w.t()
        if b is not None:
            h = h + b
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


class QuantSNN(nn.Module):
    def __init__(self, sizes: list[int], cfg: TrainConfig):
        super().__init__()
        self.cfg = cfg
        self.sizes = list(sizes)
        specs = cfg.layer_specs()
        self.layers = nn.ModuleList(QuantLIF(a, b, s, cfg) for a, b, s in zip(sizes, sizes[1:], specs))

    def set_temperature(self, temperature: float):
        for m in self.modules():
            if isinstance(m, SigmoidSumQuantizer):
                m.temperature = temperature

    def forward(self, x: torch.Tensor, record: bool = False):
        """x: spikes [B, T, inputs] (float 0/1). Returns output counts [B, n_out] and, if `record`,
        per-layer spikes and membranes [B, T, n] (lists)."""
        batch, steps = x.shape[0], x.shape[1]
        params = [(l.integer_weight(), l.integer_bias(), l.integer_threshold()) for l in self.layers]
        u = [x.new_zeros(batch, l.n_out) for l in self.layers]
        spikes_rec = [[] for _ in self.layers]
        mem_rec = [[] for _ in self.layers]
        counts = 0
        for t in range(steps):
            s = x[:, t]
            for i, (layer, (w, b, theta)) in enumerate(zip(self.layers, params)):
                s, u[i] = layer(s, u[i], w, b, theta)
                if record:
                    spikes_rec[i].append(s)
                    mem_rec[i].append(u[i])
            counts = counts + s
        if not record:
            return counts
        return counts, [torch.stack(r, 1) for r in spikes_rec], [torch.stack(r, 1) for r in mem_rec]

    def exportable_reason(self) -> str | None:
        for i, layer in enumerate(self.layers):
            if layer.fmt is None:
                return f"layer {i} is a float layer (train with quantized weights to export)"
            if layer.membrane_max is None:
                return f"layer {i} uses {layer.spec.membrane} membranes, which are not integers (a training-study format)"
        return None

    @torch.no_grad()
    def to_int_model(self, encoding: Encoding, meta: dict | None = None) -> IntModel:
        """The integer model this network computes in eval mode."""
        reason = self.exportable_reason()
        if reason:
            raise UserError(f"cannot export: {reason}")
        was_training = self.training
        self.eval()
        layers = []
        for layer in self.layers:
            b = layer.integer_bias()
            layers.append(DenseLayer(
                weight=layer.integer_weight().numpy().astype(np.int64),
                weight_format=layer.fmt,
                membrane_bits=int(layer.spec.membrane),
                threshold=int(layer.integer_threshold().item()),
                reset=layer.reset,
                leak=layer.leak,
                bias=None if b is None else b.numpy().astype(np.int64),
                bias_bits=layer.bias_bits,
                scale=float(layer.step_scale().item())))
        self.train(was_training)
        model = IntModel(tuple(layers), self.cfg.timesteps, encoding, meta or {})
        worst = max(l.bound for l in model.layers)
        if worst >= 2**24:
            raise UserError(f"a layer's accumulator bound {worst} exceeds float32's exact range (2^24)")
        return model
