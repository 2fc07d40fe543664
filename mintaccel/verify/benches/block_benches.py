"""cocotb benches of single blocks: processing element, threshold unit, membrane memory, spike encoder.

Each bench has the same parts as the accelerator's: a driver of seeded random stimulus (with corners),
a monitor of the outputs, a reference model written from the docs (docs/arithmetic.md for the
arithmetic, sim.reference for the neuron step), and a checker that counts every comparison. The job
(MINTACCEL_JOB) gives the block's parameters and the seed; the summary gives checks and mismatches.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import cocotb

import contract as C
from bench_lib import Component, CycleLoop, Mismatches, Port, Stopwatch, job, write_summary
from mintaccel.core.encodings import MEMBRANE_BITS, LeakKind, ResetMode, WeightScheme
from mintaccel.core.model import Leak, WeightFormat
from mintaccel.hw.processing_element import pe_formats
from mintaccel.hw.spike_encoder import last_word_lanes_value
from mintaccel.sim.reference import neuron_step


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _finish(j: dict, mm: Mismatches, watch: Stopwatch, **extra) -> None:
    summary = {"checks": mm.checks, "mismatches": mm.count, "mismatch_details": mm.details,
               "wall_seconds": round(watch.seconds, 3), "seed": j["seed"], **extra}
    write_summary(j, summary)
    assert mm.count == 0, f"{mm.count} mismatches (seed {j['seed']}); first: " + " | ".join(mm.details[:3])
    assert mm.checks > 0


# ---------------------------------------------------------------- threshold unit (pipelined)

def decode_leak(kind: int, k: int) -> Leak:
    """The leak a `leak_kind` code and `leak_k` stand for (the codes: core.encodings.LeakKind)."""
    kind = LeakKind(kind)
    return Leak(kind.name, 0 if kind is LeakKind.none else k)


def threshold_layers(rng, m_bits: int, acc_bits: int, count: int):
    """Layer parameter sets (threshold, soft, leak_kind, leak_k, membrane bits of the layer), each with
    its (u, acc, lane, valid_in) inputs: corners first (u at the rails, H = u + acc at its extremes and
    around theta), then random ones. Inputs respect docs/arithmetic.md section 3, the contract the
    accumulator width is derived from: |u + acc| <= B < 2^(A-1)."""
    fmts = [b for b in MEMBRANE_BITS if b <= m_bits]
    h_max = (1 << (acc_bits - 1)) - 1  # the largest B an A-bit accumulator is built for (acc too)
    t_max = (1 << (acc_bits - 1)) - 1
    layers = []
    for mb in fmts:
        q = (1 << (mb - 1)) - 1
        for theta in sorted({1, 2, q + 1, t_max}):
            for soft in (0, 1):
                for kind in (c.value for c in LeakKind):
                    k = int(rng.integers(1, 16)) if kind else int(rng.integers(0, 16))
                    inputs = []
                    for u in sorted({-q, -q + 1, -1, 0, 1, q - 1, q}):
                        accs = {-h_max - u, -h_max + 1 - u, -1, 0, 1, h_max - u, theta - u - 1, theta - u, theta - u + 1}
                        for acc in sorted(accs):
                            if abs(u + acc) <= h_max and abs(acc) <= h_max:
                                inputs.append((u, acc, 1, 1))
                    layers.append(((theta, soft, kind, k, mb), inputs))
    left = count
    while left > 0:
        mb = int(rng.choice(fmts))
        q = (1 << (mb - 1)) - 1
        theta = int(rng.integers(1, t_max + 1)) if rng.random() < 0.3 else int(rng.integers(1, min(t_max, 4 * q + 8) + 1))
        kind = int(rng.integers(0, len(LeakKind)))
        k = int(rng.integers(1, 16)) if kind else int(rng.integers(0, 16))
        inputs = []
        for _ in range(min(left, int(rng.integers(1, 200)))):
            u = int(rng.integers(-q, q + 1))
            if rng.random() < 0.3:
                h = int(rng.integers(-h_max, h_max + 1))
            else:
                h = int(np.clip(theta + rng.integers(-8, 9), -h_max, h_max))
            acc = int(np.clip(h - u, -h_max, h_max))
            inputs.append((u, acc, int(rng.random() < 0.9), int(rng.random() < 0.8)))
        left -= len(inputs)
        layers.append(((theta, int(rng.integers(0, 2)), kind, k, mb), inputs))
    return layers


def threshold_reference(u, acc, theta, soft, kind, k, mb):
    """docs/arithmetic.md steps 2-6 through the reference model's own neuron step."""
    layer = SimpleNamespace(bound=1 << 40, threshold=theta, reset=ResetMode(soft).name,
                            leak=decode_leak(kind, k if kind else 0), membrane_max=(1 << (mb - 1)) - 1)
    spike, u_next = neuron_step(layer, np.array([u], np.int64), np.array([acc], np.int64))
    return int(spike[0]), int(u_next[0])


