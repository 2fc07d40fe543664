"""Parsing real Yosys and nextpnr output (the session's small iCE40 run), the tables, baselines, energy."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from mintaccel.flows import report as freport
from mintaccel.flows.energy import FPGA_TABLE, fpga_energy, load_fpga_table, simulate_counts
from mintaccel.flows.nextpnr import PNR_SEED, pnr_args, seed_summary, summarize_path
from mintaccel.flows.targets import ECP5_25F, ICE40_UP5K
from mintaccel.flows.tools import ToolError
from mintaccel.flows.yosys import (ICE40_RAM_MODES, abc9_failed, design_cells, libmap_decisions, module_breakdown,
                                  run_synth, run_yosys, summarize_cells, synth_script)
from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.errors import UserError
from tests.conftest import random_spikes
from tests.flows.common import small_config


def test_synthesis_figures(small_ice40):
    s = small_ice40["synthesis"]
    assert s["luts"] == s["cells"]["SB_LUT4"]
    assert s["ffs"] == sum(n for t, n in s["cells"].items() if t.startswith("SB_DFF"))
    assert s["carry"] == s["cells"].get("SB_CARRY", 0) > 0
    assert s["bram"] == s["cells"].get("SB_RAM40_4K", 0)
    assert small_ice40["config"]["n_pe"] == 2 and small_ice40["target"] == "ice40-up5k"


def test_generic_gate_count(small_ice40):
    g = small_ice40["generic"]
    assert g["cmos_gates"] > 100 and g["cmos_flip_flops"] > 10
    assert g["cmos_transistors"] > 4 * g["cmos_gates"]


def test_every_memory_is_reported_with_its_mapping(small_ice40):
    mems = {m["memory"]: m for m in small_ice40["memories"]}
    geometry = small_ice40["generic"]["memories"]
    assert set(geometry) <= set(mems)
    assert mems["weights.mem"]["depth"] == 32 and mems["weights.mem"]["width"] == 2 * 8  # lanes side by side
    for m in mems.values():
        assert m["mapped_to"] and m["read"] in ("sync", "async", "mixed")
        if m["mapped_to"] == "SB_RAM40_4K":
            assert m["read"] == "sync"  # iCE40 block RAM has registered reads only
            assert m["primitives"] >= 1 and set(m["modes"]) <= set(ICE40_RAM_MODES.values())
    in_bram = sum(m["primitives"] for m in mems.values() if m["mapped_to"] == "SB_RAM40_4K")
    assert in_bram == small_ice40["synthesis"]["bram"]


def test_libmap_decisions_parse():
    log = ("mapping memory mintaccel_top.weights.mem via $__ICE40_RAM4K_\n"
           "using FF mapping for memory mintaccel_top.spike_buffer\n"
           "mapping memory mintaccel_top.events via $__TRELLIS_DPR16X4_\n")
    assert libmap_decisions(log, "mintaccel_top") == {
        "weights.mem": "ICE40_RAM4K", "spike_buffer": "flip-flops", "events": "TRELLIS_DPR16X4"}


def test_per_module_breakdown(small_ice40):
    mods = small_ice40["modules"]
    assert {"pe_array", "controller", "threshold0", "threshold1"} <= set(mods)
    assert small_ice40["luts_per_pe"] == mods["pe_array"]["luts"] / 2 > 0
    total = mods["(total, unflattened)"]
    parts = sum(v["luts"] for k, v in mods.items() if k != "(total, unflattened)")
    assert total["luts"] == parts
    # unflattened synthesis cannot optimise across modules: never much smaller than the flat netlist
    assert total["luts"] >= 0.8 * small_ice40["synthesis"]["luts"]


def test_module_breakdown_sums_hierarchy():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"SB_LUT4": 1, "top.a": 2, "$scopeinfo": 3}},
        "\\top.a": {"num_cells_by_type": {"SB_LUT4": 5, "top.a.b": 1}},
        "\\top.a.b": {"num_cells_by_type": {"SB_LUT4": 7, "SB_CARRY": 1}}}}
    mods = module_breakdown(stat, "top", ICE40_UP5K)
    assert mods["a"]["luts"] == 12 and mods["a"]["carry"] == 1
    assert mods["(top-level glue)"]["luts"] == 1
    assert mods["(total, unflattened)"]["luts"] == 1 + 2 * 12


def test_place_and_route_figures(small_ice40):
    p = small_ice40["pnr"]
    assert p["fmax_mhz"] > 1 and p["constraint_mhz"] == 48
    assert p["timing_met"] == (p["fmax_mhz"] >= 48)
    cp = p["critical_path"]
    assert cp["delay_ns"] > 0 and cp["logic_levels"] > 0
    assert abs(cp["logic_ns"] + cp["routing_ns"] - cp["delay_ns"]) < 1e-6 + 0.01 * cp["delay_ns"]
    assert 1000 / cp["delay_ns"] == pytest.approx(p["fmax_mhz"], rel=0.05)
    assert any(s.startswith("hw/") for s in cp["sources"])
    lc = p["utilisation"]["ICESTORM_LC"]
    assert lc["available"] == 5280 and 0 < lc["percent"] <= 100
    assert p["utilisation"]["ICESTORM_DSP"]["used"] == 0
    assert p["harness_cells"]["luts"] >= 0.95 * small_ice40["synthesis"]["luts"]
    # the harness adds exactly its input chain's flip-flops: none of the core's is lost
    assert p["harness_cells"]["ffs"] == small_ice40["synthesis"]["ffs"] + p["harness_input_ffs"]
    assert small_ice40["warnings"] == []
    assert p["seed"] == PNR_SEED and "by_seed" not in p  # one seed: the flow's fixed one


def test_seed_summary():
    runs = [{"seed": 1, "fmax_mhz": 30.0}, {"seed": 7, "fmax_mhz": 36.0}, {"seed": 9, "fmax_mhz": 33.0}]
    s = seed_summary(runs)
    assert (s["seeds"], s["fmax_min_mhz"], s["fmax_median_mhz"]) == ([1, 7, 9], 30.0, 33.0)
    assert freport.seed_text(s) == "seed 1: 30.00, seed 7: 36.00, seed 9: 33.00 MHz; min 30.00, median 33.00"
    assert seed_summary([{"seed": 1, "fmax_mhz": None}])["fmax_min_mhz"] is None


def test_pnr_arguments_carry_the_seed():
    args = pnr_args(ICE40_UP5K, "n.json", "r.json", "l.log", seed=42)
    assert args[args.index("--seed") + 1] == "42"
    default = pnr_args(ICE40_UP5K, "n.json", "r.json", "l.log")
    assert default[default.index("--seed") + 1] == str(PNR_SEED)


def test_summarize_path_of_a_handmade_report():
    path = {"from": "posedge clk", "to": "posedge clk", "path": [
        {"type": "clk-to-q", "delay": 1.0, "from": {"cell": "a"}, "to": {"cell": "a"}},
        {"type": "routing", "delay": 2.0, "sources": ["/x/hw/threshold_unit.py:42"], "from": {"cell": "a"},
         "to": {"cell": "b"}},
        {"type": "logic", "delay": 0.5, "from": {"cell": "b"}, "to": {"cell": "b"}},
        {"type": "routing", "delay": 1.5, "sources": ["/x/hw/controller.py:7", "/share/ice40/cells_map.v:6"],
         "from": {"cell": "b"}, "to": {"cell": "c"}},
        {"type": "setup", "delay": 0.25, "from": {"cell": "c"}, "to": {"cell": "c"}}]}
    s = summarize_path(path)
    assert s["delay_ns"] == 5.25 and s["routing_ns"] == 3.5 and s["logic_levels"] == 1
    assert s["blocks"] == ["threshold_unit", "controller"]
    assert s["sources"] == ["hw/threshold_unit.py:42", "hw/controller.py:7"]
    assert s["start"] == "a" and s["end"] == "c"


def test_tables_render(small_ice40):
    rows = dict(freport.summary_rows(small_ice40, ICE40_UP5K))
    assert rows["DSP cells (must be 0)"].startswith("0 (SB_MAC16): multiplier-free")
    assert "Fmax (clk)" in rows and "LUTs per PE" in rows and "critical path" in rows
    assert rows["weights"].startswith("block RAM (") and "no model given" in rows["weights"]
    assert rows["SPRAM"] == "0 / 4 (0.0%) (SB_SPRAM256KA); 0 predicted before synthesis"
    assert small_ice40["weight_memory"]["kind"] == "bram" and small_ice40["weight_memory"]["in_bitstream"] is False
    assert small_ice40["luts_per_lane"] > small_ice40["luts_per_pe"]
    mods = [r[0] for r in freport.module_rows(small_ice40)]
    assert "threshold[0..1] (2x, each)" in mods
    assert len(freport.memory_rows(small_ice40)) == len(small_ice40["memories"])
    json.dumps(small_ice40)  # the report is plain JSON


def _report(luts=1000, fmax=20.0, cfg=None):
    return {"target": "ice40-up5k", "config": cfg or {"n_pe": 8},
            "synthesis": {"luts": luts, "ffs": 500, "carry": 300, "bram": 10, "dsp": 0},
            "generic": {"multipliers": 0}, "pnr": {"fmax_mhz": fmax}}


@pytest.mark.parametrize("luts, fmax, status", [
    (1000, 20.0, "ok"), (1099, 18.1, "ok"), (1101, 20.0, "regression"), (900, 17.9, "regression")])
def test_baseline_tolerances(luts, fmax, status):
    base = {"ice40-up5k": {"config": {"n_pe": 8}, "metrics": freport.metrics(_report())}}
    assert freport.compare_baseline(_report(luts, fmax), base)["status"] == status


def test_baseline_only_compares_the_same_config():
    base = {"ice40-up5k": {"config": {"n_pe": 4}, "metrics": freport.metrics(_report())}}
    assert freport.compare_baseline(_report(5000), base)["status"] == "other config"
    assert freport.compare_baseline(_report(5000), {})["status"] == "no baseline"


def test_baselines_are_package_data():
    packaged = freport.packaged_baselines()
    assert packaged.is_file() and json.loads(packaged.read_text()) == freport.load_baselines()


def test_baseline_mismatch_names_the_differing_fields(shipped_model):
    base = freport.load_baselines()
    assert freport.baseline_mismatch(base, "ice40-up5k", HwConfig.for_model(shipped_model)) is None
    why = freport.baseline_mismatch(base, "ice40-up5k", HwConfig.for_model(shipped_model, n_pe=4))
    assert why.startswith("the ice40-up5k baseline is for another build: n_pe 4 (baseline 8)")
    assert freport.baseline_mismatch({}, "ecp5-25f", HwConfig()) == "no baseline for ecp5-25f"


def test_committed_baselines_cover_both_targets():
    base = freport.load_baselines()
    for target in ("ice40-up5k", "ecp5-25f"):
        entry = base[target]
        assert entry["metrics"]["dsp"] == 0 and entry["metrics"]["multipliers"] == 0
        assert entry["metrics"]["luts"] > 0 and entry["metrics"]["fmax_mhz"] > 0
        assert entry["tolerances"]["luts"]["max_increase"] == 0.10
        assert entry["tolerances"]["fmax_mhz"]["max_decrease"] == 0.10


def test_tool_failure_is_one_line_with_the_log(flows_dir):
    with pytest.raises(ToolError) as e:
        run_yosys(flows_dir / "broken", "broken", "read_rtlil no-such-file.il\n")
    msg = str(e.value)
    assert "\n" not in msg and "yosys broken" in msg and "log: " in msg
    assert e.value.log.is_file() and isinstance(e.value, UserError)


# the endings of the two ABC9 failures of Yosys 0.70 seen on the ECP5 conv build's harness
_ABC9_ABORT = """4.46.16.6. Executing AIGER frontend.
4.46.16.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design into module).
ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in kernel/rtlil.cc:3091.
"""
_ABC9_CONFLICT = """4.52. Executing CHECK pass (checking for obvious problems).
Warning: multiple conflicting drivers for mintaccel_harness.\\core.host.layers [2]:
5. Executing CHECK pass (checking for obvious problems).
ERROR: Found 1 problems in 'check -assert'.
"""


def test_abc9_failures_are_told_from_others():
    assert abc9_failed(_ABC9_ABORT) and abc9_failed(_ABC9_CONFLICT)
    assert not abc9_failed("1. Executing RTLIL frontend.\nERROR: Can't open input file `x.il' for reading\n")
    assert not abc9_failed("5. Executing CHECK pass (checking for obvious problems).\nWarning: Wire x is used but has no driver.\n")
    assert not abc9_failed("")


@pytest.mark.parametrize("target", [ICE40_UP5K, ECP5_25F], ids=lambda t: t.name)
def test_abc_fallback_maps_the_same_registers(request, flows_dir, target):
    """The fallback's script (LUTs mapped by ABC, not ABC9) is a working synthesis of either target: the
    session's small build (synthesized with ABC9 by its fixture) gets the same block RAMs, flip-flops
    within 1 % and LUTs within a quarter of ABC9's."""
    if target is ICE40_UP5K:
        built, rtlil = request.getfixturevalue("small_ice40")["synthesis"], flows_dir / "small-ice40" / "core.il"
    else:
        built, rtlil = request.getfixturevalue("small_ecp5"), flows_dir / "small-ecp5" / "mintaccel_top.il"
    assert "Executing ABC9 pass" in (rtlil.parent / "synth.log").read_text()
    folder = flows_dir / f"abc-{target.name}"
    folder.mkdir()
    (folder / "core.il").write_bytes(rtlil.read_bytes())
    run_yosys(folder, "s", synth_script(target, "core.il", "mintaccel_top", "s.json", abc9=False))
    log = (folder / "s.log").read_text()
    assert "Executing ABC9 pass" not in log and "Executing ABC pass" in log
    abc = summarize_cells(design_cells(json.loads((folder / "s.json").read_text())), target).as_dict()
    assert abc["bram"] == built["bram"] and abs(abc["ffs"] - built["ffs"]) <= 0.01 * built["ffs"]
    assert 0.75 * built["luts"] < abc["luts"] < 1.25 * built["luts"]


