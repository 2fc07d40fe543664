"""The per-event energy table (docs/energy.md), its JSON override, and the estimate built from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mintaccel.core.errors import UserError
from mintaccel.sim.cycle import simulate
from mintaccel.sim.energy import DEFAULT, DEFAULT_TABLE, estimate, load_table


def test_default_table_reproduces_the_published_figures():
    assert DEFAULT.add(8) == pytest.approx(0.03)
    assert DEFAULT.add(16) == pytest.approx(0.05)
    assert DEFAULT.add(32) == pytest.approx(0.1)
    assert DEFAULT.mult(8) == pytest.approx(0.2)
    assert DEFAULT.mult(32) == pytest.approx(3.1)
    assert DEFAULT.sram(8 * 1024, 64) == pytest.approx(10)
    assert DEFAULT.sram(32 * 1024, 64) == pytest.approx(20)
    assert DEFAULT.sram(1024 * 1024, 64) == pytest.approx(100)
    assert DEFAULT.sram(8 * 1024, 16) == pytest.approx(2.5)          # per bit
    widths = [2, 4, 8, 9, 12, 16, 24, 32, 48]
    for f in (DEFAULT.add, DEFAULT.mult):
        values = [f(b) for b in widths]
        assert all(a < b for a, b in zip(values, values[1:]))
    sizes = [16, 256, 8192, 20000, 32768, 2**20, 2**22]
    values = [DEFAULT.sram(s, 64) for s in sizes]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_worked_example_energy_by_hand(worked):
    model, x, cfg = worked
    r = simulate(model, x, cfg)
    est = estimate(r)
    acc = cfg.accumulator_bits
    add = DEFAULT.add(acc)
    pe = 21 * add + 7 * add                     # nonzero and zero-weight lane additions
    tu = 32 * add + 16 * add + 48 * add         # additions, shifts, comparisons (factors 1)
    assert est.blocks["pe_array"]["pj"] == pytest.approx(pe)
    assert est.blocks["threshold_unit"]["pj"] == pytest.approx(tu)
    assert est.compute_pj == pytest.approx(pe + tu)
    word = cfg.n_pe * cfg.weight_bits  # one memory, the lanes side by side
    assert est.blocks["weight_memory"]["pj"] == pytest.approx(14 * DEFAULT.sram(cfg.weight_depth * word / 8, word))
    assert est.total_pj == pytest.approx(est.compute_pj + float(est.control[0]) + float(est.memory[0]))
    # MINT vs vanilla: one rescaling multiply (acc x 8-bit ratio) per membrane update
    mult = DEFAULT.mult(acc, 8)
    assert est.vanilla_compute_pj == pytest.approx(pe + tu + 16 * mult)
    assert est.compute_ratio == pytest.approx((pe + tu) / (pe + tu + 16 * mult))
    assert est.per_sop(est.compute_pj) == pytest.approx((pe + tu) / 21)


def test_override_from_a_file(tmp_path, worked):
    model, x, cfg = worked
    r = simulate(model, x, cfg)
    base = estimate(r)
    path = tmp_path / "t.json"
    doubled = {k: 2 * v for k, v in DEFAULT_TABLE["int_add_pj"].items()}
    path.write_text(json.dumps({"_comment": "twice the adds", "int_add_pj": doubled}))
    t = load_table(path)
    assert t.source == str(path)
    assert t.add(8) == pytest.approx(0.06) and t.mult(8) == pytest.approx(0.2)
    assert estimate(r, t).compute_pj == pytest.approx(2 * base.compute_pj)
    assert estimate(r, t).memory[0] == pytest.approx(base.memory[0])
    # a one-point table scales linearly (adds), zero-weight additions can be clock-gated away
    path.write_text(json.dumps({"int_add_pj": {"10": 1.0}, "zero_add_factor": 0}))
    t = load_table(path)
    assert t.add(20) == pytest.approx(2.0)
    assert estimate(r, t).blocks["pe_array"]["pj"] == pytest.approx(21 * t.add(cfg.accumulator_bits))
    assert DEFAULT.add(8) == pytest.approx(0.03)  # the default is untouched


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"int_add_pj": {"8": 0.03}, "fp64_add_pj": 1}', "unknown entry 'fp64_add_pj'"),
    ('{"int_add_pj": {"eight": 0.03}}', "key 'eight'"),
    ('{"int_add_pj": {"8": -1}}', "positive number"),
    ('{"int_add_pj": 0.03}', "non-empty object"),
    ('{"sram_read_64bit_pj": {}}', "non-empty object"),
    ('{"shift_factor": "half"}', "'shift_factor' must be a number"),
    ('{"rescale_ratio_bits": 0}', "rescale_ratio_bits"),
    ('{"fp32_add_pj": true}', "'fp32_add_pj' must be a positive"),
])
def test_bad_files_are_one_line_user_errors(tmp_path, content, match):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as e:
        load_table(path)
    assert match in str(e.value) and "\n" not in str(e.value)
    assert str(path) in str(e.value)


def test_mint_saves_over_vanilla_on_the_shipped_model(shipped_model):
    rng = np.random.default_rng(2)
    x = (rng.random((8, shipped_model.timesteps, 64)) < 0.3).astype(np.uint8)
    r = simulate(shipped_model, x)
    est = estimate(r)
    assert est.vanilla_compute_pj > est.compute_pj > 0
    assert est.vanilla_total_pj > est.total_pj > est.compute_pj
    assert est.per_sop_rescale_compute_ratio < est.compute_ratio < 1
    d = est.to_json()
    assert d["estimate"] is True
    assert sum(b["pj"] for b in d["blocks"].values()) == pytest.approx(d["total_pj"])
    assert sum(sum(l.values()) for l in d["per_layer"]) == pytest.approx(d["total_pj"])
