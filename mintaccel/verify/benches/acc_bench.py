"""cocotb bench of the whole accelerator through its host interface (docs/microarchitecture.md).

Structure (cocotb's examples/matrix_multiplier):
- drivers: `LoadDriver` (load stream, random valid gaps), `SpikeInDriver` (spikes_in words, random
  valid gaps), and the `RunMonitor`'s `start` pulse;
- monitors: `SpikeOutMonitor` (spikes_out words; random ready stalls), `ProbeMonitor` (one record per
  group write-back: step, layer, group, spikes, written-back membranes), `RunMonitor` (busy, done,
  load.ready, the `cycles` / `stall_cycles` counters);
- reference model: `Expected` (sim.reference.run for spikes and membranes of every layer and step, the
  cycle-accurate simulator for the cycles, the phase table of the doc for the cycle of every write-back
  and output word);
- checker: `Scoreboard`, in order, fed by the monitors' callbacks.

Checked, per sample: every write-back record (spikes of the real lanes, padding lanes silent, membranes
of the real lanes, its cycle and the counters at that cycle), every spikes_out word and its cycle,
`done` in the last cycle only, `busy` in every cycle of the run, `load.ready == ~busy`, the run's length
counted by the bench == `cycles`, the stalls the bench caused == `stall_cycles`, and
`cycles - stall_cycles` == the simulator's cycles.

Job kinds (MINTACCEL_JOB, written by mintaccel/verify/harness.py): `random` (networks from seeds, loaded
through the load stream), `corners` (hand-made controller corners), `shipped` (a preloaded build, digits),
`model` (a user's model on its preloaded build, the user's input spikes: `mintaccel regress --model`).
The preloaded kinds also report the predictions decoded from the spikes_out words the RTL produced.
"""

from __future__ import annotations

import numpy as np

import cocotb

import contract as C
import netgen
from bench_lib import Component, CycleLoop, Mismatches, Port, Stopwatch, field_offsets, job, pack, unpack, write_summary
from mintaccel.core.hwconfig import HwConfig, layout
from mintaccel.hw.host_interface import load_layout
from mintaccel.hw.images import input_words, load_sequence, output_counts, output_words, unpack_lanes
from mintaccel.hw.top import probe_layout
from mintaccel.sim.reference import decode, run as reference_run


def simulated(model, cfg: HwConfig, x: np.ndarray):
    """The cycle-accurate simulator's run (sim/cycle): its cycles are the figure the RTL is held to."""
    from mintaccel.sim.cycle import simulate
    return simulate(model, x, cfg)


# ---------------------------------------------------------------- reference model

