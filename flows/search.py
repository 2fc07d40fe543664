"""The per-layer precision search (`mintaccel search`): a Ray Tune multi-objective search, with Optuna's
TPE sampler, over each neuron layer's weight format (uniform 2/3/4/8, power-of-two 2/3/4, binary) and
membrane bits (2/3/4/8), for accuracy, energy per inference (the cycle simulator's estimate) and, when
asked, LUTs (Yosys synthesis, no place and route).

Every trial trains its mix (quantization-aware, the base configuration's data set, architecture and
schedule), exports the integer model and runs the cycle simulator on the test split. A trial is a job
of mintaccel.core.jobs: its folder `<out>/jobs/trial-<hash>` (named by the configuration, the tool
versions and mintaccel's source) holds its model, log and result, so a repeated or resumed search
takes finished trials from there: earlier trials of the same base are handed to the sampler first
(they cost a cache read) and only the rest of `--trials` train. The float twin (same network, float
weights and membranes) is one job too: the reference for "within 1 point". docs/jobs.md.

Why TPE: with tens of trials (each minutes of training) a model-based sampler finds the front sooner
than a genetic one (NSGA-II needs a population of tens per generation); Optuna's TPE is multi-objective
(MOTPE) and seeded, and OptunaSearch runs it inside Tune.
"""

from __future__ import annotations

import csv
import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

from mintaccel.core.errors import UserError

#: The weight formats and membrane widths a layer may take (the issue's list; all multiplier-free).
FORMATS = ("uniform:2", "uniform:3", "uniform:4", "uniform:8", "pot:2", "pot:3", "pot:4", "binary")
MEMBRANES = ("2", "3", "4", "8")
OBJECTIVES = {"accuracy": "max", "energy_nj": "min", "luts": "min"}
COLUMNS = ("trial", "weights", "membranes", "accuracy", "float_accuracy", "energy_nj", "luts", "avg_weight_bits",
           "compression", "cycles", "train_seconds", "pareto", "model", "retrain")


@dataclass(frozen=True)
class SearchConfig:
    """What a search explores and measures; the base training configuration is separate (TrainConfig)."""

    trials: int = 40
    """Trials in all, the earlier finished ones of the same base included."""
    formats: tuple[str, ...] = FORMATS
    """Weight formats a layer may take (model_export/quantizers.py spellings)."""
    membranes: tuple[str, ...] = MEMBRANES
    """Membrane widths a layer may take (bits)."""
    n_pe: int = 8
    """Processing elements of the build the energy (and LUTs) are measured on."""
    luts: bool = False
    """Also synthesize every trial (Yosys, no place and route) for LUTs: about a minute each."""
    target: str = "ice40-up5k"
    """FPGA of the LUT objective."""
    seed: int = 0
    """The sampler's seed (training seeds are the base configuration's)."""

    @property
    def objectives(self) -> dict:
        return {k: v for k, v in OBJECTIVES.items() if k != "luts" or self.luts}


def check(search: SearchConfig, base) -> None:
    """One-line errors for a search that cannot run, before anything starts."""
    if search.trials < 1:
        raise UserError("--trials must be at least 1")
    bad = [f for f in search.formats if f not in FORMATS]
    if bad:
        raise UserError(f"--formats {' '.join(bad)}: choose from {' '.join(FORMATS)}")
    bad = [m for m in search.membranes if m not in MEMBRANES]
    if bad:
        raise UserError(f"--membranes {' '.join(bad)}: choose from {' '.join(MEMBRANES)}")
    if base.n_neuron_layers < 1:
        raise UserError("the network has no neuron layer to search")


def space(search: SearchConfig, layers: int) -> dict:
    """Optuna's distributions: `w<l>` and `m<l>` per neuron layer l."""
    from optuna.distributions import CategoricalDistribution
    out = {}
    for l in range(layers):
        out[f"w{l}"] = CategoricalDistribution(list(search.formats))
        out[f"m{l}"] = CategoricalDistribution(list(search.membranes))
    return out


def trial_config(base, params: dict):
    """The base TrainConfig with the trial's per-layer formats."""
    from mintaccel.model_export.qat import LayerSpec
    n = base.n_neuron_layers
    return dataclasses.replace(base, layers=tuple(LayerSpec(params[f"w{l}"], params[f"m{l}"]) for l in range(n)))


