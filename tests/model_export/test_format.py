"""Model file round trip, and every kind of bad file ends in one clear UserError."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.model_export.format import load_model, save_model, to_manifest
from mintaccel.sim.reference import run
from tests.conftest import random_model, random_spikes


@pytest.mark.parametrize("seed", range(10))
def test_round_trip(tmp_path, seed):
    model = random_model(seed)
    path = tmp_path / "m.npz"
    save_model(model, path)
    back = load_model(path)
    assert to_manifest(back) == to_manifest(model)
    for a, b in zip(model.layers, back.layers):
        assert np.array_equal(a.weight, b.weight)
        assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)
    x = random_spikes(seed, 4, model.timesteps, model.n_inputs)
    assert all(np.array_equal(p, q) for p, q in zip(run(model, x).spikes, run(back, x).spikes))


def test_readable_without_mintaccel(shipped_model):
    """docs/model-format.md's recipe: numpy + json only."""
    from mintaccel.core.shipped import shipped_model_path
    with np.load(shipped_model_path(), allow_pickle=False) as f:
        manifest = json.loads(f["manifest"].tobytes())
        w0 = f[manifest["layers"][0]["weight"]["array"]]
    assert manifest["format"] == "mintaccel-model" and manifest["version"] == 1
    assert w0.shape == (128, 64) and set(np.unique(w0)) <= {-1, 0, 1}


def rewrite(src, dst, edit_manifest=None, edit_arrays=None):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    if edit_manifest:
        edit_manifest(manifest)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    if edit_arrays:
        edit_arrays(arrays)
    np.savez(dst, **arrays)


def _set(path, value):
    def edit(m):
        *keys, last = path
        d = m
        for k in keys:
            d = d[k]
        if value is KeyError:
            del d[last]
        else:
            d[last] = value
    return edit


BAD_MANIFESTS = [
    (_set(["version"], 2), "unsupported format version 2"),
    (_set(["format"], "other"), "expected 'mintaccel-model'"),
    (_set(["timesteps"], KeyError), "missing field 'manifest.timesteps'"),
    (_set(["timesteps"], "8"), "must be int"),
    (_set(["layers", 0, "threshold"], KeyError), r"missing field 'layers\[0\].threshold'"),
    (_set(["layers", 0, "threshold"], 0), "threshold must be in"),
    (_set(["layers", 0, "weight", "bits"], 5), "uniform weights support bits"),
    (_set(["layers", 0, "membrane", "bits"], 1), "membrane bits"),
    (_set(["layers", 0, "leak"], {"kind": "exp", "k": 1}), "leak kind"),
    (_set(["layers", 0, "kind"], "conv2d"), "unsupported layer kind 'conv2d'"),
    (_set(["layers", 0, "inputs"], 63), r"shape \[128, 64\], expected \[128, 63\]"),
    (_set(["layers", 1, "inputs"], 100), "shape"),
    (_set(["input", "size"], 65), "input.size is 65"),
    (_set(["input", "encoding", "kind"], "poisson"), "encoding must be 'rate'"),
    (_set(["readout"], {"kind": "membrane"}), "unsupported readout"),
    (_set(["layers", 0, "weight", "array"], "nope"), "refers to array 'nope'"),
    (_set(["layers"], []), "'layers' is empty"),
]


@pytest.mark.parametrize("edit, message", BAD_MANIFESTS)
def test_bad_manifest(tmp_path, edit, message):
    from mintaccel.core.shipped import shipped_model_path
    bad = tmp_path / "bad.npz"
    rewrite(shipped_model_path(), bad, edit_manifest=edit)
    with pytest.raises(UserError, match=message):
        load_model(bad)


def _weights(fn):
    def edit(arrays):
        arrays["layer0.weight"] = fn(arrays["layer0.weight"])
    return edit


@pytest.mark.parametrize("edit, message", [
    (_weights(lambda w: np.where(w == 1, 2, w).astype(np.int8)), r"outside the uniform:2 grid"),
    (_weights(lambda w: w.astype(np.float32)), "must hold integers"),
    (_weights(lambda w: w[:, :10]), "has shape"),
])
def test_bad_arrays(tmp_path, edit, message):
    from mintaccel.core.shipped import shipped_model_path
    bad = tmp_path / "bad.npz"
    rewrite(shipped_model_path(), bad, edit_arrays=edit)
    with pytest.raises(UserError, match=message):
        load_model(bad)


