"""`mintaccel`: the one console command. User errors end in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from mintaccel import __version__
from mintaccel.core.errors import UserError


#: Modules with a `register(subparsers)` function, each adding subcommands (one module per subsystem).
PLUGINS: list[str] = [
    "mintaccel.cli.cmd_generate",
    "mintaccel.cli.cmd_nir",
    "mintaccel.cli.cmd_simulate",
    "mintaccel.cli.cmd_synth",
    "mintaccel.cli.cmd_regress",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        raise UserError(message if self.prog == "mintaccel" else f"{self.prog}: {message}")


def _json(p):
    p.add_argument("--json", metavar="PATH", help="also write the printed figures to this JSON file")


def build_parser() -> argparse.ArgumentParser:
    from mintaccel.cli import commands as c
    from mintaccel.model_export.datasets import DATASETS
    ap = _Parser(prog="mintaccel", description="Low-bit SNNs to verified, multiplier-less accelerators.")
    ap.add_argument("--version", action="version", version=f"mintaccel {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="the main job on the shipped model: accuracy, memory, cycles, energy, Verilog, area")
    p.set_defaults(func=c.cmd_demo)
    p.add_argument("--model", help="integer model file (default: the shipped digits model)")
    p.add_argument("--out", default="mintaccel-demo", help="folder for generated files (default ./mintaccel-demo)")
    p.add_argument("--clock", type=float, default=48.0, help="clock for latency figures, MHz (default 48)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route (about 2 min)")
    _json(p)

    p = sub.add_parser("train", help="quantization-aware training of a LIF network")
    p.set_defaults(func=c.cmd_train)
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", help="folder of MNIST IDX files (default ../shared/data/mnist-test)")
    p.add_argument("--hidden", type=int, nargs="*", default=[128], metavar="N", help="hidden layer sizes (default 128)")
    p.add_argument("--weights", nargs="+", default=["uniform:2"], metavar="FMT",
                   help="per layer or for all: float, uniform:B (2,3,4,8), pot:B (2,3,4), binary, sigmoid:uniform:2")
    p.add_argument("--membrane", nargs="+", default=["2"], metavar="FMT",
                   help="per layer or for all: bits (2,3,4,8), float, squat:B (training study only)")
    p.add_argument("--timesteps", "-T", type=int, default=8)
    p.add_argument("--reset", choices=("hard", "soft"), default="hard")
    p.add_argument("--leak", default="shift:1", help="none, shift:K (MINT u*2^-K) or decay:K (u - u*2^-K)")
    p.add_argument("--threshold", type=float, default=1.0, help="real threshold (integer = round(thr / scale))")
    p.add_argument("--bias", action="store_true", help="train an integer bias per neuron")
    p.add_argument("--bias-bits", type=int, default=8)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (fixed for bit-exact reproducibility)")
    p.add_argument("--float-baseline", action="store_true", help="also train the float SNN and report it")
    p.add_argument("-o", "--output", help="write a checkpoint (.pt, tensors and JSON only)")
    p.add_argument("--export", metavar="MODEL", help="write the integer model file")
    _json(p)

    p = sub.add_parser("export", help="integer model file from a training checkpoint")
    p.set_defaults(func=c.cmd_export)
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="MODEL")
    _json(p)

    p = sub.add_parser("info", help="what a model file holds: layers, formats, memory footprint")
    p.set_defaults(func=c.cmd_info)
    p.add_argument("model")
    _json(p)

    p = sub.add_parser("encode", help="write a dataset's test part as input spikes (.npy uint8 [batch, T, inputs])")
    p.set_defaults(func=c.cmd_encode)
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=int, default=8)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--labels", metavar="PATH", help="also write the labels (.npy uint8)")

    p = sub.add_parser("run", help="run the integer reference model on input spikes")
    p.set_defaults(func=c.cmd_run)
    p.add_argument("model")
    p.add_argument("--input", help=".npy uint8 spikes [batch, T, inputs] (default: the dataset's test part)")
    p.add_argument("--labels", help=".npy labels for --input")
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir")
    _json(p)

    # Later subsystems register their subcommands here: module.register(sub) adds a parser with func=.
    for module in PLUGINS:
        importlib.import_module(module).register(sub)
    return ap


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        return args.func(args)
    except UserError as e:
        print(f"mintaccel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mintaccel: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"mintaccel: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


