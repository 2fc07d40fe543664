"""flows/sweep.py without the tools: the Pareto marks, the rows of a report with several seeds, the plot."""

from __future__ import annotations

import csv

import pytest

from mintaccel.flows import sweep
from mintaccel.flows.nextpnr import seed_summary


def _row(label, luts, latency, energy, accuracy, fmax=40.0, n_pe=8, scheme="uniform"):
    return {"label": label, "n_pe": n_pe, "scheme": scheme, "luts": luts, "latency_us": latency,
            "energy_nj": energy, "accuracy": accuracy, "fmax_mhz": fmax, "cycles": latency * fmax}


def test_pareto_marks_the_undominated_rows():
    rows = [_row("a", 1000, 50, 100, 0.90), _row("b", 2000, 30, 120, 0.90),  # a trade-off: both optimal
            _row("c", 2100, 60, 130, 0.85),  # worse than b in everything
            _row("d", 1000, 50, 100, 0.90)]  # equal to a: neither dominates the other
    assert sweep.pareto(rows) == [True, True, False, True]
    rows.append({**_row("e", 500, 10, 10, 0.99), "energy_nj": None})  # incomplete: never marked
    assert sweep.pareto(rows)[-1] is False


def test_latency_key_falls_back_to_cycles_without_pnr():
    rows = [_row("a", 1000, 50, 100, 0.9), {**_row("b", 900, 50, 100, 0.9), "latency_us": None}]
    assert sweep.latency_key(rows) == "cycles" and sweep.latency_key(rows[:1]) == "latency_us"


def _report(by_seed=None):
    pnr = {"seed": 1, "fmax_mhz": 31.5}
    if by_seed:
        pnr["by_seed"] = by_seed
    return {"synthesis": {"luts": 3000, "ffs": 900, "carry": 400, "bram": 7, "spram": 4, "dsp": 0},
            "generic": {"multipliers": 0}, "pnr": pnr,
            "performance": {"accuracy": 0.95, "cycles_per_inference": 1000.0, "latency_us": 1000 / 31.5},
            "energy": {"total_pj": 5000.0, "per_sop_pj": 3.0}, "build_dir": "b",
            "threshold_units": {"units": 4, "lanes_per_unit": 8}, "weight_memory": {"kind": "spram"}}


def test_row_of_a_report_with_several_seeds(tmp_path):
    point = sweep.Point(32, "uniform", 2, 2)
    runs = [{"seed": 1, "fmax_mhz": 31.5}, {"seed": 2, "fmax_mhz": 29.0}, {"seed": 3, "fmax_mhz": 35.0}]
    row = sweep.row_for(point, _report(seed_summary(runs)))
    assert (row["fmax_mhz"], row["fmax_min_mhz"], row["fmax_median_mhz"]) == (31.5, 29.0, 31.5)
    assert row["fmax_by_seed"] == "1:31.5 2:29.0 3:35.0"
    assert (row["spram"], row["weight_memory"], row["threshold_units"]) == (4, "spram", 4)
    assert sweep._seed_fmax(row) == [31.5, 29.0, 35.0]  # the plot's bar
    one = sweep.row_for(point, _report())
    assert (one["fmax_min_mhz"], one["fmax_median_mhz"], one["fmax_by_seed"]) == (31.5, 31.5, "1:31.5")
    sweep.write_csv([row, one], tmp_path / "s.csv")
    with open(tmp_path / "s.csv") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == list(sweep.COLUMNS) and got[0]["fmax_by_seed"] == "1:31.5 2:29.0 3:35.0"


@pytest.mark.parametrize("pnr", [True, False], ids=["pnr", "no-pnr"])
def test_plot_writes_a_png(tmp_path, pnr):
    rows = [{**_row("n8", 2000, 40, 300, 0.95), "fmax_by_seed": "1:40.0 2:38.5 3:None"},
            _row("n32", 3500, 12, 250, 0.95, n_pe=32, scheme="pot"),
            _row("n64", 6000, 8, 400, 0.94, n_pe=64)]
    if not pnr:
        rows = [{**r, "fmax_mhz": None, "latency_us": None} for r in rows]
    path = tmp_path / "pareto.png"
    sweep.plot(rows, path, "ice40-up5k")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.png"]  # no temporary left
