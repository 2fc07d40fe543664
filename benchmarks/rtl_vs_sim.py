"""The cycle-accurate simulator against the RTL under Verilator: same spikes, same cycles, and speed.

    python benchmarks/rtl_vs_sim.py                      # shipped model, whole digits test split
    python benchmarks/rtl_vs_sim.py --samples 50 --json out.json
    python benchmarks/rtl_vs_sim.py --model mintaccel/models/digits-conv-w2m2.npz --samples 20   # conv

The RTL is the Verilog of `mintaccel generate` (memories preloaded), driven by a small compiled C++
loop (benchmarks/verilator/driver.cpp: the fair fastest baseline, one eval per clock edge). Both runs
must agree on every layer's spikes at every step (the RTL's probe port) and on every sample's cycle
count, or the script fails. It then prints simulated cycles per wall second of both and their ratio,
measured in this one run, next to the design's own clock (from flows/baselines.json when present).
The cocotb path's speed is measured by `mintaccel regress` (docs/verification.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mintaccel.cli.report import console as CONSOLE  # noqa: E402
from rich.table import Table  # noqa: E402

from mintaccel.core.hwconfig import HwConfig, layout  # noqa: E402
from mintaccel.hw.generate import TOP_NAME, generate  # noqa: E402
from mintaccel.hw.images import input_words  # noqa: E402
from mintaccel.hw.lint import verilator_env  # noqa: E402
from mintaccel.hw.top import probe_layout  # noqa: E402
from mintaccel.core.files import write_json  # noqa: E402
from mintaccel.cli.commands import _dataset_inputs
from mintaccel.core.shipped import shipped_model_path  # noqa: E402
from mintaccel.model_export.format import load_model  # noqa: E402
from mintaccel.sim.cycle import simulate  # noqa: E402

BUILD = ROOT / "build" / "bench" / "rtl_vs_sim"


def build_driver(model, cfg) -> Path:
    rtl = BUILD / "rtl"
    generate(rtl, cfg, model)
    obj = BUILD / "obj"
    shutil.rmtree(obj, ignore_errors=True)  # a stale precompiled header breaks Verilator's make
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "--top-module", TOP_NAME,
           "-Mdir", str(obj), "-o", "driver", str(rtl / f"{TOP_NAME}.v"),
           str(ROOT / "benchmarks" / "verilator" / "driver.cpp")]
    result = subprocess.run(cmd, capture_output=True, text=True, env=verilator_env())
    if result.returncode != 0:
        sys.exit("verilator build failed:\n" + result.stderr[-3000:])
    return obj / "driver"


def run_rtl(driver: Path, model, cfg, spikes):
    words = np.array([[w for t in range(model.timesteps) for w in input_words(model, cfg, s[t])] for s in spikes],
                     np.uint32)
    (BUILD / "input.bin").write_bytes(words.tobytes())
    out = BUILD / "output.txt"
    subprocess.run([str(driver), str(BUILD / "input.bin"), str(len(spikes)), str(words.shape[1]), str(out)],
                   check=True)
    fields = {name: (f.offset, f.width) for name, f in probe_layout(cfg)}
    views = [p.view for p in layout(model, cfg.n_pe).layers]
    layer_spikes = {v.index: np.zeros((len(spikes), model.timesteps, v.layer.n_out), np.uint8) for v in views}
    cycles, wall = [], None
    sample = -1
    for line in out.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "sample":
            sample = int(rest[0])
            cycles.append(int(rest[2]) - int(rest[4]))
        elif kind == "trace":
            v = int(rest[0], 16)
            get = lambda n: (v >> fields[n][0]) & ((1 << fields[n][1]) - 1)  # noqa: E731
            view, t = views[get("layer")], get("step")
            q, g = divmod(get("group"), view.groups)  # group k: channel block k % G at output position k // G
            for i in range(cfg.n_pe):
                c = g * cfg.n_pe + i
                if c < view.out_shape[0]:
                    layer_spikes[view.index][sample, t, c * view.positions + q] = (get("spikes") >> i) & 1
        elif kind == "wall_seconds":
            wall = float(rest[0])
    return np.array(cycles), layer_spikes, wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(shipped_model_path()))
    ap.add_argument("--samples", type=int, default=None, help="first N test samples (default: all)")
    ap.add_argument("--repeat", type=int, default=5, help="simulator timing repeats (best is kept)")
    ap.add_argument("--n-pe", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    console = CONSOLE
    model = load_model(args.model)
    cfg = HwConfig.for_model(model, args.n_pe)
    spikes, split = _dataset_inputs("mnist" if model.encoding.levels == 255 else "digits", None, model)
    if args.samples:
        spikes = spikes[:args.samples]
    BUILD.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    driver = build_driver(model, cfg)
    build_s = time.perf_counter() - t
    rtl_cycles, rtl_spikes, rtl_wall = run_rtl(driver, model, cfg, spikes)

    best = None
    with threadpool_limits(1):  # one core each: Verilator's loop is single-threaded too
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = simulate(model, spikes, cfg)
            elapsed = time.perf_counter() - t
            best = elapsed if best is None else min(best, elapsed)
    sim_cycles = np.asarray(result.cycles)
    assert np.array_equal(sim_cycles, rtl_cycles), "cycle counts differ between the simulator and the RTL"
    for l, rtl in rtl_spikes.items():  # every neuron layer (pools and flattens have no write-back)
        assert np.array_equal(result.spikes[l], rtl), f"layer {l} spikes differ"
    total = int(rtl_cycles.sum())
    rtl_rate, sim_rate = total / rtl_wall, total / best
    fmax = None
    baseline = ROOT / "flows" / "baselines.json"
    if baseline.exists():
        try:
            fmax = json.loads(baseline.read_text())["ice40-up5k"]["metrics"]["fmax_mhz"]
        except (KeyError, TypeError, ValueError):
            fmax = None
    table = Table(title=f"{Path(args.model).name}: {len(spikes)} samples, {total:,} cycles; "
                        f"spikes of every layer and cycles of every sample identical", title_justify="left")
    for c in ("run", "wall s", "simulated cycles / s", "ratio"):
        table.add_column(c)
    table.add_row("RTL, Verilator + C++ driver loop", f"{rtl_wall:.3f}", f"{rtl_rate:,.0f}", "1")
    table.add_row("cycle-accurate simulator (sim.cycle)", f"{best:.4f}", f"{sim_rate:,.0f}", f"{sim_rate / rtl_rate:.1f}x")
    if fmax:
        table.add_row(f"the FPGA itself at its Fmax ({fmax:.1f} MHz on UP5K)", "-", f"{fmax * 1e6:,.0f}",
                      f"simulator / FPGA = {sim_rate / (fmax * 1e6):.2f}x")
    console.print(table)
    console.print(f"(Verilator build: {build_s:.1f} s, not counted)")
    if args.json:
        write_json(args.json, {"samples": len(spikes), "cycles": total, "rtl_verilator_seconds": rtl_wall,
                               "rtl_cycles_per_second": rtl_rate, "sim_seconds": best,
                               "sim_cycles_per_second": sim_rate, "ratio": sim_rate / rtl_rate,
                               "fpga_fmax_mhz": fmax})


if __name__ == "__main__":
    main()
