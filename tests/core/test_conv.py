"""The conv IR (mintaccel/core/conv.py) and the chain rules of IntModel (docs/arithmetic.md section 7):
geometry, every refusal as one readable line, input_max from the chain, the footprint."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer, out_side
from mintaccel.core.hwconfig import HwConfig, check_fits
from mintaccel.core.errors import UserError
from mintaccel.core.model import DenseLayer, IntModel, Leak, ModelError, WeightFormat

U2 = WeightFormat("uniform", 2)


def conv(c_out, in_shape, k=3, stride=1, padding=1, fmt=U2, seed=0, **kw):
    rng = np.random.default_rng(seed)
    w = rng.choice(fmt.levels(), size=(c_out, in_shape[0], k, k))
    return Conv2dLayer(w, fmt, 2, 2, "hard", Leak("shift", 1), in_shape=in_shape, stride=stride,
                       padding=padding, **kw)


def dense(n_out, n_in, seed=0):
    rng = np.random.default_rng(seed)
    return DenseLayer(rng.choice(U2.levels(), size=(n_out, n_in)), U2, 2, 2, "hard", Leak("shift", 1))


@pytest.mark.parametrize("side, k, s, p, expected", [(8, 3, 1, 1, 8), (8, 3, 2, 1, 4), (28, 5, 1, 0, 24),
                                                    (7, 3, 2, 0, 3), (5, 5, 1, 0, 1), (4, 1, 2, 0, 2)])
def test_output_side(side, k, s, p, expected):
    assert out_side(side, k, s, p) == expected
    layer = conv(2, (1, side, side), k=k, stride=s, padding=p)
    assert layer.out_shape == (2, expected, expected)
    assert layer.n_out == 2 * expected * expected and layer.fan_in == k * k


@pytest.mark.parametrize("kwargs, message", [
    (dict(k=3, padding=0, in_shape=(1, 2, 2)), "larger than the padded input"),
    (dict(k=3, padding=3), "padding must be in 0..2"),
    (dict(k=3, stride=3), "stride must be 1 or 2"),
    (dict(k=8, padding=0, in_shape=(1, 9, 9)), "kernel must be 1..7"),
    (dict(in_shape=(1, 0, 4)), "height and width"),
    (dict(in_shape=(2, 4)), "three integers"),
])
def test_conv_geometry_refused(kwargs, message):
    in_shape = kwargs.pop("in_shape", (1, 4, 4))
    with pytest.raises(ModelError, match=message):
        conv(2, in_shape, **kwargs)


def test_conv_channel_mismatch_and_grid():
    w = np.zeros((2, 3, 3, 3), np.int64)
    with pytest.raises(ModelError, match="3 input channels but its input map has 1"):
        Conv2dLayer(w, U2, 2, 2, "hard", Leak("none"), in_shape=(1, 4, 4))
    w = np.zeros((2, 1, 3, 3), np.int64)
    w[1, 0, 2, 1] = 2
    with pytest.raises(ModelError, match=r"weight \[1,0,2,1\] = 2 is outside the uniform:2 grid"):
        Conv2dLayer(w, U2, 2, 2, "hard", Leak("none"), in_shape=(1, 4, 4))
    with pytest.raises(ModelError, match=r"bias must have shape \(2,\)"):
        Conv2dLayer(w * 0, U2, 2, 2, "hard", Leak("none"), np.zeros(32, np.int64), 4, in_shape=(1, 4, 4))


def test_pool_geometry():
    p = PoolLayer("max", (3, 8, 8), 2)
    assert (p.stride, p.out_shape, p.output_max) == (2, (3, 4, 4), 1)
    assert PoolLayer("sum", (1, 7, 7), 3, 2).out_shape == (1, 3, 3)
    assert PoolLayer("sum", (1, 8, 8), 3).output_max == 9
    with pytest.raises(ModelError, match="pool op must be one of"):
        PoolLayer("avg", (1, 8, 8), 2)
    with pytest.raises(ModelError, match="larger than its input"):
        PoolLayer("max", (1, 2, 2), 3)
    with pytest.raises(ModelError, match="pool stride must be in 1..7"):
        PoolLayer("max", (1, 8, 8), 2, 9)


def test_chain_rules_and_input_max():
    c1 = conv(4, (1, 8, 8))
    pool = PoolLayer("sum", c1.out_shape, 2)
    c2 = conv(6, pool.out_shape)
    flat = FlattenLayer(c2.out_shape)
    out = dense(10, flat.n_out)
    model = IntModel((c1, pool, c2, flat, out), 4)
    assert [l.kind for l in model.layers] == ["conv2d", "pool", "conv2d", "flatten", "dense"]
    assert model.layers[2].input_max == 4  # a 2x2 sum pool's count reaches the next conv
    # B = Q(m) + V * F * w_max: 1 + 4 * (4 * 9) * 1
    assert model.layers[2].bound == 1 + 4 * 36 * 1
    assert model.layers[0].input_max == 1 and model.layers[4].input_max == 1
    assert model.input_shape == (1, 8, 8) and not model.dense_only
    with pytest.raises(ModelError, match="put a flatten layer between"):
        IntModel((c1, pool, c2, dense(10, c2.n_out)), 4)
    with pytest.raises(ModelError, match="a pool's input must be spikes"):
        IntModel((c1, PoolLayer("max", c1.out_shape, 1), PoolLayer("max", c1.out_shape, 2),
                  FlattenLayer((4, 4, 4)), dense(10, 64)), 4)
    with pytest.raises(ModelError, match="the last layer is a flatten"):
        IntModel((c1, FlattenLayer(c1.out_shape)), 4)
    with pytest.raises(ModelError, match="takes a 4x8x8 map but layer 0 \\(dense\\) gives a vector of 256"):
        IntModel((dense(256, 64), conv(2, (4, 8, 8))), 4)
    with pytest.raises(ModelError, match="takes a 3x8x8 map but layer 0 \\(conv2d\\) gives 4x8x8"):
        IntModel((c1, conv(2, (3, 8, 8)), FlattenLayer((2, 8, 8)), dense(3, 128)), 4)


def test_footprint_counts_shared_weights_once():
    c1 = conv(8, (1, 8, 8))
    model = IntModel((c1, PoolLayer("max", c1.out_shape, 2), FlattenLayer((8, 4, 4)), dense(10, 128)), 8)
    fp = model.footprint_bits()
    assert fp["weights"] == (8 * 9 + 10 * 128) * 2
    assert fp["membranes"] == (8 * 64 + 10) * 2
    assert fp["fp32"] == 32 * (8 * 9 + 10 * 128 + 8 * 64 + 10)


def test_a_dense_build_has_no_map_buffers():
    c1 = conv(2, (1, 4, 4))
    model = IntModel((c1, FlattenLayer(c1.out_shape), dense(3, 32)), 4)
    assert HwConfig.for_model(model).max_map_words == 16  # the cycle simulator's build: 4x4 positions, one block
    with pytest.raises(UserError, match="feature maps need 16 words per map buffer > a dense build has no map buffers"):
        check_fits(model, HwConfig())
