"""The long regressions, in chunks (one simulation per chunk, each a job on Ray: mintaccel.core.jobs)
merged into one summary. Used by `mintaccel regress` and by the `slow` pytest test
(tests/cocotb/test_accelerator.py::test_long_regression).

- `regress`: many random networks on the generic accelerator build. Network i of a regression with
  seed S is the network of seed S + i (mintaccel/verify/benches/netgen.py), so `--seed S+i --networks 1`
  reruns it alone.
- `regress_model`: a user's model on its own preloaded build (`mintaccel regress --model`), the user's
  input spikes split into chunks of samples.
"""

from __future__ import annotations

import time
from pathlib import Path

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


def chunk_job(inputs: dict, folder: Path) -> dict:
    """Job: one chunk of random networks (seeds first..first+count-1) on the generic build, which the
    worker builds if its machine has no copy yet (a locked, cached build: harness.build)."""
    first, count, sim, conv = inputs["first"], inputs["count"], inputs["sim"], inputs["conv"]
    cfg = harness.generic_conv_config() if conv else harness.generic_config()
    b = harness.accelerator_build(sim, conv=conv, ecp5=inputs.get("ecp5", False))
    job = harness.random_job(cfg, first, count, samples=inputs["samples"])
    return _bench(harness.run(b, "acc_bench", job, inputs["run"],
                              testcase="random_conv_networks" if conv else "random_networks"))


def model_chunk_job(inputs: dict, folder: Path) -> dict:
    """Job: samples first..first+count-1 of the model's input file on its preloaded build."""
    import numpy as np

    from mintaccel.model_export.format import load_model
    first, count = inputs["first"], inputs["count"]
    model = load_model(inputs["model"])
    cfg = harness.model_config(model)
    verilog = Path(inputs["verilog"]).read_text()
    b = harness.build(inputs["sim"], harness.model_build_name(inputs["model"]), verilog, harness.top_name())
    x = np.load(inputs["inputs"], mmap_mode="r")[first:first + count]
    return _bench(harness.run(b, "acc_bench", harness.model_job(cfg, inputs["model"], first), inputs["run"],
                              testcase="model_inputs", arrays={"inputs": np.ascontiguousarray(x)}))


def _bench(r) -> dict:
    """A BenchResult as a job's JSON result."""
    return {"summary": r.summary, "passed": r.passed, "report": "" if r.passed else r.report(), "folder": str(r.folder)}


def jobs_root() -> Path:
    """Where the regression's jobs keep their results: build/jobs beside build/cocotb."""
    return harness.BUILD_ROOT.parent / "jobs"


def _run(jobs: list, jobs_kw: dict, progress) -> tuple[list, object]:
    """run_jobs with a per-chunk progress callback; a failed job (not a failed bench: the worker
    raised or died) becomes a chunk result that counts one mismatch."""
    from mintaccel.core.jobs import run_jobs
    on = None if progress is None else (lambda o: progress(o.job.inputs["count"], _chunk(o)))
    report = run_jobs(jobs, jobs_kw.pop("root", jobs_root()), progress=on, **jobs_kw)
    parts = [(o.job.inputs["first"], o.job.inputs["count"], _chunk(o)) for o in report.outcomes]
    return parts, report


def _chunk(o) -> dict:
    if o.result is not None:
        return o.result
    return {"summary": {}, "passed": False, "report": f"job {o.job.label} failed: {o.error} (log {o.log})",
            "folder": str(o.folder)}


def regress(sim: str, networks: int = 200, seed: int = harness.DEFAULT_SEED, chunk: int = 50,
            run_name: str = "regress", progress=None, samples: int = 3, conv: bool = False, ecp5: bool = False,
            **jobs_kw) -> dict:
    """Run `networks` random networks from `seed` on `sim` (`conv`: random conv networks on the conv
    build; `ecp5`: the generic build with the ECP5 build's RTL) in chunks, each a job
    (mintaccel.core.jobs.run_jobs with `jobs_kw`: workers, address, fresh, engine, say); returns the merged
    summary (see SUMS, plus mismatch_details, failed_seeds, coverage, wall_seconds, cycles_per_second,
    build_seconds, jobs). `progress(count, chunk_result)` per chunk."""
    from mintaccel.core.jobs import Job
    reason = harness.unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    t0 = time.perf_counter()
    b = harness.accelerator_build(sim, conv=conv, ecp5=ecp5)  # once here, so that the workers find it built
    build_seconds = time.perf_counter() - t0
    jobs = [Job("regress", f"{sim} networks {seed + i}..{seed + i + min(chunk, networks - i) - 1}", chunk_job,
                # `ecp5` only when set: the job keys (and so the kept results) of the plain regressions stay
                {"sim": sim, "conv": conv, **({"ecp5": True} if ecp5 else {}), "first": seed + i, "count": min(chunk, networks - i), "samples": samples,
                 "run": f"{run_name}-{k:03d}", "waves": harness.waves_requested()})
            for k, i in enumerate(range(0, networks, chunk))]
    t1 = time.perf_counter()
    parts, report = _run(jobs, dict(jobs_kw), progress)
    merged = merge(parts)
    merged.update({
        "sim": sim, "seed": seed, "networks_requested": networks, "build_seconds": round(build_seconds, 2),
        "wall_seconds": round(time.perf_counter() - t1, 2), "jobs": report.summary(),
        "build": str(b.folder), "conv": conv, "ecp5_rtl": ecp5,
    })
    merged["cycles_per_second"] = round(merged["clock_cycles"] / max(merged["wall_seconds"], 1e-9))
    return merged


