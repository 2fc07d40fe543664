"""A state machine with one flip-flop per state, used like `m.FSM()`.

Amaranth's FSM keeps its state binary (4 bits for the controller's nine states) with an initial value,
and Yosys's `fsm` pass re-encodes only state registers that have none ("Register has an initialization
value"), so every decode of a state was a compare of four bits in front of the controller's enables:
the UP5K default build's critical path (state -> step enable at OUTPUT's end, six LUT levels). Here a
state's decode is its own flip-flop. The first state's starts at 1, so the machine powers up and
resets into it, as `m.FSM()` does.

Unlike `m.next`, a later `goto` does not override an earlier one: the transitions out of one state
must sit under exclusive conditions. With `assertions`, an `Assert` checks in every simulation that
exactly one state holds.
"""

from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Assert, Cat, Module, Signal

from mintaccel.hw.gates import at_most_one


class OneHotFSM:
    def __init__(self, m: Module, states: list[str], name: str = "state", assertions: bool = True):
        if len(set(states)) != len(states) or not states:
            raise ValueError(f"states must be distinct and at least one: {states}")
        self._m, self._current = m, None
        self.bits = {s: Signal(init=int(i == 0), name=f"{name}_{s.lower()}") for i, s in enumerate(states)}
        if assertions:
            bits = Cat(*self.bits.values())
            m.d.comb += Assert(bits.any() & at_most_one(bits))

    @contextmanager
    def state(self, name: str):
        """The body of state `name`: its statements take effect while the machine is in it."""
        if self._current is not None:
            raise RuntimeError(f"state {name} opened inside state {self._current}")
        self._current = name
        try:
            with self._m.If(self.bits[name]):
                yield
        finally:
            self._current = None

    def goto(self, name: str):
        """Go to state `name` after this cycle (inside a state's body)."""
        if self._current is None:
            raise RuntimeError(f"goto {name} outside a state")
        if name != self._current:
            self._m.d.sync += [self.bits[self._current].eq(0), self.bits[name].eq(1)]

    def ongoing(self, name: str) -> Signal:
        return self.bits[name]
