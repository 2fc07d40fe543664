"""Running the float network exactly as NIR defines it (forward Euler at dt): the float reference."""

from __future__ import annotations

import numpy as np

from mintaccel.core.conv import PoolLayer, windows
from mintaccel.model_export.nir_import.net import FloatLayer, FloatNet


def simulate(net: FloatNet, spikes: np.ndarray, reset: str = "hard") -> np.ndarray:
    """Run the float network on spikes [batch, T, n_in]; returns the readout [batch, n_out].

    Spiking output: spike counts. LI/I output: the membrane summed over the T steps.
    `reset`: `hard` is NIR's reset to 0 (snnTorch `zero`); `soft` is snnTorch's `subtract`, which
    subtracts the threshold from the *next* step's membrane after the leak (mem = beta*mem + I - s*thr).
    Pools sum their window (an AvgPool2d's 1/K^2 is in the next layer's weights); Flatten changes nothing.
    """
    x = np.asarray(spikes, np.float64)
    batch, steps = x.shape[0], x.shape[1]
    v = [np.zeros((batch, l.n_out)) for l in net.layers]
    syn = [np.zeros((batch, l.n_out)) for l in net.layers]
    fired = [np.zeros((batch, l.n_out), bool) for l in net.layers]
    out = np.zeros((batch, net.n_outputs))
    for t in range(steps):
        s = x[:, t]
        for i, layer in enumerate(net.layers):
            if not isinstance(layer, FloatLayer):
                if layer.n_out != layer.n_in:  # a pool (a flatten is the identity)
                    s = PoolLayer("sum", layer.in_shape, layer.kernel, layer.stride).forward(s).astype(np.float64)
                continue
            cur = current(layer, s)
            if layer.alpha:
                syn[i] = layer.alpha * syn[i] + cur
                cur = syn[i]
            if not layer.spiking:
                v[i] = layer.beta * v[i] + cur
                s = v[i]
                continue
            if reset == "hard":
                v[i] = layer.beta * np.where(fired[i], 0.0, v[i]) + cur
            else:
                v[i] = layer.beta * v[i] + cur - fired[i]
            fired[i] = v[i] > 1.0
            s = fired[i].astype(np.float64)
        out += s
    return out


def current(layer: FloatLayer, s: np.ndarray) -> np.ndarray:
    """The synaptic input of one step, [batch, n_in] -> [batch, n_out] (float64; conv by im2col)."""
    if not layer.conv:
        cur = s @ layer.weight.T
        return cur if layer.bias is None else cur + layer.bias
    c_out, k = layer.weight.shape[0], layer.weight.shape[2]
    cols = windows(s, layer.in_shape, k, layer.stride, layer.padding).reshape(-1, len(s) * (layer.n_out // c_out))
    cur = (layer.weight.reshape(c_out, -1) @ cols).reshape(c_out, len(s), -1)
    if layer.bias is not None:
        cur = cur + layer.bias[:, None, None]
    return cur.transpose(1, 0, 2).reshape(len(s), -1)
