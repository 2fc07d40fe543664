"""The integer reference model: docs/arithmetic.md in numpy, vectorized over a batch.

This module is the single source of arithmetic truth. The quantized torch model, the cycle-accurate
simulator and the RTL are all checked against `run`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mintaccel.core.errors import UserError
from mintaccel.core.model import DenseLayer, IntModel, Leak, NeuronLayer


@dataclass(frozen=True)
class Trace:
    """Everything an inference produced, for every layer and time step."""

    spikes: tuple[np.ndarray, ...]
    """Per layer: uint8 [batch, T, n_out], the layer's output at each time step (spikes; a sum pool's
    counts; a flatten's input)."""
    membranes: tuple[np.ndarray | None, ...]
    """Per layer: int8 [batch, T, n_out], the membrane written back at the end of each time step
    (None for pools and flatten, which have no neurons)."""

    @property
    def counts(self) -> np.ndarray:
        """Output spike counts, int64 [batch, n_outputs]."""
        return self.spikes[-1].sum(axis=1, dtype=np.int64)

    @property
    def predictions(self) -> np.ndarray:
        return decode(self.counts)


def decode(counts: np.ndarray) -> np.ndarray:
    """argmax of the spike counts, ties to the lowest index (np.argmax's rule)."""
    return np.argmax(counts, axis=-1)


def shift_toward_zero(r: np.ndarray, k: int) -> np.ndarray:
    """sr(R, k) = trunc(R / 2^k): the arithmetic shift right rounding toward zero.

    Computed as the hardware does, (R + (R < 0 ? 2^k - 1 : 0)) >> k (`r >> 63` is -1 for negatives).
    """
    r = np.asarray(r)
    out = r >> (8 * r.dtype.itemsize - 1)  # -1 for negatives, 0 otherwise; then in place (one temporary)
    out &= (1 << k) - 1
    out += r
    out >>= k
    return out


def leak(r: np.ndarray, spec: Leak) -> np.ndarray:
    """Step 5 of docs/arithmetic.md."""
    if spec.kind == "none":
        return r
    if spec.kind == "shift":
        return shift_toward_zero(r, spec.k)
    return r - shift_toward_zero(r, spec.k)


class BoundViolation(AssertionError):
    """|H| > B (docs/arithmetic.md section 3): a bug in the model's validation or in this module, which
    the accumulator width derived from B would turn into an overflow in hardware. Never a user error."""


def check_bound(layer: DenseLayer, h: np.ndarray) -> None:
    """Assert docs/arithmetic.md section 3's `|H| <= B` for one step (two reductions, no copy)."""
    if h.size and (h.max() > layer.bound or h.min() < -layer.bound):
        worst = int(h.max()) if h.max() > layer.bound else int(h.min())
        raise BoundViolation(f"H = {worst} is outside the layer bound B = {layer.bound}")


def neuron_step(layer: DenseLayer, u: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-6 for one layer and time step: (membrane, synaptic input) -> (spikes, new membrane)."""
    h = u + current
    check_bound(layer, h)
    spike = h >= layer.threshold
    if layer.reset == "hard":
        r = h * ~spike
    else:
        r = h - h.dtype.type(layer.threshold) * spike  # a scalar of h's dtype keeps int32 int32
    q = layer.membrane_max
    out = leak(r, layer.leak)
    np.minimum(out, q, out=out)
    np.maximum(out, -q, out=out)
    return spike, out


def check_input(model: IntModel, spikes: np.ndarray) -> np.ndarray:
    """Validate an input spike array [batch, T, inputs] of 0/1 against the model."""
    x = np.asarray(spikes)
    expected = (model.timesteps, model.n_inputs)
    if x.ndim != 3 or x.shape[1:] != expected:
        maps = f" ({'x'.join(map(str, model.input_shape))} maps in (C, H, W) order)" if len(model.input_shape) == 3 else ""
        raise UserError(f"input spikes must be shaped [batch, {expected[0]}, {expected[1]}]{maps} for this model, "
                        f"got {list(x.shape)}")
    if not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise UserError(f"input spikes must be uint8 0/1, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise UserError("input spikes must be 0 or 1")
    return x.astype(np.uint8)


def run(model: IntModel, spikes: np.ndarray) -> Trace:
    """Run the integer network on input spikes uint8 [batch, T, inputs]."""
    x = check_input(model, spikes)
    batch, steps = x.shape[0], model.timesteps
    neuron = [isinstance(l, NeuronLayer) for l in model.layers]
    out_spikes = [np.zeros((batch, steps, l.n_out), np.uint8) for l in model.layers]
    out_mem = [np.zeros((batch, steps, l.n_out), np.int8) if n else None for l, n in zip(model.layers, neuron)]
    # int32 holds every value of a layer whose bound is below 2^30 (all but absurd ones) and is faster
    u = [np.zeros((batch, l.n_out), np.int32 if l.bound < 2**30 else np.int64) if n else None
         for l, n in zip(model.layers, neuron)]
    # step-major float32 copy of the inputs: contiguous rows for the BLAS matmul of each step
    xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=np.float32)
    for t in range(steps):
        s = xt[t]
        for i, layer in enumerate(model.layers):
            if neuron[i]:
                spike, u[i] = neuron_step(layer, u[i], layer.synaptic_input(s).astype(u[i].dtype, copy=False))
                out_mem[i][:, t, :] = u[i]
            else:  # pool (OR / count of spikes) or flatten (the same data): no state
                spike = layer.forward(s)
            s = spike.astype(np.float32)
            out_spikes[i][:, t, :] = spike
    return Trace(tuple(out_spikes), tuple(out_mem))


def run_batched(model: IntModel, spikes: np.ndarray, batch_size: int = 2048, progress=None) -> Trace:
    """`run` in chunks (bounded memory for large inputs); `progress(n)` is called after each chunk."""
    x = check_input(model, spikes)
    parts = []
    for start in range(0, len(x), batch_size):
        parts.append(run(model, x[start:start + batch_size]))
        if progress:
            progress(min(batch_size, len(x) - start))
    if not parts:
        return run(model, x)
    n = len(model.layers)
    return Trace(
        tuple(np.concatenate([p.spikes[i] for p in parts]) for i in range(n)),
        tuple(None if parts[0].membranes[i] is None else np.concatenate([p.membranes[i] for p in parts])
              for i in range(n)),
    )
