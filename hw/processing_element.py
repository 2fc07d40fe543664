"""One processing element: decodes a weight code and adds it to its accumulator. No multiplier."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import WEIGHT_BITS, WeightScheme, pot_magnitudes
from mintaccel.core.hwconfig import weight_max_for_bits


def decoded_shape(weight_bits: int):
    return signed(weight_max_for_bits(weight_bits).bit_length() + 1)


class ProcessingElement(wiring.Component):
    """acc <- init on `load`; acc <- acc + w(code) on `enable` (add, subtract or skip a zero).

    Weight codes (docs/microarchitecture.md): uniform b-bit two's complement; binary 0/1 = -1/+1;
    pot sign bit b-1 and magnitude code m decoded by a constant table (core.encodings.pot_magnitudes).
    """

    def __init__(self, weight_bits: int, acc_bits: int):
        if not 1 <= weight_bits <= 8:
            raise ValueError(f"weight_bits must be in 1..8, not {weight_bits}")
        if acc_bits < decoded_shape(weight_bits).width:
            raise ValueError(f"acc_bits {acc_bits} cannot hold one weight of {weight_bits} bits")
        self.weight_bits = weight_bits
        self.acc_bits = acc_bits
        super().__init__({
            "code": In(weight_bits),
            "scheme": In(WeightScheme),
            "bits": In(4),
            "load": In(1),
            "init": In(signed(acc_bits)),
            "enable": In(1),
            "weight": Out(decoded_shape(weight_bits)),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        wb = self.weight_bits
        with m.Switch(self.scheme):
            with m.Case(WeightScheme.uniform):
                with m.Switch(self.bits):
                    for b in WEIGHT_BITS[WeightScheme.uniform]:
                        if b <= wb:
                            with m.Case(b):
                                m.d.comb += self.weight.eq(self.code[:b].as_signed())
            with m.Case(WeightScheme.binary):
                m.d.comb += self.weight.eq(Mux(self.code[0], 1, -1))
            with m.Case(WeightScheme.pot):
                with m.Switch(self.bits):
                    for b in WEIGHT_BITS[WeightScheme.pot]:
                        if b <= wb:
                            with m.Case(b):
                                self._pot(m, b)
        with m.If(self.load):
            m.d.sync += self.acc.eq(self.init)
        with m.Elif(self.enable):
            m.d.sync += self.acc.eq(self.acc + self.weight)
        return m

    def _pot(self, m, b):
        sign, mag = self.code[b - 1], self.code[:b - 1]
        with m.Switch(mag):
            for c, magnitude in enumerate(pot_magnitudes(b)):
                if c:  # code 0 is the zero weight: `weight` stays 0
                    with m.Case(c):
                        m.d.comb += self.weight.eq(Mux(sign, -magnitude, magnitude))
