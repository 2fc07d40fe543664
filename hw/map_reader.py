"""Map reader: the address walk of a conv layer's receptive fields (docs/microarchitecture.md, "Conv networks").

For every output position `(oy, ox)` (row-major), tap `(ky, kx)`, input channel block `b` and pool
window word `(wy, wx)` (innermost) it emits one word descriptor per cycle: the map-buffer address of the
stored word `((py*sp + wy)*W + px*sp + wx)*CB + b` at pooled tap `(py, px) = (oy*s - p + ky,
ox*s - p + kx)`, whether the tap is inside the pooled map (a padding tap's word is zero and is not
read), the tap-index base `(ky*Kw + kx)*C + b*n_pe` of its events, and the flags the encoder needs.

No multiplier: every address is a running sum, each level of the walk keeps the address where it
started and adds a step the host computed once per layer (`reader_values`), so each cycle costs one
adder and a multiplexer per running value.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.core.hwlayer import HwLayer

SIDE_BITS = 11        # counts and sides up to 1024 (core.conv.MAP_SIDE_MAX) and the window of a flatten
COORD_BITS = 13       # signed pooled coordinates: -6 .. 1024 + 6
#: The walk's levels, innermost first, and the register holding each one's size - 1.
LEVELS = ("wx", "wy", "b", "kx", "ky", "ox", "oy")
TOPS = {"wx": "top_w", "wy": "top_w", "b": "top_b", "kx": "top_kx", "ky": "top_ky", "ox": "top_ox", "oy": "top_oy"}


def step_bits(map_words: int) -> int:
    """Signed width of the running addresses: a padded origin lies up to 6 rows and columns before the map."""
    return address_bits(map_words) + 5


def reader_layout(map_words: int, index_bits: int) -> data.StructLayout:
    """The map reader's per-layer registers (values: `reader_values`). Every value the walk starts from is
    the host's, so the reader's start is copies of registers, no adder or compare behind the layer mux."""
    a = signed(step_bits(map_words))
    return data.StructLayout({
        "top_oy": SIDE_BITS, "top_ox": SIDE_BITS,  # output positions - 1 (rows, columns)
        "top_ky": SIDE_BITS, "top_kx": SIDE_BITS,  # window - 1, in pooled positions
        "top_b": SIDE_BITS, "top_w": 3,            # CB - 1, pool window side - 1 (0: no pooling)
        "single": len(LEVELS),                     # bit i: level LEVELS[i] has size 1
        "ends": len(LEVELS),                       # bit i: levels LEVELS[0..i] all have size 1
        "double": len(LEVELS),                     # bit i: level LEVELS[i] has size 2
        "blocks": SIDE_BITS,                       # CB: words per stored position (a pool-window column)
        "pool_max": 1,                             # 1 if a pool window's words are OR-ed
        "channels": index_bits + 1,                # C: the tap base advances by C per tap
        "hp1": SIDE_BITS, "wp1": SIDE_BITS,        # pooled map - 1: the last row and column (inside test)
        "stride": 2,                               # s: next output position, in pooled positions
        "first": signed(COORD_BITS),               # -p: a row's (column's) first tap
        "second": signed(COORD_BITS),              # s - p: the next row's (column's) first tap
        "unpadded": 1,                             # p == 0: a first tap is inside
        "second_in": 2,                            # 0 <= s - p <= wp - 1 (bit 0), <= hp - 1 (bit 1)
        "origin": a,                               # address of position (0, 0)'s tap (0, 0): -p*(row_step + col_step)
        "col_step": a, "row_step": a,              # next tap column / row: sp*CB, sp*W*CB
        "stored_row": a,                           # next pool-window row: W*CB
        "pos_col": a, "pos_row": a,                # next output column / row: s*col_step, s*row_step
    })


def reader_values(v: HwLayer) -> dict:
    """Register values of layer `v` (the host's multiplications, once per layer)."""
    _, _, w = v.in_shape
    cb, sp, s, p = v.in_blocks, v.pool_stride, v.stride, v.padding
    col, row = sp * cb, sp * w * cb
    _, hp, wp = v.pooled_shape
    sizes = {"wx": v.pool_kernel, "wy": v.pool_kernel, "b": cb, "kx": v.kernel[1], "ky": v.kernel[0],
             "ox": v.out_shape[2], "oy": v.out_shape[1]}
    return {**{TOPS[k]: size - 1 for k, size in sizes.items()},
            "single": sum(1 << i for i, k in enumerate(LEVELS) if sizes[k] == 1),
            "ends": sum(1 << i for i in range(len(LEVELS)) if all(sizes[k] == 1 for k in LEVELS[:i + 1])),
            "double": sum(1 << i for i, k in enumerate(LEVELS) if sizes[k] == 2),
            "blocks": cb, "pool_max": int(v.pool_op == "max"), "channels": v.in_shape[0],
            "hp1": hp - 1, "wp1": wp - 1, "stride": s, "first": -p, "second": s - p, "unpadded": int(p == 0),
            "second_in": int(0 <= s - p < wp) | int(0 <= s - p < hp) << 1,
            "origin": -p * (row + col), "col_step": col, "row_step": row, "stored_row": w * cb,
            "pos_col": s * col, "pos_row": s * row}


def descriptor_layout(map_words: int, index_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "addr": address_bits(map_words),  # map-buffer word (meaningful when `inside`)
        "inside": 1,                      # 0: a padding tap, its word is zero
        "base": index_bits + 1,           # tap index of the word's bit 0
        "merge": 1,                       # OR this word with the next (max pool, not the window's last)
        "position_last": 1,
        "layer_last": 1,
    })


