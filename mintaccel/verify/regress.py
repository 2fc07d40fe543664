"""The long regressions, in chunks (one simulation per chunk, `jobs` chunks at once) merged into one
summary. Used by `mintaccel regress` and by the `slow` pytest test
(tests/cocotb/test_accelerator.py::test_long_regression).

- `regress`: many random networks on the generic accelerator build. Network i of a regression with
  seed S is the network of seed S + i (mintaccel/verify/benches/netgen.py), so `--seed S+i --networks 1`
  reruns it alone.
- `regress_model`: a user's model on its own preloaded build (`mintaccel regress --model`), the user's
  input spikes split into chunks of samples.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from mintaccel.core.errors import UserError
from mintaccel.verify import harness

#: Summary fields that add up over chunks.
SUMS = ("networks", "samples", "run_cycles", "stall_cycles", "load_writes", "fires", "neuron_steps",
        "output_words", "timeouts", "clock_cycles", "checks", "mismatches")
#: Network seeds the regression accepts: network i of seed S is seed S + i, and every one must be a
#: valid netgen seed (numpy's default_rng takes any non-negative int; 32 bits keep seeds easy to quote).
MAX_SEED = 2**32 - 1


def check_seed(seed: int, networks: int) -> None:
    """Refuse, before any work, a first seed whose networks' seeds leave 0..MAX_SEED."""
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be in 0..{MAX_SEED}, not {seed}")
    if seed + networks - 1 > MAX_SEED:
        raise UserError(f"--seed {seed} with --networks {networks}: network i uses seed {seed}+i, "
                        f"which must stay <= {MAX_SEED}")


def parallel(fn, items, jobs: int, on_done=None) -> list:
    """[fn(k, item) for k, item in enumerate(items)], at most `jobs` at once, started as slots free up
    (so a huge list is never queued at once); `on_done(result)` in this thread as each one finishes.
    On Ctrl-C (or any error) no further chunk starts, the running simulators are stopped (their
    results are not reported), and the exception goes on to the caller (the CLI prints one line)."""
    results, pending = {}, {}
    todo = enumerate(items)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            for k, item in itertools.islice(todo, max(1, jobs)):
                pending[pool.submit(fn, k, item)] = k
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    results[pending.pop(f)] = f.result()
                    if on_done:
                        on_done(f.result())
                    for k, item in itertools.islice(todo, 1):
                        pending[pool.submit(fn, k, item)] = k
        except BaseException:
            for f in pending:
                f.cancel()
            # a worker may be about to start its simulator: repeat until every running chunk returned
            while not all(f.done() for f in pending):
                harness.stop_simulators()
                wait(pending, timeout=0.5)
            raise
    return [results[k] for k in sorted(results)]


def regress(sim: str, networks: int = 200, seed: int = harness.DEFAULT_SEED, jobs: int = 1, chunk: int = 50,
            run_name: str = "regress", progress=None, samples: int = 3, conv: bool = False) -> dict:
    """Run `networks` random networks from `seed` on `sim` (`conv`: random conv networks on the conv
    build); returns the merged summary (see SUMS, plus mismatch_details, failed_seeds, coverage,
    wall_seconds, cycles_per_second, build_seconds)."""
    reason = harness.unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    t0 = time.perf_counter()
    cfg = harness.generic_conv_config() if conv else harness.generic_config()
    b = harness.accelerator_build(sim, conv=conv)
    build_seconds = time.perf_counter() - t0
    parts = ((seed + i, min(chunk, networks - i)) for i in range(0, networks, chunk))

    def one(k, part):
        first, count = part
        job = harness.random_job(cfg, first, count, samples=samples)
        return first, count, harness.run(b, "acc_bench", job, f"{run_name}-{k:03d}",
                                         testcase="random_conv_networks" if conv else "random_networks")

    t1 = time.perf_counter()
    merged = merge(parallel(one, parts, jobs, _reporter(progress)))
    merged.update({
        "sim": sim, "seed": seed, "networks_requested": networks, "build_seconds": round(build_seconds, 2),
        "wall_seconds": round(time.perf_counter() - t1, 2), "jobs": jobs,
        "build": str(b.folder), "conv": conv,
    })
    merged["cycles_per_second"] = round(merged["clock_cycles"] / max(merged["wall_seconds"], 1e-9))
    return merged


