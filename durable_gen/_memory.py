"""The in-memory engine: plays the durable service's part in one process.

It keeps each execution's log and history in dictionaries, applies checkpoint
updates with the service's semantics (``_service``), fires retry and wait timers
on the clock it is given, and re-invokes the workflow after each suspension.
With a :class:`VirtualClock` (the default) waits and retry delays take no real
time; with :class:`RealClock` they are slept through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from . import _service
from ._contract import EngineStore
from ._engine import ExecutionResult, LocalEngine, check_same_start, new_callback_id
from ._errors import ErrorObject, ExecutionNotFoundError
from ._hooks import Hooks
from ._log import Operation, OperationStatus, OperationType, OperationUpdate

__all__ = [
    "Clock",
    "ExecutionResult",
    "InMemoryEngine",
    "MemoryStore",
    "RealClock",
    "VirtualClock",
]


class Clock(Protocol):
    """Time for an engine, in epoch milliseconds."""

    def now(self) -> int: ...

    def sleep_until(self, when: int) -> None: ...


class VirtualClock:
    """A clock that only moves when told to: sleeping jumps straight to the deadline."""

    def __init__(self, start: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> int:
        return self._now

    def sleep_until(self, when: int) -> None:
        self._now = max(self._now, when)

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1000)


class RealClock:
    """Wall-clock time; sleeping really sleeps."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep_until(self, when: int) -> None:
        delay = (when - self.now()) / 1000
        if delay > 0:
            time.sleep(delay)


@attrs.define
class _Execution:
    status: str = "RUNNING"
    result: str | None = None
    error: ErrorObject | None = None
    operations: dict[str, Operation] = attrs.Factory(dict)
    events: list[dict[str, Any]] = attrs.Factory(list)
    updates: list[OperationUpdate] = attrs.Factory(list)
    invocation: str | None = None  # the request id of the invocation running, if any


class MemoryStore:
    """Executions kept in process memory, updated with the service's semantics.

    Every checkpoint is applied at once (memory has no durability to batch for).
    ``updates`` keeps every update received, in order, for tests that reason about
    what the engine checkpointed.
    """

    def __init__(self) -> None:
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
    ) -> bool:
        """Record a new execution; False when it exists with this input (Lambda's name
        rule, :func:`~durable_gen._engine.check_same_start`)."""
        with self._lock:
            ex = self._executions.get(execution_id)
            if ex is not None:
                recorded = ex.operations[execution_id].input_payload or ""
                same = (same_input or input_payload.__eq__)(recorded)
                check_same_start(execution_id, same, None, None)
                return False
            op, event = _service.start_execution(execution_id, input_payload, now)
            self._executions[execution_id] = _Execution(operations={op.id: op}, events=[event])
            return True

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


class InMemoryEngine(LocalEngine):
    """Runs workflows to completion in this process, on a virtual clock by default.

    ``engine.run(workflow, input)`` starts an execution and drives it: straight-line
    steps run inline in one invocation; after each suspension (a wait, a retry
    delay) the clock is moved to the next timer, timers fire, and the workflow is
    re-invoked, replaying its log. ``check_args`` compares a digest of each step's
    arguments with the recorded one on replay. The resume loop is
    :class:`~durable_gen._engine.LocalEngine`'s, shared with the SQLite engine.
    """

    store: MemoryStore
    clock: Clock

    def __init__(
        self,
        *,
        store: MemoryStore | None = None,
        clock: Clock | None = None,
        check_args: bool = True,
        max_invocations: int = 100_000,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        hooks: Sequence[Hooks] = (),
    ) -> None:
        super().__init__(
            store if store is not None else MemoryStore(),
            clock if clock is not None else VirtualClock(),
            check_args=check_args,
            max_invocations=max_invocations,
            hooks=hooks,
        )
        #: Durable functions that ``Invoke(function_name, ...)`` can reach, by name.
        self.functions: dict[str, Callable[..., Any]] = dict(functions or {})

    def register(self, function_name: str, workflow: Callable[..., Any]) -> None:
        """Make ``workflow`` invocable as ``Invoke(function_name, payload)``."""
        from ._descriptors import check_generator_function

        check_generator_function(workflow, f"function {function_name!r}")
        self.functions[function_name] = workflow

    def resume(
        self, workflow: Callable[..., Any], execution_id: str, *, wait: bool = True
    ) -> ExecutionResult:
        """Drive the execution; chained invokes run as executions of registered functions."""
        # After a crash, continue where the uninterrupted run was: inside the parent's
        # invocation (re-invoke it first) or, when that invocation had ended, inside an
        # invoked execution (let the invoked executions finish their work first).
        store = self.store
        if store.exists(execution_id) and not store.invocation_running(execution_id):
            self._advance_invokes(execution_id)
        while True:
            result = super().resume(workflow, execution_id, wait=wait)
            if result.status != "RUNNING" or not self._advance_invokes(execution_id):
                return result

    def _advance_invokes(self, execution_id: str) -> bool:
        """Run the executions behind started invokes; True if one of them ended."""
        progressed = False
        now = self.clock.now
        for op in self.store.running_invokes(execution_id):
            name = op.function_name or ""
            target = self.functions.get(name)
            if target is None:
                known = ", ".join(sorted(self.functions)) or "none"
                self.store.complete_invoke(
                    execution_id,
                    op.id,
                    "FAILED",
                    now(),
                    error=ErrorObject(
                        type="ResourceNotFoundException",
                        message=f"no durable function named {name!r} is registered with this "
                        f"engine (registered: {known}); pass functions={{...}} or call "
                        "engine.register(name, workflow)",
                    ),
                )
                progressed = True
                continue
            child = _service.chained_execution_id(execution_id, op.id)  # never started twice
            if not self.store.exists(child):
                self.store.create(child, op.input_payload or "null", now())
            outcome = self.resume(target, child, wait=True)
            if outcome.status == "RUNNING":
                continue
            self.store.complete_invoke(
                execution_id,
                op.id,
                outcome.status,
                now(),
                result=outcome.result_payload,
                error=outcome.error,
            )
            progressed = True
        return progressed

    def _sleep_until(self, execution_id: str, when: int) -> bool:
        # While a callback is pending, time is not skipped: the outside world may
        # complete it at any moment. The engine returns RUNNING; complete the callback
        # (or advance the clock past its timeout) and resume.
        ops = self.store.load(execution_id).values()
        if any(
            op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED for op in ops
        ):
            return False
        self.clock.sleep_until(when)
        return True


def _keeps_the_contract(store: MemoryStore) -> EngineStore:
    return store  # mypy checks that MemoryStore keeps the resume loop's store contract
