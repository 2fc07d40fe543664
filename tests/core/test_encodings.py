"""The shared encoding tables against the documents that define them.

The expected codes and values here are written from docs/microarchitecture.md (register map, host
interface, weight codes) and docs/arithmetic.md (weight formats): an independent oracle on purpose, so a
changed table fails here even though every implementation, built from the same table, would agree."""

from __future__ import annotations

import subprocess
import sys

from amaranth.hdl import Shape

from mintaccel.core.encodings import (MEMBRANE_BITS, WEIGHT_BITS, LeakKind, LoadSpace, ResetMode, WeightScheme,
                                      address_bits, pot_magnitudes)
from mintaccel.core.model import WeightFormat


def test_hardware_codes_are_the_register_map():
    assert {m.name: m.value for m in WeightScheme} == {"uniform": 0, "binary": 1, "pot": 2}
    assert {m.name: m.value for m in LeakKind} == {"none": 0, "shift": 1, "decay": 2}
    assert {m.name: m.value for m in ResetMode} == {"hard": 0, "soft": 1}
    assert {m.name: m.value for m in LoadSpace} == {"registers": 0, "weights": 1, "biases": 2}
    assert [Shape.cast(e).width for e in (WeightScheme, LeakKind, ResetMode, LoadSpace)] == [2, 2, 1, 2]


def test_weight_formats_and_membrane_widths():
    assert {s.name: b for s, b in WEIGHT_BITS.items()} == {"uniform": (2, 3, 4, 8), "binary": (1,), "pot": (2, 3, 4)}
    assert MEMBRANE_BITS == (2, 3, 4, 8)
    assert [str(f) for f in WeightFormat.every()] == [
        "uniform:2", "uniform:3", "uniform:4", "uniform:8", "binary:1", "pot:2", "pot:3", "pot:4"]


def test_power_of_two_rule():
    """Magnitude code m: 0 is zero, otherwise 2^(m-1); e runs 0 .. 2^(b-1) - 2."""
    assert pot_magnitudes(2) == (0, 1)
    assert pot_magnitudes(3) == (0, 1, 2, 4)
    assert pot_magnitudes(4) == (0, 1, 2, 4, 8, 16, 32, 64)
    assert WeightFormat("pot", 3).levels().tolist() == [-4, -2, -1, 0, 1, 2, 4]
    assert WeightFormat("pot", 4).max_magnitude == 64


def test_address_width():
    assert [address_bits(d) for d in (1, 2, 3, 4, 5, 1024, 1025, 65536)] == [1, 1, 2, 2, 3, 10, 11, 16]


def test_importing_the_tables_elaborates_nothing():
    code = ("import sys, mintaccel.core.encodings, mintaccel.core.model, mintaccel.core.hwconfig; "
            "print(sorted(m for m in sys.modules if m.startswith(('amaranth.back', 'amaranth.sim', 'mintaccel.hw', "
            "'mintaccel.sim'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
