"""Slow flows (`pytest -m slow`): the default build against flows/baselines.json, and a tiny sweep."""

from __future__ import annotations

import csv
import json

import pytest

from mintaccel.flows import report as freport
from tests.flows.common import mintaccel

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
    banks = [m for m in rep["memories"] if m["memory"].startswith("weights.bank")]
    assert len(banks) == rep["config"]["n_pe"]
    if target == "ice40-up5k":
        # 2-bit weight banks of at most 2048 words use one EBR each in its 2048 x 2 mode
        assert all(m["mapped_to"] == "SB_RAM40_4K" and m["modes"] == ["2048x2"] and m["primitives"] == 1
                   for m in banks), banks
    assert rep["performance"]["cycles_per_inference"] > 0 and rep["energy"]["estimate"] is True
    assert freport.compare_baseline(rep, freport.load_baselines())["status"] == "ok"
    # --write-baseline PATH: a new file starts from the committed entries and records this target's run
    written, committed = freport.load_baselines(recorded), freport.load_baselines()
    assert written[target] == freport.baseline_entry(rep) and set(written) == set(committed)
    assert all(written[t] == committed[t] for t in committed if t != target)
    # the fit check's prediction (before any tool) is what the full synthesis used
    assert (rep["fit"]["bram"], rep["fit"]["lutram"]) == (rep["synthesis"]["bram"], rep["synthesis"]["lutram"])
    assert rep["fit"]["spram"] == rep["synthesis"]["spram"] == 0 and not rep["warnings"]


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
