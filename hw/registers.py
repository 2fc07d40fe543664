"""The per-layer register set (docs/microarchitecture.md, register map) and its values for a model."""

from __future__ import annotations

from amaranth.lib import data

from mintaccel.core.encodings import LeakKind, ResetMode, WeightScheme, address_bits
from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.core.model import IntModel

#: Register-map field order (field f of layer l is at address 16 + 16*l + f).
FIELDS = ("n_in", "n_out", "weight_base", "membrane_base", "threshold", "reset", "leak_kind", "leak_k",
          "weight_scheme", "weight_bits", "membrane_max", "bias_enable")
GLOBAL_N_LAYERS, GLOBAL_TIMESTEPS, LAYER_BASE, LAYER_STRIDE = 0, 1, 16, 16


def layer_layout(cfg: HwConfig) -> data.StructLayout:
    return data.StructLayout({
        "n_in": (cfg.max_inputs).bit_length(),
        "n_out": (cfg.max_neurons).bit_length(),
        "weight_base": address_bits(cfg.weight_depth),
        "membrane_base": address_bits(cfg.membrane_depth),
        "threshold": cfg.accumulator_bits - 1,
        "reset": ResetMode,
        "leak_kind": LeakKind,
        "leak_k": 4,
        "weight_scheme": WeightScheme,
        "weight_bits": 4,
        "membrane_max": cfg.membrane_bits - 1,
        "bias_enable": 1,
    })


def layer_values(model: IntModel, cfg: HwConfig) -> list[dict]:
    """Register values of every layer of `model` (the model must fit: hw.config.check_fits)."""
    lay = layout(model, cfg.n_pe)
    out = []
    for layer, place in zip(model.layers, lay.layers):
        out.append({
            "n_in": layer.n_in, "n_out": layer.n_out,
            "weight_base": place.weight_base, "membrane_base": place.membrane_base,
            "threshold": layer.threshold, "reset": ResetMode[layer.reset].value,
            "leak_kind": LeakKind[layer.leak.kind].value, "leak_k": layer.leak.k,
            "weight_scheme": layer.weight_format.code.value, "weight_bits": layer.weight_format.bits,
            "membrane_max": layer.membrane_max, "bias_enable": int(layer.bias is not None),
        })
    return out


def register_writes(model: IntModel, cfg: HwConfig) -> list[tuple[int, int]]:
    """(address, value) pairs that load the model's registers through the host interface (space 0)."""
    writes = [(GLOBAL_N_LAYERS, len(model.layers)), (GLOBAL_TIMESTEPS, model.timesteps)]
    for l, values in enumerate(layer_values(model, cfg)):
        writes += [(LAYER_BASE + LAYER_STRIDE * l + f, values[name]) for f, name in enumerate(FIELDS)]
    return writes
