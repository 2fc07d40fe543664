"""The figures of one simulated batch as a flat dict (for `mintaccel simulate` and `mintaccel demo`)."""

from __future__ import annotations

import numpy as np

from mintaccel.core.errors import UserError
from mintaccel.sim.energy import EnergyEstimate, EnergyTable, estimate


def figures(result, est: EnergyEstimate, labels: np.ndarray | None, clock_mhz: float) -> dict:
    """Accuracy, cycles, latency, throughput and energy (estimate) per inference.

    Synaptic operations under the community's names: `sops_*` are dense SOPs, one per (input spike,
    weight slot) pair, zero weights included (E * n_out); `effective_sops_*` are NeuroBench's effective
    SOPs, one per (input spike, nonzero weight) pair: the PE additions that change an accumulator.
    `lane_ops` adds the padding lanes of the last neuron group to the dense count.
    """
    hz = clock_mhz * 1e6
    cycles = result.cycles
    mean_cycles = float(cycles.mean())
    latency = mean_cycles / hz
    sops = float(result.useful_sops.mean())
    effective = float(effective_sops(result).mean())
    lane_ops = float(result.lane_ops.mean())
    return {
        "samples": int(result.batch),
        "accuracy": None if labels is None else float((result.predictions == labels).mean()),
        "n_pe": result.cfg.n_pe,
        "clock_mhz": clock_mhz,
        "cycles_per_inference": mean_cycles,
        "cycles_min": int(cycles.min()),
        "cycles_max": int(cycles.max()),
        "stall_cycles_per_inference": float(result.stalls.total.mean()),
        "latency_us": latency * 1e6,
        "inferences_per_second": 1 / latency,
        "sops_per_inference": sops,
        "effective_sops_per_inference": effective,
        "lane_ops_per_inference": lane_ops,
        "pe_utilisation": sops / lane_ops if lane_ops else 0.0,
        "sops_per_second": sops / latency,
        "effective_sops_per_second": effective / latency,
        "energy_is_estimate": True,
        "energy_compute_pj": est.compute_pj,
        "energy_total_pj": est.total_pj,
        "energy_per_sop_compute_pj": est.per_sop(est.compute_pj),
        "energy_per_sop_total_pj": est.per_sop(est.total_pj),
        "energy_per_effective_sop_compute_pj": est.compute_pj / effective if effective else float("nan"),
        "energy_per_effective_sop_total_pj": est.total_pj / effective if effective else float("nan"),
        "vanilla_energy_compute_pj": est.vanilla_compute_pj,
        "vanilla_energy_total_pj": est.vanilla_total_pj,
        "mint_vs_vanilla_compute_ratio": est.compute_ratio,
        "mint_vs_vanilla_total_ratio": est.total_ratio,
        "energy_table": est.table.source,
    }


def effective_sops(result) -> np.ndarray:
    """int64 [B]: NeuroBench's effective synaptic operations per sample, (input spike, nonzero weight)
    pairs: the PE array's `additions` (docs/energy.md)."""
    return result.blocks["pe_array"].per_sample("additions")


def check_labels(labels, batch: int, n_classes: int | None = None) -> np.ndarray | None:
    """Labels for `batch` samples: integers, and classes of the model (0..n_classes-1) if it is given."""
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (batch,):
        raise UserError(f"labels must be shaped [{batch}], got {list(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"labels must be integers, got dtype {y.dtype}")
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        raise UserError(f"labels must be classes 0..{n_classes - 1} (the model has {n_classes} outputs), "
                        f"found {y.min()}..{y.max()}")
    return y


def summary(model, spikes, labels=None, clock_mhz: float = 48.0, *, n_pe: int = 8,
            table: EnergyTable | None = None, stall_model=None) -> dict:
    """Simulate `spikes` (uint8 [batch, T, inputs]) on the default build for `model` and summarise.

    Returns accuracy (None without labels), cycles and latency per inference, dense and effective
    synaptic operations (see `figures`), energy per inference (compute-only and with memory;
    estimates), energy per synaptic op and the MINT vs vanilla-uniform energy ratios. The host never stalls unless `stall_model` says so
    (sim/cycle/stalls.py).
    """
    from mintaccel.sim.cycle.controller import simulate
    if not (clock_mhz > 0 and np.isfinite(clock_mhz)):
        raise UserError(f"clock must be a positive number of MHz, not {clock_mhz}")
    if np.asarray(spikes).shape[:1] == (0,):
        raise UserError("input spikes hold no samples")
    y = check_labels(labels, len(spikes), model.n_outputs)
    result = simulate(model, spikes, n_pe=n_pe, stall_model=stall_model)
    return figures(result, estimate(result, table), y, clock_mhz)