def test_a_design_failing_its_check_falls_back_and_then_fails(flows_dir):
    """Conflicting drivers fail `check -assert` (as ABC9's did); the ABC run then fails on them too: one
    error, the ABC9 run's log kept beside."""
    folder = flows_dir / "conflict"
    folder.mkdir()
    (folder / "c.il").write_text("module \\top\n  wire input 1 \\a\n  wire input 2 \\b\n  wire output 3 \\y\n"
                                 "  connect \\y \\a\n  connect \\y \\b\nend\n")
    with pytest.raises(ToolError, match="check -assert"):
        run_synth(folder, "s", ICE40_UP5K, "c.il", "top", "s_stat.json")
    assert "multiple conflicting drivers" in (folder / "s-abc9.log").read_text()
    assert "abc -dress -lut 4" in (folder / "s.ys").read_text()


def _memories(cfg, where):
    names = ["weights.mem", "events", "membranes.mem", "spike_buffer"]
    return [{"memory": n, "mapped_to": where, "primitives": 1 if where != "flip-flops and LUTs" else 0,
             "width": cfg.n_pe * cfg.weight_bits, "modes": ["256x16"]} for n in names]


def test_fpga_energy_estimate(shipped_model):
    cfg = HwConfig.for_model(shipped_model)
    spikes = random_spikes(3, 6, shipped_model.timesteps, shipped_model.n_inputs, density=0.2)
    result = simulate_counts(shipped_model, spikes, cfg)
    bram = fpga_energy(result, ICE40_UP5K, _memories(cfg, "SB_RAM40_4K"), ffs=500, fmax_mhz=20.0)
    soft = fpga_energy(result, ICE40_UP5K, _memories(cfg, "flip-flops and LUTs"), ffs=500, fmax_mhz=20.0)
    assert bram["estimate"] is True and bram["total_pj"] > bram["dynamic_pj"] > 0
    assert bram["static_pj"] == pytest.approx(0.117e-3 * float(result.cycles.mean()) / 20e6 * 1e12)
    assert bram["blocks"]["weight_memory"]["events"]["reads"]["where"] == "block RAM"
    assert soft["blocks"]["weight_memory"]["events"]["reads"]["where"] == "LUTs / flip-flops"
    clock = bram["blocks"]["clock and registers"]["pj"]
    assert clock == pytest.approx(float(result.cycles.mean()) * 500 * bram["prices"]["soft_bit_pj"])
    ecp5 = fpga_energy(result, ECP5_25F, _memories(cfg, "DP16KD"), ffs=500, fmax_mhz=None)
    assert ecp5["static_pj"] is None and ecp5["static_note"]
    assert ecp5["blocks"]["weight_memory"]["events"]["reads"]["where"] == "block RAM"
    assert np.isfinite(ecp5["per_sop_pj"])