class Expected:
    """What one network must produce on its samples."""

    def __init__(self, model, cfg: HwConfig, x: np.ndarray):
        self.model, self.cfg, self.x = model, cfg, x
        self.trace = reference_run(model, x)
        sim = simulated(model, cfg, x)
        self.cycles = np.asarray(sim.phases.total, np.int64)
        self.position_events = sim.activity.position_events  # E[l][t][q], per accelerator layer
        self.lay = layout(model, cfg.n_pe)
        self.places = self.lay.layers

    def sample(self, b: int) -> "SampleExpectation":
        """Group write-backs and spikes_out words in order, with their cycle (START cycle = 1) without
        stalls, from the doc's phase table (contract.py): LOAD (a conv network), SETUP (+ MAP_SETUP for a
        layer that reads a map buffer), per output position ENCODE (group 0 accumulating), group 0's ACC
        drain + FIRE (at least P after the last FIRE), per later group START + ACC + FIRE (written back
        WRITEBACK + P - 1 cycles after FIRE), DRAIN per layer, OUTPUT per word, DONE. Group k of a
        layer is channel block k % G at output position k // G (a dense layer: one position)."""
        n, p = self.cfg.n_pe, self.cfg.lanes_per_unit
        fires, outputs = [], []
        c = C.RUN_START
        for t in range(self.model.timesteps):
            c += C.LOAD_PER_WORD * self.lay.load_words
            for l, place in enumerate(self.places):
                v = place.view
                c += C.SETUP + (C.MAP_SETUP if self.cfg.max_map_words and not v.from_host else 0)
                spikes = self.trace.spikes[v.index][b, t]
                mem = self.trace.membranes[v.index][b, t]
                for q in range(v.positions):
                    e = int(self.position_events[l][b, t, q])
                    encode = C.ENCODE_START + C.encode_cycles(place.words, e)
                    c += encode
                    for g in range(place.groups):
                        if g == 0:  # its FIRE at least P cycles after the previous position's last FIRE
                            c += max(C.first_group_cycles(), p - encode) if q else C.first_group_cycles()
                        else:
                            c += C.group_cycles(e, p)
                        channels = range(g * n, min((g + 1) * n, v.out_shape[0]))
                        lanes = [ch * v.positions + q for ch in channels]
                        word = sum(int(spikes[k]) << i for i, k in enumerate(lanes))
                        what = (f"neurons {channels[0]}..{channels[-1]}" if v.positions == 1 else
                                f"channels {channels[0]}..{channels[-1]} at output position {divmod(q, v.out_shape[2])}")
                        fires.append((t, l, q * place.groups + g, c + C.writeback_delay(p), word,
                                      [int(mem[k]) for k in lanes], what))
                c += C.writeback_delay(p)
            for word in output_words(self.model, self.cfg, self.trace.spikes[-1][b, t]):
                c += C.OUTPUT_PER_WORD
                outputs.append((word, c))
        c += C.RUN_DONE
        return SampleExpectation(fires, outputs, c, int(self.cycles[b]))


class SampleExpectation:
    def __init__(self, fires, outputs, schedule_total, cycles):
        self.fires, self.outputs = fires, outputs
        self.schedule_total = schedule_total
        """Cycles by the doc's phase table (this file)."""
        self.cycles = cycles
        """Cycles by the cycle-accurate simulator: the figure the RTL is held to."""


# ---------------------------------------------------------------- drivers

class LoadDriver(Component):
    """The load stream: (space, addr, data) writes, with random cycles of valid low."""

    def __init__(self, dut, cfg, rng):
        self.valid, self.payload = Port(dut.load__valid, 0), Port(dut.load__payload, 0)
        self.ready = dut.load__ready
        self.offsets = field_offsets(load_layout(cfg))
        self.rng, self.gap = rng, 0.0
        self.queue, self.i, self.accepted = [], 0, 0
        self.active = False

    def send(self, writes, gap: float) -> None:
        self.queue, self.i, self.gap, self.active = list(writes), 0, gap, True

    @property
    def idle(self) -> bool:
        return self.i >= len(self.queue)

    def drive(self):
        if self.i < len(self.queue) and not (self.gap and self.rng.random() < self.gap):
            s, a, d = self.queue[self.i]
            self.payload.set(pack({"space": s, "addr": a, "data": d}, self.offsets))
            self.valid.set(1)
        else:
            self.valid.set(0)

    def sample(self):
        if self.valid.last and int(self.ready.value):
            self.i += 1
            self.accepted += 1


class SpikeInDriver(Component):
    """spikes_in: the words of one sample in order, valid held low in random cycles. Counts the stalls
    it causes: cycles in which the accelerator is ready and valid is low."""

    def __init__(self, dut, rng):
        self.valid, self.payload = Port(dut.spikes_in__valid, 0), Port(dut.spikes_in__payload, 0)
        self.ready = dut.spikes_in__ready
        self.rng, self.gap = rng, 0.0
        self.words, self.i, self.stalls = [], 0, 0
        self.active = False

    def send(self, words, gap: float) -> None:
        self.words, self.i, self.stalls, self.gap, self.active = list(words), 0, 0, gap, True

    def drive(self):
        if self.i < len(self.words) and not (self.gap and self.rng.random() < self.gap):
            self.payload.set(self.words[self.i])
            self.valid.set(1)
        else:
            self.valid.set(0)

    def sample(self):
        if int(self.ready.value):
            if self.valid.last:
                self.i += 1
            else:
                self.stalls += 1


