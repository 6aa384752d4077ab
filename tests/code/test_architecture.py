"""The shape of the code: imports run downward only, the config sits at the bottom, and modules
and functions stay small enough to read. Pure ``ast``: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mtl.codedeps import _imported_units
from tests.conftest import REPO

PACKAGE = REPO / "mtl"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every mtl module ``module`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= {m for m, _ in _imported_units(node, module, path.name == "__init__.py")}
    return found - {module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v] & graph.keys():
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                cycles.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_imports_run_downward_no_cycles():
    graph = {m: _imports(m, p) for m, p in _modules().items()}
    assert _cycles(graph) == []
    # and the check can fail: a planted back edge is found
    graph["mtl.names"] = graph["mtl.names"] | {"mtl.config"}
    (cycle,) = _cycles(graph)
    assert {"mtl.config", "mtl.names"} <= set(cycle)


# The layers, bottom first (README "Architecture"): a module imports only its own layer or lower.
LAYERS = [
    {"mtl", "data", "names", "registry", "paths", "stats", "hashing", "runstate", "handoffs", "progress", "locks"},
    {"config"},
    {"data.columns"},
    {"data.features"},
    {"data.ingest", "data.contracts"},
    {"evaluation", "models"},
    {"training"},
    {"scoring", "tracking"},
    {"promotion", "serving"},
    {"stages"},
    {"orchestration", "workspaces", "tuning", "stagelist", "codedeps", "registry_cli", "pipeline", "scaffold", "maintenance",
     "cli"},
]
RANK = {group: rank for rank, groups in enumerate(LAYERS) for group in groups}


def _group(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "mtl"
    return ".".join(parts[1:3]) if parts[1] == "data" and len(parts) > 2 else parts[1]


def test_every_module_sits_in_a_layer_and_imports_only_downward():
    upward = []
    for name, path in _modules().items():
        assert _group(name) in RANK, f"{name}: add its group to LAYERS"
        for dep in _imports(name, path):
            if RANK[_group(dep)] > RANK[_group(name)]:
                upward.append(f"{name} -> {dep}")
    assert upward == []


def test_the_config_imports_nothing_above_it():
    """Stages, models, adapters and training build on the config; it knows only the registries'
    names (mtl/names.py), which import nothing."""
    modules = _modules()
    for name, path in modules.items():
        if name == "mtl.config" or name.startswith("mtl.config."):
            outside = {m for m in _imports(name, path) if not m.startswith("mtl.config.")}
            assert outside <= {"mtl.names"}, f"{name} imports {outside}"
    assert _imports("mtl.names", modules["mtl.names"]) == set()


def test_no_module_or_function_is_too_long_to_read():
    long_modules, long_functions = set(), set()
    for path in _modules().values():
        rel = str(path.relative_to(REPO))
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long_modules.add(rel)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    long_functions.add(f"{rel}:{node.name}")
    assert long_modules == set(), f"over {MAX_MODULE_LINES} lines: split them"
    assert long_functions == set(), f"over {MAX_FUNCTION_LINES} lines: split them"


@pytest.mark.parametrize("dag", sorted((REPO / "dags").glob("*.py")), ids=lambda p: p.name)
def test_dags_read_params_through_the_typed_config(dag):
    """No DAG reads params.yaml as a raw dict with defaults of its own."""
    text = dag.read_text()
    assert "read_config(PROJECT_DIR)" in text
    raw_reads = [s for s in ("read_params", "import yaml", "safe_load", '.get("airflow")') if s in text]
    assert raw_reads == []
