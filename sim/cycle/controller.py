"""The controller: sequences time steps x layers x neuron groups, and composes the block models.

`phase_cycles` is the **only** place where docs/microarchitecture.md's cycle formula lives ("Exact
cycle cost"); every block's busy cycles are read off its phases, so a changed constant is changed here.

    cycles = 2 + sum_t ( LOAD + O[L-1] + sum_l ( 1 + M[l] + sum_q ( 1 + W[l] + E[l][t][q] + 1 + 5 + WAIT0[l][t][q]
                                          + (G[l] - 1) * max(E[l][t][q] + 5, P) ) + P + 5 ) )
             (+ stalls; P = lanes per threshold unit, 1 when every lane has its own;
              WAIT0 = max(0, P - (1 + W + E + 1 + 5)) for positions q >= 1, 0 for q = 0)

A dense layer has one position q, whose W words are its input vector's; a conv layer runs the same
schedule once per output position, its W words being the receptive field (docs/microarchitecture.md,
"Conv networks"). LOAD is the input map's words for a network whose layer 0 reads a map buffer (0
otherwise), O[L-1] the last layer's output words (G for a dense layer) and M[l] = 1 for a layer that
reads a map buffer (its map reader's first word is fetched in a second SETUP cycle), 0 otherwise.

Group 0 of a layer accumulates during ENCODE, from the events as the encoder finds them, and costs
5 cycles after it (the pipeline drains, FIRE). The five overhead cycles of every later group are split
as the RTL (hw/controller.py) spends them: START (read the membrane and bias words, issue the first
event read), three pipeline-drain cycles at the end of ACC (event index -> registered weight address ->
weight read -> registered codes -> accumulate is four stages deep), FIRE (the threshold pipeline
takes H = u + acc). With shared threshold units a group's FIRE comes at least P cycles after the
previous one's (WAIT cycles at the end of ACC when E + 5 < P). The threshold pipeline writes each group back
P - 1 + 6 cycles after its FIRE, overlapping the next group; after a layer's last group DRAIN waits
those cycles (core.hwconfig.THRESHOLD_LATENCY = 6, which the RTL's ThresholdUnit.LATENCY is too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mintaccel.core.encodings import address_bits
from mintaccel.core.hwconfig import MAP_SETUP, THRESHOLD_LATENCY, HwConfig, check_fits
from mintaccel.core.errors import UserError
from mintaccel.sim.cycle import (bias_memory, event_memory, host_interface, membrane_memory, pe_array, spike_buffer,
                       spike_encoder, threshold_unit, weight_memory)
from mintaccel.sim.cycle.activity import Activity, activity
from mintaccel.sim.cycle.counts import BlockCounts
from mintaccel.sim.cycle.stalls import NoStall, StallModel
from mintaccel.core.model import IntModel
from mintaccel.sim.reference import Trace, check_input, run_batched

# ---- docs/microarchitecture.md, "Exact cycle cost" (one constant per table row) ----
RUN_START = 1          # the cycle `start` is accepted
RUN_DONE = 1           # the DONE cycle
SETUP = 1              # per layer and step
ENCODE_PER_WORD = 1    # per input spike word
ENCODE_PER_EVENT = 1   # per 1 in a word
ENCODE_START = 1       # per layer and step: the encoder starts from the registers SETUP copied
ENCODE_DONE = 1        # per layer and step: the encoder's DONE cycle
GROUP_START = 1        # per group: read membrane / bias word, issue the first event read
ACC_PER_EVENT = 1      # per group and event: N_PE weights -> N_PE accumulators
GROUP_DRAIN = 3        # per group: the last event leaves the event -> address -> weight -> code pipeline
FIRST_GROUP_DRAIN = 4  # group 0: the encoder's last event is registered once more on its way
GROUP_FIRE = 1         # per group: the threshold pipeline takes H = u + acc
LAYER_DRAIN = THRESHOLD_LATENCY  # per layer and step: the threshold pipeline's last write-back (6), plus P - 1
OUTPUT_PER_WORD = 1    # per spike word of the last layer, per step
LOAD_PER_WORD = 1      # per input map word LOADed into a map buffer, per step (conv networks)


@dataclass(frozen=True)
class PhaseCycles:
    """Cycles of every phase, per sample (axis 0), step (axis 1) and layer (axis 2); no stalls."""

    run: int
    """START + DONE cycles, once per inference."""
    setup: np.ndarray
    """int64 [B, T, L]."""
    encode: np.ndarray
    """int64 [B, T, L]: 1 + W[l] + E[l][t] + 1."""
    group_start: np.ndarray
    """int64 [B, T, L]: one per group after the first (group 0 starts with ENCODE)."""
    acc: np.ndarray
    """int64 [B, T, L]: E[l][t] per group after the first (group 0 accumulates during ENCODE)."""
    group_drain: np.ndarray
    """int64 [B, T, L]: FIRST_GROUP_DRAIN for group 0, GROUP_DRAIN per later group."""
    fire: np.ndarray
    """int64 [B, T, L]: one per group."""
    wait: np.ndarray
    """int64 [B, T, L]: max(0, P - (E[l][t][q] + 5)) per group after the first of a position, and
    max(0, P - (ENCODE + 5)) for group 0 of positions q >= 1: the shared threshold units are still busy."""
    drain: np.ndarray
    """int64 [B, T, L]: LAYER_DRAIN + P - 1 per layer and step."""
    output: np.ndarray
    """int64 [B, T]: the last layer's output words per step (G[L-1] for a dense layer)."""
    load: np.ndarray
    """int64 [B, T]: input map words LOADed into a map buffer per step (0 when layer 0 reads the stream)."""

    PHASES = ("setup", "encode", "group_start", "acc", "group_drain", "wait", "fire", "drain")

    @property
    def groups(self) -> np.ndarray:
        """int64 [B, T, L]: the groups' cycles outside ENCODE: 5 for group 0 (ACC drain + FIRE), then
        max(E[l][t] + 5, P) per group (START + ACC + WAIT + FIRE)."""
        return self.group_start + self.acc + self.group_drain + self.wait + self.fire

    @property
    def layer_step(self) -> np.ndarray:
        """int64 [B, T, L]: the cycles of layer l at step t."""
        return self.setup + self.encode + self.groups + self.drain

    @property
    def step(self) -> np.ndarray:
        """int64 [B, T]: the cycles of step t (LOAD, all layers, then OUTPUT)."""
        return self.load + self.layer_step.sum(axis=2) + self.output

    @property
    def total(self) -> np.ndarray:
        """int64 [B]: cycles of one inference without stalls."""
        return self.run + self.step.sum(axis=1)

    def per_phase(self) -> dict[str, np.ndarray]:
        """int64 [B] per phase name, summing to `total`."""
        d = {"run": np.full(self.output.shape[0], self.run, np.int64)}
        for name in self.PHASES:
            d[name] = getattr(self, name).sum(axis=(1, 2))
        d["output"] = self.output.sum(axis=1)
        d["load"] = self.load.sum(axis=1)
        return d


