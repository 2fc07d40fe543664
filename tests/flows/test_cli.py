"""`mintaccel synth` / `mintaccel sweep` as a user meets them: one-line errors before any tool runs."""

from __future__ import annotations

from tests.flows.common import ROOT, assert_one_line_error, mintaccel


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
    assert_one_line_error(r, "not a folder")


def test_write_baseline_refuses_a_non_default_build(tmp_path):
    r = mintaccel("synth", "--n-pe", "4", "--write-baseline", "--out", tmp_path / "out")
    assert_one_line_error(r, "--write-baseline records the default build only")


def test_sweep_empty_grid_is_one_line(tmp_path):
    r = mintaccel("sweep", "--schemes", "pot", "--weight-bits", "8", "--out", tmp_path / "sweep")
    assert_one_line_error(r, "the sweep grid is empty")


def test_sweep_bad_scheme_is_one_line(tmp_path):
    r = mintaccel("sweep", "--schemes", "ternary", "--out", tmp_path / "sweep")
    assert_one_line_error(r, "unknown weight scheme 'ternary'")


def test_help_lists_synth_and_sweep():
    r = mintaccel("--help")
    assert r.returncode == 0 and "synth" in r.stdout and "sweep" in r.stdout
    assert (ROOT / "flows" / "baselines.json").is_file()
