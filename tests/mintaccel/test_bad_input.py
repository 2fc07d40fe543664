"""Issue 10's bad-input list (section 6a), one parametrized test per family: every case ends in one line
on stderr and exit status 2 (or, for free-form meta, a clean run), before the work starts, and leaves
no output behind. Ctrl-C is sent for real to a subprocess. Fixtures are copies of the shipped model with
one manifest field changed (docs/model-format.md), and spike and label arrays with one property wrong.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mintaccel.cli import build_parser, main
from mintaccel.core.files import MARKER
from mintaccel.core.shipped import shipped_model_path
from tests.conftest import sigint_as_in_a_terminal

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = shipped_model_path()
READ_ONLY = Path("/proc")  # no one creates files here, root included


def variant(path: Path, edit) -> Path:
    """The shipped model with its manifest changed by `edit(manifest)`."""
    with np.load(SHIPPED, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    manifest = json.loads(arrays["manifest"].tobytes())
    edit(manifest)
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)
    return path


def setting(*keys, value):
    def edit(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


class Fixtures:
    """Input files made on demand in `folder`; `out(name)` is a path for an output (never made here)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def out(self, name: str) -> Path:
        return self.folder / name

    def model(self, *keys, value) -> Path:
        name = "-".join(str(k) for k in keys) + f"-{value!r}".replace("'", "") + ".npz"
        return variant(self.folder / name, setting(*keys, value=value))

    def spikes(self) -> Path:
        from mintaccel.model_export import datasets
        from mintaccel.sim.encoding import rate_encode
        split = datasets.digits()
        np.save(self.folder / "x.npy", rate_encode(split.x_test, 8, split.levels))
        return self.folder / "x.npy"

    def labels(self, values) -> Path:
        path = self.folder / f"y-{values.dtype}-{values.min()}.npy"
        np.save(path, values)
        return path

    def config(self, fields: dict) -> Path:
        path = self.folder / "hw.json"
        path.write_text(json.dumps(fields))
        return path

    def graph(self, timesteps) -> Path:
        import nir

        from mintaccel.model_export.format import load_model
        from mintaccel.model_export.nir_export import to_nir
        g = to_nir(load_model(SHIPPED))
        g.metadata["timesteps"] = timesteps
        path = self.folder / f"T{timesteps}.nir"
        nir.write(path, g)
        return path

    def folder_with(self, name: str, file: str = "keep.txt") -> Path:
        """An existing folder mintaccel did not write (a user's folder, a source package)."""
        (self.folder / name).mkdir()
        (self.folder / name / file).write_text("the user's\n")
        return self.folder / name

    def file(self, name: str) -> Path:
        (self.folder / name).write_text("a file\n")
        return self.folder / name


@pytest.fixture
def fx(tmp_path):
    return Fixtures(tmp_path)


