"""A determinism linter for workflow bodies (ast-based, no code is run).

A workflow body re-runs on every replay, so whatever it computes must come out
the same each time. Calls that read the wall clock, draw random numbers, make
uuids, read the environment or do I/O directly in the body break that; the same
call inside a step is fine (its result is recorded). The linter flags them with
the line, the column and the durable alternative::

    lint_workflow(order_flow)
    # [Finding(line=12, col=7, code='DG101', message="time.time() reads the wall clock ...")]

What counts as the body: the generator function's own statements, and generator
functions nested in it (they run as child contexts or branches). Plain nested
functions and lambdas are not linted -- they are what you hand to ``Step``,
``WaitForCondition`` or a submitter, where such calls belong.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import ValidationError

__all__ = ["Finding", "lint_file", "lint_source", "lint_workflow"]


@attrs.frozen
class Finding:
    """One non-deterministic call in a workflow body."""

    line: int
    col: int
    code: str
    message: str
    function: str = ""
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:" if self.path else ""
        return f"{where}{self.line}:{self.col}: {self.code} {self.message}"


_CLOCK = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.process_time",
        "time.localtime",
        "time.gmtime",
        "time.ctime",
        "time.asctime",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)
_UUID = frozenset({"uuid.uuid1", "uuid.uuid4"})
_ENV_CALLS = frozenset({"os.getenv", "os.getenvb", "os.environ.get", "os.environ.copy"})
_IO_CALLS = frozenset({"open", "input", "io.open", "os.system", "os.popen", "os.listdir"})
_IO_MODULES = (
    "requests.",
    "urllib.",
    "urllib3.",
    "http.client.",
    "httpx.",
    "aiohttp.",
    "socket.",
    "subprocess.",
    "boto3.",
    "shutil.",
)


def _rule(name: str) -> tuple[str, str] | None:
    """(code, what it does) for a fully qualified callee, or None when it is fine."""
    if name in _CLOCK:
        return "DG101", "reads the wall clock"
    if name.startswith("random.") or name.startswith("secrets.") or name == "os.urandom":
        return "DG102", "draws random numbers"
    if name in _UUID:
        return "DG103", "makes a random uuid"
    if name in _ENV_CALLS:
        return "DG104", "reads the environment"
    if name in _IO_CALLS or name.startswith(_IO_MODULES):
        return "DG105", "does I/O"
    if name == "time.sleep":
        return "DG106", "sleeps"
    return None


def _advice(code: str, written: str) -> str:
    if code == "DG104":
        return (
            f"read it in a Step (yield Step({written}, 'NAME')) or pass it in the workflow's input"
        )
    if code == "DG105":
        return f"do I/O in a Step: yield Step(fn, ...) where fn calls {written}"
    if code == "DG106":
        return "use yield Wait(seconds=...) instead"
    return f"wrap it in a Step: yield Step({written})"


# ------------------------------------------------------------------------ names


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name, from every import in ``tree``."""
    table: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    table[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    table[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                table[a.asname or a.name] = f"{node.module}.{a.name}"
    return table


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _qualify(written: str, table: dict[str, str]) -> str:
    head, _, rest = written.partition(".")
    full = table.get(head)
    if full is None:
        # not imported: a builtin (open) or a bare module name used as imported
        return written
    return f"{full}.{rest}" if rest else full


# ------------------------------------------------------------------------ walking


def _is_generator(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(node, ast.Yield | ast.YieldFrom) for node in _own_nodes(fn))


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Nodes of ``fn``'s body; nested functions, lambdas and classes are yielded, not entered."""
    stack: list[ast.AST] = list(reversed(getattr(fn, "body", [])))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _lint_body(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, table: dict[str, str], path: str
) -> list[Finding]:
    findings: list[Finding] = []
    shadowed = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
    for node in _own_nodes(fn):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        written: str | None = None
        if isinstance(node, ast.Call):
            written = _dotted(node.func)
            if written is None or written.split(".")[0] in shadowed:
                continue
            full = _qualify(written, table)
            if full == "random.Random" and node.args:
                continue  # a seeded generator is deterministic
            rule = _rule(full)
            if rule is None:
                continue
            code, does = rule
            findings.append(
                Finding(
                    line=node.lineno,
                    col=node.col_offset,
                    code=code,
                    message=f"{written}() {does} in the workflow body, so a replay can take "
                    f"another path; {_advice(code, written)}",
                    function=fn.name,
                    path=path,
                )
            )
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            written = _dotted(node)
            if written is None or _qualify(written, table) != "os.environ":
                continue
            findings.append(
                Finding(
                    line=node.lineno,
                    col=node.col_offset,
                    code="DG104",
                    message=f"{written} reads the environment in the workflow body, so a "
                    f"replay can take another path; {_advice('DG104', 'os.getenv')}",
                    function=fn.name,
                    path=path,
                )
            )
    # nested generator functions are workflow bodies too (child contexts, branches)
    for node in _own_nodes(fn):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_generator(node):
            findings.extend(_lint_body(node, table, path))
    return findings


def _dedupe_sorted(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[int, int, str]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.line, f.col, f.code)):
        key = (f.line, f.col, f.code)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def lint_source(source: str, *, path: str = "") -> list[Finding]:
    """Lint every generator function in ``source`` (a module's text) as a workflow body."""
    tree = ast.parse(source, filename=path or "<source>")
    table = _imports(tree)
    findings: list[Finding] = []
    nested: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and id(node) not in nested
            and _is_generator(node)
        ):
            findings.extend(_lint_body(node, table, path))
            nested.update(
                id(n)
                for n in ast.walk(node)
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n is not node
            )
    return _dedupe_sorted(findings)


def lint_file(path: str | os.PathLike[str]) -> list[Finding]:
    """Lint a module file: every generator function in it is taken as a workflow body."""
    p = Path(path)
    return lint_source(p.read_text(encoding="utf-8"), path=str(p))


def lint_workflow(fn: Callable[..., Any]) -> list[Finding]:
    """Lint the body of the workflow (generator function) ``fn``; lines are the file's."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise TypeError(f"lint_workflow takes a workflow function, got {fn!r:.60}")
    source_file = inspect.getsourcefile(fn)
    first = code.co_firstlineno
    if source_file is not None and os.path.exists(source_file):
        text = Path(source_file).read_text(encoding="utf-8")
        tree = ast.parse(text, filename=source_file)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == (
                fn.__name__
            ):
                lines = {node.lineno, *(d.lineno for d in node.decorator_list)}
                if first in lines:
                    return _dedupe_sorted(_lint_body(node, _imports(tree), source_file))
    # no file (defined in a REPL or by exec): lint its own source
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except OSError:
        raise ValidationError(
            f"the source of {fn.__qualname__} is not available (defined by exec or in a "
            "REPL?); put the workflow in a file and lint it with lint_workflow or lint_file"
        ) from None
    tree = ast.parse(src)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    findings = _lint_body(node, _imports(tree), "")
    return _dedupe_sorted([attrs.evolve(f, line=f.line + first - 1) for f in findings])