def test_fpga_energy_of_spram_weights(shipped_model):
    """The SPRAM weight memory: one access reads every SPRAM of it once (one shared address)."""
    cfg = HwConfig.for_model(shipped_model, weight_spram=1)
    spikes = random_spikes(4, 4, shipped_model.timesteps, shipped_model.n_inputs, density=0.2)
    result = simulate_counts(shipped_model, spikes, cfg)
    memories = [{"memory": "weights.spram", "mapped_to": "SB_SPRAM256KA", "primitives": 1,
                 "width": cfg.n_pe * cfg.weight_bits, "modes": ["16384x16"]}]
    e = fpga_energy(result, ICE40_UP5K, memories, ffs=500, fmax_mhz=20.0)
    reads = e["blocks"]["weight_memory"]["events"]["reads"]
    spram = FPGA_TABLE["spram"]["ice40-up5k"]
    from mintaccel.sim.energy import DEFAULT as ASIC
    assert reads["where"] == "SPRAM"
    assert reads["pj_each"] == e["prices"]["spram_access_pj"] == pytest.approx(
        ASIC.sram(spram["bytes"], spram["row_bits"]) * FPGA_TABLE["hard_block_factor"])
    assert e["prices"]["spram_access_pj"] > e["prices"]["ebr_access_pj"]  # a 32 KB array, not a 512 B one
    assert fpga_energy(result, ECP5_25F, [], ffs=500, fmax_mhz=None)["prices"]["spram_access_pj"] is None


