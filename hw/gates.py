"""Small combinational functions written as AND / OR trees rather than as comparisons.

Yosys maps every comparison (`>`, `<=`, ...) to an adder: on the iCE40 a carry chain, each of whose
SB_CARRY cells takes a logic cell of its own when the sum is unused. A bank of them (one per lane)
fills a dense build with carry-only logic cells and chains the placer must keep in columns: on the UP5K
MNIST build of 32 PEs the encoder's last-word mask and the controller's lane enables were 730 of its
1,426 SB_CARRY cells (logic cells 4,850 -> 4,027 without them). These functions give the same bits
in a few LUT levels and no carry.
"""

from __future__ import annotations

from itertools import combinations

from amaranth.hdl import Cat, Const, Value

#: Lanes per pair of group flags (`group_flags`): a 4-bit group and its flags are one LUT each.
FLAG_GROUP = 4


def greater_than(value: Value, c: int) -> Value:
    """1 when the unsigned `value` > the constant `c` >= 0, from the top bit down: a 1 above `c`'s bit
    decides where `c` has a 0, the rest must still exceed `c` where it has a 1."""
    if c >= 1 << len(value):
        return Const(0, 1)
    out = Const(0, 1)
    for i in range(len(value)):  # from the lowest bit up: `out` is bits[:i] > c[:i]
        out = (value[i] & out) if c >> i & 1 else (value[i] | out)
    return out


def thermometer(value: Value, n: int) -> Value:
    """n bits, bit i = (unsigned `value` > i): the first `value` lanes (all n when value >= n)."""
    low_bits = max(1, (n - 1).bit_length())  # enough for 0 .. n - 1
    if len(value) <= low_bits:
        return Cat(*(greater_than(value, i) for i in range(n)))
    high = value[low_bits:].any()  # value >= 2^low_bits >= n: every lane
    return Cat(*(high | greater_than(value[:low_bits], i) for i in range(n)))


def at_most_one(bits: Value) -> Value:
    """1 when `bits` has at most one 1 (so clearing its lowest 1 leaves none): a balanced tree of
    (none, at most one) pairs, log2(n) LUT levels and no carry chain."""
    def tree(b):
        if len(b) == 1:
            return ~b[0], Const(1, 1)
        half = len(b) // 2
        (z_lo, a_lo), (z_hi, a_hi) = tree(b[:half]), tree(b[half:])
        return z_lo & z_hi, (z_lo & a_hi) | (a_lo & z_hi)
    return tree(bits)[1]


def at_least(bits: Value, k: int) -> Value:
    """1 when `bits` (at most four: one LUT) has k or more ones, as an OR of ANDs (no adder)."""
    return Cat(*(Cat(*c).all() for c in combinations(list(bits), k))).any() if len(bits) >= k else Const(0, 1)


def flag_groups(n: int) -> list[slice]:
    """The FLAG_GROUP-lane groups of an n-lane word."""
    return [slice(i, min(i + FLAG_GROUP, n)) for i in range(0, n, FLAG_GROUP)]


def group_flags(word: Value) -> tuple[Value, Value]:
    """Per FLAG_GROUP-lane group of `word`: a 1 (`nz`), two or more (`multi`); the spike encoder decides
    "at most one 1 left" from them (hw/spike_encoder.py)."""
    groups = flag_groups(len(word))
    return Cat(*(word[g].any() for g in groups)), Cat(*(at_least(word[g], 2) for g in groups))
