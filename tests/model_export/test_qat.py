"""The quantized torch network in eval mode equals the integer reference model, exactly."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from mintaccel.model_export import datasets
from mintaccel.model_export.qat import LayerSpec, QuantSNN, TrainConfig
from mintaccel.model_export.train import encoded, train
from mintaccel.core.model import Encoding
from mintaccel.sim.reference import run
from tests.conftest import random_spikes

CASES = {
    "mint-2/2": TrainConfig(layers=(LayerSpec("uniform:2", "2"),)),
    "mint-4/4": TrainConfig(layers=(LayerSpec("uniform:4", "4"),)),
    "binary-sigmoid/2": TrainConfig(layers=(LayerSpec("binary", "2"),)),
    "ternary-sigmoid/3": TrainConfig(layers=(LayerSpec("sigmoid:uniform:2", "3"),)),
    "pot3/2": TrainConfig(layers=(LayerSpec("pot:3", "2"),)),
    "mixed-soft-decay-bias": TrainConfig(hidden=(40, 20), layers=(
        LayerSpec("pot:4", "8"), LayerSpec("uniform:8", "4"), LayerSpec("uniform:3", "2")),
        reset="soft", leak="decay:2", bias=True, bias_bits=6, timesteps=5),
    "no-leak": TrainConfig(hidden=(32,), leak="none", layers=(LayerSpec("uniform:3", "3"),)),
}


def torch_trace(net: QuantSNN, x: np.ndarray):
    with torch.no_grad():
        counts, spikes, mems = net.eval()(torch.from_numpy(x).float(), record=True)
    return counts.numpy(), [s.numpy() for s in spikes], [m.numpy() for m in mems]


@pytest.fixture(scope="module")
def trained():
    """Each case trained briefly (2 epochs): enough for non-trivial weights and thresholds."""
    return {name: train(TrainConfig(**{**cfg.__dict__, "epochs": 2})) for name, cfg in CASES.items()}


@pytest.mark.parametrize("name", CASES)
def test_eval_equals_reference_on_random_inputs(trained, name):
    result = trained[name]
    model = result.net.to_int_model(result.encoding)
    for seed in range(5):
        for density in (0.0, 0.1, 0.5, 1.0, None):
            x = random_spikes(seed, 24, model.timesteps, model.n_inputs, density)
            counts, spikes, mems = torch_trace(result.net, x)
            ref = run(model, x)
            for l in range(len(model.layers)):
                assert np.array_equal(ref.spikes[l], spikes[l]), f"{name} seed {seed} layer {l} spikes"
                assert np.array_equal(ref.membranes[l], mems[l]), f"{name} seed {seed} layer {l} membranes"
            assert np.array_equal(ref.counts, counts)


@pytest.mark.parametrize("name", CASES)
def test_eval_equals_reference_on_digits_test_split(trained, name):
    result = trained[name]
    model = result.net.to_int_model(result.encoding)
    _, xte = encoded(datasets.digits(), model.timesteps)
    x = xte.numpy().astype(np.uint8)
    counts, spikes, mems = torch_trace(result.net, x)
    ref = run(model, x)
    for l in range(len(model.layers)):
        assert np.array_equal(ref.spikes[l], spikes[l])
        assert np.array_equal(ref.membranes[l], mems[l])
    assert float((ref.predictions == datasets.digits().y_test).mean()) == result.test_accuracy


def test_float_and_squat_layers_are_not_exportable():
    from mintaccel.core.errors import UserError
    for spec in (LayerSpec("float", "float"), LayerSpec("uniform:2", "squat:2")):
        net = QuantSNN([64, 10], TrainConfig(layers=(spec,)))
        with pytest.raises(UserError, match="cannot export"):
            net.to_int_model(Encoding())


def test_squat_membranes_train():
    result = train(TrainConfig(layers=(LayerSpec("uniform:4", "squat:2"),), epochs=2))
    assert result.test_accuracy > 0.5


def _make_model_command(target: str = "model") -> list[str]:
    """The arguments after `mintaccel` in the Makefile's `target` recipe."""
    text = (Path(__file__).resolve().parents[2] / "Makefile").read_text().replace("\\\n", " ")
    recipe = text.split(f"\n{target}:", 1)[1].splitlines()[1]
    words = shlex.split(recipe)
    return words[next(i for i, w in enumerate(words) if w.endswith("/mintaccel")) + 1:]


def test_make_model_is_the_command_that_made_the_shipped_file(shipped_model):
    """`make model` runs the configuration the shipped file records, and writes that file."""
    from mintaccel.cli import build_parser
    from mintaccel.cli.commands import train_config
    from mintaccel.core.shipped import shipped_model_path
    args = build_parser().parse_args(_make_model_command())
    assert args.command == "train"
    assert train_config(args).to_json() == shipped_model.meta["trained_with"]
    assert args.float_baseline == ("float_baseline" in shipped_model.meta)
    assert (Path(__file__).resolve().parents[2] / args.export).resolve() == shipped_model_path().resolve()


def test_training_twice_in_one_process_gives_identical_bytes(tmp_path):
    """Float training is deterministic on one machine (across machines it is not: TOOLCHAIN pitfall 17)."""
    from mintaccel.cli import main
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        assert main(["train", "--hidden", "32", "--epochs", "2", "--export", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_shipped_model_reproduces_its_recorded_predictions(shipped_model):
    """What holds on any machine: the shipped integer model's predictions on the digits test split are
    the ones recorded when it was made, and so is its accuracy (integer arithmetic, no float)."""
    from mintaccel.model_export.train import predictions_digest
    from mintaccel.sim.encoding import rate_encode
    meta = shipped_model.meta
    split = datasets.digits()
    assert meta["split"] == split.description
    x = rate_encode(split.x_test, shipped_model.timesteps, shipped_model.encoding.levels)
    predictions = run(shipped_model, x).predictions
    assert predictions_digest(predictions) == meta["test_predictions_sha256"]
    assert float((predictions == split.y_test).mean()) == meta["test_accuracy"]
    made_with = meta["made_with"]
    assert {"python", "torch", "numpy", "scikit-learn", "torch_threads", "cpu_kernels"} <= set(made_with)
    assert made_with["torch_threads"] == meta["trained_with"]["threads"]