def test_fpga_energy_table_override(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"_note": "x", "fabric_factor": 10.0}))
    t = load_fpga_table(p)
    assert t["fabric_factor"] == 10.0 and t["ebr"] == FPGA_TABLE["ebr"]
    p.write_text(json.dumps({"static_mw": {"ecp5-25f": 20.0}}))
    t = load_fpga_table(p)
    assert t["static_mw"] == {"ice40-up5k": 0.117, "ecp5-25f": 20.0}
    p.write_text(json.dumps({"fabric": 1}))
    with pytest.raises(UserError, match="unknown entry 'fabric'"):
        load_fpga_table(p)


def test_fpga_energy_table_partial_target_entry_merges_field_by_field(tmp_path, shipped_model):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"ebr": {"ecp5-25f": {"row_bits": 18}}, "static_mw": {"ecp5-25f": None}}))
    t = load_fpga_table(p)
    assert t["ebr"]["ecp5-25f"] == {"bytes": 2304, "row_bits": 18.0}
    assert t["ebr"]["ice40-up5k"] == FPGA_TABLE["ebr"]["ice40-up5k"] and t["static_mw"]["ecp5-25f"] is None
    cfg = HwConfig.for_model(shipped_model)
    result = simulate_counts(shipped_model, random_spikes(4, 2, shipped_model.timesteps, shipped_model.n_inputs), cfg)
    e = fpga_energy(result, ECP5_25F, _memories(cfg, "DP16KD"), ffs=500, fmax_mhz=90.0, table=t)
    assert e["prices"]["ebr_access_pj"] == pytest.approx(
        fpga_energy(result, ECP5_25F, _memories(cfg, "DP16KD"), ffs=500, fmax_mhz=90.0)["prices"]["ebr_access_pj"] / 2)


