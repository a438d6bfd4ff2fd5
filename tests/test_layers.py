"""The package's layers, read from its imports: they point down only, and never in a circle.

    edges    _cli  _http  _html  aws  testing  (and the package's face, __init__)
    engines  _engine                   imports the core and the stores
    stores   _stores                   imports the core
    core     _core                     imports nothing else of durable_gen (pure)

docs: README, "How the code is organised".
"""

from __future__ import annotations

import ast
from pathlib import Path

import durable_gen

PKG = Path(durable_gen.__file__).parent
LAYERS = {"_core": 0, "_stores": 1, "_engine": 2}
EDGE = 3


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], EDGE) if len(parts) > 1 else EDGE


def _imports() -> dict[str, set[str]]:
    """module -> the durable_gen modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                if not target.startswith("durable_gen"):
                    continue
                for alias in node.names:  # ``from . import x`` names a module
                    sub = f"{target}.{alias.name}"
                    found.add(sub if _exists(sub) else target)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("durable_gen")}
        graph[module] = {m for m in found if m != module}
    return graph


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()


def test_imports_point_down_only():
    wrong = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in _imports().items()
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert wrong == []


def test_no_module_imports_itself_through_others():
    graph = _imports()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if t == "durable_gen" or t not in graph:
                continue  # the package's face re-exports; it is imported, not importing back
            if state.get(t) == 1:
                circles.append([*path[path.index(t) :], t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_the_core_is_the_only_thing_beneath_the_stores():
    graph = _imports()
    assert {t for m, ts in graph.items() if m.startswith("durable_gen._core") for t in ts} <= {
        m for m in graph if m.startswith("durable_gen._core")
    }
