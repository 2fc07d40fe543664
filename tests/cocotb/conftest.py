"""Fixtures of the cocotb regression: simulators (Icarus is optional), the seed, a run name per test."""

from __future__ import annotations

import pytest

from mintaccel.verify import harness


def sim_params():
    """Verilator always; Icarus when installed, otherwise a visible skip with the reason."""
    out = []
    for sim in harness.SIMULATORS:
        reason = harness.unavailable(sim)
        marks = [pytest.mark.skip(reason=f"{sim}: {reason}")] if reason else []
        out.append(pytest.param(sim, marks=marks, id=sim))
    return out


@pytest.fixture
def run_name(request) -> str:
    return request.node.name


@pytest.fixture
def seed() -> int:
    """$MINTACCEL_SEED or the suite's fixed default; logged by every test that uses it."""
    s = harness.seed()
    print(f"seed {s} (rerun with MINTACCEL_SEED={s})")
    return s
