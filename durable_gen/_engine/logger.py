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

Kept records (``durable-gen logs``)
    When the store keeps log records (the SQLite store does by default; see
    ``_stores.logs``), the context also carries the store's sink for the running
    invocation, and each record at the store's level (INFO) and above is handed to
    it -- whatever the ``logging`` configuration: a record is kept even when no
    handler shows it, and ``isEnabledFor`` is true for it. Records logged while a
    workflow body replays are never kept (with ``log_replays`` they are shown, not
    kept twice). Only this logger's records are kept: a plain ``logging`` logger
    inside a step is not (it lacks the execution's context).
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Protocol

__all__ = ["DurableLogger", "LogSink", "execution_arn", "get_logger", "set_execution_arns"]


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


class LogSink(Protocol):
    """Where a store keeps an invocation's log records (``_stores.logs.LogBuffer``)."""

    level: int

    def add(
        self,
        record: tuple[int, int, str, str, str | None, str | None, int | None, str | None],
    ) -> None: ...


class LogContext:
    """Where log lines come from right now (set by the engine around user code)."""

    __slots__ = ()

    #: where records are kept (None: nowhere but the ``logging`` handlers)
    sink: LogSink | None = None

    def replaying(self) -> bool:
        return False

    def fields(self) -> dict[str, Any]:
        return {}

    def where(self) -> tuple[str | None, str | None, int | None]:
        """(operation id, operation name, attempt) of the code running now."""
        return None, None, None

    def keep(self, level: int, name: str, msg: Any, args: tuple[Any, ...], exc_info: Any) -> None:
        """Hand one record to the sink (never raises: logging must not break a step)."""
        sink = self.sink
        if sink is None:
            return
        op_id, op_name, attempt = self.where()
        sink.add(
            (
                time.time_ns() // 1_000_000,
                level,
                name,
                _message(msg, args),
                op_id,
                op_name,
                attempt,
                _exception_text(exc_info),
            )
        )


def _message(msg: Any, args: tuple[Any, ...]) -> str:
    """The record's message as ``LogRecord.getMessage`` makes it."""
    try:
        text = str(msg)
    except Exception as e:
        return f"<a message whose str() raised {type(e).__name__}: {e}>"
    if not args:
        return text
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        args = args[0]  # type: ignore[assignment]  # "%(name)s" formats (LogRecord does so)
    try:
        return text % args
    except Exception as e:
        return f"{text} <arguments {args!r:.200} do not fit it: {type(e).__name__}: {e}>"


def _exception_text(exc_info: Any) -> str | None:
    if not exc_info:
        return None
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if len(exc_info) != 3 or exc_info[0] is None:
        return None
    try:
        return "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    except Exception as e:
        return f"<a traceback that cannot be formatted: {type(e).__name__}: {e}>"


class StepLogContext(LogContext):
    """A step function (or check/submitter) attempt is running: never replaying."""

    __slots__ = ("attempt", "execution_id", "operation_id", "operation_name", "sink")

    def __init__(
        self,
        execution_id: str,
        op_id: str,
        name: str | None,
        attempt: int,
        sink: LogSink | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.operation_id = op_id
        self.operation_name = name
        self.attempt = attempt
        self.sink = sink

    def where(self) -> tuple[str | None, str | None, int | None]:
        return self.operation_id, self.operation_name, self.attempt

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

    __slots__ = ("interp", "sink")

    def __init__(self, interp: Any, sink: LogSink | None = None) -> None:
        self.interp = interp
        self.sink = sink

    def where(self) -> tuple[str | None, str | None, int | None]:
        ctx_id, label = self.interp.current_operation
        return ctx_id, label, None

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
        if ctx is not None:
            if ctx.replaying():
                if not (self.extra or {}).get("log_replays"):
                    return False
            elif ctx.sink is not None and level >= ctx.sink.level:
                return True  # kept by the store, whatever the handlers show
        return bool(self.logger.isEnabledFor(level))

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log (as ``LoggerAdapter.log``), and hand the record to the store's sink."""
        ctx = current.get()
        if ctx is not None:
            if ctx.replaying():
                if not (self.extra or {}).get("log_replays"):
                    return  # shown again with log_replays, never kept twice
            elif ctx.sink is not None and level >= ctx.sink.level:
                ctx.keep(level, self.logger.name, msg, args, kwargs.get("exc_info"))
        if not self.logger.isEnabledFor(level):
            return
        msg, processed = self.process(msg, kwargs)
        # the caller's frame, not this method's, in %(filename)s and %(lineno)d
        processed["stacklevel"] = processed.get("stacklevel", 1) + 1
        self.logger.log(level, msg, *args, **processed)

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
