"""The gate-level helpers give exactly the comparisons and tables they replace, on every input."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from mintaccel.hw.gates import at_least, at_most_one, greater_than, group_flags, thermometer
from mintaccel.hw.spike_encoder import last_word_lanes, last_word_lanes_value


def _exhaustive(width, outputs, expect):
    """Drive every value of a `width`-bit input; `outputs(v)` -> Values, `expect(x)` -> their integers."""
    v = Signal(width)
    got = outputs(v)
    sim = Simulator(Module())

    async def tb(ctx):
        for x in range(1 << width):
            ctx.set(v, x)
            assert [ctx.get(g) for g in got] == expect(x), x

    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("width,n", [(11, 32), (8, 32), (4, 8), (3, 8), (6, 5), (1, 1), (2, 1), (5, 3)])
def test_thermometer_is_the_comparisons(width, n):
    _exhaustive(width, lambda v: [thermometer(v, n), greater_than(v, n // 2)],
                lambda x: [sum(1 << i for i in range(n) if x > i), int(x > n // 2)])


@pytest.mark.parametrize("n", [2, 4, 8, 16, 32])
def test_last_word_lanes_match_their_value(n):
    shift = (n - 1).bit_length()
    _exhaustive(shift, lambda v: [last_word_lanes(v, n)], lambda low: [last_word_lanes_value(low, n)])
    # and the value is the lanes of a layer's last word: n_in - n * (words - 1) of them
    for n_in in range(1, 3 * n + 1):
        assert last_word_lanes_value(n_in, n) == (1 << (n_in - n * ((n_in - 1) // n))) - 1


@pytest.mark.parametrize("n", [1, 3, 4, 8, 9])
def test_group_flags_and_counts(n):
    def expect(x):
        groups = [(x >> i) & 0xF for i in range(0, n, 4)]
        return [sum(1 << k for k, g in enumerate(groups) if g),
                sum(1 << k for k, g in enumerate(groups) if bin(g).count("1") >= 2),
                int(bin(x).count("1") <= 1)] + [int(bin(x & 0xF).count("1") >= k) for k in (1, 2, 3)]
    _exhaustive(n, lambda v: [*group_flags(v), at_most_one(v)] + [at_least(v[:4], k) for k in (1, 2, 3)], expect)
