"""Does a build fit the device? The hard resources it needs, from the memory geometry, before any tool runs.

The memories of a build follow from its HwConfig (`hw.generate.memory_map`). Where each one goes is
decided by Yosys's `memory_libmap` pass inside `synth_ice40` / `synth_ecp5`, by cost: every RAM
primitive of the target's library (`Target.rams`) in every width mode, against soft logic at one unit
per bit. `place` repeats that decision (Yosys 0.70, passes/memory/memory_libmap.cc) for the port
structure this accelerator's memories have, so the block-RAM count is the one synthesis will produce;
tests/flows/test_fit.py checks it against real Yosys runs on both targets.

SPRAM: `synth_ice40` (without `-spram`) gives the UP5K's SB_SPRAM256KA (16384 x 16 bits) only to a
memory marked `ram_style = "huge"`, which is the weight memory of an SPRAM build (`HwConfig.weight_spram`,
hw/weight_memory.py: one memory of n_pe x weight_bits bits per word). libmap pads the word to whole
4-bit nibbles (the SPRAM's write-mask granularity) and puts the ceil(depth / 16384) blocks of 16384 words
side by side too, each with its own nibble mask, so it takes ceil(blocks x padded bits / 16) SPRAMs:
4 for a 64-bit word, 2 for a 24-bit one, 1 for 25,472 words of 8 bits (two blocks in one 16-bit row).
`choose_weight_memory` picks block RAM or SPRAM (`--weight-memory`). DSP cells stay 0 (the design has
no multiplier: tests/flows/test_multiplier_free.py). LUTs are left to the tools: an honest LUT count
needs synthesis.

    cfg = choose_weight_memory(cfg, target, "auto")  # block RAM if it fits, else SPRAM if that fits
    est = estimate(cfg, target)      # est.bram, est.spram, est.placements
    check_device(cfg, target)        # UserError: "... needs 60 of the UP5K's 30 block RAMs ..."
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from mintaccel.core.errors import UserError
from mintaccel.core.hwconfig import HwConfig
from mintaccel.flows.targets import TARGETS, RamType, Target

#: `--weight-memory` choices: `auto` (block RAM when the build fits, else SPRAM when that fits), or forced.
WEIGHT_MEMORY_CHOICES = ("auto", "bram", "spram")

#: memory_libmap's weights for the soft logic a mapping adds (FACTOR_MUX, FACTOR_DEMUX, FACTOR_EMU).
MUX_FACTOR, DEMUX_FACTOR, EMU_FACTOR = 0.5, 0.5, 2
#: Cost of one memory bit in soft logic (flip-flops and multiplexers), memory_libmap's `-logic-cost-ram`.
LOGIC_COST_PER_BIT = 1.0


@dataclass(frozen=True)
class MemoryShape:
    """One memory of the build as synthesis sees it after coarse optimisation."""

    name: str
    """Its name in the synthesized netlist (`weights.mem`, `membranes.mem`, ...)."""
    group: str
    """What it holds, for messages: `weights`, `membranes`, `biases`, `events`, `spike buffer`."""
    depth: int
    """Words."""
    width: int
    """Bits per word."""
    sync_reads: int
    """Read ports with a registered output (every one has a read enable or none; none is transparent)."""
    async_reads: int
    """Combinational read ports."""
    huge: bool = False
    """Marked `ram_style = "huge"` (the SPRAM weight memory): only the target's huge RAM takes it."""
    no_rw_check: bool = False
    """Marked `no_rw_check` (hw/sram.py: a read never meets a write of its word): libmap emulates no
    read-during-write behaviour around a block RAM."""


@dataclass(frozen=True)
class Placement:
    """Where memory_libmap puts one memory."""

    memory: MemoryShape
    """The memory."""
    ram: RamType | None
    """The primitive it maps to; None: flip-flops and LUTs."""
    primitives: int
    """How many of them (0 in soft logic)."""
    cost: float
    """memory_libmap's cost of the chosen mapping (soft logic: one per bit)."""
    blocks: int = 1
    """Primitives cascaded in depth (1: none; more: a read multiplexer after them)."""

    @property
    def mapped_to(self) -> str:
        return self.ram.cell if self.ram else "flip-flops and LUTs"


