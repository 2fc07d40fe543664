import numpy as np
import pytest

from mintaccel.core.model import DenseLayer, IntModel, Leak, ModelError, WeightFormat


def layer(**kw):
    args = dict(weight=np.zeros((2, 3), int), weight_format=WeightFormat("uniform", 2), membrane_bits=2,
                threshold=1, reset="hard", leak=Leak("shift", 1))
    args.update(kw)
    return DenseLayer(**args)


def test_weight_grids():
    assert WeightFormat("uniform", 2).levels().tolist() == [-1, 0, 1]
    assert WeightFormat("uniform", 4).levels().tolist() == list(range(-7, 8))
    assert WeightFormat("binary", 1).levels().tolist() == [-1, 1]
    assert WeightFormat("pot", 3).levels().tolist() == [-4, -2, -1, 0, 1, 2, 4]
    assert WeightFormat("pot", 4).max_magnitude == 64
    assert WeightFormat.parse("binary") == WeightFormat("binary", 1)


@pytest.mark.parametrize("kw, message", [
    ({"weight": np.full((2, 3), 2)}, "outside the uniform:2 grid"),
    ({"weight": np.zeros((2, 3))}, "integers"),
    ({"membrane_bits": 5}, "membrane bits"),
    ({"threshold": 0}, "threshold"),
    ({"reset": "zero"}, "reset"),
    ({"bias": np.array([1, 2]), "bias_bits": 2}, "bias value 2"),
    ({"bias": np.array([1, 1, 1]), "bias_bits": 2}, "shape"),
])
def test_layer_validation(kw, message):
    with pytest.raises(ModelError, match=message):
        layer(**kw)


def test_bad_formats_and_leaks():
    with pytest.raises(ModelError, match="uniform weights support bits"):
        WeightFormat("uniform", 5)
    with pytest.raises(ModelError, match="weight scheme"):
        WeightFormat.parse("ternary:2")
    with pytest.raises(ModelError, match="1..15"):
        Leak("decay", 0)
    with pytest.raises(ModelError, match="k = 0"):
        Leak("none", 2)


def test_layers_must_chain():
    with pytest.raises(ModelError, match="layer 0 has 2 outputs but layer 1 expects 4"):
        IntModel((layer(), layer(weight=np.zeros((2, 4), int))), 4)


def test_footprint_2_2_is_93_75_percent_smaller():
    fp = IntModel((layer(weight=np.zeros((128, 64), int)), layer(weight=np.zeros((10, 128), int))), 8).footprint_bits()
    assert fp["quantized"] == 2 * (64 * 128 + 128 * 10) + 2 * (128 + 10)
    assert fp["reduction"] == pytest.approx(0.9375, abs=1e-12)
