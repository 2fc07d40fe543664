"""docs/microarchitecture.md's cycle contract, as the benches hold the RTL to it: one constant per row of
"Exact cycle cost" and "Threshold pipeline". The threshold pipeline's depth is the hardware parameter
the doc names (`core.hwconfig.THRESHOLD_LATENCY`, which is `ThresholdUnit.LATENCY`: a group is written
back that many cycles plus P - 1 after its FIRE, and DRAIN is as long; P is the build's lanes per
threshold unit, and a group lasts at least P cycles); everything else is the doc's number.

The accelerator bench also checks that its schedule built from these constants totals the cycle-accurate
simulator's cycles, and tests/cocotb/test_contract.py compares them with sim/cycle's constants, so a
stale number here fails loudly, never silently."""

from mintaccel.core import hwconfig

RUN_START = 1          # the cycle `start` is accepted
SETUP = 1              # per layer and step
ENCODE_PER_WORD = 1    # per input spike word
ENCODE_PER_EVENT = 1   # per 1 in a word
ENCODE_START = 1       # per layer and step: the encoder starts the cycle after SETUP (accelerator only)
ENCODE_DONE = 1        # the encoder's DONE cycle, per layer and step
GROUP_START = 1        # per group
ACC_PER_EVENT = 1      # per group and event
ACC_DRAIN = 3          # per group: the event -> address -> weight -> code pipeline empties
FIRST_GROUP_DRAIN = 4  # group 0 (it accumulates during ENCODE): the encoder's events are registered once more
FIRE = 1               # per group: the threshold pipeline takes H = u + acc
THRESHOLD_LATENCY = hwconfig.THRESHOLD_LATENCY  # valid_in -> valid_out of one threshold unit
WRITEBACK = THRESHOLD_LATENCY  # a group's membrane / spike / probe write-back, cycles after its FIRE (+ P - 1)
DRAIN = THRESHOLD_LATENCY      # per layer and step, after the last group's FIRE (+ P - 1)
OUTPUT_PER_WORD = 1    # per spike word of the last layer, per step
RUN_DONE = 1           # the DONE cycle
LOAD_PER_WORD = 1      # per input map word LOADed into map buffer 0, per step (a conv network)
MAP_SETUP = hwconfig.MAP_SETUP  # the second SETUP cycle of a layer that reads a map buffer


def encode_cycles(words: int, events: int) -> int:
    return ENCODE_PER_WORD * words + ENCODE_PER_EVENT * events + ENCODE_DONE


def group_cycles(events: int, lanes_per_unit: int = 1) -> int:
    """START + ACC (+ WAIT) + FIRE of one group: the FIRE is its last cycle, at least P cycles after the
    previous group's."""
    return max(GROUP_START + ACC_PER_EVENT * events + ACC_DRAIN + FIRE, lanes_per_unit)


def first_group_cycles() -> int:
    """Group 0 after ENCODE's DONE cycle (it accumulates during ENCODE): the pipeline drains, FIRE."""
    return FIRST_GROUP_DRAIN + FIRE


def writeback_delay(lanes_per_unit: int = 1) -> int:
    """Cycles from a group's FIRE to its write-back, which is also a layer's DRAIN."""
    return WRITEBACK + lanes_per_unit - 1
