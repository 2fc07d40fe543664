"""FPGA energy per inference, an ESTIMATE: the cycle simulator's event counts times a per-event FPGA table.

No open power model exists for iCE40 or ECP5. The table below derives per-event FPGA energies from
the 45 nm ASIC figures of sim/energy.py (Horowitz, ISSCC 2014) and the FPGA/ASIC dynamic-power gap
measured by Kuon & Rose (IEEE TCAD 2007), and places every memory where synthesis actually put it
(block RAM, SPRAM or soft logic). docs/flows.md lists each entry with its source; every figure derived from
here is labelled an estimate. A JSON file can override entries (`load_fpga_table`).

    counts = simulate_counts(model, spikes, cfg)      # sim.cycle: cycles and per-block events
    est = fpga_energy(counts, target, memories, ffs, fmax_mhz)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mintaccel.flows.targets import Target
from mintaccel.core.files import read_json_object
from mintaccel.core.errors import UserError

#: Per-event FPGA energy model (see docs/flows.md, "Energy per inference").
FPGA_TABLE: dict = {
    "fabric_factor": 14.0,
    "hard_block_factor": 2.0,
    "ff_clock_bits": 1,
    "ebr": {"ice40-up5k": {"bytes": 512, "row_bits": 16}, "ecp5-25f": {"bytes": 2304, "row_bits": 36}},
    "spram": {"ice40-up5k": {"bytes": 32768, "row_bits": 16}},
    "core_voltage": {"ice40-up5k": 1.2, "ecp5-25f": 1.1},
    "static_mw": {"ice40-up5k": 0.117, "ecp5-25f": None},
}

FPGA_SOURCES = {
    "fabric_factor": "Kuon & Rose, 'Measuring the gap between FPGAs and ASICs', IEEE TCAD 26(2) 2007: "
                     "dynamic power of LUT logic about 14x a standard-cell ASIC of the same node",
    "hard_block_factor": "assumption: a hard block RAM pays about its ASIC energy plus fabric routing to it "
                         "(Kuon & Rose: hard blocks narrow the gap); 2x",
    "ff_clock_bits": "assumption: clocking one flip-flop for one cycle costs one bit of an 8-bit addition "
                     "(Horowitz 0.03 pJ / 8) x fabric_factor; every flip-flop of the core, every cycle",
    "ebr": "iCE40 EBR: 4 kbit, 256 x 16 physical rows (Lattice iCE40 UltraPlus data sheet); ECP5 DP16KD: "
           "18 kbit, up to 36-bit ports (ECP5 family data sheet). Priced as an ASIC SRAM read of one "
           "physical row (sim/energy.py, Horowitz) x hard_block_factor, whatever the configured width",
    "spram": "iCE40 UltraPlus SPRAM (SB_SPRAM256KA): 256 kbit, 16384 x 16 (Lattice iCE40 UltraPlus data "
             "sheet; no open per-access figure). Assumption: priced like the EBR, as an ASIC SRAM read of one "
             "16-bit row of a 32 KB array (sim/energy.py, Horowitz: 20 pJ per 64 bits at 32 KB) x "
             "hard_block_factor; every SPRAM of the memory is read on each access. The UP5K only",
    "core_voltage": "nominal core supply (data sheets): iCE40 UltraPlus 1.2 V, ECP5 1.1 V; "
                    "dynamic energies scale with (V / 1.2 V)^2",
    "static_mw": "iCE40UP5K: about 96 uA on the 1.2 V core rail measured for a minimal design "
                 "(tinyvision.ai, 'Lattice iCE40 FPGA power series'); ECP5: no open figure, not included",
}

#: sim.cycle block -> prefix of the synthesized memory names it stands for.
MEMORY_BLOCKS = {"weight_memory": "weights.", "event_memory": "events", "membrane_memory": "membranes.",
                 "bias_memory": "biases.", "spike_buffer": "spike_buffer"}


def load_fpga_table(path) -> dict:
    """FPGA_TABLE with the entries of a JSON file replacing it (keys starting with `_` ignored).

    Per-target entries (`ebr`, `core_voltage`, `static_mw`) are merged target by target and, for `ebr`,
    field by field: `{"static_mw": {"ecp5-25f": 20}}` sets the ECP5 figure and keeps the iCE40 one. Every
    value is checked here, with sim/energy.py's entry check (a finite number >= 0; `static_mw` may be
    null: not included), so a bad file fails in one line before synthesis starts.
    """
    from mintaccel.sim.energy import _check as check_entry

    path = Path(path)
    where = f"FPGA energy table {path}"
    data = read_json_object(path, where)
    table = json.loads(json.dumps(FPGA_TABLE))
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if key not in FPGA_TABLE:
            raise UserError(f"{where}: unknown entry '{key}' (known: {', '.join(FPGA_TABLE)})")
        default = FPGA_TABLE[key]
        if not isinstance(default, dict):
            table[key] = check_entry(where, key, value)
            continue
        if not isinstance(value, dict):
            raise UserError(f"{where}: '{key}' must be an object of target -> value like {json.dumps(default)}")
        for target, v in value.items():
            name = f"{key}.{target}"
            if target not in default:
                raise UserError(f"{where}: '{key}' has unknown target '{target}' (known: {', '.join(default)})")
            if isinstance(default[target], dict):
                if not isinstance(v, dict):
                    raise UserError(f"{where}: '{name}' must be an object like {json.dumps(default[target])}")
                for field, fv in v.items():
                    if field not in default[target]:
                        raise UserError(f"{where}: '{name}' has unknown field '{field}' "
                                        f"(known: {', '.join(default[target])})")
                    table[key][target][field] = check_entry(where, f"{name}.{field}", fv)
            elif key == "static_mw" and v is None:
                table[key][target] = None  # no figure: static energy left out
            else:
                table[key][target] = check_entry(where, name, v)
    return table


def simulate_counts(model, spikes: np.ndarray, cfg):
    """The cycle simulator's result for `spikes` on build `cfg` (sim.cycle.controller.simulate)."""
    from mintaccel.sim.cycle.controller import simulate
    return simulate(model, spikes, cfg)