class ThresholdTB(Component):
    """Drives one input per cycle (valid_in random, lane random); layer parameters change only while
    nothing is in flight (hw/threshold_unit.py); expects each valid input's result LATENCY cycles later
    (docs/microarchitecture.md, "Threshold pipeline") with valid_out, and valid_out low otherwise."""

    def __init__(self, dut, layers, m_bits, acc_bits, latency, mm: Mismatches):
        self.dut, self.mm, self.mb, self.ab, self.latency = dut, mm, m_bits, acc_bits, latency
        self.p = {n: Port(getattr(dut, n), 0) for n in ("valid_in", "lane", "u", "acc", "threshold", "reset_mode",
                                                        "leak_kind", "leak_k", "membrane_max")}
        self.items = []
        for params, inputs in layers:
            self.items += [("params", params)] + [("input", x) for x in inputs] + [("drain", None)] * latency
        self.i = 0
        self.params = None
        self.pipe = [None] * latency  # what each cycle's input must produce, oldest first
        self.cycle = self.results = self.spikes = 0

    @property
    def finished(self) -> bool:
        return self.i >= len(self.items)

    def drive(self):
        expect = None
        while self.i < len(self.items) and self.items[self.i][0] == "params":
            self.params = self.items[self.i][1]
            theta, soft, kind, k, mb = self.params
            for n, v in (("threshold", theta), ("reset_mode", soft), ("leak_kind", kind), ("leak_k", k),
                         ("membrane_max", (1 << (mb - 1)) - 1)):
                self.p[n].set(v)
            self.i += 1
        if self.i < len(self.items) and self.items[self.i][0] == "input":
            u, acc, lane, valid = self.items[self.i][1]
            self.p["u"].set(u & ((1 << self.mb) - 1))
            self.p["acc"].set(acc & ((1 << self.ab) - 1))
            self.p["lane"].set(lane)
            self.p["valid_in"].set(valid)
            if valid:
                spike, u_next = threshold_reference(u, acc, *self.params)
                expect = (spike & lane, u_next, f"u={u} acc={acc} lane={lane} theta={self.params[0]} "
                          f"soft={self.params[1]} leak={decode_leak(self.params[2], self.params[3] if self.params[2] else 0)} "
                          f"Q={(1 << (self.params[4] - 1)) - 1}")
        else:
            self.p["valid_in"].set(0)
            self.p["u"].set(int(np.random.randint(0, 1 << self.mb)))  # garbage while not valid
        self.i += 1
        self.pipe.append(expect)

    def sample(self):
        self.cycle += 1
        expect = self.pipe.pop(0)
        d, mm = self.dut, self.mm
        valid_out = int(d.valid_out.value)
        mm.equal(valid_out, int(expect is not None), lambda: f"cycle {self.cycle}: valid_out")
        if expect is not None and valid_out:
            spike, u_next, what = expect
            got = (int(d.spike.value), _signed(int(d.u_next.value), self.mb))
            mm.equal(got, (spike, u_next), lambda: f"threshold unit {what}: (spike, u_next)")
            self.results += 1
            self.spikes += spike


@cocotb.test()
async def threshold_unit(dut):
    j = job()
    m_bits, acc_bits, latency = j["membrane_bits"], j["acc_bits"], j["latency"]
    rng = np.random.default_rng(j["seed"])
    np.random.seed(j["seed"])
    mm, watch = Mismatches(), Stopwatch()
    tb = ThresholdTB(dut, threshold_layers(rng, m_bits, acc_bits, j.get("random_vectors", 4000)), m_bits, acc_bits,
                     latency, mm)
    loop = CycleLoop(dut)
    loop.add(tb)
    await loop.start()
    while not tb.finished:
        await loop.step()
    for _ in range(latency + 1):
        await loop.step()
    _finish(j, mm, watch, vectors=tb.results, spikes=tb.spikes, cycles=loop.cycle)


