"""The code in the documents runs as written, and docs/api.md names what `mintaccel` exports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import mintaccel

DOCS = Path(__file__).resolve().parents[1] / "docs"


def code_block(doc: str, heading: str) -> str:
    """The first ```python block after `heading` in docs/`doc`."""
    text = (DOCS / doc).read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_api_example_runs(capsys):
    ns: dict = {}
    exec(compile(code_block("api.md", "## Example"), "docs/api.md", "exec"), ns)
    trace, result = ns["trace"], ns["result"]
    assert all(np.array_equal(a, b) for a, b in zip(trace.spikes, result.spikes))
    assert (result.cycles > 0).all() and len(result.cycles) == 1797
    assert (trace.predictions == ns["digits"].target).mean() > 0.9
    assert re.fullmatch(r"\d+\.\d\d% right, \d+ cycles\n", capsys.readouterr().out)


def test_model_format_recipe_runs(monkeypatch):
    """docs/model-format.md "Reading it without mintaccel": numpy and json only."""
    monkeypatch.chdir(mintaccel.shipped_model_path().parent)
    ns: dict = {}
    exec(compile(code_block("model-format.md", "## Reading it without mintaccel"), "docs/model-format.md", "exec"), ns)
    model = mintaccel.load_model(mintaccel.shipped_model_path())
    assert all(np.array_equal(w, layer.weight) for w, layer in zip(ns["weights"], model.layers))


def test_api_page_names_what_the_package_exports():
    """Every row of the names table is exported from `mintaccel`, from the module the row says."""
    rows = re.findall(r"^\| `(\w+)[^`]*` \| `([\w.]+)` \|", (DOCS / "api.md").read_text(), re.M)
    assert {name: module for name, module in rows} == mintaccel._API
    for name, module in rows:
        assert getattr(mintaccel, name).__module__.startswith(module)


def test_import_mintaccel_is_light():
    """The API names load lazily: importing the package pulls in none of the heavy libraries."""
    code = "import sys, mintaccel; print(sorted(m for m in ('numpy', 'torch', 'amaranth') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
