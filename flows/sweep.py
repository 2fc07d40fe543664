"""Design-space sweep: N_PE x weight format x membrane bits -> LUTs, latency, energy, accuracy, Pareto plots.

For every weight format (scheme and bits) and membrane width, a small LIF network is trained on
digits (quick QAT, few epochs). Every (format, N_PE) point is then built (`HwConfig.for_model(model,
n_pe)`, with the threshold units asked for and the weight memory `fit.choose_weight_memory` picks),
synthesized and placed for the target (flows.flow.run_flow without the per-module pass; with several
nextpnr seeds: Fmax per seed, min and median), and simulated cycle by cycle on the digits test split
(sim.cycle) for latency and the FPGA energy estimate. Trainings and points are jobs on Ray
(mintaccel.core.jobs), each in `<out>/jobs/<kind>-<hash of its inputs>/`: an interrupted or repeated
sweep reruns only the jobs that did not finish. A point the device cannot hold (flows/fit.py, or more
LUTs than the device after synthesis) or a tool fails on is skipped with a one-line note. Results go
to `<out>/sweep.csv`, `<out>/sweep.json` and `<out>/pareto.png` (LUTs / Fmax / latency / energy /
accuracy, Pareto points marked).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

from mintaccel.core.encodings import MEMBRANE_BITS
from mintaccel.core.errors import UserError
from mintaccel.core.files import MARKER
from mintaccel.core.model import WEIGHT_BITS

#: Storage bits per weight scheme (the one table: core.encodings.WEIGHT_BITS, keyed by name).
SCHEME_BITS = WEIGHT_BITS

COLUMNS = ("label", "n_pe", "scheme", "weight_bits", "membrane_bits", "threshold_units", "weight_memory", "accuracy",
           "luts", "ffs", "carry", "bram", "spram", "dsp", "multipliers", "fmax_mhz", "fmax_min_mhz",
           "fmax_median_mhz", "fmax_by_seed", "cycles", "latency_us", "energy_nj", "energy_per_sop_pj", "pareto",
           "build_dir")


@dataclass(frozen=True)
class Point:
    n_pe: int
    scheme: str
    weight_bits: int
    membrane_bits: int

    @property
    def weights(self) -> str:
        return "binary" if self.scheme == "binary" else f"{self.scheme}:{self.weight_bits}"

    @property
    def label(self) -> str:
        w = "b1" if self.scheme == "binary" else f"{self.scheme[0]}{self.weight_bits}"
        return f"n{self.n_pe}-{w}-m{self.membrane_bits}"


def grid(n_pes, schemes, weight_bits, membrane_bits) -> tuple[list[Point], list[str]]:
    """Every valid point, and a note for each combination skipped (e.g. pot:8 does not exist)."""
    points, skipped = [], []
    for scheme in schemes:
        if scheme not in SCHEME_BITS:
            raise UserError(f"unknown weight scheme {scheme!r}: choose from {', '.join(SCHEME_BITS)}")
    for mb in membrane_bits:
        if mb not in MEMBRANE_BITS:
            raise UserError(f"--membrane-bits {mb}: membranes are {', '.join(map(str, MEMBRANE_BITS))} bits")
    for scheme, wb, mb, n in itertools.product(schemes, weight_bits, membrane_bits, n_pes):
        bits = 1 if scheme == "binary" else wb
        if bits not in SCHEME_BITS[scheme]:
            note = f"{scheme}:{wb} (bits must be one of {SCHEME_BITS[scheme]})"
            if note not in skipped:
                skipped.append(note)
            continue
        p = Point(n, scheme, bits, mb)
        if p not in points:
            points.append(p)
    if not points:
        raise UserError("the sweep grid is empty: " + "; ".join(skipped))
    return points, skipped


def output_folder(path) -> Path:
    """The sweep's folder, made (with the marker of a mintaccel output) when the work starts. Unlike a
    build folder it is not replaced: a rerun reuses its finished jobs (jobs/)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("a mintaccel sweep folder: a rerun reuses the finished jobs in jobs/\n")
    return out


def train_config(point: Point, epochs: int, hidden: int, seed: int):
    from mintaccel.model_export.qat import LayerSpec, TrainConfig
    return TrainConfig(hidden=(hidden,), layers=(LayerSpec(point.weights, str(point.membrane_bits)),),
                       epochs=epochs, seed=seed)


def train_job(inputs: dict, folder: Path) -> dict:
    """Job: train the point format's model (`inputs["config"]`, a TrainConfig's JSON) into
    `<folder>/model.npz`."""
    from mintaccel.model_export.format import save_model
    from mintaccel.model_export.qat import TrainConfig
    from mintaccel.model_export.train import train

    cfg = TrainConfig.from_json(inputs["config"])
    result = train(cfg)
    model = result.net.to_int_model(result.encoding, {"trained_with": cfg.to_json(), "split": result.split,
                                                      "test_accuracy": result.test_accuracy})
    save_model(model, folder / "model.npz")
    return {"model": str(folder / "model.npz"), "test_accuracy": result.test_accuracy,
            "train_seconds": round(result.seconds, 2)}


