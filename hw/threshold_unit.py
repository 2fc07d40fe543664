"""The shift-based threshold unit of one PE lane: integrate, fire, reset, leak, clamp (combinational).

docs/arithmetic.md steps 2-6. The leak is a variable arithmetic shift rounding toward zero,
`(R + (R < 0 ? 2^k - 1 : 0)) >>> k`: an add and a shift, no multiplier.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

LEAK_NONE, LEAK_SHIFT, LEAK_DECAY = 0, 1, 2


class ThresholdUnit(wiring.Component):
    def __init__(self, membrane_bits: int, acc_bits: int):
        if membrane_bits not in (2, 3, 4, 8):
            raise ValueError(f"membrane_bits must be 2, 3, 4 or 8, not {membrane_bits}")
        if acc_bits < membrane_bits:
            raise ValueError("acc_bits must be at least membrane_bits")
        self.membrane_bits, self.acc_bits = membrane_bits, acc_bits
        super().__init__({
            "u": In(signed(membrane_bits)),
            "acc": In(signed(acc_bits)),
            "threshold": In(acc_bits - 1),
            "soft": In(1),
            "leak_kind": In(2),
            "leak_k": In(4),
            "membrane_max": In(membrane_bits - 1),
            "valid": In(1),
            "spike": Out(1),
            "u_next": Out(signed(membrane_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        wide = signed(self.acc_bits + 1)  # |u + acc| fits (docs/arithmetic.md section 3), plus headroom
        h, r, sr, leaked = (Signal(wide, name=n) for n in ("h", "r", "sr", "leaked"))
        mask = Signal(16)
        theta = self.threshold  # unsigned; mixed-sign comparison zero-extends it
        m.d.comb += h.eq(self.u + self.acc)
        fire = Signal()
        m.d.comb += fire.eq(h >= theta)
        m.d.comb += self.spike.eq(fire & self.valid)
        m.d.comb += r.eq(Mux(fire, Mux(self.soft, h - theta, 0), h))
        m.d.comb += mask.eq((Const(1, 17) << self.leak_k) - 1)
        m.d.comb += sr.eq((r + Mux(r < 0, mask, 0)) >> self.leak_k)
        with m.Switch(self.leak_kind):
            with m.Case(LEAK_SHIFT):
                m.d.comb += leaked.eq(sr)
            with m.Case(LEAK_DECAY):
                m.d.comb += leaked.eq(r - sr)
            with m.Default():
                m.d.comb += leaked.eq(r)
        q = self.membrane_max
        clamped = Mux(leaked > q, q, Mux(leaked < -q, -q, leaked))
        m.d.comb += self.u_next.eq(clamped)
        # Formal: every membrane written back is on its grid (docs/arithmetic.md step 6). Stated on the
        # expression, not on `u_next`, so the simulator never checks it against a half-settled value.
        m.d.comb += Assert((clamped <= q) & (clamped >= -q))
        return m
