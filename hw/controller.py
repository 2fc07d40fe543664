"""The controller: sequences time steps x layers x neuron groups (docs/microarchitecture.md).

Per group: START (read membrane and bias words, issue the first event read), ACC (event index ->
weight address -> N_PE weights -> accumulate, a two-stage pipeline), FIRE (the threshold units take
H = u + acc). The threshold pipeline writes a group back THRESHOLD_LATENCY cycles after its FIRE,
overlapping the next group; after a layer's last group DRAIN waits for it. Every phase's cycle count
is the one the doc states; `cycles` and `stall_cycles` count them.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.core.hwconfig import THRESHOLD_LATENCY, HwConfig
from mintaccel.hw.registers import layer_layout


class Controller(wiring.Component):
    def __init__(self, cfg: HwConfig):
        self.cfg = cfg
        count_bits = cfg.max_inputs.bit_length()
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "n_layers": In(range(cfg.max_layers + 1)),
            "timesteps": In(range(cfg.max_timesteps + 1)),
            "layer": Out(range(cfg.max_layers)),
            "regs": In(layer_layout(cfg)),
            "cur": Out(layer_layout(cfg)),  # the current layer's registers, copied at SETUP
            "step": Out(range(cfg.max_timesteps)),
            "group": Out(range(cfg.spike_words + 1)),  # counts up to G after the last group
            "first_step": Out(1),
            # spike encoder
            "enc_start": Out(1),
            "enc_finish": In(1),
            "enc_stall": In(1),
            "enc_count": In(count_bits),
            "from_host": Out(1),
            # event memory read (sync)
            "ev_raddr": Out(cfg.index_bits),
            "ev_ren": Out(1),
            "ev_rdata": In(cfg.index_bits),
            # weight memory read (sync)
            "w_raddr": Out(address_bits(cfg.weight_depth)),
            "w_ren": Out(1),
            # membrane and bias memories: read at START; written back by the threshold pipeline
            "m_addr": Out(address_bits(cfg.membrane_depth)),
            "m_ren": Out(1),
            # write-back of a group, LATENCY cycles after its FIRE: membrane word, spike word, probe
            "wb_valid": Out(1),
            "wb_addr": Out(address_bits(cfg.membrane_depth)),
            "wb_group": Out(range(cfg.spike_words)),
            "wb_step": Out(range(cfg.max_timesteps)),
            "wb_layer": Out(range(cfg.max_layers)),
            # PE array and threshold units
            "pe_load": Out(1),
            "pe_enable": Out(1),
            "fire": Out(1),
            "lanes": Out(cfg.n_pe),
            # output of the last layer's spike words
            "out_addr": Out(range(cfg.spike_words)),
            "spikes_out": Out(stream.Signature(cfg.n_pe)),
            "out_data": In(cfg.n_pe),
            "cycles": Out(32),
            "stall_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        regs = self.regs
        issued = Signal(range(cfg.max_inputs + 1))  # event reads issued in this group
        s1 = Signal()  # event data valid (weight read issued)
        s2 = Signal()  # weight data valid (accumulate)
        first = Signal()  # first ACC cycle of a group: load the accumulators with the biases
        wbase = Signal.like(self.w_raddr)
        remaining = Signal(range(cfg.max_neurons + 1))  # neurons of this group and later ones
        last_group = remaining <= cfg.n_pe

        m.d.comb += [
            self.first_step.eq(self.step == 0),
            self.w_raddr.eq(wbase + self.ev_rdata),
            self.w_ren.eq(s1),
            self.pe_enable.eq(s2),
            self.spikes_out.payload.eq(self.out_data),
        ]
        for i in range(cfg.n_pe):
            m.d.comb += self.lanes[i].eq(remaining > i)
        m.d.sync += [s2.eq(s1), s1.eq(0)]

        # the write-back side of the threshold pipeline: what FIRE saw, LATENCY cycles later
        sidecar = [(self.fire, self.wb_valid), (self.m_addr, self.wb_addr), (self.group, self.wb_group),
                   (self.step, self.wb_step), (self.layer, self.wb_layer)]
        for src, dst in sidecar:
            chain = [src] + [Signal.like(dst, name=f"{dst.name}_d{i}") for i in range(1, THRESHOLD_LATENCY)]
            for a, b in zip(chain, chain[1:]):
                m.d.sync += b.eq(a)
            m.d.sync += dst.eq(chain[-1])
        drain = Signal(range(THRESHOLD_LATENCY + 1))
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        def issue_event():
            """Issue the next event-memory read if any is left; returns whether one was issued."""
            more = issued < self.enc_count
            m.d.comb += [self.ev_raddr.eq(issued), self.ev_ren.eq(more)]
            with m.If(more):
                m.d.sync += [issued.eq(issued + 1), s1.eq(1)]
            return more

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.cycles.eq(1), self.stall_cycles.eq(0), self.step.eq(0), self.layer.eq(0)]
                    m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += [self.busy.eq(1), self.enc_start.eq(1)]
                m.d.sync += [wbase.eq(regs.weight_base), self.m_addr.eq(regs.membrane_base),
                             remaining.eq(regs.n_out), self.group.eq(0), self.cur.eq(regs)]
                m.next = "ENCODE"
            with m.State("ENCODE"):
                m.d.comb += [self.busy.eq(1), self.from_host.eq(self.layer == 0)]
                with m.If(self.enc_stall):
                    m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
                with m.If(self.enc_finish):
                    m.next = "START"
            with m.State("START"):
                m.d.comb += [self.busy.eq(1), self.m_ren.eq(1)]
                m.d.sync += [issued.eq(0), first.eq(1)]
                m.d.comb += [self.ev_raddr.eq(0), self.ev_ren.eq(self.enc_count != 0)]
                with m.If(self.enc_count != 0):
                    m.d.sync += [issued.eq(1), s1.eq(1)]
                m.next = "ACC"
            with m.State("ACC"):
                m.d.comb += [self.busy.eq(1), self.pe_load.eq(first)]
                m.d.sync += first.eq(0)
                more = issue_event()
                with m.If(~more & ~s1):
                    m.next = "FIRE"
            with m.State("FIRE"):
                m.d.comb += [self.busy.eq(1), self.fire.eq(1)]
                m.d.sync += [self.group.eq(self.group + 1), self.m_addr.eq(self.m_addr + 1),
                             wbase.eq(wbase + self.cur.n_in), remaining.eq(remaining - cfg.n_pe)]
                with m.If(~last_group):
                    m.next = "START"
                with m.Else():
                    m.d.sync += drain.eq(THRESHOLD_LATENCY)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                # the layer's last write-back happens in the last DRAIN cycle
                m.d.comb += self.busy.eq(1)
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 1):
                    with m.If(self.layer + 1 < self.n_layers):
                        m.d.sync += self.layer.eq(self.layer + 1)
                        m.next = "SETUP"
                    with m.Else():
                        m.d.sync += self.out_addr.eq(0)
                        m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), self.spikes_out.valid.eq(1)]
                with m.If(self.spikes_out.ready):
                    m.d.sync += self.out_addr.eq(self.out_addr + 1)
                    with m.If(self.out_addr + 1 == self.group):
                        with m.If(self.step + 1 == self.timesteps):
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [self.step.eq(self.step + 1), self.layer.eq(0)]
                            m.next = "SETUP"
                with m.Else():
                    m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
