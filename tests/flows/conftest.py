"""Shared synthesis runs for tests/flows: one small build through every tool, once per session.

YoWASP tools cannot see /tmp (pytest's tmp_path included) through absolute paths, and the flows run
them with relative paths inside a build folder; the tests keep that folder inside the project
(`build/test-flows/`), removed at the end of the session.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.flows.common import ROOT, small_config


@pytest.fixture(scope="session")
def flows_dir():
    base = ROOT / "build" / "test-flows"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="session-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def small_ice40(flows_dir):
    """The whole flow (generic, synth, breakdown, harness, P&R) of the small build on iCE40 UP5K."""
    from mintaccel.flows.flow import run_flow
    from mintaccel.flows.targets import ICE40_UP5K
    return run_flow(small_config(), None, ICE40_UP5K, flows_dir / "small-ice40")


@pytest.fixture(scope="session")
def small_ecp5(flows_dir):
    """The small build synthesized for ECP5-25F (no P&R: the iCE40 run covers nextpnr's report)."""
    from mintaccel.flows.flow import synth_check
    from mintaccel.flows.targets import ECP5_25F
    from mintaccel.hw.top import Accelerator
    return synth_check(Accelerator(small_config()), "mintaccel_top", ECP5_25F, flows_dir / "small-ecp5")