def test_truncated_missing_and_garbage_files(tmp_path):
    from mintaccel.core.shipped import shipped_model_path
    data = shipped_model_path().read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 5):
        (tmp_path / "t.npz").write_bytes(data[:n])
        with pytest.raises(UserError, match="not a readable mintaccel model file"):
            load_model(tmp_path / "t.npz")
    with pytest.raises(UserError, match="no such model file"):
        load_model(tmp_path / "absent.npz")
    (tmp_path / "j.npz").write_text("{}")
    with pytest.raises(UserError, match="not a readable"):
        load_model(tmp_path / "j.npz")
    np.savez(tmp_path / "nomanifest.npz", x=np.zeros(3))
    with pytest.raises(UserError, match="no 'manifest' entry"):
        load_model(tmp_path / "nomanifest.npz")
    np.savez(tmp_path / "badjson.npz", manifest=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(UserError, match="not valid JSON"):
        load_model(tmp_path / "badjson.npz")


def test_save_is_deterministic_and_atomic(tmp_path):
    model = random_model(3)
    save_model(model, tmp_path / "a.npz")
    save_model(model, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]  # no temporary left behind
    with zipfile.ZipFile(tmp_path / "a.npz") as z:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())


def test_members_are_named_after_their_arrays(tmp_path):
    """docs/model-format.md: the array `x` is the zip member `x.npy`."""
    from mintaccel.core.shipped import shipped_model_path
    with zipfile.ZipFile(shipped_model_path()) as z:
        assert z.namelist() == ["manifest.npy", "layer0.weight.npy", "layer1.weight.npy"]


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", ">i2", "uint8", "uint16", "uint64"])
def test_reader_accepts_any_integer_dtype(tmp_path, dtype):
    """Weights of any integer dtype load to the same values (unsigned ones hold |w|, still on the grid)."""
    from mintaccel.core.shipped import shipped_model_path
    with np.load(shipped_model_path()) as f:
        w = f["layer0.weight"].astype(np.int64)
    expected = np.abs(w) if dtype.startswith("uint") else w
    bad = tmp_path / "m.npz"
    rewrite(shipped_model_path(), bad, edit_arrays=_weights(lambda _: expected.astype(dtype)))
    assert np.array_equal(load_model(bad).layers[0].weight, expected)


def _biased_model(tmp_path):
    from mintaccel.core.model import IntModel, WeightFormat
    from tests.conftest import random_layer
    layer = random_layer(np.random.default_rng(0), 5, 4, WeightFormat("uniform", 2), 2, bias_bits=8)
    path = tmp_path / "biased.npz"
    save_model(IntModel((layer,), 4), path)
    return path


@pytest.mark.parametrize("bias, message", [
    (np.array([-128, 0, 1, 2], np.int8), r"bias value -128 is outside the 8-bit grid"),  # abs(-128) overflows in int8
    (np.array([200, 0, 1, 2], np.uint8), r"bias value 200 is outside"),
    (np.array([-2**63, 0, 1, 2], np.int64), r"is outside the 8-bit grid"),
    (np.array([127, -127, 0, 0], np.int32), None),
    (np.array([True, False, True, True]), "must hold integers, not bool"),
])
def test_bias_dtypes_and_grid(tmp_path, bias, message):
    src = _biased_model(tmp_path)
    path = tmp_path / "b.npz"

    def edit(arrays):
        arrays["layer0.bias"] = bias
    rewrite(src, path, edit_arrays=edit)
    if message is None:
        assert np.array_equal(load_model(path).layers[0].bias, bias)
    else:
        with pytest.raises(UserError, match=message):
            load_model(path)


def test_bool_weights_are_refused(tmp_path):
    from mintaccel.core.shipped import shipped_model_path
    bad = tmp_path / "bad.npz"
    rewrite(shipped_model_path(), bad, edit_arrays=_weights(lambda w: w != 0))
    with pytest.raises(UserError, match="must hold integers, not bool"):
        load_model(bad)


def test_optional_fields_load_when_absent(tmp_path):
    """`meta`, `scale` and `bias` may be absent: {} , None and no bias."""
    src = _biased_model(tmp_path)
    path = tmp_path / "m.npz"

    def edit(m):
        del m["meta"]
        del m["layers"][0]["scale"]
        del m["layers"][0]["bias"]
    rewrite(src, path, edit_manifest=edit)
    model = load_model(path)
    assert model.meta == {} and model.layers[0].scale is None and model.layers[0].bias is None
