"""The in-memory store: executions in dictionaries, in one process.

:class:`MemoryStore` keeps each execution's log and history in dictionaries and
applies checkpoint updates with the service's semantics (``_core.service``). It
keeps the resume loop's store contract (``EngineStore``); the in-memory engine
(``_engine.memory``) drives executions on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._core import service as _service
from .._core.contract import EngineStore, check_same_start
from .._core.errors import (
    ErrorObject,
    ExecutionNotFoundError,
)
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from .ids import new_callback_id
from .logs import KeptLogs, LogPage, keep_logs_option, level_number

__all__ = ["MemoryStore"]


@attrs.define
class _Execution:
    status: str = "RUNNING"
    result: str | None = None
    error: ErrorObject | None = None
    operations: dict[str, Operation] = attrs.Factory(dict)
    events: list[dict[str, Any]] = attrs.Factory(list)
    updates: list[OperationUpdate] = attrs.Factory(list)
    invocation: str | None = None  # the request id of the invocation running, if any
    trace_context: str | None = None  # the W3C traceparent it was started under
    deadline: int | None = None  # epoch ms: it ends TIMED_OUT then, if still running
    timeout_ms: int | None = None  # the ExecutionTimeout it was given


class MemoryStore:
    """Executions kept in process memory, updated with the service's semantics.

    Every checkpoint is applied at once (memory has no durability to batch for).
    ``updates`` keeps every update received, in order, for tests that reason about
    what the engine checkpointed. ``keep_logs`` and ``log_level``: the log records
    kept per execution, as the SQLite store's (:meth:`log_records`), kept as they are logged.
    """

    def __init__(self, *, keep_logs: int | None = None, log_level: int | str = "INFO") -> None:
        self.keep_logs = keep_logs_option(keep_logs)
        self.log_level = level_number(log_level)
        self._logs: dict[str, KeptLogs] = {}
        self._executions: dict[str, _Execution] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}  # callback id -> (execution, op)
        self._lock = threading.Lock()

    def _get(self, execution_id: str) -> _Execution:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}") from None

    def create(
        self,
        execution_id: str,
        input_payload: str,
        now: int,
        *,
        same_input: Callable[[str], bool] | None = None,
        trace_context: str | None = None,
        deadline: int | None = None,
        timeout_ms: int | None = None,
    ) -> bool:
        """Record a new execution; False when it exists with this input (Lambda's name
        rule, :func:`~durable_gen._core.contract.check_same_start`). ``trace_context``:
        the W3C ``traceparent`` it is started under (:meth:`trace_context`).
        ``deadline`` (epoch ms): when it ends TIMED_OUT if still running
        (:meth:`time_out`); ``timeout_ms``: the ExecutionTimeout it was given."""
        with self._lock:
            ex = self._executions.get(execution_id)
            if ex is not None:
                recorded = ex.operations[execution_id].input_payload or ""
                same = (same_input or input_payload.__eq__)(recorded)
                check_same_start(execution_id, same, None, None)
                return False
            op, event = _service.start_execution(
                execution_id,
                input_payload,
                now,
                # as Lambda's history has it: whole seconds (at least 1)
                timeout_seconds=None if timeout_ms is None else max(1, round(timeout_ms / 1000)),
            )
            self._executions[execution_id] = _Execution(
                operations={op.id: op},
                events=[event],
                trace_context=trace_context,
                deadline=deadline,
                timeout_ms=timeout_ms,
            )
            return True

    def deadline(self, execution_id: str) -> int | None:
        """When the execution ends TIMED_OUT if still running (epoch ms), or None."""
        return self._get(execution_id).deadline

    def time_out(self, execution_id: str, now: int) -> bool:
        """End a running execution whose deadline has come (at or before ``now``) as
        TIMED_OUT, as the SQLite store does: its ExecutionTimedOut event, its open waits
        cancelled and its open callbacks closed. False, changing nothing, when it already
        ended or its deadline has not come."""
        with self._lock:
            ex = self._get(execution_id)
            if ex.status != "RUNNING" or ex.deadline is None or ex.deadline > now:
                return False
            timeout = ex.timeout_ms
            if timeout is None:  # a caller's deadline: the time it gave from the start
                started = ex.operations[execution_id].start_timestamp or now
                timeout = ex.deadline - started
            changed, events, error = _service.time_out_execution(
                ex.operations, execution_id, now, timeout
            )
            ex.operations.update(changed)
            ex.events.extend(events)
            ex.status, ex.error, ex.invocation = "TIMED_OUT", error, None
            return True

    def trace_context(self, execution_id: str) -> str | None:
        """The W3C ``traceparent`` the execution was started under (None: none)."""
        return self._get(execution_id).trace_context

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        return self._get(execution_id).operations

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        if not updates:
            return {}
        with self._lock:
            ex = self._get(execution_id)
            changed, events = _service.apply_updates(
                ex.operations,
                updates,
                now,
                new_callback_id=new_callback_id,
                execution_id=execution_id,
            )
            ex.operations.update(changed)
            ex.events.extend(events)
            ex.updates.extend(updates)
            for op in changed.values():
                if op.callback_id is not None:
                    self._callbacks[op.callback_id] = (execution_id, op.id)
            return changed

    # -- the outside world's side: callbacks and chained invokes --------------------

    def callback_execution(self, callback_id: str) -> str:
        """The execution a callback id belongs to (ids are bound to their execution)."""
        try:
            return self._callbacks[callback_id][0]
        except (KeyError, TypeError):
            raise ExecutionNotFoundError(f"no callback with id {callback_id!r:.80}") from None

    def complete_callback(
        self,
        callback_id: str,
        action: str,
        now: int,
        *,
        payload: str | None = None,
        error: ErrorObject | None = None,
        execution_id: str | None = None,
    ) -> str:
        """Succeed, fail or heartbeat a callback; returns its execution id.

        With ``execution_id``, a callback of any other execution is refused as unknown.
        """
        with self._lock:
            owner = self.callback_execution(callback_id)
            if execution_id is not None and owner != execution_id:
                raise ExecutionNotFoundError(
                    f"no callback with id {callback_id!r:.80} in execution {execution_id!r:.80}"
                )
            execution_id = owner
            _, op_id = self._callbacks[callback_id]
            ex = self._get(execution_id)
            new, events = _service.complete_callback(
                ex.operations[op_id], action, now, payload=payload, error=error
            )
            ex.operations[op_id] = new
            ex.events.extend(events)
            return execution_id

    def running_invokes(self, execution_id: str) -> list[Operation]:
        """CHAINED_INVOKE operations started and not yet completed."""
        return [
            op
            for op in self._get(execution_id).operations.values()
            if op.type is OperationType.CHAINED_INVOKE and op.status is OperationStatus.STARTED
        ]

    def complete_invoke(
        self,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        with self._lock:
            ex = self._get(execution_id)
            new, events = _service.complete_chained_invoke(
                ex.operations[op_id], status, now, result=result, error=error
            )
            ex.operations[op_id] = new
            ex.events.extend(events)

    def exists(self, execution_id: str) -> bool:
        return execution_id in self._executions

    def fire_timers(self, execution_id: str, now: int) -> None:
        with self._lock:
            ex = self._get(execution_id)
            changed, events = _service.fire_timers(ex.operations, now)
            ex.operations.update(changed)
            ex.events.extend(events)

    def begin_invocation(self, execution_id: str, request_id: str | None, now: int) -> None:
        """Fire due timers and note the invocation now running."""
        self.fire_timers(execution_id, now)
        self._get(execution_id).invocation = request_id

    def end_invocation(self, execution_id: str, event: dict[str, Any]) -> None:
        """Record the InvocationCompleted event; no invocation is running any more."""
        with self._lock:
            ex = self._get(execution_id)
            ex.events.append(event)
            ex.invocation = None

    def invocation_running(self, execution_id: str) -> bool:
        """Whether an invocation began and did not end (the process died in it)."""
        return self._get(execution_id).invocation is not None

    def next_timer(self, execution_id: str) -> int | None:
        return _service.next_timer(self._get(execution_id).operations.values())

    def finish(
        self,
        execution_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        with self._lock:
            ex = self._get(execution_id)
            ex.status = status
            ex.result = result
            ex.error = error
            ex.events.append(
                _service.execution_finished_event(
                    execution_id, status, now, result=result, error=error
                )
            )

    def add_event(self, execution_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._get(execution_id).events.append(event)

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        ex = self._get(execution_id)
        return ex.status, ex.result, ex.error

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        return [{**e, "EventId": i} for i, e in enumerate(self._get(execution_id).events, 1)]

    def updates(self, execution_id: str) -> list[OperationUpdate]:
        return list(self._get(execution_id).updates)

    def log_sink(self, execution_id: str) -> KeptLogs | None:
        """Where an invocation of ``execution_id`` hands its log records (None: none kept)."""
        if not self.keep_logs:
            return None
        with self._lock:
            kept = self._logs.get(execution_id)
            if kept is None:
                kept = self._logs[execution_id] = KeptLogs(self.keep_logs, self.log_level)
            return kept

    def log_records(
        self,
        execution_id: str,
        *,
        after: int = 0,
        limit: int | None = None,
        level: int | str = 0,
    ) -> LogPage:
        """The execution's kept log records, as :meth:`SqliteStore.log_records` gives them."""
        self._get(execution_id)
        kept = self._logs.get(execution_id)
        if kept is None:
            return LogPage(records=())
        return kept.page(after, limit, level_number(level, "level"))


def _keeps_the_contract(store: MemoryStore) -> EngineStore:
    return store  # mypy checks that MemoryStore keeps the resume loop's store contract
