"""The synthesis report: readable tables from the flow's JSON, and the comparison with a baselines file.

The committed baselines (`flows/baselines.json`) ship as package data of `mintaccel.flows` and are read
with importlib.resources, so a wheel install compares with the same figures as a checkout.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

from mintaccel.core.errors import UserError
from mintaccel.core.files import read_json_object

#: The package-data file holding the committed baselines (its name inside `mintaccel.flows`).
BASELINES_NAME = "baselines.json"

#: Default tolerances: how far a metric may move the wrong way before the baseline check fails.
DEFAULT_TOLERANCES = {
    "luts": {"max_increase": 0.10},
    "ffs": {"max_increase": 0.10},
    "carry": {"max_increase": 0.10},
    "bram": {"max_increase": 0.0},
    "dsp": {"max": 0},
    "multipliers": {"max": 0},
    "fmax_mhz": {"max_decrease": 0.10},
}


# ---------------------------------------------------------------- summary figures

def metrics(report: dict) -> dict:
    """The figures baselines track."""
    s = report["synthesis"]
    m = {"luts": s["luts"], "ffs": s["ffs"], "carry": s["carry"], "bram": s["bram"], "dsp": s["dsp"],
         "multipliers": report["generic"]["multipliers"]}
    if report.get("pnr") and report["pnr"].get("fmax_mhz") is not None:
        m["fmax_mhz"] = report["pnr"]["fmax_mhz"]
    return m


def _pct(used, avail) -> str:
    return f"{used:,} / {avail:,} ({100.0 * used / avail:.1f}%)" if avail else f"{used:,}"


def critical_path_text(cp: dict | None) -> str:
    if not cp:
        return "-"
    share = 100.0 * cp["logic_ns"] / cp["delay_ns"] if cp["delay_ns"] else 0.0
    blocks = " -> ".join(cp["blocks"][:8]) + (" -> ..." if len(cp["blocks"]) > 8 else "")
    srcs = ", ".join(cp["sources"][:6]) + (", ..." if len(cp["sources"]) > 6 else "")
    return (f"{cp['delay_ns']:.1f} ns, {cp['logic_levels']} logic levels ({share:.0f}% logic, "
            f"{100 - share:.0f}% routing): {blocks}" + (f"; source {srcs}" if srcs else ""))


def summary_rows(report: dict, target) -> list[tuple[str, str]]:
    s, g, c = report["synthesis"], report["generic"], report["config"]
    rows = [
        ("target", f"{report['target']} ({report['device']})"),
        ("build", f"n_pe {c['n_pe']}, weights {c['weight_bits']} b, membranes {c['membrane_bits']} b, "
                  f"bias {c['bias_bits']} b, accumulator {c['accumulator_bits']} b, "
                  f"{c['max_layers']} layers, {c['max_inputs']} inputs, {c['max_neurons']} neurons"),
        ("LUTs", f"{_pct(s['luts'], target.luts_available)} ({'/'.join(target.lut_cells)})"),
        ("flip-flops", f"{s['ffs']:,}"),
        ("carry cells", f"{s['carry']:,} ({'/'.join(target.carry_cells)})"),
        ("block RAM", f"{_pct(s['bram'], target.bram_available)} ({target.bram_cells[0]})"
                      + (f"; {report['fit']['bram']} predicted before synthesis" if report.get("fit") else "")),
    ]
    if target.spram_cells:
        rows.append(("SPRAM", f"{_pct(s['spram'], target.spram_available)} ({target.spram_cells[0]})"
                              + (f"; {report['fit']['spram']} predicted before synthesis" if report.get("fit") else "")))
    wm = report.get("weight_memory")
    if wm:
        where = f"{wm['primitives']} x {', '.join(wm['mapped_to'])}" if wm["primitives"] else "soft logic"
        choice = f", --weight-memory {wm['choice']}" if wm.get("choice") else ""
        rows.append(("weights", f"{'SPRAM' if wm['kind'] == 'spram' else 'block RAM'} ({where}{choice}): {wm['note']}"))
    if target.lutram_cells:
        rows.append(("LUT RAM", f"{s['lutram']} ({target.lutram_cells[0]})"))
    ok = "multiplier-free" if report["checks"]["multiplier_free"] else "MULTIPLIERS PRESENT"
    rows += [
        ("DSP cells (must be 0)", f"{s['dsp']} ({'/'.join(target.dsp_cells)}): {ok}"),
        ("generic $mul/$macc cells", f"{g['multipliers']}" + (f" {g['multiplier_cells']}" if g["multipliers"] else "")),
        ("CMOS gates (memories excluded)", f"{g['cmos_gates']:,} NAND/NOR/NOT + {g['cmos_flip_flops']:,} flip-flops"
                                           + (f", about {g['cmos_transistors']:,} transistors" if g["cmos_transistors"] else "")),
    ]
    if report.get("luts_per_pe") is not None:
        rows.append(("LUTs per PE", f"{report['luts_per_pe']:g} (pe_array / n_pe, unflattened)"))
    if report.get("luts_per_threshold_unit") is not None:
        tu = report.get("threshold_units") or {"units": c["n_pe"], "lanes_per_unit": 1}
        share = "one per lane" if tu["lanes_per_unit"] == 1 else \
            f"{tu['units']} units, {tu['lanes_per_unit']} lanes each in turn"
        rows.append(("LUTs per threshold unit", f"{report['luts_per_threshold_unit']:g} ({share}, unflattened)"))
    if report.get("luts_per_lane") is not None:
        rows.append(("LUTs per lane", f"{report['luts_per_lane']:g} ((pe_array + threshold units) / n_pe, unflattened)"))
    p = report.get("pnr")
    if p:
        if p["fmax_mhz"] is None:
            rows.append(("Fmax", "no clocked path"))
        else:
            verdict = "met" if p["timing_met"] else "NOT met"
            rows.append(("Fmax (clk)", f"{p['fmax_mhz']:.2f} MHz (goal {p['constraint_mhz']:g} MHz: {verdict}; "
                                       f"nextpnr seed {p.get('seed', '?')})"))
        if p.get("by_seed"):
            rows.append(("Fmax per seed", seed_text(p["by_seed"])))
        rows.append(("critical path", critical_path_text(p["critical_path"])))
        rows.append(("utilisation (P&R)", "; ".join(f"{u['label']} {u['used']}/{u['available']} ({u['percent']:.1f}%)"
                                                   for u in p["utilisation"].values() if u["percent"] is not None)))
        hc = p.get("harness_cells")
        rows.append(("P&R design", p["design"] + (f" ({hc['luts']:,} LUTs, {hc['ffs']:,} FFs)" if hc else "")))
        if p.get("bram_output_registers", {}).get("rams"):
            b = p["bram_output_registers"]
            rows.append(("block RAM output registers", f"{b['flip_flops']:,} flip-flops moved into the output "
                                                       f"registers of {b['rams']} block RAMs before P&R "
                                                       "(flows/bram_outreg.py)"))
    perf = report.get("performance")
    if perf:
        lat = f", {perf['latency_us']:.1f} us at Fmax" if perf.get("latency_us") else ""
        rows.append(("cycles per inference", f"{perf['cycles_per_inference']:.1f} (min {perf['cycles_min']}, "
                                             f"max {perf['cycles_max']}){lat}"))
        if perf.get("accuracy") is not None:
            rows.append(("accuracy", f"{100 * perf['accuracy']:.2f}% on {perf['samples']} samples"))
    e = report.get("energy")
    if e:
        static = f" + {e['static_pj'] / 1000:.1f} nJ static" if e["static_pj"] is not None else " (static not included)"
        per_sop = f", {e['per_sop_pj']:.2f} pJ per synaptic op" if e.get("per_sop_pj") else ""
        rows.append(("energy per inference (ESTIMATE)",
                     f"{e['dynamic_pj'] / 1000:.1f} nJ dynamic{static} = {e['total_pj'] / 1000:.1f} nJ{per_sop}"))
    for w in report.get("warnings") or []:
        rows.append(("WARNING", w))
    rows.append(("build folder", report["build_dir"]))
    return rows


def seed_text(by_seed: dict) -> str:
    """`seed 1: 34.2, seed 2: 35.0 MHz; min 34.2, median 34.6` from nextpnr.seed_summary."""
    def mhz(v):
        return "-" if v is None else f"{v:.2f}"
    runs = ", ".join(f"seed {r['seed']}: {mhz(r['fmax_mhz'])}" for r in by_seed["runs"])
    return f"{runs} MHz; min {mhz(by_seed['fmax_min_mhz'])}, median {mhz(by_seed['fmax_median_mhz'])}"


def memory_rows(report: dict) -> list[tuple]:
    out = []
    for m in report["memories"]:
        geom = f"{m['depth']} x {m['width']}" if m["depth"] else "?"
        out.append((m["memory"], geom, m["read"] or "?", m["mapped_to"], m["primitives"] or "-",
                    ", ".join(m["modes"]) or "-"))
    return out


def module_rows(report: dict) -> list[tuple]:
    """Per-module rows; identical numbered siblings (threshold0..7) collapse into one row."""
    mods = report.get("modules") or {}
    groups: dict[tuple, list[str]] = {}
    order: list[tuple] = []
    for name, v in mods.items():
        base = re.sub(r"\d+$", "", name)
        key = (base, v["luts"], v["ffs"], v["carry"], v["bram"], v["lutram"]) if base != name else (name,)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(name)
    rows = []
    for key in order:
        names = groups[key]
        v = mods[names[0]]
        n = len(names)
        label = names[0] if n == 1 else f"{key[0]}[{_index_range(names)}] ({n}x, each)"
        rows.append((label, v["luts"], v["ffs"], v["carry"], v["bram"] + v["spram"], v["lutram"], v["dsp"]))
    return rows


def _index_range(names: list[str]) -> str:
    idx = sorted(int(re.search(r"(\d+)$", n).group(1)) for n in names)
    return f"{idx[0]}..{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1)) else ",".join(map(str, idx))


# ---------------------------------------------------------------- baselines

def packaged_baselines():
    """The committed baselines as an importlib.resources Traversable (a real file in a checkout or wheel)."""
    return resources.files("mintaccel.flows").joinpath(BASELINES_NAME)


def load_baselines(path: str | Path | None = None) -> dict:
    """target -> baseline entry, from `path` or the packaged file; UserError in one line if malformed.

    A missing packaged file (a broken install) reads as no baselines; a missing `path` is an error."""
    if path is None:
        packaged = packaged_baselines()
        if not packaged.is_file():
            return {}
        with resources.as_file(packaged) as f:
            return _checked(read_json_object(f, f"baselines {BASELINES_NAME} (package data)"), BASELINES_NAME)
    return _checked(read_json_object(path, f"baselines {path}"), path)


def _checked(data: dict, where) -> dict:
    for target, entry in data.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("config"), dict)
                and isinstance(entry.get("metrics"), dict)):
            raise UserError(f"baselines {where}: entry '{target}' must be an object with 'config' and 'metrics'")
    return data


def config_of(cfg) -> dict:
    """The `config` a report (and a baseline) records for HwConfig `cfg`."""
    config = dataclasses.asdict(cfg)
    config["accumulator_bits"] = cfg.accumulator_bits
    return config


def baseline_config(report: dict) -> dict:
    return dict(report["config"])


def baseline_mismatch(baselines: dict, target: str, cfg) -> str | None:
    """Why a build `cfg` on `target` has nothing to compare with in `baselines` (None: it has a baseline)."""
    base = baselines.get(target)
    if not base:
        return f"no baseline for {target}"
    differ = [f"{k} {v} (baseline {base['config'].get(k)})" for k, v in config_of(cfg).items()
              if base["config"].get(k) != v]
    if differ:
        return f"the {target} baseline is for another build: {', '.join(differ)}"
    return None


def compare_baseline(report: dict, baselines: dict | None = None) -> dict:
    """Compare a report with the committed baseline of its target.

    Returns {"status": "ok" | "regression" | "no baseline" | "other config", "rows": [...]}; a row is
    (metric, baseline, now, limit, ok). Only a build with the baseline's exact config is compared.
    """
    baselines = load_baselines() if baselines is None else baselines
    base = baselines.get(report["target"])
    if not base:
        return {"status": "no baseline", "rows": []}
    if base.get("config") != baseline_config(report):
        return {"status": "other config", "rows": []}
    now = metrics(report)
    tolerances = {**DEFAULT_TOLERANCES, **base.get("tolerances", {})}
    rows = []
    for metric, ref in base["metrics"].items():
        if metric not in now:
            continue
        tol = tolerances.get(metric, {})
        value = now[metric]
        if "max" in tol:
            limit, ok = tol["max"], value <= tol["max"]
        elif "max_increase" in tol:
            limit = ref * (1 + tol["max_increase"])
            ok = value <= limit + 1e-9
        elif "max_decrease" in tol:
            limit = ref * (1 - tol["max_decrease"])
            ok = value >= limit - 1e-9
        else:
            limit, ok = None, True
        rows.append((metric, ref, value, limit, ok))
    return {"status": "ok" if all(r[4] for r in rows) else "regression", "rows": rows}


def baseline_entry(report: dict) -> dict:
    return {"config": baseline_config(report), "model": report.get("model"), "metrics": metrics(report),
            "tolerances": DEFAULT_TOLERANCES, "tools": report.get("tools")}
