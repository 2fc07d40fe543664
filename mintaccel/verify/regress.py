"""The long regression: many random networks on the generic accelerator build, in chunks (one simulation
per chunk, chunks in parallel), merged into one summary. Used by `mintaccel regress` and by the `slow`
pytest test (tests/cocotb/test_accelerator.py::test_long_regression).

Network i of a regression with seed S is the network of seed S + i (mintaccel/verify/benches/netgen.py), so
`--seed S+i --networks 1` reruns it alone.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from mintaccel.verify import harness

#: Summary fields that add up over chunks.
SUMS = ("networks", "samples", "run_cycles", "stall_cycles", "load_writes", "fires", "neuron_steps",
        "output_words", "timeouts", "clock_cycles", "checks", "mismatches")


def regress(sim: str, networks: int = 200, seed: int = harness.DEFAULT_SEED, jobs: int = 1, chunk: int = 50,
            run_name: str = "regress", progress=None, samples: int = 3) -> dict:
    """Run `networks` random networks from `seed` on `sim`; returns the merged summary (see SUMS, plus
    mismatch_details, failed_seeds, coverage, wall_seconds, cycles_per_second, build_seconds)."""
    reason = harness.unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    t0 = time.perf_counter()
    cfg = harness.generic_config()
    b = harness.accelerator_build(sim)
    build_seconds = time.perf_counter() - t0
    parts = [(seed + i, min(chunk, networks - i)) for i in range(0, networks, chunk)]

    def one(k_part):
        k, (first, count) = k_part
        job = harness.random_job(cfg, first, count, samples=samples)
        r = harness.run(b, "acc_bench", job, f"{run_name}-{k:03d}", testcase="random_networks")
        if progress:
            progress(count, r)
        return first, count, r

    t1 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, enumerate(parts)))
    merged = merge(results)
    merged.update({
        "sim": sim, "seed": seed, "networks_requested": networks, "build_seconds": round(build_seconds, 2),
        "wall_seconds": round(time.perf_counter() - t1, 2), "jobs": jobs,
        "build": str(b.folder),
    })
    merged["cycles_per_second"] = round(merged["clock_cycles"] / max(merged["wall_seconds"], 1e-9))
    return merged


def merge(results) -> dict:
    out = {k: 0 for k in SUMS}
    out.update({"mismatch_details": [], "failed_seeds": [], "coverage": {}, "bench_errors": [], "runs": []})
    for first, count, r in results:
        s = r.summary
        for k in SUMS:
            out[k] += int(s.get(k, 0))
        out["mismatch_details"] += s.get("mismatch_details", [])
        out["failed_seeds"] += s.get("failed_seeds", [])
        for f, n in s.get("coverage", {}).items():
            out["coverage"][f] = out["coverage"].get(f, 0) + n
        out["runs"].append(str(r.folder))
        if not r.passed and not s.get("mismatches"):
            # the bench itself failed (crash, exception, simulator error): count it, keep the story
            out["mismatches"] += 1
            out["failed_seeds"] += list(range(first + int(s.get("networks", 0)), first + count))[:1] or [first]
            out["bench_errors"].append(r.report())
        if s.get("networks", 0) < count and r.passed:
            out["bench_errors"].append(f"{r.folder}: {s.get('networks', 0)} of {count} networks ran")
    out["failed_seeds"] = sorted(set(out["failed_seeds"]))
    out["mismatch_details"] = out["mismatch_details"][:50]
    out["coverage"] = dict(sorted(out["coverage"].items()))
    return out
