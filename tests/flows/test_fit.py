"""flows/fit.py: the block RAMs a build needs, predicted before any tool runs, equal to what Yosys maps.

The oracle is Yosys itself: `synth_ice40 -dsp` / `synth_ecp5` of the real build, run up to `map_ffram`
(memories are mapped by then, about a second per run), and the session's full flows (test_reports.py,
test_slow.py compare their totals too). Random builds come from HwConfig.for_model on seeded random
networks: the builds `synth` makes.
"""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.core.hwconfig import HwConfig
from mintaccel.core.model import IntModel, Leak, WeightFormat
from mintaccel.flows import fit, yosys
from mintaccel.flows.targets import ECP5_25F, ICE40_UP5K, TARGETS
from mintaccel.core.errors import UserError
from tests.conftest import random_layer, random_model
from tests.flows.common import small_config


def mnist_model(seed: int = 0) -> IntModel:
    """A 784-128-10 network with 2-bit weights and membranes and random weights (no training needed)."""
    rng = np.random.default_rng(seed)
    fmt = WeightFormat("uniform", 2)
    return IntModel((random_layer(rng, 784, 128, fmt, 2, leak=Leak("none")),
                     random_layer(rng, 128, 10, fmt, 2, leak=Leak("none"))), 8)


def random_build(seed: int) -> tuple[HwConfig, IntModel]:
    """A build as `synth` makes it (HwConfig.for_model) for a seeded random network of random size."""
    rng = np.random.default_rng(seed)
    sizes = tuple(int(n) for n in rng.integers(2, 400, size=int(rng.integers(2, 4))))
    model = random_model(seed, sizes=sizes)
    return HwConfig.for_model(model, n_pe=int(rng.choice([1, 2, 4, 8, 16]))), model


def yosys_memories(cfg, model, target, folder) -> dict[str, int]:
    """memory -> RAM primitives Yosys instantiates for it (the real synthesis script, stopped once
    memories are mapped)."""
    from mintaccel.hw.top import Accelerator
    yosys.write_rtlil(Accelerator(cfg, model, weight_slice_bits=fit.weight_slice_bits(cfg, target)),
                      "mintaccel_top", folder / "core.il")
    yosys.run_yosys(folder, "mem", yosys.synth_script(target, "core.il", "mintaccel_top", "mem_stat.json",
                                                      netlist="mem_netlist.json", until="map_ffram"))
    cells = yosys.ram_cells(yosys.load_json(folder / "mem_netlist.json"), "mintaccel_top", target)
    return {fit.netlist_name(name): len(prims) for name, prims in cells.items()}


def predicted(cfg, target) -> dict[str, int]:
    return {p.memory.name: p.primitives for p in fit.estimate(cfg, target).placements if p.primitives}


def assert_matches_yosys(cfg, model, target, folder):
    assert predicted(cfg, target) == yosys_memories(cfg, model, target, folder)


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS)
def test_shipped_build_matches_yosys(flows_dir, shipped_model, target):
    cfg = HwConfig.for_model(shipped_model)
    assert_matches_yosys(cfg, shipped_model, target, flows_dir / f"fit-shipped-{target.name}")
    # docs/flows.md's table: the 1280 x 16 weight memory in 5 EBRs (256 x 16) + membranes + events on
    # iCE40; 2 DP16KD on ECP5 (the membranes and events in LUT RAM)
    assert fit.estimate(cfg, target).bram == {"ice40-up5k": 7, "ecp5-25f": 2}[target.name]