# ---------------------------------------------------------------- monitors

class SpikeOutMonitor(Component):
    """spikes_out: ready held low in random cycles; every word taken goes to `callback(word)`."""

    def __init__(self, dut, rng, callback):
        self.ready, self.valid, self.payload = Port(dut.spikes_out__ready, 0), dut.spikes_out__valid, dut.spikes_out__payload
        self.rng, self.hold, self.callback = rng, 0.0, callback
        self.stalls = 0
        self.active = False

    def drive(self):
        self.ready.set(0 if self.hold and self.rng.random() < self.hold else 1)

    def sample(self):
        if int(self.valid.value):
            if self.ready.last:
                self.callback(int(self.payload.value))
            else:
                self.stalls += 1


class ProbeMonitor(Component):
    """The probe port: one record per group write-back, with the counters of that cycle."""

    def __init__(self, dut, cfg, callback):
        self.probe, self.cycles, self.stall_cycles = dut.probe, dut.cycles, dut.stall_cycles
        self.offsets = field_offsets(probe_layout(cfg))
        self.valid_bit = 1 << self.offsets["valid"][0]
        self.callback = callback
        self.active = False

    def sample(self):
        v = int(self.probe.value)
        if v & self.valid_bit:
            rec = unpack(v, self.offsets)
            self.callback(rec, int(self.cycles.value), int(self.stall_cycles.value))


class RunMonitor(Component):
    """Pulses `start`; counts the run's cycles (the START cycle is 1); watches busy, done, load.ready;
    in the first cycle after DONE reads the final `cycles` / `stall_cycles` for `on_final`."""

    def __init__(self, dut):
        self.start, self.busy, self.done, self.load_ready = Port(dut.start, 0), dut.busy, dut.done, dut.load__ready
        self.cycles, self.stall_cycles = dut.cycles, dut.stall_cycles
        self.run_cycle = 0
        self.running = self.starting = False
        self.done_at = 0
        self.on_cycle = None
        self.on_final = None
        self.pending_final = None

    def begin(self, on_cycle, on_final) -> None:
        self.starting, self.run_cycle, self.done_at = True, 0, 0
        self.on_cycle, self.next_final = on_cycle, on_final

    def drive(self):
        self.start.set(1 if self.starting else 0)

    def sample(self):
        if self.pending_final is not None:
            self.pending_final(int(self.cycles.value), int(self.stall_cycles.value))
            self.pending_final = None
        if self.starting:
            self.starting, self.running, self.on_final = False, True, self.next_final
        if self.running:
            self.run_cycle += 1
            busy, done = int(self.busy.value), int(self.done.value)
            self.on_cycle(self.run_cycle, busy, done, int(self.load_ready.value))
            if done:
                self.running, self.done_at = False, self.run_cycle
                self.pending_final = self.on_final


# ---------------------------------------------------------------- checker