class MapReader(wiring.Component):
    def __init__(self, n_pe: int, map_words: int, index_bits: int):
        if n_pe < 1 or map_words < 1 or index_bits < 1:
            raise ValueError("n_pe, map_words and index_bits must be positive")
        self.n_pe, self.map_words, self.index_bits = n_pe, map_words, index_bits
        super().__init__({
            "start": In(1),  # begin at position (0, 0), with `regs` as they were in this cycle
            "regs": In(reader_layout(map_words, index_bits)),
            "words": Out(stream.Signature(descriptor_layout(map_words, index_bits))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        r = Signal.like(self.regs)  # the layer's registers, constant while the walk runs
        sb = step_bits(self.map_words)
        # one down-counter per level of the walk (innermost first), with its "last" flag a register: the
        # walk's decisions are ANDs of flip-flops, never a compare
        levels = LEVELS
        left = {k: Signal(SIDE_BITS, name=f"left_{k}") for k in levels}
        top = {k: r[TOPS[k]] for k in levels}  # size - 1
        single = {k: r.single[i] for i, k in enumerate(levels)}  # size == 1
        double = {k: r.double[i] for i, k in enumerate(levels)}  # size == 2
        last = {k: Signal(name=f"last_{k}") for k in levels}
        pen = {k: Signal(name=f"pen_{k}") for k in levels}  # left == 1: the level's next step makes it last
        # running addresses: the start of each level of the walk, and the current word
        lvl = {k: Signal(signed(sb), name=f"a_{k}") for k in ("word", "wrow", "blk", "tap", "trow", "pos", "prow")}
        # pooled coordinates of the tap and of the position's origin
        py, px, ry, rx = (Signal(signed(COORD_BITS), name=n) for n in ("py", "px", "ry", "rx"))
        row_in, col_in = Signal(), Signal()  # 0 <= py < hp, 0 <= px < wp: registers, set with py and px
        # the next origins as registers, each with its inside flag, so a flag's next value is a flag or one
        # compare of registers (px + 1 or py + 1, inside the position), never a compare behind a mux
        ry_next, rx_next = Signal(signed(COORD_BITS)), Signal(signed(COORD_BITS))
        ry_in, rx_in, ryn_in, rxn_in = Signal(), Signal(), Signal(), Signal()
        base, tap_base = Signal(self.index_bits + 1), Signal(self.index_bits + 1)
        running = Signal()
        # between two output positions one cycle without a word: the new position's address is computed
        # into its register in the last word's cycle and copied to the inner levels in this one, so no
        # adder drives the inner levels' restart. The queue ahead of the encoder hides it (the encoder
        # spends at least 7 cycles between a position's last word and the next one's first).
        turn = Signal()

        # cum[k]: every level from the innermost to k is at its last value, a register kept with the `last`
        # flags, so that each level's enable is one LUT of flip-flops (`go & cum[inner]`), not a chain of
        # ANDs behind the queue's `ready` (the UP5K conv build's critical path). Their next values are
        # functions of registers only (`moved`: a level with every level inside it last reloads, one
        # with every level inside it but not itself last steps, the others keep), `go` only enables them.
        cum = {k: Signal(name=f"cum_{k}") for k in levels}
        moved = {k: Signal(name=f"moved_{k}") for k in levels}
        go = Signal()
        for i, k in enumerate(levels):
            inner_last = cum[levels[i - 1]] if i else 1
            m.d.comb += moved[k].eq(Mux(cum[k], single[k], Mux(inner_last, pen[k], last[k])))
        d = self.words.payload
        m.d.comb += [
            self.busy.eq(running), self.words.valid.eq(running & ~turn), go.eq(self.words.valid & self.words.ready),
            d.addr.eq(lvl["word"]), d.base.eq(base),
            d.inside.eq(row_in & col_in),
            d.merge.eq(r.pool_max & ~cum["wy"]),
            d.position_last.eq(cum["ky"]), d.layer_last.eq(cum["oy"]),
        ]

        def restart(names, address):
            """Every level from `names` inward starts at `address`."""
            for k in names:
                m.d.sync += lvl[k].eq(address)

        def set_py(value, inside):
            m.d.sync += [py.eq(value), row_in.eq(inside)]

        def set_px(value, inside):
            m.d.sync += [px.eq(value), col_in.eq(inside)]

        def step(k):
            """Level k moves on: its counter counts down (the levels inside it reload: `reload`)."""
            m.d.sync += [left[k].eq(left[k] - 1), pen[k].eq(left[k] == 2)]

        def reload(k):
            m.d.sync += [left[k].eq(top[k]), pen[k].eq(double[k])]

        inner = ["word", "wrow", "blk", "tap", "trow", "pos", "prow"]
        # idle, the walk's registers follow `regs` every cycle, so `start` only sets `running` (it comes
        # from the controller's FSM: no fanout to the hundreds of registers behind it)
        with m.If(self.start):
            m.d.sync += running.eq(1)
        with m.If(~running):
            g = self.regs
            m.d.sync += [r.eq(g), base.eq(0), tap_base.eq(0), ry.eq(g.first), rx.eq(g.first),
                         ry_next.eq(g.second), rx_next.eq(g.second), ry_in.eq(g.unpadded), rx_in.eq(g.unpadded),
                         rxn_in.eq(g.second_in[0]), ryn_in.eq(g.second_in[1])]
            set_py(g.first, g.unpadded)
            set_px(g.first, g.unpadded)
            for i, k in enumerate(levels):
                m.d.sync += [left[k].eq(g[TOPS[k]]), last[k].eq(g.single[i]), pen[k].eq(g.double[i]),
                             cum[k].eq(g.ends[i])]
            restart(inner, self.regs.origin)
        with m.If(turn):  # the cycle after every new origin: the next origins' flags, from their registers
            m.d.sync += [turn.eq(0), rxn_in.eq((rx_next >= 0) & (rx_next <= r.wp1)),
                         ryn_in.eq((ry_next >= 0) & (ry_next <= r.hp1))]
            restart(inner[:5], lvl["pos"])
        # one block per level of the walk, innermost first: a level moves when every level inside it is at
        # its last value, and the later (outer) blocks' assignments win, as if each were nested in the last
        with m.If(go):
            step("wx")
            m.d.sync += lvl["word"].eq(lvl["word"] + r.blocks)  # the next pool-window column
        with m.If(go & cum["wx"]):
            reload("wx")
            step("wy")
            restart(inner[:2], lvl["wrow"] + r.stored_row)
        with m.If(go & cum["wy"]):
            reload("wy")
            step("b")
            m.d.sync += base.eq(base + self.n_pe)
            restart(inner[:3], lvl["blk"] + 1)
        with m.If(go & cum["b"]):
            reload("b")
            step("kx")
            m.d.sync += [base.eq(tap_base + r.channels), tap_base.eq(tap_base + r.channels)]
            set_px(px + 1, (px >= -1) & (px < r.wp1))
            restart(inner[:4], lvl["tap"] + r.col_step)
        with m.If(go & cum["kx"]):
            reload("kx")
            step("ky")
            set_px(rx, rx_in)
            set_py(py + 1, (py >= -1) & (py < r.hp1))
            restart(inner[:5], lvl["trow"] + r.row_step)
        with m.If(go & cum["ky"]):  # the next output position
            reload("ky")
            step("ox")
            m.d.sync += [base.eq(0), tap_base.eq(0), rx.eq(rx_next), rx_next.eq(rx_next + r.stride), rx_in.eq(rxn_in)]
            set_px(rx_next, rxn_in)
            set_py(ry, ry_in)
            m.d.sync += [lvl["pos"].eq(lvl["pos"] + r.pos_col), turn.eq(1)]
        with m.If(go & cum["ox"]):
            reload("ox")
            step("oy")
            m.d.sync += [rx.eq(r.first), rx_next.eq(r.second), rx_in.eq(r.unpadded),
                         ry.eq(ry_next), ry_next.eq(ry_next + r.stride), ry_in.eq(ryn_in)]
            set_px(r.first, r.unpadded)
            set_py(ry_next, ryn_in)
            restart(inner[5:], lvl["prow"] + r.pos_row)
        with m.If(go & cum["oy"]):
            m.d.sync += [running.eq(0), turn.eq(0)]
        with m.If(go):
            for i, k in enumerate(levels):
                m.d.sync += [last[k].eq(moved[k]), cum[k].eq(Cat(*(moved[j] for j in levels[:i + 1])).all())]
        return m
