"""PNG figures of a simulated batch: energy breakdown (estimate), cycles per layer and step, spike raster.

Figures are built with matplotlib's object API (no pyplot, no global state) and returned as PNG bytes,
so a caller can write them atomically.
"""

from __future__ import annotations

import io

import numpy as np

from mintaccel.sim.cycle.controller import CycleResult
from mintaccel.sim.energy import EnergyEstimate

KIND_COLOURS = {"compute": "tab:blue", "control": "tab:orange", "memory": "tab:green"}
PHASE_LABELS = {"setup": "SETUP", "encode": "ENCODE", "group_start": "START", "acc": "ACC",
                "group_drain": "ACC drain", "wait": "WAIT", "fire": "FIRE", "drain": "DRAIN"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def energy_png(est: EnergyEstimate, title: str = "") -> bytes:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=(3, 2))
    names = sorted(est.blocks, key=lambda n: est.blocks[n]["pj"])
    values = [est.blocks[n]["pj"] for n in names]
    ax.barh(names, values, color=[KIND_COLOURS[est.blocks[n]["kind"]] for n in names])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    ax.set_xlabel("pJ per inference (estimate)")
    ax.set_title("energy by block (estimate, 45 nm table)")
    ax.set_xlim(0, max(values, default=1) * 1.2)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=c, label=k) for k, c in KIND_COLOURS.items()], loc="lower right", fontsize=8)
    labels = ["MINT\ncompute", "vanilla\ncompute", "MINT\ntotal", "vanilla\ntotal"]
    vals = [est.compute_pj, est.vanilla_compute_pj, est.total_pj, est.vanilla_total_pj]
    bx.bar(labels, vals, color=["tab:blue", "tab:gray", "tab:blue", "tab:gray"])
    for x, v in enumerate(vals):
        bx.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    bx.set_ylabel("pJ per inference (estimate)")
    bx.set_title(f"MINT vs vanilla uniform (estimate)\ncompute x{est.compute_ratio:.2f}, "
                 f"with memory x{est.total_ratio:.2f}", fontsize=10)
    if title:
        fig.suptitle(title)
    return _png(fig)


def cycles_png(result: CycleResult, clock_mhz: float, title: str = "") -> bytes:
    from matplotlib.figure import Figure
    ph = result.phases
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    per = ph.layer_step.mean(axis=0)  # [T, L]
    steps = np.arange(per.shape[0])
    bottom = np.zeros(len(steps))
    for l in range(per.shape[1]):
        ax.bar(steps, per[:, l], bottom=bottom, label=f"layer {l}")
        bottom += per[:, l]
    ax.bar(steps, ph.output.mean(axis=0), bottom=bottom, label="OUTPUT", color="tab:gray")
    ax.set_xlabel("time step")
    ax.set_ylabel("cycles (mean over samples)")
    ax.set_title(f"cycles per layer and step; {result.cycles.mean():,.0f} per inference "
                 f"= {result.cycles.mean() / clock_mhz:,.1f} us at {clock_mhz:g} MHz", fontsize=9)
    ax.legend(fontsize=8)
    layers = np.arange(per.shape[1])
    bottom = np.zeros(len(layers))
    for name in ph.PHASES:
        v = getattr(ph, name).sum(axis=1).mean(axis=0)
        bx.bar(layers, v, bottom=bottom, label=PHASE_LABELS[name])
        bottom += v
    bx.set_xticks(layers, [f"layer {l}" for l in layers])
    bx.set_ylabel("cycles per inference (mean)")
    bx.set_title("phases per layer", fontsize=9)
    bx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _png(fig)


def raster_png(result: CycleResult, sample: int = 0, title: str = "") -> bytes:
    from matplotlib.figure import Figure
    act = result.activity
    arrays = [act.inputs[sample]] + [s[sample] for s in result.spikes]  # each [T, n]
    names = ["input"] + [f"layer {l}" for l in range(len(result.spikes))]
    fig = Figure(figsize=(3 + 2.2 * len(arrays), 4.2), layout="constrained")
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, a, name in zip(axes, arrays, names):
        ax.imshow(a.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                  extent=(-0.5, a.shape[0] - 0.5, -0.5, a.shape[1] - 0.5))
        ax.set_xlabel("time step")
        ax.set_title(f"{name}: {int(a.sum())} spikes", fontsize=9)
    axes[0].set_ylabel("neuron / input index")
    fig.suptitle(title or f"spike raster, sample {sample}")
    return _png(fig)
