"""The accelerator's view of a conv network (mintaccel/core/hwlayer.py, docs/microarchitecture.md "Conv
networks"): the map layout, the map reader's walk, tap indices and the weight order, checked by running
the reader's walk word by word on random networks and comparing every neuron's synaptic input with the
reference model's."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.core.hwlayer import hw_layers, load_words
from mintaccel.sim.reference import run
from tests.conftest import random_conv_model, random_model, random_spikes
from tests.sim.cycle.test_controller import random_conv_net


def pack_map(values: np.ndarray, shape, n_pe: int) -> list[int]:
    """A flat (C, H, W) map as the accelerator stores it: word (y*W + x)*CB + b, channel b*n_pe + i in bit i."""
    c, h, w = shape
    cb = -(-c // n_pe)
    m = values.reshape(c, h, w)
    words = []
    for y in range(h):
        for x in range(w):
            for b in range(cb):
                words.append(sum(int(m[ch, y, x] > 0) << (ch - b * n_pe) for ch in range(b * n_pe, min(c, (b + 1) * n_pe))))
    return words


def reader_input(v, words: list[int]) -> np.ndarray:
    """Synaptic input I [C_out * positions] (model order) of layer view `v` from its stored input map
    `words`, walking the reader's words in the doc's order and adding `tap_weights` per event."""
    n = v.n_pe
    c, hi, wi = v.in_shape
    _, hp, wp = v.pooled_shape
    cb, kp, sp = v.in_blocks, v.pool_kernel, v.pool_stride
    weights = v.tap_weights()
    c_out, ho, wo = v.out_shape
    current = np.zeros((c_out, ho, wo), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            acc = np.zeros(c_out, np.int64) if v.layer.bias is None else v.layer.bias.copy()
            delivered = 0
            for ky in range(v.kernel[0]):
                for kx in range(v.kernel[1]):
                    py, px = oy * v.stride - v.padding + ky, ox * v.stride - v.padding + kx
                    for b in range(cb):
                        base = (ky * v.kernel[1] + kx) * c + b * n
                        inside = 0 <= py < hp and 0 <= px < wp
                        window = [words[((py * sp + wy) * wi + px * sp + wx) * cb + b] if inside else 0
                                  for wy in range(kp) for wx in range(kp)]
                        delivered += len(window)
                        seen = [0] if not window else ([_or(window)] if v.pool_op != "sum" else window)
                        for word in seen:
                            for i in range(n):
                                if word >> i & 1:
                                    acc += weights[:, base + i]
            assert delivered == v.reads
            current[:, oy, ox] = acc
    return current.reshape(-1)


def _or(words):
    out = 0
    for w in words:
        out |= w
    return out


@pytest.mark.parametrize("seed", range(24))
def test_the_reader_walk_gives_every_neurons_synaptic_input(seed):
    model = random_conv_net(seed) if seed % 3 else random_conv_model(seed)
    n_pe = [1, 2, 3, 4, 8][seed % 5]
    x = random_spikes(seed, 2, model.timesteps, model.n_inputs, density=0.4)
    trace = run(model, x)
    for v in hw_layers(model, n_pe):
        layer = v.layer
        before = [l for l in model.layers[:v.index] if l.kind != "flatten"]
        source = before[-1] if before and before[-1].kind == "pool" else None
        at = v.index if source is None else model.layers.index(source)  # the stored map feeds this model layer
        for b in range(2):
            for t in range(model.timesteps):
                stored = x[b, t] if at == 0 else trace.spikes[at - 1][b, t]
                reader_values = x[b, t] if v.index == 0 else trace.spikes[v.index - 1][b, t]
                expected = layer.synaptic_input(reader_values[None].astype(np.float32))[0]
                if not v.is_map:
                    words = [sum(int(stored[w * n_pe + i]) << i for i in range(min(n_pe, len(stored) - w * n_pe)))
                             for w in range(-(-len(stored) // n_pe))]
                else:
                    words = pack_map(stored, v.in_shape, n_pe)
                assert np.array_equal(reader_input(v, words), expected), (seed, v.index, b, t)


def test_views_of_the_chains():
    from mintaccel.core.conv import FlattenLayer
    from tests.conftest import random_layer
    from mintaccel.core.model import IntModel, WeightFormat
    conv = random_conv_model(3)  # conv -> pool -> conv (stride 2) -> flatten -> dense
    views = hw_layers(conv, 4)
    assert [v.index for v in views] == [0, 2, 4]
    first, second, head = views
    assert not first.from_host and first.is_map and load_words(views) == 64  # 8 x 8 positions x 1 block
    assert second.pool_kernel == 2 and second.pooled_shape == (4, 4, 4) and second.reads == 9 * 1 * 4
    assert head.kernel == (2, 2) and head.positions == 1 and head.fan_in == 24 and head.reads == 4 * 2
    lay = layout(conv, 4)
    assert lay.map_words == 64 and lay.load_words == 64  # the input map and the first conv's 8 x 8 x (4 ch)
    assert lay.groups == sum(v.out_words for v in views) and lay.weight_words == sum(v.groups * v.fan_in for v in views)
    assert HwConfig.for_model(conv, 4).max_map_words == lay.map_words
    # a flatten straight after the input: a dense network in hardware (the host streams the flat vector)
    flat = FlattenLayer((2, 3, 3))
    model = IntModel((flat, random_layer(np.random.default_rng(0), 18, 4, WeightFormat("uniform", 2), 2)), 2)
    (v,) = hw_layers(model, 4)
    assert v.from_host and not v.is_map and v.reads == 5 and layout(model, 4).map_words == 0
    # a dense network is laid out as it always was
    dense = random_model(1, sizes=(13, 9, 6))
    assert [(p.weight_base, p.membrane_base, p.groups, p.words) for p in layout(dense, 4).layers] == \
        [(0, 0, 3, 4), (3 * 13, 3, 2, 3)]
