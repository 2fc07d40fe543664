"""The console command as a user meets it: figures, --json twins, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mintaccel.core.shipped import shipped_model_path

ROOT = Path(__file__).resolve().parents[2]


def mintaccel(*args, cwd=None):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mintaccel.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=600)


def assert_one_line_error(result, match):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mintaccel: error:"), result.stderr
    assert match in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_prints_and_writes_json(tmp_path):
    r = mintaccel("demo", "--json", tmp_path / "demo.json", "--out", tmp_path / "demo", "--no-synth")
    assert r.returncode == 0, r.stderr
    assert "quantized accuracy" in r.stdout and "93.75%" in r.stdout
    d = json.loads((tmp_path / "demo.json").read_text())
    assert d["samples"] == 360 and d["quantized_accuracy"] > 0.9
    assert d["footprint_bits"]["reduction"] >= 0.9375
    assert d["cycle_accurate"]["accuracy"] == d["quantized_accuracy"]
    assert (tmp_path / "demo" / "rtl" / "mintaccel_top.v").is_file()
    # read as a newcomer: formats in words, SOP defined, which way the ratio is good
    assert "2-bit uniform weights, 2-bit membranes" in r.stdout and "uniform:2/2b" not in r.stdout
    assert "effective (NeuroBench: spike x nonzero weight)" in r.stdout and "pJ per effective SOP" in r.stdout
    assert "lower is better" in r.stdout and "48 MHz (the UP5K build's clock goal)" in r.stdout
    cyc = d["cycle_accurate"]
    assert cyc["effective_sops_per_inference"] < cyc["sops_per_inference"]


def test_demo_shows_a_conv_model_on_the_reference_model(tmp_path):
    """A random conv model (seed 1): its accuracy, memory split, cycle-simulator figures and Verilog next
    to the MLP; the MLP's rows stay."""
    from mintaccel.model_export.format import save_model
    from tests.conftest import random_conv_model
    conv = random_conv_model(1, classes=10)
    save_model(conv, tmp_path / "conv.npz")
    r = mintaccel("demo", "--conv-model", tmp_path / "conv.npz", "--json", tmp_path / "d.json",
                  "--out", tmp_path / "demo", "--no-synth")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "d.json").read_text())
    c, fp, fp8 = d["conv"], conv.footprint_bits(), conv.footprint_bits(membrane_bits=8)
    assert c["samples"] == 360 and 0 <= c["quantized_accuracy"] <= 1
    assert c["footprint_bits"] == fp and c["footprint_bits_8bit_membranes"] == fp8
    assert fp8["quantized"] > fp["quantized"] and fp8["weights"] == fp["weights"]
    assert f"{fp['weights']:,} / {fp['membranes']:,} bits" in r.stdout
    assert "1x8x8 -> conv2d 4x8x8 -> max pool 4x4x4 -> conv2d 6x2x2 -> flatten 24 -> dense 10" in r.stdout
    assert "conv on the cycle-accurate simulator" in r.stdout
    assert c["cycle_accurate"]["accuracy"] == c["quantized_accuracy"] and c["cycle_accurate"]["cycles_per_inference"] > 0
    assert Path(c["verilog"]).is_file() and "conv accelerator Verilog" in r.stdout
    assert "quantized accuracy" in r.stdout and "93.75%" in r.stdout and d["cycle_accurate"]["accuracy"] > 0.9
    assert_one_line_error(mintaccel("demo", "--model", tmp_path / "conv.npz", "--out", tmp_path / "d2", "--no-synth"),
                          "the demo's --model is its dense network")
    assert_one_line_error(mintaccel("demo", "--conv-model", shipped_model_path(), "--out", tmp_path / "d2"),
                          "has dense layers only: give it as --model")
    assert not (tmp_path / "d2").exists()


def test_info_shows_conv_geometry_and_8_bit_membranes(tmp_path):
    from mintaccel.model_export.format import save_model
    from tests.conftest import random_conv_model
    conv = random_conv_model(1)
    save_model(conv, tmp_path / "conv.npz")
    r = mintaccel("info", "conv.npz", "--json", "i.json", cwd=tmp_path)  # a short title: not wrapped
    assert r.returncode == 0, r.stderr
    for text in ("conv2d", "1x8x8 -> 4x8x8, k3 s1 p1", "4x8x8 -> 4x4x4, max k2 s2", "6x2x2 -> 24", "24 -> 5",
                 "same with 8-bit membranes", "reduction vs 8-bit membranes", "input 1x8x8 (64 values)"):
        assert text in r.stdout, text
    d = json.loads((tmp_path / "i.json").read_text())
    assert [l["kind"] for l in d["layers"]] == ["conv2d", "pool", "conv2d", "flatten", "dense"]
    assert d["input_shape"] == [1, 8, 8] and d["layers"][2]["padding"] == 1 and d["layers"][2]["stride"] == 2
    assert d["layers"][0]["footprint_bits"]["weights"] == 4 * 9 * conv.layers[0].weight_format.bits
    assert d["layers"][0]["footprint_bits"]["membranes"] == 4 * 8 * 8 * conv.layers[0].membrane_bits
    assert d["footprint_bits_8bit_membranes"]["membranes"] == 8 * (4 * 64 + 6 * 4 + 5)