def retrain_command(cfg, export: str = "MODEL.npz") -> str:
    """The `mintaccel train` command that trains this configuration again."""
    from mintaccel.model_export.qat import TrainConfig
    d = TrainConfig()
    parts = ["mintaccel train", f"--dataset {cfg.dataset}"]
    parts.append(f"--arch {cfg.arch}" if cfg.arch else f"--hidden {' '.join(map(str, cfg.hidden))}")
    parts.append("--weights " + " ".join(l.weights for l in cfg.layers))
    parts.append("--membrane " + " ".join(l.membrane for l in cfg.layers))
    parts.append(f"-T {cfg.timesteps} --reset {cfg.reset} --leak {cfg.leak} --threshold {cfg.threshold:g}")
    parts.append(f"--epochs {cfg.epochs} --batch-size {cfg.batch_size} --lr {cfg.lr:g} --seed {cfg.seed} "
                 f"--threads {cfg.threads}")
    for name, flag in (("float_init_epochs", "--float-init-epochs"), ("augment_shift", "--augment-shift"),
                       ("data_dir", "--data-dir")):
        if getattr(cfg, name) != getattr(d, name):
            parts.append(f"{flag} {getattr(cfg, name)}")
    return " ".join(parts) + f" --export {export}"


def weight_bits(model) -> tuple[float, int]:
    """(average storage bits per weight over all weights, weight count)."""
    layers = model.neuron_layers
    n = sum(l.weight.size for l in layers)
    return sum(l.weight.size * l.weight_format.bits for l in layers) / n, n


# ---------------------------------------------------------------- jobs

def trial_job(inputs: dict, folder: Path) -> dict:
    """Job: train one mix, export it to `<folder>/model.npz`, simulate it on the test split (energy,
    cycles) and, with `luts`, synthesize it (`<folder>/build`)."""
    from mintaccel.core.hwconfig import HwConfig
    from mintaccel.model_export import datasets
    from mintaccel.model_export.format import save_model
    from mintaccel.model_export.qat import TrainConfig
    from mintaccel.model_export.train import train
    from mintaccel.sim.cycle import simulate
    from mintaccel.sim.encoding import rate_encode
    from mintaccel.sim.energy import estimate

    cfg = TrainConfig.from_json(inputs["config"])
    split = datasets.load(cfg.dataset, cfg.data_dir, seed=datasets.DEFAULT_SEED)
    result = train(cfg, split=split)
    model = result.net.to_int_model(result.encoding, {"trained_with": cfg.to_json(), "split": result.split,
                                                      "test_accuracy": result.test_accuracy})
    save_model(model, folder / "model.npz")
    hw = HwConfig.for_model(model, n_pe=inputs["n_pe"])
    sim = simulate(model, rate_encode(split.x_test, model.timesteps, split.levels), hw)
    avg, n = weight_bits(model)
    out = {"accuracy": result.test_accuracy, "energy_nj": estimate(sim).total_pj / 1000,
           "cycles": float(sim.phases.total.mean()), "avg_weight_bits": avg, "weights": n,
           "compression": 32 / avg, "train_seconds": round(result.seconds, 2), "model": str(folder / "model.npz"),
           "luts": None}
    if inputs["luts"]:
        from mintaccel.flows.flow import run_flow
        from mintaccel.flows.targets import get_target
        report = run_flow(hw, model, get_target(inputs["target"]), folder / "build", breakdown=False, pnr=False)
        out["luts"] = report["synthesis"]["luts"]
    return out


def float_job(inputs: dict, folder: Path) -> dict:
    """Job: the float twin's test accuracy."""
    from mintaccel.model_export.qat import TrainConfig
    from mintaccel.model_export.train import train
    result = train(TrainConfig.from_json(inputs["config"]))
    return {"accuracy": result.test_accuracy, "train_seconds": round(result.seconds, 2)}


def float_twin(base):
    from mintaccel.model_export.qat import LayerSpec
    return dataclasses.replace(base, layers=(LayerSpec("float", "float"),))  # as `train --float-baseline`


def _trial_inputs(cfg, search: SearchConfig) -> dict:
    return {"config": cfg.to_json(), "n_pe": search.n_pe, "luts": search.luts, "target": search.target}


def trial_job_for(cfg, search: SearchConfig):
    from mintaccel.core.jobs import Job
    label = " ".join(f"{l.weights}/m{l.membrane}" for l in cfg.layers)
    return Job("trial", label, trial_job, _trial_inputs(cfg, search))


