"""The whole accelerator through its host interface, on the generated Verilog (cocotb + Verilator / Icarus).

Bench: mintaccel/verify/benches/acc_bench.py. One generic build (no preload, harness.generic_config) serves
every random network: each is loaded at run time through the load stream, many per simulation. The
shipped digits model has its own preloaded build. Every FIRE's spikes and written-back membranes,
every spikes_out word, and the cycles of every run are checked (see the bench's docstring).

Reproduce a failing network from its seed: `MINTACCEL_SEED=<seed> MINTACCEL_NETWORKS=1 .venv/bin/python
-m pytest tests/cocotb -k random_networks` (or `mintaccel regress --seed <seed> --networks 1`).
"""

from __future__ import annotations

import os

import pytest

from mintaccel.verify import harness
from tests.cocotb.conftest import sim_params

SIMS = sim_params()
MODULE = "acc_bench"
#: Networks of the fast subset per simulator (Icarus is about 3x slower per cycle).
FAST_NETWORKS = {"verilator": 30, "icarus": 10}


def _networks(sim: str) -> int:
    text = os.environ.get("MINTACCEL_NETWORKS", "").strip()
    return int(text) if text else FAST_NETWORKS[sim]


def rerun_hint(summary: dict) -> str:
    seeds = summary.get("failed_seeds") or []
    if not seeds:
        return ""
    s = seeds[0]
    return (f"\nrerun the first failing network: MINTACCEL_SEED={s} MINTACCEL_NETWORKS=1 .venv/bin/python -m pytest "
            f"tests/cocotb -k random_networks   (or: mintaccel regress --seed {s} --networks 1)")


def check(r: harness.BenchResult) -> dict:
    assert r.passed, r.report() + rerun_hint(r.summary)
    s = r.summary
    assert s["mismatches"] == 0 and s["samples"] > 0
    return s


@pytest.mark.parametrize("sim", SIMS)
def test_random_networks(sim, seed, run_name):
    """Seeded random networks across every weight and membrane format, both resets, all leak forms,
    biases, sizes up to the build's limits, sparse / dense / all-zero / all-one inputs, saturation
    corners and random back-pressure on both spike streams."""
    cfg = harness.generic_config()
    b = harness.accelerator_build(sim)
    n = _networks(sim)
    s = check(harness.run(b, MODULE, harness.random_job(cfg, seed, n), run_name, testcase="random_networks"))
    print(f"{sim}: {s['networks']} networks, {s['samples']} samples, {s['run_cycles']} run cycles "
          f"({s['stall_cycles']} stalls), {s['checks']} checks, {s['cycles_per_second']} cycles/s")
    assert s["networks"] == n
    if n == FAST_NETWORKS[sim]:
        assert s["stall_cycles"] > 0, "no back-pressure in the fast subset"
    if sim == "verilator" and seed == harness.DEFAULT_SEED and n == FAST_NETWORKS[sim]:
        # coverage closure of the fast subset (the long regression reports its own coverage table)
        import netgen
        missing = sorted(set(netgen.REQUIRED_FEATURES + ("membrane at +Q", "membrane at -Q")) - set(s["coverage"]))
        assert not missing, f"the fast subset's default seed no longer covers {missing}"


#: Networks of the ECP5 RTL's fast subset (dense, conv) per simulator.
FAST_ECP5_NETWORKS = {"verilator": (10, 6), "icarus": (3, 2)}


@pytest.mark.parametrize("sim", SIMS)
def test_ecp5_rtl_random_networks(sim, seed, run_name):
    """The generic builds with the ECP5 build's RTL (Accelerator(bram_output_registers=True): one-port
    event memory read a cycle ahead, registered fire, reset-less weight codes): the same bench, so the
    same spikes, membranes and cycles of every write-back as the plain RTL. The long run: `mintaccel
    regress --ecp5-rtl [--conv]`."""
    dense, conv = FAST_ECP5_NETWORKS[sim]
    for is_conv, n in ((False, dense), (True, conv)):
        cfg = harness.generic_conv_config() if is_conv else harness.generic_config()
        b = harness.accelerator_build(sim, conv=is_conv, ecp5=True)
        s = check(harness.run(b, MODULE, harness.random_job(cfg, seed, n, samples=2), f"{run_name}-{int(is_conv)}",
                              testcase="random_conv_networks" if is_conv else "random_networks"))
        assert s["networks"] == n


@pytest.mark.parametrize("sim", SIMS)
def test_controller_corners(sim, seed, run_name):
    """Controller sequencing corners: smallest network, no events at all, every input and neuron active,
    group / word boundaries, the longest T, silent layers feeding biased ones, heavy back-pressure,
    back-to-back runs. Every FIRE's cycle and the counters at that cycle are checked."""
    cfg = harness.generic_config()
    b = harness.accelerator_build(sim)
    job = {"kind": "corners", "config": harness.config_dict(cfg), "bench_seed": seed}
    s = check(harness.run(b, MODULE, job, run_name, testcase="controller_corners"))
    assert s["networks"] >= 9 and s["stall_cycles"] > 0