class Scoreboard:
    """Compares one sample's monitored transactions with its expectation, in order."""

    def __init__(self, exp: SampleExpectation, cfg, model, where: str, mm: Mismatches, ins: SpikeInDriver,
                 outs: SpikeOutMonitor, strict_busy: bool):
        self.exp, self.cfg, self.model, self.where, self.mm = exp, cfg, model, where, mm
        self.ins, self.outs, self.strict_busy = ins, outs, strict_busy
        self.fire_i = self.out_i = 0
        self.run_cycle = 0
        self.done_seen = 0
        self.final = None
        self.busy_at_start = None
        self.at_done = None
        self.stats = {"fires": 0, "neuron_steps": 0, "output_words": 0}
        self.words: list[int] = []
        """The spikes_out words taken, in order (the RTL's own output)."""

    def stalls(self) -> int:
        return self.ins.stalls + self.outs.stalls

    def on_cycle(self, c, busy, done, load_ready):
        self.run_cycle = c
        if c == 1:
            self.busy_at_start = busy
            if self.strict_busy:
                self.mm.equal(busy, 0, lambda: f"{self.where}: busy in the START cycle (docs: busy from the cycle after START)")
        elif busy != 1:
            self.mm.equal(busy, 1, lambda: f"{self.where}: busy in run cycle {c}")
        if load_ready != 1 - busy:
            self.mm.equal(load_ready, 1 - busy, lambda: f"{self.where}: load.ready in run cycle {c} (busy {busy})")
        if done:
            self.done_seen += 1
            self.at_done = (self.ins.stalls, self.outs.stalls, self.ins.i, len(self.ins.words))
            self.mm.equal(c, self.exp.cycles + self.stalls(),
                          lambda: f"{self.where}: DONE cycle (simulator cycles {self.exp.cycles} + {self.stalls()} stalls)")

    def on_writeback(self, rec, cycles_reg, stall_reg):
        c, mm = self.run_cycle, self.mm
        if self.fire_i >= len(self.exp.fires):
            mm.check(False, f"{self.where}: unexpected probe record {rec} in run cycle {c}")
            return
        t, l, g, nominal, word, mems, what = self.exp.fires[self.fire_i]
        self.fire_i += 1
        at = lambda: f"{self.where} step {t} layer {l} group {g}"  # noqa: E731
        order = (rec["step"], rec["layer"], rec["group"])
        if not mm.equal(order, (t, l, g), lambda: f"{at()}: write-back order (step, layer, group)"):
            return
        n, mb = self.cfg.n_pe, self.cfg.membrane_bits
        real = len(mems)
        mm.equal(rec["spikes"] & ((1 << real) - 1), word, lambda: f"{at()}: spikes of {what} (bit i = lane i)")
        mm.equal(rec["spikes"] >> real, 0, lambda: f"{at()}: spikes of padding lanes {real}..{n - 1}")
        got = unpack_lanes(rec["membranes"], n, mb)[:real]
        mm.equal(got, mems, lambda: f"{at()}: membranes of {what}")
        stalls = self.stalls()
        mm.equal(c, nominal + stalls, lambda: f"{at()}: write-back cycle (phase table {nominal} + {stalls} stalls)")
        mm.equal((cycles_reg, stall_reg), (c - 1, stalls), lambda: f"{at()}: (cycles, stall_cycles) counters in run cycle {c}")
        self.stats["fires"] += 1
        self.stats["neuron_steps"] += real

    def on_output(self, word):
        c, mm = self.run_cycle, self.mm
        if self.out_i >= len(self.exp.outputs):
            mm.check(False, f"{self.where}: unexpected spikes_out word {word:#x} in run cycle {c}")
            return
        expected, nominal = self.exp.outputs[self.out_i]
        k = self.out_i
        self.out_i += 1
        self.words.append(word)
        groups = len(self.exp.outputs) // self.model.timesteps
        mm.equal(word, expected, lambda: f"{self.where}: spikes_out word {k} (step {k // groups}, word {k % groups})")
        mm.equal(c, nominal + self.stalls(),
                 lambda: f"{self.where}: spikes_out word {k} cycle (phase table {nominal} + {self.stalls()} stalls)")
        self.stats["output_words"] += 1

    def on_final(self, cycles, stall_cycles):
        self.final = (cycles, stall_cycles)

    def output_counts(self) -> np.ndarray:
        """Spike counts per output neuron over the run, from the spikes_out words the RTL produced."""
        return output_counts(self.model, self.cfg, self.words)

    def close(self):
        """After the run: counts of everything, and the cycle figures."""
        mm, e = self.mm, self.exp
        mm.equal(self.fire_i, len(e.fires), lambda: f"{self.where}: probe records (group write-backs)")
        mm.equal(self.out_i, len(e.outputs), lambda: f"{self.where}: spikes_out words")
        mm.equal(self.done_seen, 1, lambda: f"{self.where}: cycles with done high")
        mm.equal(e.schedule_total, e.cycles, lambda: f"{self.where}: the simulator's cycles vs the doc's phase table")
        if self.final is None or self.at_done is None:
            mm.check(False, f"{self.where}: no DONE, or no final counters read")
            return
        in_stalls, out_stalls, consumed, sent = self.at_done
        mm.equal(consumed, sent, lambda: f"{self.where}: spikes_in words consumed by DONE")
        cycles, stall_cycles = self.final
        stalls = in_stalls + out_stalls
        mm.equal(cycles, self.run_cycle, lambda: f"{self.where}: `cycles` vs cycles counted by the bench from START to DONE")
        mm.equal(stall_cycles, stalls, lambda: f"{self.where}: `stall_cycles` vs stalls caused by the bench "
                 f"({in_stalls} on spikes_in, {out_stalls} on spikes_out)")
        mm.equal(cycles - stall_cycles, e.cycles, lambda: f"{self.where}: cycles - stall_cycles vs the cycle-accurate simulator")