def tune_trial(config: dict, base_json: dict, search_json: dict, root: str, fresh: bool) -> None:
    """Tune's trainable: the trial's job, from the cache when it finished before, then its metrics."""
    from ray import tune

    from mintaccel.core.jobs import run_here
    from mintaccel.model_export.qat import TrainConfig
    search = SearchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in search_json.items()})
    cfg = trial_config(TrainConfig.from_json(base_json), config)
    outcome = run_here(trial_job_for(cfg, search), Path(root), fresh=fresh)
    if outcome.result is None:
        raise RuntimeError(f"trial failed: {outcome.error} (log {outcome.log})")
    r = outcome.result
    tune.report({k: (r[k] if r[k] is not None else 0) for k in search.objectives}
                | {"cached": outcome.cached, "folder": str(outcome.folder)})


def earlier_trials(root: Path, base, search: SearchConfig) -> list[dict]:
    """Parameters of the finished trials in `root` that this search could have run (same base and
    measures, formats within the search's choices), in folder-name order."""
    import json

    from mintaccel.core.jobs import job_folder
    from mintaccel.model_export.qat import TrainConfig
    found = []
    for path in sorted(Path(root).glob("trial-*/job.json")):
        try:
            inputs = json.loads(path.read_text())["inputs"]
            cfg = TrainConfig.from_json(inputs["config"])
        except (OSError, ValueError, KeyError, UserError):
            continue
        if not (path.parent / "result.json").is_file():
            continue
        params = {}
        for l, spec in enumerate(cfg.layers):
            params[f"w{l}"], params[f"m{l}"] = spec.weights, spec.membrane
        # the key (inputs, versions) must match this search's; the base is all but the layers' formats
        same_base = dataclasses.replace(cfg, layers=base.layers) == base
        if (same_base and len(cfg.layers) == base.n_neuron_layers
                and all(params[f"w{l}"] in search.formats and params[f"m{l}"] in search.membranes
                        for l in range(len(cfg.layers)))
                and job_folder(root, trial_job_for(cfg, search)) == path.parent.resolve()):
            found.append(params)
    return found