def point_job(inputs: dict, folder: Path) -> dict:
    """Job: build, synthesize (and place) one point in `<folder>/build` and simulate it on the digits test
    split. `{"row": ...}`, or `{"skipped": reason}` when the device cannot hold it or a tool gives up
    (too many LUTs after synthesis, nextpnr out of cells: the logs stay in the folder)."""
    from mintaccel.core.hwconfig import HwConfig
    from mintaccel.flows import fit
    from mintaccel.flows.flow import run_flow
    from mintaccel.flows.targets import get_target
    from mintaccel.flows.tools import ToolError
    from mintaccel.model_export import datasets
    from mintaccel.model_export.format import load_model
    from mintaccel.sim.encoding import rate_encode

    point, target = Point(**inputs["point"]), get_target(inputs["target"])
    model = load_model(inputs["model"])
    split = datasets.load("digits")
    spikes = rate_encode(split.x_test, model.timesteps, split.levels)
    cfg = fit.choose_weight_memory(HwConfig.for_model(model, n_pe=point.n_pe, **inputs["hw"]), target,
                                   inputs["weight_memory"])
    try:
        fit.check_device(cfg, target)
        report = run_flow(cfg, model, target, folder / "build", breakdown=False, pnr=inputs["pnr"], spikes=spikes,
                          labels=split.y_test, seeds=tuple(inputs["seeds"]))
    except (UserError, ToolError) as e:
        return {"skipped": f"{point.label}: {e}"}
    return {"row": row_for(point, report)}


def latency_key(rows: list[dict]) -> str:
    """`latency_us` when every row has one (P&R ran), else `cycles`."""
    return "latency_us" if rows and all(r.get("latency_us") is not None for r in rows) else "cycles"


def pareto(rows: list[dict], minimize=None, maximize=("accuracy",)) -> list[bool]:
    """True for rows no other row dominates (no worse in every objective, better in one).

    Objectives by default: LUTs, latency (or cycles), energy down; accuracy up.
    """
    minimize = minimize or ("luts", latency_key(rows), "energy_nj")
    def vec(r):
        v = [r.get(k) for k in minimize] + [None if r.get(k) is None else -r[k] for k in maximize]
        return None if any(x is None for x in v) else v
    vecs = [vec(r) for r in rows]
    out = []
    for i, a in enumerate(vecs):
        if a is None:
            out.append(False)
            continue
        dominated = any(b is not None and j != i and all(x <= y for x, y in zip(b, a)) and any(x < y for x, y in zip(b, a))
                        for j, b in enumerate(vecs))
        out.append(not dominated)
    return out


def row_for(point: Point, report: dict) -> dict:
    """One sweep row; `fmax_mhz` (and the latency and energy) at the first seed, min / median over all."""
    s, p, perf, e = report["synthesis"], report.get("pnr") or {}, report.get("performance") or {}, report.get("energy") or {}
    by_seed = p.get("by_seed") or {"runs": [{"seed": p.get("seed"), "fmax_mhz": p.get("fmax_mhz")}],
                                   "fmax_min_mhz": p.get("fmax_mhz"), "fmax_median_mhz": p.get("fmax_mhz")}
    return {
        "label": point.label, "n_pe": point.n_pe, "scheme": point.scheme, "weight_bits": point.weight_bits,
        "membrane_bits": point.membrane_bits, "threshold_units": report["threshold_units"]["units"],
        "weight_memory": report["weight_memory"]["kind"], "accuracy": perf.get("accuracy"),
        "luts": s["luts"], "ffs": s["ffs"], "carry": s["carry"], "bram": s["bram"], "spram": s["spram"], "dsp": s["dsp"],
        "multipliers": report["generic"]["multipliers"], "fmax_mhz": p.get("fmax_mhz"),
        "fmax_min_mhz": by_seed["fmax_min_mhz"], "fmax_median_mhz": by_seed["fmax_median_mhz"],
        "fmax_by_seed": " ".join(f"{r['seed']}:{r['fmax_mhz']}" for r in by_seed["runs"]) if p else None,
        "cycles": perf.get("cycles_per_inference"), "latency_us": perf.get("latency_us"),
        "energy_nj": None if not e else e["total_pj"] / 1000, "energy_per_sop_pj": e.get("per_sop_pj"),
        "build_dir": report["build_dir"],
    }


def write_csv(rows: list[dict], path: Path) -> None:
    from mintaccel.core.files import atomic_open
    marks = pareto(rows)
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r, m in zip(rows, marks):
            w.writerow({**{k: _fmt(r.get(k)) for k in COLUMNS}, "pareto": int(m)})


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def _seed_fmax(row: dict) -> list[float]:
    """The Fmax of every seed of a row (`fmax_by_seed`: `seed:MHz ...`), placements that gave one."""
    pairs = (item.split(":", 1) for item in (row.get("fmax_by_seed") or "").split())
    return [float(v) for _, v in pairs if v != "None"]