@pytest.mark.parametrize("sim", SIMS)
def test_shipped_model_digits(sim, run_name):
    """The shipped digits model (mintaccel/models/digits-w2m2.npz) on its own preloaded build, on real
    digits test samples; reports the simulated cycles per second of the path."""
    b, path = harness.shipped_build(sim)
    from mintaccel.core.hwconfig import HwConfig
    from mintaccel.model_export.format import load_model
    cfg = HwConfig.for_model(load_model(path))
    samples = 8 if sim == "verilator" else 3
    job = {"kind": "shipped", "config": harness.config_dict(cfg), "model": str(path), "samples": samples}
    s = check(harness.run(b, MODULE, job, run_name, testcase="shipped_model"))
    assert s["samples"] == samples and s["stall_cycles"] == 0
    print(f"{sim}: shipped model, {samples} digits, {s['run_cycles']} cycles, {s['cycles_per_second']} cycles/s "
          f"({s['wall_seconds']} s)")


@pytest.mark.parametrize("sim", SIMS)
def test_negative_control_broken_threshold_is_caught(sim, run_name):
    """A deliberately broken design: every threshold unit's `H >= theta` patched into `H > theta` in the
    generated Verilog. The same bench must report mismatches (spikes, and so membranes and cycles).
    Always the suite's default seed: this tests the bench, not the stimulus."""
    cfg = harness.generic_config()
    verilog = harness.broken_threshold(harness.accelerator_verilog(cfg))
    b = harness.build(sim, "accelerator-broken-threshold", verilog, harness.top_name())
    job = harness.random_job(cfg, harness.DEFAULT_SEED, 6, keep=200)
    r = harness.run(b, MODULE, job, run_name, testcase="random_networks")
    s = r.summary
    assert not r.passed and s["mismatches"] > 0, "the bench did not catch the broken threshold compare"
    assert any(": spikes of neurons" in d for d in s["mismatch_details"]), s["mismatch_details"][:5]
    assert s["failed_seeds"], "a caught mismatch must name the network seed to rerun"


#: Conv networks of the fast subset per simulator, on the generic conv build.
FAST_CONV_NETWORKS = {"verilator": 20, "icarus": 6}


@pytest.mark.parametrize("sim", SIMS)
def test_random_conv_networks(sim, seed, run_name):
    """Seeded random conv networks (netgen.conv_case): kernels, strides, padding, max and sum pools
    (overlapping too), pool first, flatten first, conv last, channels past n_pe, every format, biases,
    back-pressure; every write-back (spikes, membranes, its cycle), every output word and every run's
    cycles checked against the reference model and the cycle-accurate simulator."""
    cfg = harness.generic_conv_config()
    b = harness.accelerator_build(sim, conv=True)
    n = int(os.environ.get("MINTACCEL_NETWORKS", "").strip() or FAST_CONV_NETWORKS[sim])
    s = check(harness.run(b, MODULE, harness.random_job(cfg, seed, n, samples=2), run_name,
                          testcase="random_conv_networks"))
    assert s["networks"] == n
    if sim == "verilator" and seed == harness.DEFAULT_SEED and n == FAST_CONV_NETWORKS[sim]:
        wanted = {"pool max", "pool sum", "pool overlapping", "stride 2", "padding", "conv last", "pool first",
                  "channels past n_pe", "stall spikes_in", "stall spikes_out"}
        assert not wanted - set(s["coverage"]), f"the fast conv subset no longer covers {sorted(wanted - set(s['coverage']))}"


@pytest.mark.parametrize("sim", SIMS)
def test_negative_control_broken_threshold_is_caught_on_conv(sim, run_name):
    """The broken threshold compare on the conv build: the conv bench catches it too."""
    cfg = harness.generic_conv_config()
    b = harness.build(sim, "accelerator-conv-broken-threshold",
                      harness.broken_threshold(harness.accelerator_verilog(cfg)), harness.top_name())
    r = harness.run(b, MODULE, harness.random_job(cfg, harness.DEFAULT_SEED, 4, samples=2, keep=200), run_name,
                    testcase="random_conv_networks")
    assert not r.passed and r.summary["mismatches"] > 0 and r.summary["failed_seeds"]
    assert any("at output position" in d for d in r.summary["mismatch_details"]), r.summary["mismatch_details"][:5]


@pytest.mark.parametrize("sim", [p for p in SIMS if p.id == "verilator"])
def test_busy_starts_the_cycle_after_start(sim, seed, run_name):
    """docs/microarchitecture.md: busy from the cycle after START to the DONE cycle (load.ready = ~busy)."""
    cfg = harness.generic_config()
    b = harness.accelerator_build(sim)
    check(harness.run(b, MODULE, harness.random_job(cfg, seed, 1, strict_busy=True), run_name, testcase="random_networks"))


@pytest.mark.slow
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
@pytest.mark.parametrize("sim", SIMS)
def test_long_regression(sim, conv, seed, run_name):
    """>= 200 random networks per simulator, dense and conv (`mintaccel regress [--conv]` runs the same,
    with a summary table)."""
    from mintaccel.verify.regress import regress
    networks = max(200, int(os.environ.get("MINTACCEL_NETWORKS") or 0))
    s = regress(sim, networks=networks, seed=seed, workers=1, fresh=True, run_name=run_name, conv=conv)
    print(f"{sim}: {s['networks']} networks, {s['run_cycles']:,} run cycles, {s['mismatches']} mismatches, "
          f"{s['wall_seconds']} s")
    assert s["mismatches"] == 0, "\n".join(s["mismatch_details"][:20] + s["bench_errors"][:2]) + rerun_hint(s)
    assert s["networks"] == networks