def run_search(base, search: SearchConfig, out: Path, *, workers: int = 2, address: str | None = None,
               fresh: bool = False, progress=None, say=None) -> dict:
    """The float twin, then `search.trials` trials on Ray Tune; returns {"rows", "float", "jobs", ...}.
    `progress(label)` after each trial."""
    import json
    import os
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no Tune banner on the user's terminal
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from mintaccel.core.jobs import Job, run_jobs, session
    from mintaccel.model_export.qat import TrainConfig
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    out = Path(out).resolve()
    root = out / "jobs"
    check(search, base)
    earlier = [] if fresh else earlier_trials(root, base, search)[:search.trials]
    with session(workers, address, say) as ray_session:
        ray_session.ensure()
        # the float twin beside the first trials (a thread waiting on its Ray task), not before them
        twin_job = Job("float", "float twin", float_job, {"config": float_twin(base).to_json()})
        twin_box: list = []
        twin_thread = threading.Thread(target=lambda: twin_box.append(run_jobs([twin_job], root, fresh=fresh,
                                                                               session=ray_session)), daemon=True)
        twin_thread.start()
        n = base.n_neuron_layers
        sampler = optuna.samplers.TPESampler(seed=search.seed, multivariate=True,
                                             n_startup_trials=max(1, min(10, search.trials // 3)))
        searcher = OptunaSearch(space(search, n), metric=list(search.objectives), mode=list(search.objectives.values()),
                                sampler=sampler, points_to_evaluate=earlier or None)
        trainable = tune.with_resources(
            tune.with_parameters(tune_trial, base_json=base.to_json(), search_json=dataclasses.asdict(search),
                                 root=str(root), fresh=fresh), {"cpu": 1})
        from mintaccel.flows.search_progress import PROGRESS, Reporter
        if progress:
            PROGRESS[id(progress)] = progress
        callbacks = [Reporter(id(progress))] if progress else []
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=search.trials,
                                                                  max_concurrent_trials=ray_session.workers),
                           run_config=tune.RunConfig(name="search", storage_path=str(out / "tune"), verbose=0,
                                                     callbacks=callbacks))
        engine, workers, startup = ray_session.engine, ray_session.workers, ray_session.startup_seconds
        try:
            grid = tuner.fit()
            twin_thread.join()
        finally:
            PROGRESS.pop(id(progress), None)
    twin = twin_box[0] if twin_box else None
    if twin is None:
        raise RuntimeError("the float twin's job did not report (see the log in its folder)")
    rows, failed = [], []
    float_acc = twin.results[0]["accuracy"] if twin.results[0] else None
    for res in grid:
        if res.error is not None or not res.metrics or "folder" not in res.metrics:
            failed.append(str(res.error).splitlines()[0][:300] if res.error else "no result")
            continue
        folder = Path(res.metrics["folder"])
        r = json.loads((folder / "result.json").read_text())["result"]
        cfg = TrainConfig.from_json(json.loads((folder / "job.json").read_text())["inputs"]["config"])
        rows.append({"trial": len(rows), "weights": " ".join(l.weights for l in cfg.layers),
                     "membranes": " ".join(l.membrane for l in cfg.layers), "accuracy": r["accuracy"],
                     "float_accuracy": float_acc, "energy_nj": r["energy_nj"], "luts": r["luts"],
                     "avg_weight_bits": r["avg_weight_bits"], "compression": r["compression"], "cycles": r["cycles"],
                     "train_seconds": r["train_seconds"], "model": r["model"], "cached": bool(res.metrics["cached"]),
                     "retrain": retrain_command(cfg)})
    rows = _unique(rows)
    marks = pareto(rows, search.objectives)
    for r, m in zip(rows, marks):
        r["pareto"] = m
    return {"rows": rows, "float": twin.results[0], "failed": failed, "earlier": len(earlier),
            "startup_seconds": startup, "workers": workers, "engine": engine}


def _unique(rows: list[dict]) -> list[dict]:
    """One row per configuration (the sampler may propose a mix twice: its second trial is a cache hit)."""
    seen, out = set(), []
    for r in rows:
        key = (r["weights"], r["membranes"])
        if key not in seen:
            seen.add(key)
            out.append(dict(r, trial=len(out)))
    return out


def pareto(rows: list[dict], objectives: dict) -> list[bool]:
    """True for rows no other row dominates in the objectives (`max` / `min` each): the sweep's test."""
    from mintaccel.flows.sweep import pareto as undominated
    return undominated(rows, minimize=[k for k, m in objectives.items() if m == "min"],
                       maximize=[k for k, m in objectives.items() if m == "max"])


def write_csv(rows: list[dict], path: Path) -> None:
    from mintaccel.core.files import atomic_open
    with atomic_open(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else "" if v is None else int(v) if isinstance(v, bool) else v)
                        for k, v in r.items()})


def plot(rows: list[dict], path: Path, title: str, objectives: dict) -> None:
    """Accuracy against energy, average weight bits (and LUTs); the Pareto front ringed and joined."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [("energy_nj", "energy per inference (nJ, estimate)"), ("avg_weight_bits", "average weight bits")]
    if "luts" in objectives:
        xs.append(("luts", "LUTs (Yosys)"))
    fig, axes = plt.subplots(1, len(xs), figsize=(6 * len(xs), 4.8))
    float_acc = rows[0]["float_accuracy"] if rows else None
    accs = [100 * r["accuracy"] for r in rows]
    # a trial that did not learn would squash the rest into one line: it goes on the bottom edge (v)
    low = max(min(accs), max(accs) - 8) if accs else 0
    for ax, (x, label) in zip(axes, xs):
        for r in rows:
            acc = 100 * r["accuracy"]
            if acc < low:
                ax.scatter(r[x], low, s=70, marker="v", color="tab:red", zorder=4, clip_on=False)
                ax.annotate(f"{acc:.1f}%", (r[x], low), fontsize=7, xytext=(4, 4), textcoords="offset points")
                continue
            ax.scatter(r[x], acc, s=36, color="tab:blue" if r["pareto"] else "tab:gray",
                       edgecolors="black" if r["pareto"] else "none", alpha=0.85, zorder=3)
        ax.set_ylim(low, max(accs + [100 * float_acc if float_acc else 0]) + 0.3)
        front = sorted((r for r in rows if r["pareto"]), key=lambda r: r[x])
        if front:
            ax.plot([r[x] for r in front], [100 * r["accuracy"] for r in front], color="tab:blue", alpha=0.4)
        if float_acc is not None:
            ax.axhline(100 * float_acc, color="tab:green", ls="--", lw=1, label="float twin")
            ax.axhline(100 * float_acc - 1, color="tab:red", ls=":", lw=1, label="float - 1 point")
            ax.legend(loc="center right", fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
