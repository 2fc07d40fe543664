"""The one-hot state machine steps like `m.FSM()`, starts in its first state, and its Assert catches two
states at once."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from mintaccel.hw.one_hot_fsm import OneHotFSM


def _machine(conflict=False):
    """A -> B on `go`, B -> C, C -> A; `out` is the state's number. `conflict`: B also goes to A."""
    m = Module()
    go, out = Signal(), Signal(2)
    fsm = OneHotFSM(m, ["A", "B", "C"])
    with fsm.state("A"):
        m.d.comb += out.eq(0)
        with m.If(go):
            fsm.goto("B")
    with fsm.state("B"):
        m.d.comb += out.eq(1)
        fsm.goto("C")
        if conflict:
            fsm.goto("A")
    with fsm.state("C"):
        m.d.comb += out.eq(2)
        fsm.goto("A")
    return m, go, out, fsm


def test_steps_like_an_fsm():
    m, go, out, fsm = _machine()
    seen = []

    async def tb(ctx):
        for g in [0, 0, 1, 0, 0, 0, 1, 0, 0]:
            ctx.set(go, g)
            seen.append((ctx.get(out), [ctx.get(b) for b in fsm.bits.values()]))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert [s for s, _ in seen] == [0, 0, 0, 1, 2, 0, 0, 1, 2]
    assert all(sum(bits) == 1 for _, bits in seen)


def test_two_states_at_once_fail_the_assert():
    """Negative control: transitions that are not exclusive leave two states set, which the Assert reports."""
    m, go, out, fsm = _machine(conflict=True)

    async def tb(ctx):
        ctx.set(go, 1)
        for _ in range(4):
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    with pytest.raises(AssertionError):
        sim.run()


def test_misuse_is_refused():
    m = Module()
    with pytest.raises(ValueError):
        OneHotFSM(m, ["A", "A"])
    fsm = OneHotFSM(m, ["A", "B"])
    with pytest.raises(RuntimeError):
        fsm.goto("B")
    with fsm.state("A"):
        with pytest.raises(RuntimeError):
            with fsm.state("B"):
                pass
    Simulator(m)  # the module is still a valid design
