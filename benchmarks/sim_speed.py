"""Speed of the cycle-accurate simulator (sim/cycle/): simulated accelerator cycles per wall-clock second.

    python benchmarks/sim_speed.py                                # shipped model, digits test split
    python benchmarks/sim_speed.py --model m.npz                  # another digits model
    python benchmarks/sim_speed.py --mnist-model mnist.npz        # also the whole MNIST t10k (10,000 images)
    python benchmarks/sim_speed.py --json speed.json

`simulate` includes the reference model's arithmetic (sim/reference.py, which the simulator calls);
`accounting` is the cycle and event counting alone (sim.cycle.controller.account). Best of --repeat runs.
For comparison (docs/../shared/DESIGN.md): cocotb + Verilator about 50k cycles/s, Amaranth's simulator
15-157k cycles/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.table import Table  # noqa: E402

from mintaccel.core.hwconfig import HwConfig  # noqa: E402
from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.core.shipped import shipped_model_path  # noqa: E402
from mintaccel.cli.report import console  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.model_export.format import load_model  # noqa: E402
from mintaccel.sim.cycle.activity import activity  # noqa: E402
from mintaccel.sim.cycle.controller import account, simulate  # noqa: E402
from mintaccel.sim.encoding import rate_encode  # noqa: E402
from mintaccel.sim.reference import run_batched  # noqa: E402


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def measure(name: str, model, spikes, n_pe: int, repeat: int) -> dict:
    cfg = HwConfig.for_model(model, n_pe)
    seconds, result = best_of(repeat, lambda: simulate(model, spikes, cfg))
    trace = run_batched(model, spikes)
    acc_seconds, _ = best_of(repeat, lambda: account(activity(model, cfg, spikes, trace)))
    cycles = int(result.cycles.sum())
    return {"data": name, "samples": len(spikes), "n_pe": n_pe, "simulated_cycles": cycles,
            "cycles_per_inference": cycles / len(spikes), "simulate_seconds": seconds,
            "simulate_cycles_per_second": cycles / seconds, "accounting_seconds": acc_seconds,
            "accounting_cycles_per_second": cycles / acc_seconds}


def mnist_t10k(data_dir: Path | None, timesteps: int):
    folder = Path(data_dir) if data_dir else datasets.SHARED_MNIST
    path = next((folder / n for n in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz")
                 if (folder / n).is_file()), None)
    if path is None:
        raise SystemExit(f"no t10k-images-idx3-ubyte[.gz] in {folder}")
    images = datasets.read_idx(path)
    return rate_encode(images.reshape(len(images), -1), timesteps, 255)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="digits model (default: the shipped one)")
    ap.add_argument("--mnist-model", help="a 784-input MNIST model: also simulate the whole t10k set")
    ap.add_argument("--data-dir", help="folder of the MNIST IDX files (default ../shared/data/mnist-test)")
    ap.add_argument("--n-pe", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = []
    model = load_model(args.model or shipped_model_path())
    split = datasets.digits()
    rows.append(measure("digits test split", model, rate_encode(split.x_test, model.timesteps, split.levels),
                        args.n_pe, args.repeat))
    if args.mnist_model:
        mnist = load_model(args.mnist_model)
        rows.append(measure("MNIST t10k", mnist, mnist_t10k(args.data_dir, mnist.timesteps), args.n_pe, args.repeat))
    t = Table(title="cycle simulator speed (best of %d)" % args.repeat, title_justify="left")
    for c in ("data", "samples", "cycles / inference", "simulated cycles", "simulate", "cycles/s",
              "accounting only", "cycles/s"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r["data"], f"{r['samples']:,}", f"{r['cycles_per_inference']:,.0f}", f"{r['simulated_cycles']:,}",
                  f"{r['simulate_seconds'] * 1e3:,.1f} ms", f"{r['simulate_cycles_per_second']:,.0f}",
                  f"{r['accounting_seconds'] * 1e3:,.1f} ms", f"{r['accounting_cycles_per_second']:,.0f}")
    console.print(t)
    if args.json:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
