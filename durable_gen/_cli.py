"""The ``durable-gen`` command.

``durable-gen run TARGET [--input JSON | --input-file F] [--virtual-time]``
runs a workflow to completion and prints its JSON result on stdout. TARGET is
``package.module:function`` or ``path/to/file.py:function``. Bad input gets a
one-line error on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._descriptors import check_generator_function
from ._errors import DurableGenError, NonDeterminismError, WorkflowDefinitionError
from ._memory import InMemoryEngine, RealClock, VirtualClock

__all__ = ["load_target", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input; reported in one line."""


def load_target(target: str) -> Callable[..., Any]:
    """Resolve ``pkg.module:function`` or ``path/to/file.py:function`` to a workflow."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise UsageError(
            f"target {target!r} must look like package.module:function or path/to/file.py:function"
        )
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise UsageError(f"no such file: {module_part}")
        mod_name = "durable_gen_target_" + path.stem
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {module_part} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        sys.path.insert(0, str(path.resolve().parent))
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as e:
            raise UsageError(f"cannot import module {module_part!r}: {e}") from None
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"module {module_part!r} has no attribute {attr!r}") from None
    try:
        check_generator_function(fn, f"target {target!r}")
    except WorkflowDefinitionError as e:
        raise UsageError(str(e)) from None
    return fn  # type: ignore[no-any-return]


def _parse_input(args: argparse.Namespace) -> Any:
    if args.input is not None and args.input_file is not None:
        raise UsageError("give --input or --input-file, not both")
    text = args.input
    if args.input_file is not None:
        try:
            text = Path(args.input_file).read_text()
        except OSError as e:
            raise UsageError(f"cannot read --input-file: {e}") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--input is not valid JSON ({e.msg} at position {e.pos})") from None


def _cmd_run(args: argparse.Namespace) -> int:
    workflow = load_target(args.target)
    value = _parse_input(args)
    clock = VirtualClock() if args.virtual_time else RealClock()
    engine = InMemoryEngine(clock=clock)
    result = engine.run(workflow, value)
    if result.status == "SUCCEEDED":
        print(json.dumps(result.result, default=repr))
        return 0
    err = result.error
    if err is not None:
        print(f"durable-gen: execution failed: {err.type}: {err.message}", file=sys.stderr)
    else:
        print(f"durable-gen: execution ended {result.status}", file=sys.stderr)
    return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable-gen", description="Run durable workflows written as Python generators."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow to completion and print its JSON result")
    run.add_argument("target", help="package.module:function or path/to/file.py:function")
    run.add_argument("--input", help="the workflow's input as JSON")
    run.add_argument("--input-file", help="read the input JSON from this file")
    run.add_argument(
        "--virtual-time",
        action="store_true",
        help="skip through waits and retry delays instead of sleeping",
    )
    run.set_defaults(func=_cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_USAGE
    except NonDeterminismError as e:
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_FAILED
    except DurableGenError as e:
        print(f"durable-gen: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
