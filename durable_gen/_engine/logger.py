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
formats: ``%(execution_id)s``; also ``executionArn`` (on Lambda the id is the
execution's ARN; ``durable-gen serve``, which hands out Lambda-shaped ARNs, puts
that ARN there: :func:`set_execution_arns`), the field CloudWatch's
execution-scoped log queries filter on when Lambda writes records in its JSON log
format. It is a standard :class:`logging.LoggerAdapter`:
handlers, levels and formatters are the ``logging`` module's.

The engine (not the interpreter) sets the current log context: the interpreter
stays pure; it only answers whether the context being driven is replaying.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["DurableLogger", "execution_arn", "get_logger", "set_execution_arns"]


def _same(execution_id: str) -> str:
    return execution_id


#: How this process names an execution to the outside (logs' ``executionArn``, the
#: id hooks receive): the id itself, or the ARN that ``durable-gen serve`` hands out.
_arns: Callable[[str], str] = _same


def set_execution_arns(arn_of: Callable[[str], str] | None) -> None:
    """Name executions by ``arn_of(execution_id)`` in logs and hooks (None: by their id)."""
    global _arns
    _arns = arn_of or _same


def execution_arn(execution_id: str) -> str:
    """The execution's name to the outside world (see :func:`set_execution_arns`)."""
    return _arns(execution_id)


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
            "executionArn": _arns(self.execution_id),
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
            "executionArn": _arns(self.interp.execution_id),
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


def get_logger(
    name: str | logging.Logger = "durable_gen.workflow", *, log_replays: bool = False
) -> DurableLogger:
    """A replay-aware logger over ``logging.getLogger(name)``, or over the logger
    given (AWS's ``set_logger``: a workflow's own ``logging.Logger``, e.g. one of
    AWS Lambda Powertools' or structlog's stdlib loggers).

    With ``log_replays`` it also logs while the workflow body is being replayed
    (to observe re-execution, e.g. of a ReplayChildren context).
    """
    if isinstance(name, logging.Logger):
        logger = name
    elif isinstance(name, str):
        logger = logging.getLogger(name)
    else:
        raise TypeError(
            f"get_logger takes a logger name or a logging.Logger, got {type(name).__name__}"
        )
    return DurableLogger(logger, {"log_replays": log_replays})
