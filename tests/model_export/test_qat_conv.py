"""Conv networks on the integer track: in eval mode the torch network and the integer reference model give
the same spikes of every layer at every step, the same stored membranes and the same counts, exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mintaccel.core.errors import UserError
from mintaccel.core.model import Encoding
from mintaccel.model_export import datasets
from mintaccel.model_export.qat import LayerSpec, QuantSNN, TrainConfig
from mintaccel.model_export.qat_layers import exact_conv2d
from mintaccel.model_export.train import encoded, load_checkpoint, save_checkpoint, train
from mintaccel.sim.reference import run
from tests.conftest import random_spikes

# (input shape, TrainConfig): every weight scheme, both resets, every leak kind, bias, stride 2, padding 0,
# both pool kinds, a sum pool feeding a conv and a dense layer, per-layer formats.
CASES = {
    "mint-2/2-max-stride2-pad0": ((1, 8, 8), TrainConfig(
        arch="c4k3,p2,c6k3s2p0,f10", layers=(LayerSpec("uniform:2", "2"),))),
    "mint-4/4-sum-soft-decay-bias": ((2, 7, 7), TrainConfig(
        arch="c4k3,s2,c5k3,f10", layers=(LayerSpec("uniform:4", "4"),), reset="soft", leak="decay:2",
        bias=True, bias_bits=6, timesteps=5)),
    "binary/2-k5-no-leak": ((1, 8, 8), TrainConfig(
        arch="c4k5,p2,f16,f10", layers=(LayerSpec("binary", "2"),), leak="none", threshold=0.6)),
    "pot3/2-sum-into-dense": ((1, 8, 8), TrainConfig(
        arch="c3k3p0,s3,f10", layers=(LayerSpec("pot:3", "2"),))),
    "ternary-sigmoid/3-shift2": ((3, 6, 6), TrainConfig(
        arch="c5k2,p2s1,c4k3s2,f10", layers=(LayerSpec("sigmoid:uniform:2", "3"),), leak="shift:2",
        threshold=0.5)),
    "mixed-8/8-pool-first-bias": ((1, 9, 9), TrainConfig(
        arch="s3,c6k3p0,f12,f10", layers=(LayerSpec("uniform:8", "8"), LayerSpec("pot:4", "4"),
                                          LayerSpec("uniform:3", "2")), bias=True, bias_bits=8, reset="soft",
        threshold=0.7, timesteps=6)),
}


def torch_trace(net: QuantSNN, x: np.ndarray):
    with torch.no_grad():
        counts, spikes, mems = net.eval()(torch.from_numpy(x).float(), record=True)
    return counts.numpy(), [s.numpy() for s in spikes], [None if m is None else m.numpy() for m in mems]


def assert_same_trace(net: QuantSNN, model, x: np.ndarray, where: str):
    counts, spikes, mems = torch_trace(net, x)
    ref = run(model, x)
    for l in range(len(model.layers)):
        assert np.array_equal(ref.spikes[l], spikes[l]), f"{where}: layer {l} outputs"
        if ref.membranes[l] is None:
            assert mems[l] is None, f"{where}: layer {l} has no neurons"
        else:
            assert np.array_equal(ref.membranes[l], mems[l]), f"{where}: layer {l} membranes"
    assert np.array_equal(ref.counts, counts), where
    return ref


def random_net(name: str, seed: int) -> QuantSNN:
    shape, cfg = CASES[name]
    torch.manual_seed(seed)
    net = QuantSNN([int(np.prod(shape)), 10], cfg, shape)
    with torch.no_grad():  # spread the weights over more of each grid than the initialisation does
        for p in net.parameters():
            if p.ndim > 1:
                p.mul_(torch.empty_like(p).uniform_(0.5, 2.5))
    return net.eval()


@pytest.mark.parametrize("name", CASES)
def test_eval_equals_reference_on_random_conv_networks(name):
    for seed in range(3):
        net = random_net(name, seed)
        model = net.to_int_model(Encoding())
        active = np.zeros(len(model.layers), bool)
        for density in (0.0, 0.15, 0.5, 1.0, None):
            x = random_spikes(seed, 16, model.timesteps, model.n_inputs, density)
            ref = assert_same_trace(net, model, x, f"{name} seed {seed} density {density}")
            active |= np.array([s.any() for s in ref.spikes])
        # every layer fired somewhere, so the comparison covers real spikes and resets
        assert active.all(), f"{name} seed {seed}: silent layers {np.flatnonzero(~active)}"


def test_export_sets_geometry_and_input_max():
    net = random_net("mixed-8/8-pool-first-bias", 0)
    model = net.to_int_model(Encoding())
    assert [l.kind for l in model.layers] == ["pool", "conv2d", "flatten", "dense", "dense"]
    pool, conv = model.layers[:2]
    assert (pool.op, pool.in_shape, pool.kernel, pool.stride) == ("sum", (1, 9, 9), 3, 3)
    assert (conv.in_shape, conv.out_shape, conv.stride, conv.padding, conv.input_max) == ((1, 3, 3), (6, 1, 1), 1, 0, 9)
    assert conv.bound == conv.membrane_max + 9 * 9 * conv.weight_format.max_magnitude + 127
    assert model.layers[3].input_max == 1 and model.input_shape == (1, 9, 9)


def test_exact_conv2d_equals_an_integer_convolution():
    """The eval path's convolution against int64 numpy, on values whose sums need all 24 bits."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 50, (5, 3, 9, 9))
    w = rng.integers(-127, 128, (4, 3, 5, 5))
    b = rng.integers(-1000, 1000, 4)
    for stride, padding in ((1, 2), (2, 0), (2, 4)):
        got = exact_conv2d(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                           torch.tensor(b, dtype=torch.float32), stride, padding).numpy()
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        cols = np.lib.stride_tricks.sliding_window_view(xp, (5, 5), axis=(2, 3))[:, :, ::stride, ::stride]
        want = np.einsum("ncyxij,ocij->noyx", cols, w) + b[:, None, None]
        assert np.array_equal(got, want), (stride, padding)


