"""Shared testbench machinery of the cocotb benches (imported inside the simulator's Python).

A bench is a `CycleLoop` of components in the style of cocotb's examples: drivers put transactions on
the DUT's inputs, monitors turn what they see on the outputs into transactions and hand them to a
callback, a reference model says what should be seen, a checker compares in order. To keep the
Python cost per clock cycle low (the regression simulates millions of cycles) one coroutine steps the
clock and calls every component: `drive()` just after the rising edge, `sample()` in the read-only
phase of the same cycle (so a handshake seen in `sample()` completes at the next edge).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer


def job() -> dict:
    """The parameters the runner wrote for this run (mintaccel/verify/harness.py)."""
    return json.loads(Path(os.environ["MINTACCEL_JOB"]).read_text())


def write_summary(j: dict, summary: dict) -> None:
    path = Path(j["summary"])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(v):
    try:
        return v.item()
    except AttributeError:
        return str(v)


class Port:
    """A DUT signal with a write cache: a write that does not change the value costs no VPI call."""

    __slots__ = ("handle", "last")

    def __init__(self, handle, init=None):
        self.handle, self.last = handle, None
        if init is not None:
            self.set(init)

    def set(self, value: int) -> None:
        if value != self.last:
            self.handle.value = value
            self.last = value

    def get(self) -> int:
        return int(self.handle.value)


class Component:
    """Something the loop calls every cycle while it is active."""

    active = True

    def drive(self) -> None:
        pass

    def sample(self) -> None:
        pass


class CycleLoop:
    def __init__(self, dut, period_ns: int = 10):
        self.dut = dut
        self.clk = dut.clk
        self.components: list[Component] = []
        self.cycle = 0
        """Clock cycles since the clock started (after reset too)."""
        self.period_ns = period_ns
        self._edge = RisingEdge(dut.clk)
        self._ro = ReadOnly()
        self.wall = 0.0

    def add(self, *components: Component) -> None:
        self.components.extend(components)

    async def start(self, reset_cycles: int = 2) -> None:
        Clock(self.clk, self.period_ns, unit="ns").start()
        rst = getattr(self.dut, "rst", None)
        if rst is not None:
            rst.value = 1
            for _ in range(reset_cycles):
                await self._edge
            rst.value = 0

    async def step(self) -> None:
        """One clock cycle: edge, drive, settle, sample."""
        await self._edge
        self.cycle += 1
        active = [c for c in self.components if c.active]
        for c in active:
            c.drive()
        await self._ro
        for c in active:
            c.sample()

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset pulse (after a hang), then one idle cycle."""
        await self._edge
        self.dut.rst.value = 1
        for _ in range(cycles):
            await self._edge
        self.dut.rst.value = 0


async def settle() -> None:
    """For combinational benches: let inputs propagate before reading the outputs."""
    await Timer(1, unit="ns")


class Stopwatch:
    def __init__(self):
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


class Mismatches:
    """The checkers' record: every comparison counts, the first `keep` failures keep their story."""

    def __init__(self, keep: int = 50):
        self.count = 0
        self.checks = 0
        self.details: list[str] = []
        self.keep = keep

    def check(self, ok: bool, what) -> bool:
        """`what` is a string or a zero-argument callable building it (only called on failure)."""
        self.checks += 1
        if not ok:
            self.count += 1
            if len(self.details) < self.keep:
                text = what() if callable(what) else what
                self.details.append(text)
                cocotb.log.error("MISMATCH %s", text)
        return ok

    def equal(self, got, expected, what) -> bool:
        return self.check(got == expected, lambda: f"{what() if callable(what) else what}: expected {expected}, got {got}")


def field_offsets(layout) -> dict[str, tuple[int, int]]:
    """{name: (offset, width)} of an Amaranth StructLayout (how a packed struct port is laid out)."""
    from amaranth.hdl import Shape
    out = {}
    for name, f in layout:
        out[name] = (f.offset, Shape.cast(f.shape).width)
    return out


def unpack(value: int, offsets: dict[str, tuple[int, int]]) -> dict[str, int]:
    return {n: (value >> o) & ((1 << w) - 1) for n, (o, w) in offsets.items()}


def pack(fields: dict[str, int], offsets: dict[str, tuple[int, int]]) -> int:
    v = 0
    for n, x in fields.items():
        o, w = offsets[n]
        v |= (int(x) & ((1 << w) - 1)) << o
    return v
