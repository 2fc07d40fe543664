"""Write the accelerator's Verilog, memory images and a JSON manifest into an output folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape

from mintaccel.core.encodings import LoadSpace
from mintaccel.core.files import atomic_folder, check_output_folder
from mintaccel.core.hwconfig import HwConfig, check_fits, layout
from mintaccel.hw.host_interface import load_layout
from mintaccel.hw.images import bias_words, load_sequence, weight_banks
from mintaccel.hw.registers import FIELDS, GLOBAL_N_LAYERS, GLOBAL_TIMESTEPS, LAYER_BASE, LAYER_STRIDE, layer_values
from mintaccel.hw.top import Accelerator
from mintaccel.core.errors import UserError
from mintaccel.core.model import IntModel

TOP_NAME = "mintaccel_top"
MANIFEST = "manifest.json"


def ports(dut: Accelerator) -> list[dict]:
    """The top's ports as they appear in the Verilog (Amaranth joins member paths with '__')."""
    out = []
    for path, member in dut.signature.members.flatten():
        if member.is_port:
            out.append({"name": "__".join(str(p) for p in path), "direction": member.flow.value,
                        "width": Shape.cast(member.shape).width})
    return out


def memory_map(cfg: HwConfig) -> dict:
    return {
        "registers": {"n_layers": GLOBAL_N_LAYERS, "timesteps": GLOBAL_TIMESTEPS,
                      "layer_field": {name: f"{LAYER_BASE} + {LAYER_STRIDE}*layer + {f}" for f, name in enumerate(FIELDS)}},
        "load_payload_bits": Shape.cast(load_layout(cfg)).width,
        "memories": {
            "weight_banks": {"banks": cfg.n_pe, "depth": cfg.weight_depth, "width": cfg.weight_bits,
                             "load_space": LoadSpace.weights.value},
            "membranes": {"depth": cfg.membrane_depth, "width": cfg.n_pe * cfg.membrane_bits},
            "biases": {"depth": cfg.membrane_depth, "width": cfg.n_pe * cfg.bias_bits,
                       "load_space": LoadSpace.biases.value} if cfg.bias_bits else None,
            "events": {"depth": cfg.max_inputs, "width": cfg.index_bits},
            **({"map_buffers": {"buffers": 2, "depth": cfg.max_map_words, "width": cfg.n_pe}} if cfg.max_map_words
               else {"spike_buffer": {"depth": cfg.spike_words, "width": cfg.n_pe}}),
        },
    }


def expected_resources(cfg: HwConfig) -> dict:
    """Storage bits the build holds (what synthesis should map to block RAM or flip-flops)."""
    return {
        "weight_bits": cfg.n_pe * cfg.weight_depth * cfg.weight_bits,
        "membrane_bits": cfg.membrane_depth * cfg.n_pe * cfg.membrane_bits,
        "bias_bits": cfg.membrane_depth * cfg.n_pe * cfg.bias_bits,
        "event_bits": cfg.max_inputs * cfg.index_bits,
        "spike_buffer_bits": 2 * cfg.max_map_words * cfg.n_pe if cfg.max_map_words else cfg.max_neurons,
        "accumulators": cfg.n_pe,
        "accumulator_bits": cfg.accumulator_bits,
        "multipliers": 0,
    }


#: What the manifest says about the Verilog (docs/microarchitecture.md, "Generated Verilog").
VERILOG_NOTE = {
    False: "plain Verilog-2005: no SystemVerilog assertions (read_verilog without -sv, iverilog -g2005, "
           "Verilator, vendor tools); the RTL's assertions are checked in the cocotb and formal builds",
    True: "with the RTL's immediate assertions (SystemVerilog `assert`): for simulation, needs -sv in Yosys",
}


def generate(out: str | Path, cfg: HwConfig, model: IntModel | None = None, preload: bool = True,
             assertions: bool = False) -> dict:
    """Write `mintaccel_top.v`, memory images and `manifest.json` into `out`, all or nothing.

    `assertions` keeps the RTL's `Assert`s in the Verilog (SystemVerilog `assert`); the default writes
    plain Verilog that every synthesis and simulation tool reads."""
    out = Path(out)
    if model is not None:
        check_fits(model, cfg)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise UserError(f"{out} exists and is not a folder written by mintaccel generate; choose another --out")
    check_output_folder(out)  # before the conversion's seconds
    dut = Accelerator(cfg, model if preload else None, assertions=assertions)
    text = verilog.convert(dut, name=TOP_NAME)
    files = {f"{TOP_NAME}.v": text}
    if model is not None:
        banks = weight_banks(model, cfg)
        for i, bank in enumerate(banks):
            files[f"weights_bank{i}.hex"] = "".join(f"{int(v):x}\n" for v in bank)
        if cfg.bias_bits:
            files["biases.hex"] = "".join(f"{w:x}\n" for w in bias_words(model, cfg))
        files["load_sequence.txt"] = "# space addr data (hex), one write per line\n" + "".join(
            f"{s} {a:x} {d:x}\n" for s, a, d in load_sequence(model, cfg))
    manifest = {
        "top": TOP_NAME,
        "preloaded": bool(model is not None and preload),
        "assertions": assertions,
        "verilog": VERILOG_NOTE[assertions],
        "config": dataclasses.asdict(cfg) | {"accumulator_bits": cfg.accumulator_bits},
        "ports": ports(dut),
        "memory_map": memory_map(cfg),
        "expected_resources": expected_resources(cfg),
        "files": sorted(files) + [MANIFEST],
    }
    if model is not None:
        lay = layout(model, cfg.n_pe)
        manifest["model"] = {
            "timesteps": model.timesteps,
            "layers": [v | {"groups": p.groups, "words": p.words}
                       for v, p in zip(layer_values(model, cfg), lay.layers)],
            "weight_words": lay.weight_words, "membrane_words": lay.groups,
        }
    files[MANIFEST] = json.dumps(manifest, indent=1) + "\n"
    with atomic_folder(out) as tmp:  # a previous output is swapped out, then deleted
        for name, content in files.items():
            (tmp / name).write_text(content)
    return manifest
