"""Block RAMs the membranes take at the model's bits and at 8 bits, from synthesis (no place and route).

    python benchmarks/membrane_memory.py                                        # shipped digits conv, UP5K
    python benchmarks/membrane_memory.py --model mnist-conv.npz --target ecp5-25f --json mem.json

Both builds are `HwConfig.for_model(model, --n-pe)`, the second with `membrane_bits=8` (the same network
with 8-bit membranes); the weights, events and map buffers are the same in both. Prints the memory table
of each (what synthesis mapped every memory to) and the block RAMs saved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.table import Table  # noqa: E402

from mintaccel.cli.report import console  # noqa: E402
from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.core.hwconfig import HwConfig  # noqa: E402
from mintaccel.core.shipped import shipped_model_path  # noqa: E402
from mintaccel.flows.flow import run_flow  # noqa: E402
from mintaccel.flows.targets import get_target  # noqa: E402
from mintaccel.model_export.format import load_model  # noqa: E402

BUILD = ROOT / "build" / "bench" / "membrane_memory"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(shipped_model_path("digits-conv-w2m2.npz")))
    ap.add_argument("--target", default="ice40-up5k")
    ap.add_argument("--n-pe", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    model, target = load_model(args.model), get_target(args.target)
    BUILD.mkdir(parents=True, exist_ok=True)
    builds = {"model's bits": HwConfig.for_model(model, args.n_pe),
              "8-bit membranes": HwConfig.for_model(model, args.n_pe, membrane_bits=8)}
    table = Table(title=f"{Path(args.model).name} on {target.name}, n_pe {args.n_pe}: primitives per memory",
                  title_justify="left")
    table.add_column("memory")
    rows, totals = {}, {}
    for name, cfg in builds.items():
        table.add_column(name, justify="right")
        rep = run_flow(cfg, model, target, BUILD / name.replace(" ", "-").replace("'", ""), breakdown=False, pnr=False)
        totals[name] = rep["synthesis"]["bram"] + rep["synthesis"].get("spram", 0)
        for m in rep["memories"]:
            rows.setdefault(m["memory"], {})[name] = f"{m['primitives']} {m['mapped_to']}" if m["primitives"] else m["mapped_to"]
    for memory, cells in sorted(rows.items()):
        table.add_row(memory, *(cells.get(n, "-") for n in builds))
    table.add_row("block RAM + SPRAM in all", *(str(totals[n]) for n in builds))
    console.print(table)
    saved = totals["8-bit membranes"] - totals["model's bits"]
    console.print(f"the model's membranes save {saved} of {totals['8-bit membranes']} block RAMs / SPRAMs")
    if args.json:
        write_json(args.json, {"model": args.model, "target": target.name, "n_pe": args.n_pe, "memories": rows,
                               "totals": totals, "saved": saved})


if __name__ == "__main__":
    main()