def _memory_rows(memories: list[dict], block: str) -> list[dict]:
    prefix = MEMORY_BLOCKS.get(block)
    if prefix is None:
        return []
    return [m for m in memories if m["memory"] == prefix.rstrip(".") or m["memory"].startswith(prefix)]


def fpga_energy(result, target: Target, memories: list[dict], ffs: int, fmax_mhz: float | None,
                table: dict | None = None) -> dict:
    """Energy per inference (pJ, mean over the batch) on `target`; every figure an estimate.

    `result`: a sim.cycle CycleResult. `memories`: the memory mapping of the synthesis report.
    `ffs`: flip-flops of the synthesized core (clocked every cycle). `fmax_mhz`: the clock for static
    energy (None: static energy left out).
    """
    from mintaccel.sim.cycle.counts import ARITHMETIC
    from mintaccel.sim.energy import DEFAULT as ASIC

    t = table or FPGA_TABLE
    vscale = (float(t["core_voltage"][target.name]) / 1.2) ** 2
    fabric = float(t["fabric_factor"]) * vscale
    ebr = t["ebr"][target.name]
    ebr_access = ASIC.sram(ebr["bytes"], ebr["row_bits"]) * float(t["hard_block_factor"]) * vscale
    spram = t["spram"].get(target.name)
    spram_access = None if spram is None else \
        ASIC.sram(spram["bytes"], spram["row_bits"]) * float(t["hard_block_factor"]) * vscale
    soft_bit = ASIC.add(8) / 8 * fabric  # one bit of soft logic toggling: a bit of an 8-bit adder

    blocks: dict[str, dict] = {}
    total_dynamic = 0.0
    for name, counts in result.blocks.items():
        events = {}
        rows = _memory_rows(memories, name)
        for kind, n in counts.ops.items():
            count = float(n.sum(axis=1).mean())
            if kind in ARITHMETIC:
                each = ASIC.op(kind, counts.op_bits[kind]) * fabric
                where = "fabric"
            elif kind in ("reads", "writes") and counts.memory is not None:
                each, where = _memory_access(counts.memory, rows, target, ebr_access, spram_access, soft_bit)
            else:
                continue
            events[kind] = {"count": count, "pj_each": each, "pj": count * each, "where": where}
        if events:
            pj = sum(e["pj"] for e in events.values())
            blocks[name] = {"pj": pj, "events": events}
            total_dynamic += pj
    cycles = float(result.cycles.mean())
    clock_pj = cycles * ffs * soft_bit * float(t["ff_clock_bits"])
    blocks["clock and registers"] = {"pj": clock_pj, "events": {"cycles": {
        "count": cycles, "pj_each": ffs * soft_bit, "pj": clock_pj, "where": f"{ffs} flip-flops"}}}
    total_dynamic += clock_pj
    static_mw = t["static_mw"].get(target.name)
    latency_s = cycles / (fmax_mhz * 1e6) if fmax_mhz else None
    static_pj = static_mw * 1e-3 * latency_s * 1e12 if static_mw is not None and latency_s else None
    sops = float(result.useful_sops.mean())
    total = total_dynamic + (static_pj or 0.0)
    return {
        "estimate": True,
        "unit": "pJ per inference (mean over the batch)",
        "dynamic_pj": total_dynamic,
        "static_pj": static_pj,
        "total_pj": total,
        "per_sop_pj": total / sops if sops else None,
        "sops_per_inference": sops,
        "cycles_per_inference": cycles,
        "clock_mhz": fmax_mhz,
        "latency_us": None if latency_s is None else latency_s * 1e6,
        "static_note": None if static_pj is not None else
        ("no open static-power figure for this device: not included" if static_mw is None
         else "no Fmax: static energy not included"),
        "blocks": blocks,
        "prices": {"soft_bit_pj": soft_bit, "ebr_access_pj": ebr_access, "spram_access_pj": spram_access,
                   "voltage_scale": vscale},
        "table": {"entries": t, "sources": FPGA_SOURCES},
    }