@pytest.fixture(scope="module")
def trained():
    """Two conv nets trained briefly on the digits (a few epochs: non-trivial weights and thresholds)."""
    return {name: train(cfg) for name, cfg in {
        "2/2-max": TrainConfig(arch="c8k3,p2,c16k3,p2,f10", epochs=3),
        "pot3/2-sum-bias": TrainConfig(arch="c6k3,s2,f10", layers=(LayerSpec("pot:3", "2"),), bias=True,
                                       reset="soft", epochs=3),
    }.items()}


@pytest.mark.parametrize("name", ["2/2-max", "pot3/2-sum-bias"])
def test_eval_equals_reference_on_digits_test_split(trained, name):
    result = trained[name]
    model = result.net.to_int_model(result.encoding)
    split = datasets.digits()
    _, xte = encoded(split, model.timesteps)
    ref = assert_same_trace(result.net, model, xte.numpy().astype(np.uint8), name)
    assert float((ref.predictions == split.y_test).mean()) == result.test_accuracy


def test_checkpoint_round_trips_a_conv_network(trained, tmp_path):
    result = trained["pot3/2-sum-bias"]
    save_checkpoint(result, tmp_path / "c.pt")
    net, encoding = load_checkpoint(tmp_path / "c.pt")
    assert net.cfg == result.config and net.input_shape == (1, 8, 8) and encoding == result.encoding
    a, b = result.net.to_int_model(encoding), net.to_int_model(encoding)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.kind == lb.kind and la.n_out == lb.n_out
        if hasattr(la, "weight"):
            assert np.array_equal(la.weight, lb.weight) and la.threshold == lb.threshold


def test_float_and_squat_conv_layers_train_but_do_not_export():
    for spec in (LayerSpec("float", "float"), LayerSpec("uniform:2", "squat:2")):
        cfg = TrainConfig(arch="c8k3,p2,f10", layers=(spec,), epochs=3)
        result = train(cfg)
        assert result.test_accuracy > 0.5, spec  # chance is 0.1
        with pytest.raises(UserError, match="cannot export: layer 0"):
            result.net.to_int_model(Encoding())


def test_shifted_spike_trains_are_the_rate_code_of_the_shifted_images():
    """Augmentation moves the encoded trains; that equals encoding each image moved (zeros shifted in)."""
    from mintaccel.model_export.train import shifted
    from mintaccel.sim.encoding import rate_encode
    split = datasets.digits()
    pixels = split.x_train[:40]
    x = torch.from_numpy(rate_encode(pixels, 6, split.levels)).float()
    got = shifted(x, (1, 8, 8), 2, torch.Generator().manual_seed(5)).numpy()
    offsets = torch.randint(0, 5, (40, 2), generator=torch.Generator().manual_seed(5)).tolist()
    padded = np.pad(pixels.reshape(-1, 8, 8), ((0, 0), (2, 2), (2, 2)))
    moved = np.stack([p[dy:dy + 8, dx:dx + 8] for p, (dy, dx) in zip(padded, offsets)]).reshape(40, 64)
    assert len({tuple(o) for o in offsets}) > 5  # really different shifts
    assert np.array_equal(got, rate_encode(moved, 6, split.levels))


def test_training_options_are_recorded_only_when_on():
    """The options added after the first shipped models leave an older configuration's JSON unchanged."""
    from mintaccel.model_export.qat import OPTIONAL_FIELDS
    assert not OPTIONAL_FIELDS.keys() & TrainConfig().to_json().keys()
    cfg = TrainConfig(arch="c4k3,f10", augment_shift=1, float_init_epochs=2, label_smoothing=0.1,
                      weight_decay=1e-4, distill=0.5)
    assert {k: cfg.to_json()[k] for k in OPTIONAL_FIELDS} == {"augment_shift": 1, "float_init_epochs": 2,
                                                             "label_smoothing": 0.1, "weight_decay": 1e-4,
                                                             "distill": 0.5}
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    for bad in ({"augment_shift": -1}, {"float_init_epochs": -1}, {"label_smoothing": 1.0},
                {"weight_decay": -1.0}, {"weight_decay": float("nan")}, {"distill": 1.0},
                {"distill": 0.5}):  # (the last: no float twin to learn from)
        with pytest.raises(UserError):
            TrainConfig(**bad)


