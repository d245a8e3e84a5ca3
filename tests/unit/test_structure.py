"""The structure the code keeps: the shared library is a tree of imports (no cycle, counting the imports inside
functions and under TYPE_CHECKING, which only hide one), and the catalog is data that imports no model."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers" / "shopstream" / "python"


def _modules(base: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in (base / package).rglob("*.py"):
        name = ".".join(path.relative_to(base).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imported(path: Path, name: str) -> Iterator[str]:
    """Every module an import of ``path`` names, wherever the import stands in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(base: Path, package: str) -> dict[str, set[str]]:
    modules = _modules(base, package)
    return {name: {target for target in _imported(path, name) if target in modules and target != name}
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_shared_library_has_no_import_cycle():
    assert cycles(import_graph(LIBRARY, "shopstream")) == []


def test_the_catalog_is_data_that_imports_no_model():
    graph = import_graph(LIBRARY, "shopstream")
    assert graph["shopstream.catalog"] == {"shopstream.event_table"}
    assert graph["shopstream.event_table"] == set()
    assert graph["shopstream.declarations"] == set()


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def later():\n    from pkg.c import thing\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.b", "pkg.c"]]


# The project's packages, lowest first: each may import those before it and none after it.
LAYERS = ("shopstream", "functions", "stacks", "local", "tools", "bench", "tests")
PLACES = {"shopstream": LIBRARY / "shopstream", "functions": ROOT / "functions", "stacks": ROOT / "stacks",
          "local": ROOT / "local", "tools": ROOT / "tools", "bench": ROOT / "bench", "tests": ROOT / "tests"}
SERVICES = frozenset(p.name for p in (ROOT / "functions").iterdir() if (p / "__init__.py").exists())


def _layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    return "functions" if top in SERVICES else top if top in PLACES else None


def layer_imports() -> dict[tuple[str, str], list[str]]:
    """(importer's layer, imported layer) -> the files, for every import between two layers."""
    found: dict[tuple[str, str], list[str]] = {}
    for layer, place in PLACES.items():
        for path in place.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                           [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module
                           else [])
                for module in modules:
                    target = _layer_of(module)
                    if target is not None and target != layer:
                        found.setdefault((layer, target), []).append(str(path.relative_to(ROOT)))
    return found


def test_each_layer_imports_only_the_layers_below_it():
    found = layer_imports()
    upward = {pair: files for pair, files in found.items() if LAYERS.index(pair[1]) > LAYERS.index(pair[0])}
    assert upward == {}


def test_no_service_imports_another():
    for service in SERVICES:
        for path in (ROOT / "functions" / service).rglob("*.py"):
            imported = {name.split(".")[0] for name in _imported(path, f"{service}.{path.stem}")}
            assert not (imported & SERVICES) - {service}, path
