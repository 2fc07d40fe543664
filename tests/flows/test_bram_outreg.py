"""flows/bram_outreg.py: which flip-flops move into a DP16KD's output register, on hand-made netlists
and on Yosys's own netlist of a memory with a register after its read port."""

from __future__ import annotations

import copy

import pytest

from mintaccel.flows.bram_outreg import absorb_output_registers

CLK = 2


def ff(d, q, **extra):
    params = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET",
              "SRMODE": "LSR_OVER_CE"}
    conn = {"CLK": [CLK], "DI": [d], "Q": [q]}
    conn.update(extra.pop("conn", {}))
    params.update(extra)
    return {"type": "TRELLIS_FF", "parameters": params, "connections": conn,
            "port_directions": {"CLK": "input", "DI": "input", "CE": "input", "LSR": "input", "Q": "output"}}


def netlist(flops: dict, ram_extra=None, users=None, ports=None):
    """A DP16KD whose DOB0/DOB1 are nets 10/11, and `flops` (name -> cell); `users`: other cells."""
    ram = {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG"},
           "connections": {"CLKB": [CLK], "OCEB": ["1"], "CEB": [5], "DOB0": [10], "DOB1": [11], "DOB2": [12],
                           "CLKA": [CLK], "OCEA": ["1"], "DOA0": [13]},
           "port_directions": {"CLKB": "input", "OCEB": "input", "CEB": "input", "DOB0": "output",
                               "DOB1": "output", "DOB2": "output", "CLKA": "input", "OCEA": "input",
                               "DOA0": "output"}}
    for k, v in (ram_extra or {}).items():
        ram["connections"][k] = v
    cells = {"ram": ram, **flops, **(users or {})}
    return {"modules": {"top": {"ports": ports or {}, "cells": cells}}}


def lut(a):
    return {"type": "LUT4", "parameters": {}, "connections": {"A": [a], "Z": [99]},
            "port_directions": {"A": "input", "Z": "output"}}


def test_plain_flops_move_into_the_output_register():
    n = netlist({"q0": ff(10, 20), "q1": ff(11, 21)})  # DOB2 unused: fine
    moved = absorb_output_registers(n)
    cells = n["modules"]["top"]["cells"]
    assert [(a.ram, a.port, a.flops) for a in moved] == [("ram", "DOB", 2)]
    assert set(cells) == {"ram"}
    assert cells["ram"]["parameters"]["REGMODE_B"] == "OUTREG"
    assert cells["ram"]["parameters"]["REGMODE_A"] == "NOREG"  # port A's output drives nothing
    assert cells["ram"]["connections"]["DOB0"] == [20] and cells["ram"]["connections"]["DOB1"] == [21]


@pytest.mark.parametrize("why, flops, extra", [
    ("a clock enable", {"q0": ff(10, 20, CEMUX="CE", conn={"CE": [7]}), "q1": ff(11, 21)}, {}),
    ("a set/reset", {"q0": ff(10, 20, conn={"LSR": [3]}), "q1": ff(11, 21)}, {}),
    ("another clock", {"q0": ff(10, 20, conn={"CLK": [4]}), "q1": ff(11, 21)}, {}),
    ("an initial 1", {"q0": dict(ff(10, 20), attributes={"init": "1"}), "q1": ff(11, 21)}, {}),
    ("an output enable that is not 1", {"q0": ff(10, 20), "q1": ff(11, 21)}, {"OCEB": [8]}),
])
def test_a_register_that_is_not_plain_stays(why, flops, extra):
    n = netlist(flops, ram_extra=extra)
    before = copy.deepcopy(n)
    assert absorb_output_registers(n) == [], why
    assert n == before


def test_a_data_bit_with_another_user_keeps_the_whole_port():
    """OUTREG delays every bit of the port: one bit that feeds logic keeps all of them as they are."""
    n = netlist({"q0": ff(10, 20), "q1": ff(11, 21)}, users={"l": lut(12)})
    before = copy.deepcopy(n)
    assert absorb_output_registers(n) == []
    assert n == before
    n = netlist({"q0": ff(10, 20), "q1": ff(11, 21), "q1b": ff(11, 22)})  # one bit into two flip-flops
    assert absorb_output_registers(n) == []


def test_a_data_bit_on_a_module_port_stays():
    n = netlist({"q0": ff(10, 20), "q1": ff(11, 21)}, ports={"dbg": {"direction": "output", "bits": [10]}})
    assert absorb_output_registers(n) == []


def test_yosys_netlist_of_a_memory_and_its_register(tmp_path):
    """synth_ecp5 of a 1024 x 10 memory with a reset-less register after its read port: the ten flip-flops
    go into the DP16KD, nothing else changes; with a reset on the register nothing moves."""
    from amaranth.hdl import Module, Signal
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    from mintaccel.flows import yosys

    class RegisteredRead(wiring.Component):
        def __init__(self, reset_less):
            self.reset_less = reset_less
            super().__init__({"wa": In(10), "wd": In(10), "we": In(1), "ra": In(10), "re": In(1), "q": Out(10)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=10, depth=1024, init=[])
            w, r = mem.write_port(), mem.read_port()
            q = Signal(10, reset_less=self.reset_less)
            m.d.comb += [w.addr.eq(self.wa), w.data.eq(self.wd), w.en.eq(self.we), r.addr.eq(self.wa),
                         r.en.eq(self.re & ~self.we), self.q.eq(q)]
            m.d.sync += q.eq(r.data)
            return m

    for reset_less, moved in ((True, 10), (False, 0)):
        yosys.write_rtlil(RegisteredRead(reset_less), "top", tmp_path / "t.il")
        yosys.run_yosys(tmp_path, "t", "read_rtlil t.il\nsynth_ecp5 -top top -json t.json\n")
        n = yosys.load_json(tmp_path / "t.json")
        cells = n["modules"]["top"]["cells"]
        flops = sum(c["type"] == "TRELLIS_FF" for c in cells.values())
        result = absorb_output_registers(n)
        assert sum(a.flops for a in result) == moved
        assert sum(c["type"] == "TRELLIS_FF" for c in cells.values()) == flops - moved
        if moved:
            ram = next(c for c in cells.values() if c["type"] == "DP16KD")
            assert "OUTREG" in (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"])
