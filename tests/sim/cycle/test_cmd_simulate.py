"""`mintaccel simulate` as a user meets it: figures, --json, plots, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / ".venv" / "bin" / "python"


def mintaccel(*args):
    env = dict(os.environ, COLUMNS="200")
    python = str(PYTHON) if PYTHON.exists() else "python"
    return subprocess.run([python, "-m", "mintaccel.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def assert_one_line_error(r, match):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mintaccel: error:"), r.stderr
    assert match in lines[0], lines[0]


def test_simulate_shipped_model_json_and_plots(tmp_path):
    out = tmp_path / "plots"
    r = mintaccel("simulate", "--json", tmp_path / "s.json", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "cycles per inference" in r.stdout and "(estimate)" in r.stdout and "MINT vs vanilla" in r.stdout
    d = json.loads((tmp_path / "s.json").read_text())
    s = d["summary"]
    assert s["samples"] == 360 and s["accuracy"] > 0.9 and s["clock_mhz"] == 48.0 and s["n_pe"] == 8
    assert s["energy_is_estimate"] and d["energy"]["estimate"]
    assert s["latency_us"] == pytest.approx(s["cycles_per_inference"] / 48.0)
    assert sum(d["cycles"]["per_phase_mean"].values()) == pytest.approx(s["cycles_per_inference"])
    for name in ("energy.png", "cycles.png", "raster.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [".mintaccel-output", "cycles.png", "energy.png", "raster.png"]


def test_simulate_given_input_labels_and_options(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((6, 8, 64)) < 0.25).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(6) % 10)
    (tmp_path / "t.json").write_text('{"zero_add_factor": 0}')
    r = mintaccel("simulate", "--input", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--clock", "100",
                  "--n-pe", "4", "--energy-table", tmp_path / "t.json", "--input-gap", "1",
                  "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["summary"]["samples"] == 6 and d["summary"]["n_pe"] == 4 and d["summary"]["clock_mhz"] == 100
    assert d["summary"]["energy_table"] == str(tmp_path / "t.json")
    assert d["cycles"]["stalls_mean"]["input"] == 8 * 16  # T * W[0] words, one stall cycle each
    assert len(d["predictions"]) == 6


def test_simulate_threshold_above_the_bound(tmp_path):
    """Defect 1's smallest case (theta = 4 > B = 2) runs: the build's accumulator is 4 bits, not 3."""
    from mintaccel.model_export.format import save_model
    from mintaccel.sim.reference import run
    from tests.conftest import threshold_above_bound_model
    model = threshold_above_bound_model()
    save_model(model, tmp_path / "m.npz")
    x = np.ones((2, 4, 1), np.uint8)
    x[1, ::2] = 0
    np.save(tmp_path / "x.npy", x)
    r = mintaccel("simulate", "--model", tmp_path / "m.npz", "--input", tmp_path / "x.npy", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert "4-bit accumulators" in r.stdout
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["predictions"] == run(model, x).predictions.tolist()


@pytest.mark.parametrize("make_args, match", [
    (lambda p: ["--input", p / "bad.npy"], "input spikes must be shaped [batch, 8, 64]"),
    (lambda p: ["--input", p / "missing.npy"], "no such input file"),
    (lambda p: ["--energy-table", p / "bad.json"], "not valid JSON"),
    (lambda p: ["--clock", "0"], "argument --clock: must be a positive finite number"),
    (lambda p: ["--model", p / "nope.npz"], "no such model file"),
    (lambda p: ["--out", p / "bad.npy"], "it is a file, not a folder"),
    (lambda p: ["--n-pe", "0"], "n_pe must be in 1..64"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, make_args, match):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 64), np.uint8))
    (tmp_path / "bad.json").write_text("{oops")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = mintaccel("simulate", "--json", tmp_path / "s.json", "--out", tmp_path / "plots", *make_args(tmp_path))
    assert_one_line_error(r, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
