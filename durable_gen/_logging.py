"""A replay-aware logger for workflow bodies and step functions.

    log = durable_gen.get_logger(__name__)

    def flow(event):
        log.info("starting")               # logged once, not on every replay
        x = yield Step(work)
        log.info("work returned %s", x)

Lines a workflow body emits while it is being replayed (re-running code that an
earlier invocation already ran) are dropped, so each line appears once per
execution. Every record carries ``execution_id``, ``operation_id``,
``operation_name`` and ``attempt`` (in step functions) as attributes, usable in
formats: ``%(execution_id)s``; also ``executionArn`` (the same id: on Lambda the
execution's ARN), the field CloudWatch's execution-scoped log queries filter on
when Lambda writes records in its JSON log format. It is a standard :class:`logging.LoggerAdapter`:
handlers, levels and formatters are the ``logging`` module's.

The engine (not the interpreter) sets the current log context: the interpreter
stays pure; it only answers whether the context being driven is replaying.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["DurableLogger", "get_logger"]


class LogContext:
    """Where log lines come from right now (set by the engine around user code)."""

    __slots__ = ()

    def replaying(self) -> bool:
        return False

    def fields(self) -> dict[str, Any]:
        return {}


class StepLogContext(LogContext):
    """A step function (or check/submitter) attempt is running: never replaying."""

    __slots__ = ("attempt", "execution_id", "operation_id", "operation_name")

    def __init__(self, execution_id: str, op_id: str, name: str | None, attempt: int) -> None:
        self.execution_id = execution_id
        self.operation_id = op_id
        self.operation_name = name
        self.attempt = attempt

    def fields(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "executionArn": self.execution_id,
            "operation_id": self.operation_id,
            "operation_name": self.operation_name,
            "attempt": self.attempt,
        }


class WorkflowLogContext(LogContext):
    """A workflow body is being driven by an interpreter."""

    __slots__ = ("interp",)

    def __init__(self, interp: Any) -> None:
        self.interp = interp

    def replaying(self) -> bool:
        return bool(self.interp.is_replaying())

    def fields(self) -> dict[str, Any]:
        ctx_id, label = self.interp.current_operation
        return {
            "execution_id": self.interp.execution_id,
            "executionArn": self.interp.execution_id,
            "operation_id": ctx_id,
            "operation_name": label,
            "attempt": None,
        }


current: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "durable_gen_log_context", default=None
)


class DurableLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A LoggerAdapter that drops replayed lines and adds durable context fields."""

    def isEnabledFor(self, level: int) -> bool:
        ctx = current.get()
        if ctx is not None and ctx.replaying() and not (self.extra or {}).get("log_replays"):
            return False
        return bool(self.logger.isEnabledFor(level))

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        ctx = current.get()
        fields = (
            ctx.fields()
            if ctx is not None
            else {
                "execution_id": None,
                "executionArn": None,
                "operation_id": None,
                "operation_name": None,
                "attempt": None,
            }
        )
        extra = kwargs.get("extra")
        kwargs["extra"] = {**fields, **(extra or {})}
        return msg, kwargs


def get_logger(name: str = "durable_gen.workflow", *, log_replays: bool = False) -> DurableLogger:
    """A replay-aware logger over ``logging.getLogger(name)``.

    With ``log_replays`` it also logs while the workflow body is being replayed
    (to observe re-execution, e.g. of a ReplayChildren context).
    """
    return DurableLogger(logging.getLogger(name), {"log_replays": log_replays})
