"""The encoding tables every layer shares: the codes the hardware stores and decodes, written once.

docs/microarchitecture.md (weight codes, register map, host interface) and docs/arithmetic.md (weight
formats) define them. Codes that are hardware values are `amaranth.lib.enum` enums, usable as port and
register shapes; importing this module elaborates nothing. An enum member's name is the spelling the
model file and `mintaccel.core.model` use (`WeightScheme["pot"]`, `LeakKind[leak.kind]`,
`member.name`), so the string <-> code mapping needs no second table.
"""

from __future__ import annotations

from amaranth.lib import enum


class WeightScheme(enum.Enum, shape=2):
    """The `weight_scheme` register and the PE's `scheme` port."""

    uniform = 0
    """b-bit two's complement on the signed narrow-range grid."""
    binary = 1
    """Code 0 = -1, code 1 = +1."""
    pot = 2
    """Power of two: sign bit b-1 and magnitude code m in bits 0..b-2 (`pot_magnitudes`)."""


class LeakKind(enum.Enum, shape=2):
    """The `leak_kind` register and the threshold unit's `leak_kind` port (docs/arithmetic.md step 5)."""

    none = 0
    """L = R."""
    shift = 1
    """L = sr(R, k)."""
    decay = 2
    """L = R - sr(R, k)."""


class ResetMode(enum.Enum, shape=1):
    """The `reset` register and the threshold unit's `reset_mode` port (docs/arithmetic.md step 4)."""

    hard = 0
    """A spiking neuron's membrane becomes 0."""
    soft = 1
    """A spiking neuron's membrane loses the threshold."""


class LoadSpace(enum.Enum, shape=2):
    """The `space` field of a host-interface `load` write."""

    registers = 0
    """A register of the register map (`mintaccel.hw.registers`)."""
    weights = 1
    """A weight word: one code per bank at one address."""
    biases = 2
    """A bias word: one bias per lane at one membrane address."""


#: Storage bits each weight scheme supports (docs/arithmetic.md, weight formats).
WEIGHT_BITS: dict[WeightScheme, tuple[int, ...]] = {
    WeightScheme.uniform: (2, 3, 4, 8),
    WeightScheme.binary: (1,),
    WeightScheme.pot: (2, 3, 4),
}

#: Stored membrane widths in bits (signed narrow range).
MEMBRANE_BITS = (2, 3, 4, 8)


def pot_magnitudes(bits: int) -> tuple[int, ...]:
    """The power-of-two rule: entry m is |w| of magnitude code m of a `bits`-bit pot weight, 0 for
    m = 0 and 2^(m-1) for m = 1 .. 2^(bits-1) - 1 (ascending, so the code of |w| is its index)."""
    return (0,) + tuple(1 << (m - 1) for m in range(1, 1 << (bits - 1)))


def address_bits(depth: int) -> int:
    """Address width of a memory of `depth` words: ceil(log2(depth)), at least 1 (a 1-word memory
    still has an address port)."""
    return max(1, (depth - 1).bit_length())
