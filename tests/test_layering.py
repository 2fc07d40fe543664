"""The import graph of the installed package: dependencies run one way.

Every module of every package pyproject.toml installs is parsed with `ast`, so imports at any depth
count (function-level lazy imports included), and relative imports are resolved. Run this file with
`python tests/test_layering.py` to print the edges between subpackages.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The ground floor imports none of these.
ABOVE_CORE = {"hw", "sim", "flows", "model_export", "cli", "verify"}
#: Names that installed mintaccel before it was one package; another distribution may own them.
BARE = {"sim", "hw", "flows", "model_export", "tests"}
#: `python -m mintaccel` is the command itself, so it may import the CLI.
CLI_ENTRY_POINTS = {"mintaccel.__main__"}


def package_dirs() -> dict[str, Path]:
    """Installed package name -> source folder, as setuptools maps them (pyproject.toml)."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = tool.get("package-dir", {})
    dirs = {}
    for package in tool["packages"]:
        # a package's folder is its longest mapped ancestor's folder plus the rest of its name
        parts = package.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            if prefix in mapping:
                dirs[package] = ROOT / mapping[prefix] / Path(*parts[n:])
                break
        else:
            dirs[package] = ROOT / Path(*parts)
    return dirs


def modules() -> dict[str, Path]:
    """Every installed module name -> its source file."""
    found = {}
    for package, folder in package_dirs().items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _literal_import_module(node: ast.Call) -> str | None:
    """The module named by `importlib.import_module("x")` / `__import__("x")` with a literal name."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
            and isinstance(node.args[0].value, str) and not node.args[0].value.startswith("."):
        return node.args[0].value
    return None


def imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth."""
    is_package = path.stem == "__init__"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from mintaccel import cli` imports the subpackage mintaccel.cli
                full = f"{base}.{alias.name}"
                found.append((full if full in known else base, node.lineno))
        elif isinstance(node, ast.Call) and (name := _literal_import_module(node)):
            found.append((name, node.lineno))
    return found


def layer(module: str) -> str | None:
    """The subpackage of a mintaccel module (`core`, `cli`, ...), `root` for mintaccel itself, or
    None for a module outside the package."""
    parts = module.split(".")
    if parts[0] != "mintaccel":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in ABOVE_CORE | {"core"} else "root"


def graph() -> list[tuple[str, str, int, str]]:
    """(importer, imported, line, importer's file) for every import of the package."""
    mods = modules()
    known = set(mods)
    return [(m, target, line, str(path.relative_to(ROOT)))
            for m, path in mods.items() for target, line in imports(m, path, known)]


def subpackage_edges() -> dict[tuple[str, str], list[str]]:
    """(from subpackage, to subpackage) -> the importing modules, for edges between different ones."""
    edges = defaultdict(set)
    for importer, target, _, _ in graph():
        a, b = layer(importer), layer(target)
        if b is not None and a != b:
            edges[a, b].add(importer)
    return {k: sorted(v) for k, v in sorted(edges.items())}


def format_edges() -> str:
    return "\n".join(f"{a:>12} -> {b:<12} ({len(ms)} modules: {', '.join(ms)})"
                     for (a, b), ms in subpackage_edges().items())


def _violations(rule) -> list[str]:
    return [f"{file}:{line}: {importer} imports {target}" for importer, target, line, file in graph()
            if rule(importer, target)]


def test_every_python_folder_is_an_installed_package():
    """A folder missing from pyproject's package list would be absent from the wheel."""
    dirs = package_dirs()
    listed = {p.resolve() for p in dirs.values()}
    for folder in {dirs[p].resolve() for p in ("mintaccel.hw", "mintaccel.sim", "mintaccel.model_export",
                                              "mintaccel.flows", "mintaccel")}:
        for init in folder.rglob("__init__.py"):
            assert init.parent.resolve() in listed, f"{init.parent} is not in pyproject's package list"


def test_graph_sees_every_module_and_lazy_imports():
    """The scan itself: all subpackages found, and function-level imports counted (the CLI imports
    most subpackages inside its command functions)."""
    assert {layer(m) for m in modules()} == ABOVE_CORE | {"core", "root"}
    cli_targets = {layer(t) for i, t, _, _ in graph() if layer(i) == "cli"}
    assert {"sim", "hw", "flows", "model_export", "core"} <= cli_targets


def test_nothing_below_the_cli_imports_it():
    bad = _violations(lambda i, t: layer(t) == "cli" and layer(i) != "cli" and i not in CLI_ENTRY_POINTS)
    assert not bad, "\n".join(bad)


def test_core_imports_no_other_subpackage():
    bad = _violations(lambda i, t: layer(i) == "core" and layer(t) in ABOVE_CORE)
    assert not bad, "\n".join(bad)


def test_no_hw_sim_edge_either_way():
    print("\n" + format_edges())
    bad = _violations(lambda i, t: {layer(i), layer(t)} == {"hw", "sim"})
    assert not bad, "\n".join(bad)


def test_no_bare_import_of_an_old_top_level_name():
    bad = _violations(lambda i, t: t.split(".")[0] in BARE)
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    print(format_edges())