@dataclass(frozen=True)
class FitEstimate:
    """The hard resources a build needs on a target."""

    target: Target
    """The device."""
    placements: tuple[Placement, ...]
    """One per memory of the build."""

    def count(self, kind: str) -> int:
        return sum(p.primitives for p in self.placements if p.ram is not None and p.ram.kind == kind)

    @property
    def bram(self) -> int:
        """Block RAM primitives (SB_RAM40_4K / DP16KD + PDPW16KD)."""
        return self.count("block")

    @property
    def lutram(self) -> int:
        """Distributed RAM primitives (ECP5 TRELLIS_DPR16X4); they use LUTs, which the tools judge."""
        return self.count("distributed")

    @property
    def spram(self) -> int:
        """SPRAM primitives (SB_SPRAM256KA): the weight memory of an SPRAM build."""
        return self.count("huge")

    dsp = 0
    """DSP cells: the accelerator is multiplier-free."""

    def by_group(self, kind: str = "block") -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.placements:
            if p.ram is not None and p.ram.kind == kind:
                out[p.memory.group] = out.get(p.memory.group, 0) + p.primitives
        return out

    def problem(self) -> str | None:
        """What does not fit, by how much (None: it fits)."""
        t = self.target
        part = t.device.split()[-1].rsplit("-", 1)[0]  # without the package: iCE40UP5K, LFE5U-25F
        problems = []
        if self.bram > t.bram_available:
            groups = sorted(self.by_group().items(), key=lambda kv: -kv[1])
            need = f"{groups[0][0]} need {groups[0][1]}" if len(groups) == 1 else \
                f"the memories need {self.bram} ({', '.join(f'{g} {n}' for g, n in groups)})"
            problems.append(f"{need} of the {part}'s {t.bram_available} block RAMs ({t.bram_cells[0]}), "
                            f"{self.bram - t.bram_available} too many")
        huge = [p.memory for p in self.placements if p.memory.huge]
        if huge and t.huge_ram is None:
            problems.append(f"the {part} has no SPRAM for the weights")
        elif self.spram > t.spram_available:
            m, ram = huge[0], t.huge_ram
            problems.append(f"the weights need {self.spram} of the {part}'s {t.spram_available} SPRAMs "
                            f"({ram.cell}, {1 << ram.abits} x {ram.widths[0]} each; {m.depth:,} words of "
                            f"{m.width} bits), {self.spram - t.spram_available} too many")
        return "; ".join(problems) or None

    def as_dict(self) -> dict:
        t = self.target
        return {
            "bram": self.bram, "bram_available": t.bram_available, "lutram": self.lutram,
            "spram": self.spram, "spram_available": t.spram_available, "dsp": self.dsp,
            "fits": self.problem() is None,
            "memories": [{"memory": p.memory.name, "depth": p.memory.depth, "width": p.memory.width,
                          "mapped_to": p.mapped_to, "primitives": p.primitives} for p in self.placements],
            "note": "predicted before synthesis from the memory geometry (flows/fit.py, memory_libmap's cost model)",
        }


def memory_shapes(cfg: HwConfig, target: Target | None = None) -> tuple[MemoryShape, ...]:
    """Every memory of build `cfg`, named as in the synthesized netlist (on `target`: the weight
    memory in the slices `weight_slice_bits` chooses).

    Port structure (hw/): the weight, membrane, bias and event memories have one write port and
    one registered read port with an enable, and `no_rw_check` (hw/sram.py); the spike buffer (hw/spike_buffer.py) has two reads that
    Yosys merges with their output registers and one combinational read (the OUTPUT stream).
    """
    from mintaccel.hw.generate import memory_map
    from mintaccel.hw.weight_memory import SLICE_NAME

    mems = memory_map(cfg)["memories"]
    w = mems["weight_banks"]
    # one memory of all lanes side by side, single port (shared address); huge (SPRAM) if so chosen
    out = [_weight_memory(cfg)]
    cut = weight_slice_bits(cfg, target) if target is not None else 0
    if cut:
        width = out[0].width
        out = [dataclasses.replace(out[0], name=f"weights.{SLICE_NAME}{i}", width=min(cut, width - lo))
               for i, lo in enumerate(range(0, width, cut))]
    out.append(MemoryShape("membranes.mem", "membranes", mems["membranes"]["depth"], mems["membranes"]["width"], 1, 0,
                           no_rw_check=True))
    if mems["biases"]:
        out.append(MemoryShape("biases.mem", "biases", mems["biases"]["depth"], mems["biases"]["width"], 1, 0,
                               no_rw_check=True))
    # an event index only addresses the weight memory (hw/controller.py): with 1 word nothing reads
    # the event memory and Yosys removes it
    ev = mems["events"]
    if w["depth"] > 1:
        out.append(MemoryShape("events.mem", "events", ev["depth"], ev["width"], 1, 0, no_rw_check=True))
    if cfg.max_map_words:  # two map buffers, one transparent registered read each (hw/map_buffers.py)
        mb = mems["map_buffers"]
        out += [MemoryShape(f"map_buffers.buffer{k}", "map buffers", mb["depth"], mb["width"], 1, 0) for k in range(2)]
    else:
        sb = mems["spike_buffer"]
        out.append(MemoryShape("spike_buffer.mem", "spike buffer", sb["depth"], sb["width"], 2, 1))
    return tuple(out)


