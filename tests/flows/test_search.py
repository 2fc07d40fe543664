"""flows/search.py and `mintaccel search`: the Pareto marks, the retrain command, the bits of a mix, one-line
errors; a tiny real search on Ray Tune (digits, 1 epoch) and its rerun from the cache."""

from __future__ import annotations

import json
import shlex

import pytest

from mintaccel.cli import build_parser
from mintaccel.cli.commands import train_config
from mintaccel.core.errors import UserError
from mintaccel.flows import search
from mintaccel.model_export.qat import LayerSpec, TrainConfig
from tests.flows.common import assert_one_line_error, mintaccel


def test_pareto_in_the_objectives():
    rows = [{"accuracy": 0.9, "energy_nj": 1.0}, {"accuracy": 0.95, "energy_nj": 2.0},
            {"accuracy": 0.9, "energy_nj": 1.5}, {"accuracy": 0.96, "energy_nj": 2.0}]
    assert search.pareto(rows, {"accuracy": "max", "energy_nj": "min"}) == [True, False, False, True]


def test_retrain_command_trains_the_same_configuration():
    base = TrainConfig(dataset="digits", hidden=(32,), epochs=7, seed=3, timesteps=6, threshold=1.5, reset="soft",
                       float_init_epochs=2)
    cfg = search.trial_config(base, {"w0": "pot:3", "m0": "4", "w1": "binary", "m1": "2"})
    assert cfg.layers == (LayerSpec("pot:3", "4"), LayerSpec("binary", "2"))
    words = shlex.split(search.retrain_command(cfg, "x.npz"))
    assert words[:2] == ["mintaccel", "train"] and words[-2:] == ["--export", "x.npz"]
    args = build_parser().parse_args(words[1:])
    assert train_config(args) == cfg


def test_weight_bits_of_a_mix():
    from tests.conftest import random_model
    model = random_model(5, sizes=(12, 9, 5))
    avg, n = search.weight_bits(model)
    a, b = model.neuron_layers
    assert n == 12 * 9 + 9 * 5
    assert avg == (108 * a.weight_format.bits + 45 * b.weight_format.bits) / 153


def test_check_refuses_bad_choices():
    base = TrainConfig()
    with pytest.raises(UserError, match="--formats ternary: choose from"):
        search.check(search.SearchConfig(formats=("ternary",)), base)
    with pytest.raises(UserError, match="--membranes 5: choose from 2 3 4 8"):
        search.check(search.SearchConfig(membranes=("5",)), base)


@pytest.mark.parametrize("args, match", [
    (["--formats", "uniform:5"], "--formats uniform:5: choose from"),
    (["--membranes", "1"], "--membranes 1: choose from 2 3 4 8"),
    (["--trials", "0"], "argument --trials: must be in 1..10000, not 0"),
    (["--jobs", "0"], "argument --jobs: must be in 1..4096, not 0"),
    (["--address", " "], "--address is empty"),
    (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers there"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent"], "/nonexistent"),
], ids=["format", "membranes", "trials", "jobs", "address", "no-cluster", "data"])
def test_bad_search_is_one_line_and_leaves_nothing(tmp_path, args, match):
    r = mintaccel("search", *args, "--out", tmp_path / "s")
    assert_one_line_error(r, match)
    assert not (tmp_path / "s").exists()


def test_tiny_search_on_ray_and_its_rerun(tmp_path):
    base = TrainConfig(dataset="digits", hidden=(8,), epochs=1)
    cfg = search.SearchConfig(trials=3, formats=("uniform:2", "binary", "pot:4"), membranes=("2", "8"))
    said = []
    first = search.run_search(base, cfg, tmp_path, workers=2, progress=said.append)
    rows = first["rows"]
    assert first["engine"] == "ray" and first["startup_seconds"] > 0 and not first["failed"]
    assert 1 <= len(rows) <= 3 and len(said) == 3 and first["float"]["accuracy"] > 0
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and r["energy_nj"] > 0 and r["cycles"] > 0
        assert r["compression"] == pytest.approx(32 / r["avg_weight_bits"])
        assert {w for w in r["weights"].split()} <= set(cfg.formats) and (tmp_path / "jobs").is_dir()
        meta = json.loads(json.dumps(r))  # JSON-able as written to pareto.json
        assert meta["retrain"].startswith("mintaccel train --dataset digits --hidden 8 --weights ")
    assert any(r["pareto"] for r in rows)
    again = search.run_search(base, cfg, tmp_path, workers=2)
    assert again["earlier"] == len(rows)
    cached = {(r["weights"], r["membranes"], r["accuracy"]) for r in again["rows"] if r["cached"]}
    assert cached >= {(r["weights"], r["membranes"], r["accuracy"]) for r in rows}


def test_plot_keeps_a_failed_trial_on_the_edge(tmp_path):
    rows = [{"accuracy": a, "float_accuracy": 0.97, "energy_nj": e, "avg_weight_bits": b, "pareto": p}
            for a, e, b, p in ((0.96, 1.0, 2.0, True), (0.97, 2.0, 3.0, True), (0.1, 3.0, 8.0, False))]
    search.plot(rows, tmp_path / "p.png", "t", {"accuracy": "max", "energy_nj": "min"})
    assert (tmp_path / "p.png").stat().st_size > 10_000 and not list(tmp_path.glob(".*tmp*"))
