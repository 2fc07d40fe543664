"""The integer network a mintaccel accelerator runs (docs/arithmetic.md), as frozen dataclasses.

Every constructor validates its arguments and raises `ModelError` with a message that names the
offending field, so a bad model file ends in one readable line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mintaccel.core.errors import UserError

WEIGHT_BITS = {"uniform": (2, 3, 4, 8), "binary": (1,), "pot": (2, 3, 4)}
MEMBRANE_BITS = (2, 3, 4, 8)
RESETS = ("hard", "soft")
LEAKS = ("none", "shift", "decay")
THRESHOLD_MAX = 2**20
LEAK_K_MAX = 15
BIAS_BITS = range(2, 17)


class ModelError(UserError):
    """An integer model that does not satisfy docs/arithmetic.md."""


def narrow_max(bits: int) -> int:
    """Largest value of the signed narrow-range grid of `bits` bits: 2^(bits-1) - 1."""
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class WeightFormat:
    scheme: str
    """`uniform`, `binary` or `pot` (power of two)."""
    bits: int
    """Storage bits per weight (uniform 2/3/4/8, binary 1, pot 2/3/4)."""

    def __post_init__(self):
        if self.scheme not in WEIGHT_BITS:
            raise ModelError(f"weight scheme must be one of {sorted(WEIGHT_BITS)}, not {self.scheme!r}")
        if self.bits not in WEIGHT_BITS[self.scheme]:
            raise ModelError(f"{self.scheme} weights support bits {WEIGHT_BITS[self.scheme]}, not {self.bits}")

    @property
    def max_magnitude(self) -> int:
        """w_max: the largest |weight| the format can hold (integer units)."""
        if self.scheme == "uniform":
            return narrow_max(self.bits)
        if self.scheme == "binary":
            return 1
        return 1 << ((1 << (self.bits - 1)) - 2)

    def levels(self) -> np.ndarray:
        """Every value the format can hold, ascending."""
        if self.scheme == "uniform":
            q = narrow_max(self.bits)
            return np.arange(-q, q + 1)
        if self.scheme == "binary":
            return np.array([-1, 1])
        mags = [1 << e for e in range((1 << (self.bits - 1)) - 1)]
        return np.array(sorted([-m for m in mags] + [0] + mags))

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask: which of `values` lie on the format's grid."""
        return np.isin(values, self.levels())

    def __str__(self):
        return f"{self.scheme}:{self.bits}"

    @classmethod
    def parse(cls, text: str) -> "WeightFormat":
        """`uniform:2`, `binary`, `binary:1`, `pot:3`."""
        scheme, _, bits = text.partition(":")
        if scheme not in WEIGHT_BITS:
            raise ModelError(f"weight scheme must be one of {sorted(WEIGHT_BITS)}, not {scheme!r}")
        if not bits:
            if scheme != "binary":
                raise ModelError(f"weight format {text!r} needs a bit width, e.g. {scheme}:2")
            bits = "1"
        try:
            return cls(scheme, int(bits))
        except ValueError:
            raise ModelError(f"weight format {text!r}: bits must be an integer") from None


@dataclass(frozen=True)
class Leak:
    kind: str
    """`none`, `shift` (u * 2^-k) or `decay` (u - u * 2^-k); see docs/arithmetic.md step 5."""
    k: int = 0
    """Shift amount in bits (0 for `none`, 1..15 otherwise)."""

    def __post_init__(self):
        if self.kind not in LEAKS:
            raise ModelError(f"leak kind must be one of {LEAKS}, not {self.kind!r}")
        if self.kind == "none" and self.k != 0:
            raise ModelError("leak 'none' takes k = 0")
        if self.kind != "none" and not 1 <= self.k <= LEAK_K_MAX:
            raise ModelError(f"leak k must be in 1..{LEAK_K_MAX}, not {self.k}")

    def __str__(self):
        return "none" if self.kind == "none" else f"{self.kind}:{self.k}"

    @classmethod
    def parse(cls, text: str) -> "Leak":
        kind, _, k = text.partition(":")
        try:
            return cls(kind, int(k) if k else 0)
        except ValueError:
            raise ModelError(f"leak {text!r}: k must be an integer") from None


