"""Operation counts under the community's names (issue 10, defect 8): dense synaptic operations (input
spike x weight slot) and NeuroBench's effective ones (input spike x nonzero weight), checked against a
count made here from the reference model's spikes and the weight matrices, not the simulator's."""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.model_export import datasets
from mintaccel.sim.cycle import simulate
from mintaccel.sim.cycle.summary import check_labels, effective_sops, figures, summary
from mintaccel.sim.encoding import rate_encode
from mintaccel.sim.energy import estimate
from mintaccel.sim.reference import run
from tests.conftest import random_model, random_spikes


def spike_weight_pairs(model, spikes) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: (effective, dense) synaptic operations, counted pair by pair, one step and layer at a
    time: every input spike of a layer meets a column of its weight matrix."""
    trace = run(model, spikes)
    effective = np.zeros(len(spikes), np.int64)
    dense = np.zeros(len(spikes), np.int64)
    for l, layer in enumerate(model.layers):
        x = spikes if l == 0 else trace.spikes[l - 1]
        for b in range(len(spikes)):
            for t in range(model.timesteps):
                column = layer.weight[:, np.flatnonzero(x[b, t])]
                effective[b] += np.count_nonzero(column)
                dense[b] += column.size
    return effective, dense


def test_shipped_model_effective_sops(shipped_model):
    split = datasets.digits()
    x = rate_encode(split.x_test, shipped_model.timesteps, split.levels)
    result = simulate(shipped_model, x)
    effective, dense = spike_weight_pairs(shipped_model, x)
    assert np.array_equal(effective_sops(result), effective)
    assert np.array_equal(result.useful_sops, dense)
    est = estimate(result)
    s = figures(result, est, split.y_test, 48.0)
    assert s["effective_sops_per_inference"] == effective.mean()
    assert s["sops_per_inference"] == dense.mean()
    assert s["energy_per_effective_sop_compute_pj"] == est.compute_pj / effective.mean()
    assert s["energy_per_effective_sop_total_pj"] == est.total_pj / effective.mean()
    # a float figure computed in another order: equal up to rounding
    assert s["effective_sops_per_second"] == pytest.approx(effective.mean() / (s["latency_us"] * 1e-6), rel=1e-12)
    print(f"shipped model, {len(x)} digits test samples: dense {dense.mean():,.2f}, effective "
          f"{effective.mean():,.2f} ({dense.mean() - effective.mean():,.2f} add a zero weight), "
          f"{s['energy_per_effective_sop_compute_pj']:.4f} pJ per effective SOP (compute)")
    assert effective.mean() < dense.mean()  # 2-bit uniform weights: many are zero


@pytest.mark.parametrize("seed", range(6))
def test_random_models_effective_sops(seed):
    model = random_model(seed, sizes=(13, 11, 7, 5), timesteps=5)
    x = random_spikes(seed, 9, model.timesteps, 13)
    result = simulate(model, x, n_pe=4)
    effective, dense = spike_weight_pairs(model, x)
    assert np.array_equal(effective_sops(result), effective)
    assert np.array_equal(result.useful_sops, dense)
    assert summary(model, x, n_pe=4)["effective_sops_per_inference"] == effective.mean()


@pytest.mark.parametrize("labels, match", [
    (np.full(4, 10), r"classes 0\.\.9 .* found 10\.\.10"),
    (np.array([0, -1, 2, 3]), r"found -1\.\.3"),
    (np.array([0.0, 1.0, 2.0, 3.0]), "must be integers"),
    (np.zeros(3, np.int64), r"shaped \[4\]"),
])
def test_labels_outside_the_classes_are_refused(labels, match):
    from mintaccel.core.errors import UserError
    with pytest.raises(UserError, match=match):
        check_labels(labels, 4, 10)
    assert check_labels(np.array([0, 9, 3, 3]), 4, 10).tolist() == [0, 9, 3, 3]
