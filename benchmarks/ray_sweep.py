"""`mintaccel sweep` on Ray: wall time with 1 and 2 workers (the speed-up), and a run killed at half
and resumed (only the missing points run again). Every figure is measured in this one run.

    python benchmarks/ray_sweep.py                      # 16 synthesis points (4 N_PE x 2 schemes x 2 bits)
    python benchmarks/ray_sweep.py --out /tmp/rs --json ray_sweep.json

Each sweep gets its own fresh folder, so nothing comes from an earlier run's cache except in the
resumed run, where that is the point. Synthesis only (`--no-pnr`) keeps the 16 points to minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MINTACCEL = Path(sys.executable).parent / "mintaccel"
GRID = ["--n-pe", "4", "8", "16", "32", "--schemes", "uniform", "pot", "--weight-bits", "2", "4",
        "--membrane-bits", "2", "--epochs", "8", "--hidden", "64", "--no-pnr"]
POINTS = 16


def sweep(out: Path, jobs: int, extra=()) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = subprocess.run([str(MINTACCEL), "sweep", *GRID, "--jobs", str(jobs), "--out", str(out),
                        "--json", str(out.parent / f"{out.name}.json"), *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"sweep failed ({r.returncode}): {r.stderr[-2000:]}")
    return seconds, json.loads((out.parent / f"{out.name}.json").read_text())


def points_done(out: Path) -> int:
    return len(list((out / "jobs").glob("point-*/result.json")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/bench-ray-sweep")
    ap.add_argument("--json")
    args = ap.parse_args()
    root = Path(args.out).resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    one, r1 = sweep(root / "w1", 1)
    two, r2 = sweep(root / "w2", 2)
    assert len(r1["rows"]) == len(r2["rows"]) == POINTS, (len(r1["rows"]), len(r2["rows"]))
    same = [(a["label"], a["luts"], a["cycles"]) for a in r1["rows"]] == [(b["label"], b["luts"], b["cycles"])
                                                                         for b in r2["rows"]]

    # killed at half: SIGINT (Ctrl-C) once 8 of the 16 points are recorded
    out = root / "resume"
    p = subprocess.Popen([str(MINTACCEL), "sweep", *GRID, "--jobs", "2", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    while p.poll() is None and points_done(out) < POINTS // 2:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    killed_after = time.perf_counter() - t0
    kept = points_done(out)
    resumed, r3 = sweep(out, 2)
    ran = r3["jobs"]["points"]["ran"]
    figures = {"points": POINTS, "wall_1_worker_s": round(one, 1), "wall_2_workers_s": round(two, 1),
               "speedup": round(one / two, 2), "same_rows": same, "killed_exit_status": p.returncode,
               "killed_after_s": round(killed_after, 1), "points_kept": kept, "resumed_wall_s": round(resumed, 1),
               "resumed_points_ran": ran, "resumed_points_cached": r3["jobs"]["points"]["cached"],
               "resumed_trainings_cached": r3["jobs"]["training"]["cached"],
               "ray_startup_s": r2["jobs"]["training"]["startup_seconds"]}
    print(f"mintaccel sweep of {POINTS} synthesis points (--no-pnr) on this machine:")
    print(f"  1 worker : {one:7.1f} s")
    print(f"  2 workers: {two:7.1f} s   speed-up {one / two:.2f}x   (same rows: {same})")
    print(f"  killed (Ctrl-C, exit {p.returncode}) after {killed_after:.1f} s with {kept} points finished; "
          f"rerun: {ran} points ran, {r3['jobs']['points']['cached']} from the cache, {resumed:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = same and p.returncode == 130 and ran == POINTS - kept and len(r3["rows"]) == POINTS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
