"""Cycle-accurate simulator of docs/microarchitecture.md, with operation, memory and energy accounting.

One module per hardware block (host_interface, spike_encoder, event_memory, weight_memory, pe_array,
threshold_unit, membrane_memory, bias_memory, spike_buffer), each counting its busy cycles and events
from the spike patterns of a whole batch at once; `controller` holds the cycle formula and composes
them. The arithmetic is the reference model's (sim/reference.py): the simulator never reimplements it.

    result = simulate(model, spikes, n_pe=8)     # CycleResult
    result.cycles, result.spikes, result.blocks["weight_memory"].ops["reads"]
    summary(model, spikes, labels, 48.0)         # flat dict of figures (energy as estimates)
"""

from mintaccel.sim.cycle.controller import CycleResult, PhaseCycles, cycles, phase_cycles, simulate
from mintaccel.sim.cycle.stalls import FixedGap, NoStall, StallModel
from mintaccel.sim.cycle.summary import summary

__all__ = ["CycleResult", "FixedGap", "NoStall", "PhaseCycles", "StallModel", "cycles", "phase_cycles",
           "simulate", "summary"]
