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

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mintaccel.core.encodings import address_bits
from mintaccel.core.hwlayer import HwLayer

SIDE_BITS = 11        # counts and sides up to 1024 (core.conv.MAP_SIDE_MAX) and the window of a flatten
COORD_BITS = 13       # signed pooled coordinates: -6 .. 1024 + 6


def step_bits(map_words: int) -> int:
    """Signed width of the running addresses: a padded origin lies up to 6 rows and columns before the map."""
    return address_bits(map_words) + 5


def reader_layout(map_words: int, index_bits: int) -> data.StructLayout:
    """The map reader's per-layer registers (values: `reader_values`)."""
    a = signed(step_bits(map_words))
    return data.StructLayout({
        "ho": SIDE_BITS, "wo": SIDE_BITS,          # output positions
        "kh": SIDE_BITS, "kw": SIDE_BITS,          # window, in pooled positions
        "blocks": SIDE_BITS,                       # CB: words per stored position
        "pool": 3, "pool_max": 1,                  # pool window side (1: none), 1 if its words are OR-ed
        "channels": index_bits + 1,                # C: the tap base advances by C per tap
        "hp": SIDE_BITS, "wp": SIDE_BITS,          # pooled map (inside test)
        "stride": 2, "padding": 3,
        "origin": a,                               # address of position (0, 0)'s tap (0, 0): -p*(row_step + col_step)
        "col_step": a, "row_step": a,              # next tap column / row: sp*CB, sp*W*CB
        "stored_row": a,                           # next pool-window row: W*CB (a pool-window column is CB)
        "pos_col": a, "pos_row": a,                # next output column / row: s*col_step, s*row_step
    })


