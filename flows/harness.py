"""A place-and-route harness: the accelerator with few enough pins for the iCE40 UP5K's 39 I/O.

The accelerator has about 170 port bits (load stream, spike streams, two 32-bit counters, the trace
record); the UP5K SG48 package has 39 I/O pins. For place and route only, this wrapper

- feeds every input of the core from one shift register loaded through a single pin `si` (plain
  flip-flops, no LUTs: the harness adds exactly `input_bits` flip-flops),
- brings the handshake and spike outputs to pins while they fit in `pin_budget`,
- keeps the rest (the cycle counters and the trace record, which a deployed accelerator reads over a
  bus) alive with `keep` wires instead of pins, so synthesis removes none of the core's logic.

The headline LUT / FF figures of `mintaccel synth` come from the core alone (`mintaccel_top`); only
the P&R figures (Fmax, utilisation) come from this wrapper, and the report says so.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

HARNESS_TOP = "mintaccel_harness"

#: Core outputs that are observability rather than datapath: never given pins.
DEBUG_PORTS = ("cycles", "stall_cycles", "trace")


class SynthHarness(Elaboratable):
    def __init__(self, core: wiring.Component, pin_budget: int = 32):
        self.core = core
        self.inputs, self.pinned, self.kept = [], [], []
        used = 0
        for path, member, value in core.signature.flatten(core):
            value = Value.cast(value)
            if member.flow == wiring.In:
                self.inputs.append((path, value))
            elif path[0] not in DEBUG_PORTS and used + len(value) <= pin_budget:
                self.pinned.append((path, value))
                used += len(value)
            else:
                self.kept.append((path, value))
        self.input_bits = sum(len(v) for _, v in self.inputs)
        self.si = Signal(name="si")
        self.pins = Signal(max(1, used), name="pins")

    @property
    def ports(self) -> list[Signal]:
        return [self.si, self.pins]

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        chain = Signal(max(1, self.input_bits), name="input_chain")
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for _, value in self.inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        if self.pinned:
            m.d.comb += self.pins.eq(Cat(*(v for _, v in self.pinned)))
        for path, value in self.kept:
            kept = Signal(len(value), name="kept_" + "_".join(str(p) for p in path), attrs={"keep": 1})
            m.d.comb += kept.eq(value)
        return m
