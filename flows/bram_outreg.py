"""ECP5 block RAM output registers: a flip-flop right after a DP16KD read port moves into the block RAM.

Yosys's memory_libmap never uses a DP16KD's output register (REGMODE = OUTREG, YosysHQ/yosys#5814: "only
through explicit primitive instantiation"), so a register the RTL puts right after a synchronous read
port stays a fabric flip-flop, and the path to it starts with the block RAM's clock-to-output: 5.8 ns of
a 150 MHz cycle's 6.67 (0.95 ns with OUTREG; prjtrellis timing database, speed grade 6). This pass, run
on the P&R netlist before nextpnr, moves such registers into the block RAM.

A read port qualifies when every data bit of it that is used drives exactly one thing, the D input of a
flip-flop on the port's clock with no clock enable, no set or reset and no initial value but 0 (the RTL
makes these registers `reset_less`), and nothing else (no module port). The port then gets REGMODE =
OUTREG, each flip-flop's output net is driven by the block RAM's data bit and the flip-flop goes. The
output register loads on every clock (OCE must be tied 1) from the read latch, which holds while the
port's CE is low: the flip-flops after the latch, cycle for cycle. Anything else is left alone."""

from __future__ import annotations

import collections
from dataclasses import dataclass

#: The block RAM primitives and their read ports: (data output prefix, clock, output clock enable, mode).
READ_PORTS = {
    "DP16KD": (("DOA", "CLKA", "OCEA", "REGMODE_A"), ("DOB", "CLKB", "OCEB", "REGMODE_B")),
    "PDPW16KD": (("DO", "CLKR", "OCER", "REGMODE"),),
}
FF = "TRELLIS_FF"


@dataclass(frozen=True)
class Absorbed:
    ram: str
    """The block RAM cell's name in the netlist."""
    port: str
    """The read port's data output prefix (`DOA`, `DOB`; `DO` of a PDPW16KD)."""
    flops: int
    """Flip-flops moved into its output register."""


def _sinks(cells: dict) -> dict:
    """Net bit -> [(cell name, port name)] of every cell input it drives."""
    sinks = collections.defaultdict(list)
    for name, cell in cells.items():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if directions.get(port) != "output":
                for b in bits:
                    if isinstance(b, int):
                        sinks[b].append((name, port))
    return sinks


def _plain_flop(cell: dict, clock) -> bool:
    """A flip-flop on `clock` that loads every cycle: no enable, no set/reset, initial value 0 or none."""
    if cell["type"] != FF:
        return False
    p, c = cell["parameters"], cell["connections"]
    if c.get("CLK") != clock or p.get("CLKMUX", "CLK").strip() != "CLK":
        return False
    enabled = p.get("CEMUX", "1").strip() == "1" or c.get("CE") == ["1"]
    no_reset = p.get("LSRMUX", "LSR").strip() == "0" or c.get("LSR", ["0"]) == ["0"]
    init = cell.get("attributes", {}).get("init", "0")
    return enabled and no_reset and set(str(init)) <= {"0", "x"}


def absorb_output_registers(netlist: dict) -> list[Absorbed]:
    """Rewrite `netlist` (Yosys JSON, in place) as the module docstring says; returns what moved."""
    done = []
    for module in netlist["modules"].values():
        cells = module["cells"]
        sinks = _sinks(cells)
        port_bits = {b for p in module.get("ports", {}).values() for b in p["bits"] if isinstance(b, int)}
        for ram_name, ram in list(cells.items()):
            if ram["type"] not in READ_PORTS:
                continue
            conn, params = ram["connections"], ram["parameters"]
            for prefix, clk, oce, mode in READ_PORTS[ram["type"]]:
                if params.get(mode, "NOREG").strip() != "NOREG" or conn.get(oce) != ["1"]:
                    continue
                outputs = {p: bits[0] for p, bits in conn.items()
                           if p.startswith(prefix) and p[len(prefix):].isdigit() and isinstance(bits[0], int)}
                used = {p: b for p, b in outputs.items() if sinks.get(b)}
                if not used or any(b in port_bits for b in used.values()):
                    continue
                flops = {}
                for p, b in used.items():
                    (sink, sink_port), *rest = sinks[b]
                    if rest or sink_port != "DI" or not _plain_flop(cells[sink], conn.get(clk)):
                        break
                    flops[p] = sink
                else:
                    for p, flop in flops.items():
                        conn[p] = list(cells[flop]["connections"]["Q"])
                        del cells[flop]
                    params[mode] = "OUTREG"
                    done.append(Absorbed(ram_name, prefix, len(flops)))
    return done
