"""`mintaccel`: the one console command. User errors end in one line on stderr and exit status 2,
Ctrl-C in one line and exit status 130. Every output path (`output_option`) and every numeric range
(`integer`, `positive`) is checked while the arguments are parsed, before a command starts its work."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import signal
import sys
import warnings

from mintaccel import __version__
from mintaccel.core.errors import UserError
from mintaccel.core.files import check_output_file, check_output_folder, discard_temporaries
from mintaccel.core.model import LAYER_SIZE_MAX, TIMESTEPS_MAX

#: torch crashes (segfault) on absurd thread counts; no machine this runs on has more cores.
THREADS_MAX = 256
SEED_MAX = 2**63 - 1


#: Modules with a `register(subparsers)` function, each adding subcommands (one module per subsystem).
PLUGINS: list[str] = [
    "mintaccel.cli.cmd_generate",
    "mintaccel.cli.cmd_nir",
    "mintaccel.cli.cmd_simulate",
    "mintaccel.cli.cmd_synth",
    "mintaccel.cli.cmd_regress",
    "mintaccel.cli.cmd_search",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        raise UserError(message if self.prog == "mintaccel" else f"{self.prog}: {message}")


def integer(lo: int, hi: int | None = None):
    """argparse type: an integer in lo..hi (no upper end if hi is None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, not {value}" if hi is not None
                                             else f"must be at least {lo}, not {value}")
        return value
    return parse


