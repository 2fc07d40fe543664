"""Accuracy and training time of the QAT schemes (issue 2's table, issue 11's conv table), over seeds.

    python benchmarks/qat_accuracy.py                     # digits MLP, 5 schemes x 3 seeds
    python benchmarks/qat_accuracy.py --dataset mnist --schemes float uniform:2/2 --seeds 0
    python benchmarks/qat_accuracy.py --arch --threads 2  # the digits conv default (model_export/arch.py)
    python benchmarks/qat_accuracy.py --dataset mnist --arch --schemes float uniform:2/2 --seeds 0 --memory
    python benchmarks/qat_accuracy.py --json out.json

Each row trains with `mintaccel train`'s code path; the exported integer model is re-run through the
reference model and its accuracy must equal the torch eval accuracy (asserted). `--memory` also writes
each seed's first quantized model (`--out`, model file) and reports, from the file read back, the
membranes' share of all bits at 8-bit membranes and what the trained membrane width saves over 8 bits.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.core.model import NeuronLayer  # noqa: E402
from mintaccel.model_export import arch as arch_text  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.model_export.qat import OPTIONAL_FIELDS, LayerSpec, TrainConfig  # noqa: E402
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
#: Per-layer variants: the first neuron layer's format, then one for all the others.
FIRST_LAYER_SCHEMES = {
    "uniform:2/2,first:8/2": (LayerSpec("uniform:8", "2"), LayerSpec("uniform:2", "2")),
}


def layer_specs(name: str, neuron_layers: int) -> tuple[LayerSpec, ...]:
    if name in SCHEMES:
        return (SCHEMES[name],)
    first, rest = FIRST_LAYER_SCHEMES[name]
    return (first,) + (rest,) * (neuron_layers - 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits", choices=datasets.DATASETS)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES) + list(FIRST_LAYER_SCHEMES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--arch", nargs="?", const="default", default=None,
                    help="a conv network (mintaccel train --arch tokens); alone: the data set's default")
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--reset", default="hard")
    ap.add_argument("--leak", default="shift:1")
    ap.add_argument("--threshold", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--augment-shift", type=int, default=0, help="random training-image shifts of -K..K positions")
    ap.add_argument("--float-init-epochs", type=int, default=0, help="start from the float twin trained N epochs")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--distill", type=float, default=0.0, help="distillation weight from the float twin")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (training times are for this many)")
    ap.add_argument("--memory", action="store_true", help="memory split of the exported models (see above)")
    ap.add_argument("--out", default="build/qat_accuracy", help="folder for --memory's model files")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    arch = arch_text.DEFAULTS[args.dataset] if args.arch == "default" else args.arch or ""
    console = Console()
    split = datasets.load(args.dataset, args.data_dir)
    n_layers = arch_text.neuron_layers(arch_text.parse(arch)) if arch else 2
    rows, memory = [], {}
    for name in args.schemes:
        accs, secs = [], []
        for seed in args.seeds:
            cfg = TrainConfig(dataset=args.dataset, data_dir=args.data_dir, hidden=(args.hidden,), arch=arch,
                              layers=layer_specs(name, n_layers), timesteps=args.timesteps, reset=args.reset, leak=args.leak,
                              threshold=args.threshold, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=seed, threads=args.threads, augment_shift=args.augment_shift,
                              float_init_epochs=args.float_init_epochs, label_smoothing=args.label_smoothing,
                              weight_decay=args.weight_decay, distill=args.distill)
            r = train(cfg, split=split)
            if name != "float":
                model = r.net.to_int_model(r.encoding)
                trace = run_batched(model, rate_encode(split.x_test, cfg.timesteps, split.levels))
                ref = float((trace.predictions == split.y_test).mean())
                assert ref == r.test_accuracy, f"reference {ref} != torch eval {r.test_accuracy}"
                if args.memory and name not in memory:
                    memory[name] = memory_split(model, Path(args.out) / f"{args.dataset}-{re.sub('[^A-Za-z0-9]+', '-', name)}.npz")
            accs.append(r.test_accuracy)
            secs.append(r.seconds)
            console.print(f"{name} seed {seed}: test {r.test_accuracy:.4f} in {r.seconds:.1f} s  ({r.split})")
        rows.append({"scheme": name, "seeds": args.seeds, "accuracies": accs,
                     "mean_accuracy": statistics.mean(accs), "mean_train_seconds": statistics.mean(secs)})
    net = f"--arch {cfg.arch}" if arch else f"{args.hidden} hidden"
    table = Table(title=f"QAT on {args.dataset}: {net}, T={args.timesteps}, {args.reset} reset, leak {args.leak}, "
                        f"threshold {args.threshold}, lr {args.lr}, {args.epochs} epochs"
                        + "".join(f", {k} {v}" for k, v in cfg.to_json().items() if k in OPTIONAL_FIELDS)
                        + f", {args.threads} thread(s)")
    for col in ("scheme", "test accuracy (mean)", "per seed", "train s (mean)", "vs float"):
        table.add_column(col)
    base = next((r["mean_accuracy"] for r in rows if r["scheme"] == "float"), None)
    for r in rows:
        delta = "" if base is None else f"{100 * (r['mean_accuracy'] - base):+.2f} pts"
        table.add_row(r["scheme"], f"{100 * r['mean_accuracy']:.2f}%",
                      " ".join(f"{100 * a:.2f}" for a in r["accuracies"]), f"{r['mean_train_seconds']:.1f}", delta)
    console.print(table)
    for name, m in memory.items():
        console.print(f"{name} memory ({m['file']}): {m['bits']:,} bits; at 8-bit membranes {m['bits_at_8']:,}, "
                      f"of which membranes {100 * m['membrane_share_at_8']:.1f}%; the {name} membranes save "
                      f"{100 * m['saving_vs_8']:.1f}% of that")
    if args.json:
        write_json(args.json, {"dataset": args.dataset, "arch": arch, "rows": rows, "memory": memory,
                               "args": vars(args)})


def memory_split(model, path: Path) -> dict:
    """Write the model, read it back, and split its bits: weights and biases once, one membrane per neuron
    (per output position for conv), at its own membrane width and at 8 bits."""
    from mintaccel.model_export.format import load_model, save_model
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    fp = load_model(path).footprint_bits()
    neurons = sum(l.n_out for l in model.layers if isinstance(l, NeuronLayer))
    at_8 = fp["quantized"] - fp["membranes"] + 8 * neurons
    return {"file": str(path), "bits": fp["quantized"], "membrane_bits": fp["membranes"], "bits_at_8": at_8,
            "membrane_share_at_8": 8 * neurons / at_8, "saving_vs_8": 1 - fp["quantized"] / at_8}


if __name__ == "__main__":
    main()
