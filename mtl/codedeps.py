"""The ``mtl/`` source files a stage's code can run, computed from its imports.

dvc.yaml's code dependencies used to be listed by hand, and went stale: no stage listed the
config or the stage module, so an edit there reran nothing and ``dvc repro`` called old results
up to date. Here they follow from the code, name by name rather than file by file, because the
modules import heavy libraries inside functions and a file-level closure would make every stage
depend on every file (an edit to a model would regenerate the data).

The unit is a top-level name of a module (a function, a class, an assigned constant). A name
depends on the file it is in, on its module's top-level imports (they run when it is imported),
on the same module's names it mentions, and on what its body imports, each imported name
analysed in turn; ``import mtl.x`` or ``from mtl import x`` takes all of ``x``. Registries map a
name to a ``"mtl.models.mmoe:MMoE"`` string (mtl/names.py) and import it on use: a function
that calls ``resolve`` depends on the registry strings it reaches, while code that only checks a
name against a registry (the config) does not. Importing a module also runs its packages'
``__init__.py``.

Pure ``ast``: nothing is imported, so this runs without torch or pandas.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the folder holding the mtl package
_REGISTERED = re.compile(r"^(mtl(?:\.\w+)+):(\w+)$")
_WHOLE = "*"  # a unit meaning every top-level name of a module


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` if it is part of ``mtl``, else None."""
    if name != "mtl" and not name.startswith("mtl."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@cache
def _module(name: str) -> tuple[dict[str, list[ast.AST]], list[ast.AST], bool]:
    """(top-level name -> its defining nodes, top-level import nodes, is a package)."""
    path = module_file(name)
    tree = ast.parse(path.read_text(), filename=str(path))
    names: dict[str, list[ast.AST]] = {}
    imports = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        names.setdefault(n.id, []).append(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
        elif isinstance(node, ast.If | ast.Try):  # e.g. `if TYPE_CHECKING:` blocks: their imports
            imports.extend(n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    return names, imports, path.name == "__init__.py"


def _imported_units(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> set[tuple[str, str]]:
    """The (module, name) units an import statement brings in (``mtl`` ones only)."""
    units: set[tuple[str, str]] = set()
    if isinstance(node, ast.Import):
        return {(a.name, _WHOLE) for a in node.names if module_file(a.name)}
    base = node.module or ""
    if node.level:  # relative: climb from this module's package
        package = (module if is_package else module.rpartition(".")[0]).split(".")
        base = ".".join([*package[: len(package) - (node.level - 1)], *([base] if base else [])])
    if not module_file(base):
        return units
    for alias in node.names:
        if module_file(f"{base}.{alias.name}"):  # `from mtl import tracking`: a whole module
            units.add((f"{base}.{alias.name}", _WHOLE))
        else:
            units.add((base, alias.name))
    return units


def _calls_resolve(nodes: list[ast.AST]) -> bool:
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "resolve"
               for n in nodes)


def closure(units: set[tuple[str, str]]) -> set[Path]:
    """Every ``mtl`` file the given (module, name) units can run."""
    files: set[Path] = set()
    seen: set[tuple[str, str]] = set()
    todo = list(units)
    while todo:
        unit = todo.pop()
        if unit in seen or module_file(unit[0]) is None:
            continue
        seen.add(unit)
        module, name = unit
        parts = module.split(".")
        files.update(module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1))
        names, imports, is_package = _module(module)
        for parent in (".".join(parts[:i]) for i in range(1, len(parts))):
            todo.append((parent, "<import>"))  # its package's __init__ runs: its top-level imports
        for node in imports:
            todo.extend(_imported_units(node, module, is_package))
        if name == "<import>":
            continue
        if name == _WHOLE:
            chosen = [n for nodes in names.values() for n in nodes]
        else:
            chosen = names.get(name, [])
        walked = [n for node in chosen for n in ast.walk(node)]
        todo.extend((module, n.id) for n in walked if isinstance(n, ast.Name) and n.id in names)
        for n in walked:
            if isinstance(n, ast.Import | ast.ImportFrom):
                todo.extend(_imported_units(n, module, is_package))
        if _calls_resolve(walked) or name == _WHOLE:
            todo.extend(_registered(module, walked))
    return files


def _constant(module: str, name: str) -> list[ast.AST]:
    """The assignment nodes of constant ``name`` as ``module`` sees it: its own, or those of the
    module it imports the name from (``from mtl.names import ARCHITECTURES``)."""
    names, imports, is_package = _module(module)
    if name in names:
        return [m for node in names[name] if isinstance(node, ast.Assign | ast.AnnAssign) for m in ast.walk(node)]
    for node in imports:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            for source, imported in _imported_units(node, module, is_package):
                if imported == name:
                    return _constant(source, name)
    return []


def _registered(module: str, walked: list[ast.AST]) -> set[tuple[str, str]]:
    """The registry entries a resolving function reaches: strings in its body and in the
    constants it mentions (its module's own, or imported from another mtl module)."""
    nodes = list(walked)
    for n in walked:
        if isinstance(n, ast.Name):
            nodes.extend(_constant(module, n.id))
    return {(m.group(1), m.group(2)) for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and (m := _REGISTERED.match(n.value))}


def code_deps(target: str) -> list[str]:
    """``"mtl.stages.train:run"`` -> the source files (relative to the project root, sorted) that
    function can run."""
    module, name = target.split(":")
    if module_file(module) is None or name not in _module(module)[0]:
        raise ValueError(f"{target}: no top-level {name} in module {module} under {ROOT}")
    return sorted(str(p.relative_to(ROOT)) for p in closure({(module, name)}))
