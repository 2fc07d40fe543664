"""Readable terminal tables and progress (rich), plus the `--json` twin of every printed figure."""

from __future__ import annotations

import contextlib
import json
import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mintaccel.core.files import write_json

# Pipes and CI logs get a wide fixed width instead of rich's 80 columns, so tables are not truncated.
console = Console() if Console().is_terminal else Console(width=160)
err_console = Console(stderr=True)


def table(title: str, rows: list[tuple], columns: tuple[str, ...] = ("", "")) -> None:
    t = Table(title=title, title_justify="left", show_header=any(columns))
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(str(v) for v in row))
    console.print(t)


def maybe_json(path, data: dict) -> None:
    if path:
        write_json(path, data)
        err_console.print(f"figures written to {path}")


@contextlib.contextmanager
def progress(description: str, total: int):
    """A progress bar on stderr; yields `advance(n=1, **fields)`."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err_console, transient=False)
    with bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str = ""):
            bar.update(task, advance=n, info=info)

        yield advance


def percent(x: float) -> str:
    return f"{100 * x:.2f}%"


def recorded(value) -> str:
    """A fraction read from a model's free-form `meta`: a percentage if it is a number, else as written."""
    if value is None:
        return "not recorded"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return percent(value)
    return f"{json.dumps(value)} (as recorded, not a number)"


_SCHEME_NAMES = {"uniform": "uniform", "pot": "power-of-two", "binary": "binary"}


def formats_text(model) -> str:
    """The number formats in words: `2-bit uniform weights, 2-bit membranes` (per layer if they differ)."""
    per = {i: f"{l.weight_format.bits}-bit {_SCHEME_NAMES[l.weight_format.scheme]} weights, {l.membrane_bits}-bit membranes"
           for i, l in enumerate(model.layers) if hasattr(l, "weight_format")}  # pools and flatten have none
    if len(set(per.values())) == 1:
        return next(iter(per.values()))
    return "; ".join(f"layer {i}: {text}" for i, text in per.items())


def footprint_rows(fp: dict, fp8: dict | None = None) -> list[tuple]:
    """The memory split; `fp8`: the same network with 8-bit membranes (IntModel.footprint_bits(8))."""
    rows = [
        ("weights", f"{fp['weights']:,} bits"),
        ("membranes", f"{fp['membranes']:,} bits"),
        ("biases", f"{fp['biases']:,} bits"),
        ("total (quantized)", f"{fp['quantized']:,} bits ({fp['quantized'] / 8192:.2f} KiB)"),
        ("same in fp32", f"{fp['fp32']:,} bits ({fp['fp32'] / 8192:.2f} KiB)"),
        ("reduction vs fp32", percent(fp["reduction"])),
    ]
    if fp8 is not None:
        rows += [("same with 8-bit membranes", f"{fp8['quantized']:,} bits ({fp8['quantized'] / 8192:.2f} KiB)"),
                 ("reduction vs 8-bit membranes", percent(1 - fp["quantized"] / fp8["quantized"]))]
    return rows


def job_progress(advance, describe=None):
    """A run_jobs progress callback on a progress bar: one step per job, `describe(outcome)` (default:
    the job's label, `cached` or `failed`) beside it."""
    def on(outcome):
        what = describe(outcome) if describe else None
        if what is None:
            what = f"{outcome.job.label}: " + ("cached" if outcome.cached else "failed" if outcome.result is None else "done")
        advance(1, info=what)
    return on


def jobs_line(s: dict, what: str = "jobs") -> str:
    """One line on how a run_jobs run went (its RunReport.summary()): engine, workers, cached and failed
    jobs, Ray's start-up."""
    start = f", Ray started in {s['startup_seconds']:.1f} s" if s["startup_seconds"] else ""
    return (f"{s['jobs']} {what} on {s['engine']} ({s['workers']} workers{start}): {s['ran']} ran, "
            f"{s['cached']} from earlier runs (--fresh runs them again), {s['failed']} failed")


def job_failures(reports) -> None:
    """The failed jobs of run_jobs reports, with their logs, as a table (nothing if none failed)."""
    rows = [(o.job.label, o.error, str(o.log)) for r in reports for o in r.failures]
    if rows:
        table("failed jobs (the others ran on)", rows, ("job", "error", "log"))