@dataclass(frozen=True)
class DenseLayer:
    """A fully connected LIF layer. Convolution will be a sibling class with the same neuron fields."""

    weight: np.ndarray = field(repr=False)
    """Integer weights, shape [n_out, n_in], on `weight_format`'s grid (integer units)."""
    weight_format: WeightFormat
    membrane_bits: int
    """Stored membrane width in bits (signed narrow range, 2/3/4/8)."""
    threshold: int
    """Firing threshold in membrane units (fire when H >= threshold)."""
    reset: str
    """`hard` (to 0) or `soft` (subtract the threshold)."""
    leak: Leak
    bias: np.ndarray | None = field(default=None, repr=False)
    """Optional integer bias per neuron, shape [n_out], on the `bias_bits` grid."""
    bias_bits: int = 0
    """Bias width in bits (2..16), 0 when there is no bias."""
    scale: float | None = None
    """Informational: the real value of one integer unit (weights and membrane share it, MINT)."""

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise ModelError(f"weight must be a non-empty [n_out, n_in] matrix, got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.integer):
            raise ModelError(f"weights must be integers, got dtype {w.dtype}")
        bad = ~self.weight_format.contains(w)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ModelError(
                f"weight [{i},{j}] = {w[i, j]} is outside the {self.weight_format} grid "
                f"{_grid_text(self.weight_format.levels())}")
        object.__setattr__(self, "weight", w.astype(np.int64))
        object.__setattr__(self, "_weight_t", {})  # cached transposed float copies for synaptic_input
        if self.membrane_bits not in MEMBRANE_BITS:
            raise ModelError(f"membrane bits must be one of {MEMBRANE_BITS}, not {self.membrane_bits}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, np.integer)):
            raise ModelError(f"threshold must be an integer, not {self.threshold!r}")
        object.__setattr__(self, "threshold", int(self.threshold))
        if not 1 <= self.threshold <= THRESHOLD_MAX:
            raise ModelError(f"threshold must be in 1..{THRESHOLD_MAX}, not {self.threshold}")
        if self.reset not in RESETS:
            raise ModelError(f"reset must be one of {RESETS}, not {self.reset!r}")
        if not isinstance(self.leak, Leak):
            raise ModelError("leak must be a Leak")
        if self.bias is None:
            if self.bias_bits != 0:
                raise ModelError("bias_bits is set but the layer has no bias")
        else:
            b = np.asarray(self.bias)
            if b.shape != (self.n_out,):
                raise ModelError(f"bias must have shape ({self.n_out},), got {b.shape}")
            if not np.issubdtype(b.dtype, np.integer):
                raise ModelError(f"bias must be integers, got dtype {b.dtype}")
            if self.bias_bits not in BIAS_BITS:
                raise ModelError(f"bias bits must be in 2..16, not {self.bias_bits}")
            q = narrow_max(self.bias_bits)
            if np.abs(b).max(initial=0) > q:
                raise ModelError(f"bias value {b[np.abs(b).argmax()]} is outside the {self.bias_bits}-bit grid -{q}..{q}")
            object.__setattr__(self, "bias", b.astype(np.int64))

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def membrane_max(self) -> int:
        """Q(m): stored membranes lie in -Q(m)..Q(m)."""
        return narrow_max(self.membrane_bits)

    @property
    def bound(self) -> int:
        """B of docs/arithmetic.md section 3: the largest |value| any step of this layer produces."""
        bias_max = narrow_max(self.bias_bits) if self.bias is not None else 0
        return self.membrane_max + self.n_in * self.weight_format.max_magnitude + bias_max

    @property
    def accumulator_bits(self) -> int:
        """A of docs/arithmetic.md section 3: signed width that holds -B..B and the threshold."""
        return max(self.bound.bit_length(), self.threshold.bit_length()) + 1

    def synaptic_input(self, spikes: np.ndarray) -> np.ndarray:
        """Step 1 for a batch: spikes [batch, n_in] (0/1) -> I [batch, n_out] (int64).

        A float matmul is exact here and uses BLAS: float32 while every partial sum stays below 2^24
        (|I| <= B), float64 (exact below 2^53) otherwise.
        """
        dtype = np.float32 if self.bound < 2**24 else np.float64
        w = self._weight_t.get(dtype)
        if w is None:
            w = self._weight_t[dtype] = np.ascontiguousarray(self.weight.T, dtype=dtype)
        i = (spikes.astype(dtype, copy=False) @ w).astype(np.int64)
        if self.bias is not None:
            i += self.bias
        return i

    def footprint_bits(self) -> dict:
        """Storage of this layer in bits: weights, membranes, biases (docs/arithmetic.md 6.1)."""
        return {
            "weights": self.weight.size * self.weight_format.bits,
            "membranes": self.n_out * self.membrane_bits,
            "biases": self.n_out * self.bias_bits if self.bias is not None else 0,
            "fp32": 32 * (self.weight.size + self.n_out + (self.n_out if self.bias is not None else 0)),
        }


@dataclass(frozen=True)
class Encoding:
    kind: str = "rate"
    """Input encoding; `rate` is the deterministic delta-sigma code of docs/arithmetic.md section 4."""
    levels: int = 16
    """P: integer pixels run 0..P (16 for digits, 255 for MNIST)."""

    def __post_init__(self):
        if self.kind != "rate":
            raise ModelError(f"input encoding must be 'rate', not {self.kind!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or not 1 <= self.levels <= 65535:
            raise ModelError(f"encoding levels must be an integer in 1..65535, not {self.levels!r}")


@dataclass(frozen=True)
class IntModel:
    layers: tuple[DenseLayer, ...]
    timesteps: int
    """T: time steps per inference."""
    encoding: Encoding = Encoding()
    meta: dict = field(default_factory=dict, compare=False)
    """Free-form provenance (training command, accuracies); never affects the arithmetic."""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        if isinstance(self.timesteps, bool) or not isinstance(self.timesteps, int) or not 1 <= self.timesteps <= 4096:
            raise ModelError(f"timesteps must be an integer in 1..4096, not {self.timesteps!r}")
        for l, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            if a.n_out != b.n_in:
                raise ModelError(f"layer {l} has {a.n_out} outputs but layer {l + 1} expects {b.n_in} inputs")

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def accumulator_bits(self) -> int:
        return max(layer.accumulator_bits for layer in self.layers)

    def footprint_bits(self) -> dict:
        """Total storage in bits, and the fp32 equivalent."""
        total = {"weights": 0, "membranes": 0, "biases": 0, "fp32": 0}
        for layer in self.layers:
            for k, v in layer.footprint_bits().items():
                total[k] += v
        total["quantized"] = total["weights"] + total["membranes"] + total["biases"]
        total["reduction"] = 1 - total["quantized"] / total["fp32"]
        return total


def _grid_text(levels: np.ndarray) -> str:
    return "{" + ", ".join(str(int(v)) for v in levels) + "}" if len(levels) <= 9 else f"{levels[0]}..{levels[-1]}"