# ---------------------------------------------------------------- the testbench

class AcceleratorTB:
    def __init__(self, dut, cfg: HwConfig, seed: int, keep: int = 50):
        self.dut, self.cfg = dut, cfg
        self.rng = np.random.default_rng(seed)  # drives gaps and stalls; the stimulus comes from netgen
        self.loop = CycleLoop(dut)
        self.mm = Mismatches(keep)
        self.board = None
        self.run = RunMonitor(dut)
        self.loader = LoadDriver(dut, cfg, self.rng)
        self.ins = SpikeInDriver(dut, self.rng)
        self.outs = SpikeOutMonitor(dut, self.rng, lambda w: self.board.on_output(w))
        self.probe = ProbeMonitor(dut, cfg, lambda r, c, s: self.board.on_writeback(r, c, s))
        # sample order matters: the run monitor numbers the cycle before the others report in it
        self.loop.add(self.run, self.loader, self.ins, self.outs, self.probe)
        self.totals = {"networks": 0, "samples": 0, "run_cycles": 0, "stall_cycles": 0, "load_writes": 0,
                       "fires": 0, "neuron_steps": 0, "output_words": 0, "timeouts": 0}
        self.busy_at_start = set()
        self.last_expected = None
        self.predictions: list[int] = []
        """Per sample that reached DONE: the class decoded from the RTL's output spikes."""
        self.failed_samples: list[int] = []
        """Sample numbers (job's `first` + index) with at least one mismatch."""

    async def start(self):
        await self.loop.start()

    async def load(self, model, gap: float, where: str) -> bool:
        """Write the model's registers, weights and biases through the load stream."""
        writes = load_sequence(model, self.cfg)
        self.loader.send(writes, gap)
        limit = self.loop.cycle + 4 * len(writes) + 100
        while not self.loader.idle:
            await self.loop.step()
            if self.loop.cycle > limit:
                self.mm.check(False, f"{where}: load stream stuck after {self.loader.i} of {len(writes)} writes")
                return False
        await self.loop.step()  # the cycle that drops valid
        self.loader.active = False
        self.totals["load_writes"] += len(writes)
        return True

    async def run_sample(self, model, exp: SampleExpectation, words, gap: float, hold: float, where: str,
                         strict_busy: bool = False) -> bool:
        self.board = Scoreboard(exp, self.cfg, model, where, self.mm, self.ins, self.outs, strict_busy)
        self.ins.send(words, gap)
        self.outs.hold, self.outs.stalls, self.outs.active, self.probe.active = hold, 0, True, True
        board = self.board
        self.run.begin(board.on_cycle, lambda c, s: self.close_sample(board, c, s))
        limit = 4 * exp.cycles + 200 + 50 * len(words)
        limit += int(len(exp.outputs) * 50 * (hold > 0))
        while self.run.starting or self.run.running:
            await self.loop.step()
            if self.run.run_cycle > limit:
                self.mm.check(False, f"{where}: no DONE after {limit} cycles (expected {exp.cycles} + stalls)")
                self.totals["timeouts"] += 1
                self.run.running = False
                self.run.pending_final = None
                await self.loop.reset()
                return False
        # the next cycle (idle, or the next sample's START) delivers the final counters
        return True

    async def idle(self, cycles: int):
        self.ins.active = self.outs.active = False
        self.ins.valid.set(0)
        for _ in range(cycles):
            await self.loop.step()

    def close_sample(self, b: Scoreboard, cycles: int, stall_cycles: int):
        """Called with the final counters, in the cycle after DONE."""
        b.on_final(cycles, stall_cycles)
        b.close()
        for k in ("fires", "neuron_steps", "output_words"):
            self.totals[k] += b.stats[k]
        self.totals["samples"] += 1
        if b.final:
            self.totals["run_cycles"] += b.final[0]
            self.totals["stall_cycles"] += b.final[1]
        self.busy_at_start.add(b.busy_at_start)
        self.predictions.append(int(decode(b.output_counts())))

    async def network(self, case: netgen.Case, preloaded: bool = False, strict_busy: bool = False,
                      name: str | None = None, first_sample: int = 0) -> int:
        """Load (unless preloaded) and run every sample of `case`; returns its mismatches. Mismatches
        name `name` (default: the network's seed) and the sample as `first_sample` + its index."""
        before = self.mm.count
        where = name or f"network seed {case.seed}"
        gap, hold = netgen.STALLS[case.stall]
        self.last_expected = None
        if not preloaded and not await self.load(case.model, gap, where):
            await self.loop.reset()
            return self.mm.count - before
        exp = self.last_expected = Expected(case.model, self.cfg, case.inputs)
        for b in range(len(case.inputs)):
            sample_before = self.mm.count
            ok = await self.run_sample(case.model, exp.sample(b), case.words[b], gap, hold,
                                       f"{where} sample {first_sample + b}", strict_busy)
            if self.mm.count > sample_before:
                self.failed_samples.append(first_sample + b)
            await self.idle(int(self.rng.integers(0, 4)))
            if not ok:
                break
        self.totals["networks"] += 1
        return self.mm.count - before


