"""The accelerator: composes the blocks of docs/microarchitecture.md and does nothing else."""

from __future__ import annotations

from amaranth.hdl import Assert, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.hwconfig import HwConfig, check_fits, layout
from mintaccel.hw.controller import Controller
from mintaccel.hw.host_interface import HostInterface, load_layout
from mintaccel.hw.images import bias_words, weight_banks
from mintaccel.hw.map_buffers import MapBuffers
from mintaccel.hw.map_reader import MapReader
from mintaccel.hw.membrane_memory import MembraneMemory
from mintaccel.hw.pe_array import PEArray
from mintaccel.hw.registers import layer_values
from mintaccel.hw.spike_buffer import SpikeBuffer
from mintaccel.hw.spike_encoder import SpikeEncoder
from mintaccel.hw.sram import Sram
from mintaccel.hw.threshold_unit import ThresholdUnit
from mintaccel.hw.weight_memory import WeightMemory
from mintaccel.core.model import IntModel


def probe_layout(cfg: HwConfig) -> data.StructLayout:
    """One record per group write-back: what a testbench needs to check every layer and step."""
    return data.StructLayout({
        "valid": 1, "step": range(cfg.max_timesteps), "layer": range(cfg.max_layers),
        "group": range(cfg.spike_words), "spikes": cfg.n_pe, "membranes": cfg.n_pe * cfg.membrane_bits,
    })


