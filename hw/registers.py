"""The per-layer register set (docs/microarchitecture.md, register map) and its values for a model."""

from __future__ import annotations

from amaranth.lib import data

from mintaccel.core.encodings import LeakKind, ResetMode, WeightScheme, address_bits
from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.core.model import IntModel
from mintaccel.hw.map_reader import reader_layout, reader_values

#: Register-map field order (field f of layer l is at address 16 + 16*l + f).
FIELDS = ("n_in", "n_out", "weight_base", "membrane_base", "threshold", "reset", "leak_kind", "leak_k",
          "weight_scheme", "weight_bits", "membrane_max", "bias_enable")
GLOBAL_N_LAYERS, GLOBAL_TIMESTEPS, LAYER_BASE, LAYER_STRIDE = 0, 1, 16, 16
#: A conv build's extra registers: `load_words` (global), and per layer the conv fields, field f of
#: layer l at address 1024 + 32*l + f (the map reader's registers after the first three).
GLOBAL_LOAD_WORDS, CONV_BASE, CONV_STRIDE = 2, 1024, 32
CONV_FIELDS_HEAD = ("positions", "bias_base", "mapped")


def conv_fields(cfg: HwConfig) -> tuple[str, ...]:
    """The conv fields of a build with map buffers (none for a dense build)."""
    if not cfg.max_map_words:
        return ()
    return CONV_FIELDS_HEAD + tuple(reader_layout(cfg.max_map_words, cfg.index_bits).members)


def layer_layout(cfg: HwConfig) -> data.StructLayout:
    conv = {}
    if cfg.max_map_words:
        conv = {"positions": range(cfg.spike_words + 1), "bias_base": address_bits(cfg.membrane_depth), "mapped": 1,
                **reader_layout(cfg.max_map_words, cfg.index_bits).members}
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
        **conv,
    })


def layer_values(model: IntModel, cfg: HwConfig) -> list[dict]:
    """Register values of every layer of `model` (the model must fit: hw.config.check_fits). In a conv
    build `n_in` is the fan-in (the weight base's step per group) and `n_out` the neurons of one output
    position (its channels)."""
    lay = layout(model, cfg.n_pe)
    out = []
    for place in lay.layers:
        layer, v = place.view.layer, place.view
        conv = {}
        if cfg.max_map_words:
            conv = {"positions": v.positions, "bias_base": place.bias_base, "mapped": int(not v.from_host),
                    **reader_values(v)}
        out.append({
            "n_in": v.fan_in, "n_out": v.out_shape[0], **conv,
            "weight_base": place.weight_base, "membrane_base": place.membrane_base,
            "threshold": layer.threshold, "reset": ResetMode[layer.reset].value,
            "leak_kind": LeakKind[layer.leak.kind].value, "leak_k": layer.leak.k,
            "weight_scheme": layer.weight_format.code.value, "weight_bits": layer.weight_format.bits,
            "membrane_max": layer.membrane_max, "bias_enable": int(layer.bias is not None),
        })
    return out


def register_writes(model: IntModel, cfg: HwConfig) -> list[tuple[int, int]]:
    """(address, value) pairs that load the model's registers through the host interface (space 0)."""
    values = layer_values(model, cfg)
    writes = [(GLOBAL_N_LAYERS, len(values)), (GLOBAL_TIMESTEPS, model.timesteps)]
    if cfg.max_map_words:
        writes.append((GLOBAL_LOAD_WORDS, layout(model, cfg.n_pe).load_words))
    for l, v in enumerate(values):
        writes += [(LAYER_BASE + LAYER_STRIDE * l + f, v[name]) for f, name in enumerate(FIELDS)]
        writes += [(CONV_BASE + CONV_STRIDE * l + f, v[name] & ((1 << 32) - 1)) for f, name in enumerate(conv_fields(cfg))]
    return writes