def test_float_init_augmented_training_stays_exact_and_reproducible():
    """A run with every new option on: eval equals the reference on the test split, twice the same bits."""
    cfg = TrainConfig(arch="c6k3,p2,f10", epochs=2, augment_shift=1, float_init_epochs=2, label_smoothing=0.1,
                      weight_decay=1e-4, distill=0.5, reset="soft", threshold=2.0)
    a, b = train(cfg), train(cfg)
    model = a.net.to_int_model(a.encoding)
    split = datasets.digits()
    _, xte = encoded(split, model.timesteps)
    ref = assert_same_trace(a.net, model, xte.numpy().astype(np.uint8), "all options")
    assert float((ref.predictions == split.y_test).mean()) == a.test_accuracy > 0.2  # chance is 0.1
    for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    # and the distillation term is in the loss: without it the same run ends elsewhere
    c = train(dataclasses.replace(cfg, distill=0.0))
    assert not all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), c.net.state_dict().values()))


def test_start_from_takes_the_float_twins_weights_and_rescales():
    cfg = TrainConfig(arch="c4k3,p2,f10")
    twin = QuantSNN([64, 10], TrainConfig(arch="c4k3,p2,f10", layers=(LayerSpec("float", "float"),)), (1, 8, 8))
    torch.manual_seed(3)
    net = QuantSNN([64, 10], cfg, (1, 8, 8))
    net.start_from(twin)
    for mine, theirs in ((net.layers[0], twin.layers[0]), (net.layers[-1], twin.layers[-1])):
        assert torch.equal(mine.synapse.weight, theirs.synapse.weight)
        assert mine.scale.item() == pytest.approx(mine.quantizer.init_scale(theirs.synapse.weight.detach()))


def test_augment_shift_needs_image_data():
    plain = datasets.Split("plain", 16, np.zeros((4, 3), np.uint8), np.arange(4) % 2, np.zeros((2, 3), np.uint8),
                           np.arange(2), "plain vectors")
    with pytest.raises(UserError, match="augment_shift needs image data"):
        train(TrainConfig(hidden=(4,), augment_shift=1, epochs=1), split=plain)


def test_conv_arch_needs_an_image_shape():
    with pytest.raises(UserError, match="needs image data"):
        QuantSNN([64, 10], TrainConfig(arch="c4k3,f10"))


# ---------------------------------------------------------------- the shipped conv model

CONV_MODEL = "digits-conv-w2m2.npz"


@pytest.fixture(scope="module")
def shipped_conv():
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    return load_model(shipped_model_path(CONV_MODEL))


def test_make_model_conv_is_the_command_that_made_the_shipped_conv_file(shipped_conv):
    """`make model-conv` runs the configuration the shipped conv file records, and writes that file."""
    from pathlib import Path

    from mintaccel.cli import build_parser
    from mintaccel.cli.commands import train_config
    from mintaccel.core.shipped import shipped_model_path
    from tests.model_export import test_qat
    args = build_parser().parse_args(test_qat._make_model_command("model-conv"))
    assert args.command == "train" and args.arch
    assert train_config(args).to_json() == shipped_conv.meta["trained_with"]
    assert args.float_baseline == ("float_baseline" in shipped_conv.meta)
    repo = Path(__file__).resolve().parents[2]
    assert (repo / args.export).resolve() == shipped_model_path(CONV_MODEL).resolve()


def test_shipped_conv_model_reproduces_its_recorded_predictions(shipped_conv):
    """On any machine: the integer predictions on the digits test split are the recorded ones."""
    from tests.model_export import test_qat
    assert {l.kind for l in shipped_conv.layers} >= {"conv2d", "pool", "flatten"}
    test_qat.test_shipped_model_reproduces_its_recorded_predictions(shipped_conv)


def test_training_a_conv_net_twice_in_one_process_gives_identical_bytes(tmp_path):
    from mintaccel.cli import main
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        assert main(["train", "--arch", "c4k3,p2,f10", "--epochs", "1", "--export", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_cli_export_of_a_conv_checkpoint(tmp_path):
    """`train -o` then `export`: the checkpoint gives the model `train --export` wrote."""
    from mintaccel.cli import main
    from mintaccel.model_export.format import load_model
    args = ["train", "--arch", "c4k3,s2,f10", "--weights", "pot:3", "uniform:3", "--membrane", "3", "2",
            "--epochs", "1"]
    assert main(args + ["-o", str(tmp_path / "c.pt"), "--export", str(tmp_path / "a.npz")]) == 0
    assert main(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "b.npz")]) == 0
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert [l.kind for l in a.layers] == [l.kind for l in b.layers] == ["conv2d", "pool", "flatten", "dense"]
    for la, lb in zip(a.neuron_layers, b.neuron_layers):
        assert np.array_equal(la.weight, lb.weight) and (la.threshold, la.weight_format) == (lb.threshold, lb.weight_format)
