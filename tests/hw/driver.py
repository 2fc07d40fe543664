"""Drive the whole accelerator in amaranth.sim through its host interface; collect every FIRE."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.hw.images import input_words, load_sequence, unpack_lanes
from mintaccel.hw.threshold_unit import ThresholdUnit
from mintaccel.hw.top import Accelerator
from mintaccel.core.model import IntModel


@dataclass
class RunResult:
    spikes: list = field(default_factory=list)
    """Per model layer: uint8 [T, n_out] (None for a pool or a flatten)."""
    membranes: list = field(default_factory=list)
    """Per model layer: int [T, n_out] (values written back; None for a pool or a flatten)."""
    outputs: list = field(default_factory=list)
    """spikes_out words in order."""
    cycles: int = 0
    stall_cycles: int = 0


def run_accelerator(model: IntModel, cfg: HwConfig, samples: np.ndarray, preload: bool = True,
                    input_gaps=None, output_stalls=None, vcd: str | None = None,
                    max_cycles: int = 200_000, bram_output_registers: bool = False,
                    order=None, padding_ones: bool = False) -> list[RunResult]:
    """Run each sample [T, inputs]; `preload` builds the memories initialised from the model,
    otherwise the model is loaded through the `load` stream first. `input_gaps(cycle)` /
    `output_stalls(cycle)` return True to hold valid / ready low in that cycle. `bram_output_registers`: the
    ECP5 build's event memory (one address, read a cycle ahead into a register). `order(sequence)`: the load beats
    in another order (the first `start` still follows the last beat at once). `padding_ones`: a dense
    model's host words carry 1s past its inputs in each step's last word (the encoder masks them)."""
    dut = Accelerator(cfg, model if preload else None, bram_output_registers=bram_output_registers)
    views = [p.view for p in layout(model, cfg.n_pe).layers]
    results = []

    async def testbench(ctx):
        if not preload:
            for space, addr, value in (order or list)(load_sequence(model, cfg)):
                ctx.set(dut.load.valid, 1)
                ctx.set(dut.load.payload, {"space": space, "addr": addr, "data": value})
                await ctx.tick()
            ctx.set(dut.load.valid, 0)
        for sample in samples:
            neuron = {v.index for v in views}
            res = RunResult(
                spikes=[np.zeros((model.timesteps, l.n_out), np.uint8) if i in neuron else None
                        for i, l in enumerate(model.layers)],
                membranes=[np.zeros((model.timesteps, l.n_out), np.int64) if i in neuron else None
                           for i, l in enumerate(model.layers)])
            words = []
            for t in range(model.timesteps):
                step_words = list(input_words(model, cfg, sample[t]))
                if padding_ones and model.n_inputs % cfg.n_pe:
                    step_words[-1] |= ((1 << cfg.n_pe) - 1) & ~((1 << model.n_inputs % cfg.n_pe) - 1)
                words += step_words
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycle = 0
            while True:
                cycle += 1
                assert cycle < max_cycles, f"no done after {max_cycles} cycles"
                gap = input_gaps(cycle) if input_gaps else False
                ctx.set(dut.spikes_in.valid, bool(words) and not gap)
                ctx.set(dut.spikes_in.payload, words[0] if words else 0)
                stall = output_stalls(cycle) if output_stalls else False
                ctx.set(dut.spikes_out.ready, not stall)
                if ctx.get(dut.spikes_in.valid) and ctx.get(dut.spikes_in.ready):
                    words.pop(0)
                if ctx.get(dut.spikes_out.valid) and not stall:
                    res.outputs.append(ctx.get(dut.spikes_out.payload))
                tr = ctx.get(dut.probe)
                if tr.valid:  # group k of a layer: channel block k % G at output position k // G
                    v, k, t = views[tr.layer], tr.group, tr.step
                    q, g = divmod(k, v.groups)
                    mem = unpack_lanes(tr.membranes, cfg.n_pe, cfg.membrane_bits)
                    for i, channel in enumerate(range(g * cfg.n_pe, min((g + 1) * cfg.n_pe, v.out_shape[0]))):
                        neuron = channel * v.positions + q  # the model's (C, H, W) order
                        res.spikes[v.index][t, neuron] = (tr.spikes >> i) & 1
                        res.membranes[v.index][t, neuron] = mem[i]
                done = ctx.get(dut.done)
                await ctx.tick()
                if done:
                    break
            res.cycles, res.stall_cycles = ctx.get(dut.cycles), ctx.get(dut.stall_cycles)
            assert not words, "accelerator finished without consuming every input word"
            results.append(res)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return results


def formula_cycles(model: IntModel, n_pe: int, sample: np.ndarray, lanes_per_unit: int = 1) -> int:
    """docs/microarchitecture.md's cycle formula, written out independently for one sample."""
    from mintaccel.sim.reference import run
    trace = run(model, sample[None])
    lay = layout(model, n_pe)
    total = 2
    for t in range(model.timesteps):
        total += lay.layers[-1].groups
        for l, place in enumerate(lay.layers):
            inputs = sample[t] if l == 0 else trace.spikes[l - 1][0, t]
            e = int(inputs.sum())
            p = lanes_per_unit
            total += (1 + 1 + place.words + e + 1 + 5 + (place.groups - 1) * max(e + 5, p) + p - 1
                      + ThresholdUnit.LATENCY)
    return total
