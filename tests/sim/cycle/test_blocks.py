"""Event counts of each block, by hand on docs/arithmetic.md's worked example (n_pe = 2)."""

from __future__ import annotations

import numpy as np

from mintaccel.sim.cycle import simulate
from mintaccel.sim.cycle.summary import summary


def counts(r, block, op):
    return int(r.blocks[block].per_sample(op)[0])


def test_worked_example_event_counts(worked):
    model, x, cfg = worked
    r = simulate(model, x, cfg)
    # E[t] = 2, 3, 1, 1 (7 events); G = 2 groups, W = 2 words, T = 4, n_pe = 2.
    # build: weight_bits 3, membrane_bits 3, bias_bits 2, max_inputs 3 -> 2-bit event indices
    assert counts(r, "weight_memory", "reads") == 14            # sum over events of G = 7 * 2
    assert int(r.blocks["weight_memory"].bits("reads")[0]) == 14 * 2 * 3
    assert counts(r, "weight_memory", "writes") == 0
    assert counts(r, "event_memory", "writes") == 7
    assert counts(r, "event_memory", "reads") == 7              # groups after the first: 7 * (2 - 1)
    assert int(r.blocks["event_memory"].bits("reads")[0]) == 7 * 2
    assert counts(r, "membrane_memory", "reads") == 2 * 3       # G * (T - 1): t = 0 reads zeros
    assert counts(r, "membrane_memory", "writes") == 2 * 4
    assert int(r.blocks["membrane_memory"].bits("writes")[0]) == 8 * 2 * 3
    assert counts(r, "bias_memory", "reads") == 2 * 4
    assert counts(r, "spike_buffer", "writes") == 8             # one spike word per group and step
    assert counts(r, "spike_buffer", "reads") == 8              # OUTPUT: G[L-1] = 2 words per step
    assert counts(r, "spike_encoder", "words") == 8
    assert counts(r, "spike_encoder", "events") == 7
    assert counts(r, "host_interface", "input_words") == 8
    assert counts(r, "host_interface", "output_words") == 8
    # PE array: 7 events x 2 groups x 2 lanes = 28 lane-ops; 7 events x 3 neurons = 21 useful;
    # no weight of the example is 0, so the 7 lane-ops on the padding lane (neuron 3) add zeros.
    assert counts(r, "pe_array", "lane_ops") == 28
    assert counts(r, "pe_array", "sops") == 21
    assert counts(r, "pe_array", "additions") == 21
    assert counts(r, "pe_array", "zero_additions") == 7
    # threshold unit: 2 groups x 2 lanes x 4 steps = 16 updates; hard reset, shift leak:
    # 2 additions (integrate, rounding), 1 shift, 3 comparisons (fire, clamp low, clamp high) each
    assert counts(r, "threshold_unit", "updates") == 16
    assert counts(r, "threshold_unit", "additions") == 32
    assert counts(r, "threshold_unit", "shifts") == 16
    assert counts(r, "threshold_unit", "comparisons") == 48
    assert counts(r, "threshold_unit", "spikes") == 3          # spike counts [2, 1, 0]
    # controller: one address addition per ACC cycle (14) and one base step per group (8)
    assert counts(r, "controller", "additions") == 22
    # busy cycles
    assert int(r.blocks["pe_array"].busy[0]) == 14
    assert int(r.blocks["threshold_unit"].busy[0]) == 8
    assert int(r.blocks["spike_encoder"].busy[0]) == 19  # W + E per step, + DONE 1 per step
    assert int(r.blocks["controller"].busy[0]) == 108  # every cycle of the run (no stalls)
    assert r.useful_sops.tolist() == [21] and r.lane_ops.tolist() == [28]


def test_padding_spikes_and_per_layer_counts(shipped_model):
    rng = np.random.default_rng(0)
    x = (rng.random((3, shipped_model.timesteps, 64)) < 0.3).astype(np.uint8)
    r = simulate(shipped_model, x, n_pe=8)
    w = r.blocks["weight_memory"].ops["reads"]                  # [B, L]
    assert np.array_equal(w[:, 0], x.sum(axis=(1, 2)) * 16)     # G[0] = 128 / 8
    assert np.array_equal(w[:, 1], r.spikes[0].sum(axis=(1, 2)) * 2)  # G[1] = ceil(10 / 8)
    sops = r.blocks["pe_array"].ops["sops"]
    assert np.array_equal(sops[:, 1], r.spikes[0].sum(axis=(1, 2)) * 10)


def test_summary_dict(shipped_model):
    rng = np.random.default_rng(1)
    x = (rng.random((4, shipped_model.timesteps, 64)) < 0.2).astype(np.uint8)
    r = simulate(shipped_model, x)
    s = summary(shipped_model, x, r.predictions, 48.0)
    assert s["accuracy"] == 1.0
    assert s["cycles_per_inference"] == float(r.cycles.mean())
    assert abs(s["latency_us"] - r.cycles.mean() / 48.0) < 1e-9
    assert s["energy_total_pj"] > s["energy_compute_pj"] > 0
    assert 0 < s["mint_vs_vanilla_compute_ratio"] < 1
    assert s["energy_is_estimate"] is True
    assert abs(s["energy_per_sop_compute_pj"] * s["sops_per_inference"] - s["energy_compute_pj"]) < 1e-6
    assert summary(shipped_model, x)["accuracy"] is None