def _memory_access(spec, rows: list[dict], target: Target, ebr_access: float, spram_access: float | None,
                   soft_bit: float) -> tuple[float, str]:
    """pJ of one word access of a memory block, from where synthesis put it."""
    hard = set(target.bram_cells + target.spram_cells)
    in_hard = [r for r in rows if r["primitives"] and set(r["mapped_to"].split(", ")) <= hard]
    if rows and len(in_hard) == len(rows):
        in_spram = [r for r in in_hard if set(r["mapped_to"].split(", ")) <= set(target.spram_cells)]
        if in_spram and len(in_spram) == len(in_hard) and spram_access is not None:
            # the SPRAM weight memory: one address for all its SPRAMs, each reads one 16-bit row
            return sum(r["primitives"] for r in in_spram) * spram_access, "SPRAM"
        # in block RAM: each access reads, in every memory of the block (the weight memory or its
        # slices), one row of the primitives holding its width (8 lanes of 2 bits: one 256x16 EBR)
        active = 0
        for r in in_hard:
            per_prim_width = max(1, _mode_width(r["modes"]))
            active += math.ceil((r["width"] or per_prim_width) / per_prim_width)
        return active * ebr_access, "block RAM"
    return spec.word_bits * soft_bit, "LUTs / flip-flops"


def _mode_width(modes: list[str]) -> int:
    widths = []
    for m in modes:
        try:
            widths.append(int(m.split("x")[1].split()[0]))
        except (IndexError, ValueError):
            pass
    return min(widths) if widths else 1
