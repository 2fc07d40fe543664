"""The RTL runs dense layers only for now: `generate`, `synth` and `regress --model` on a conv model end
in one line saying so, exit status 2, before any work and with no output written; `simulate` (the cycle
simulator's conv datapath), `run` and `info` take the same model."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.cli import main
from mintaccel.model_export.format import save_model
from tests.conftest import random_conv_model, random_spikes

REFUSAL = "runs dense layers only for now"


@pytest.fixture
def conv_files(tmp_path):
    model = random_conv_model(2)
    save_model(model, tmp_path / "conv.npz")
    np.save(tmp_path / "x.npy", random_spikes(2, 3, model.timesteps, model.n_inputs))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2], np.uint8))
    return tmp_path / "conv.npz", tmp_path / "x.npy", tmp_path / "y.npy"


def one_line(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("mintaccel: error:"), err
    return err[0]


@pytest.mark.parametrize("command", [
    lambda m, x, y, out: ["generate", "--model", m, "-o", out],
    lambda m, x, y, out: ["generate", "--model", m, "--target", "ice40-up5k", "-o", out],
    lambda m, x, y, out: ["synth", "--model", m, "--out", out],
    lambda m, x, y, out: ["regress", "--model", m, "--input", x, "--labels", y, "--sim", "icarus"],
], ids=["generate", "generate-target", "synth", "regress"])
def test_hardware_commands_refuse_conv_models(tmp_path, capsys, conv_files, command):
    model, x, y = conv_files
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line(capsys, command(model, x, y, tmp_path / "out"))
    assert REFUSAL in line and "conv2d, flatten, pool layers" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_generate_with_a_config_file_refuses_too(tmp_path, capsys, conv_files):
    """With --config the build is the user's, not HwConfig.for_model: generate's own check_fits refuses."""
    (tmp_path / "hw.json").write_text('{"n_pe": 4}')
    line = one_line(capsys, ["generate", "--model", conv_files[0], "--config", tmp_path / "hw.json",
                             "-o", tmp_path / "out"])
    assert REFUSAL in line and not (tmp_path / "out").exists()


def test_simulate_runs_the_conv_model(tmp_path, capsys, conv_files):
    model, x, y = conv_files
    out = tmp_path / "sim"
    assert main(["simulate", "--model", str(model), "--input", str(x), "--labels", str(y), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0 conv2d" in text and "x 64" in text  # the per-layer table: the conv's 8 x 8 output positions
    assert {"energy.png", "cycles.png", "raster.png"} <= {p.name for p in out.iterdir()}


def test_run_and_info_take_the_conv_model(capsys, conv_files):
    model, x, y = conv_files
    assert main(["run", str(model), "--input", str(x), "--labels", str(y)]) == 0
    assert "layer 0 (conv2d) spikes per sample" in capsys.readouterr().out
    assert main(["info", str(model)]) == 0
    assert "1x8x8 -> 4x8x8, k3 s1 p1" in capsys.readouterr().out