# ---------------------------------------------------------------- processing element

#: (scheme code, bits) of every weight format (core.encodings: the tables the RTL is built from).
PE_FORMATS = [(f.code.value, f.bits) for f in WeightFormat.every()]


def decode_weight(scheme: int, bits: int, code: int) -> int:
    """docs/microarchitecture.md, weight codes: uniform two's complement, binary 0/1 = -1/+1,
    pot sign bit b-1 and magnitude code m in bits 0..b-2 (0 = zero, else 2^(m-1)). Upper bits ignored.

    An independent oracle on purpose: written from the doc, not from core.encodings.pot_magnitudes,
    which the RTL's decoder is built from."""
    c = code & ((1 << bits) - 1)
    if scheme == WeightScheme.uniform.value:
        return _signed(c, bits)
    if scheme == WeightScheme.binary.value:
        return 1 if c & 1 else -1
    mag = c & ((1 << (bits - 1)) - 1)
    value = 0 if mag == 0 else 1 << (mag - 1)
    return -value if c >> (bits - 1) else value


class PEDriver(Component):
    """Random weight codes of a random legal format (one-hot on `format`) each cycle (upper lane bits random
    too), random load (with a random init) and enable; keeps the model accumulator inside the accumulator's
    range."""

    def __init__(self, dut, rng, weight_bits, acc_bits, model):
        self.rng, self.wb, self.ab, self.model = rng, weight_bits, acc_bits, model
        self.formats = [f for f in PE_FORMATS if f[1] <= weight_bits]  # the order of the one-hot `format` port
        assert self.formats == [(f.code.value, f.bits) for f in pe_formats(weight_bits)]
        self.p = {n: Port(getattr(dut, n), 0) for n in ("code", "format", "load", "init", "enable")}
        self.lim = (1 << (acc_bits - 1)) - 1

    def drive(self):
        rng = self.rng
        k = int(rng.integers(len(self.formats)))
        scheme, bits = self.formats[k]
        code = int(rng.integers(0, 1 << self.wb))
        weight = decode_weight(scheme, bits, code)
        load = rng.random() < 0.1 or abs(self.model.acc + weight) > self.lim
        init = int(rng.integers(-self.lim - 1, self.lim + 1)) if rng.random() < 0.2 else int(rng.integers(-8, 9))
        enable = int(rng.random() < 0.8)
        for n, v in (("code", code), ("format", 1 << k), ("load", int(load)),
                     ("init", init & ((1 << self.ab) - 1)), ("enable", enable)):
            self.p[n].set(v)
        self.model.expect(weight, int(load), init, enable)


class PEModel:
    """acc <- init on load; acc <- acc + weight on enable."""

    def __init__(self):
        self.acc = 0  # the reset value: the bench starts right after reset
        self.weight = None
        self.known = True

    def expect(self, weight, load, init, enable):
        self.weight = weight
        self.next = init if load else (self.acc + weight if enable else self.acc)
        self.next_known = bool(load) or self.known


class PEMonitor(Component):
    def __init__(self, dut, model: PEModel, mm: Mismatches, weight_bits, acc_bits):
        self.dut, self.model, self.mm = dut, model, mm
        self.wbits = len(dut.weight)
        self.ab = acc_bits
        self.cycle = 0

    def sample(self):
        m, mm = self.model, self.mm
        self.cycle += 1
        mm.equal(_signed(int(self.dut.weight.value), self.wbits), m.weight, lambda: f"cycle {self.cycle}: decoded weight")
        if m.known:
            mm.equal(_signed(int(self.dut.acc.value), self.ab), m.acc, lambda: f"cycle {self.cycle}: accumulator")
        # the edge at the end of this cycle makes the prediction current
        m.acc, m.known = m.next, m.next_known