def coverage_of(case: netgen.Case, exp: Expected | None, counts: dict) -> None:
    """Count, per feature, the networks that exercised it (features of the stimulus and of the result)."""
    feats = set(case.features)
    for l, layer in enumerate(case.model.layers if exp is not None else ()):
        m = exp.trace.membranes[l]
        if m is None:  # a pool or a flatten
            continue
        if (m == layer.membrane_max).any():
            feats.add("membrane at +Q")
        if (m == -layer.membrane_max).any():
            feats.add("membrane at -Q")
        if exp.trace.spikes[l].any():
            feats.add("spikes fired")
    for f in feats:
        counts[f] = counts.get(f, 0) + 1


async def _run_job(dut, j: dict, cases, preloaded: bool, name: str | None = None):
    cfg = HwConfig(**j["config"])
    tb = AcceleratorTB(dut, cfg, j.get("bench_seed", 0), j.get("keep", 50))
    await tb.start()
    watch = Stopwatch()
    coverage: dict = {}
    failed = []
    for k, case in enumerate(cases):
        bad = await tb.network(case, preloaded, strict_busy=j.get("strict_busy", False), name=name,
                               first_sample=j.get("first", 0))
        coverage_of(case, tb.last_expected, coverage)
        if bad:
            failed.append(case.seed)
            cocotb.log.error("network seed %d: %d mismatches (%s)", case.seed, bad, case.describe())
        if k % 10 == 9:
            cocotb.log.info("%d networks, %d mismatches, %d cycles", k + 1, tb.mm.count, tb.loop.cycle)
            write_summary(j, _summary(tb, watch, coverage, failed, j))
    await tb.idle(2)
    summary = _summary(tb, watch, coverage, failed, j)
    write_summary(j, summary)
    return tb, summary


