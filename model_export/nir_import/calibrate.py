"""Calibration: a small deterministic search over the per-layer scales, scored on training data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mintaccel.core.model import THRESHOLD_MAX
from mintaccel.model_export.nir_import.net import FloatLayer, FloatNet
from mintaccel.model_export.nir_import.quantize import Choice, spiking_threshold


def candidates(layer: FloatLayer, start: Choice, steps: int = 8) -> list[Choice]:
    """Scales around `start` on a quarter-octave grid, nearest first (so ties keep the nearer one)."""
    out = []
    for i in sorted(range(-steps, steps + 1), key=lambda i: (abs(i), i)):
        s = start.scale * 2.0 ** (i / 4)
        if layer.spiking:
            theta = spiking_threshold(s)
            if theta <= THRESHOLD_MAX:
                out.append(Choice(s, theta))
        else:
            out.append(Choice(s, start.threshold))
    return out


@dataclass(frozen=True)
class Calibration:
    spikes: np.ndarray = field(repr=False)
    """Encoded calibration inputs uint8 [n, T, inputs]."""
    labels: np.ndarray = field(repr=False)
    float_predictions: np.ndarray = field(repr=False)
    description: str = ""


def calibrate(net: FloatNet, start: list[Choice], data: Calibration, build,
              passes: int = 2) -> tuple[list[Choice], tuple[float, float]]:
    """Coordinate search over the per-layer scales: keep a candidate only if it raises (accuracy on the
    calibration data, agreement with the float network). Deterministic: fixed candidate order."""
    from mintaccel.sim.reference import run_batched

    def score(choices):
        pred = run_batched(build(choices), data.spikes).predictions
        return float((pred == data.labels).mean()), float((pred == data.float_predictions).mean())

    choices, best = list(start), score(start)
    for _ in range(passes):
        changed = False
        for l, layer in enumerate(net.neuron_layers):
            for c in candidates(layer, choices[l]):
                trial = choices[:l] + [c] + choices[l + 1:]
                s = score(trial)
                if s > best:
                    choices, best, changed = trial, s, True
        if not changed:
            break
    return choices, best

