"""Energy per inference, an ESTIMATE: event counts of the cycle simulator times a per-event table.

There is no open power model for iCE40 / ECP5, so the figures come from the 45 nm per-operation
energies SNN papers use (Horowitz, "Computing's energy problem", ISSCC 2014), scaled to the operand
widths and memory sizes of the build as docs/energy.md documents. Every printed figure derived from
here is labelled an estimate.

    table = load_table("my-table.json")     # or DEFAULT (overridable entry by entry)
    est = estimate(result, table)           # result: sim.cycle.simulate(...)
    est.compute_pj, est.total_pj, est.vanilla_compute_pj, est.compute_ratio
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mintaccel.core.files import read_json_object
from mintaccel.core.errors import UserError

#: The default table (pJ, 45 nm). Tables map an operand width in bits (or a memory size in bytes) to pJ.
DEFAULT_TABLE: dict = {
    "int_add_pj": {"8": 0.03, "16": 0.05, "32": 0.1},
    "int_mult_pj": {"8": 0.2, "32": 3.1},
    "fp32_add_pj": 0.9,
    "fp32_mult_pj": 3.7,
    "sram_read_64bit_pj": {"8192": 10.0, "32768": 20.0, "1048576": 100.0},
    "sram_write_factor": 1.0,
    "shift_factor": 1.0,
    "comparison_factor": 1.0,
    "zero_add_factor": 1.0,
    "rescale_ratio_bits": 8,
}

SOURCES = {
    "int_add_pj": "Horowitz ISSCC 2014 (45 nm): 8-bit 0.03 pJ, 32-bit 0.1 pJ; 16-bit 0.05 pJ as SNN papers quote it",
    "int_mult_pj": "Horowitz ISSCC 2014 (45 nm): 8-bit 0.2 pJ, 32-bit 3.1 pJ",
    "fp32_add_pj": "Horowitz ISSCC 2014 (45 nm)",
    "fp32_mult_pj": "Horowitz ISSCC 2014 (45 nm)",
    "sram_read_64bit_pj": "Horowitz ISSCC 2014 (45 nm): 64-bit read from an 8 KB / 32 KB / 1 MB SRAM",
    "sram_write_factor": "assumption: a write costs a read",
    "shift_factor": "assumption: a variable shift costs an add of the same width",
    "comparison_factor": "assumption: a comparison is a subtraction",
    "zero_add_factor": "assumption: the RTL adds a zero weight like any other (no clock gating)",
    "rescale_ratio_bits": "assumption: vanilla uniform quantization rescales by an 8-bit fixed-point ratio",
}

#: Exponent used outside a one-point table: energy ~ width (adder), width^2 (multiplier), sqrt(size) (SRAM).
_EXPONENT = {"int_add_pj": 1.0, "int_mult_pj": 2.0, "sram_read_64bit_pj": 0.5}
_TABLES = ("int_add_pj", "int_mult_pj", "sram_read_64bit_pj")
_FACTORS = ("sram_write_factor", "shift_factor", "comparison_factor", "zero_add_factor")
_SCALARS = ("fp32_add_pj", "fp32_mult_pj")

#: Which blocks count as datapath computation ("compute-only" energy).
COMPUTE_BLOCKS = ("pe_array", "threshold_unit")


@dataclass(frozen=True)
class EnergyTable:
    entries: dict = field(default_factory=lambda: json.loads(json.dumps(DEFAULT_TABLE)))
    source: str = "default (45 nm, Horowitz ISSCC 2014)"

    def _points(self, key: str) -> list[tuple[float, float]]:
        return sorted((float(k), float(v)) for k, v in self.entries[key].items())

    def _interp(self, key: str, x: float) -> float:
        """Log-log interpolation through the table's points; outside them, the nearest segment's slope."""
        pts = self._points(key)
        if x <= 0:
            return 0.0
        if len(pts) == 1:
            (x0, y0), = pts
            return y0 * (x / x0) ** _EXPONENT[key]
        i = 0
        while i < len(pts) - 2 and x > pts[i + 1][0]:
            i += 1
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        slope = math.log(y1 / y0) / math.log(x1 / x0)
        return y0 * (x / x0) ** slope

    def add(self, bits: float) -> float:
        """pJ of one integer addition of `bits`-bit operands."""
        return self._interp("int_add_pj", bits)

    def mult(self, a_bits: float, b_bits: float | None = None) -> float:
        """pJ of one a x b integer multiplication (as a square multiplier of sqrt(a*b) bits: same array)."""
        b_bits = a_bits if b_bits is None else b_bits
        return self._interp("int_mult_pj", math.sqrt(a_bits * b_bits))

    def sram(self, bank_bytes: float, bits: float, write: bool = False) -> float:
        """pJ of reading (writing) `bits` bits from one SRAM bank of `bank_bytes` bytes."""
        e = self._interp("sram_read_64bit_pj", bank_bytes) * bits / 64
        return e * (self.entries["sram_write_factor"] if write else 1.0)

    def op(self, kind: str, bits: int) -> float:
        """pJ of one arithmetic event of `sim.cycle.counts.ARITHMETIC` kind."""
        e = self.add(bits)
        if kind == "additions":
            return e
        if kind == "zero_additions":
            return e * self.entries["zero_add_factor"]
        if kind == "shifts":
            return e * self.entries["shift_factor"]
        if kind == "comparisons":
            return e * self.entries["comparison_factor"]
        raise KeyError(kind)

    def memory_access(self, mem, write: bool) -> float:
        """pJ of one word access of a `sim.cycle.counts.MemorySpec` (every bank is accessed)."""
        return mem.banks * self.sram(mem.bank_bytes, mem.bank_bits, write)

    def to_json(self) -> dict:
        return {"source": self.source, "entries": self.entries, "sources": SOURCES}


DEFAULT = EnergyTable()


def load_table(path) -> EnergyTable:
    """DEFAULT with the entries of a JSON file overriding it (keys starting with `_` are comments).

    Any defect raises UserError in one line naming the file and the entry.
    """
    path = Path(path)
    where = f"energy table {path}"
    data = read_json_object(path, where)
    entries = json.loads(json.dumps(DEFAULT_TABLE))
    for key, value in data.items():
        if key.startswith("_"):
            continue
        if key not in DEFAULT_TABLE:
            raise UserError(f"{where}: unknown entry '{key}' (known: {', '.join(DEFAULT_TABLE)})")
        entries[key] = _check(where, key, value)
    return EnergyTable(entries, str(path))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(where: str, key: str, value):
    if key in _TABLES:
        unit = "bytes" if key.startswith("sram") else "bits"
        if not isinstance(value, dict) or not value:
            raise UserError(f"{where}: '{key}' must be a non-empty object of {unit} -> pJ, e.g. {{\"8\": 0.03}}")
        out = {}
        for k, v in value.items():
            try:
                size = int(k)
            except ValueError:
                size = 0
            if size <= 0:
                raise UserError(f"{where}: '{key}' key {k!r} must be a positive integer ({unit})")
            if not _number(v) or v <= 0:
                raise UserError(f"{where}: '{key}'[{k!r}] must be a positive number of pJ, not {v!r}")
            out[str(size)] = float(v)
        return out
    if key == "rescale_ratio_bits":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 32:
            raise UserError(f"{where}: 'rescale_ratio_bits' must be an integer in 1..32, not {value!r}")
        return value
    if not _number(value) or value < 0 or (key in _SCALARS and value == 0):
        kind = "a positive number of pJ" if key in _SCALARS else "a number >= 0"
        raise UserError(f"{where}: '{key}' must be {kind}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference (pJ, means over the batch) with its breakdown; all figures are estimates."""

    table: EnergyTable
    blocks: dict
    """block name -> {"kind", "pj", "events": {event kind: pJ}} per inference."""
    per_layer: list
    """Per layer: {"compute_pj", "control_pj", "memory_pj"} per inference."""
    compute: np.ndarray
    """pJ [B]: datapath arithmetic (PE array + threshold unit)."""
    control: np.ndarray
    """pJ [B]: address and index arithmetic (controller, spike encoder)."""
    memory: np.ndarray
    """pJ [B]: reads and writes of every on-chip memory."""
    sops: np.ndarray
    """[B]: useful synaptic operations."""
    rescale_multiplies: np.ndarray
    """[B]: the multiplies vanilla uniform quantization adds (one per membrane update)."""
    multiply_pj: float
    """pJ of one rescaling multiply (accumulator x ratio)."""

    @property
    def compute_pj(self) -> float:
        return float(self.compute.mean())

    @property
    def total(self) -> np.ndarray:
        return self.compute + self.control + self.memory

    @property
    def total_pj(self) -> float:
        return float(self.total.mean())

    @property
    def vanilla_compute_pj(self) -> float:
        return float((self.compute + self.rescale_multiplies * self.multiply_pj).mean())

    @property
    def vanilla_total_pj(self) -> float:
        return float((self.total + self.rescale_multiplies * self.multiply_pj).mean())

    @property
    def compute_ratio(self) -> float:
        """MINT / vanilla computation energy (1 - this is MINT's saving)."""
        return self.compute_pj / self.vanilla_compute_pj if self.vanilla_compute_pj else 1.0

    @property
    def per_sop_rescale_compute_ratio(self) -> float:
        """MINT / vanilla computation energy if vanilla paid its rescaling multiply on every synaptic
        operation instead of once per membrane update (an upper bound on the saving, for context)."""
        vanilla = float((self.compute + self.sops * self.multiply_pj).mean())
        return self.compute_pj / vanilla if vanilla else 1.0

    @property
    def total_ratio(self) -> float:
        return self.total_pj / self.vanilla_total_pj if self.vanilla_total_pj else 1.0

    def per_sop(self, pj: float) -> float:
        s = float(self.sops.mean())
        return pj / s if s else float("nan")

    def to_json(self) -> dict:
        return {
            "estimate": True,
            "unit": "pJ per inference (mean over the batch)",
            "compute_pj": self.compute_pj,
            "control_pj": float(self.control.mean()),
            "memory_pj": float(self.memory.mean()),
            "total_pj": self.total_pj,
            "compute_per_sop_pj": self.per_sop(self.compute_pj),
            "total_per_sop_pj": self.per_sop(self.total_pj),
            "blocks": self.blocks,
            "per_layer": self.per_layer,
            "mint_vs_vanilla": {
                "rescale_multiplies": float(self.rescale_multiplies.mean()),
                "multiply_pj": self.multiply_pj,
                "vanilla_compute_pj": self.vanilla_compute_pj,
                "vanilla_total_pj": self.vanilla_total_pj,
                "compute_ratio": self.compute_ratio,
                "total_ratio": self.total_ratio,
                "compute_saving": 1 - self.compute_ratio,
                "total_saving": 1 - self.total_ratio,
                "per_sop_rescale_compute_ratio": self.per_sop_rescale_compute_ratio,
            },
            "table": self.table.to_json(),
        }


