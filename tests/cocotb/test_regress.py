"""`mintaccel regress` (mintaccel/cli/cmd_regress.py, mintaccel/verify/regress.py): the user's own model
on the user's inputs (`--model --input --labels`), its negative control, Ctrl-C, and bad input refused
before any work.

The model runs reuse the shipped model's build (build/cocotb/<sim>/model-<hash>, shared with
tests/cocotb/test_accelerator.py::test_shipped_model_digits).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mintaccel.cli import main
from mintaccel.core.shipped import shipped_model_path
from mintaccel.verify import harness
from tests.cocotb.conftest import sim_params
from tests.conftest import sigint_as_in_a_terminal

SIMS = sim_params()
ROOT = Path(__file__).resolve().parents[2]
MINTACCEL = Path(sys.executable).parent / "mintaccel"
#: Digits test samples per simulator (Icarus is several times slower per cycle).
SAMPLES = {"verilator": 6, "icarus": 2}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, Path]:
    """The digits test spikes and labels as `mintaccel encode` writes them."""
    folder = tmp_path_factory.mktemp("digits")
    assert main(["encode", "-o", str(folder / "x.npy"), "--labels", str(folder / "y.npy")]) == 0
    return folder / "x.npy", folder / "y.npy"


def _first(digits, folder: Path, n: int) -> tuple[Path, Path]:
    x, y = (folder / "x.npy", folder / "y.npy")
    np.save(x, np.load(digits[0])[:n])
    np.save(y, np.load(digits[1])[:n])
    return x, y


def _reference(model_path: Path, x: Path):
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.cycle import simulate
    from mintaccel.sim.reference import run
    model = load_model(model_path)
    spikes = np.load(x)
    return run(model, spikes).predictions, simulate(model, spikes, harness.model_config(model)).phases.total


@pytest.mark.parametrize("sim", SIMS)
def test_regress_model_on_digits(sim, digits, tmp_path):
    """The shipped model on digits samples, from another working folder: exit 0, every sample run and
    checked in chunks of 2 (2 at once), the RTL's predictions and cycles those of the reference model
    and the cycle simulator, the accuracy over the labels."""
    n = SAMPLES[sim]
    x, y = _first(digits, tmp_path, n)
    env = dict(os.environ, MINTACCEL_BUILD_DIR=str(ROOT / "build"))  # reuse the shared build
    env.pop("PYTEST_CURRENT_TEST", None)
    r = subprocess.run([str(MINTACCEL), "regress", "--model", str(shipped_model_path()), "--input", str(x),
                        "--labels", str(y), "--sim", sim, "--chunk", "2", "--jobs", "2", "--json", "r.json"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads((tmp_path / "r.json").read_text())["results"][sim]
    predictions, cycles = _reference(shipped_model_path(), x)
    assert s["samples"] == n and s["mismatches"] == 0 and s["checks"] > 100 * n
    assert len(s["runs"]) == -(-n // 2)
    assert s["predictions"] == predictions.tolist()
    assert s["run_cycles"] == int(cycles.sum()) and s["stall_cycles"] == 0
    assert s["accuracy"] == float((predictions == np.load(y)).mean())
    assert "accuracy" in r.stdout and "mismatches" in r.stdout
    assert not (tmp_path / "build").exists()  # $MINTACCEL_BUILD_DIR, not the working folder


def test_regress_model_negative_control(digits, tmp_path, monkeypatch, capsys):
    """A model whose generated Verilog is patched (every threshold compare `>=` into `>`): exit 1, the
    mismatching spikes and the samples that showed them reported. The model file is the shipped one
    with its meta changed, so it gets its own build folder (keyed by the file's hash)."""
    from mintaccel.model_export.format import load_model, save_model
    import dataclasses
    model = load_model(shipped_model_path())
    broken_model = tmp_path / "broken.npz"
    save_model(dataclasses.replace(model, meta={"note": "negative control of tests/cocotb/test_regress.py"}),
               broken_model)
    real = harness.accelerator_verilog
    monkeypatch.setattr(harness, "accelerator_verilog", lambda cfg, m=None: harness.broken_threshold(real(cfg, m)))
    monkeypatch.delenv(harness.WAVES_ENV, raising=False)
    x, y = _first(digits, tmp_path, 3)
    rc = main(["regress", "--model", str(broken_model), "--input", str(x), "--labels", str(y), "--chunk", "2",
               "--jobs", "1", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 1
    s = json.loads((tmp_path / "r.json").read_text())["results"]["verilator"]
    assert s["mismatches"] > 0 and s["failed_samples"], s
    assert any(": spikes of neurons" in d for d in s["mismatch_details"]), s["mismatch_details"][:5]
    assert all(d.startswith("model sample ") for d in s["mismatch_details"])
    assert "first mismatches" in out


def _model_file(tmp_path: Path, layers: int) -> Path:
    from mintaccel.core.model import DenseLayer, IntModel, Leak, WeightFormat
    from mintaccel.model_export.format import save_model
    layer = DenseLayer(weight=np.ones((2, 2), np.int64), weight_format=WeightFormat("uniform", 2), membrane_bits=2,
                       threshold=1, reset="hard", leak=Leak("none"))
    path = tmp_path / f"layers{layers}.npz"
    save_model(IntModel((layer,) * layers, 2), path)
    return path


def _bad_inputs(tmp_path: Path) -> dict[str, list[str]]:
    model = str(shipped_model_path())
    x = np.zeros((3, 8, 64), np.uint8)
    np.save(tmp_path / "x.npy", x)
    for name, labels in {"y11": [0, 1, 11], "yneg": [0, -1, 2], "yfloat": [0.0, 1.0, 2.0], "yshape": [0, 1]}.items():
        np.save(tmp_path / f"{name}.npy", np.array(labels))
    np.save(tmp_path / "xT.npy", np.zeros((3, 4, 64), np.uint8))
    (tmp_path / "folder.json").mkdir()
    xs = str(tmp_path / "x.npy")
    return {
        "seed -1": ["--networks", "1", "--seed", "-1"],
        "seed past 2^32": ["--networks", "1", "--seed", str(2**32)],
        "seeds run past 2^32": ["--networks", "3", "--seed", str(2**32 - 2)],
        "networks 0": ["--networks", "0"],
        "jobs 0": ["--jobs", "0"],
        "chunk 0": ["--chunk", "0"],
        "json into a missing folder": ["--networks", "1", "--json", str(tmp_path / "nodir" / "r.json")],
        "json onto a folder": ["--networks", "1", "--json", str(tmp_path / "folder.json")],
        "json into a read-only folder": ["--networks", "1", "--json", "/proc/mintaccel-regress.json"],
        "model without input": ["--model", model],
        "networks with model": ["--model", model, "--input", xs, "--networks", "5"],
        "seed with model": ["--model", model, "--input", xs, "--seed", "5"],
        "ecp5 rtl with model": ["--model", model, "--input", xs, "--ecp5-rtl"],
        "input without model": ["--input", xs],
        "labels without model": ["--labels", xs],
        "no such model": ["--model", str(tmp_path / "none.npz"), "--input", xs],
        "no such input": ["--model", model, "--input", str(tmp_path / "none.npy")],
        "input with the wrong T": ["--model", model, "--input", str(tmp_path / "xT.npy")],
        "label 11": ["--model", model, "--input", xs, "--labels", str(tmp_path / "y11.npy")],
        "label -1": ["--model", model, "--input", xs, "--labels", str(tmp_path / "yneg.npy")],
        "float labels": ["--model", model, "--input", xs, "--labels", str(tmp_path / "yfloat.npy")],
        "labels of another batch": ["--model", model, "--input", xs, "--labels", str(tmp_path / "yshape.npy")],
        "model json into a missing folder": ["--model", model, "--input", xs, "--json", str(tmp_path / "no" / "r.json")],
        "model that does not fit": ["--model", str(_model_file(tmp_path, 16)), "--input", xs],
    }


def test_bad_input_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """Every bad argument: exit 2, one line on stderr that names the problem, no build started."""
    monkeypatch.setattr(harness, "BUILD_ROOT", tmp_path / "build" / "cocotb")
    for case, argv in _bad_inputs(tmp_path).items():
        rc = main(["regress", *argv])
        err = capsys.readouterr().err.strip()
        assert rc == 2, case
        assert len(err.splitlines()) == 1 and err.startswith("mintaccel: error: "), (case, err)
        assert not (tmp_path / "build").exists(), f"{case}: work started before the refusal"


def test_bad_seed_message(capsys):
    """`--seed -1` is an invalid seed, not "1 mismatches"."""
    assert main(["regress", "--networks", "1", "--seed", "-1"]) == 2
    assert "--seed must be in 0..4294967295" in capsys.readouterr().err


def _interrupt(p, ready, settle: float = 0.0, group: bool = False) -> tuple[str, str]:
    """SIGINT to the command `p` (or its process group) once `ready()`, `settle` s later; its output."""
    try:
        for _ in range(3000):
            if ready() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()
        time.sleep(settle)
        if group:
            os.killpg(p.pid, signal.SIGINT)
        else:
            p.send_signal(signal.SIGINT)
        return p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("sim", [p for p in SIMS if p.id == "verilator"])
@pytest.mark.parametrize("target", ["group", "process"])
def test_ctrl_c_during_the_runs(sim, target, tmp_path):
    """SIGINT while chunks run in worker threads, to the process group (Ctrl-C in a terminal) or to the
    command alone (`kill -INT`, the simulators do not see it): one line, exit 130, no traceback, no
    further chunk started and no simulator left running."""
    seed = 4242 if target == "group" else 4243
    runs = ROOT / "build" / "cocotb" / sim / "accelerator-generic" / "runs"
    first_run = runs / f"regress-{seed}-000"
    if first_run.exists():
        import shutil
        shutil.rmtree(first_run)
    env = dict(os.environ, MINTACCEL_BUILD_DIR=str(ROOT / "build"))
    env.pop("PYTEST_CURRENT_TEST", None)
    p = subprocess.Popen([str(MINTACCEL), "regress", "--sim", sim, "--networks", "400", "--seed", str(seed),
                          "--chunk", "50", "--jobs", "2", "--fresh", "--json", str(tmp_path / "r.json")], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=sigint_as_in_a_terminal)
    out, err = _interrupt(p, lambda: (first_run / "job.json").is_file(), settle=0.5, group=target == "group")
    assert p.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mintaccel: interrupted"
    assert "Traceback" not in err + out and "Exception ignored" not in err
    assert not (tmp_path / "r.json").exists()
    if target == "process":  # the running chunk was stopped, not left to finish its 50 networks
        assert not (first_run / "results.xml").exists()
    left = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True).stdout.split()
    for _ in range(50):
        if not left:
            break
        time.sleep(0.1)
        left = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes of the interrupted regression still running: {left}"


def test_builds_go_under_the_working_folder(tmp_path):
    """Without $MINTACCEL_BUILD_DIR the harness builds under ./build of the working folder, and the
    benches (with mintaccel) import in a process started elsewhere: nothing imports `tests`."""
    env = {k: v for k, v in os.environ.items() if k not in (harness.BUILD_ENV, "PYTHONPATH")}
    code = ("from mintaccel.verify import harness; import acc_bench, block_benches; "
            "print(harness.BUILD_ROOT); import sys; print('tests' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    root, tests_imported = r.stdout.split()
    assert Path(root) == tmp_path.resolve() / "build" / "cocotb" and tests_imported == "False"


def test_interrupted_regression_resumes(tmp_path):
    """Ctrl-C after a few chunks, then the same command again: the finished chunks come from their job
    folders (build/jobs), only the others run, and the merged figures are those of all the networks."""
    seed, networks = 5150, 8
    env = dict(os.environ, MINTACCEL_BUILD_DIR=str(ROOT / "build"))
    env.pop("PYTEST_CURRENT_TEST", None)
    argv = [str(MINTACCEL), "regress", "--networks", str(networks), "--seed", str(seed), "--chunk", "1", "--jobs", "2"]
    jobs_root = ROOT / "build" / "jobs"

    def mine() -> list[Path]:
        """The job folders holding a result of this test's chunks."""
        found = []
        for f in jobs_root.glob("regress-*/result.json"):
            label = json.loads(f.read_text())["label"]
            found += [f.parent] if any(label == f"verilator networks {s}..{s}" for s in range(seed, seed + networks)) else []
        return found

    import shutil
    for folder in mine():  # an earlier run's results: this test starts from none
        shutil.rmtree(folder)
    p = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, preexec_fn=sigint_as_in_a_terminal)
    _interrupt(p, lambda: len(mine()) >= 2)
    assert p.returncode == 130, err
    done = len(mine())
    assert 2 <= done < networks
    r = subprocess.run(argv + ["--json", "r.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "r.json").read_text())["results"]["verilator"]
    assert s["jobs"]["cached"] == done and s["jobs"]["ran"] == networks - done
    assert s["networks"] == networks and s["mismatches"] == 0
    assert f"{networks - done} ran, {done} from earlier runs" in r.stderr