def _weight_memory(cfg: HwConfig) -> MemoryShape:
    """The weight memory as one memory: `weight_depth` words of all lanes side by side."""
    from mintaccel.hw.generate import memory_map
    from mintaccel.hw.weight_memory import BRAM_NAME, SPRAM_NAME

    w = memory_map(cfg)["memories"]["weight_banks"]
    return MemoryShape(f"weights.{SPRAM_NAME if cfg.weight_spram else BRAM_NAME}", "weights", w["depth"],
                       w["banks"] * w["width"], 1, 0, huge=bool(cfg.weight_spram), no_rw_check=True)


def weight_slice_bits(cfg: HwConfig, target: Target) -> int:
    """Bits per slice of the block-RAM weight memory on `target` (0: one memory).

    One memory packs the lanes side by side into the fewest block RAMs, but when that cascades
    primitives in depth (MNIST 784-128-10 at 32 PEs on the ECP5: 3,264 x 64 bits in 7 x 2 DP16KD of
    512 x 36) the read multiplexer after them is the critical path. On a target with
    `Target.slice_weights` such a memory is cut into slices of the widest block-RAM mode deep enough
    for all its words (4096 x 4: 16 DP16KD, no multiplexer)."""
    one = _weight_memory(cfg)
    if not target.slice_weights or one.huge or place(one, target).blocks == 1:
        return 0
    deep = [w for ram in target.rams if ram.kind == "block"
            for i, w in enumerate(ram.widths) if 1 << (ram.abits - i) >= one.depth]
    cut = max(deep, default=0)  # 0: deeper than any mode, a cascade either way
    return cut if cut < one.width else 0


def netlist_name(name: str) -> str:
    """A synthesized memory name without Amaranth's uniquifying `$<n>` (`biases$150.mem` -> `biases.mem`)."""
    return re.sub(r"\$\d+", "", name)


# ---------------------------------------------------------------- memory_libmap's decision

def _emulation(ram: RamType, mem: MemoryShape) -> tuple[int, int] | None:
    """(emulation score, port replicas) of mapping `mem` to `ram`; None if it cannot.

    A block RAM has no capability for the non-transparent read the RTL asks for, so libmap emulates
    read-first behaviour (3 points per write port) and transparency (3 per read port), plus 1 per read
    port not shared with the write port. Distributed RAM reads asynchronously: a registered read gets
    a soft output register (no points), 1 point per read port. One read port per primitive: more
    read ports replicate the memory. A `no_rw_check` memory (one registered read) scores 3: Yosys 0.70's
    log, "emulation score: 3" where the same memory without it scores 7.
    """
    reads = mem.sync_reads + mem.async_reads
    if ram.async_read:
        return reads, reads
    if mem.async_reads:
        return None
    if mem.no_rw_check:
        return 3 * mem.sync_reads, mem.sync_reads
    return 3 + 4 * mem.sync_reads, mem.sync_reads


def _best_geometry(ram: RamType, mem: MemoryShape, score: int, repl_port: int) -> tuple[float, int, int] | None:
    """(cost, primitives, blocks in depth) of the cheapest width mode of `ram` for `mem` (handle_geom,
    no wide ports)."""
    byte_log2 = len(ram.widths) - 1 if ram.byte == 0 else \
        max([i for i, w in enumerate(ram.widths) if ram.byte >= w], default=0)
    best, best_int = None, 0
    for base in range(len(ram.widths)):
        unit = min(base, ram.write_modes[1], ram.read_modes[1])
        if unit != base and best is not None:
            break
        if base < ram.write_modes[0] and base < byte_log2:
            continue  # the write port cannot be this narrow
        unit_width = ram.widths[unit]
        byte = ram.byte if 0 < ram.byte <= unit_width else unit_width
        swizzle = math.ceil(mem.width / byte) * byte  # one write enable for the whole word
        blocks = (mem.depth - 1) // (1 << (ram.abits - base)) + 1
        repl = math.ceil(blocks * swizzle / unit_width)
        mux = (mem.sync_reads + mem.async_reads) * (blocks - 1) * mem.width
        demux = blocks if blocks != 1 else 0
        cost = ram.cost * repl * repl_port + MUX_FACTOR * mux + DEMUX_FACTOR * demux + EMU_FACTOR * score
        if best is None or cost < best_int:  # libmap keeps the running best as an int
            best, best_int = (cost, repl * repl_port, blocks), int(cost)
    return best


