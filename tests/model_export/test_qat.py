"""The quantized torch network in eval mode equals the integer reference model, exactly."""

from __future__ import annotations

import hashlib

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


def test_shipped_model_retrains_bit_for_bit(tmp_path, shipped_model):
    """`make model` (mintaccel train --float-baseline --export ...) reproduces the shipped file exactly."""
    from mintaccel.cli import main
    from mintaccel.core.shipped import shipped_model_path
    out = tmp_path / "model.npz"
    assert main(["train", "--float-baseline", "--export", str(out)]) == 0
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(out) == digest(shipped_model_path())
