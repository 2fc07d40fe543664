"""The float network at step dt (float64): what each NIR node computes, before quantization."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mintaccel.core.conv import out_side

#: snnTorch's exporter writes tau = dt / (1 - beta) with this dt, without recording it.
DEFAULT_DT = 1e-4
WEIGHT_NODES = ("Affine", "Linear", "Conv2d")
SPIKING_NODES = ("LIF", "IF", "CubaLIF")
READOUT_NODES = ("LI", "I")
MAP_NODES = ("SumPool2d", "AvgPool2d", "Flatten")
#: Prefix of the per-node metadata that `nir_export` writes, so a round trip is exact.
META = "mintaccel_"
REL = 1e-6  # relative tolerance for "equal" float parameters (float32 storage noise)


@dataclass(frozen=True)
class FloatLayer:
    """One neuron layer of the graph (a weight node and its neurons: dense, or conv2d with one neuron per
    output position) as a discrete-time network at step dt (forward Euler).

    Spiking layers are normalised to threshold 1: each neuron's (conv: each output channel's) weights
    and bias are divided by its NIR threshold (exact: between spikes the dynamics are linear and the
    reset goes to 0).
    """

    weight_node: str
    neuron_node: str
    kind: str
    """NIR type of the neuron node: LIF, IF, CubaLIF (spiking) or LI, I (non-spiking readout)."""
    weight: np.ndarray = field(repr=False)
    """Input per time step, input gains folded in (float64): [n_out, n_in] dense, [C_out, C_in, K, K] conv."""
    bias: np.ndarray | None = field(repr=False)
    """Per neuron (dense) or per output channel (conv), in the same units as `weight`."""
    beta: float
    """Membrane decay per step, 1 - dt / tau (1 for IF and I)."""
    alpha: float = 0.0
    """Synaptic-current decay per step, 1 - dt / tau_syn (CubaLIF); 0 means no synaptic filter."""
    hints: dict = field(default_factory=dict, compare=False)
    """mintaccel metadata of the neuron node (from `nir_export`), if any."""
    in_shape: tuple[int, int, int] | None = None
    """Conv only: (C_in, H, W) of the input map; None for a dense layer."""
    stride: int = 1
    """Conv only: stride in positions, both axes."""
    padding: int = 0
    """Conv only: zero padding in positions on every side."""

    @property
    def conv(self) -> bool:
        return self.in_shape is not None

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING_NODES

    @property
    def out_shape(self) -> tuple[int, ...]:
        if not self.conv:
            return (self.weight.shape[0],)
        _, h, w = self.in_shape
        k = self.weight.shape[2]
        side = lambda n: out_side(n, k, self.stride, self.padding)
        return (self.weight.shape[0], side(h), side(w))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape)) if self.conv else self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def dc_weight(self) -> np.ndarray:
        """Weights with the synaptic filter replaced by its DC gain 1 / (1 - alpha) (what we quantize)."""
        return self.weight / (1 - self.alpha)

    def dc_bias(self) -> np.ndarray | None:
        return None if self.bias is None else self.bias / (1 - self.alpha)


@dataclass(frozen=True)
class FloatPool:
    """A SumPool2d, or an AvgPool2d whose 1/K^2 is folded into the next neuron layer's weights (so both run
    as a sum pool, docs/import.md): no neurons, no padding."""

    node: str
    kind: str
    """NIR type: SumPool2d or AvgPool2d."""
    in_shape: tuple[int, int, int]
    """(C, H, W) of the input map."""
    kernel: int
    """Window side K in positions."""
    stride: int
    """Step between windows in positions."""

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return c, out_side(h, self.kernel, self.stride, 0), out_side(w, self.kernel, self.stride, 0)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass(frozen=True)
class FloatFlatten:
    """A Flatten of a (C, H, W) map: the flat data is already in that order."""

    node: str
    in_shape: tuple[int, int, int]
    """(C, H, W) of the input map."""

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return self.n_in


@dataclass(frozen=True)
class FloatNet:
    layers: tuple
    """FloatLayer, FloatPool and FloatFlatten in order."""
    meta: dict = field(default_factory=dict, compare=False)
    """Graph metadata (mintaccel's exports record timesteps, encoding and dt)."""
    notes: tuple[str, ...] = ()
    """Where the import is approximate (reported to the user)."""

    @property
    def neuron_layers(self) -> tuple[FloatLayer, ...]:
        """The layers that quantization maps (one format and one scale each)."""
        return tuple(l for l in self.layers if isinstance(l, FloatLayer))

    @property
    def input_shape(self) -> tuple[int, ...]:
        first = self.layers[0]
        return first.in_shape if getattr(first, "in_shape", None) is not None else (first.n_in,)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out
