"""Host interface: the load stream writes registers, weight words and bias words while idle.

Built "from a model", the registers start with the model's values (reset values), so a build with
initialised memories runs on `start` without any load.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import LoadSpace, address_bits
from mintaccel.core.hwconfig import HwConfig
from mintaccel.hw.registers import (CONV_BASE, CONV_STRIDE, FIELDS, GLOBAL_LOAD_WORDS, GLOBAL_N_LAYERS, GLOBAL_TIMESTEPS,
                                    LAYER_BASE, LAYER_STRIDE, conv_fields, layer_layout)


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
        with m.If(accept & (p.space == LoadSpace.registers)):
            with m.Switch(p.addr):
                with m.Case(GLOBAL_N_LAYERS):
                    m.d.sync += self.n_layers.eq(p.data)
                with m.Case(GLOBAL_TIMESTEPS):
                    m.d.sync += self.timesteps.eq(p.data)
                if self.cfg.max_map_words:
                    with m.Case(GLOBAL_LOAD_WORDS):
                        m.d.sync += self.load_words.eq(p.data)
                for layer in range(self.cfg.max_layers):
                    for f, name in enumerate(FIELDS):
                        with m.Case(LAYER_BASE + LAYER_STRIDE * layer + f):
                            m.d.sync += self.layers[layer][name].eq(p.data)
                    for f, name in enumerate(conv_fields(self.cfg)):
                        with m.Case(CONV_BASE + CONV_STRIDE * layer + f):
                            m.d.sync += self.layers[layer][name].eq(p.data)
        return m