@cocotb.test()
async def processing_element(dut):
    j = job()
    rng = np.random.default_rng(j["seed"])
    mm, watch = Mismatches(), Stopwatch()
    model = PEModel()
    loop = CycleLoop(dut)
    wb, ab = j["weight_bits"], j["acc_bits"]
    loop.add(PEDriver(dut, rng, wb, ab, model), PEMonitor(dut, model, mm, wb, ab))
    await loop.start()
    for _ in range(j.get("cycles", 5000)):
        await loop.step()
    _finish(j, mm, watch, cycles=loop.cycle)


# ---------------------------------------------------------------- membrane memory

class MemoryModel:
    """Synchronous read port (not transparent: a read of the word being written returns the old word),
    one write port; `rdata` holds its value while `ren` is low."""

    def __init__(self, init, depth):
        self.words = list(init) + [0] * (depth - len(init))
        self.rdata = None

    def edge(self, ren, raddr, wen, waddr, wdata):
        if ren:
            self.rdata = self.words[raddr]
        if wen:
            self.words[waddr] = wdata


class MemoryDriverMonitor(Component):
    def __init__(self, dut, rng, model: MemoryModel, mm: Mismatches, depth: int, width: int):
        self.dut, self.rng, self.model, self.mm, self.depth, self.width = dut, rng, model, mm, depth, width
        self.p = {n: Port(getattr(dut, n), 0) for n in ("raddr", "ren", "waddr", "wdata", "wen")}
        self.cycle = 0
        self.pending = None

    def drive(self):
        rng = self.rng
        raddr = int(rng.integers(0, self.depth))
        waddr = raddr if rng.random() < 0.2 else int(rng.integers(0, self.depth))  # read-during-write corner
        wdata = int(rng.integers(0, 1 << min(self.width, 62))) | (int(rng.integers(0, 2)) << (self.width - 1))
        ren, wen = int(rng.random() < 0.6), int(rng.random() < 0.5)
        for n, v in (("raddr", raddr), ("ren", ren), ("waddr", waddr), ("wdata", wdata), ("wen", wen)):
            self.p[n].set(v)
        self.pending = (ren, raddr, wen, waddr, wdata)

    def sample(self):
        self.cycle += 1
        if self.model.rdata is not None:
            self.mm.equal(int(self.dut.rdata.value), self.model.rdata, lambda: f"cycle {self.cycle}: rdata")
        self.model.edge(*self.pending)


@cocotb.test()
async def membrane_memory(dut):
    j = job()
    rng = np.random.default_rng(j["seed"])
    mm, watch = Mismatches(), Stopwatch()
    model = MemoryModel(j["init"], j["depth"])
    loop = CycleLoop(dut)
    loop.add(MemoryDriverMonitor(dut, rng, model, mm, j["depth"], j["width"]))
    await loop.start()
    for _ in range(j.get("cycles", 5000)):
        await loop.step()
    _finish(j, mm, watch, cycles=loop.cycle)


# ---------------------------------------------------------------- spike encoder

