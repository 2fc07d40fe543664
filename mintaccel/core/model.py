"""The integer network a mintaccel accelerator runs (docs/arithmetic.md), as frozen dataclasses.

Every constructor validates its arguments and raises `ModelError` with a message that names the
offending field, so a bad model file ends in one readable line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from mintaccel.core.encodings import (MEMBRANE_BITS, WEIGHT_BITS as _SCHEME_BITS, LeakKind, ResetMode, WeightScheme,
                                      pot_magnitudes)
from mintaccel.core.errors import UserError

#: Storage bits per weight scheme, keyed by the scheme's name (the table is core.encodings.WEIGHT_BITS).
WEIGHT_BITS = {s.name: bits for s, bits in _SCHEME_BITS.items()}
RESETS = tuple(ResetMode.__members__)
LEAKS = tuple(LeakKind.__members__)
THRESHOLD_MAX = 2**20
TIMESTEPS_MAX = 4096
"""Largest T of a model (the accelerator's `max_timesteps` range ends here too)."""
LAYER_SIZE_MAX = 65536
"""Largest layer, inputs or neurons, that the accelerator builds (HwConfig `max_inputs`, `max_neurons`)."""
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

    @classmethod
    def every(cls) -> tuple["WeightFormat", ...]:
        """Every supported format, in the order of core.encodings.WEIGHT_BITS."""
        return tuple(cls(s, b) for s, bits in WEIGHT_BITS.items() for b in bits)

    @property
    def code(self) -> WeightScheme:
        """The scheme's hardware code (the `weight_scheme` register)."""
        return WeightScheme[self.scheme]

    @property
    def max_magnitude(self) -> int:
        """w_max: the largest |weight| the format can hold (integer units)."""
        if self.scheme == "uniform":
            return narrow_max(self.bits)
        if self.scheme == "binary":
            return 1
        return pot_magnitudes(self.bits)[-1]

    def levels(self) -> np.ndarray:
        """Every value the format can hold, ascending."""
        if self.scheme == "uniform":
            q = narrow_max(self.bits)
            return np.arange(-q, q + 1)
        if self.scheme == "binary":
            return np.array([-1, 1])
        mags = list(pot_magnitudes(self.bits)[1:])
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
class NeuronLayer:
    """The fields and rules every layer of LIF neurons shares (docs/arithmetic.md steps 1-6): a dense
    layer, and a conv2d layer (mintaccel.core.conv) whose neurons are its output positions."""

    weight: np.ndarray = field(repr=False)
    """Integer weights on `weight_format`'s grid (integer units); the shape is the layer kind's."""
    weight_format: WeightFormat
    membrane_bits: int
    """Stored membrane width in bits (signed narrow range, 2/3/4/8)."""
    threshold: int
    """Firing threshold in membrane units (fire when H >= threshold)."""
    reset: str
    """`hard` (to 0) or `soft` (subtract the threshold)."""
    leak: Leak
    bias: np.ndarray | None = field(default=None, repr=False)
    """Optional integer bias (per neuron for dense, per output channel for conv2d), on the `bias_bits` grid."""
    bias_bits: int = 0
    """Bias width in bits (2..16), 0 when there is no bias."""
    scale: float | None = None
    """Informational: the real value of one integer unit (weights and membrane share it, MINT)."""
    input_max: int = field(default=1, kw_only=True)
    """Largest input value: 1 for spikes, K*K after a K x K sum pool (docs/arithmetic.md section 7)."""

    def _check_weight_shape(self, w: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.n_out,)

    def __post_init__(self):
        w = np.asarray(self.weight)
        self._check_weight_shape(w)
        if not np.issubdtype(w.dtype, np.integer):
            raise ModelError(f"weights must be integers, got dtype {w.dtype}")
        bad = ~self.weight_format.contains(w)
        if bad.any():
            index = ",".join(str(int(i)) for i in np.argwhere(bad)[0])
            raise ModelError(
                f"weight [{index}] = {w[tuple(np.argwhere(bad)[0])]} is outside the {self.weight_format} grid "
                f"{_grid_text(self.weight_format.levels())}")
        object.__setattr__(self, "weight", w.astype(np.int64))
        object.__setattr__(self, "_weight_t", {})  # cached float copies for synaptic_input
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
        if isinstance(self.input_max, bool) or not isinstance(self.input_max, int) or not 1 <= self.input_max <= 49:
            raise ModelError(f"input_max must be an integer in 1..49, not {self.input_max!r}")
        if self.bias is None:
            if self.bias_bits != 0:
                raise ModelError("bias_bits is set but the layer has no bias")
        else:
            b = np.asarray(self.bias)
            if b.shape != self.bias_shape:
                raise ModelError(f"bias must have shape {self.bias_shape}, got {b.shape}")
            if not np.issubdtype(b.dtype, np.integer):
                raise ModelError(f"bias must be integers, got dtype {b.dtype}")
            if self.bias_bits not in BIAS_BITS:
                raise ModelError(f"bias bits must be in 2..16, not {self.bias_bits}")
            q = narrow_max(self.bias_bits)
            outside = (b < -q) | (b > q)  # not np.abs: abs(-128) is -128 in int8
            if outside.any():
                raise ModelError(f"bias value {b[outside.argmax()]} is outside the {self.bias_bits}-bit grid -{q}..{q}")
            object.__setattr__(self, "bias", b.astype(np.int64))

    @property
    def fan_in(self) -> int:
        """Inputs of one neuron (n_in for dense, C_in * K * K for conv2d)."""
        return self.n_in

    @property
    def membrane_max(self) -> int:
        """Q(m): stored membranes lie in -Q(m)..Q(m)."""
        return narrow_max(self.membrane_bits)

    @property
    def bound(self) -> int:
        """B of docs/arithmetic.md sections 3 and 7: the largest |value| any step of this layer produces."""
        bias_max = narrow_max(self.bias_bits) if self.bias is not None else 0
        return self.membrane_max + self.input_max * self.fan_in * self.weight_format.max_magnitude + bias_max

    @property
    def accumulator_bits(self) -> int:
        """A of docs/arithmetic.md section 3: signed width that holds -B..B and the threshold."""
        return max(self.bound.bit_length(), self.threshold.bit_length()) + 1

    def _exact_dtype(self):
        """float32 while every partial sum stays below 2^24 (|I| <= B), float64 (exact below 2^53) otherwise."""
        return np.float32 if self.bound < 2**24 else np.float64


@dataclass(frozen=True)
class DenseLayer(NeuronLayer):
    """A fully connected LIF layer: `weight` is [n_out, n_in]."""

    kind: ClassVar[str] = "dense"

    def _check_weight_shape(self, w: np.ndarray) -> None:
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise ModelError(f"weight must be a non-empty [n_out, n_in] matrix, got shape {w.shape}")

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    def synaptic_input(self, spikes: np.ndarray) -> np.ndarray:
        """Step 1 for a batch: inputs [batch, n_in] (0/1, or sum-pool counts) -> I [batch, n_out] (int64).

        A float matmul is exact here and uses BLAS (see `_exact_dtype`).
        """
        dtype = self._exact_dtype()
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
    layers: tuple
    """The layers in order: DenseLayer, and (mintaccel.core.conv) Conv2dLayer, PoolLayer, FlattenLayer."""
    timesteps: int
    """T: time steps per inference."""
    encoding: Encoding = Encoding()
    meta: dict = field(default_factory=dict, compare=False)
    """Free-form provenance (training command, accuracies); never affects the arithmetic."""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        t = self.timesteps
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= TIMESTEPS_MAX:
            raise ModelError(f"timesteps must be an integer in 1..{TIMESTEPS_MAX}, not {self.timesteps!r}")
        object.__setattr__(self, "layers", _chain(self.layers))

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) when the first layer takes a map, else (n_inputs,)."""
        return getattr(self.layers[0], "in_shape", (self.n_inputs,))

    @property
    def neuron_layers(self) -> tuple[NeuronLayer, ...]:
        return tuple(l for l in self.layers if isinstance(l, NeuronLayer))

    @property
    def dense_only(self) -> bool:
        """True for a version-1 network (every layer dense): what the accelerator runs today."""
        return all(l.kind == "dense" for l in self.layers)

    @property
    def accumulator_bits(self) -> int:
        return max(layer.accumulator_bits for layer in self.neuron_layers)

    def footprint_bits(self, membrane_bits: int | None = None) -> dict:
        """Total storage in bits, and the fp32 equivalent. `membrane_bits` (e.g. 8): the same network
        with every membrane that wide instead, to show what narrow membranes save."""
        total = {"weights": 0, "membranes": 0, "biases": 0, "fp32": 0}
        for layer in self.layers:
            bits = layer.footprint_bits()
            if membrane_bits is not None and isinstance(layer, NeuronLayer):
                bits["membranes"] = layer.n_out * membrane_bits
            for k, v in bits.items():
                total[k] += v
        total["quantized"] = total["weights"] + total["membranes"] + total["biases"]
        total["reduction"] = 1 - total["quantized"] / total["fp32"]
        return total


def _chain(layers: tuple) -> tuple:
    """Check what may follow what (docs/arithmetic.md section 7) and set each neuron layer's
    `input_max` from the chain (1 for spikes, K*K after a sum pool)."""
    out, value_max, prev = [], 1, None
    for l, layer in enumerate(layers):
        where = f"layer {l} ({layer.kind})"
        in_shape = getattr(layer, "in_shape", None)
        prev_shape = getattr(prev, "out_shape", None)
        if in_shape is not None and prev is not None and prev_shape != in_shape:
            got = "x".join(map(str, prev_shape)) if prev_shape else f"a vector of {prev.n_out}"
            raise ModelError(f"{where} takes a {'x'.join(map(str, in_shape))} map but layer {l - 1} ({prev.kind}) gives {got}")
        if prev is not None and prev.n_out != layer.n_in:
            raise ModelError(f"layer {l - 1} has {prev.n_out} outputs but layer {l} expects {layer.n_in} inputs")
        if layer.kind == "dense" and prev_shape is not None:
            raise ModelError(f"{where} follows a {prev.kind} map: put a flatten layer between them")
        if layer.kind == "pool" and prev is not None and prev.kind == "pool":
            raise ModelError(f"{where} follows a pool: a pool's input must be spikes (0/1)")
        if layer.kind == "pool" and value_max != 1:
            raise ModelError(f"{where}: a pool's input must be spikes (0/1), not sum-pool counts")
        if isinstance(layer, NeuronLayer):
            if layer.input_max != value_max:
                layer = dataclasses.replace(layer, input_max=value_max)
            value_max = 1
        elif layer.kind == "pool":
            value_max = layer.output_max
        out.append(layer)
        prev = layer
    if not isinstance(prev, NeuronLayer):
        raise ModelError(f"the last layer is a {prev.kind}: the readout counts the spikes of a neuron layer")
    return tuple(out)


def _grid_text(levels: np.ndarray) -> str:
    return "{" + ", ".join(str(int(v)) for v in levels) + "}" if len(levels) <= 9 else f"{levels[0]}..{levels[-1]}"
