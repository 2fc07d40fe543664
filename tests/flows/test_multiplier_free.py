"""Issue 3: the accelerator is multiplier-free for every weight format, and the check can fail.

Yosys must find no multiplier cell ($mul, $macc) at the generic level and no DSP cell after mapping
(SB_MAC16 on iCE40 UP5K with `synth_ice40 -dsp`, MULT18X18D / ALU54B on ECP5). The positive control
is a plain 8x8 multiply: the same checks, on the same flow functions, do find the multiplier.
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mintaccel.flows.flow import generic_check, synth_check
from mintaccel.flows.targets import ECP5_25F, ICE40_UP5K
from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.model import WeightFormat

from tests.flows.common import small_config

EVERY_FORMAT = [WeightFormat("uniform", b) for b in (2, 3, 4, 8)] + [WeightFormat("binary", 1)] + \
               [WeightFormat("pot", b) for b in (2, 3, 4)]


class Multiply(wiring.Component):
    """The positive control: an 8 x 8 -> 16-bit registered multiply."""

    def __init__(self):
        super().__init__({"a": In(8), "b": In(8), "y": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a * self.b)
        return m


def test_small_build_covers_every_weight_format():
    cfg = small_config()
    assert all(f.bits <= cfg.weight_bits for f in EVERY_FORMAT)
    assert cfg.bias_bits and cfg.membrane_bits == 8


def test_no_multiplier_cells_at_the_generic_level(small_ice40):
    g = small_ice40["generic"]
    assert g["multipliers"] == 0, g["multiplier_cells"]
    assert "$mul" not in g["coarse_cells"] and "$macc" not in g["coarse_cells"]
    assert g["coarse_cells"].get("$alu", 0) > 0  # the adders are there: the check looked at real logic


def test_no_dsp_cells_on_ice40_up5k(small_ice40):
    s = small_ice40["synthesis"]
    assert s["dsp"] == 0 and "SB_MAC16" not in s["cells"]
    assert s["luts"] > 50 and s["carry"] > 0


def test_no_dsp_cells_on_ecp5(small_ecp5):
    assert small_ecp5["dsp"] == 0
    assert "MULT18X18D" not in small_ecp5["cells"] and "ALU54B" not in small_ecp5["cells"]
    assert small_ecp5["luts"] > 50


def test_report_checks_say_multiplier_free(small_ice40):
    assert small_ice40["checks"]["multiplier_free"] is True


def test_positive_control_generic_level_finds_the_multiply(flows_dir):
    g = generic_check(Multiply(), "mul_top", flows_dir / "control-generic")
    assert g["multipliers"] >= 1, g["coarse_cells"]


@pytest.mark.parametrize("target, dsp", [(ICE40_UP5K, "SB_MAC16"), (ECP5_25F, "MULT18X18D")],
                         ids=["ice40-up5k", "ecp5-25f"])
def test_positive_control_maps_to_a_dsp(flows_dir, target, dsp):
    s = synth_check(Multiply(), "mul_top", target, flows_dir / f"control-{target.name}")
    assert s["dsp"] >= 1 and s["cells"].get(dsp, 0) >= 1, s["cells"]


def test_default_config_also_supports_every_format_at_8_bits():
    # the fast build above is the widest one the PE supports: nothing wider exists to check
    with pytest.raises(Exception):
        HwConfig(weight_bits=9)
