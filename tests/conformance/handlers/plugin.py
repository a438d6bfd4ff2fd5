"""Conformance handlers for the plugin suite (10-x); see handlers/__init__.py.

The "plugins" are :class:`durable_gen.Hooks`. Each prints one JSON object per
hook to plain stdout, stamped with ``durableExecutionArn`` (the execution id the
hook receives: the execution's ARN on Lambda and in ``durable-gen serve``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from durable_gen import (
    ErrorObject,
    Hooks,
    OperationAction,
    OperationType,
    OperationUpdate,
    RetryPolicy,
    Step,
    get_logger,
)

log = get_logger("conformance.plugin")


def emit(arn: str, record: dict[str, Any]) -> None:
    """One JSON line on plain stdout (as a Lambda function's print would)."""
    sys.stdout.write(json.dumps({**record, "durableExecutionArn": arn}) + "\n")
    sys.stdout.flush()


def greet_logged(name: Any) -> str:
    log.info("Greeting step running for: %s", name)
    return f"Hello, {name}!"


def always_fail() -> None:
    raise RuntimeError("this step always fails")


def greet_flow(event: Any) -> Any:
    """10-1, 10-2, 10-4, 10-5: a single greeting step (the plugins do the rest)."""
    return (yield Step(greet_logged, event))


def failing_flow(event: Any) -> Any:
    """10-7: a step that always fails, no retries."""
    return (yield Step(always_fail, retry=RetryPolicy.none()))


class InvocationPlugin(Hooks):
    """Logs invocation-start (with ``first``) and invocation-end (with the status)."""

    def __init__(self, plugin: str = "CONFPLUGIN") -> None:
        self.plugin = plugin

    def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
        emit(execution_id, {"plugin": self.plugin, "hook": "invocation-start", "first": first})

    def on_invocation_end(
        self, execution_id: str, *, status: str, error: ErrorObject | None
    ) -> None:
        emit(execution_id, {"plugin": self.plugin, "hook": "invocation-end", "status": status})


_END_STATUS = {OperationAction.SUCCEED: "SUCCEEDED", OperationAction.FAIL: "FAILED"}


class OperationPlugin(Hooks):
    """Logs operation-start / operation-end for step operations only."""

    def on_operation_start(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.STEP:
            emit(execution_id, {"plugin": "CONFPLUGIN", "hook": "operation-start", "op": update.id})

    def on_operation_end(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.STEP:
            emit(
                execution_id,
                {
                    "plugin": "CONFPLUGIN",
                    "hook": "operation-end",
                    "op": update.id,
                    "status": _END_STATUS[update.action],
                },
            )


class PluginFailure(Exception):
    """What the faulty plugin raises from every hook."""


class FaultyPlugin(Hooks):
    """Every hook logs a line, then raises (the engine must ignore it)."""

    def _fail(self, execution_id: str, hook: str) -> None:
        emit(execution_id, {"plugin": "CONFPLUGIN-FAULTY", "hook": hook})
        raise PluginFailure(f"faulty plugin raised in {hook}")

    def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
        self._fail(execution_id, "invocation-start")

    def on_invocation_end(
        self, execution_id: str, *, status: str, error: ErrorObject | None
    ) -> None:
        self._fail(execution_id, "invocation-end")

    def on_operation_start(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.STEP:
            self._fail(execution_id, "operation-start")

    def on_operation_end(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.STEP:
            self._fail(execution_id, "operation-end")

    def on_step_attempt_start(
        self, execution_id: str, *, operation_id: str, name: str | None, attempt: int
    ) -> None:
        self._fail(execution_id, "attempt-start")

    def on_step_attempt_end(
        self,
        execution_id: str,
        *,
        operation_id: str,
        name: str | None,
        attempt: int,
        succeeded: bool,
        error: BaseException | None,
    ) -> None:
        self._fail(execution_id, "attempt-end")


def two_plugins() -> Sequence[Hooks]:
    return [InvocationPlugin("CONFPLUGIN-A"), InvocationPlugin("CONFPLUGIN-B")]


HANDLERS: dict[str, Callable[..., Any]] = {
    "10-1": greet_flow,
    "10-2": greet_flow,
    "10-4": greet_flow,
    "10-5": greet_flow,
    "10-7": failing_flow,
}

HOOKS: dict[str, Callable[[], Sequence[Hooks]]] = {
    "10-1": lambda: [InvocationPlugin()],
    "10-2": lambda: [OperationPlugin()],
    "10-4": lambda: [FaultyPlugin()],
    "10-5": two_plugins,
    "10-7": lambda: [InvocationPlugin()],
}