class Accelerator(wiring.Component):
    def __init__(self, cfg: HwConfig, model: IntModel | None = None, assertions: bool = True,
                 weight_slice_bits: int = 0, bram_output_registers: bool = False):
        """With `model`, registers and memories start with the model loaded (see hw.registers).
        `assertions`: keep the RTL's `Assert`s (simulation and formal); False gives plain Verilog.
        `weight_slice_bits`: the weight memory in slices of that many bits (0: one memory; the FPGA
        flow's choice per target, flows/fit.py's weight_slice_bits). `bram_output_registers`: block-RAM reads end in
        plain registers that synthesis can move into the block RAMs' output registers (the ECP5 flow's
        choice, `Target.bram_output_registers`, flows/bram_outreg.py): the event memory has one address for
        writes and reads and the controller reads it a cycle ahead into a register (`fast_event_reads`),
        the PE array's weight codes have no reset; the same cycles either way."""
        if model is not None:
            check_fits(model, cfg)
        self.cfg, self.model, self.assertions = cfg, model, assertions
        self.weight_slice_bits, self.bram_output_registers = weight_slice_bits, bram_output_registers
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "spikes_in": In(stream.Signature(cfg.n_pe)),
            "spikes_out": Out(stream.Signature(cfg.n_pe)),
            "cycles": Out(32),
            "stall_cycles": Out(32),
            # not `trace`: Verilator's C++ model class has a method of that name
            "probe": Out(probe_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, model = self.cfg, self.model
        mb, n = cfg.membrane_bits, cfg.n_pe
        conv = bool(cfg.max_map_words)
        values = layer_values(model, cfg) if model else None
        m.submodules.host = host = HostInterface(
            cfg, values, len(values) if model else 0, model.timesteps if model else 0,
            layout(model, n).load_words if model and conv else 0)
        m.submodules.controller = ctrl = Controller(cfg, fast_event_reads=self.bram_output_registers,
                                                   assertions=self.assertions)
        m.submodules.encoder = enc = SpikeEncoder(n, cfg.max_inputs, maps=conv)
        m.submodules.pe_array = pes = PEArray(n, cfg.weight_bits, cfg.accumulator_bits, cfg.bias_bits,
                                                  reset_less_codes=self.bram_output_registers)
        preload = model is not None and not cfg.weight_spram  # SPRAM has no initial contents
        m.submodules.weights = wmem = WeightMemory(
            n, cfg.weight_bits, cfg.weight_depth, weight_banks(model, cfg).tolist() if preload else None,
            spram=bool(cfg.weight_spram), slice_bits=self.weight_slice_bits)
        m.submodules.membranes = mmem = MembraneMemory(n, mb, cfg.membrane_depth)
        m.submodules.events = evmem = Sram(cfg.index_bits, cfg.max_inputs)
        if conv:
            m.submodules.map_reader = reader = MapReader(n, cfg.max_map_words, cfg.index_bits)
            m.submodules.map_buffers = sbuf = MapBuffers(n, cfg.max_map_words, cfg.index_bits)
        else:
            m.submodules.spike_buffer = sbuf = SpikeBuffer(n, cfg.spike_words)
        regs, cur = host.layers[ctrl.layer], ctrl.cur

        wiring.connect(m, wiring.flipped(self.load), host.load)
        wiring.connect(m, ctrl.spikes_out, wiring.flipped(self.spikes_out))
        m.d.comb += [
            host.busy.eq(ctrl.busy),
            ctrl.start.eq(self.start), self.busy.eq(ctrl.busy), self.done.eq(ctrl.done),
            self.cycles.eq(ctrl.cycles), self.stall_cycles.eq(ctrl.stall_cycles),
            ctrl.n_layers.eq(host.n_layers), ctrl.timesteps.eq(host.timesteps), ctrl.regs.eq(regs),
            wmem.waddr.eq(host.w_waddr), wmem.wdata.eq(host.w_wdata), wmem.wen.eq(host.w_wen),
        ]

        # spike encoder: host words for layer 0, the spike buffer for the others -> event memory
        m.d.comb += [
            enc.start.eq(ctrl.enc_start), enc.n_in.eq(regs.n_in),  # valid from SETUP on: the encoder registers it
            enc.last_lanes.eq(host.last_lanes[ctrl.layer]),
            ctrl.enc_finish.eq(enc.finish), ctrl.enc_stall.eq(enc.stall), ctrl.enc_count.eq(enc.event_count),
            ctrl.enc_event_valid.eq(enc.event_valid), ctrl.enc_event_index.eq(enc.event_index),
            enc.trusted.eq(~ctrl.from_host), enc.host_word.eq(self.spikes_in.payload),
            evmem.raddr.eq(ctrl.ev_raddr), evmem.ren.eq(ctrl.ev_ren), ctrl.ev_rdata.eq(evmem.rdata),
        ]
        def parity(layer):  # layer l reads map buffer l % 2 and writes the other (one layer: index 0)
            return layer[0] if len(layer) else Const(0, 1)

        if conv:  # the map reader's walk -> the map buffers' queue -> the encoder; LOAD writes buffer 0
            word = sbuf.words.payload
            wiring.connect(m, reader.words, sbuf.reads)
            m.d.comb += [
                reader.start.eq(ctrl.reader_start), sbuf.rsel.eq(parity(ctrl.layer)),
                *(reader.regs[name].eq(regs[name]) for name in reader.regs.shape().members),
                enc.mapped.eq(~ctrl.from_host), enc.word_base.eq(word.base), enc.word_last.eq(word.position_last),
                enc.word_merge.eq(word.merge), enc.nonzero.eq(word.nonzero),
                enc.words.valid.eq(Mux(ctrl.from_host, self.spikes_in.valid, sbuf.words.valid)),
                enc.words.payload.eq(Mux(ctrl.from_host, self.spikes_in.payload, word.word)),
                sbuf.words.ready.eq(enc.words.ready & ~ctrl.from_host),
                self.spikes_in.ready.eq(Mux(ctrl.loading, 1, enc.words.ready & ctrl.from_host)),
                ctrl.load_words.eq(host.load_words), ctrl.load_valid.eq(self.spikes_in.valid),
            ]
        else:
            m.d.comb += [
                sbuf.start.eq(enc.start), sbuf.index.eq(enc.word_index), sbuf.next_index.eq(enc.next_index),
                sbuf.advance.eq(enc.advance),
                enc.words.valid.eq(Mux(ctrl.from_host, self.spikes_in.valid, 1)),
                enc.nonzero.eq(sbuf.nonzero), enc.word_nz.eq(sbuf.word_nz), enc.word_multi.eq(sbuf.word_multi),
                enc.words.payload.eq(Mux(ctrl.from_host, self.spikes_in.payload, sbuf.word)),
                self.spikes_in.ready.eq(enc.words.ready & ctrl.from_host),
            ]

        # events reach the event memory the cycle after the encoder finds them; the first read of them
        # comes two cycles after the last one is found
        m.d.comb += [evmem.waddr.eq(enc.event_addr), evmem.wdata.eq(enc.event_index), evmem.wen.eq(enc.event_valid)]
        if self.bram_output_registers:
            # ENCODE writes the events and the later groups read them, never in one cycle: through one
            # address, synthesis maps one block RAM port and adds no read/write collision logic (on the
            # ECP5 32 flip-flops and a multiplexer on the read data, the critical path of MNIST builds).
            # These override the two-port connections above, which stay first so that the plain build's
            # RTLIL is the one it always was (its placement is that sensitive: docs/flows.md)
            ev_addr = Signal.like(enc.event_addr)
            m.d.comb += [ev_addr.eq(Mux(enc.event_valid, enc.event_addr, ctrl.ev_raddr)),
                         evmem.waddr.eq(ev_addr), evmem.raddr.eq(ev_addr), evmem.ren.eq(ctrl.ev_ren & ~enc.event_valid)]

        # event index -> weight memory -> PE array
        m.d.comb += [
            wmem.raddr.eq(ctrl.w_raddr), wmem.ren.eq(ctrl.w_ren),
            pes.codes.eq(wmem.rdata), pes.scheme.eq(cur.weight_scheme), pes.bits.eq(cur.weight_bits),
            pes.load.eq(ctrl.pe_load), pes.enable.eq(ctrl.pe_enable), pes.bias_enable.eq(cur.bias_enable),
            mmem.raddr.eq(ctrl.m_addr), mmem.ren.eq(ctrl.m_ren), mmem.waddr.eq(ctrl.wb_addr), mmem.wen.eq(ctrl.wb_valid),
        ]
        if cfg.bias_bits:
            m.submodules.biases = bmem = MembraneMemory(
                n, cfg.bias_bits, cfg.membrane_depth, bias_words(model, cfg) if model else None)
            m.d.comb += [bmem.raddr.eq(ctrl.b_addr if conv else ctrl.m_addr), bmem.ren.eq(ctrl.m_ren), pes.biases.eq(bmem.rdata),
                         bmem.waddr.eq(host.b_waddr), bmem.wdata.eq(host.b_wdata), bmem.wen.eq(host.b_wen)]

        # threshold units: U units serve the n_pe lanes in P = n_pe / U beats, lanes b*U .. b*U + U - 1 in
        # beat b. Beat 0 takes the live values in the FIRE cycle; the other lanes wait in a shift register
        # (freeing the accumulators for the next group) and the results gather in another, so the group's
        # words are written back whole, P - 1 + LATENCY cycles after its FIRE.
        n_units, p, acc_bits = cfg.units, cfg.lanes_per_unit, cfg.accumulator_bits
        lane_in = data.StructLayout({"lane": 1, "u": signed(mb), "acc": signed(acc_bits)})
        live = []
        for i in range(n):
            v = Signal(lane_in, name=f"lane_in{i}")
            m.d.comb += [v.lane.eq(ctrl.lanes[i]), v.acc.eq(pes.accs[i]),
                         v.u.eq(Mux(ctrl.first_step, 0, mmem.rdata[i * mb:(i + 1) * mb].as_signed()))]
            live.append(v)
        held = [Signal(lane_in, name=f"held{i}") for i in range(n - n_units)]
        beating = ctrl.fire
        if p > 1:
            beats_left = Signal(range(p))
            beating = ctrl.fire | (beats_left != 0)
            with m.If(ctrl.fire):
                m.d.sync += [h.eq(v) for h, v in zip(held, live[n_units:])]
                m.d.sync += beats_left.eq(p - 1)
            with m.Elif(beats_left != 0):
                m.d.sync += [h.eq(v) for h, v in zip(held, held[n_units:])]
                m.d.sync += beats_left.eq(beats_left - 1)
        units = []
        for j in range(n_units):
            tu = m.submodules[f"threshold{j}"] = ThresholdUnit(mb, acc_bits, self.assertions)
            units.append(tu)
            src = live[j] if p == 1 else lane_in(Mux(ctrl.fire, live[j].as_value(), held[j].as_value()))
            m.d.comb += [
                tu.valid_in.eq(beating), tu.lane.eq(src.lane), tu.u.eq(src.u),
                tu.acc.eq(src.acc), tu.threshold.eq(cur.threshold), tu.reset_mode.eq(cur.reset),
                tu.leak_kind.eq(cur.leak_kind), tu.leak_k.eq(cur.leak_k), tu.membrane_max.eq(cur.membrane_max),
            ]
        beat_spikes, beat_membranes = Cat(*(u.spike for u in units)), Cat(*(u.u_next for u in units))
        spikes, membranes = beat_spikes, beat_membranes
        if p > 1:  # earlier beats' results, beat 0 lowest: a word is complete with the last beat's
            got_spikes, got_membranes = Signal((n - n_units)), Signal((n - n_units) * mb)
            spikes, membranes = Cat(got_spikes, beat_spikes), Cat(got_membranes, beat_membranes)
            with m.If(units[0].valid_out):
                m.d.sync += [got_spikes.eq(spikes[n_units:]), got_membranes.eq(membranes[n_units * mb:])]
        if conv:  # group write-backs go to the buffer the next layer reads; LOAD fills buffer 0
            m.d.comb += [
                sbuf.waddr.eq(Mux(ctrl.loading, ctrl.load_addr, ctrl.wb_group)),
                sbuf.wdata.eq(Mux(ctrl.loading, self.spikes_in.payload, spikes)),
                sbuf.wen.eq(Mux(ctrl.loading, self.spikes_in.valid, ctrl.wb_valid)),
                sbuf.wsel.eq(Mux(ctrl.loading, 0, ~parity(ctrl.wb_layer))),
                sbuf.out_addr.eq(ctrl.out_raddr),
            ]
        else:
            m.d.comb += [sbuf.waddr.eq(ctrl.wb_group), sbuf.wdata.eq(spikes), sbuf.wen.eq(ctrl.wb_valid),
                         sbuf.out_addr.eq(ctrl.out_addr)]
        m.d.comb += [
            mmem.wdata.eq(membranes), ctrl.out_data.eq(sbuf.out_data),
            self.probe.valid.eq(ctrl.wb_valid), self.probe.step.eq(ctrl.wb_step), self.probe.layer.eq(ctrl.wb_layer),
            self.probe.group.eq(ctrl.wb_group), self.probe.spikes.eq(spikes), self.probe.membranes.eq(membranes),
        ]
        # the contract of hw/sram.py: synthesis takes a read that meets a write of its word as undefined
        if self.assertions:
            for ram in (evmem, mmem, *([bmem] if cfg.bias_bits else [])):
                m.d.comb += Assert(~(ram.ren & ram.wen & (ram.raddr == ram.waddr)))
        return m
