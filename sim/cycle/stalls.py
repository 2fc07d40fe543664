"""Host stall models (docs/microarchitecture.md, "Stalls").

A stall is one extra cycle in which layer 0's encoder waits for a `spikes_in` word (`valid` low) or
OUTPUT waits for the host (`ready` low). The simulator assumes a host that never stalls unless it is
given a model: any object with `stalls(input_words, output_words) -> (input_stalls, output_stalls)`,
where the arguments are int64 [B, T] (words transferred per sample and step) and the results int64
[B, T] (stall cycles per sample and step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class StallModel(Protocol):
    def stalls(self, input_words: np.ndarray, output_words: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class NoStall:
    """A host that always has the next input word ready and always takes an output word at once."""

    def stalls(self, input_words, output_words):
        return np.zeros_like(input_words), np.zeros_like(output_words)


@dataclass(frozen=True)
class FixedGap:
    """A host that leaves `input_gap` idle cycles before each input word and `output_gap` before
    accepting each output word (e.g. a UART-fed or clock-crossing host)."""

    input_gap: int = 0
    output_gap: int = 0

    def __post_init__(self):
        if self.input_gap < 0 or self.output_gap < 0:
            raise ValueError("stall gaps must be >= 0")

    def stalls(self, input_words, output_words):
        return input_words * self.input_gap, output_words * self.output_gap
