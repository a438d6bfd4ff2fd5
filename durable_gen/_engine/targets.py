"""Workflows found by name: ``package.module:function`` or ``path/to/file.py:function``.

How ``durable-gen run``, workers and ``Invoke`` load the workflow of a stored
execution: a target is resolved (imported) once per process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core.errors import (
    ValidationError,
    WorkflowDefinitionError,
)

__all__ = ["TargetError", "canonical_target", "resolve_target", "target_of"]


class TargetError(ValidationError):
    """A workflow target (``module:function`` or ``file.py:function``) cannot be resolved."""


_FILE_MODULES: dict[Path, Any] = {}


def _is_file_target(module_part: str) -> bool:
    return module_part.endswith(".py") or "/" in module_part or "\\" in module_part


def resolve_target(target: str, *, workdir: str | None = None) -> Callable[..., Any]:
    """Resolve ``pkg.module:function`` or ``path/to/file.py:function`` to a workflow.

    A relative file path is taken relative to ``workdir`` (default: the current
    directory); ``workdir`` is also put on ``sys.path`` for module targets. A file
    is imported once per process.
    """
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise TargetError(
            f"target {target!r} must look like package.module:function or path/to/file.py:function"
        )
    if _is_file_target(module_part):
        path = Path(module_part)
        if workdir is not None and not path.is_absolute():
            path = Path(workdir) / path
        if not path.is_file():
            raise TargetError(f"no such file: {module_part}")
        key = path.resolve()
        module = _FILE_MODULES.get(key)
        if module is None:
            mod_name = "durable_gen_target_" + path.stem
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise TargetError(f"cannot import {module_part} as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            parent = str(key.parent)
            if parent not in sys.path:
                sys.path.insert(0, parent)
            try:
                spec.loader.exec_module(module)
            except Exception as e:
                del sys.modules[mod_name]
                raise TargetError(
                    f"importing {module_part} failed: {type(e).__name__}: {e}"
                ) from None
            _FILE_MODULES[key] = module
    else:
        if workdir is not None and workdir not in sys.path:
            sys.path.insert(0, workdir)
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as e:
            raise TargetError(f"cannot import module {module_part!r}: {e}") from None
        except Exception as e:
            raise TargetError(f"importing {module_part} failed: {type(e).__name__}: {e}") from None
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise TargetError(f"module {module_part!r} has no attribute {attr!r}") from None
    from .._core.descriptors import check_generator_function

    try:
        check_generator_function(fn, f"target {target!r}")
    except WorkflowDefinitionError as e:
        raise TargetError(str(e)) from None
    return fn  # type: ignore[no-any-return]


def canonical_target(target: str) -> str:
    """``target`` with a file path made absolute, so any directory can load it."""
    module_part, sep, attr = target.rpartition(":")
    if sep and module_part and _is_file_target(module_part):
        return f"{Path(module_part).resolve()}:{attr}"
    return target


def target_of(workflow: Callable[..., Any]) -> str | None:
    """The ``module:qualname`` reference a worker can import ``workflow`` by, or None."""
    module = getattr(workflow, "__module__", None)
    qualname = getattr(workflow, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if module.startswith("durable_gen_target_") and path:
        return f"{Path(path).resolve()}:{qualname}"
    return f"{module}:{qualname}"


def code_version_of(workflow: Callable[..., Any]) -> str | None:
    """The default code version of ``workflow``: a digest of its module's source file
    (``src-`` and 12 hex digits), so any edit to the module is a new version; None
    when the source cannot be read (a REPL, a frozen application: give a version)."""
    try:
        path = inspect.getsourcefile(inspect.unwrap(workflow))
        if path is None:
            return None
        data = Path(path).read_bytes()
    except (TypeError, OSError):
        return None
    return "src-" + hashlib.sha256(data).hexdigest()[:12]
