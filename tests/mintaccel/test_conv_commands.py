"""A conv model through every command: `simulate`, `generate`, `regress --model` (and `run`, `info`);
`synth` of conv builds is in tests/flows (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mintaccel.cli import main
from mintaccel.model_export.format import save_model
from tests.conftest import random_conv_model, random_spikes


@pytest.fixture
def conv_files(tmp_path):
    model = random_conv_model(2)
    save_model(model, tmp_path / "conv.npz")
    np.save(tmp_path / "x.npy", random_spikes(2, 3, model.timesteps, model.n_inputs))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2], np.uint8))
    return tmp_path / "conv.npz", tmp_path / "x.npy", tmp_path / "y.npy"


def test_simulate_runs_the_conv_model(tmp_path, capsys, conv_files):
    model, x, y = conv_files
    out = tmp_path / "sim"
    assert main(["simulate", "--model", str(model), "--input", str(x), "--labels", str(y), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0 conv2d" in text and "x 64" in text  # the per-layer table: the conv's 8 x 8 output positions
    assert {"energy.png", "cycles.png", "raster.png"} <= {p.name for p in out.iterdir()}


def test_generate_writes_the_conv_build(tmp_path, conv_files):
    model, _, _ = conv_files
    assert main(["generate", "--model", str(model), "-o", str(tmp_path / "rtl")]) == 0
    manifest = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert manifest["config"]["max_map_words"] > 0
    assert manifest["memory_map"]["memories"]["map_buffers"]["buffers"] == 2
    assert "module mintaccel_top" in (tmp_path / "rtl" / "mintaccel_top.v").read_text()


def test_regress_runs_the_users_conv_model(tmp_path, capsys, conv_files):
    """The model's own preloaded build under Verilator: every write-back, word and cycle checked."""
    model, x, y = conv_files
    code = main(["regress", "--model", str(model), "--input", str(x), "--labels", str(y), "--sim", "verilator",
                 "--json", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    r = json.loads((tmp_path / "r.json").read_text())["results"]["verilator"]
    assert r["mismatches"] == 0 and r["samples"] == 3 and r["checks"] > 100


def test_run_and_info_take_the_conv_model(capsys, conv_files):
    model, x, y = conv_files
    assert main(["run", str(model), "--input", str(x), "--labels", str(y)]) == 0
    assert "layer 0 (conv2d) spikes per sample" in capsys.readouterr().out
    assert main(["info", str(model)]) == 0
    assert "1x8x8 -> 4x8x8, k3 s1 p1" in capsys.readouterr().out
