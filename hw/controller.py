"""The controller: sequences time steps x layers x neuron groups (docs/microarchitecture.md).

Group 0 of a layer accumulates during ENCODE, from the events as the encoder finds them (its membrane
and bias words are read in ENCODE's first cycle), and fires 5 cycles after ENCODE's DONE cycle; the
other groups read the events back from the event memory.
Per later group: START (read membrane and bias words, issue the first event read), ACC (event index ->
weight address (registered) -> N_PE weight codes (registered in the PE array; on the iCE40 their decoded
weights) -> accumulate, a four-stage pipeline), FIRE (the threshold units take the group: P = lanes per
unit beats, the first in the FIRE cycle). With `fast_event_reads` (the ECP5 build's choice, same cycles)
the event reads run one cycle ahead, the first in the previous group's FIRE, and the event memory's data
is registered before the address adder (in the block RAM's output register: flows/bram_outreg.py), so
the block RAM's clock-to-output and the adder are not one path; `fire` is then a register too. A group
lasts at least 5 cycles, and its FIRE comes at least P cycles after the previous one's, so the shared
units are free again (ACC waits when a group has fewer than P - 5 events). The threshold pipeline writes
a group back P - 1 + THRESHOLD_LATENCY cycles after its FIRE, overlapping the next group; after a
layer's last group DRAIN waits for it. Every phase's cycle count is the one the doc states; `cycles` and
`stall_cycles` count them.

A conv build (`max_map_words > 0`, docs/microarchitecture.md "Conv networks") runs a layer's ENCODE,
group 0 and later groups once per output position, with the weight base and the lanes restarting and
the membrane and spike words running on; a layer that reads a map buffer has a second SETUP cycle
(its map reader starts in the first, so its first word is queued when the encoder asks for it); each
step whose layer 0 reads a map begins with LOAD (the input map's words into map buffer 0).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.core.hwconfig import MAP_SETUP, THRESHOLD_LATENCY, HwConfig
from mintaccel.hw.gates import thermometer
from mintaccel.hw.one_hot_fsm import OneHotFSM
from mintaccel.hw.registers import layer_layout


class Controller(wiring.Component):
    def __init__(self, cfg: HwConfig, fast_event_reads: bool = False, assertions: bool = True):
        self.cfg, self.fast_event_reads, self.assertions = cfg, fast_event_reads, assertions
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
            "first_step": Out(1, init=1),  # 1 out of reset too: u reads as 0, never an unread RAM word
            # spike encoder
            "enc_start": Out(1),
            "enc_finish": In(1),
            "enc_stall": In(1),
            "enc_count": In(count_bits),
            # the encoder's events as it finds them: group 0 accumulates them during ENCODE
            "enc_event_valid": In(1),
            "enc_event_index": In(cfg.index_bits),
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
            **({
                "load_words": In(range(cfg.max_map_words + 1)),
                "loading": Out(1),  # LOAD: spikes_in words go to map buffer 0 at load_addr
                "load_addr": Out(address_bits(cfg.max_map_words)),
                "load_valid": In(1),
                "reader_start": Out(1),  # the map reader copies `regs` and starts (first SETUP cycle)
                "b_addr": Out(address_bits(cfg.membrane_depth)),  # bias word: bias_base + group of the position
                "out_raddr": Out(range(cfg.spike_words)),  # the map buffer read for OUTPUT's next word
            } if cfg.max_map_words else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        regs = self.regs
        issued = Signal(range(cfg.max_inputs + 1))  # event reads issued in this group
        fast = self.fast_event_reads
        if fast:
            s0 = Signal()  # event memory data valid (registered into ev_index)
            ev_index = Signal.like(self.ev_rdata, reset_less=True)  # a block RAM output register (flows/bram_outreg.py)
        s1 = Signal()  # event index valid: the weight address is computed
        s1b = Signal()  # the weight address is in its register: weight read issued
        s2 = Signal()  # weight data valid (accumulate)
        w_raddr = Signal.like(self.w_raddr)
        first = Signal()  # first ACC cycle of a group: load the accumulators with the biases
        wbase = Signal.like(self.w_raddr)
        remaining = Signal(range(cfg.max_neurons + 1))  # neurons of this group and later ones
        last_group = Signal()  # remaining <= n_pe, registered like `lanes`
        p = cfg.lanes_per_unit
        writeback = THRESHOLD_LATENCY + p - 1  # FIRE -> the group's write-back (and a layer's DRAIN)
        # FIRE comes at least `fire_at` cycles after START: 4 (the event -> address -> weight -> code pipeline of
        # an event read at START), or P - 1 so that the shared threshold units are free again.
        # `elapsed` counts the ACC cycles up to fire_at - 1.
        fire_at = max(4, p - 1)
        elapsed = Signal(range(fire_at))
        may_fire = elapsed >= fire_at - 1

        m.d.comb += [
            self.w_raddr.eq(w_raddr),
            self.w_ren.eq(s1b),
            self.pe_enable.eq(s2),
            self.spikes_out.payload.eq(self.out_data),
        ]
        # registered from `remaining` every cycle: it changes at SETUP and FIRE, and is next needed at a
        # FIRE at least three cycles later
        m.d.sync += self.lanes.eq(thermometer(remaining, cfg.n_pe))
        m.d.sync += last_group.eq(remaining <= cfg.n_pe)
        # the weight address (base + event index) is registered before it reaches the weight memory. The
        # index is the event memory's (groups 1 ..) or, during ENCODE, the encoder's own (group 0)
        # (through a register of its own: the encoder's index comes out of an OR tree)
        enc_valid, enc_index = Signal(), Signal.like(self.enc_event_index)
        m.d.sync += [enc_valid.eq(self.enc_event_valid), enc_index.eq(self.enc_event_index)]
        if fast:
            m.d.sync += ev_index.eq(self.ev_rdata)
        index = Mux(s1, ev_index if fast else self.ev_rdata, enc_index)
        m.d.sync += [w_raddr.eq(wbase + index), s1b.eq(s1 | enc_valid)]
        # group 0's membrane / bias read and accumulator load, in ENCODE's first and second cycles
        g0_read, g0_load = Signal(), Signal()
        m.d.sync += [g0_read.eq(0), g0_load.eq(g0_read), self.enc_start.eq(0)]
        m.d.sync += [s2.eq(s1b), s1.eq(0)]
        if fast:
            m.d.sync += [s1.eq(s0), s0.eq(0)]

        # the write-back side of the threshold pipeline: what FIRE saw, LATENCY cycles later
        conv = bool(cfg.max_map_words)
        sidecar = [(self.fire, self.wb_valid)]
        if conv:
            # a layer's groups are written back in order and all before its next layer's SETUP (DRAIN), so
            # the write-back's membrane word and group number are counters, and its step and layer the
            # current ones: no delay line of them (P - 1 + 6 registers each; what lets the MNIST conv build
            # place on the UP5K). A dense build keeps the delay lines: their copies are faster there
            # (UP5K default build 49.4 / 50.0 / 50.4 MHz vs 48.2 / 44.2 / 47.7 with the counters).
            m.d.comb += [self.wb_step.eq(self.step), self.wb_layer.eq(self.layer)]
            with m.If(self.wb_valid):
                m.d.sync += [self.wb_addr.eq(self.wb_addr + 1), self.wb_group.eq(self.wb_group + 1)]
        else:
            sidecar += [(self.m_addr, self.wb_addr), (self.group, self.wb_group), (self.step, self.wb_step),
                        (self.layer, self.wb_layer)]
        for src, dst in sidecar:
            chain = [src] + [Signal.like(dst, name=f"{dst.name}_d{i}") for i in range(1, writeback)]
            for a, b in zip(chain, chain[1:]):
                m.d.sync += b.eq(a)
            m.d.sync += dst.eq(chain[-1])
        drain = Signal(range(writeback + 1))
        # the FSM's end-of-loop tests come from registers: layer and step change only at the end of a
        # layer or step, and last_word is set as each output word is taken
        last_layer, last_step, last_word = Signal(), Signal(), Signal()
        m.d.sync += [last_layer.eq(self.layer + 1 >= self.n_layers), last_step.eq(self.step + 1 == self.timesteps)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        # a stall is counted one cycle late (off the encoder's decision path); the last one of a run is
        # counted by the end of its DONE cycle, as the doc's "read it after done" needs
        stalled, stalled_d = Signal(), Signal()
        m.d.sync += stalled_d.eq(stalled)
        with m.If(stalled_d):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)

        # `fire` (high exactly in FIRE) is a register set on the way in, not a decode of the FSM state: it
        # selects the threshold units' inputs, a wide fanout in front of their first adder
        if fast:
            fire_state = Signal()
            m.d.sync += fire_state.eq(0)
            m.d.comb += self.fire.eq(fire_state)
        more = Signal()  # an event read is left to issue: a register, so the FSM never waits on a compare
        # high exactly in OUTPUT, a register: `spikes_out.valid` leaves the chip and comes back as `ready`,
        # so a decode of the FSM state there put the host's handshake between two FSM decodes
        outputting = Signal()
        m.d.comb += self.spikes_out.valid.eq(outputting)
        position, last_position, last_load = Signal(range(cfg.spike_words + 1)), Signal(), Signal()
        units_free = 1
        if conv and p > 8:  # group 0 of a later position fires at least P cycles after the last FIRE
            since = Signal(range(p + 1), init=p)
            with m.If(self.fire):
                m.d.sync += since.eq(1)
            with m.Elif(since < p):
                m.d.sync += since.eq(since + 1)
            units_free = since >= p

        states = ["IDLE", "SETUP", *(["SETUP_MAP", "LOAD"] if conv else []), "ENCODE", "START", "ACC", "FIRE",
                  "DRAIN", "OUTPUT", "DONE"]
        # one flip-flop per state (hw/one_hot_fsm.py): a binary state's decode was in front of the step / layer
        # enables at OUTPUT's end (UP5K default build 48.9 / 47.7 / 47.7 MHz at seeds 1-3; one-hot 52.6 / 51.5 / 54.8)
        fsm = OneHotFSM(m, states, assertions=self.assertions)

        def next_step_or_run(state_if_no_load="SETUP"):
            """LOAD the input map first when layer 0 reads one (a conv build), else SETUP."""
            if not conv:
                fsm.goto(state_if_no_load)
                return
            m.d.sync += [self.load_addr.eq(0), last_load.eq(self.load_words <= 1)]
            with m.If(self.load_words != 0):
                fsm.goto("LOAD")
            with m.Else():
                fsm.goto(state_if_no_load)

        # whether a group has a first and a second event read is registered from the layer's event count
        # (stable from ENCODE's end on), so no compare of it sits in front of the event memory's enable
        # (and so is the last event's number, which loads `reads_left`, the reads still to issue after the
        # first: `more` then tests it against a constant, not `issued + 1 < enc_count`, an adder and a compare)
        has_events, many_events, last_event = Signal(), Signal(), Signal.like(self.enc_count)
        reads_left = Signal.like(self.enc_count)
        m.d.sync += [has_events.eq(self.enc_count != 0), many_events.eq(self.enc_count > 1),
                     last_event.eq(self.enc_count - 1)]
        # the event read address is the `issued` register itself: it returns to 0 once a group's reads are
        # done, so the next group's first read (in FIRE) needs no multiplexer
        if fast:
            # and the read enable comes from registers too: `more` is high only in START and ACC, and the
            # first read is FIRE's (a register) when a later group follows
            m.d.comb += [self.ev_raddr.eq(issued), self.ev_ren.eq(more | (fire_state & ~last_group & has_events))]

        def issue_event():
            """Issue the next event-memory read if any is left; returns whether one was issued."""
            if not fast:
                m.d.comb += [self.ev_raddr.eq(issued), self.ev_ren.eq(more)]
            with m.If(more):
                m.d.sync += [issued.eq(issued + 1), (s0 if fast else s1).eq(1), reads_left.eq(reads_left - 1),
                             more.eq(reads_left != 1)]
            if fast:
                with m.Else():
                    m.d.sync += issued.eq(0)
            return more

        with fsm.state("IDLE"):
            with m.If(self.start):
                # busy (high from SETUP to DONE) and first_step (step == 0) are registers: the host
                # interface's ready and the membranes' zeroing are not behind the FSM decode
                m.d.sync += [self.cycles.eq(1), self.stall_cycles.eq(0), self.step.eq(0), self.layer.eq(0),
                             self.first_step.eq(1), self.busy.eq(1)]
                next_step_or_run()
        with fsm.state("SETUP"):
            # the encoder starts in ENCODE's first cycle, from the layer's registers copied here
            m.d.sync += self.enc_start.eq(1)
            # from_host is a register (set here, high for exactly the ENCODE cycles of layer 0) so
            # that the encoder's input select is not behind the FSM decode
            m.d.sync += [wbase.eq(regs.weight_base), self.m_addr.eq(regs.membrane_base),
                         remaining.eq(regs.n_out), self.group.eq(0), self.cur.eq(regs),
                         self.from_host.eq(self.layer == 0), g0_read.eq(1), more.eq(0)]
            if conv:  # a layer that reads a map: the reader starts now, the encoder after SETUP_MAP
                m.d.sync += [self.wb_addr.eq(regs.membrane_base), self.wb_group.eq(0)]
                m.d.comb += self.reader_start.eq(regs.mapped)
                m.d.sync += [self.b_addr.eq(regs.bias_base), position.eq(0), last_position.eq(regs.positions <= 1),
                             self.from_host.eq((self.layer == 0) & ~regs.mapped)]
                with m.If(regs.mapped):
                    m.d.sync += [self.enc_start.eq(0), g0_read.eq(0)]
                    fsm.goto("SETUP_MAP")
                with m.Else():
                    fsm.goto("ENCODE")
            else:
                fsm.goto("ENCODE")
        if conv:
            with fsm.state("SETUP_MAP"):
                m.d.sync += [self.enc_start.eq(1), g0_read.eq(1)]
                fsm.goto("ENCODE")
            with fsm.state("LOAD"):
                m.d.comb += [self.loading.eq(1), stalled.eq(~self.load_valid)]
                with m.If(self.load_valid):
                    m.d.sync += [self.load_addr.eq(self.load_addr + 1), last_load.eq(self.load_addr + 2 >= self.load_words)]
                    with m.If(last_load):
                        fsm.goto("SETUP")
        with fsm.state("ENCODE"):
            # group 0 runs here: each event the encoder finds goes straight into the weight pipeline
            m.d.comb += [stalled.eq(self.enc_stall), self.m_ren.eq(g0_read), self.pe_load.eq(g0_load)]
            with m.If(self.enc_finish):
                # then ACC drains the pipeline: FIRE comes 5 cycles after the DONE cycle
                m.d.sync += [self.from_host.eq(0), elapsed.eq(fire_at - 4)]
                fsm.goto("ACC")
        with fsm.state("START"):
            m.d.comb += [self.m_ren.eq(1)]
            if fast:
                m.d.sync += [first.eq(1), elapsed.eq(1)]
                issue_event()  # the second event (the first was read in FIRE)
            else:
                m.d.sync += [issued.eq(0), first.eq(1), elapsed.eq(1), more.eq(many_events), reads_left.eq(last_event)]
                m.d.comb += [self.ev_raddr.eq(0), self.ev_ren.eq(has_events)]
                with m.If(has_events):
                    m.d.sync += [issued.eq(1), s1.eq(1)]
            fsm.goto("ACC")
        with fsm.state("ACC"):
            m.d.comb += [self.pe_load.eq(first)]
            m.d.sync += first.eq(0)
            more = issue_event()
            with m.If(~may_fire):
                m.d.sync += elapsed.eq(elapsed + 1)
            # FIRE is the group's cycle max(E + 4, P - 1) after START: the last weight is in the
            # accumulators and the threshold units are free
            reads_done = (~more & ~s0) if fast else ~more
            with m.If(reads_done & ~s1 & ~s1b & ~s2 & may_fire & units_free):
                if fast:
                    m.d.sync += fire_state.eq(1)
                fsm.goto("FIRE")
        with fsm.state("FIRE"):
            if not fast:
                m.d.comb += self.fire.eq(1)
            m.d.sync += [self.group.eq(self.group + 1), self.m_addr.eq(self.m_addr + 1),
                         wbase.eq(wbase + self.cur.n_in), remaining.eq(remaining - cfg.n_pe)]
            if conv:
                m.d.sync += self.b_addr.eq(self.b_addr + 1)
            with m.If(~last_group):
                if fast:  # the next group's first event read, a cycle ahead of its pipeline
                    m.d.sync += [issued.eq(has_events), s0.eq(has_events), more.eq(many_events),
                                 reads_left.eq(last_event)]
                fsm.goto("START")
            if conv:  # the next output position: ENCODE again, the weights and the lanes restart
                with m.Elif(~last_position):
                    m.d.sync += [self.enc_start.eq(1), g0_read.eq(1), more.eq(0), wbase.eq(self.cur.weight_base),
                                 remaining.eq(self.cur.n_out), self.b_addr.eq(self.cur.bias_base),
                                 position.eq(position + 1), last_position.eq(position + 2 >= self.cur.positions)]
                    fsm.goto("ENCODE")
            with m.Else():
                m.d.sync += drain.eq(writeback)
                fsm.goto("DRAIN")
        with fsm.state("DRAIN"):
            # the layer's last write-back happens in the last DRAIN cycle
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 1):
                with m.If(~last_layer):
                    m.d.sync += self.layer.eq(self.layer + 1)
                    fsm.goto("SETUP")
                with m.Else():
                    m.d.sync += [self.out_addr.eq(0), last_word.eq(self.group == 1), outputting.eq(1)]
                    fsm.goto("OUTPUT")
        with fsm.state("OUTPUT"):
            if conv:  # the map buffer is read a cycle ahead: the next word's address when this one goes
                m.d.comb += self.out_raddr.eq(Mux(self.spikes_out.ready, self.out_addr + 1, self.out_addr))
            with m.If(self.spikes_out.ready):
                m.d.sync += [self.out_addr.eq(self.out_addr + 1), last_word.eq(self.out_addr + 2 == self.group)]
                with m.If(last_word):
                    m.d.sync += outputting.eq(0)
                    with m.If(last_step):
                        fsm.goto("DONE")
                    with m.Else():
                        m.d.sync += [self.step.eq(self.step + 1), self.layer.eq(0), self.first_step.eq(0)]
                        next_step_or_run()
            with m.Else():
                m.d.comb += stalled.eq(1)
        with fsm.state("DONE"):
            m.d.comb += [self.done.eq(1)]
            m.d.sync += self.busy.eq(0)
            fsm.goto("IDLE")
        return m