def plot(rows: list[dict], path: Path, target: str) -> None:
    """A 2 x 3 figure of the trade-offs (LUTs, Fmax, latency, energy, accuracy); Pareto-optimal points (in
    LUTs, latency, energy and accuracy: Fmax counts through latency) ringed in black; with several seeds
    a bar spans their Fmax."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    marks = pareto(rows)
    lat = latency_key(rows)
    lat_label = "latency per inference (us)" if lat == "latency_us" else "cycles per inference"
    energy_label = "energy per inference (nJ, estimate)"
    pairs = [("luts", lat, "LUTs", lat_label),
             ("luts", "fmax_mhz", "LUTs", "Fmax (MHz, nextpnr)"),
             ("luts", "energy_nj", "LUTs", energy_label),
             (lat, "energy_nj", lat_label, energy_label),
             ("luts", "accuracy", "LUTs", "digits test accuracy"),
             ("energy_nj", "accuracy", energy_label, "digits test accuracy")]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    schemes = sorted({r["scheme"] for r in rows})
    colours = dict(zip(schemes, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for ax, (x, y, xl, yl) in zip(axes.flat, pairs):
        if all(r.get(x) is None or r.get(y) is None for r in rows):
            ax.text(0.5, 0.5, "no place and route (--no-pnr)", ha="center", va="center", transform=ax.transAxes)
        for r, m in zip(rows, marks):
            if r.get(x) is None or r.get(y) is None:
                continue
            ax.scatter(r[x], r[y], s=30 + 6 * r["n_pe"], color=colours[r["scheme"]], alpha=0.75,
                       edgecolors="black" if m else "none", linewidths=1.5 if m else 0)
            ax.annotate(r["label"], (r[x], r[y]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            spread = _seed_fmax(r) if y == "fmax_mhz" else []
            if len(spread) > 1:  # several seeds: the range their Fmax spans
                ax.vlines(r[x], min(spread), max(spread), color=colours[r["scheme"]], alpha=0.6, linewidth=2)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in colours.items()]
    handles.append(plt.Line2D([], [], marker="o", ls="", color="white", markeredgecolor="black", label="Pareto-optimal"))
    seeds = "; bars: Fmax over the nextpnr seeds" if any(len(_seed_fmax(r)) > 1 for r in rows) else ""
    fig.suptitle(f"mintaccel sweep on {target}: marker size ~ N_PE; energy is an estimate{seeds}", y=0.99)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 0.965), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run_sweep(points: list[Point], target, out: Path, *, epochs: int, hidden: int, seed: int, pnr: bool = True,
              weight_memory: str = "auto", seeds=None, hw=None, workers: int = 1, address: str | None = None,
              fresh: bool = False, progress=None, on_skip=None, say=None):
    """Train every format once, then build, synthesize and simulate every point, as jobs on Ray
    (mintaccel.core.jobs: `workers` at once, or the cluster at `address`) in `<out>/jobs/`, where a
    rerun finds the finished ones (`fresh`: run all again). Returns (rows in the points' order,
    the two runs' RunReports). A point the device cannot hold or a tool gives up on is left out, its
    one-line reason passed to `on_skip`; a job that fails is in its report's failures.
    `progress(outcome)` after each job (training, then points)."""
    from mintaccel.core.jobs import Job, run_jobs, session
    from mintaccel.flows import nextpnr

    out = Path(out)
    root = out / "jobs"
    formats = list(dict.fromkeys((p.weights, p.scheme, p.weight_bits, p.membrane_bits) for p in points))
    configs = {f: train_config(Point(0, f[1], f[2], f[3]), epochs, hidden, seed) for f in formats}
    train_jobs = [Job("train", f"{f[0]}-m{f[3]}: training", train_job, {"config": configs[f].to_json()})
                  for f in formats]
    with session(workers, address, say) as ray_session:
        common = dict(fresh=fresh, progress=progress, session=ray_session)
        trained = run_jobs(train_jobs, root, **common)
        models = {f: o.result["model"] for f, o in zip(formats, trained.outcomes) if o.result is not None}
        jobs = [Job("point", p.label, point_job,
                    {"point": dataclasses.asdict(p), "target": target.name, "model": models[key],
                     "weight_memory": weight_memory, "hw": hw or {}, "pnr": pnr,
                     "seeds": list(seeds or (nextpnr.PNR_SEED,))}, files=(models[key],))
                for p in points if (key := (p.weights, p.scheme, p.weight_bits, p.membrane_bits)) in models]
        built = run_jobs(jobs, root, **common)
    for r in (trained, built):  # Ray's start-up on the first run that started it
        if r.engine != "cache":
            r.startup_seconds = ray_session.startup_seconds
            break
    rows = []
    for o in built.outcomes:
        if o.result is None:
            continue
        if "skipped" in o.result:
            if on_skip:
                on_skip(o.result["skipped"])
            continue
        rows.append(dict(o.result["row"]))
    if rows:
        write_csv(rows, out / "sweep.csv")
    return rows, (trained, built)
