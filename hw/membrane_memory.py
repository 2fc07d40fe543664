"""Membrane SRAM: every neuron's membrane at the build's membrane width, n_pe lanes per word.

The same packed memory holds the biases (`bias_bits` lanes) when a build supports them.
"""

from __future__ import annotations

from mintaccel.hw.sram import Sram


class MembraneMemory(Sram):
    def __init__(self, n_pe: int, lane_bits: int, depth: int, init=None):
        if lane_bits < 1 or n_pe < 1 or depth < 1:
            raise ValueError("n_pe, lane_bits and depth must be positive")
        super().__init__(n_pe * lane_bits, depth, init)
