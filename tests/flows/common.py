"""Helpers shared by tests/flows (imported as tests.flows.common, like tests.conftest elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mintaccel.core.hwconfig import HwConfig

ROOT = Path(__file__).resolve().parents[2]


def small_config() -> HwConfig:
    """A quick build that still decodes every weight format: weight_bits 8 covers uniform 2/3/4/8,
    binary and pot 2/3/4 (the PE decodes every format up to weight_bits), bias and 8-bit membranes on."""
    return HwConfig(n_pe=2, max_layers=2, max_inputs=16, max_neurons=4, max_timesteps=4, weight_bits=8,
                    membrane_bits=8, bias_bits=8, weight_depth=32, membrane_depth=4)


def mintaccel(*args, cwd=None, timeout=900):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "mintaccel.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def assert_one_line_error(result, match: str, status: int = 2):
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mintaccel: error:"), result.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.stderr