def regress_model(sim: str, model_path, cfg, verilog: str, x, jobs: int = 1, chunk: int = 50,
                  run_name: str = "regress-model", progress=None) -> dict:
    """Run the samples `x` (uint8 [batch, T, inputs], checked) of the model in `model_path` on its
    preloaded build (`verilog`, from harness.accelerator_verilog(cfg, model)) on `sim`, `chunk`
    samples per simulation; returns the merged summary, with `predictions` (per sample, decoded from
    the RTL's output spikes; None if a run did not finish every sample) and `failed_samples`."""
    reason = harness.unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    t0 = time.perf_counter()
    b = harness.build(sim, harness.model_build_name(model_path), verilog, harness.top_name())
    build_seconds = time.perf_counter() - t0
    parts = ((first, min(chunk, len(x) - first)) for first in range(0, len(x), chunk))

    def one(k, part):
        first, count = part
        return first, count, harness.run(b, "acc_bench", harness.model_job(cfg, model_path, first),
                                         f"{run_name}-{k:04d}", testcase="model_inputs",
                                         arrays={"inputs": x[first:first + count]})

    t1 = time.perf_counter()
    results = parallel(one, parts, jobs, _reporter(progress))
    merged = merge(results, unit="samples")
    predictions = [p for _, count, r in results for p in r.summary.get("predictions", [])]
    merged.update({
        "sim": sim, "model": str(model_path), "networks": 1, "samples_requested": len(x),
        "predictions": predictions if len(predictions) == len(x) else None,
        "build_seconds": round(build_seconds, 2), "wall_seconds": round(time.perf_counter() - t1, 2),
        "jobs": jobs, "build": str(b.folder),
    })
    merged["cycles_per_second"] = round(merged["clock_cycles"] / max(merged["wall_seconds"], 1e-9))
    return merged


def _reporter(progress):
    """on_done for `parallel`: `progress(count, BenchResult)` per finished chunk."""
    return None if progress is None else (lambda res: progress(res[1], res[2]))


def merge(results, unit: str = "networks") -> dict:
    """Add up chunk summaries. `unit` is what a chunk's (first, count) numbers: random networks (their
    seeds: `failed_seeds`) or a model's samples (their numbers in the input: `failed_samples`). A chunk
    whose bench failed without reporting a mismatch (crash, simulator error) counts as one mismatch
    and names its first unfinished network or sample."""
    failed_key = "failed_seeds" if unit == "networks" else "failed_samples"
    out = {k: 0 for k in SUMS}
    out.update({"mismatch_details": [], failed_key: [], "coverage": {}, "bench_errors": [], "runs": []})
    for first, count, r in results:
        s = r.summary
        for k in SUMS:
            out[k] += int(s.get(k, 0))
        out["mismatch_details"] += s.get("mismatch_details", [])
        out[failed_key] += s.get(failed_key, [])
        for f, n in s.get("coverage", {}).items():
            out["coverage"][f] = out["coverage"].get(f, 0) + n
        out["runs"].append(str(r.folder))
        if not r.passed and not s.get("mismatches"):
            # the bench itself failed (crash, exception, simulator error): count it, keep the story
            out["mismatches"] += 1
            out[failed_key] += list(range(first + int(s.get(unit, 0)), first + count))[:1] or [first]
            out["bench_errors"].append(r.report())
        if s.get(unit, 0) < count and r.passed:
            out["bench_errors"].append(f"{r.folder}: {s.get(unit, 0)} of {count} {unit} ran")
    out[failed_key] = sorted(set(out[failed_key]))
    out["mismatch_details"] = out["mismatch_details"][:50]
    out["coverage"] = dict(sorted(out["coverage"].items()))
    return out
