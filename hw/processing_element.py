"""One processing element: decodes a weight code and adds it to its accumulator. No multiplier."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Const, Module, Mux, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import WeightScheme, pot_magnitudes
from mintaccel.core.hwconfig import weight_max_for_bits
from mintaccel.core.model import WeightFormat


def decoded_shape(weight_bits: int):
    return signed(weight_max_for_bits(weight_bits).bit_length() + 1)


def pe_formats(weight_bits: int) -> tuple[WeightFormat, ...]:
    """The weight formats a PE of `weight_bits`-bit codes decodes: one `format` flag each, in this order."""
    return tuple(f for f in WeightFormat.every() if f.bits <= weight_bits)


def format_flags(scheme: Value, bits: Value, weight_bits: int) -> Value:
    """The PE's one-hot `format` from a layer's `weight_scheme` and `weight_bits` registers (all 0 for a
    format the PE does not decode: its weights are then 0)."""
    return Cat(*((scheme == f.code) & (bits == f.bits) for f in pe_formats(weight_bits)))


def format_index(fmt: WeightFormat, weight_bits: int) -> int:
    """The `format` flag of `fmt` (for a testbench)."""
    return pe_formats(weight_bits).index(fmt)


class ProcessingElement(wiring.Component):
    """acc <- init on `load`; acc <- acc + w(code) on `enable` (add, subtract or skip a zero).

    Weight codes (docs/microarchitecture.md): uniform b-bit two's complement; binary 0/1 = -1/+1;
    pot sign bit b-1 and magnitude code m decoded by a constant table (core.encodings.pot_magnitudes).
    The format comes one-hot (`format`, one flag per pe_formats entry; the PE array registers it once
    per layer from the layer's scheme and bits), so a weight bit is a function of the code and a few
    flags, not of the 6-bit scheme and bits fields: one LUT level fewer before the adder.
    """

    def __init__(self, weight_bits: int, acc_bits: int, registered_weight: bool = False):
        """`registered_weight`: `weight` is the decode of the previous cycle's `code` and `format` (a
        register), so the decode and the adder sit in different cycles (the PE array's iCE40 choice)."""
        if not 1 <= weight_bits <= 8:
            raise ValueError(f"weight_bits must be in 1..8, not {weight_bits}")
        if acc_bits < decoded_shape(weight_bits).width:
            raise ValueError(f"acc_bits {acc_bits} cannot hold one weight of {weight_bits} bits")
        self.weight_bits = weight_bits
        self.acc_bits = acc_bits
        self.formats = pe_formats(weight_bits)
        self.registered_weight = registered_weight
        super().__init__({
            "code": In(weight_bits),
            "format": In(len(self.formats)),
            "load": In(1),
            "init": In(signed(acc_bits)),
            "enable": In(1),
            "weight": Out(decoded_shape(weight_bits)),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        shape = decoded_shape(self.weight_bits)
        # the flags are one-hot: the weight is the OR of each format's decode gated by its flag
        decoded = reduce(or_, (Mux(self.format[k], self._decode(f), Const(0, shape))
                               for k, f in enumerate(self.formats)))
        if self.registered_weight:
            m.d.sync += self.weight.eq(decoded)
        else:
            m.d.comb += self.weight.eq(decoded)
        with m.If(self.load):
            m.d.sync += self.acc.eq(self.init)
        with m.Elif(self.enable):
            m.d.sync += self.acc.eq(self.acc + self.weight)
        return m

    def _decode(self, f: WeightFormat) -> Value:
        b, code = f.bits, self.code
        if f.code == WeightScheme.uniform:
            return code[:b].as_signed()
        if f.code == WeightScheme.binary:
            return Mux(code[0], 1, -1)
        sign, mag = code[b - 1], code[:b - 1]
        # a chain of selects, not an Array lookup: that becomes a ROM, which the formal proof cannot hold
        magnitude = Const(0, decoded_shape(self.weight_bits))
        for c, v in enumerate(pot_magnitudes(b)):
            if c:  # code 0 is the zero weight
                magnitude = Mux(mag == c, v, magnitude)
        return Mux(sign, -magnitude, magnitude)
