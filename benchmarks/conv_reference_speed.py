"""Speed of the reference model (sim/reference.py) on an MNIST-size conv network, against torch's float conv2d.

    python benchmarks/conv_reference_speed.py                        # batch 256, T = 8, best of 3
    python benchmarks/conv_reference_speed.py --batch 64 --repeat 5 --json speed.json

The network is c16k5 -> p2 -> c32k5 -> p2 -> f10 (docs/arithmetic.md section 7) with seeded random
uniform:2 weights, 2-bit membranes, hard reset and shift leak; its input is the first --batch images of
the shared MNIST split, rate-coded (seeded random spikes at MNIST's mean rate when the files are absent).
The reference model runs with 1 and 2 BLAS threads; torch float32 does the same per-step work with
F.conv2d, max_pool2d and linear at 1 and 2 threads, and its "conv + LIF" column times only the two
convolutions and the elementwise LIF of the two conv layers. Every time is the best of --repeat, and the
ratios come from this one run.

Exactness: the reference's spikes and membranes of every layer are checked against an int64 numpy path
(a transcription of section 7 with no float at all) on --check-batch samples; a difference is an error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rich.table import Table  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mintaccel.cli.report import console  # noqa: E402
from mintaccel.core.conv import Conv2dLayer, FlattenLayer, PoolLayer  # noqa: E402
from mintaccel.core.errors import UserError  # noqa: E402
from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.sim.encoding import rate_encode  # noqa: E402
from mintaccel.sim.reference import run  # noqa: E402

MNIST_MEAN_RATE = 0.13
"""Mean pixel / 255 of MNIST: the spike rate of the random stand-in input."""


def network(seed: int, timesteps: int) -> IntModel:
    """c16k5 -> p2 -> c32k5 -> p2 -> f10 at uniform:2 / 2-bit membranes (thresholds give sparse spikes)."""
    rng = np.random.default_rng(seed)
    fmt, leak = WeightFormat("uniform", 2), Leak("shift", 1)

    def conv(channels, in_shape, threshold):
        w = rng.choice(fmt.levels(), size=(channels, in_shape[0], 5, 5))
        return Conv2dLayer(w, fmt, 2, threshold, "hard", leak, in_shape=in_shape, padding=2)

    c1 = conv(16, (1, 28, 28), 3)
    p1 = PoolLayer("max", c1.out_shape, 2)
    c2 = conv(32, p1.out_shape, 6)
    p2 = PoolLayer("max", c2.out_shape, 2)
    flat = FlattenLayer(p2.out_shape)
    out = DenseLayer(rng.choice(fmt.levels(), size=(10, flat.n_out)), fmt, 2, 4, "hard", leak)
    return IntModel((c1, p1, c2, p2, flat, out), timesteps)


def inputs(batch: int, timesteps: int, seed: int) -> tuple[np.ndarray, str]:
    try:
        split = datasets.mnist()
    except UserError:
        rng = np.random.default_rng(seed)
        return (rng.random((batch, timesteps, 784)) < MNIST_MEAN_RATE).astype(np.uint8), \
            f"random spikes at {MNIST_MEAN_RATE:.0%} (no MNIST files), seed {seed}"
    return rate_encode(split.x_test[:batch], timesteps, split.levels), f"MNIST test split, first {batch}, rate code"


def int64_run(model: IntModel, x: np.ndarray) -> tuple[list, list]:
    """Section 7 in int64 numpy, no float and no BLAS: spikes and membranes of every layer."""
    batch = len(x)
    u = [np.zeros((batch, l.n_out), np.int64) for l in model.layers]
    spikes = [[] for _ in model.layers]
    mems = [[] for _ in model.layers]
    for t in range(model.timesteps):
        s = x[:, t].astype(np.int64)
        for i, l in enumerate(model.layers):
            if l.kind == "flatten":
                pass
            elif l.kind == "pool":
                c, h, w = l.in_shape
                win = np.lib.stride_tricks.sliding_window_view(s.reshape(batch, c, h, w), (l.kernel, l.kernel), (2, 3))
                win = win[:, :, ::l.stride, ::l.stride]
                s = (win.max(axis=(4, 5)) if l.op == "max" else win.sum(axis=(4, 5))).reshape(batch, -1)
            else:
                if l.kind == "dense":
                    current = s @ l.weight.T
                else:
                    c, h, w = l.in_shape
                    p, k = l.padding, l.kernel
                    maps = np.pad(s.reshape(batch, c, h, w), ((0, 0), (0, 0), (p, p), (p, p)))
                    win = np.lib.stride_tricks.sliding_window_view(maps, (k, k), (2, 3))[:, :, ::l.stride, ::l.stride]
                    current = np.einsum("bcyxij,ocij->boyx", win, l.weight).reshape(batch, -1)
                if l.bias is not None:
                    current = current + np.repeat(l.bias, l.n_out // len(l.bias))
                h = u[i] + current
                fire = h >= l.threshold
                r = np.where(fire, 0 if l.reset == "hard" else h - l.threshold, h)
                sr = np.sign(r) * (np.abs(r) >> l.leak.k)  # trunc(r / 2^k)
                lk = {"none": r, "shift": sr, "decay": r - sr}[l.leak.kind]
                u[i] = np.clip(lk, -l.membrane_max, l.membrane_max)
                mems[i].append(u[i])
                s = fire.astype(np.int64)
            spikes[i].append(s)
    return [np.stack(s, axis=1) for s in spikes], [np.stack(m, axis=1) if m else None for m in mems]


def check_exact(model: IntModel, x: np.ndarray) -> None:
    trace = run(model, x)
    spikes, mems = int64_run(model, x)
    for i, layer in enumerate(model.layers):
        same = np.array_equal(trace.spikes[i], spikes[i]) and (
            trace.membranes[i] is None or np.array_equal(trace.membranes[i], mems[i]))
        if not same:
            raise SystemExit(f"layer {i} ({layer.kind}): the reference differs from the int64 path")


def torch_run(model: IntModel, x: torch.Tensor) -> tuple[float, float, list]:
    """The same network in torch float32, step by step (its hard reset and shift leak, no bias, max pools):
    (total seconds, conv + LIF seconds, spikes of every layer)."""
    timed, out = 0.0, [[] for _ in model.layers]
    weights = [torch.tensor(l.weight, dtype=torch.float32) if hasattr(l, "weight") else None for l in model.layers]
    u = [torch.zeros(len(x), l.n_out) for l in model.layers]
    t_all = time.perf_counter()
    for t in range(model.timesteps):
        s = x[:, t]
        for i, l in enumerate(model.layers):
            t0 = time.perf_counter()
            if l.kind == "conv2d":
                current = F.conv2d(s.view(-1, *l.in_shape), weights[i], stride=l.stride, padding=l.padding)
            elif l.kind == "dense":
                current = F.linear(s, weights[i])
            elif l.kind == "pool":
                s = F.max_pool2d(s.view(-1, *l.in_shape), l.kernel, l.stride).flatten(1)
            if l.kind in ("conv2d", "dense"):
                h = u[i] + current.flatten(1)
                fire = h >= l.threshold
                r = h.masked_fill(fire, 0.0)
                u[i] = torch.trunc(r / 2 ** l.leak.k).clamp_(-l.membrane_max, l.membrane_max)
                s = fire.float()
            if l.kind == "conv2d":
                timed += time.perf_counter() - t0
            out[i].append(s)
    return time.perf_counter() - t_all, timed, [torch.stack(o, 1).to(torch.uint8).numpy() for o in out]


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check-batch", type=int, default=8, help="samples checked against the int64 path")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    model = network(args.seed, args.timesteps)
    x, source = inputs(args.batch, args.timesteps, args.seed)
    console.print(f"network c16k5-p2-c32k5-p2-f10, uniform:2 / 2-bit, T = {args.timesteps}, batch {len(x)}; "
                  f"input: {source}; seed {args.seed}")
    check_exact(model, x[:args.check_batch])
    console.print(f"exact: the reference equals the int64 path on {min(args.check_batch, len(x))} samples "
                  "(spikes and membranes of every layer)")
    rows, trace, torch_spikes, torch_threads = [], None, None, torch.get_num_threads()
    xt = torch.from_numpy(x.astype(np.float32))
    for threads in (1, 2):
        with threadpool_limits(threads):
            seconds, trace = best_of(args.repeat, lambda: run(model, x))
        torch.set_num_threads(threads)
        with torch.no_grad():
            runs = [torch_run(model, xt) for _ in range(args.repeat)]
        torch_spikes = runs[-1][2]
        rows.append({"threads": threads, "reference_seconds": seconds, "torch_seconds": min(r[0] for r in runs),
                     "torch_conv_lif_seconds": min(r[1] for r in runs)})
    torch.set_num_threads(torch_threads)
    torch_same = all(np.array_equal(a, b) for a, b in zip(trace.spikes, torch_spikes))
    frames = len(x) * args.timesteps
    t = Table(title=f"reference model vs torch float32, {frames:,} frames, best of {args.repeat}", title_justify="left")
    for c in ("threads", "reference", "frames/s", "torch", "torch conv + LIF", "ref / torch", "ref / torch conv + LIF"):
        t.add_column(c, justify="right")
    for r in rows:
        r["reference_frames_per_second"] = frames / r["reference_seconds"]
        r["ratio_whole"] = r["reference_seconds"] / r["torch_seconds"]
        r["ratio_conv_lif"] = r["reference_seconds"] / r["torch_conv_lif_seconds"]
        t.add_row(str(r["threads"]), f"{r['reference_seconds'] * 1e3:,.0f} ms",
                  f"{r['reference_frames_per_second']:,.0f}", f"{r['torch_seconds'] * 1e3:,.0f} ms",
                  f"{r['torch_conv_lif_seconds'] * 1e3:,.0f} ms",
                  f"{r['ratio_whole']:.2f}x", f"{r['ratio_conv_lif']:.2f}x")
    console.print(t)
    console.print("threads: BLAS threads for the reference, torch.set_num_threads for torch. ref / torch: the "
                  "reference's whole network over torch's; ref / torch conv + LIF: over torch's two convolutions "
                  "and conv-layer LIF alone.")
    rates = ", ".join(f"{l.kind} {s.mean():.3f}" for l, s in zip(model.layers, trace.spikes))
    console.print(f"spike rates (pool: OR rate): {rates}")
    console.print(f"torch float32 gives the reference's spikes in every layer: {torch_same}")
    if args.json:
        write_json(args.json, {"batch": len(x), "timesteps": args.timesteps, "seed": args.seed, "input": source,
                               "exact": True, "torch_same_spikes": torch_same, "rows": rows})


if __name__ == "__main__":
    main()