def positive(text: str) -> float:
    """argparse type: a finite number > 0 (a clock, a learning rate, a time step)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text}")
    return value


def output_option(p, *flags, folder: bool = False, **kw):
    """Add an output path option. `main` checks it before the command runs: a missing or read-only
    folder, a folder given for a file, a file for a folder, a folder not written by mintaccel to replace."""
    action = p.add_argument(*flags, **kw)
    name = max(action.option_strings, key=len)
    p.set_defaults(outputs_=(*(p.get_default("outputs_") or ()), (action.dest, name, folder)))
    return action


def check_outputs(args) -> None:
    """Refuse, in one line, any output of `args` that could not be written once the work is done."""
    seen = {}
    for dest, name, folder in getattr(args, "outputs_", ()):
        path = getattr(args, dest)
        if path is None:
            continue
        if folder:
            check_output_folder(path, name)
        else:
            check_output_file(path, name)
        key = os.path.realpath(path)
        if key in seen:
            raise UserError(f"{seen[key]} and {name} name the same path {path}")
        seen[key] = name


def job_options(p, jobs_help: str) -> None:
    """The options of the commands whose work is many jobs on Ray (mintaccel.core.jobs, docs/jobs.md)."""
    p.add_argument("--jobs", type=integer(1, 4096), default=min(2, os.cpu_count() or 1), metavar="N",
                   help=f"{jobs_help} at once on this machine's Ray instance (default: min(2, CPUs)); "
                        "with --address: the cluster's CPUs")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="run on this Ray cluster (`ray start --head` prints it; default $RAY_ADDRESS, else "
                        "a local Ray instance started and stopped with the command)")
    p.add_argument("--fresh", action="store_true", help="ignore finished jobs of an earlier run and run all again")


def _json(p):
    output_option(p, "--json", metavar="PATH", help="also write the printed figures to this JSON file")


def training_options(p) -> None:
    """The training options `train` and `search` share (commands.train_config reads them)."""
    from mintaccel.model_export.datasets import DATASETS
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", help="folder of MNIST IDX files (default ../shared/data/mnist-test)")
    p.add_argument("--hidden", type=integer(1, LAYER_SIZE_MAX), nargs="*", default=None, metavar="N",
                   help="hidden layer sizes of the MLP (default 128)")
    p.add_argument("--arch", nargs="?", const="default", metavar="TOKENS",
                   help="a conv network instead of the MLP, e.g. c8k3,p2,c16k3,p2,f10: c<C>k<K>[s<S>][p<P>] conv, "
                        "p<K> max pool, s<K> sum pool, f<N> dense, the last f<classes>; alone: the data set's default")
    p.add_argument("--timesteps", "-T", type=integer(1, TIMESTEPS_MAX), default=8)
    p.add_argument("--reset", choices=("hard", "soft"), default="hard")
    p.add_argument("--leak", default="shift:1", help="none, shift:K (MINT u*2^-K) or decay:K (u - u*2^-K)")
    p.add_argument("--threshold", type=positive, default=1.0, help="real threshold (integer = round(thr / scale))")
    p.add_argument("--bias", action="store_true", help="train an integer bias per neuron")
    p.add_argument("--bias-bits", type=int, default=8)
    p.add_argument("--epochs", type=integer(1), default=30)
    p.add_argument("--batch-size", type=integer(1), default=64)
    p.add_argument("--lr", type=positive, default=5e-3)
    p.add_argument("--seed", type=integer(0, SEED_MAX), default=0)
    p.add_argument("--threads", type=integer(1, THREADS_MAX), default=1,
                   help="torch threads (fixed for bit-exact reproducibility)")
    p.add_argument("--augment-shift", type=integer(0, 3), default=0, metavar="K",
                   help="move each training image by a random -K..K positions (seeded; image data sets)")
    p.add_argument("--float-init-epochs", type=integer(0), default=0, metavar="N",
                   help="train the float twin N epochs first and start from its weights")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="of the cross-entropy, in [0, 1)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 weight decay")
    p.add_argument("--distill", type=float, default=0.0, metavar="A",
                   help="weight in [0, 1) of distillation from the float twin (needs --float-init-epochs)")


def build_parser() -> argparse.ArgumentParser:
    from mintaccel.cli import commands as c
    from mintaccel.model_export.datasets import DATASETS
    ap = _Parser(prog="mintaccel", description="Low-bit SNNs to verified, multiplier-less accelerators.")
    ap.add_argument("--version", action="version", version=f"mintaccel {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="the main job on the shipped model: accuracy, memory, cycles, energy, Verilog, area")
    p.set_defaults(func=c.cmd_demo)
    p.add_argument("--model", help="integer model file (default: the shipped digits model)")
    p.add_argument("--conv-model", metavar="MODEL",
                   help="conv model shown next to it on the reference model (default: the shipped digits conv model)")
    output_option(p, "--out", folder=True, default="mintaccel-demo",
                  help="folder for generated files, replaced whole (default ./mintaccel-demo)")
    p.add_argument("--clock", type=positive, default=48.0,
                   help="clock for latency figures, MHz (default 48, the iCE40 UP5K build's goal)")
    p.add_argument("--no-synth", action="store_true",
                   help="skip synthesis and place-and-route (about 1 min; 2 the first time, while the tools compile)")
    _json(p)

    p = sub.add_parser("train", help="quantization-aware training of a LIF network")
    p.set_defaults(func=c.cmd_train)
    training_options(p)
    p.add_argument("--weights", nargs="+", default=["uniform:2"], metavar="FMT",
                   help="per neuron layer or for all: float, uniform:B (2,3,4,8), pot:B (2,3,4), binary, sigmoid:uniform:2")
    p.add_argument("--membrane", nargs="+", default=["2"], metavar="FMT",
                   help="per neuron layer or for all: bits (2,3,4,8), float, squat:B (training study only)")
    p.add_argument("--float-baseline", action="store_true", help="also train the float SNN and report it")
    output_option(p, "-o", "--output", help="write a checkpoint (.pt, tensors and JSON only)")
    output_option(p, "--export", metavar="MODEL", help="write the integer model file")
    _json(p)

    p = sub.add_parser("export", help="integer model file from a training checkpoint")
    p.set_defaults(func=c.cmd_export)
    p.add_argument("checkpoint")
    output_option(p, "-o", "--output", required=True, metavar="MODEL")
    _json(p)

    p = sub.add_parser("info", help="what a model file holds: layers, formats, memory footprint")
    p.set_defaults(func=c.cmd_info)
    p.add_argument("model")
    _json(p)

    p = sub.add_parser("encode", help="write a dataset's test part as input spikes (.npy uint8 [batch, T, inputs])")
    p.set_defaults(func=c.cmd_encode)
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir")
    p.add_argument("--timesteps", "-T", type=integer(1, TIMESTEPS_MAX), default=8)
    output_option(p, "-o", "--output", required=True)
    output_option(p, "--labels", metavar="PATH", help="also write the labels (.npy uint8)")

    p = sub.add_parser("run", help="run the integer reference model on input spikes")
    p.set_defaults(func=c.cmd_run)
    p.add_argument("model")
    p.add_argument("--input", help=".npy uint8 spikes [batch, T, inputs] (default: the dataset's test part)")
    p.add_argument("--labels", help=".npy integer labels for --input (0 .. outputs - 1)")
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir")
    _json(p)

    # Later subsystems register their subcommands here: module.register(sub) adds a parser with func=.
    for module in PLUGINS:
        importlib.import_module(module).register(sub)
    return ap


def _quiet_unused_hardware() -> None:
    """A command stopped half-way through elaboration leaves Amaranth objects that warn "created but never
    used" when collected, after the one line. Amaranth silences them itself after an uncaught exception;
    do the same for the ones caught here."""
    hdl = sys.modules.get("amaranth.hdl")
    if hdl is not None:
        warnings.filterwarnings("ignore", category=hdl.UnusedElaboratable)


def main(argv=None) -> int:
    """Run the command `argv` (default: `sys.argv`, the console command) and return its exit status."""
    try:
        try:
            args = build_parser().parse_args(argv)
            if args.command is None:
                build_parser().print_help()
                return 2
            check_outputs(args)
            return args.func(args)
        except UserError as e:
            _quiet_unused_hardware()
            print(f"mintaccel: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            _quiet_unused_hardware()
            print(f"mintaccel: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
            return 1
    except KeyboardInterrupt:  # outputs are written under a temporary name: nothing half-written stays
        discard_temporaries()
        _quiet_unused_hardware()
        print("mintaccel: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            # The command is done and its outputs are in place; what is left is interpreter shutdown
            # (about 0.3 s once torch is loaded), where Ctrl-C can only print "Exception ignored ...
            # KeyboardInterrupt" and change nothing: ignore it there.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


