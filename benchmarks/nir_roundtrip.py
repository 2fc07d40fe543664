"""The snnTorch -> NIR -> mintaccel round trip: float accuracy, integer accuracy at 4/4 and 2/2 bits.

    python benchmarks/nir_roundtrip.py                      # digits, seeds 0 1 2
    python benchmarks/nir_roundtrip.py --seeds 0 --epochs 20 --json out.json

For each seed: train a 64-H-10 snn.Leaky network on the rate-encoded digits (the spike trains
mintaccel runs, T steps, beta 1 - 2^-3, reset to zero), export it with snnTorch's own NIR writer,
write and read it with nir, import it with `mintaccel import`'s code path, and score everything on the
digits test split. Integer accuracies come from the reference model (sim.reference).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.model_export.nir_import import ImportConfig, import_nir  # noqa: E402
from mintaccel.model_export.snntorch_baseline import train_snntorch  # noqa: E402
from mintaccel.sim.encoding import rate_encode  # noqa: E402

#: (row label, import options): `--calibrate` searches the scales on the training part.
ROWS = (
    ("integer 4/4 (uniform:4 weights, 4-bit membranes), data-free scales", dict(weights=("uniform:4",), membrane=(4,))),
    ("integer 4/4, calibrated", dict(weights=("uniform:4",), membrane=(4,), calibrate=True)),
    ("integer 2/2 (ternary weights, 2-bit membranes), data-free scales", dict(weights=("uniform:2",), membrane=(2,))),
    ("integer 2/2, calibrated", dict(weights=("uniform:2",), membrane=(2,), calibrate=True)),
)


def one_seed(args, split, seed: int, folder: Path) -> dict:
    import nir
    start = time.perf_counter()
    _, pred, graph = train_snntorch(split, args.hidden, args.epochs, args.timesteps, args.beta, args.reset, seed)
    path = folder / f"snntorch-{seed}.nir"
    nir.write(path, graph)
    out = {"seed": seed, "snntorch float": float((pred == split.y_test).mean()),
           "train_seconds": round(time.perf_counter() - start, 2)}
    reset = "hard" if args.reset == "zero" else "soft"
    for label, opts in ROWS + _finetune_rows(args):
        r = import_nir(path, ImportConfig(timesteps=args.timesteps, reset=reset, seed=seed, **opts), split)
        out.setdefault("NIR float (forward Euler at dt = 1e-4)", r.figures["float_accuracy"])
        out[label] = r.figures["test_accuracy"]
        out.setdefault("_simulated", {})[label] = simulate_imported(r.model, split)
    return out


def simulate_imported(model, split) -> dict:
    """The imported model through the cycle-accurate simulator (default build, 48 MHz)."""
    from mintaccel.sim.cycle import summary
    x = rate_encode(split.x_test, model.timesteps, split.levels)
    s = summary(model, x, split.y_test, 48.0)
    return {k: s[k] for k in ("accuracy", "cycles_per_inference", "latency_us", "energy_compute_pj",
                              "energy_total_pj")}


def _finetune_rows(args):
    if not args.finetune:
        return ()
    return ((f"integer 2/2, calibrated + {args.finetune} epochs QAT",
             dict(weights=("uniform:2",), membrane=(2,), calibrate=True, finetune_epochs=args.finetune)),)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10, help="snnTorch training epochs")
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--beta", type=float, default=0.875)
    ap.add_argument("--reset", choices=("zero", "subtract"), default="zero", help="snnTorch reset mechanism")
    ap.add_argument("--finetune", type=int, default=5, metavar="EPOCHS", help="also report 2/2 + QAT (0: skip)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    split = datasets.digits()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one_seed(args, split, seed, Path(tmp)) for seed in args.seeds]
    labels = [k for k in runs[0] if k not in ("seed", "train_seconds", "_simulated")]
    command = "python benchmarks/nir_roundtrip.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    table = Table(title=f"snnTorch -> NIR -> mintaccel, {split.description}, test part "
                        f"({len(split.y_test)} samples), {args.hidden} hidden, T = {args.timesteps}, "
                        f"beta {args.beta}, reset {args.reset}, {args.epochs} epochs", title_justify="left")
    table.add_column("model")
    for seed in args.seeds:
        table.add_column(f"seed {seed}", justify="right")
    table.add_column("mean", justify="right")
    summary = {}
    for label in labels:
        values = [r[label] for r in runs]
        summary[label] = statistics.mean(values)
        table.add_row(label, *(f"{100 * v:.2f}%" for v in values), f"{100 * summary[label]:.2f}%")
    console = Console(width=200)
    console.print(table)
    sim = Table(title=f"cycle-accurate simulation of the imported models (seed {args.seeds[0]}, 8 PEs, 48 MHz; "
                      "energy: 45 nm estimate)", title_justify="left")
    for col in ("model", "accuracy", "cycles / inference", "latency", "energy compute / with memory"):
        sim.add_column(col)
    for label, f in runs[0]["_simulated"].items():
        sim.add_row(label, f"{100 * f['accuracy']:.2f}%", f"{f['cycles_per_inference']:,.0f}",
                    f"{f['latency_us']:.1f} us", f"{f['energy_compute_pj'] / 1000:.3f} / {f['energy_total_pj'] / 1000:.3f} nJ")
    console.print(sim)
    console.print(f"command: {command.strip()}")
    if args.json:
        write_json(args.json, {"command": command.strip(), "config": vars(args), "split": split.description,
                               "runs": runs, "mean": summary})


if __name__ == "__main__":
    main()