def estimate(result, table: EnergyTable | None = None) -> EnergyEstimate:
    """Energy of a `sim.cycle.CycleResult` from its event counts (per sample, then averaged)."""
    from mintaccel.sim.cycle.counts import ARITHMETIC

    table = table or DEFAULT
    b, n_layers = result.batch, result.activity.n_layers
    sums = {k: np.zeros((b, n_layers)) for k in ("compute", "control", "memory")}
    blocks = {}
    for name, counts in result.blocks.items():
        events = {}
        layer_pj = np.zeros((b, n_layers))
        for kind, n in counts.ops.items():
            if kind in ARITHMETIC:
                e = table.op(kind, counts.op_bits[kind])
            elif kind in ("reads", "writes") and counts.memory is not None:
                e = table.memory_access(counts.memory, write=kind == "writes")
            else:
                continue
            pj = n * e
            layer_pj += pj
            events[kind] = {"count": float(n.sum(axis=1).mean()), "pj_each": e, "pj": float(pj.sum(axis=1).mean())}
        if not events:
            continue
        group = "compute" if name in COMPUTE_BLOCKS else "memory" if counts.memory is not None else "control"
        sums[group] += layer_pj
        blocks[name] = {"kind": group, "pj": float(layer_pj.sum(axis=1).mean()), "events": events}
    per_layer = [{f"{k}_pj": float(v[:, l].mean()) for k, v in sums.items()} for l in range(n_layers)]
    updates = result.blocks["threshold_unit"].per_sample("updates")
    mult = table.mult(result.cfg.accumulator_bits, table.entries["rescale_ratio_bits"])
    return EnergyEstimate(table, blocks, per_layer, sums["compute"].sum(axis=1), sums["control"].sum(axis=1),
                          sums["memory"].sum(axis=1), result.useful_sops, updates, mult)
