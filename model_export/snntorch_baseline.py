"""A plain snnTorch LIF network trained on mintaccel's own input spikes: the float model that the
NIR import is compared against (tests and benchmarks/nir_roundtrip.py)."""

from __future__ import annotations

import torch

from mintaccel.sim.encoding import rate_encode
from mintaccel.sim.reference import decode


def train_snntorch(split, hidden: int, epochs: int, timesteps: int, beta: float, reset: str, seed: int):
    """Train a 2-layer snn.Leaky network on the rate-encoded split; returns (net, test predictions, NIR graph).

    Per-neuron beta/threshold vectors: scalar ones make snnTorch's NIR export fail type inference.
    """
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(seed)
    xtr = torch.from_numpy(rate_encode(split.x_train, timesteps, split.levels)).float()
    xte = torch.from_numpy(rate_encode(split.x_test, timesteps, split.levels)).float()
    ytr = torch.from_numpy(split.y_train)

    def leaky(n):  # per-neuron vectors: scalar beta/threshold break snnTorch's NIR type inference
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True, reset_mechanism=reset)

    net = torch.nn.Sequential(torch.nn.Linear(split.n_inputs, hidden), leaky(hidden),
                              torch.nn.Linear(hidden, split.n_classes), leaky(split.n_classes))

    def counts(x):
        for m in net:
            if isinstance(m, snn.Leaky):
                m.reset_mem()
        return sum(net(x[:, t]) for t in range(x.shape[1]))

    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 64):
            idx = order[i:i + 64]
            loss = torch.nn.functional.cross_entropy(counts(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = decode(counts(xte).numpy())
    counts(xte[:1])
    for m in net:
        if isinstance(m, snn.Leaky):
            m.reset_mem()
    return net, pred, export_to_nir(net, torch.zeros(1, split.n_inputs), ignore_dims=[0])
