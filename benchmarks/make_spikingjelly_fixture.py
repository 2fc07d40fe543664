"""Train a small SpikingJelly conv net on digits and export it with SpikingJelly's own NIR exporter:
the fixture tests/model_export/fixtures/spikingjelly_digits_conv.nir (tests import it without spikingjelly).

    .venv/bin/python benchmarks/make_spikingjelly_fixture.py [--epochs 25] [--seed 0] [-o PATH]

Needs spikingjelly 2.0 (`.venv/bin/pip install --no-deps spikingjelly loguru`). The net: Conv2d(1,4,3,p1)
-> LIF -> AvgPool2d(2) -> Conv2d(4,8,3,p1) -> LIF -> AvgPool2d(2) -> Flatten -> Linear(32,10) -> LIF,
fed the rate code mintaccel uses (T = 8), trained with SpikingJelly's surrogate gradient (seeded).
Float training is not bit-reproducible across machines: the tests check integers derived from the
committed file, never that this script reproduces its bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mintaccel.model_export import datasets
from mintaccel.sim.encoding import rate_encode

FIXTURE = Path(__file__).resolve().parents[1] / "tests/model_export/fixtures/spikingjelly_digits_conv.nir"
T = 8


def build():
    from spikingjelly.activation_based import layer, neuron, surrogate
    lif = lambda: neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate.ATan(),
                                 step_mode="m")
    return nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False, step_mode="m"), lif(), layer.AvgPool2d(2, step_mode="m"),
        layer.Conv2d(4, 8, 3, padding=1, bias=False, step_mode="m"), lif(), layer.AvgPool2d(2, step_mode="m"),
        layer.Flatten(step_mode="m"), layer.Linear(32, 10, bias=False, step_mode="m"), lif())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, default=FIXTURE)
    args = ap.parse_args(argv)
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.nir_exchange import export_to_nir
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    split = datasets.load("digits")
    print(f"seed {args.seed}, {args.epochs} epochs, T = {T}, {split.description}")
    enc = lambda x: torch.from_numpy(rate_encode(x, T, split.levels)).float().transpose(0, 1).reshape(T, -1, 1, 8, 8)
    xtr, xte = enc(split.x_train), enc(split.x_test)
    ytr = torch.from_numpy(split.y_train)
    net = build()
    with torch.no_grad():  # gain so that rate-coded digits reach the threshold at initialisation
        for m in net:
            if hasattr(m, "weight"):
                m.weight.mul_(6.0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        perm = torch.randperm(xtr.shape[1], generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            functional.reset_net(net)
            rate = net(xtr[:, idx]).mean(0)
            loss = nn.functional.cross_entropy(rate * 5.0, ytr[idx])  # spike rates as logits
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            functional.reset_net(net)
            acc = float((net(xte).sum(0).argmax(1).numpy() == split.y_test).mean())
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy (SpikingJelly, float) {acc:.4f}")
    functional.reset_net(net)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    import nir
    graph = export_to_nir(net, xte[:, :2])
    nir.write(args.output, graph, compression=None)  # half the size of gzip's chunked datasets for tiny arrays
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
