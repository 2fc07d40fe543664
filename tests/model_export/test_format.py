"""Model file round trip (versions 1 and 2), and every kind of bad file ends in one clear UserError;
bad conv geometry is checked through `mintaccel info` (exit 2, one line naming the layer)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.model_export.format import load_model, save_model, to_manifest
from mintaccel.sim.reference import run
from tests.conftest import random_conv_model, random_model, random_spikes


def round_trip(path, model, seed):
    """Save and load `model`: the same manifest, arrays, and spikes and membranes of every layer and step."""
    save_model(model, path)
    back = load_model(path)
    assert to_manifest(back) == to_manifest(model)
    for a, b in zip(model.layers, back.layers):
        if hasattr(a, "weight"):
            assert np.array_equal(a.weight, b.weight)
            assert (a.bias is None and b.bias is None) or np.array_equal(a.bias, b.bias)
    x = random_spikes(seed, 4, model.timesteps, model.n_inputs)
    p, q = run(model, x), run(back, x)
    for u, v in zip(p.spikes + p.membranes, q.spikes + q.membranes):
        assert (u is None and v is None) or np.array_equal(u, v)
    return back


@pytest.mark.parametrize("seed", range(10))
def test_round_trip(tmp_path, seed):
    round_trip(tmp_path / "m.npz", random_model(seed), seed)


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
    (_set(["version"], 3), "unsupported format version 3 \\(this mintaccel reads versions 1, 2\\)"),
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


# ---------------------------------------------------------------- version 2: conv2d, pool, flatten

@pytest.mark.parametrize("seed", range(6))
def test_conv_round_trip(tmp_path, seed):
    model, path = random_conv_model(seed), tmp_path / "c.npz"
    back = round_trip(path, model, seed)
    assert to_manifest(model)["version"] == 2
    assert [l.kind for l in back.layers] == ["conv2d", "pool", "conv2d", "flatten", "dense"]
    assert back.input_shape == (1, 8, 8) and back.layers[2].input_max == model.layers[2].input_max
    with zipfile.ZipFile(path) as z:  # pools and flatten store no array
        assert z.namelist() == ["manifest.npy", "layer0.weight.npy", "layer2.weight.npy", "layer2.bias.npy",
                                "layer4.weight.npy"]


def test_dense_only_models_keep_version_1_bytes(tmp_path, shipped_model):
    """The shipped MLP loads and saves to exactly the bytes it shipped with."""
    from mintaccel.core.shipped import shipped_model_path
    save_model(shipped_model, tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == shipped_model_path().read_bytes()
    assert to_manifest(random_model(0))["version"] == 1 and "shape" not in to_manifest(random_model(0))["input"]


def test_conv_file_is_readable_without_mintaccel(tmp_path):
    save_model(random_conv_model(0), tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        manifest = json.loads(f["manifest"].tobytes())
        conv = manifest["layers"][0]
        w = f[conv["weight"]["array"]]
    assert manifest["input"]["shape"] == [1, 8, 8] and conv["in_shape"] == [1, 8, 8]
    assert w.dtype == np.int8 and w.shape == (conv["out_channels"], 1, conv["kernel"], conv["kernel"])


@pytest.fixture
def conv_file(tmp_path):
    path = tmp_path / "conv.npz"
    save_model(random_conv_model(1), path)  # 1x8x8 -c4k3p1-> 4x8x8 -pool2-> 4x4x4 -c6k3s2p1-> 6x2x2 -f-> 24 -> 5
    return path


def _arrays(name, fn):
    def edit(arrays):
        arrays[name] = fn(arrays[name])
    return edit


BAD_CONV = [  # (manifest edit, array edit, what the one line says)
    (_set(["layers", 0, "kernel"], 7), None, r"layers[0] (conv2d): array 'layer0.weight' has shape [4, 1, 3, 3], expected [4, 1, 7, 7]"),
    (_set(["layers", 0, "padding"], 3), None, "layers[0] (conv2d): conv2d padding must be in 0..2"),
    (_set(["layers", 2, "stride"], 3), None, "layers[2] (conv2d): conv2d stride must be 1 or 2, not 3"),
    (_set(["layers", 0, "in_shape"], [2, 8, 8]), None, "layers[0] (conv2d): array 'layer0.weight' has shape [4, 1, 3, 3], expected [4, 2, 3, 3]"),
    (_set(["layers", 0, "in_shape"], [1, 8]), None, "'layers[0].in_shape' must be [channels, height, width]"),
    (None, _arrays("layer0.weight", lambda w: w[:, :, :2, :2]), "has shape [4, 1, 2, 2], expected [4, 1, 3, 3]"),
    (None, _arrays("layer2.bias", lambda b: b[:3]), "layers[2] (conv2d): array 'layer2.bias' has shape [3], expected [6]"),
    (_set(["layers", 0, "padding"], 0), None, "layer 1 (pool) takes a 4x8x8 map but layer 0 (conv2d) gives 4x6x6"),
    (_set(["layers", 1, "in_shape"], [4, 1, 1]), None, "layers[1] (pool): pool window 2 x 2 is larger than its input 1 x 1"),
    (_set(["layers", 1, "op"], "avg"), None, "layers[1] (pool): pool op must be one of ('max', 'sum'), not 'avg'"),
    (_set(["layers", 1, "stride"], 8), None, "layers[1] (pool): pool stride must be in 1..7, not 8"),
    (_set(["layers", 3, "in_shape"], [6, 3, 3]), None, "layer 3 (flatten) takes a 6x3x3 map but layer 2 (conv2d) gives 6x2x2"),
    (_set(["layers", 4, "inputs"], 25), None, "array 'layer4.weight' has shape [5, 24], expected [5, 25]"),
    (_set(["input", "shape"], [1, 4, 16]), None, "input.shape is [1, 4, 16] but layer 0 (conv2d) takes [1, 8, 8]"),
    (_set(["input", "shape"], KeyError), None, "missing field 'input.shape'"),
    (_set(["version"], 1), None, "layers[0]: unsupported layer kind 'conv2d' in version 1 (supported: dense) "
                                 "(conv2d, pool and flatten need format version 2)"),
    (_set(["layers", 1, "kind"], "upsample"), None, "layers[1]: unsupported layer kind 'upsample' in version 2"),
]


def _edit_layers(fn):
    def edit(m):
        fn(m["layers"])
    return edit


BAD_CHAINS = [  # layer lists that do not chain, each made from the valid conv model
    (lambda ls: ls.insert(2, dict(ls[1])), "layer 2 (pool) takes a 4x8x8 map but layer 1 (pool) gives 4x4x4"),
    (lambda ls: ls.insert(2, {**ls[1], "in_shape": [4, 4, 4]}), "layer 2 (pool) follows a pool"),
    (lambda ls: ls.pop(3), "layer 3 (dense) follows a conv2d map: put a flatten layer between them"),
    (lambda ls: ls.__delitem__(slice(2, None)), "the last layer is a pool"),
    (lambda ls: ls.insert(0, {"kind": "flatten", "in_shape": [1, 8, 8]}), "layer 1 (conv2d) takes a 1x8x8 map but layer 0 (flatten) gives a vector of 64"),
]


def _info_error(capsys, path) -> str:
    from mintaccel.cli import main
    code = main(["info", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mintaccel: error: {path}: invalid model: "), err
    return err[0]


@pytest.mark.parametrize("edit, edit_arrays, message", BAD_CONV, ids=[m[:40] for *_, m in BAD_CONV])
def test_bad_conv_geometry_is_one_line_naming_the_layer(tmp_path, capsys, conv_file, edit, edit_arrays, message):
    bad = tmp_path / "bad.npz"
    rewrite(conv_file, bad, edit_manifest=edit, edit_arrays=edit_arrays)
    assert message in _info_error(capsys, bad)


@pytest.mark.parametrize("edit, message", BAD_CHAINS, ids=[m[:40] for _, m in BAD_CHAINS])
def test_bad_conv_chain_is_one_line_naming_the_layer(tmp_path, capsys, conv_file, edit, message):
    bad = tmp_path / "bad.npz"
    rewrite(conv_file, bad, edit_manifest=_edit_layers(edit))
    assert message in _info_error(capsys, bad)


def test_conv_kernel_larger_than_the_padded_input(tmp_path, capsys):
    """A 1x2x2 input: a 3x3 kernel without padding does not fit (the model cannot even be built, so the
    file is made by editing a valid one down to that input)."""
    from mintaccel.core.conv import Conv2dLayer
    from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat
    from mintaccel.core.conv import FlattenLayer
    fmt = WeightFormat("uniform", 2)
    conv = Conv2dLayer(np.ones((1, 1, 3, 3), np.int64), fmt, 2, 1, "hard", Leak("none"), in_shape=(1, 3, 3))
    model = IntModel((conv, FlattenLayer(conv.out_shape), DenseLayer(np.ones((2, 1), np.int64), fmt, 2, 1, "hard",
                                                                     Leak("none"))), 2)
    save_model(model, tmp_path / "ok.npz")
    bad = tmp_path / "bad.npz"

    def edit(m):
        m["input"]["shape"] = m["layers"][0]["in_shape"] = [1, 2, 2]
        m["input"]["size"] = 4
    rewrite(tmp_path / "ok.npz", bad, edit_manifest=edit)
    assert "layers[0] (conv2d): conv2d kernel 3 x 3 is larger than the padded input 2 x 2" in _info_error(capsys, bad)
