"""`mintaccel synth` / `mintaccel sweep` as a user meets them: one-line errors before any tool runs,
outputs checked before the work, nothing half-made left by a failure or Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mintaccel.core.files import MARKER
from mintaccel.flows import report as freport
from mintaccel.model_export.format import save_model
from tests.conftest import sigint_as_in_a_terminal
from tests.flows.common import ROOT, assert_one_line_error, mintaccel
from tests.flows.test_fit import mnist_model


@pytest.fixture
def mnist_file(tmp_path):
    path = tmp_path / "mnist-784-128-10.npz"
    save_model(mnist_model(), path)
    return path


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody can create files in: mode 0555 and, for root (whom modes do not stop), immutable."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        folder.chmod(0o755)
        pytest.skip("running as root and chattr +i is not available: no folder is read-only for root")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_bad_target_is_one_line():
    r = mintaccel("synth", "--target", "xc7a35t")
    assert_one_line_error(r, "invalid choice: 'xc7a35t'")


def test_missing_model_is_one_line(tmp_path):
    r = mintaccel("synth", "--model", tmp_path / "nope.npz", "--out", tmp_path / "out")
    assert_one_line_error(r, "no such model file")
    assert not (tmp_path / "out").exists()


def test_garbage_model_is_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    r = mintaccel("synth", "--model", bad, "--out", tmp_path / "out")
    assert_one_line_error(r, "not a readable mintaccel model file")


def test_bad_n_pe_is_one_line(tmp_path):
    r = mintaccel("synth", "--n-pe", "0", "--out", tmp_path / "out")
    assert_one_line_error(r, "n-pe")


def test_out_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = mintaccel("synth", "--out", f)
    assert_one_line_error(r, "it is a file, not a folder")


def test_write_baseline_refuses_a_non_default_build(tmp_path):
    r = mintaccel("synth", "--n-pe", "4", "--write-baseline", tmp_path / "b.json", "--out", tmp_path / "out")
    assert_one_line_error(r, "--write-baseline records the default build only")


# ---------------------------------------------------------------- section 5: refuse what cannot fit

def test_synth_refuses_a_model_the_device_cannot_hold(tmp_path, mnist_file):
    out = tmp_path / "out"
    r = mintaccel("synth", "--target", "ice40-up5k", "--model", mnist_file, "--weight-memory", "bram", "--out", out)
    assert_one_line_error(r, "the memories need 54 (weights 50, events 3, membranes 1) of the iCE40UP5K's "
                             "30 block RAMs (SB_RAM40_4K), 24 too many; with the weights in SPRAM it fits "
                             "(4 of 30 block RAMs, 1 of 4 SPRAMs); it fits ecp5-25f (17 of 56 block RAMs)")
    assert not out.exists()  # refused before the build folder, let alone a tool


def test_synth_refuses_too_many_sprams(tmp_path, mnist_file):
    """64 lanes of 2-bit weights: 128-bit words need 8 SPRAMs; 56 block RAMs do not fit either."""
    out = tmp_path / "out"
    r = mintaccel("synth", "--model", mnist_file, "--n-pe", "64", "--weight-memory", "spram", "--out", out)
    assert_one_line_error(r, "the weights need 8 of the iCE40UP5K's 4 SPRAMs (SB_SPRAM256KA, 16384 x 16 each; "
                             "1,696 words of 128 bits), 4 too many")
    r = mintaccel("synth", "--model", mnist_file, "--n-pe", "64", "--out", out)  # auto: neither memory fits
    assert_one_line_error(r, "29 too many; with the weights in SPRAM: the weights need 8 of")
    assert not out.exists()


@pytest.mark.parametrize("args, match", [
    (["--target", "ecp5-25f", "--weight-memory", "spram"],
     "--weight-memory spram: the Lattice LFE5U-25F-CABGA256 has no SPRAM (block RAM only)"),
    (["--weight-memory", "eeprom"], "argument --weight-memory: invalid choice: 'eeprom'"),
    (["--threshold-units", "3"], "--threshold-units 3 must divide --n-pe (8 is not a multiple of it)"),
    (["--threshold-units", "65"], "argument --threshold-units: must be in 0..64, not 65"),
    (["--n-pe", "65"], "argument --n-pe: must be in 1..64, not 65"),
    (["--seed", "-1"], "argument --seed: must be in 0..2147483647, not -1"),
    (["--seed", "1", "--write-baseline", "b.json"], None),
    (["--seed", "2", "--write-baseline", "b.json"], "--write-baseline records the default build only"),
    (["--threshold-units", "2", "--write-baseline", "b.json"], "--write-baseline records the default build only"),
    (["--weight-memory", "bram", "--write-baseline", "b.json"], "--write-baseline records the default build only"),
], ids=["spram-on-ecp5", "bad-choice", "units-not-dividing", "units-range", "n-pe-range", "seed-range",
        "default-seed-ok", "seed-baseline", "units-baseline", "memory-baseline"])
def test_synth_build_options_are_checked_first(tmp_path, args, match):
    out = tmp_path / "out"
    args = [str(tmp_path / a) if a == "b.json" else a for a in args]
    if match is None:  # accepted: stopped by the check after it instead of running the tools
        r = mintaccel("synth", *args, "--check-baseline", tmp_path / "missing.json", "--out", out)
        assert_one_line_error(r, "missing.json")
    else:
        r = mintaccel("synth", *args, "--out", out)
        assert_one_line_error(r, match)
    assert not out.exists()


def test_generate_target_refuses_what_synth_refuses(tmp_path, mnist_file):
    out = tmp_path / "rtl"
    r = mintaccel("generate", "--model", mnist_file, "--target", "ice40-up5k", "-o", out)
    assert_one_line_error(r, "does not fit the Lattice iCE40UP5K-SG48")
    assert not out.exists()


def test_generate_target_passes_a_build_that_fits(tmp_path):
    r = mintaccel("generate", "--target", "ice40-up5k", "-o", tmp_path / "rtl")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rtl" / "mintaccel_top.v").is_file()


# ---------------------------------------------------------------- outputs checked before the work

@pytest.mark.parametrize("option", ["--json", "--write-baseline"])
def test_synth_output_file_in_a_missing_folder(tmp_path, option):
    out = tmp_path / "out"
    r = mintaccel("synth", option, tmp_path / "nodir" / "y.json", "--out", out)
    assert_one_line_error(r, "folder")
    assert "does not exist" in r.stderr and not out.exists()


def test_synth_json_that_is_a_folder(tmp_path):
    r = mintaccel("synth", "--json", tmp_path, "--out", tmp_path / "out")
    assert_one_line_error(r, "it is a folder, give a file name")
    assert not (tmp_path / "out").exists()


def test_synth_json_in_a_read_only_folder(tmp_path, read_only_folder):
    r = mintaccel("synth", "--json", read_only_folder / "y.json", "--out", tmp_path / "out")
    assert_one_line_error(r, "is not writable")
    assert not (tmp_path / "out").exists()


def test_synth_out_in_a_read_only_folder(read_only_folder):
    r = mintaccel("synth", "--out", read_only_folder / "build")
    assert_one_line_error(r, "is not writable")


def test_synth_never_replaces_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.txt").write_text("the user's")
    r = mintaccel("synth", "--out", mine)
    assert_one_line_error(r, "was not written by mintaccel")
    assert (mine / "data.txt").read_text() == "the user's"


def test_check_baseline_of_a_build_without_one_is_refused_before_synthesis(tmp_path):
    r = mintaccel("synth", "--n-pe", "4", "--check-baseline", "--out", tmp_path / "out")
    assert_one_line_error(r, "--check-baseline: the ice40-up5k baseline is for another build: n_pe 4 (baseline 8)")
    assert "nothing to compare with" in r.stderr and not (tmp_path / "out").exists()


def test_check_baseline_with_a_file_that_lacks_the_target(tmp_path):
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"ecp5-25f": freport.load_baselines()["ecp5-25f"]}))
    r = mintaccel("synth", "--check-baseline", b, "--out", tmp_path / "out")
    assert_one_line_error(r, f"--check-baseline: no baseline for ice40-up5k in {b}: nothing to compare with")


def test_check_baseline_with_a_malformed_file(tmp_path):
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"ice40-up5k": {"metrics": {}}}))
    r = mintaccel("synth", "--check-baseline", b, "--out", tmp_path / "out")
    assert_one_line_error(r, "entry 'ice40-up5k' must be an object with 'config' and 'metrics'")


def test_bad_fpga_energy_table_fails_before_synthesis(tmp_path):
    t = tmp_path / "t.json"
    t.write_text(json.dumps({"ebr": {"ice40-up5k": {"bytes": "big"}}}))
    r = mintaccel("synth", "--fpga-energy-table", t, "--out", tmp_path / "out")
    assert_one_line_error(r, "'ebr.ice40-up5k.bytes' must be a number >= 0, not 'big'")
    assert not (tmp_path / "out").exists()


def test_sweep_empty_grid_is_one_line(tmp_path):
    r = mintaccel("sweep", "--schemes", "pot", "--weight-bits", "8", "--out", tmp_path / "sweep")
    assert_one_line_error(r, "the sweep grid is empty")
    assert not (tmp_path / "sweep").exists()


def test_sweep_bad_scheme_is_one_line(tmp_path):
    r = mintaccel("sweep", "--schemes", "ternary", "--out", tmp_path / "sweep")
    assert_one_line_error(r, "unknown weight scheme 'ternary'")


def test_sweep_membrane_bits_1_leaves_nothing(tmp_path):
    r = mintaccel("sweep", "--membrane-bits", "1", "--out", tmp_path / "sw")
    assert_one_line_error(r, "--membrane-bits 1: membranes are 2, 3, 4, 8 bits")
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("where", ["missing", "folder", "read-only"])
def test_sweep_json_checked_before_training(tmp_path, request, where):
    path = {"missing": lambda: tmp_path / "nodir" / "rows.json", "folder": lambda: tmp_path,
            "read-only": lambda: request.getfixturevalue("read_only_folder") / "rows.json"}[where]()
    r = mintaccel("sweep", "--json", path, "--out", tmp_path / "sw")
    assert_one_line_error(r, str(path))
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("args, match", [
    (["--target", "ecp5-25f", "--weight-memory", "spram"], "the Lattice LFE5U-25F-CABGA256 has no SPRAM"),
    (["--n-pe", "4", "6", "--threshold-units", "4"], "--threshold-units 4 must divide --n-pe (6 is not a multiple of it)"),
    (["--n-pe", "4", "128"], "argument --n-pe: must be in 1..64, not 128"),
    (["--seeds", "1", "2", "1"], "--seeds: each seed once, not 1 2 1"),
    (["--seeds", "1", "2", "--no-pnr"], "--seeds places and routes every point: it cannot go with --no-pnr"),
    (["--seeds", "5", "--no-pnr"], "--seeds places and routes every point: it cannot go with --no-pnr"),
], ids=["spram-on-ecp5", "units", "n-pe", "duplicate-seeds", "seeds-without-pnr", "seed-without-pnr"])
def test_sweep_build_options_are_checked_before_training(tmp_path, args, match):
    r = mintaccel("sweep", *args, "--out", tmp_path / "sw")
    assert_one_line_error(r, match)
    assert not (tmp_path / "sw").exists()


def test_sweep_out_checked_before_training(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    r = mintaccel("sweep", "--out", f / "sw")
    assert_one_line_error(r, "does not exist")


def test_help_lists_synth_and_sweep():
    r = mintaccel("--help")
    assert r.returncode == 0 and "synth" in r.stdout and "sweep" in r.stdout
    assert (ROOT / "flows" / "baselines.json").is_file()


# ---------------------------------------------------------------- Ctrl-C

def interrupt_when(args, ready, timeout=600):
    """Run `mintaccel args`, send SIGINT once `ready()` holds (polled), return (exit status, stderr)."""
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "mintaccel.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + timeout  # a guard against a hung test, not a timing assertion
    while not ready():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the command never reached the point to interrupt"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("previous", [False, True], ids=["new", "previous-build"])
def test_synth_interrupted_leaves_no_half_made_build(flows_dir, previous):
    out = flows_dir / f"interrupted-{previous}"
    if previous:  # a finished build from an earlier run: it must come back whole
        out.mkdir()
        (out / MARKER).write_text("")
        (out / "report.json").write_text('{"earlier": true}')
    status, err = interrupt_when(["synth", "--no-pnr", "--no-breakdown", "--out", out],
                                 lambda: (out / "generic.ys").is_file())  # Yosys is running
    assert status == 130 and err.strip().splitlines()[-1] == "mintaccel: interrupted", err
    assert "Traceback" not in err
    if previous:
        assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "report.json"])
        assert json.loads((out / "report.json").read_text()) == {"earlier": True}
    else:
        assert not out.exists()
    assert not [p for p in flows_dir.iterdir() if p.name.startswith(f".{out.name}.")]  # no aside copy left


@pytest.mark.slow
def test_sweep_interrupted_keeps_the_finished_points_and_says_so(flows_dir):
    out = flows_dir / "sweep-interrupted"
    status, err = interrupt_when(["sweep", "--n-pe", "4", "8", "--schemes", "uniform", "--weight-bits", "2",
                                  "--membrane-bits", "2", "--epochs", "1", "--hidden", "16", "--no-pnr",
                                  "--out", out], lambda: (out / "n8-u2-m2" / "generic.ys").is_file())
    assert status == 130 and "mintaccel: interrupted" in err, err
    assert f"sweep interrupted: the 1 finished points stay in {out / 'sweep.csv'}" in " ".join(err.split())
    assert (out / "n4-u2-m2" / "report.json").is_file() is False  # run_flow writes no report.json itself
    assert (out / "n4-u2-m2" / "synth.log").is_file() and not (out / "n8-u2-m2").exists()
    assert len((out / "sweep.csv").read_text().splitlines()) == 2  # header and the finished point
