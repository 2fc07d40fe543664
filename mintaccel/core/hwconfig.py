"""The accelerator's build parameters (docs/microarchitecture.md), and how a model is laid out in it."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from mintaccel.core.encodings import MEMBRANE_BITS, address_bits
from mintaccel.core.errors import UserError
from mintaccel.core.hwlayer import HwLayer, hw_layers, load_words
from mintaccel.core.model import IntModel, WeightFormat, narrow_max

THRESHOLD_LATENCY = 6
"""Cycles from a threshold unit's input (a group's FIRE) to its result (the group's write-back), which is
also a layer's DRAIN (docs/microarchitecture.md, "Threshold pipeline"): the RTL's pipeline depth
(hw.threshold_unit.ThresholdUnit.LATENCY) and the cycle model's LAYER_DRAIN are both this constant."""


MAP_SETUP = 1
"""The extra SETUP cycle of a layer that reads a map buffer (docs/microarchitecture.md, "Conv networks"):
its map reader starts in the first, so the first word is queued when the encoder asks for it."""


DEFAULT_LANES_PER_UNIT = 8
"""Lanes per threshold unit of `HwConfig.for_model`'s builds (when n_pe is a multiple): a unit costs
about ten times a PE's LUTs and is busy one cycle per lane, while a group takes E + 4 cycles, so eight
lanes per unit cost little time (docs/microarchitecture.md, "Shared units")."""


def weight_max_for_bits(bits: int) -> int:
    """Largest |weight| of any format whose storage fits in `bits` bits."""
    return max(f.max_magnitude for f in WeightFormat.every() if f.bits <= bits)


@dataclass(frozen=True)
class HwConfig:
    n_pe: int = 8
    """Processing elements: neurons updated in parallel, and bits per spike word."""
    max_layers: int = 4
    """Layer register sets."""
    max_inputs: int = 1024
    """Largest number of events of one output position: n_in of a dense layer, C_in * K * K of a conv
    (times the pool window after a sum pool); the event memory's depth."""
    max_neurons: int = 256
    """Largest neuron count of a layer, padded to whole groups (n_pe * groups): the spike buffer's bits."""
    max_timesteps: int = 255
    """Largest T."""
    weight_bits: int = 2
    """Storage bits per weight lane: the widest weight format this build runs."""
    membrane_bits: int = 2
    """Storage bits per membrane lane: the widest membrane format this build runs."""
    bias_bits: int = 0
    """Storage bits per bias lane; 0 builds no bias memory."""
    weight_depth: int = 2048
    """Words per weight bank (one bank per PE)."""
    membrane_depth: int = 64
    """Membrane (and bias) words: neuron groups summed over all layers."""
    acc_bits: int = 0
    """Accumulator width in bits; 0 derives the smallest width no accepted layer can overflow."""
    threshold_units: int = 0
    """Threshold units shared by the n_pe lanes, each serving n_pe / threshold_units lanes in turn, one
    lane per cycle (docs/microarchitecture.md, "Threshold pipeline"); 0: one unit per lane.
    `for_model` shares one unit among DEFAULT_LANES_PER_UNIT lanes when n_pe is a multiple of it."""
    weight_spram: int = 0
    """1: the weight memory is marked for the iCE40 UP5K's single-port SPRAM (it has no initial
    contents, so the host loads the weights at run time); 0: block RAM or whatever synthesis picks."""
    max_map_words: int = 0
    """Words of `n_pe` bits in each of the two map buffers of a conv build (docs/microarchitecture.md,
    "Conv networks"); 0: a dense build, whose one spike buffer holds `max_neurons` bits."""

    def __post_init__(self):
        for f in dataclasses.fields(self):  # a JSON config can hold anything: a string is not a TypeError
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise UserError(f"hardware config: {f.name} must be an integer, not {v!r}")
        checks = [
            (1 <= self.n_pe <= 64, "n_pe must be in 1..64"),
            (1 <= self.max_layers <= 15, "max_layers must be in 1..15"),
            (2 <= self.max_inputs <= 65536, "max_inputs must be in 2..65536"),
            (1 <= self.max_neurons <= 65536, "max_neurons must be in 1..65536"),
            (1 <= self.max_timesteps <= 4096, "max_timesteps must be in 1..4096"),
            (1 <= self.weight_bits <= 8, "weight_bits must be in 1..8"),
            (self.membrane_bits in MEMBRANE_BITS, "membrane_bits must be 2, 3, 4 or 8"),
            (self.bias_bits == 0 or 2 <= self.bias_bits <= 16, "bias_bits must be 0 or 2..16"),
            (1 <= self.weight_depth <= 65536, "weight_depth must be in 1..65536"),
            (1 <= self.membrane_depth <= 65536, "membrane_depth must be in 1..65536"),
            (self.n_pe < 1 or self.max_neurons % self.n_pe == 0, "max_neurons must be a multiple of n_pe"),
            (self.threshold_units == 0 or (1 <= self.threshold_units <= self.n_pe
                                           and self.n_pe % self.threshold_units == 0),
             "threshold_units must be 0 (one per lane) or a divisor of n_pe"),
            (self.weight_spram in (0, 1), "weight_spram must be 0 or 1"),
            (0 <= self.max_map_words <= 65536, "max_map_words must be in 0..65536"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"hardware config: {message}")
        if self.acc_bits != 0 and self.acc_bits < self.min_acc_bits:  # only once the widths it needs are valid
            raise UserError(f"hardware config: acc_bits must be 0 (derived) or at least {self.min_acc_bits}")

    @property
    def min_acc_bits(self) -> int:
        """docs/arithmetic.md section 3's bitlength(B) + 1 for the largest layer this build accepts. A
        threshold above that B needs a wider accumulator: `acc_bits` (for_model sets it)."""
        bias = narrow_max(self.bias_bits) if self.bias_bits else 0
        bound = narrow_max(self.membrane_bits) + self.max_inputs * weight_max_for_bits(self.weight_bits) + bias
        return bound.bit_length() + 1

    @property
    def accumulator_bits(self) -> int:
        return self.acc_bits or self.min_acc_bits

    @property
    def threshold_max(self) -> int:
        return (1 << (self.accumulator_bits - 1)) - 1

    @property
    def index_bits(self) -> int:
        """Bits of an input index (event memory word)."""
        return address_bits(self.max_inputs)

    @property
    def units(self) -> int:
        """Threshold units built."""
        return self.threshold_units or self.n_pe

    @property
    def lanes_per_unit(self) -> int:
        """P: lanes each threshold unit serves in turn, so a group takes P cycles of the units."""
        return self.n_pe // self.units

    @property
    def spike_words(self) -> int:
        return self.max_neurons // self.n_pe

    @classmethod
    def for_model(cls, model: IntModel, n_pe: int = 8, **overrides) -> "HwConfig":
        """The smallest build of the default shape that runs `model`.

        The accumulator is derived from the bound B of the build (`min_acc_bits`) unless a threshold of
        the model needs more (A = max(bitlength(B), bitlength(theta)) + 1, docs/arithmetic.md section 3):
        then `acc_bits` is set to what the largest threshold needs."""
        if not isinstance(n_pe, int) or not 1 <= n_pe <= 64:
            raise UserError(f"hardware config: n_pe must be in 1..64, not {n_pe}")
        need = layout(model, n_pe)
        views = [p.view for p in need.layers]
        fields = dict(
            n_pe=n_pe,
            max_layers=len(views),
            max_inputs=max(2, max(v.max_events for v in views)),
            max_neurons=max(v.out_words for v in views) * n_pe,
            max_timesteps=max(model.timesteps, 1),
            weight_bits=max(v.layer.weight_format.bits for v in views),
            membrane_bits=max(v.layer.membrane_bits for v in views),
            bias_bits=max((v.layer.bias_bits for v in views), default=0),
            weight_depth=max(1, need.weight_words),
            membrane_depth=max(1, need.groups),
            max_map_words=need.map_words,
        )
        if n_pe % DEFAULT_LANES_PER_UNIT == 0:
            fields["threshold_units"] = n_pe // DEFAULT_LANES_PER_UNIT
        fields.update(overrides)
        cfg = cls(**fields)
        theta_bits = max(l.threshold for l in model.neuron_layers).bit_length() + 1
        if "acc_bits" not in overrides and theta_bits > cfg.accumulator_bits:
            cfg = dataclasses.replace(cfg, acc_bits=theta_bits)
        return cfg


@dataclass(frozen=True)
class LayerPlacement:
    view: HwLayer
    """The layer's geometry as the map reader sees it (mintaccel.core.hwlayer)."""
    weight_base: int
    """First weight-bank address of the layer."""
    membrane_base: int
    """First membrane word of the layer."""
    bias_base: int
    """First bias word of the layer (one per output channel block; = membrane_base in a dense network)."""

    @property
    def groups(self) -> int:
        """Neuron groups per output position: G = ceil(n_out / n_pe) for a dense layer, CB_out for a conv."""
        return self.view.groups

    @property
    def words(self) -> int:
        """Words the layer's input reader delivers per output position: W = ceil(n_in / n_pe) for a dense
        layer on a vector, Kh * Kw * CB_in * pool_kernel^2 through the map reader."""
        return self.view.reads

    @property
    def positions(self) -> int:
        return self.view.positions


@dataclass(frozen=True)
class Layout:
    layers: tuple[LayerPlacement, ...]
    """One per neuron layer (pools and flattens are folded into the next layer's map reader)."""
    weight_words: int
    """Weight-bank words used."""
    groups: int
    """Membrane words used: neuron groups over all layers and positions."""
    map_words: int
    """Words of each map buffer (0: a dense network, no map buffers)."""
    load_words: int
    """Input words LOADed into a map buffer per step (0: layer 0 reads the host stream itself)."""


def layout(model: IntModel, n_pe: int) -> Layout:
    """Where each layer lives in the memories (docs/microarchitecture.md, 'Memories and their layout')."""
    views = hw_layers(model, n_pe)
    placements, wbase, mbase, bbase = [], 0, 0, 0
    for v in views:
        placements.append(LayerPlacement(v, wbase, mbase, bbase))
        wbase += v.weight_words
        mbase += v.out_words
        bbase += v.groups
    maps = any(v.is_map for v in views)
    loaded = load_words(views)
    map_words = max([loaded] + [v.out_words for v in views]) if maps else 0
    return Layout(tuple(placements), wbase, mbase, map_words, loaded)


def check_fits(model: IntModel, cfg: HwConfig) -> None:
    """Refuse, with one line saying what does not fit, a model this build cannot run."""
    lay = layout(model, cfg.n_pe)
    problems = []
    if len(lay.layers) > cfg.max_layers:
        problems.append(f"{len(lay.layers)} neuron layers > max_layers {cfg.max_layers}")
    if model.timesteps > cfg.max_timesteps:
        problems.append(f"T = {model.timesteps} > max_timesteps {cfg.max_timesteps}")
    for place in lay.layers:
        v, layer, i = place.view, place.view.layer, place.view.index
        if v.max_events > cfg.max_inputs:
            what = "inputs" if not v.is_map else "events per output position at most"
            problems.append(f"layer {i} has {v.max_events} {what} > max_inputs {cfg.max_inputs}")
        if v.out_words * cfg.n_pe > cfg.max_neurons:
            what = f"{layer.n_out} neurons" if not v.is_map else f"{v.out_words} neuron groups of {cfg.n_pe}"
            problems.append(f"layer {i} has {what} > max_neurons {cfg.max_neurons}")
        if layer.weight_format.bits > cfg.weight_bits:
            problems.append(f"layer {i} weights {layer.weight_format} need {layer.weight_format.bits} bits > weight_bits {cfg.weight_bits}")
        if layer.membrane_bits > cfg.membrane_bits:
            problems.append(f"layer {i} membranes need {layer.membrane_bits} bits > membrane_bits {cfg.membrane_bits}")
        if layer.bias is not None and layer.bias_bits > cfg.bias_bits:
            problems.append(f"layer {i} bias needs {layer.bias_bits} bits > bias_bits {cfg.bias_bits}")
        if layer.threshold > cfg.threshold_max:
            problems.append(f"layer {i} threshold {layer.threshold} > {cfg.threshold_max} ({cfg.accumulator_bits}-bit accumulator)")
    if lay.weight_words > cfg.weight_depth:
        problems.append(f"weights need {lay.weight_words} words per bank > weight_depth {cfg.weight_depth}")
    if lay.groups > cfg.membrane_depth:
        problems.append(f"membranes need {lay.groups} words > membrane_depth {cfg.membrane_depth}")
    if lay.map_words > cfg.max_map_words:
        have = "a dense build has no map buffers" if not cfg.max_map_words else f"max_map_words {cfg.max_map_words}"
        problems.append(f"feature maps need {lay.map_words} words per map buffer > {have}")
    if problems:
        raise UserError("model does not fit the hardware: " + "; ".join(problems))
