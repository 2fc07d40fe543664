"""Memory images of a model: packed weight-bank words and bias words (docs/microarchitecture.md)."""

from __future__ import annotations

import numpy as np

from mintaccel.core.encodings import LoadSpace, pot_magnitudes
from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.hw.registers import register_writes
from mintaccel.core.model import IntModel, WeightFormat


def weight_code(values: np.ndarray, fmt: WeightFormat) -> np.ndarray:
    """Storage codes of integer weights: two's complement (uniform), 0/1 for -1/+1 (binary),
    sign bit + magnitude code (pot)."""
    v = np.asarray(values, np.int64)
    b = fmt.bits
    if fmt.scheme == "uniform":
        return v & ((1 << b) - 1)
    if fmt.scheme == "binary":
        return (v > 0).astype(np.int64)
    # pot_magnitudes is ascending and indexed by the magnitude code: the code of |v| is its position
    code = np.searchsorted(pot_magnitudes(b), np.abs(v)).astype(np.int64)
    return code | ((v < 0).astype(np.int64) << (b - 1))


def weight_banks(model: IntModel, cfg: HwConfig) -> np.ndarray:
    """Codes per bank: int64 [n_pe, weight_depth]. Bank i, address base + g*F + j holds the weight of
    neuron (output channel) g*n_pe + i for input (tap index) j, F = n_in (the fan-in of a conv). Unused
    words are 0."""
    banks = np.zeros((cfg.n_pe, cfg.weight_depth), np.int64)
    for place in layout(model, cfg.n_pe).layers:
        v = place.view
        codes = weight_code(v.tap_weights(), v.layer.weight_format)
        for g in range(place.groups):
            for i in range(cfg.n_pe):
                n = g * cfg.n_pe + i
                if n < len(codes):
                    start = place.weight_base + g * v.fan_in
                    banks[i, start:start + v.fan_in] = codes[n]
    return banks


def pack_lanes(lanes: np.ndarray, lane_bits: int) -> int:
    """Pack lane values (two's complement, lane 0 in the low bits) into one integer word."""
    word = 0
    for i, v in enumerate(lanes):
        word |= (int(v) & ((1 << lane_bits) - 1)) << (i * lane_bits)
    return word


def bias_words(model: IntModel, cfg: HwConfig) -> list[int]:
    """Packed bias words, one per neuron group of a position (output channel block) over all layers, at
    `bias_base + g` (0 for layers without bias)."""
    words = [0] * cfg.membrane_depth
    if not cfg.bias_bits:
        return words
    for place in layout(model, cfg.n_pe).layers:
        layer = place.view.layer
        if layer.bias is None:
            continue
        padded = np.zeros(place.groups * cfg.n_pe, np.int64)
        padded[:len(layer.bias)] = layer.bias
        for g in range(place.groups):
            words[place.bias_base + g] = pack_lanes(padded[g * cfg.n_pe:(g + 1) * cfg.n_pe], cfg.bias_bits)
    return words


def unpack_lanes(word: int, lanes: int, lane_bits: int) -> list[int]:
    """Inverse of pack_lanes, sign-extending each lane."""
    out = []
    for i in range(lanes):
        v = (word >> (i * lane_bits)) & ((1 << lane_bits) - 1)
        out.append(v - (1 << lane_bits) if v >> (lane_bits - 1) else v)
    return out


def spike_words(spikes: np.ndarray, n_pe: int) -> list[int]:
    """One step's spike vector (0/1) as n_pe-bit words, bit i of word w = spike w*n_pe + i."""
    words = []
    for w in range(0, len(spikes), n_pe):
        words.append(sum(int(b) << i for i, b in enumerate(spikes[w:w + n_pe])))
    return words


def input_words(model: IntModel, cfg: HwConfig, step: np.ndarray) -> list[int]:
    """One step's `spikes_in` words: the input vector's spike words, or, when layer 0 reads a map (a
    conv build LOADs it), the input map position-major, `n_pe` channels a word
    (docs/microarchitecture.md, "Conv networks")."""
    if not layout(model, cfg.n_pe).load_words:
        return spike_words(step, cfg.n_pe)
    c, h, w = model.input_shape
    return map_words(step.reshape(c, h * w), cfg.n_pe)


def output_words(model: IntModel, cfg: HwConfig, spikes: np.ndarray) -> list[int]:
    """One step's `spikes_out` words: the last layer's output, position-major (a dense layer's spike
    words)."""
    c, h, w = layout(model, cfg.n_pe).layers[-1].view.out_shape
    return map_words(spikes.reshape(c, h * w), cfg.n_pe)


def map_words(channels_by_position: np.ndarray, n_pe: int) -> list[int]:
    """A map [C, positions] as words: position q's channel blocks in order, channel b*n_pe + i in bit i."""
    c, positions = channels_by_position.shape
    return [sum(int(channels_by_position[ch, q]) << (ch - b) for ch in range(b, min(c, b + n_pe)))
            for q in range(positions) for b in range(0, c, n_pe)]


def output_counts(model: IntModel, cfg: HwConfig, words: list[int]) -> np.ndarray:
    """Spike counts per output neuron (the model's order) from the `spikes_out` words of a run."""
    c, h, w = layout(model, cfg.n_pe).layers[-1].view.out_shape
    blocks, counts = -(-c // cfg.n_pe), np.zeros((c, h * w), np.int64)
    for k, word in enumerate(words):
        q, b = divmod(k % (blocks * h * w), blocks)
        for i in range(min(cfg.n_pe, c - b * cfg.n_pe)):
            counts[b * cfg.n_pe + i, q] += (word >> i) & 1
    return counts.reshape(-1)


def load_sequence(model: IntModel, cfg: HwConfig) -> list[tuple[int, int, int]]:
    """(space, addr, data) writes that load `model` through the host interface at run time."""
    seq = [(LoadSpace.registers.value, a, v) for a, v in register_writes(model, cfg)]
    banks = weight_banks(model, cfg)
    wb = cfg.weight_bits
    for addr in range(layout(model, cfg.n_pe).weight_words):
        seq.append((LoadSpace.weights.value, addr, sum(int(banks[i, addr]) << (i * wb) for i in range(cfg.n_pe))))
    if cfg.bias_bits:
        for addr, word in enumerate(bias_words(model, cfg)):
            seq.append((LoadSpace.biases.value, addr, word))
    return seq
