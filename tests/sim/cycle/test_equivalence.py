"""The simulated accelerator emits the reference model's spikes at every layer and time step."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.cli.commands import _dataset_inputs
from mintaccel.sim.cycle import simulate
from mintaccel.sim.reference import run
from tests.conftest import random_model, random_spikes


@pytest.mark.parametrize("seed", range(10))
def test_random_models_match_the_reference(seed):
    model = random_model(seed, sizes=(17, 12, 9, 5), timesteps=7)
    x = random_spikes(seed, 6, model.timesteps, model.n_inputs)
    ref = run(model, x)
    r = simulate(model, x, n_pe=1 + seed % 5, batch_size=4)  # several chunks
    assert len(r.spikes) == len(ref.spikes)
    for l, (a, b) in enumerate(zip(r.spikes, ref.spikes)):
        assert np.array_equal(a, b), f"layer {l}"
        assert np.array_equal(r.trace.membranes[l], ref.membranes[l]), f"layer {l}"
    assert np.array_equal(r.predictions, ref.predictions)


def test_shipped_model_matches_the_reference_on_the_digits_test_split(shipped_model):
    x, split = _dataset_inputs("digits", None, shipped_model)
    ref = run(shipped_model, x)
    r = simulate(shipped_model, x)
    for a, b in zip(r.spikes, ref.spikes):
        assert np.array_equal(a, b)
    assert float((r.predictions == split.y_test).mean()) > 0.9
    # E[l][t] is what the cycle counts derive from: input ones, then the previous layer's spikes
    assert np.array_equal(r.activity.events[:, :, 0], x.sum(axis=2))
    assert np.array_equal(r.activity.events[:, :, 1], ref.spikes[0].sum(axis=2))
