"""What every block model reports: busy / stall cycles and event counts, per sample and per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Operation kinds that cost energy (sim/energy.py); every other key of `BlockCounts.ops` is informational.
ARITHMETIC = ("additions", "zero_additions", "shifts", "comparisons")
MEMORY = ("reads", "writes")


@dataclass(frozen=True)
class MemorySpec:
    """A memory's geometry: `banks` banks of `depth` words, `word_bits` bits per access over all banks."""

    depth: int
    word_bits: int
    banks: int = 1

    @property
    def bank_bits(self) -> int:
        """Bits read from each bank per access."""
        return self.word_bits // self.banks

    @property
    def bank_bytes(self) -> float:
        """Capacity of one bank in bytes (sizes the per-access energy)."""
        return self.depth * self.bank_bits / 8

    @property
    def capacity_bits(self) -> int:
        return self.depth * self.word_bits


@dataclass(frozen=True)
class BlockCounts:
    """One hardware block over a batch: every array is per sample (axis 0), ops also per layer (axis 1)."""

    name: str
    """The hardware block's name (hw/<name>.py)."""
    kind: str
    """`compute` (datapath arithmetic), `control`, `memory` or `io`."""
    busy: np.ndarray
    """int64 [B]: cycles the block does work."""
    stall: np.ndarray
    """int64 [B]: cycles the block waits for the host while it has work."""
    total: np.ndarray
    """int64 [B]: cycles of the run (busy + stall + idle)."""
    ops: dict[str, np.ndarray] = field(default_factory=dict)
    """Event counts, int64 [B, L]: additions, shifts, comparisons, reads, writes (words), ..."""
    op_bits: dict[str, int] = field(default_factory=dict)
    """Operand width in bits of each arithmetic kind (sizes its energy)."""
    memory: MemorySpec | None = None

    @property
    def idle(self) -> np.ndarray:
        return self.total - self.busy - self.stall

    def per_sample(self, op: str) -> np.ndarray:
        """int64 [B]: an event count summed over layers (0 if the block has no such event)."""
        a = self.ops.get(op)
        return np.zeros(len(self.busy), np.int64) if a is None else a.sum(axis=1)

    def bits(self, op: str) -> np.ndarray:
        """int64 [B]: bits moved by `reads` or `writes` of this memory."""
        return self.per_sample(op) * (self.memory.word_bits if self.memory else 0)

    def mean(self) -> dict:
        """Per-inference means (JSON-friendly): cycles, events, and bits for memories."""
        d = {"kind": self.kind, "busy_cycles": _m(self.busy), "stall_cycles": _m(self.stall),
             "idle_cycles": _m(self.idle)}
        for op, a in self.ops.items():
            d[op] = _m(a.sum(axis=1))
            if op in MEMORY and self.memory:
                d[op.rstrip("s") + "_bits"] = _m(self.bits(op))
        if self.op_bits:
            d["operand_bits"] = dict(self.op_bits)
        if self.memory:
            d["geometry"] = {"depth": self.memory.depth, "word_bits": self.memory.word_bits,
                             "banks": self.memory.banks}
        return d


def _m(a: np.ndarray) -> float:
    return float(np.mean(a)) if len(a) else 0.0


def per_layer(values, batch: int) -> np.ndarray:
    """Broadcast a per-layer vector (same for every sample) to int64 [B, L]."""
    v = np.asarray(values, np.int64)
    return np.broadcast_to(v, (batch, len(v))).copy()