def regress_model(sim: str, model_path, cfg, verilog: str, x, chunk: int = 50, run_name: str = "regress-model",
                  progress=None, **jobs_kw) -> dict:
    """Run the samples `x` (uint8 [batch, T, inputs], checked) of the model in `model_path` on its
    preloaded build (`verilog`, from harness.accelerator_verilog(cfg, model)) on `sim`, `chunk`
    samples per job (run_jobs with `jobs_kw`); returns the merged summary, with `predictions` (per
    sample, decoded from the RTL's output spikes; None if a run did not finish every sample) and
    `failed_samples`."""
    import hashlib

    import numpy as np

    from mintaccel.core.jobs import Job
    reason = harness.unavailable(sim)
    if reason:
        raise RuntimeError(f"{sim}: {reason}")
    t0 = time.perf_counter()
    b = harness.build(sim, harness.model_build_name(model_path), verilog, harness.top_name())
    build_seconds = time.perf_counter() - t0
    # the inputs and Verilog as files the jobs read (and hash into their keys)
    root = Path(jobs_kw.get("root") or jobs_root())
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
    inputs = root / f"inputs-{digest}.npy"
    if not inputs.is_file():
        np.save(inputs.with_name(inputs.name + ".tmp.npy"), x)
        inputs.with_name(inputs.name + ".tmp.npy").replace(inputs)
    source = b.folder / f"{harness.top_name()}.v"
    model_path = str(Path(model_path).resolve())
    jobs = [Job("regress-model", f"{sim} samples {first}..{first + min(chunk, len(x) - first) - 1}", model_chunk_job,
                {"sim": sim, "model": model_path, "verilog": str(source), "inputs": str(inputs), "first": first,
                 "count": min(chunk, len(x) - first), "run": f"{run_name}-{k:04d}", "waves": harness.waves_requested()},
                files=(model_path, str(inputs), str(source)))
            for k, first in enumerate(range(0, len(x), chunk))]
    t1 = time.perf_counter()
    parts, report = _run(jobs, dict(jobs_kw), progress)
    merged = merge(parts, unit="samples")
    predictions = [p for _, _, r in parts for p in r["summary"].get("predictions", [])]
    merged.update({
        "sim": sim, "model": str(model_path), "networks": 1, "samples_requested": len(x),
        "predictions": predictions if len(predictions) == len(x) else None,
        "build_seconds": round(build_seconds, 2), "wall_seconds": round(time.perf_counter() - t1, 2),
        "jobs": report.summary(), "build": str(b.folder),
    })
    merged["cycles_per_second"] = round(merged["clock_cycles"] / max(merged["wall_seconds"], 1e-9))
    return merged


def merge(results, unit: str = "networks") -> dict:
    """Add up chunk summaries. `unit` is what a chunk's (first, count) numbers: random networks (their
    seeds: `failed_seeds`) or a model's samples (their numbers in the input: `failed_samples`). A chunk
    whose bench failed without reporting a mismatch (crash, simulator error) counts as one mismatch
    and names its first unfinished network or sample."""
    failed_key = "failed_seeds" if unit == "networks" else "failed_samples"
    out = {k: 0 for k in SUMS}
    out.update({"mismatch_details": [], failed_key: [], "coverage": {}, "bench_errors": [], "runs": []})
    for first, count, r in results:
        s = r["summary"]
        for k in SUMS:
            out[k] += int(s.get(k, 0))
        out["mismatch_details"] += s.get("mismatch_details", [])
        out[failed_key] += s.get(failed_key, [])
        for f, n in s.get("coverage", {}).items():
            out["coverage"][f] = out["coverage"].get(f, 0) + n
        out["runs"].append(r["folder"])
        if not r["passed"] and not s.get("mismatches"):
            # the bench itself failed (crash, exception, simulator error): count it, keep the story
            out["mismatches"] += 1
            out[failed_key] += list(range(first + int(s.get(unit, 0)), first + count))[:1] or [first]
            out["bench_errors"].append(r["report"])
        if s.get(unit, 0) < count and r["passed"]:
            out["bench_errors"].append(f"{r['folder']}: {s.get(unit, 0)} of {count} {unit} ran")
    out[failed_key] = sorted(set(out[failed_key]))
    out["mismatch_details"] = out["mismatch_details"][:50]
    out["coverage"] = dict(sorted(out["coverage"].items()))
    return out