class EncoderTB(Component):
    """Drives `start` with a random n_in, then the words (random valid gaps, garbage in the padding bits);
    monitors events, event_count, word_index, busy, stall and finish; checks each encoding's events and
    its length, ENCODE of docs/microarchitecture.md (contract.encode_cycles) + stalls."""

    def __init__(self, dut, rng, mm: Mismatches, n_pe: int, max_inputs: int):
        self.dut, self.rng, self.mm, self.n, self.max_inputs = dut, rng, mm, n_pe, max_inputs
        self.start, self.n_in, self.last_lanes = Port(dut.start, 0), Port(dut.n_in, 0), Port(dut.last_lanes, 0)
        self.valid, self.payload = Port(dut.words__valid, 0), Port(dut.words__payload, 0)
        self.host_word = Port(dut.host_word, 0)  # host words (trusted = 0): the same bits as the payload
        Port(dut.trusted, 0), Port(dut.nonzero, 0), Port(dut.word_nz, 0), Port(dut.word_multi, 0)
        self.state = "idle"
        self.gap_cycles = 0
        self.runs = self.events_total = self.stalls_total = 0

    def new_job(self):
        rng, n = self.rng, self.n
        n_in = int(rng.choice([1, n, n + 1, self.max_inputs, int(rng.integers(1, self.max_inputs + 1))]))
        n_in = min(n_in, self.max_inputs)
        density = float(rng.choice([0.0, 1.0, 0.05, 0.5, rng.random()]))
        bits = (rng.random(n_in) < density).astype(int)
        words_count = -(-n_in // n)
        words = []
        for w in range(words_count):
            word = sum(int(b) << i for i, b in enumerate(bits[w * n:(w + 1) * n]))
            if (w + 1) * n > n_in and rng.random() < 0.5:  # garbage past n_in
                word |= int(rng.integers(0, 1 << n)) & ~((1 << (n_in - w * n)) - 1)
            words.append(word)
        self.expected = [i for i in range(n_in) if bits[i]]
        self.words, self.wi, self.got, self.cycles, self.stalls = words, 0, [], 0, 0
        self.gap = float(rng.choice([0.0, 0.0, 0.3, 0.7]))
        self.job_n_in = n_in

    def drive(self):
        if self.state == "idle":
            if self.gap_cycles > 0:
                self.gap_cycles -= 1
                self.start.set(0)
                self.valid.set(0)
                return
            self.new_job()
            self.n_in.set(self.job_n_in)  # valid from the cycle before start
            self.last_lanes.set(last_word_lanes_value(self.job_n_in, self.n))
            self.state = "armed"
            self.valid.set(0)
            return
        if self.state == "armed":
            self.start.set(1)
            self.state = "starting"
        else:
            self.start.set(0)
        if self.wi < len(self.words) and self.state != "starting" and not (self.gap and self.rng.random() < self.gap):
            self.valid.set(1)
            self.payload.set(self.words[self.wi])
            self.host_word.set(self.words[self.wi])
        else:
            self.valid.set(0)
            # a word shown early (while the encoder is not ready yet) is allowed: show one sometimes
            if self.state == "starting" and self.words and self.rng.random() < 0.5:
                self.payload.set(self.words[0])
                self.host_word.set(self.words[0])

    def sample(self):
        d, mm = self.dut, self.mm
        where = lambda: f"encoding {self.runs} (n_in {self.job_n_in}, {len(self.expected)} events)"  # noqa: E731
        if self.state == "starting":
            self.state = "running"
            return
        if self.state != "running":
            return
        self.cycles += 1
        ready, valid = int(d.words__ready.value), self.valid.last
        mm.equal(int(d.stall.value), int(ready and not valid), lambda: f"{where()}: stall in cycle {self.cycles}")
        mm.equal(int(d.busy.value), 1, lambda: f"{where()}: busy in cycle {self.cycles}")
        if ready:
            mm.equal(int(d.word_index.value), self.wi, lambda: f"{where()}: word_index while loading word {self.wi}")
            if valid:
                self.wi += 1
            else:
                self.stalls += 1
        if int(d.event_valid.value):
            mm.equal(int(d.event_addr.value), len(self.got), lambda: f"{where()}: event_addr at event {len(self.got)}")
            self.got.append(int(d.event_index.value))
        if int(d.finish.value):
            mm.equal(self.got, self.expected, lambda: f"{where()}: event indices")
            mm.equal(self.wi, len(self.words), lambda: f"{where()}: words taken")
            mm.equal(self.cycles, C.encode_cycles(len(self.words), len(self.expected)) + self.stalls,
                     lambda: f"{where()}: cycles (ENCODE of W {len(self.words)}, E {len(self.expected)}: "
                     f"{C.encode_cycles(len(self.words), len(self.expected))} + {self.stalls} stalls)")
            self.runs += 1
            self.events_total += len(self.got)
            self.stalls_total += self.stalls
            self.state = "idle"
            self.gap_cycles = int(self.rng.integers(0, 3))
        elif self.cycles > 4 * (len(self.words) + len(self.expected)) + 100:
            mm.check(False, f"{where()}: no finish after {self.cycles} cycles")
            self.state = "idle"


@cocotb.test()
async def spike_encoder(dut):
    j = job()
    rng = np.random.default_rng(j["seed"])
    mm, watch = Mismatches(), Stopwatch()
    tb = EncoderTB(dut, rng, mm, j["n_pe"], j["max_inputs"])
    loop = CycleLoop(dut)
    loop.add(tb)
    await loop.start()
    for _ in range(j.get("cycles", 5000)):
        await loop.step()
    _finish(j, mm, watch, cycles=loop.cycle, encodings=tb.runs, events=tb.events_total, stalls=tb.stalls_total)
