"""A conv graph written by SpikingJelly's NIR exporter, imported and run on the digits test split: the float
NIR simulation against the integer model at 8/8, 4/4 and 2/2 bits (data-free, calibrated, fine-tuned).

    .venv/bin/python benchmarks/nir_spikingjelly_conv.py [--graph tests/model_export/fixtures/spikingjelly_digits_conv.nir]
                                                         [--finetune 5] [--json out.json]

The graph is the committed fixture (benchmarks/make_spikingjelly_fixture.py made it). Every integer accuracy
comes from the reference model (sim.reference); the fine-tuned models are checked against the torch eval
network inside `finetune`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.model_export import datasets  # noqa: E402
from mintaccel.model_export.nir_import import ImportConfig, import_nir  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests/model_export/fixtures/spikingjelly_digits_conv.nir"


def rows(finetune: int):
    for bits in (8, 4, 2):
        fmt = dict(weights=(f"uniform:{bits}",), membrane=(bits,))
        yield f"integer {bits}/{bits}, data-free scales", fmt
        yield f"integer {bits}/{bits}, calibrated", {**fmt, "calibrate": True}
        if finetune and bits < 8:
            yield f"integer {bits}/{bits}, calibrated + {finetune} epochs QAT", {**fmt, "calibrate": True,
                                                                                "finetune_epochs": finetune}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", type=Path, default=FIXTURE)
    ap.add_argument("--finetune", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    split = datasets.digits()
    print(f"{args.graph.name}: {split.description} (calibration and QAT seed {args.seed})")
    out = []
    for label, opts in rows(args.finetune):
        start = time.perf_counter()
        f = import_nir(args.graph, ImportConfig(seed=args.seed, **opts), split).figures
        out.append({"row": label, "float_accuracy": f["float_accuracy"], "test_accuracy": f["test_accuracy"],
                    "agreement_with_float": f["agreement_with_float"], "seconds": round(time.perf_counter() - start, 1)})
        print(f"{label:45s} float {f['float_accuracy']:.2%}  integer {f['test_accuracy']:.2%}  "
              f"agreement {f['agreement_with_float']:.2%}  ({out[-1]['seconds']} s)", flush=True)
    if args.json:
        write_json(args.json, {"graph": str(args.graph), "rows": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