def place(mem: MemoryShape, target: Target) -> Placement:
    """What memory_libmap maps `mem` to on `target`: the cheapest candidate, soft logic on a tie.

    A memory marked huge goes to the huge RAM alone (libmap's forced mapping, same geometry rules: its
    one width mode, blocks side by side); None (soft logic) where the target has none, which `problem`
    refuses."""
    logic = mem.width * mem.depth * LOGIC_COST_PER_BIT
    if mem.huge:
        if target.huge_ram is None:
            return Placement(mem, None, 0, logic)
        cost, prims, blocks = _best_geometry(target.huge_ram, mem, 0, 1)  # forced: the score changes no choice
        return Placement(mem, target.huge_ram, prims, cost, blocks)
    kept: dict[str, tuple[RamType, float, int, int]] = {}
    order: list[str] = []
    for ram in target.rams:
        emu = _emulation(ram, mem)
        geom = emu and _best_geometry(ram, mem, *emu)
        if not geom:
            continue
        if ram.kind not in kept:
            order.append(ram.kind)
        if ram.kind not in kept or geom[0] < kept[ram.kind][1]:  # prune_post_geom: cheapest per kind
            kept[ram.kind] = (ram, *geom)
    choice, best = Placement(mem, None, 0, logic), int(logic)
    for kind in order:
        ram, cost, prims, blocks = kept[kind]
        if cost < best:
            choice, best = Placement(mem, ram, prims, cost, blocks), int(cost)
    return choice


def estimate(cfg: HwConfig, target: Target) -> FitEstimate:
    return FitEstimate(target, tuple(place(m, target) for m in memory_shapes(cfg, target)))


def check_weight_memory(choice: str, target: Target) -> None:
    """UserError in one line for a `--weight-memory` choice `target` cannot build."""
    if choice not in WEIGHT_MEMORY_CHOICES:
        raise UserError(f"--weight-memory must be one of {', '.join(WEIGHT_MEMORY_CHOICES)}, not {choice!r}")
    if choice == "spram" and target.huge_ram is None:
        raise UserError(f"--weight-memory spram: the {target.device} has no SPRAM (block RAM only)")


def choose_weight_memory(cfg: HwConfig, target: Target, choice: str = "auto") -> HwConfig:
    """`cfg` with its weight memory chosen for `target` (`--weight-memory`).

    `auto`: block RAM when the whole build fits it (the bitstream then holds the weights), else SPRAM
    when the target has SPRAM and the build fits that way (the host loads the weights at run time),
    else block RAM again, which `check_device` refuses saying both. `bram` / `spram` force the choice;
    `spram` on a target without SPRAM is a UserError."""
    check_weight_memory(choice, target)
    bram, spram = dataclasses.replace(cfg, weight_spram=0), dataclasses.replace(cfg, weight_spram=1)
    if choice != "auto":
        return spram if choice == "spram" else bram
    if target.huge_ram is None or estimate(bram, target).problem() is None:
        return bram
    return spram if estimate(spram, target).problem() is None else bram


def _resources(est: FitEstimate) -> str:
    t = est.target
    return f"{est.bram} of {t.bram_available} block RAMs" + (f", {est.spram} of {t.spram_available} SPRAMs" if est.spram else "")


def check_device(cfg: HwConfig, target: Target) -> FitEstimate:
    """The estimate for `cfg` on `target`; UserError in one line if it does not fit (and where it would:
    with the other weight memory on this target, on the other targets with their `auto` choice)."""
    est = estimate(cfg, target)
    problem = est.problem()
    if problem:
        hints = []
        if not cfg.weight_spram and target.huge_ram is not None:
            other = estimate(dataclasses.replace(cfg, weight_spram=1), target)
            hints.append(f"with the weights in SPRAM it fits ({_resources(other)})"
                         if other.problem() is None else f"with the weights in SPRAM: {other.problem()}")
        others = [f"{t.name} ({_resources(e)})" for t in TARGETS.values() if t is not target
                  for e in [estimate(choose_weight_memory(cfg, t), t)] if e.problem() is None]
        if others:
            hints.append(f"it fits {', '.join(others)}")
        raise UserError(f"the build does not fit the {target.device}: {'; '.join([problem, *hints])}")
    return est
