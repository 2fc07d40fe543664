"""N_PE processing elements fed by the weight memory (one lane of each word per PE), one neuron each.

The weight codes are registered as they leave the memory, or their decoded weights (the iCE40 build: see
`__init__`), and `enable` with them, so the memory's clock-to-output and the accumulate sit in
different cycles: an `enable` in cycle c adds the
codes of cycle c at the end of cycle c + 1. The layer's weight format (`scheme`, `bits`) reaches the PEs
one-hot through a register (processing_element.format_flags): it changes only at a layer's SETUP, at
least five cycles before the layer's first accumulate."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import WeightScheme
from mintaccel.hw.processing_element import ProcessingElement, format_flags, pe_formats


class PEArray(wiring.Component):
    def __init__(self, n_pe: int, weight_bits: int, acc_bits: int, bias_bits: int = 0, reset_less_codes: bool = False):
        """`reset_less_codes`: the code register without a reset, so that the ECP5 flow can move it into the
        weight block RAM's output register (flows/bram_outreg.py); `enable` is reset, so a stale code never
        counts. Otherwise (the iCE40's choice: its block RAMs and SPRAMs have no output register) the
        register holds the decoded weights instead (ProcessingElement(registered_weight=True)): the
        decode sits behind the memory, not in front of the accumulators' adders (on the UP5K MNIST build
        of 32 PEs, two LUT levels off the paths into its 352 accumulator bits); the same cycles."""
        if n_pe < 1:
            raise ValueError("n_pe must be at least 1")
        self.n_pe, self.weight_bits, self.acc_bits, self.bias_bits = n_pe, weight_bits, acc_bits, bias_bits
        self.reset_less_codes = reset_less_codes
        super().__init__({
            "codes": In(n_pe * weight_bits),
            "biases": In(max(1, n_pe * bias_bits)),
            "bias_enable": In(1),
            "scheme": In(WeightScheme),
            "bits": In(4),
            "load": In(1),
            "enable": In(1),
            "accs": Out(data.ArrayLayout(signed(acc_bits), n_pe)),
        })

    def elaborate(self, platform):
        m = Module()
        wb, bb = self.weight_bits, self.bias_bits
        enable, fmt = Signal(), Signal(len(pe_formats(wb)))
        m.d.sync += [enable.eq(self.enable), fmt.eq(format_flags(self.scheme, self.bits, wb))]
        if self.reset_less_codes:
            codes = Signal.like(self.codes, reset_less=True)
            m.d.sync += codes.eq(self.codes)
        else:
            codes = self.codes  # decoded into each PE's weight register
        for i in range(self.n_pe):
            pe = m.submodules[f"pe{i}"] = ProcessingElement(wb, self.acc_bits,
                                                            registered_weight=not self.reset_less_codes)
            bias = self.biases[i * bb:(i + 1) * bb].as_signed() if bb else 0
            m.d.comb += [
                pe.code.eq(codes[i * wb:(i + 1) * wb]),
                pe.format.eq(fmt),
                pe.load.eq(self.load), pe.enable.eq(enable),
                pe.init.eq(bias),
                self.accs[i].eq(pe.acc),
            ]
            if bb:
                with m.If(~self.bias_enable):
                    m.d.comb += pe.init.eq(0)
        return m