def listing(folder: Path) -> dict:
    """Every file under `folder` with its bytes: what a failed command must leave unchanged."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def cli(capsys, args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status, err, *matches):
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("mintaccel: error:"), err
    for m in matches:
        assert str(m) in lines[0], lines[0]
    assert ".tmp" not in lines[0] and "Traceback" not in err


def run_refused(capsys, fx, make, matches):
    args = make(fx)
    before = listing(fx.folder)
    status, _, err = cli(capsys, args)
    assert_one_line_error(status, err, *(m(fx) if callable(m) else m for m in matches))
    assert listing(fx.folder) == before  # nothing written, nothing half-written


# ---------------------------------------------------------------- tracebacks that are now one line

@pytest.mark.parametrize("make, matches", [
    (lambda f: ["encode", "-T", "1000000000", "-o", f.out("x.npy")], ["-T: must be in 1..4096, not 1000000000"]),
    (lambda f: ["train", "--hidden", "1000000000"], ["--hidden: must be in 1..65536, not 1000000000"]),
    (lambda f: ["train", "--lr", "nan"], ["--lr: must be a positive finite number, not nan"]),
    (lambda f: ["train", "--lr", "-1"], ["--lr: must be a positive finite number, not -1"]),
    (lambda f: ["train", "--lr", "inf"], ["--lr: must be a positive finite number, not inf"]),
    (lambda f: ["generate", "--config", f.config({"n_pe": 0}), "-o", f.out("rtl")], ["hw.json", "n_pe must be in 1..64"]),
    (lambda f: ["generate", "--config", f.config({"n_pe": "8"}), "-o", f.out("rtl")],
     ["hw.json", "n_pe must be an integer, not '8'"]),
    (lambda f: ["generate", "--config", f.config({"weight_bits": 0}), "-o", f.out("rtl")], ["weight_bits must be in 1..8"]),
], ids=["encode-T-1e9", "train-hidden-1e9", "train-lr-nan", "train-lr-neg", "train-lr-inf", "generate-config-n_pe-0",
        "generate-config-n_pe-string", "generate-config-weight_bits-0"])
def test_tracebacks_are_one_line(capsys, fx, make, matches):
    run_refused(capsys, fx, make, matches)


@pytest.mark.parametrize("args, key, value, shown", [
    (["info"], ("meta", "test_accuracy"), "high", 'recorded test accuracy: "high" (as recorded, not a number)'),
    (["info"], ("meta", "test_accuracy"), [0.9], 'recorded test accuracy: [0.9] (as recorded, not a number)'),
    (["demo", "--no-synth"], ("meta", "float_baseline"), "high", '"high" (as recorded, not a number)'),
], ids=["info-accuracy-string", "info-accuracy-list", "demo-float-baseline-string"])
def test_free_form_meta_is_shown_as_recorded(capsys, fx, args, key, value, shown):
    model = fx.model(*key, value=value)
    extra = ["--model", model, "--out", fx.out("demo")] if args[0] == "demo" else [model]
    status, out, err = cli(capsys, args + extra)
    assert status == 0, err
    assert shown in out


# ---------------------------------------------------------------- wrong but silent: now refused

@pytest.mark.parametrize("make, matches", [
    (lambda f: ["run", SHIPPED, "--input", f.spikes(), "--labels", f.labels(np.full(360, 11))],
     ["labels must be classes 0..9", "found 11..11"]),
    (lambda f: ["run", SHIPPED, "--input", f.spikes(), "--labels", f.labels(np.full(360, -1))], ["found -1..-1"]),
    (lambda f: ["run", SHIPPED, "--input", f.spikes(), "--labels", f.labels(np.full(360, 1.5))],
     ["labels must be integers, got dtype float64"]),
    (lambda f: ["simulate", "--input", f.spikes(), "--labels", f.labels(np.full(360, 11))], ["found 11..11"]),
    (lambda f: ["simulate", "--input", f.spikes(), "--labels", f.labels(np.full(360, -1))], ["found -1..-1"]),
    (lambda f: ["simulate", "--input", f.spikes(), "--labels", f.labels(np.full(360, 1.5))], ["must be integers"]),
    (lambda f: ["run", SHIPPED, "--labels", f.labels(np.zeros(360, np.int64))], ["--labels needs --input"]),
    (lambda f: ["encode", "-T", "0", "-o", f.out("x.npy")], ["-T: must be in 1..4096, not 0"]),
    (lambda f: ["encode", "-T", "-1", "-o", f.out("x.npy")], ["-T: must be in 1..4096, not -1"]),
    (lambda f: ["generate", "--n-pe", "0", "-o", f.out("rtl")], ["--n-pe: must be at least 1, not 0"]),
    (lambda f: ["import", f.graph(0), "-o", f.out("m.npz"), "--levels", "16"], ["metadata gives timesteps = 0"]),
    (lambda f: ["import", f.graph("8"), "-o", f.out("m.npz"), "--levels", "16"], ["metadata gives timesteps = '8'"]),
    (lambda f: ["export-nir", f.model("layers", 0, "scale", value=float("nan")), "-o", f.out("m.nir")],
     ["layer 0 has scale nan", "positive finite scale"]),
    (lambda f: ["export-nir", f.model("layers", 1, "scale", value=float("inf")), "-o", f.out("m.nir")],
     ["layer 1 has scale inf"]),
], ids=["run-labels-11", "run-labels--1", "run-labels-float", "simulate-labels-11", "simulate-labels--1",
        "simulate-labels-float", "run-labels-without-input", "encode-T-0", "encode-T--1", "generate-n-pe-0",
        "import-metadata-T-0", "import-metadata-T-string", "export-nir-scale-nan", "export-nir-scale-inf"])
def test_silent_mistakes_are_refused(capsys, fx, make, matches):
    run_refused(capsys, fx, make, matches)


# ---------------------------------------------------------------- outputs and ranges checked before the work

def _file_outputs():
    """(command line without the output, option) for every file output of the commands in this task."""
    return [
        (lambda f: ["run", SHIPPED], "--json"),
        (lambda f: ["train", "--epochs", "1"], "--json"),
        (lambda f: ["train", "--epochs", "1"], "--export"),
        (lambda f: ["train", "--epochs", "1"], "--output"),
        (lambda f: ["simulate"], "--json"),
        (lambda f: ["export", f.out("absent.pt")], "--output"),
        (lambda f: ["info", SHIPPED], "--json"),
        (lambda f: ["encode"], "--output"),
        (lambda f: ["encode", "-o", f.out("x.npy")], "--labels"),
        (lambda f: ["generate", "--model", SHIPPED, "-o", f.out("rtl")], "--json"),
        (lambda f: ["import", f.out("absent.nir"), "--levels", "16"], "--output"),
        (lambda f: ["export-nir", SHIPPED], "--output"),
        (lambda f: ["demo", "--no-synth", "--out", f.out("demo")], "--json"),
    ]


FOLDER_OUTPUTS = [
    (lambda f: ["simulate"], "--out"),
    (lambda f: ["generate", "--model", SHIPPED], "--out"),
    (lambda f: ["demo", "--no-synth"], "--out"),
]

BAD_FILE = {  # how a file output can be wrong -> (path maker, what the line says)
    "missing-folder": (lambda f: f.out("nodir") / "o.x", "does not exist"),
    "existing-folder": (lambda f: f.folder_with("afolder"), "it is a folder"),
    "read-only-folder": (lambda f: READ_ONLY / "o.x", "is not writable"),
}
BAD_FOLDER = {
    "missing-parent": (lambda f: f.out("nodir") / "o", "does not exist"),
    "existing-file": (lambda f: f.file("afile"), "it is a file, not a folder"),
    "foreign-folder": (lambda f: f.folder_with("theirs"), f"was not written by mintaccel (no {MARKER}"),
    "read-only-parent": (lambda f: READ_ONLY / "o", "is not writable"),
}

OUTPUT_CASES = [pytest.param(make, opt, *BAD_FILE[bad], id=f"{make(Fixtures(Path('.')))[0]}-{opt}-{bad}")
                for make, opt in _file_outputs() for bad in BAD_FILE] + \
               [pytest.param(make, opt, *BAD_FOLDER[bad], id=f"{make(Fixtures(Path('.')))[0]}-{opt}-{bad}")
                for make, opt in FOLDER_OUTPUTS for bad in BAD_FOLDER]


@pytest.mark.parametrize("make, option, bad_path, says", OUTPUT_CASES)
def test_outputs_are_checked_before_the_work(capsys, fx, make, option, bad_path, says):
    """One line naming the option and the user's path, and the work never started (a progress line or
    a training line would make stderr longer than one line)."""
    path = bad_path(fx)
    run_refused(capsys, fx, lambda f: make(f) + [option, path], [f"cannot write {option} {path}", says])


@pytest.mark.parametrize("args, matches", [
    (["train", "-T", "5000"], ["-T: must be in 1..4096, not 5000"]),
    (["train", "--threads", "100000"], ["--threads: must be in 1..256"]),
    (["train", "--threshold", "inf"], ["--threshold: must be a positive finite number"]),
    (["simulate", "--clock", "nan"], ["--clock: must be a positive finite number"]),
    (["simulate", "--input-gap", "-1"], ["--input-gap: must be at least 0"]),
    (["demo", "--clock", "0"], ["--clock: must be a positive finite number"]),
    (["import", "g.nir", "-o", "m.npz", "--lr", "nan"], ["--lr: must be a positive finite number"]),
    (["encode", "-o", "same.npy", "--labels", "same.npy"], ["--output and --labels name the same path"]),
], ids=["train-T-5000", "train-threads", "train-threshold-inf", "simulate-clock-nan", "simulate-gap",
        "demo-clock-0", "import-lr-nan", "encode-same-path"])
def test_ranges_are_checked_before_the_work(capsys, fx, args, matches):
    run_refused(capsys, fx, lambda f: [f.out(a) if a.endswith((".npy", ".npz", ".nir")) else a for a in args], matches)


# ---------------------------------------------------------------- no partial output after a failing exit

@pytest.mark.parametrize("make, matches", [
    (lambda f: ["encode", "-o", f.out("x.npy"), "--labels", f.out("nodir") / "y.npy"], ["--labels", "does not exist"]),
    (lambda f: ["generate", "--model", SHIPPED, "-o", f.out("rtl"), "--json", f.folder_with("jsonfolder")],
     ["--json", "it is a folder"]),
    (lambda f: ["demo", "--no-synth", "--out", f.out("demo"), "--json", f.out("nodir") / "d.json"], ["--json"]),
], ids=["encode-labels-nodir", "generate-json-folder", "demo-json-nodir"])
def test_a_failing_exit_leaves_no_output(capsys, fx, make, matches):
    run_refused(capsys, fx, make, matches)


def test_a_folder_mintaccel_wrote_is_replaced_whole(capsys, fx):
    """The marker makes a folder replaceable; the next run swaps in a complete folder, no temporary left."""
    status, _, err = cli(capsys, ["generate", "--model", SHIPPED, "-o", fx.out("rtl")])
    assert status == 0, err
    assert (fx.out("rtl") / MARKER).is_file()
    (fx.out("rtl") / "stale.txt").write_text("from an old run")
    status, _, err = cli(capsys, ["generate", "-o", fx.out("rtl"), "--n-pe", "4"])
    assert status == 0, err
    assert not (fx.out("rtl") / "stale.txt").exists() and sorted(p.name for p in fx.folder.iterdir()) == ["rtl"]


# ---------------------------------------------------------------- misleading messages and colliding defaults

@pytest.mark.parametrize("make, matches", [
    (lambda f: ["info", f.folder_with("m.npz")], ["m.npz: is a folder, not a model file"]),
    (lambda f: ["run", f.folder_with("m.npz")], ["is a folder, not a model file"]),
    (lambda f: ["simulate", "--model", f.folder_with("m.npz")], ["is a folder, not a model file"]),
    (lambda f: ["simulate", "--out", f.folder_with("sim", "__init__.py")], ["--out", "was not written by mintaccel"]),
], ids=["info-folder-model", "run-folder-model", "simulate-folder-model", "simulate-out-into-a-package"])
def test_misleading_cases_say_what_is_wrong(capsys, fx, make, matches):
    run_refused(capsys, fx, make, matches)


def test_default_output_folders_do_not_collide_with_the_source_and_are_ignored():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    defaults = {name: p.get_default("out") for name, p in sub.items() if isinstance(p.get_default("out"), str)}
    assert {"demo", "generate"} <= set(defaults)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for name, folder in defaults.items():
        top = Path(folder).parts[0]
        assert not (ROOT / top / "__init__.py").exists(), f"{name}: default --out {folder} is a source package"
        assert f"/{top}/" in ignored or f"{top}/" in ignored, f"{name}: default --out {folder} is not git-ignored"
    assert "/mintaccel-sim/" in ignored  # the README's simulate example


# ---------------------------------------------------------------- Ctrl-C, sent for real

PROGRESS = re.compile(r"^\S.*\s\d+/\d+\s")  # a rich progress bar: `train ━━━ 3/500 loss 1.2 0:00:01`


def start(args, cwd):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "mintaccel.cli", *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)


def interrupt_after(proc, stream, line_starts: str) -> tuple[str, str]:
    """Send SIGINT once a line starting with `line_starts` appears on `stream`; return (stdout, stderr)."""
    seen = []
    for line in getattr(proc, stream):
        seen.append(line)
        if line.startswith(line_starts):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    return (("".join(seen) + out, err) if stream == "stdout" else (out, "".join(seen) + err))


@pytest.mark.parametrize("args, line", [
    (["train", "--epochs", "500", "--hidden", "16", "-o", "c.pt", "--export", "m.npz", "--json", "t.json"], "training on"),
    (["demo", "--no-synth", "--out", "demo", "--json", "d.json"], "demo of"),
], ids=["train", "demo"])
def test_ctrl_c_is_one_line_exit_130_and_no_output(tmp_path, args, line):
    proc = start(args, tmp_path)
    _, err = interrupt_after(proc, "stderr", line)
    assert proc.returncode == 130, err
    # besides the line waited for and the state of a progress bar (printed once where stderr is no
    # terminal), the interrupt says one thing: no traceback, no warning at shutdown
    said = [ln for ln in err.splitlines() if not ln.startswith(line) and not PROGRESS.match(ln)]
    assert said == ["mintaccel: interrupted"], err
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file or folder


def test_ctrl_c_right_after_train_export_is_quiet(tmp_path):
    """The signal lands while the interpreter shuts torch down (about 0.3 s): the outputs are complete,
    so the command ends as it would have, without "Exception ignored ... KeyboardInterrupt"."""
    proc = start(["train", "--epochs", "1", "--hidden", "8", "--export", "m.npz"], tmp_path)
    out, err = interrupt_after(proc, "stdout", "└")  # the last line of the final table
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert proc.returncode in (0, 130), err  # 130 only if the signal beat the end of main()
    from mintaccel.model_export.format import load_model
    assert load_model(tmp_path / "m.npz").timesteps == 8