def _summary(tb: AcceleratorTB, watch: Stopwatch, coverage: dict, failed: list, j: dict) -> dict:
    s = dict(tb.totals)
    s.update({
        "clock_cycles": tb.loop.cycle,
        "wall_seconds": round(watch.seconds, 3),
        "cycles_per_second": round(tb.loop.cycle / max(watch.seconds, 1e-9)),
        "checks": tb.mm.checks,
        "mismatches": tb.mm.count,
        "mismatch_details": tb.mm.details,
        "failed_seeds": failed,
        "coverage": dict(sorted(coverage.items())),
        "busy_in_start_cycle": sorted(x for x in tb.busy_at_start if x is not None),
        "kind": j["kind"],
        "failed_samples": tb.failed_samples,
    })
    if j["kind"] in ("shipped", "model"):
        s["predictions"] = tb.predictions
    return s


def _fail_if_mismatched(summary: dict):
    assert summary["mismatches"] == 0, (
        f"{summary['mismatches']} mismatches; failed network seeds {summary['failed_seeds']}; first: "
        + " | ".join(summary["mismatch_details"][:3]))
    assert summary["samples"] > 0, "no sample ran"


@cocotb.test()
async def random_networks(dut):
    """Random networks from consecutive seeds, each loaded through the load stream, on one build."""
    j = job()
    cfg = HwConfig(**j["config"])
    cases = (netgen.case(s, cfg, j.get("samples", 3)) for s in range(j["seed"], j["seed"] + j["networks"]))
    _, summary = await _run_job(dut, j, cases, preloaded=False)
    _fail_if_mismatched(summary)


@cocotb.test()
async def random_conv_networks(dut):
    """Random conv networks (mintaccel/verify/benches/netgen.conv_case) on a conv build, each loaded
    through the load stream."""
    j = job()
    cfg = HwConfig(**j["config"])
    cases = (netgen.conv_case(s, cfg, j.get("samples", 2)) for s in range(j["seed"], j["seed"] + j["networks"]))
    _, summary = await _run_job(dut, j, cases, preloaded=False)
    _fail_if_mismatched(summary)


@cocotb.test()
async def controller_corners(dut):
    """Hand-made corners of the controller's sequencing (mintaccel/verify/benches/netgen.corner_cases)."""
    j = job()
    cfg = HwConfig(**j["config"])
    _, summary = await _run_job(dut, j, netgen.corner_cases(cfg), preloaded=False)
    _fail_if_mismatched(summary)


async def _preloaded(dut, j: dict, model, x: np.ndarray, feature: str, name: str):
    """`model` is in the build (memories and registers preloaded): run the samples `x` on start."""
    cfg = HwConfig(**j["config"])
    words = [[w for t in range(model.timesteps) for w in input_words(model, cfg, s[t])] for s in x]
    case = netgen.Case(j.get("seed", 0), model, x, words, j.get("stall", "none"), {feature})
    _, summary = await _run_job(dut, j, [case], preloaded=True, name=name)
    return summary


@cocotb.test()
async def shipped_model(dut):
    """The shipped digits model on a build with its memories preloaded: runs on start, no load."""
    from mintaccel.model_export import datasets
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.encoding import rate_encode
    j = job()
    model = load_model(j["model"])
    split = datasets.digits()
    first, count = j.get("first", 0), j["samples"]
    x = rate_encode(split.x_test[first:first + count], model.timesteps, model.encoding.levels)
    summary = await _preloaded(dut, j, model, x, "shipped digits", "shipped model")
    # not a check (the spikes are): how many of these digits the model classifies right
    got = np.array(summary["predictions"], np.int64)  # shorter only if a sample hung (a mismatch already)
    summary["correct_predictions"] = int((got == split.y_test[first:first + len(got)]).sum())
    write_summary(j, summary)
    _fail_if_mismatched(summary)


@cocotb.test()
async def model_inputs(dut):
    """A user's model (`mintaccel regress --model`) on its preloaded build, on the user's input spikes
    (`inputs`: this run's samples, numbered from `first` in the user's file)."""
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.reference import check_input
    j = job()
    model = load_model(j["model"])
    x = check_input(model, np.load(j["inputs"], allow_pickle=False))
    summary = await _preloaded(dut, j, model, x, "user model", "model")
    _fail_if_mismatched(summary)
