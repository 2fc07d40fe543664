"""The shift-based threshold unit of one PE lane: integrate, fire, reset, leak, clamp.

docs/arithmetic.md steps 2-6, pipelined so that each stage holds at most one carry chain and a few
LUT levels (docs/microarchitecture.md, "Threshold pipeline"):

    input cycle  H = u + acc                                    -> stage 1
    stage 1      D = H - theta; fire = D >= 0; R = reset(H, D)  -> stage 2
    stage 2      A = R + (R < 0 ? 2^k - 1 : 0)                  -> stage 3   (shift toward zero:
    stage 3      S = A >>> k                                    -> stage 4    the rounding add, the shift)
    stage 4      L = R, S or R - S (none, shift, decay)         -> stage 5
    stage 5      C = clamp(L, -Q, Q)                            -> stage 6
    stage 6      u_next = C; outputs valid                      (LATENCY cycles after the input cycle)

The clamp has a stage of its own so that the membrane word written back comes from registers (the
block RAM's write data is slow to set up on the iCE40).

The layer parameters (threshold, reset, leak, Q) must stay constant while values are in flight.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import MEMBRANE_BITS, LeakKind, ResetMode
from mintaccel.core.hwconfig import THRESHOLD_LATENCY


class ThresholdUnit(wiring.Component):
    LATENCY = THRESHOLD_LATENCY
    """Cycles from the cycle `valid_in` is high to the cycle `valid_out` is high with the result (the
    six stages above; the cycle model's LAYER_DRAIN is the same core constant)."""

    def __init__(self, membrane_bits: int, acc_bits: int, assertions: bool = True):
        """`assertions`: include the formal/simulation `Assert` (Verilog `assert`, which plain Verilog
        readers reject); synthesis builds leave it out (docs/microarchitecture.md, "Generated Verilog")."""
        if membrane_bits not in MEMBRANE_BITS:
            raise ValueError(f"membrane_bits must be 2, 3, 4 or 8, not {membrane_bits}")
        if acc_bits < membrane_bits:
            raise ValueError("acc_bits must be at least membrane_bits")
        self.membrane_bits, self.acc_bits, self.assertions = membrane_bits, acc_bits, assertions
        super().__init__({
            "valid_in": In(1),
            "lane": In(1),
            "u": In(signed(membrane_bits)),
            "acc": In(signed(acc_bits)),
            "threshold": In(acc_bits - 1),
            "reset_mode": In(ResetMode),
            "leak_kind": In(LeakKind),
            "leak_k": In(4),
            "membrane_max": In(membrane_bits - 1),
            "valid_out": Out(1),
            "spike": Out(1),
            "u_next": Out(signed(membrane_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        wide = signed(self.acc_bits + 1)  # |u + acc| fits (docs/arithmetic.md section 3), plus headroom
        v = [Signal(name=f"valid{i}") for i in range(1, self.LATENCY + 1)]
        lane1 = Signal()
        spike = [Signal(name=f"spike{i}") for i in range(2, self.LATENCY + 1)]  # spike2 .. spike6
        h1, r2, r3, r4, s4, l5 = (Signal(wide, name=n) for n in ("h1", "r2", "r3", "r4", "s4", "l5"))
        a3 = Signal(signed(max(self.acc_bits + 1, 16) + 2))  # R plus a mask of up to 2^15 - 1
        m.d.sync += [v[0].eq(self.valid_in)] + [b.eq(a) for a, b in zip(v, v[1:])]
        m.d.sync += [b.eq(a) for a, b in zip(spike, spike[1:])]

        # input cycle: integrate
        m.d.sync += [h1.eq(self.u + self.acc), lane1.eq(self.lane)]

        # stage 1: one subtraction gives both the comparison (its sign) and the soft-reset value
        d = Signal(wide)
        fire = Signal()
        m.d.comb += [d.eq(h1 - self.threshold), fire.eq(d >= 0)]
        soft = self.reset_mode == ResetMode.soft
        m.d.sync += [spike[0].eq(fire & lane1), r2.eq(Mux(fire, Mux(soft, d, 0), h1))]

        # stages 2 and 3: arithmetic shift right rounding toward zero. The mask 2^k - 1 is registered
        # from the (constant while in flight) layer parameter, off the data path.
        mask = Signal(16)
        m.d.sync += mask.eq((Const(1, 17) << self.leak_k) - 1)
        m.d.sync += [a3.eq(r2 + Mux(r2 < 0, mask, 0)), r3.eq(r2)]
        m.d.sync += [s4.eq(a3 >> self.leak_k), r4.eq(r3)]

        # stage 4: leak form
        with m.Switch(self.leak_kind):
            with m.Case(LeakKind.shift):
                m.d.sync += l5.eq(s4)
            with m.Case(LeakKind.decay):
                m.d.sync += l5.eq(r4 - s4)
            with m.Default():
                m.d.sync += l5.eq(r4)

        # stage 5: clamp to the membrane grid, Q < 2^(m-1): compare the low m-1 bits with Q and test the
        # high bits for all zeros (or all ones) in OR trees, with no carry chain across the wide value
        q, low = self.membrane_max, self.membrane_bits - 1
        neg = l5[-1]
        inv = ~l5  # for l5 < 0: l5 < -Q  <=>  ~l5 >= Q
        over = ~neg & ((l5[low:-1] != 0) | (l5[:low] > q))
        under = neg & ((inv[low:-1] != 0) | (inv[:low] >= q))
        clamped = Mux(over, q, Mux(under, -q, l5))
        c6 = Signal(signed(self.membrane_bits))
        m.d.sync += c6.eq(clamped)
        m.d.comb += [self.u_next.eq(c6), self.spike.eq(spike[-1]), self.valid_out.eq(v[-1])]
        # Formal: every membrane written back is on its grid (docs/arithmetic.md step 6). Stated on the
        # expression, not on `u_next`, so the simulator never checks it against a half-settled value.
        if self.assertions:
            m.d.comb += Assert((clamped <= q) & (clamped >= -q))
        return m
