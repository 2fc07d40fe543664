"""Slow flows (`pytest -m slow`): the default build against flows/baselines.json, an SPRAM build, tiny sweeps, a search with LUTs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mintaccel.flows import report as freport
from mintaccel.model_export.format import save_model
from tests.flows.common import mintaccel
from tests.flows.test_fit import mnist_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25f"])
def test_default_build_within_baseline(flows_dir, target):
    """Fails if LUTs (or FFs, carry cells) grow more than 10 % or Fmax falls more than 10 %."""
    out, js = flows_dir / f"default-{target}", flows_dir / f"default-{target}.json"
    recorded = flows_dir / f"baselines-{target}.json"
    r = mintaccel("synth", "--target", target, "--check-baseline", "--write-baseline", recorded, "--out", out,
                  "--json", js, timeout=1800)
    rep = json.loads(js.read_text())
    rows = {row[0]: row for row in rep["baseline"]["rows"]}
    assert rep["baseline"]["status"] == "ok", (r.stderr, rows)
    assert r.returncode == 0, r.stderr
    assert {"luts", "fmax_mhz", "dsp"} <= set(rows)
    assert rep["synthesis"]["dsp"] == 0 and rep["generic"]["multipliers"] == 0
    weights = [m for m in rep["memories"] if m["memory"].startswith("weights.")]
    assert [m["memory"] for m in weights] == ["weights.mem"]
    if target == "ice40-up5k":
        # eight 2-bit lanes side by side: 1280 x 16 bits in five EBRs in the 256 x 16 mode
        assert [(m["mapped_to"], m["modes"], m["primitives"]) for m in weights] == \
            [("SB_RAM40_4K", ["256x16"], 5)], weights
    assert rep["performance"]["cycles_per_inference"] > 0 and rep["energy"]["estimate"] is True
    assert freport.compare_baseline(rep, freport.load_baselines())["status"] == "ok"
    # --write-baseline PATH: a new file starts from the committed entries and records this target's run
    written, committed = freport.load_baselines(recorded), freport.load_baselines()
    assert written[target] == freport.baseline_entry(rep) and set(written) == set(committed)
    assert all(written[t] == committed[t] for t in committed if t != target)
    # the fit check's prediction (before any tool) is what the full synthesis used
    assert (rep["fit"]["bram"], rep["fit"]["lutram"]) == (rep["synthesis"]["bram"], rep["synthesis"]["lutram"])
    assert rep["fit"]["spram"] == rep["synthesis"]["spram"] == 0 and not rep["warnings"]
    assert rep["pnr"]["seed"] == 1 and rep["weight_memory"]["kind"] == "bram" and rep["weight_memory"]["in_bitstream"]


def test_mnist_build_goes_to_spram(flows_dir):
    """MNIST 784-128-10 at 8 PEs needs 54 block RAMs: `auto` puts the weights in one SPRAM instead."""
    model, out, js = flows_dir / "mnist.npz", flows_dir / "mnist-spram", flows_dir / "mnist-spram.json"
    save_model(mnist_model(), model)
    r = mintaccel("synth", "--model", model, "--no-pnr", "--no-breakdown", "--out", out, "--json", js)
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["weight_memory"]["kind"] == "spram" and rep["weight_memory"]["choice"] == "auto"
    assert rep["weight_memory"]["in_bitstream"] is False and rep["config"]["weight_spram"] == 1
    weights = [m for m in rep["memories"] if m["memory"].startswith("weights.")]
    assert [(m["memory"], m["mapped_to"], m["primitives"], m["modes"]) for m in weights] == \
        [("weights.spram", "SB_SPRAM256KA", 1, ["16384x16"])]
    assert (rep["fit"]["bram"], rep["fit"]["spram"]) == (rep["synthesis"]["bram"], rep["synthesis"]["spram"]) == (4, 1)
    assert not rep["warnings"] and rep["checks"]["fits_spram"]
    assert "the host loads them at run time" in " ".join(r.stdout.split())


def test_too_many_luts_stop_before_place_and_route(flows_dir):
    """32 lanes with a threshold unit each: more LUTs than the UP5K has (the memories fit: SPRAM). The
    flow says so in one line after synthesis instead of failing inside nextpnr, and keeps the logs."""
    out = flows_dir / "too-many-luts"
    r = mintaccel("synth", "--n-pe", "32", "--threshold-units", "32", "--no-breakdown", "--out", out, timeout=1800)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("mintaccel: error: the build does not fit the Lattice iCE40UP5K-SG48: ") and \
        "LUTs after synthesis, the device has 5,280; place and route skipped" in line, line
    assert (out / "synth.log").is_file() and not (out / "harness.log").exists() and not (out / "pnr.log").exists()


def test_tiny_sweep(flows_dir):
    out = flows_dir / "sweep"
    r = mintaccel("sweep", "--n-pe", "4", "8", "--schemes", "uniform", "--weight-bits", "2", "--membrane-bits", "2",
                  "--epochs", "1", "--hidden", "16", "--no-pnr", "--out", out, timeout=1800)
    assert r.returncode == 0, r.stderr
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["label"] for row in rows] == ["n4-u2-m2", "n8-u2-m2"]
    assert all(int(row["dsp"]) == 0 and int(row["luts"]) > 0 and float(row["cycles"]) > 0 for row in rows)
    # more PEs: fewer cycles per inference
    assert float(rows[1]["cycles"]) < float(rows[0]["cycles"])
    assert (out / "pareto.png").stat().st_size > 10_000
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 2


def test_sweep_with_seeds(flows_dir):
    """One point placed with two seeds: Fmax per seed, min and median; a 64-PE point does not fit the UP5K
    (128-bit weight words: 8 SPRAMs) and is skipped with its reason."""
    out = flows_dir / "sweep-seeds"
    r = mintaccel("sweep", "--n-pe", "4", "64", "--schemes", "uniform", "--weight-bits", "2", "--membrane-bits", "2",
                  "--epochs", "1", "--hidden", "64", "--seeds", "1", "2", "--out", out, timeout=1800)
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "sweep.json").read_text())
    (row,) = result["rows"]
    assert result["seeds"] == [1, 2] and row["label"] == "n4-u2-m2"
    fmax = [float(f.split(":")[1]) for f in row["fmax_by_seed"].split()]
    assert [int(f.split(":")[0]) for f in row["fmax_by_seed"].split()] == [1, 2]
    assert row["fmax_mhz"] == fmax[0] and row["fmax_min_mhz"] == min(fmax) and row["fmax_median_mhz"] == sum(fmax) / 2
    assert (out / "n4-u2-m2" / "pnr-seed2.json").is_file()
    assert len(result["skipped"]) == 1 and result["skipped"][0].startswith("n64-u2-m2: the build does not fit")
    assert row["latency_us"] == row["cycles"] / row["fmax_mhz"]


def test_search_with_luts(flows_dir):
    """Two trials with the LUT objective: every trial synthesized (Yosys), LUTs in the rows and the table."""
    out = flows_dir / "search-luts"
    r = mintaccel("search", "--trials", "2", "--epochs", "1", "--hidden", "16", "--luts", "--fresh",
                  "--out", out, timeout=1800)
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "pareto.json").read_text())
    assert set(result["objectives"]) == {"accuracy", "energy_nj", "luts"}
    assert all(t["luts"] > 0 for t in result["trials"]) and "LUTs" in r.stdout
    assert all((Path(t["model"]).parent / "build" / "synth.log").is_file()
               for t in result["trials"])