def phase_cycles(events, words, groups, lanes_per_unit: int = 1, *, load_words: int = 0,
                 mapped=None) -> PhaseCycles:
    """docs/microarchitecture.md's cycle cost from the events, W = words [L] (per position), G = groups
    [L] (per position) and P = lanes per threshold unit. `events` is E[l][t][q]: a sequence of L arrays
    int64 [B, T, positions of l], or one array [B, T, L] for layers of one position each (dense);
    `mapped[l]` is 1 for a layer that reads a map buffer (none in a dense build)."""
    if isinstance(events, np.ndarray):
        events = [events[:, :, l:l + 1] for l in range(events.shape[2])]
    per_layer = [np.asarray(e, np.int64) for e in events]
    p = int(lanes_per_unit)
    shape = per_layer[0].shape[:2] + (len(per_layer),)
    f = {name: np.zeros(shape, np.int64) for name in PhaseCycles.PHASES}
    later = GROUP_START + GROUP_DRAIN + GROUP_FIRE  # a later group's cycles besides its events
    for l, e in enumerate(per_layer):
        w, g, n = int(words[l]), int(groups[l]), e.shape[2]
        total = e.sum(axis=2)
        encode = ENCODE_START + ENCODE_PER_WORD * w + ENCODE_PER_EVENT * e + ENCODE_DONE  # per position
        f["setup"][:, :, l] = SETUP + (MAP_SETUP if mapped is not None and mapped[l] else 0)
        f["encode"][:, :, l] = encode.sum(axis=2)
        f["group_start"][:, :, l] = GROUP_START * (g - 1) * n
        f["acc"][:, :, l] = ACC_PER_EVENT * total * (g - 1)
        f["group_drain"][:, :, l] = (FIRST_GROUP_DRAIN + GROUP_DRAIN * (g - 1)) * n
        f["fire"][:, :, l] = GROUP_FIRE * g * n
        wait = (g - 1) * np.maximum(0, p - (later + ACC_PER_EVENT * e)).sum(axis=2)
        first = encode[:, :, 1:] + FIRST_GROUP_DRAIN + GROUP_FIRE  # group 0 of positions 1.. after the last FIRE
        f["wait"][:, :, l] = wait + np.maximum(0, p - first).sum(axis=2)
        f["drain"][:, :, l] = LAYER_DRAIN + p - 1
    out_words = int(groups[-1]) * per_layer[-1].shape[2]
    return PhaseCycles(run=RUN_START + RUN_DONE, output=np.full(shape[:2], OUTPUT_PER_WORD * out_words, np.int64),
                       load=np.full(shape[:2], LOAD_PER_WORD * load_words, np.int64), **f)