@pytest.mark.parametrize("entries, message", [
    ('{"fabric_factor": "14"}', "'fabric_factor' must be a number >= 0, not '14'"),
    ('{"hard_block_factor": NaN}', "'hard_block_factor' must be a number >= 0, not nan"),
    ('{"ff_clock_bits": -1}', "'ff_clock_bits' must be a number >= 0, not -1"),
    ('{"ebr": 512}', "'ebr' must be an object of target -> value"),
    ('{"ebr": {"ice40-up5k": 512}}', "'ebr.ice40-up5k' must be an object like"),
    ('{"ebr": {"ice40-up5k": {"words": 256}}}', "'ebr.ice40-up5k' has unknown field 'words'"),
    ('{"ebr": {"ice40-up5k": {"bytes": true}}}', "'ebr.ice40-up5k.bytes' must be a number >= 0, not True"),
    ('{"core_voltage": {"xc7a35t": 1.0}}', "'core_voltage' has unknown target 'xc7a35t'"),
    ('{"core_voltage": {"ecp5-25f": null}}', "'core_voltage.ecp5-25f' must be a number >= 0, not None"),
    ('{"static_mw": {"ice40-up5k": -0.1}}', "'static_mw.ice40-up5k' must be a number >= 0, not -0.1"),
])
def test_fpga_energy_table_bad_values_fail_at_load(tmp_path, entries, message):
    p = tmp_path / "t.json"
    p.write_text(entries)
    with pytest.raises(UserError) as e:
        load_fpga_table(p)
    assert str(e.value).startswith(f"FPGA energy table {p}: {message}") and "\n" not in str(e.value)


def test_small_config_is_valid():
    cfg = copy.copy(small_config())
    assert cfg.accumulator_bits > cfg.weight_bits