def reader_values(v: HwLayer) -> dict:
    """Register values of layer `v` (the host's multiplications, once per layer)."""
    _, _, w = v.in_shape
    cb, sp, s, p = v.in_blocks, v.pool_stride, v.stride, v.padding
    col, row = sp * cb, sp * w * cb
    _, hp, wp = v.pooled_shape
    return {"ho": v.out_shape[1], "wo": v.out_shape[2], "kh": v.kernel[0], "kw": v.kernel[1], "blocks": cb,
            "pool": v.pool_kernel, "pool_max": int(v.pool_op == "max"), "channels": v.in_shape[0],
            "hp": hp, "wp": wp, "stride": s, "padding": p, "origin": -p * (row + col),
            "col_step": col, "row_step": row, "stored_row": w * cb, "pos_col": s * col, "pos_row": s * row}


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
        levels = ("wx", "wy", "b", "kx", "ky", "ox", "oy")
        sizes = {"wx": "pool", "wy": "pool", "b": "blocks", "kx": "kw", "ky": "kh", "ox": "wo", "oy": "ho"}
        left = {k: Signal(SIDE_BITS, name=f"left_{k}") for k in levels}
        top = {k: Signal(SIDE_BITS, name=f"top_{k}") for k in levels}  # size - 1
        single = {k: Signal(name=f"single_{k}") for k in levels}  # size == 1
        last = {k: Signal(name=f"last_{k}") for k in levels}
        # running addresses: the start of each level of the walk, and the current word
        lvl = {k: Signal(signed(sb), name=f"a_{k}") for k in ("word", "wrow", "blk", "tap", "trow", "pos", "prow")}
        # pooled coordinates of the tap and of the position's origin
        py, px, ry, rx = (Signal(signed(COORD_BITS), name=n) for n in ("py", "px", "ry", "rx"))
        row_in, col_in = Signal(), Signal()  # 0 <= py < hp, 0 <= px < wp: registers, set with py and px
        # the next origins and hp - 1, wp - 1 as registers, so each inside test is one compare of registers
        ry_next, rx_next = Signal(signed(COORD_BITS)), Signal(signed(COORD_BITS))
        hp1, wp1 = Signal(SIDE_BITS), Signal(SIDE_BITS)
        base, tap_base = Signal(self.index_bits + 1), Signal(self.index_bits + 1)
        running = Signal()
        # between two output positions one cycle without a word: the new position's address is computed
        # into its register in the last word's cycle and copied to the inner levels in this one, so no
        # adder drives the inner levels' restart. The queue ahead of the encoder hides it (the encoder
        # spends at least 7 cycles between a position's last word and the next one's first).
        turn = Signal()

        window_last = last["wx"] & last["wy"]
        position_last = window_last & last["b"] & last["kx"] & last["ky"]
        d = self.words.payload
        m.d.comb += [
            self.busy.eq(running), self.words.valid.eq(running & ~turn),
            d.addr.eq(lvl["word"]), d.base.eq(base),
            d.inside.eq(row_in & col_in),
            d.merge.eq(r.pool_max & ~window_last),
            d.position_last.eq(position_last), d.layer_last.eq(position_last & last["ox"] & last["oy"]),
        ]

        def restart(names, address):
            """Every level from `names` inward starts at `address`."""
            for k in names:
                m.d.sync += lvl[k].eq(address)

        def set_py(value, inside=None):
            m.d.sync += [py.eq(value), row_in.eq((value >= 0) & (value < r.hp) if inside is None else inside)]

        def set_px(value, inside=None):
            m.d.sync += [px.eq(value), col_in.eq((value >= 0) & (value < r.wp) if inside is None else inside)]

        def step(k):
            """Level k moves on: its counter counts down (the levels inside it reload: `reload`)."""
            m.d.sync += [left[k].eq(left[k] - 1), last[k].eq(left[k] == 1)]

        def reload(k):
            m.d.sync += [left[k].eq(top[k]), last[k].eq(single[k])]

        inner = ["word", "wrow", "blk", "tap", "trow", "pos", "prow"]
        # idle, the walk's registers follow `regs` every cycle, so `start` only sets `running` (it comes
        # from the controller's FSM: no fanout to the hundreds of registers behind it)
        with m.If(self.start):
            m.d.sync += running.eq(1)
        with m.If(~running):
            pad, stride = self.regs.padding, self.regs.stride
            m.d.sync += [r.eq(self.regs), base.eq(0), tap_base.eq(0), ry.eq(-pad), rx.eq(-pad),
                         ry_next.eq(stride - pad), rx_next.eq(stride - pad),
                         hp1.eq(self.regs.hp - 1), wp1.eq(self.regs.wp - 1)]
            set_py(-pad, pad == 0)
            set_px(-pad, pad == 0)
            for k in levels:
                size = self.regs[sizes[k]]
                m.d.sync += [top[k].eq(size - 1), left[k].eq(size - 1), single[k].eq(size == 1), last[k].eq(size == 1)]
            restart(inner, self.regs.origin)
        with m.Elif(turn):
            m.d.sync += turn.eq(0)
            restart(inner[:5], lvl["pos"])
        with m.Elif(running & self.words.ready):
            step("wx")
            m.d.sync += lvl["word"].eq(lvl["word"] + r.blocks)  # the next pool-window column
            with m.If(last["wx"]):
                reload("wx")
                step("wy")
                restart(inner[:2], lvl["wrow"] + r.stored_row)
                with m.If(last["wy"]):
                    reload("wy")
                    step("b")
                    m.d.sync += base.eq(base + self.n_pe)
                    restart(inner[:3], lvl["blk"] + 1)
                    with m.If(last["b"]):
                        reload("b")
                        step("kx")
                        m.d.sync += [base.eq(tap_base + r.channels), tap_base.eq(tap_base + r.channels)]
                        set_px(px + 1, (px >= -1) & (px < wp1))
                        restart(inner[:4], lvl["tap"] + r.col_step)
                        with m.If(last["kx"]):
                            reload("kx")
                            step("ky")
                            set_px(rx)
                            set_py(py + 1, (py >= -1) & (py < hp1))
                            restart(inner[:5], lvl["trow"] + r.row_step)
                            with m.If(last["ky"]):  # the next output position
                                reload("ky")
                                step("ox")
                                m.d.sync += [base.eq(0), tap_base.eq(0), rx.eq(rx_next), rx_next.eq(rx_next + r.stride)]
                                set_px(rx_next)
                                set_py(ry)
                                m.d.sync += [lvl["pos"].eq(lvl["pos"] + r.pos_col), turn.eq(1)]
                                with m.If(last["ox"]):
                                    reload("ox")
                                    step("oy")
                                    m.d.sync += [rx.eq(-r.padding), rx_next.eq(r.stride - r.padding),
                                                 ry.eq(ry_next), ry_next.eq(ry_next + r.stride)]
                                    set_px(-r.padding, r.padding == 0)
                                    set_py(ry_next)
                                    restart(inner[5:], lvl["prow"] + r.pos_row)
                                    with m.If(last["oy"]):
                                        m.d.sync += [running.eq(0), turn.eq(0)]
        return m