def test_demo_help_gives_the_measured_synthesis_time():
    r = mintaccel("demo", "--help")
    assert "about 1 min; 2 the first time" in " ".join(r.stdout.split())


@pytest.mark.slow
def test_demo_with_synthesis_says_whether_the_clock_goal_is_met(tmp_path):
    out = Path("build") / "test-demo"  # YoWASP tools do not see /tmp (TOOLCHAIN.md pitfall 8)
    r = mintaccel("demo", "--out", out, "--json", tmp_path / "d.json")
    assert r.returncode == 0, r.stderr
    up5k = json.loads((tmp_path / "d.json").read_text())["ice40_up5k"]
    verdict = "met" if up5k["fmax_mhz"] >= 48 else "NOT met"
    assert f"the 48 MHz goal is {verdict}" in r.stdout
    assert f"latency per inference at the achieved {up5k['fmax_mhz']:.1f} MHz" in r.stdout
    assert up5k["goal_met"] == (verdict == "met")


def test_info_json(tmp_path):
    r = mintaccel("info", shipped_model_path(), "--json", tmp_path / "i.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "i.json").read_text())
    assert [l["outputs"] for l in d["layers"]] == [128, 10]
    assert d["layers"][0]["weight"] == "uniform:2" and d["timesteps"] == 8


def test_train_export_info_run(tmp_path):
    ckpt, model = tmp_path / "c.pt", tmp_path / "m.npz"
    r = mintaccel("train", "--epochs", "3", "--hidden", "32", "--weights", "pot:3", "--membrane", "3",
                  "-o", ckpt, "--export", model, "--json", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "t.json").read_text())["test_accuracy"] > 0.3
    r = mintaccel("export", ckpt, "-o", tmp_path / "m2.npz")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m2.npz").read_bytes()[:2] == b"PK"
    spikes = tmp_path / "x.npy"
    r = mintaccel("encode", "-T", "8", "-o", spikes, "--labels", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    assert np.load(spikes).shape == (360, 8, 64)
    r = mintaccel("run", model, "--input", spikes, "--labels", tmp_path / "y.npy", "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["samples"] == 360 and 0.3 < d["accuracy"] <= 1


def test_bad_inputs_give_one_line(tmp_path):
    assert_one_line_error(mintaccel("info", tmp_path / "absent.npz"), "no such model file")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04junk")
    assert_one_line_error(mintaccel("info", tmp_path / "junk.npz"), "not a readable mintaccel model file")
    assert_one_line_error(mintaccel("train", "--weights", "uniform:5"), "uniform weights support bits")
    assert_one_line_error(mintaccel("train", "--membrane", "7"), "membrane '7'")
    assert_one_line_error(mintaccel("train", "--leak", "decay:0"), "1..15")
    assert_one_line_error(mintaccel("nonsense"), "invalid choice")
    assert_one_line_error(mintaccel("train", "--dataset", "mnist", "--data-dir", tmp_path), "no t10k-images")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 4), np.uint8))
    assert_one_line_error(mintaccel("run", shipped_model_path(), "--input", tmp_path / "wrong.npy"), "shaped")
    (tmp_path / "ckpt.pt").write_bytes(b"not torch")
    assert_one_line_error(mintaccel("export", tmp_path / "ckpt.pt", "-o", tmp_path / "o.npz"), "not a readable")


def test_no_half_written_output(tmp_path):
    """A failing export leaves nothing behind; a missing output folder is a clear error."""
    (tmp_path / "ckpt.pt").write_bytes(b"not torch")
    mintaccel("export", tmp_path / "ckpt.pt", "-o", tmp_path / "o.npz")
    assert not (tmp_path / "o.npz").exists()
    assert_one_line_error(mintaccel("info", shipped_model_path(), "--json", tmp_path / "no" / "x.json"),
                          "does not exist")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_float_model_cannot_be_exported(tmp_path):
    r = mintaccel("train", "--epochs", "1", "--hidden", "8", "--weights", "float", "--membrane", "float",
                  "--export", tmp_path / "m.npz")
    assert_one_line_error(r, "cannot export: layer 0 is a float layer")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.slow
def test_mnist_784_128_10(tmp_path):
    """Issue 2's MNIST figures: float and 2/2-bit on the shared t10k split (8000 / 2000, seed 0)."""
    from mintaccel.model_export.datasets import SHARED_MNIST
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"MNIST test split not found at {SHARED_MNIST}")
    r = mintaccel("train", "--dataset", "mnist", "--float-baseline", "--threads", "2",
                  "--export", tmp_path / "mnist.npz", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "m.json").read_text())
    print(json.dumps(d, indent=1))
    assert d["test_accuracy"] > 0.9 and d["float_baseline"]["test_accuracy"] > 0.9