@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS)
def test_mnist_build_matches_yosys(flows_dir, target):
    model = mnist_model()
    assert_matches_yosys(HwConfig.for_model(model), model, target, flows_dir / f"fit-mnist-{target.name}")


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS)
def test_random_builds_match_yosys(flows_dir, target, seed):
    cfg, model = random_build(seed)
    assert_matches_yosys(cfg, None, target, flows_dir / f"fit-random{seed}-{target.name}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20, 32))
@pytest.mark.parametrize("target", TARGETS.values(), ids=TARGETS)
def test_more_random_builds_match_yosys(flows_dir, target, seed):
    cfg, _ = random_build(seed)
    assert_matches_yosys(cfg, None, target, flows_dir / f"fit-random{seed}-{target.name}")


def test_contents_do_not_change_the_mapping(flows_dir):
    """The check runs before elaboration, on the geometry alone: the preloaded weights change nothing."""
    model = random_model(5, sizes=(300, 40, 10))
    cfg = HwConfig.for_model(model, n_pe=4)
    with_model = yosys_memories(cfg, model, ICE40_UP5K, flows_dir / "fit-contents-model")
    empty = yosys_memories(cfg, None, ICE40_UP5K, flows_dir / "fit-contents-empty")
    assert with_model == empty == predicted(cfg, ICE40_UP5K)


def test_small_build_in_the_full_flows(small_ice40, small_ecp5):
    est = fit.estimate(small_config(), ICE40_UP5K)
    assert small_ice40["fit"]["bram"] == est.bram == small_ice40["synthesis"]["bram"] > 0
    assert {fit.netlist_name(m["memory"]): m["primitives"] for m in small_ice40["memories"] if m["primitives"]} \
        == predicted(small_config(), ICE40_UP5K)
    ecp5 = fit.estimate(small_config(), ECP5_25F)
    assert (ecp5.bram, ecp5.lutram) == (small_ecp5["bram"], small_ecp5["lutram"])


@pytest.mark.parametrize("n_pe, cut, weight_brams", [(32, 4, 16), (64, 0, 15)])
def test_ecp5_weight_memory_slices_instead_of_cascading(flows_dir, shipped_model, n_pe, cut, weight_brams):
    """MNIST at 32 PEs: one 3,264 x 64 memory would take 7 x 2 DP16KD of 512 x 36 behind a 7-way read
    multiplexer; 4-bit slices take one 4096 x 4 DP16KD each. At 64 PEs (1,696 words) the 2048 x 9 mode
    already holds every word: one memory. The iCE40 keeps its cascade (fewer block RAMs)."""
    model = mnist_model()
    cfg = HwConfig.for_model(model, n_pe)
    assert fit.weight_slice_bits(cfg, ECP5_25F) == cut
    weights = [p for p in fit.estimate(cfg, ECP5_25F).placements if p.memory.group == "weights"]
    assert sum(p.primitives for p in weights) == weight_brams and all(p.blocks == 1 for p in weights)
    assert len(weights) == (64 // cut if cut else 1)
    assert fit.weight_slice_bits(HwConfig.for_model(shipped_model), ICE40_UP5K) == 0  # 5 EBRs deep
    assert_matches_yosys(cfg, None, ECP5_25F, flows_dir / f"fit-slices{n_pe}")


def test_mnist_refusal_says_what_and_by_how_much():
    cfg = HwConfig.for_model(mnist_model())
    with pytest.raises(UserError) as e:
        fit.check_device(cfg, ICE40_UP5K)
    msg = str(e.value)
    # 12,800 16-bit words: 50 EBRs in 256x16 mode; 784 10-bit events: 3 in 1024x4
    assert "need 54 (weights 50, events 3, membranes 1) of the iCE40UP5K's 30 block RAMs" in msg
    assert "24 too many" in msg and "; it fits ecp5-25f (17 of 56 block RAMs)" in msg and "\n" not in msg
    assert fit.check_device(cfg, ECP5_25F).bram == 17  # 16 one-bit slices of 12,800 words, no cascade


def test_hard_resources_besides_block_ram():
    est = fit.estimate(HwConfig.for_model(mnist_model()), ICE40_UP5K)
    assert est.spram == 0 and est.dsp == 0  # no memory asks for SPRAM; multiplier-free design
    d = est.as_dict()
    assert d["fits"] is False and d["bram"] == 54 and d["bram_available"] == 30


# ---------------------------------------------------------------- SPRAM

def spram_build(n_pe: int) -> HwConfig:
    return HwConfig.for_model(mnist_model(), n_pe, weight_spram=1)


@pytest.mark.parametrize("n_pe, spram", [(32, 4), (12, 2), (4, 1), (2, 1)],
                         ids=["n32-64bit", "n12-24bit-padded", "n4-2-blocks-in-one-row", "n2-4-blocks-in-one-row"])
def test_spram_build_matches_yosys(flows_dir, n_pe, spram):
    """MNIST 784-128-10 with the weights in SPRAM: 32 lanes x 2 bits = 4 SPRAMs side by side; 24-bit words
    take 2 (padded); n_pe 4 needs 25,472 8-bit words: libmap puts both 16k-word blocks in one 16-bit row
    (nibble write masks), n_pe 2 four 4-bit blocks. The rest stays in block RAM."""
    cfg = spram_build(n_pe)
    assert fit.estimate(cfg, ICE40_UP5K).spram == spram
    assert_matches_yosys(cfg, None, ICE40_UP5K, flows_dir / f"fit-spram{n_pe}")


def test_auto_choice_is_block_ram_when_it_fits_else_spram():
    digits = HwConfig.for_model(random_model(0, sizes=(64, 64, 10)))
    assert fit.choose_weight_memory(digits, ICE40_UP5K).weight_spram == 0
    mnist = HwConfig.for_model(mnist_model())
    assert fit.choose_weight_memory(mnist, ICE40_UP5K).weight_spram == 1
    assert fit.choose_weight_memory(mnist, ECP5_25F).weight_spram == 0  # no SPRAM there
    assert fit.choose_weight_memory(mnist, ICE40_UP5K, "bram").weight_spram == 0
    assert fit.choose_weight_memory(digits, ICE40_UP5K, "spram").weight_spram == 1
    est = fit.check_device(fit.choose_weight_memory(mnist, ICE40_UP5K), ICE40_UP5K)
    assert (est.bram, est.spram) == (4, 1) and est.as_dict()["spram"] == 1


def test_spram_on_a_device_without_it_is_refused():
    with pytest.raises(UserError) as e:
        fit.choose_weight_memory(HwConfig.for_model(mnist_model()), ECP5_25F, "spram")
    assert str(e.value) == "--weight-memory spram: the Lattice LFE5U-25F-CABGA256 has no SPRAM (block RAM only)"
    with pytest.raises(UserError, match="the LFE5U-25F has no SPRAM for the weights"):
        fit.check_device(spram_build(8), ECP5_25F)


def test_too_many_sprams_is_one_line():
    with pytest.raises(UserError) as e:
        fit.check_device(spram_build(64), ICE40_UP5K)
    assert str(e.value) == ("the build does not fit the Lattice iCE40UP5K-SG48: the weights need 8 of the iCE40UP5K's "
                            "4 SPRAMs (SB_SPRAM256KA, 16384 x 16 each; 1,696 words of 128 bits), 4 too many; "
                            "it fits ecp5-25f (16 of 56 block RAMs)")  # 1,696 x 128 bits: 15 DP16KD of 2048 x 9
    # auto falls back to block RAM, and the refusal says what SPRAM would have needed
    with pytest.raises(UserError) as e:
        fit.check_device(fit.choose_weight_memory(HwConfig.for_model(mnist_model(), 64), ICE40_UP5K), ICE40_UP5K)
    assert "29 too many; with the weights in SPRAM: the weights need 8 of" in str(e.value)


def test_block_ram_refusal_points_at_spram():
    with pytest.raises(UserError) as e:
        fit.check_device(HwConfig.for_model(mnist_model()), ICE40_UP5K)
    assert "24 too many; with the weights in SPRAM it fits (4 of 30 block RAMs, 1 of 4 SPRAMs)" in str(e.value)


@pytest.mark.parametrize("depth, in_ram", [(35, False), (36, True)])
def test_soft_logic_wins_a_tie(flows_dir, depth, in_ram):
    """libmap keeps flip-flops unless a RAM is strictly cheaper: a 35 x 2-bit membrane memory costs 70 in
    soft logic and 64 + 6 (emulation, `no_rw_check`) in one EBR; at 36 words the EBR wins."""
    cfg = HwConfig(n_pe=1, max_layers=1, max_inputs=2, max_neurons=1, max_timesteps=2, weight_depth=2,
                   membrane_depth=depth)
    place = {p.memory.name: p for p in fit.estimate(cfg, ICE40_UP5K).placements}["membranes.mem"]
    assert (place.ram is not None) == in_ram and place.cost == 70  # soft logic at 35, the EBR at 36
    assert_matches_yosys(cfg, None, ICE40_UP5K, flows_dir / f"fit-tie{depth}")


def test_an_asynchronous_read_never_goes_to_block_ram():
    mem = fit.MemoryShape("spike_buffer.mem", "spike buffer", 512, 16, 2, 1)
    assert fit.place(mem, ICE40_UP5K).ram is None
    assert fit.place(mem, ECP5_25F).ram.kind == "distributed"


def test_a_build_too_big_for_every_target():
    cfg = HwConfig(n_pe=8, max_inputs=16, weight_bits=8, weight_depth=65536)
    with pytest.raises(UserError) as e:
        fit.check_device(cfg, ECP5_25F)
    # 65,536 64-bit words: 2 x 128 DP16KD in the 512x36 mode; the small memories go to LUT RAM
    assert str(e.value) == ("the build does not fit the Lattice LFE5U-25F-CABGA256: weights need 256 of the "
                            "LFE5U-25F's 56 block RAMs (DP16KD), 200 too many")
