"""Accuracy and training time of the QAT schemes (issue 2's table), over several seeds.

    python benchmarks/qat_accuracy.py                     # digits, 5 schemes x 3 seeds
    python benchmarks/qat_accuracy.py --dataset mnist --schemes float uniform:2/2 --seeds 0
    python benchmarks/qat_accuracy.py --json out.json

Each row trains with `mintaccel train`'s code path; the exported integer model is re-run through the
reference model and its accuracy must equal the torch eval accuracy (asserted).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.model_export.qat import LayerSpec, TrainConfig  # noqa: E402
from mintaccel.model_export.train import train  # noqa: E402
from mintaccel.sim.encoding import rate_encode  # noqa: E402
from mintaccel.sim.reference import run_batched  # noqa: E402

SCHEMES = {
    "float": LayerSpec("float", "float"),
    "uniform:4/4": LayerSpec("uniform:4", "4"),
    "uniform:2/2": LayerSpec("uniform:2", "2"),
    "binary/2": LayerSpec("binary", "2"),
    "pot:3/2": LayerSpec("pot:3", "2"),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits", choices=datasets.DATASETS)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    console = Console()
    rows = []
    for name in args.schemes:
        accs, secs = [], []
        for seed in args.seeds:
            cfg = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, hidden=(args.hidden,),
                              layers=(SCHEMES[name],), timesteps=args.timesteps, epochs=args.epochs, seed=seed)
            r = train(cfg)
            if name != "float":
                split = datasets.load(args.dataset, args.data_dir)
                model = r.net.to_int_model(r.encoding)
                trace = run_batched(model, rate_encode(split.x_test, cfg.timesteps, split.levels))
                ref = float((trace.predictions == split.y_test).mean())
                assert ref == r.test_accuracy, f"reference {ref} != torch eval {r.test_accuracy}"
            accs.append(r.test_accuracy)
            secs.append(r.seconds)
            console.print(f"{name} seed {seed}: test {r.test_accuracy:.4f} in {r.seconds:.1f} s  ({r.split})")
        rows.append({"scheme": name, "seeds": args.seeds, "accuracies": accs,
                     "mean_accuracy": statistics.mean(accs), "mean_train_seconds": statistics.mean(secs)})
    table = Table(title=f"QAT on {args.dataset}: {args.hidden} hidden, T={args.timesteps}, {args.epochs} epochs")
    for col in ("scheme", "test accuracy (mean)", "per seed", "train s (mean)", "vs float"):
        table.add_column(col)
    base = next((r["mean_accuracy"] for r in rows if r["scheme"] == "float"), None)
    for r in rows:
        delta = "" if base is None else f"{100 * (r['mean_accuracy'] - base):+.2f} pts"
        table.add_row(r["scheme"], f"{100 * r['mean_accuracy']:.2f}%",
                      " ".join(f"{100 * a:.2f}" for a in r["accuracies"]), f"{r['mean_train_seconds']:.1f}", delta)
    console.print(table)
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "rows": rows})


if __name__ == "__main__":
    main()
