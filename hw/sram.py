"""A simple dual-port SRAM (one read port, one write port) whose reads never meet a write of their word.

The read is asynchronous into a register (enabled by `ren`): the same cycle and the same "old word"
on a read-during-write as a synchronous port in simulation, but written the way Yosys's memory_dff
merges into the block RAM's read port, where the memory's `no_rw_check` attribute tells synthesis that
a read and a write of one address never meet in a cycle. Without it Yosys emulates "read the old word"
around the iCE40's and ECP5's block RAMs, whose collision result is undefined: the write delayed a
cycle, an address comparator and a bypass multiplexer on every data bit (on the UP5K MNIST build of 32
PEs 163 flip-flops and 82 LUTs for the event and membrane memories, on the path from the encoder's
event address). The accelerator never reads a word in the cycle it writes it, and says so with an
`Assert` (hw/top.py).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits

#: The attribute of a memory whose reads never meet a write of their word (Yosys's memory_dff).
NO_RW_CHECK = {"no_rw_check": 1}


class Sram(wiring.Component):
    def __init__(self, width: int, depth: int, init=None):
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be positive")
        if init is not None and len(init) > depth:
            raise ValueError(f"init has {len(init)} words, depth is {depth}")
        self.width, self.depth = width, depth
        self._init = list(init) if init is not None else []
        abits = address_bits(depth)
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(width),
            "waddr": In(abits), "wdata": In(width), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=self._init, attrs=NO_RW_CHECK)
        wr = mem.write_port()
        m.d.comb += [self.rdata.eq(registered_read(m, mem, self.raddr, self.ren)),
                     wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen)]
        return m


def registered_read(m: Module, mem: memory.Memory, addr, en) -> Signal:
    """A read of `mem` at `addr` when `en`, its word out the cycle after: an asynchronous port into a
    reset-less register (a synchronous port's data has no reset either), the form memory_dff merges
    into a block RAM's read port, and where it honours NO_RW_CHECK."""
    rd = mem.read_port(domain="comb")
    data = Signal(rd.data.shape(), reset_less=True)
    with m.If(en):
        m.d.sync += data.eq(rd.data)
    m.d.comb += rd.addr.eq(addr)
    return data