def cycles(events, words, groups, lanes_per_unit: int = 1, *, load_words: int = 0, mapped=None) -> np.ndarray:
    """int64 [B]: total cycles of each inference without stalls (the formula of the doc)."""
    return phase_cycles(events, words, groups, lanes_per_unit, load_words=load_words, mapped=mapped).total


@dataclass(frozen=True)
class Stalls:
    input: np.ndarray
    """int64 [B, T]: cycles layer 0's encoder (or LOAD) waited for `spikes_in` words."""
    output: np.ndarray
    """int64 [B, T]: cycles OUTPUT waited for the host to take `spikes_out` words."""

    @property
    def total(self) -> np.ndarray:
        return self.input.sum(axis=1) + self.output.sum(axis=1)


@dataclass(frozen=True)
class CycleResult:
    """A simulated batch: the arithmetic (reference trace), the cycles and every block's counts."""

    activity: Activity
    phases: PhaseCycles
    stalls: Stalls
    blocks: dict[str, BlockCounts]

    @property
    def model(self) -> IntModel:
        return self.activity.model

    @property
    def cfg(self) -> HwConfig:
        return self.activity.cfg

    @property
    def trace(self) -> Trace:
        return self.activity.trace

    @property
    def spikes(self) -> tuple[np.ndarray, ...]:
        """Per layer: uint8 [B, T, n_out], the spikes the accelerator emits (= the reference model's)."""
        return self.activity.trace.spikes

    @property
    def predictions(self) -> np.ndarray:
        return self.activity.trace.predictions

    @property
    def batch(self) -> int:
        return self.activity.batch

    @property
    def cycles(self) -> np.ndarray:
        """int64 [B]: cycles per inference, START to DONE inclusive, stalls included."""
        return self.phases.total + self.stalls.total

    def latency_s(self, clock_hz: float) -> np.ndarray:
        return self.cycles / clock_hz

    @property
    def useful_sops(self) -> np.ndarray:
        """int64 [B]: synaptic operations, sum of E[l][t] * n_out[l]."""
        return self.blocks["pe_array"].per_sample("sops")

    @property
    def lane_ops(self) -> np.ndarray:
        """int64 [B]: PE lane operations including padding lanes, sum of E[l][t] * G[l] * n_pe."""
        return self.blocks["pe_array"].per_sample("lane_ops")


