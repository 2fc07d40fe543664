"""`mintaccel import` and `mintaccel export-nir` as a user meets them: figures, --json, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from mintaccel.core.shipped import shipped_model_path
from mintaccel.model_export.format import load_model, save_model
from mintaccel.core.model import DenseLayer, Encoding, IntModel, Leak, WeightFormat

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "mintaccel"


def mintaccel(*args):
    cmd = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "mintaccel.cli"]
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def assert_one_line_error(result, match):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mintaccel: error:"), result.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def shipped_nir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "shipped.nir"
    r = mintaccel("export-nir", shipped_model_path(), "-o", path, "--json", path.with_suffix(".json"))
    assert r.returncode == 0, r.stderr
    return path


def lif_graph(path, **params):
    n = 3
    p = dict(tau=np.full(n, 8e-4), r=np.full(n, 8.0), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    p.update(params)
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([64])), "fc": nir.Linear(weight=np.ones((n, 64))),
                                "lif1": nir.LIF(**p), "output": nir.Output(np.array([n]))},
                         edges=[("input", "fc"), ("fc", "lif1"), ("lif1", "output")], type_check=False)
    nir.write(path, graph)
    return path


def test_export_nir_writes_a_graph_nir_reads(shipped_nir):
    g = nir.read(shipped_nir)
    model = load_model(shipped_model_path())
    assert g.nodes["fc0"].weight.shape == (128, 64) and g.nodes["fc1"].weight.shape == (10, 128)
    assert np.array_equal(g.nodes["fc0"].weight, (model.layers[0].weight * model.layers[0].scale).astype(np.float32))
    d = json.loads(shipped_nir.with_suffix(".json").read_text())
    assert [l["kind"] for l in d["layers"]] == ["LIF", "LIF"] and d["dt"] == 1e-4


def test_import_of_the_exported_shipped_model_is_the_same_model(shipped_nir, tmp_path):
    out, js = tmp_path / "m.npz", tmp_path / "m.json"
    r = mintaccel("import", shipped_nir, "-o", out, "--dataset", "digits", "--json", js)
    assert r.returncode == 0, r.stderr
    assert "integer accuracy (reference model)" in r.stdout and "float accuracy" in r.stdout
    a, b = load_model(shipped_model_path()), load_model(out)
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.weight, lb.weight) and (la.threshold, la.leak) == (lb.threshold, lb.leak)
    d = json.loads(js.read_text())
    assert d["test_accuracy"] > 0.9 and d["layers"][0]["weight"] == "uniform:2" and d["timesteps"] == 8


def test_import_with_calibration_and_formats(shipped_nir, tmp_path):
    out = tmp_path / "m.npz"
    r = mintaccel("import", shipped_nir, "-o", out, "--dataset", "digits", "--weights", "pot:3", "--membrane", "3",
                  "--calibrate", "--calibration-samples", "300", "--json", tmp_path / "j.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "j.json").read_text())
    assert d["calibration"]["data"].startswith("300 samples of the training part")
    assert all(l["weight"] == "pot:3" and l["membrane_bits"] == 3 for l in d["layers"])
    assert load_model(out).layers[0].weight_format == WeightFormat("pot", 3)


@pytest.mark.parametrize("make, args, match", [
    (lambda p: (p.write_text("not a graph"), p)[1], (), "not a NIR file"),
    (lambda p: p, (), "no such NIR file"),
    (lambda p: lif_graph(p, v_reset=np.full(3, 0.2)), (), "node 'lif1': v_reset is 0.2, not 0"),
    (lambda p: lif_graph(p, v_leak=np.full(3, 0.1)), (), "node 'lif1': v_leak is 0.1, not 0"),
    (lambda p: lif_graph(p), ("--weights", "uniform:5"), "uniform weights support bits"),
    (lambda p: lif_graph(p), ("--membrane", "4", "4"), "--membrane has 2 entries for 1 layers"),
    (lambda p: lif_graph(p), ("--dt", "-1"), "argument --dt: must be a positive finite number"),
])
def test_import_errors_are_one_line_and_write_nothing(tmp_path, make, args, match):
    graph = make(tmp_path / "g.nir")
    out = tmp_path / "out.npz"
    assert_one_line_error(mintaccel("import", graph, "-o", out, "--levels", "16", *args), match)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["g.nir"] if graph.exists() else [])


def test_import_refuses_unsupported_node_and_keeps_an_existing_output(tmp_path):
    nodes = {"input": nir.Input(np.array([1, 8, 8])),
             "conv": nir.Conv2d(input_shape=(8, 8), weight=np.ones((3, 1, 3, 3)), stride=1, padding=1, dilation=2,
                                groups=1, bias=np.zeros(3)),
             "lif": nir.LIF(tau=np.full(3, 8e-4), r=np.full(3, 8.0), v_leak=np.zeros(3), v_threshold=np.ones(3))}
    names = list(nodes)
    nir.write(tmp_path / "g.nir", nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False))
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous")
    assert_one_line_error(mintaccel("import", tmp_path / "g.nir", "-o", out, "--dataset", "digits"),
                          "node 'conv': dilation 2x2 is not supported")
    assert out.read_bytes() == b"previous"


def test_import_needs_an_encoding(tmp_path):
    assert_one_line_error(mintaccel("import", lif_graph(tmp_path / "g.nir"), "-o", tmp_path / "o.npz"),
                          "give --dataset (its pixel levels) or --levels P")
    assert_one_line_error(mintaccel("import", lif_graph(tmp_path / "g.nir"), "-o", tmp_path / "o.npz", "--calibrate",
                                    "--levels", "16"), "--calibrate and --finetune need data")


def test_export_nir_refuses_soft_reset(tmp_path):
    layer = DenseLayer(np.array([[1, -1]]), WeightFormat("uniform", 2), 2, 1, "soft", Leak("shift", 1), scale=0.5)
    save_model(IntModel((layer,), 4, Encoding("rate", 16)), tmp_path / "m.npz")
    r = mintaccel("export-nir", tmp_path / "m.npz", "-o", tmp_path / "m.nir")
    assert_one_line_error(r, "layer 0 uses a soft (subtract) reset, which NIR cannot express")
    assert not (tmp_path / "m.nir").exists()
    assert_one_line_error(mintaccel("export-nir", tmp_path / "absent.npz", "-o", tmp_path / "m.nir"), "no such model file")


def test_import_and_export_of_a_spikingjelly_conv_graph(tmp_path):
    """The committed SpikingJelly conv graph through both commands: a version-2 model file, the pools and
    flatten reported, and export-nir -> import giving back the same integer model."""
    fixture = ROOT / "tests/model_export/fixtures/spikingjelly_digits_conv.nir"
    r = mintaccel("import", fixture, "-o", tmp_path / "m.npz", "--dataset", "digits", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    assert "_2 (AvgPool2d -> sum pool 2x2, stride 2)" in r.stdout
    d = json.loads((tmp_path / "m.json").read_text())
    assert [l["layer"] for l in d["layers"]] == ["conv2d", "conv2d", "dense"]
    assert d["test_accuracy"] > 0.8 and d["float_accuracy"] > 0.85
    model = load_model(tmp_path / "m.npz")
    assert [l.kind for l in model.layers] == ["conv2d", "pool", "conv2d", "pool", "flatten", "dense"]
    r = mintaccel("export-nir", tmp_path / "m.npz", "-o", tmp_path / "e.nir")
    assert r.returncode == 0, r.stderr
    assert "pool1 (SumPool2d 2x2, stride 2)" in r.stdout
    r = mintaccel("import", tmp_path / "e.nir", "-o", tmp_path / "b.npz", "--levels", "16")
    assert r.returncode == 0, r.stderr
    back = load_model(tmp_path / "b.npz")
    for a, b in zip(model.layers, back.layers):
        assert a.kind == b.kind and (not hasattr(a, "weight") or np.array_equal(a.weight, b.weight))


def test_export_nir_refuses_a_max_pool_model(tmp_path):
    from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer
    neuron = dict(weight_format=WeightFormat("uniform", 2), membrane_bits=4, threshold=2, reset="hard",
                  leak=Leak("none"))
    model = IntModel((Conv2dLayer(weight=np.ones((2, 1, 3, 3), np.int64), in_shape=(1, 6, 6), **neuron),
                      PoolLayer("max", (2, 4, 4), 2), FlattenLayer((2, 2, 2)),
                      DenseLayer(weight=np.ones((3, 8), np.int64), **neuron)), 4, Encoding("rate", 16))
    save_model(model, tmp_path / "m.npz")
    assert_one_line_error(mintaccel("export-nir", tmp_path / "m.npz", "-o", tmp_path / "o.nir"),
                          "layer 1 is a max pool (the OR of spikes), which NIR cannot express")
    assert not (tmp_path / "o.nir").exists()
