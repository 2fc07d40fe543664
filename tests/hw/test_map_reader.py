"""The map reader walks every receptive field in the doc's order (docs/microarchitecture.md, "Conv
networks"): its addresses, padding flags, tap bases and flags equal the walk written with the doc's
formulas (multiplications), on the layers of random conv networks, with random back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.hwlayer import hw_layers
from mintaccel.hw.map_reader import MapReader, reader_values
from tests.sim.cycle.test_controller import random_conv_net


def expected_walk(v) -> list[tuple]:
    """(addr or None for padding, base, merge, position_last, layer_last) per word, from the doc's formulas."""
    c, _, w = v.in_shape
    _, hp, wp = v.pooled_shape
    cb, kp, sp, s, p = v.in_blocks, v.pool_kernel, v.pool_stride, v.stride, v.padding
    (kh, kw), (_, ho, wo) = v.kernel, v.out_shape
    out = []
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    py, px = oy * s - p + ky, ox * s - p + kx
                    for b in range(cb):
                        for wy in range(kp):
                            for wx in range(kp):
                                inside = 0 <= py < hp and 0 <= px < wp
                                addr = ((py * sp + wy) * w + px * sp + wx) * cb + b if inside else None
                                window_last = wy == wx == kp - 1
                                pos_last = window_last and b == cb - 1 and ky == kh - 1 and kx == kw - 1
                                out.append((addr, (ky * kw + kx) * c + b * v.n_pe, int(v.pool_op == "max" and not window_last),
                                            int(pos_last), int(pos_last and oy == ho - 1 and ox == wo - 1)))
    return out


@pytest.mark.parametrize("seed", range(16))
def test_the_walk_equals_the_doc(seed):
    n_pe = [1, 2, 4, 8][seed % 4]
    net = next(k for k in range(seed + 100, seed + 10000, 100)  # the first with a map reader (not flatten first)
               if any(v.is_map for v in hw_layers(random_conv_net(k), n_pe)))
    model = random_conv_net(net)
    cfg = HwConfig.for_model(model, n_pe)
    views = [v for v in hw_layers(model, n_pe) if v.is_map]
    rng = np.random.default_rng(seed)
    dut = MapReader(n_pe, cfg.max_map_words, cfg.index_bits)

    async def tb(ctx):
        for v in views:
            want = expected_walk(v)
            for name, value in reader_values(v).items():
                ctx.set(getattr(dut.regs, name), value)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            got = []
            for _ in range(4 * len(want) + 10):
                ready = int(rng.random() < 0.8)
                ctx.set(dut.words.ready, ready)
                if ctx.get(dut.words.valid) and ready:
                    d = dut.words.payload
                    got.append((ctx.get(d.addr) if ctx.get(d.inside) else None, ctx.get(d.base), ctx.get(d.merge),
                                ctx.get(d.position_last), ctx.get(d.layer_last)))
                await ctx.tick()
                if not ctx.get(dut.busy):
                    break
            assert got == want, f"network {net}, layer {v.index}: first difference at word " \
                                f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_no_multiplier(tmp_path):
    """Every address is a running sum: Yosys finds adders and no multiplier cell in the reader."""
    from mintaccel.flows.flow import generic_check
    g = generic_check(MapReader(16, 1024, 11), "map_reader", tmp_path)
    assert g["multipliers"] == 0, g["multiplier_cells"]
    assert g["coarse_cells"].get("$alu", 0) + g["coarse_cells"].get("$add", 0) > 5
