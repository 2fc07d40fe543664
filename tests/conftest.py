"""Shared fixtures. Every random draw in the tests is seeded; the seed is in the test id or printed."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from mintaccel.core.model import MEMBRANE_BITS, RESETS, DenseLayer, IntModel, Leak, WeightFormat


def random_layer(rng: np.random.Generator, n_in: int, n_out: int, fmt: WeightFormat, membrane_bits: int,
                 reset: str = "hard", leak: Leak = Leak("shift", 1), bias_bits: int = 0,
                 threshold: int | None = None) -> DenseLayer:
    weight = rng.choice(fmt.levels(), size=(n_out, n_in))
    bias = None
    if bias_bits:
        q = (1 << (bias_bits - 1)) - 1
        bias = rng.integers(-q, q + 1, size=n_out)
    if threshold is None:
        threshold = int(rng.integers(1, max(2, fmt.max_magnitude * 4)))
    return DenseLayer(weight=weight, weight_format=fmt, membrane_bits=membrane_bits, threshold=threshold,
                      reset=reset, leak=leak, bias=bias, bias_bits=bias_bits)


def random_model(seed: int, sizes=(12, 9, 5), timesteps: int = 6) -> IntModel:
    """A random network drawing every arithmetic option from `seed`."""
    rng = np.random.default_rng(seed)
    formats = WeightFormat.every()
    leaks = [Leak("none"), Leak("shift", 1), Leak("shift", 2), Leak("decay", 1), Leak("decay", 3)]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers.append(random_layer(
            rng, a, b, formats[rng.integers(len(formats))], int(rng.choice(MEMBRANE_BITS)),
            reset=str(rng.choice(RESETS)), leak=leaks[rng.integers(len(leaks))],
            bias_bits=int(rng.choice([0, 0, 4]))))
    return IntModel(tuple(layers), timesteps)


def random_conv_model(seed: int, in_shape=(1, 8, 8), classes: int = 5, timesteps: int = 4) -> IntModel:
    """A small random conv network (conv2d -> pool -> conv2d with bias, stride 2 -> flatten -> dense),
    its formats, membranes and pool op drawn from `seed`."""
    from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer
    rng = np.random.default_rng(seed)
    formats = WeightFormat.every()

    def conv(c_out, shape, stride, padding, bias_bits=0):
        fmt = formats[rng.integers(len(formats))]
        bias = rng.integers(-7, 8, size=c_out) if bias_bits else None
        return Conv2dLayer(rng.choice(fmt.levels(), size=(c_out, shape[0], 3, 3)), fmt,
                           int(rng.choice(MEMBRANE_BITS)), int(rng.integers(1, 4)), str(rng.choice(RESETS)),
                           Leak("shift", 1), bias, bias_bits, in_shape=shape, stride=stride, padding=padding)
    c1 = conv(4, in_shape, 1, 1)
    pool = PoolLayer(str(rng.choice(["max", "sum"])), c1.out_shape, 2)
    c2 = conv(6, pool.out_shape, 2, 1, bias_bits=4)
    flat = FlattenLayer(c2.out_shape)
    head = random_layer(rng, flat.n_out, classes, WeightFormat("uniform", 2), 2)
    return IntModel((c1, pool, c2, flat, head), timesteps)


def threshold_above_bound_model() -> IntModel:
    """docs/arithmetic.md section 3's case A = bitlength(theta) + 1 at its smallest: one layer 1 -> 1,
    uniform:2 weights, 2-bit membrane, B = 2 and theta = 4 (issue 10, defect 1)."""
    layer = DenseLayer(weight=np.array([[1]]), weight_format=WeightFormat("uniform", 2), membrane_bits=2,
                       threshold=4, reset="hard", leak=Leak("none"))
    return IntModel((layer,), 4)


def random_spikes(seed: int, batch: int, timesteps: int, n: int, density: float | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.9) if density is None else density
    return (rng.random((batch, timesteps, n)) < p).astype(np.uint8)


@pytest.fixture
def shipped_model():
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    return load_model(shipped_model_path())


def sigint_as_in_a_terminal():
    """`preexec_fn` of a child a test interrupts: its SIGINT as a terminal's foreground command has it,
    so a test run started in the background (whose shell ignores SIGINT, which children inherit) tests
    the same thing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