BLOCKS = (host_interface, spike_encoder, event_memory, weight_memory, pe_array, threshold_unit,
          membrane_memory, bias_memory, spike_buffer)


def account(act: Activity, stall_model: StallModel | None = None) -> CycleResult:
    """Cycles and event counts of every block for the spike patterns in `act` (vectorized over the batch)."""
    load = act.layout.load_words
    mapped = [bool(act.cfg.max_map_words) and not v.from_host for v in act.views]
    phases = phase_cycles(act.position_events, act.words, act.groups, act.cfg.lanes_per_unit, load_words=load,
                          mapped=mapped)
    steps = (act.batch, act.timesteps)
    in_words = np.full(steps, load * LOAD_PER_WORD if load else act.words[0] * ENCODE_PER_WORD, np.int64)
    out_words = np.full(steps, act.out_words[-1] * OUTPUT_PER_WORD, np.int64)
    s_in, s_out = (stall_model or NoStall()).stalls(in_words, out_words)
    stalls = Stalls(np.asarray(s_in, np.int64).reshape(steps), np.asarray(s_out, np.int64).reshape(steps))
    if (stalls.input < 0).any() or (stalls.output < 0).any():
        raise ValueError("a stall model returned negative stall cycles")
    total = phases.total + stalls.total
    blocks = {"controller": controller_counts(act, phases, stalls, total)}
    for module in BLOCKS:
        counts = module.account(act, phases, stalls, total)
        if counts is not None:
            blocks[counts.name] = counts
    return CycleResult(act, phases, stalls, blocks)


def controller_counts(act: Activity, phases: PhaseCycles, stalls: Stalls, total: np.ndarray) -> BlockCounts:
    """Busy from START to DONE except stalls. Arithmetic: the weight address `base + j` per ACC cycle and
    the running base `+= fan_in` per group (docs/microarchitecture.md: no multiplier)."""
    cfg = act.cfg
    acc_cycles = (act.events * act.groups).sum(axis=1)  # one address per event and group, group 0's too
    group_count = phases.fire.sum(axis=1) // GROUP_FIRE
    return BlockCounts(
        name="controller", kind="control", busy=total - stalls.total, stall=stalls.total, total=total,
        ops={"additions": acc_cycles + group_count,
             "setups": np.full(act.events.shape[::2], act.timesteps, np.int64),
             "groups": group_count},
        op_bits={"additions": address_bits(cfg.weight_depth)},
    )


def check_n_pe(n_pe) -> None:
    """HwConfig's own range check, before `HwConfig.for_model` divides by n_pe."""
    if isinstance(n_pe, bool) or not isinstance(n_pe, (int, np.integer)) or not 1 <= n_pe <= 64:
        raise UserError(f"hardware config: n_pe must be in 1..64, not {n_pe}")


def simulate(model: IntModel, spikes: np.ndarray, cfg: HwConfig | None = None, *, n_pe: int = 8,
             stall_model: StallModel | None = None, batch_size: int = 2048, progress=None) -> CycleResult:
    """Simulate the accelerator of docs/microarchitecture.md on input spikes uint8 [batch, T, inputs].

    The arithmetic (spikes and membranes of every layer and step) is the reference model's
    (`sim.reference`, the one source of truth); cycles and event counts follow from its spike patterns.
    `cfg` defaults to `HwConfig.for_model(model, n_pe)`; a model that does not fit raises UserError.
    `progress(n)` is called after every chunk of `batch_size` samples.
    """
    if cfg is None:
        check_n_pe(n_pe)
        cfg = HwConfig.for_model(model, n_pe)
    check_fits(model, cfg)
    x = check_input(model, spikes)
    trace = run_batched(model, x, batch_size=batch_size, progress=progress)
    return account(activity(model, cfg, x, trace), stall_model)
