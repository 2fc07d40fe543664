"""cocotb benches of single blocks on their own Verilog (amaranth.back.verilog.convert of the component).

Benches: mintaccel/verify/benches/block_benches.py. Each test builds its block once per simulator and
parametrization (build/cocotb/<sim>/<block>-<params>) and runs a seeded random job with corners.
"""

from __future__ import annotations

import numpy as np
import pytest

from mintaccel.verify import harness
from tests.cocotb.conftest import sim_params

import contract  # mintaccel/verify/benches (on sys.path through harness): docs/microarchitecture.md's cycle contract

SIMS = sim_params()
MODULE = "block_benches"


def _run(sim, name, component, testcase, job, run_name, seed):
    b = harness.component_build(sim, name, component)
    r = harness.run(b, MODULE, dict(job, seed=seed, kind=testcase), run_name, testcase=testcase)
    assert r.passed, (f"{r.report()}\nrerun: MINTACCEL_SEED={seed} .venv/bin/python -m pytest tests/cocotb "
                      f"-k '{run_name}'")
    return r


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("membrane_bits,acc_bits", [(8, 14), (2, 9), (4, 6)], ids=["m8a14", "m2a9", "m4a6"])
def test_threshold_unit(sim, membrane_bits, acc_bits, run_name, seed):
    """Integrate, fire, reset, leak, clamp (4-stage pipeline) against sim.reference.neuron_step: every
    membrane format up to the build's, both resets, all leak forms and k, thresholds 1 / at the boundary /
    the largest, u at the rails, acc at its extremes; valid_in gaps and padding lanes."""
    from mintaccel.hw.threshold_unit import ThresholdUnit
    r = _run(sim, f"threshold_unit-m{membrane_bits}-a{acc_bits}", ThresholdUnit(membrane_bits, acc_bits),
             "threshold_unit", {"membrane_bits": membrane_bits, "acc_bits": acc_bits, "random_vectors": 3000,
                                "latency": contract.THRESHOLD_LATENCY}, run_name, seed)
    assert r.summary["vectors"] > 2000 and r.summary["spikes"] > 0


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("weight_bits,acc_bits", [(8, 14), (2, 6), (3, 8)], ids=["w8a14", "w2a6", "w3a8"])
def test_processing_element(sim, weight_bits, acc_bits, run_name, seed):
    """Weight decode of every format the build holds (all codes, upper lane bits random) and the
    accumulator's load / add / hold."""
    from mintaccel.hw.processing_element import ProcessingElement
    _run(sim, f"processing_element-w{weight_bits}-a{acc_bits}", ProcessingElement(weight_bits, acc_bits),
         "processing_element", {"weight_bits": weight_bits, "acc_bits": acc_bits, "cycles": 4000}, run_name, seed)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("n_pe,lane_bits,depth", [(4, 8, 24), (8, 2, 18)], ids=["4x8x24", "8x2x18"])
def test_membrane_memory(sim, n_pe, lane_bits, depth, run_name, seed):
    """Packed membrane words: initial contents, synchronous read, write, read-during-write (old word)."""
    from mintaccel.hw.membrane_memory import MembraneMemory
    rng = np.random.default_rng(1000 + depth)  # the contents are part of the build, so not from the seed
    width = n_pe * lane_bits
    init = [int(rng.integers(0, 1 << min(width, 62))) for _ in range(depth)]
    _run(sim, f"membrane_memory-{n_pe}x{lane_bits}x{depth}", MembraneMemory(n_pe, lane_bits, depth, init),
         "membrane_memory", {"init": init, "depth": depth, "width": width, "cycles": 3000}, run_name, seed)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("n_pe,max_inputs", [(4, 32), (8, 128), (3, 10)], ids=["4x32", "8x128", "3x10"])
def test_spike_encoder(sim, n_pe, max_inputs, run_name, seed):
    """Words -> event indices (padding masked), event_count, word_index, stall, busy, finish, and the
    ENCODE length W + E + stalls, under random valid gaps."""
    from mintaccel.hw.spike_encoder import SpikeEncoder
    r = _run(sim, f"spike_encoder-{n_pe}x{max_inputs}", SpikeEncoder(n_pe, max_inputs), "spike_encoder",
             {"n_pe": n_pe, "max_inputs": max_inputs, "cycles": 4000}, run_name, seed)
    assert r.summary["encodings"] > 20 and r.summary["stalls"] > 0
