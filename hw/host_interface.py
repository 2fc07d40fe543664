"""Host interface: the load stream writes registers, weight words and bias words while idle.

Built "from a model", the registers start with the model's values (reset values), so a build with
initialised memories runs on `start` without any load.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import LoadSpace, address_bits
from mintaccel.core.hwconfig import HwConfig
from mintaccel.hw.registers import (CONV_BASE, CONV_STRIDE, FIELDS, GLOBAL_LOAD_WORDS, GLOBAL_N_LAYERS, GLOBAL_TIMESTEPS,
                                    LAYER_BASE, LAYER_STRIDE, conv_fields, layer_layout)
from mintaccel.hw.spike_encoder import last_word_lanes, last_word_lanes_value


def load_layout(cfg: HwConfig) -> data.StructLayout:
    width = max(32, cfg.n_pe * cfg.weight_bits, cfg.n_pe * cfg.bias_bits)
    return data.StructLayout({"space": LoadSpace, "addr": 16, "data": width})


class HostInterface(wiring.Component):
    def __init__(self, cfg: HwConfig, layers=None, n_layers: int = 0, timesteps: int = 0, load_words: int = 0):
        """`layers`: register values per layer (hw.registers.layer_values) used as reset values."""
        self.cfg = cfg
        layers = list(layers or [])
        if len(layers) > cfg.max_layers:
            raise ValueError(f"{len(layers)} layers > max_layers {cfg.max_layers}")
        regs = data.ArrayLayout(layer_layout(cfg), cfg.max_layers)
        init = layers + [{}] * (cfg.max_layers - len(layers))
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "busy": In(1),
            "layers": Out(regs, init=init),
            "n_layers": Out(range(cfg.max_layers + 1), init=n_layers),
            "timesteps": Out(range(cfg.max_timesteps + 1), init=timesteps),
            # a conv build: input map words LOADed per step (0: layer 0 reads the stream itself)
            "load_words": Out(range(max(1, cfg.max_map_words) + 1), init=load_words),
            # per layer, the lanes of its last input word (spike_encoder.last_word_lanes of n_in): registers
            # of registers, so that the encoder's mask is not behind logic of the layer multiplexer
            "last_lanes": Out(data.ArrayLayout(cfg.n_pe, cfg.max_layers),
                              init=[last_word_lanes_value(v.get("n_in", 0), cfg.n_pe) for v in init]),
            "w_waddr": Out(address_bits(cfg.weight_depth)),
            "w_wdata": Out(cfg.n_pe * cfg.weight_bits),
            "w_wen": Out(1),
            "b_waddr": Out(address_bits(cfg.membrane_depth)),
            "b_wdata": Out(max(1, cfg.n_pe * cfg.bias_bits)),
            "b_wen": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.load.payload
        accept = self.load.valid & ~self.busy
        m.d.comb += [
            self.load.ready.eq(~self.busy),
            self.w_waddr.eq(p.addr), self.w_wdata.eq(p.data), self.w_wen.eq(accept & (p.space == LoadSpace.weights)),
            self.b_waddr.eq(p.addr), self.b_wdata.eq(p.data),
            self.b_wen.eq(accept & (p.space == LoadSpace.biases) & (self.cfg.bias_bits > 0)),
        ]
        if self.cfg.n_pe > 1 and self.cfg.n_pe & (self.cfg.n_pe - 1) == 0:  # the encoder masks with these
            shift = (self.cfg.n_pe - 1).bit_length()
            for layer in range(self.cfg.max_layers):
                m.d.sync += self.last_lanes[layer].eq(last_word_lanes(self.layers[layer].n_in[:shift], self.cfg.n_pe))
        registers = accept & (p.space == LoadSpace.registers)
        # a register lands a cycle after its beat: the address decode goes into one flip-flop per register
        # (and the data into a register of its own), not in front of the enables of all of them (on the
        # UP5K MNIST build of 32 PEs 6 LUT levels and the critical path). The controller reads the layer
        # registers at SETUP and n_layers / timesteps later still, so a `start` right after the last beat
        # sees them; `load_words`, which it reads in the `start` cycle itself, lands with its beat.
        if self.cfg.max_map_words:
            with m.If(registers & (p.addr == GLOBAL_LOAD_WORDS)):
                m.d.sync += self.load_words.eq(p.data)
        targets = [(GLOBAL_N_LAYERS, self.n_layers), (GLOBAL_TIMESTEPS, self.timesteps)]
        for layer in range(self.cfg.max_layers):
            for base, names in ((LAYER_BASE + LAYER_STRIDE * layer, FIELDS),
                                (CONV_BASE + CONV_STRIDE * layer, conv_fields(self.cfg))):
                targets += [(base + f, self.layers[layer][name]) for f, name in enumerate(names)]
        data_d = Signal(max(len(Value.cast(t)) for _, t in targets))
        with m.If(registers):  # (an enable: without it, a P&R harness's input chain absorbs these flip-flops)
            m.d.sync += data_d.eq(p.data)
        for addr, target in targets:
            hit = Signal(name=f"write_{addr}")
            m.d.sync += hit.eq(registers & (p.addr == addr))
            with m.If(hit):
                m.d.sync += target.eq(data_d)
        return m
