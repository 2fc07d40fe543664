"""The generated Verilog passes `verilator --lint-only -Wall` (waivers: hw.lint.WAIVERS, justified in
docs/microarchitecture.md)."""

from __future__ import annotations

import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.hw.generate import TOP_NAME, generate
from mintaccel.hw.lint import lint


@pytest.mark.parametrize("build", ["shipped", "all-formats"])
def test_verilator_lint_clean(tmp_path, build, shipped_model):
    if build == "shipped":
        generate(tmp_path / "rtl", HwConfig.for_model(shipped_model), shipped_model)
    else:
        generate(tmp_path / "rtl", HwConfig(weight_bits=8, membrane_bits=8, bias_bits=8, max_inputs=64,
                                            max_neurons=32, weight_depth=256, membrane_depth=16))
    result = lint(tmp_path / "rtl" / f"{TOP_NAME}.v", TOP_NAME)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%Warning" not in result.stderr and "%Error" not in result.stderr


def test_lint_reports_real_problems(tmp_path):
    """Negative control: a multiply-driven net is not waived."""
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, input b, output y);\n assign y = a;\n assign y = b;\nendmodule\n")
    assert lint(bad, "bad").returncode != 0
