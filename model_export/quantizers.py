"""Quantizers for quantization-aware training, as small modules.

Every weight quantizer maps real weights `w` and the layer's scale `s` to **integer-valued** tensors
(integer units of s) in the forward pass, exactly, and carries a gradient through a straight-through
or smooth surrogate. The integers are what the exported model holds, so the eval-mode torch network and
the integer reference model compute the same thing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mintaccel.core.model import WeightFormat, narrow_max


def straight_through(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Forward value `exact` (bit for bit), gradient of `surrogate`.

    `surrogate - surrogate.detach()` is exactly +0, so the sum is exactly `exact`.
    """
    return exact.detach() + (surrogate - surrogate.detach())


def scale_gradient(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Forward value `x` unchanged, gradient multiplied by `factor` (LSQ's step-size gradient scale)."""
    return straight_through(x, x * factor)


class UniformQuantizer(nn.Module):
    """MINT / LSQ: signed narrow-range integers q = clamp(round(w / s), -Q, Q)."""

    def __init__(self, bits: int):
        super().__init__()
        self.fmt = WeightFormat("uniform", bits)
        self.qmax = narrow_max(bits)

    def forward(self, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        v = w / s
        exact = torch.clamp(torch.round(v), -self.qmax, self.qmax)
        return straight_through(exact, torch.clamp(v, -self.qmax, self.qmax))

    def init_scale(self, w: torch.Tensor) -> float:
        """LSQ's initial step: 2 mean|w| / sqrt(Q)."""
        return float(2 * w.abs().mean() / math.sqrt(self.qmax))


class PowerOfTwoQuantizer(nn.Module):
    """Sign and exponent: 0 or +-2^e, 0 <= e <= 2^(b-1) - 2 (docs/arithmetic.md).

    |w/s| < 1/2 becomes 0; otherwise the exponent is log2|w/s| rounded to nearest and clamped.
    """

    def __init__(self, bits: int):
        super().__init__()
        self.fmt = WeightFormat("pot", bits)
        self.emax = self.fmt.max_magnitude.bit_length() - 1

    def forward(self, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        v = w / s
        mag = v.detach().abs()
        e = torch.clamp(torch.round(torch.log2(mag.clamp_min(2.0**-30))), 0, self.emax)
        exact = torch.where(mag < 0.5, torch.zeros_like(mag), torch.sign(v.detach()) * torch.exp2(e))
        top = float(1 << self.emax)
        return straight_through(exact, torch.clamp(v, -top, top))

    def init_scale(self, w: torch.Tensor) -> float:
        return float(w.abs().mean())


class SigmoidSumQuantizer(nn.Module):
    """Shymyrbay, Fouda, Eltawil (2023): a sum of sigmoids, one per gap between levels.

    soft(v) = l_0 + sum_i (l_{i+1} - l_i) * sigmoid(temperature * (v - m_i)), m_i the midpoints.
    In training the soft value is used (and sharpens as `temperature` grows along the schedule);
    in eval mode the hard step l_0 + sum_i gap_i * [v >= m_i] gives exact integers.
    """

    def __init__(self, fmt: WeightFormat, temperature: float = 1.0):
        super().__init__()
        if fmt.scheme not in ("binary", "uniform") or fmt.levels().size > 3:
            raise ValueError("the sigmoid-sum quantizer is for binary and ternary (uniform:2) weights")
        self.fmt = fmt
        levels = torch.tensor(fmt.levels(), dtype=torch.float32)
        self.register_buffer("levels", levels)
        self.register_buffer("gaps", levels[1:] - levels[:-1])
        self.register_buffer("mids", (levels[1:] + levels[:-1]) / 2)
        self.temperature = temperature

    def soft(self, v: torch.Tensor) -> torch.Tensor:
        z = self.temperature * (v.unsqueeze(-1) - self.mids)
        return self.levels[0] + (self.gaps * torch.sigmoid(z)).sum(-1)

    def hard(self, v: torch.Tensor) -> torch.Tensor:
        return self.levels[0] + (self.gaps * (v.unsqueeze(-1) >= self.mids)).sum(-1)

    def forward(self, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        v = w / s
        if self.training:
            return self.soft(v)
        return self.hard(v.detach())

    def init_scale(self, w: torch.Tensor) -> float:
        return float(w.abs().mean())


def temperature_schedule(epoch: int, epochs: int, start: float = 2.0, end: float = 200.0) -> float:
    """Geometric growth of the sigmoid temperature from `start` (first epoch) to `end` (last)."""
    if epochs <= 1:
        return end
    return start * (end / start) ** (epoch / (epochs - 1))


def weight_quantizer(fmt: WeightFormat, sigmoid: bool = False) -> nn.Module:
    """The quantizer for a weight format; `sigmoid` picks the sigmoid-sum one (binary/ternary)."""
    if sigmoid or fmt.scheme == "binary":
        return SigmoidSumQuantizer(fmt)
    if fmt.scheme == "pot":
        return PowerOfTwoQuantizer(fmt.bits)
    return UniformQuantizer(fmt.bits)


# SQUAT-style membrane levels (snnTorch functional/quant.py, `state_quant`), for training studies.
_SQUAT_MULTIPLIER = {1: 0.05, 2: 0.1, 3: 0.3, 4: 0.5, 5: 0.7, 6: 0.9, 7: 0.925}


def threshold_centred_levels(bits: int, threshold: float, lower_limit: float = 0.0,
                             upper_limit: float = 0.2, multiplier: float | None = None) -> list[float]:
    """The 2^bits membrane levels of SQUAT's threshold-centred scheme, exponentially denser near the threshold.

    Same construction as snnTorch's `state_quant(uniform=False, thr_centered=True)`.
    """
    if multiplier is None:
        multiplier = _SQUAT_MULTIPLIER.get(bits, 0.95)
    n = 2**bits
    top = threshold * (1 + upper_limit)
    bottom = -threshold * (1 + lower_limit)
    below = math.floor(n * (threshold - bottom) / (top - bottom))
    above = n - below
    levels = []
    if below:
        room = sum(multiplier**j for j in range(below)) / (threshold - bottom)
        value = bottom
        for j in range(below):
            levels.append(value)
            value += multiplier**j / room
    if above:
        room = sum(multiplier**j for j in range(above)) / (top - threshold)
        value = threshold
        for j in reversed(range(above)):
            value += multiplier**j / room
            levels.append(value)
    return levels


class ThresholdCentredMembrane(nn.Module):
    """Round a membrane to the nearest SQUAT level (straight-through gradient).

    The levels are not integers, so a network using it trains and evaluates in torch but cannot be
    exported to the integer model (hardware would need a decode table).
    """

    def __init__(self, bits: int, threshold: float = 1.0):
        super().__init__()
        self.bits = bits
        self.register_buffer("levels", torch.tensor(threshold_centred_levels(bits, threshold)))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        idx = torch.argmin((u.detach().unsqueeze(-1) - self.levels).abs(), dim=-1)
        return straight_through(self.levels[idx], u)
