"""The in-memory engine: plays the durable service's part in one process.

It keeps each execution's log and history in dictionaries, applies checkpoint
updates with the service's semantics (``_service``), fires retry and wait timers
on the clock it is given, and re-invokes the workflow after each suspension.
With a :class:`VirtualClock` (the default) waits and retry delays take no real
time; with :class:`RealClock` they are slept through.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from . import _service
from ._driver import InvocationOutcome, run_invocation
from ._errors import ErrorObject, StoreError, ValidationError, WorkflowFailedError
from ._log import Operation, OperationUpdate
from ._serdes import DEFAULT_SERDES

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


class MemoryStore:
    """Executions kept in process memory, updated with the service's semantics.

    Every checkpoint is applied at once (memory has no durability to batch for).
    ``updates`` keeps every update received, in order, for tests that reason about
    what the engine checkpointed.
    """

    def __init__(self) -> None:
        self._executions: dict[str, _Execution] = {}
        self._lock = threading.Lock()

    def _get(self, execution_id: str) -> _Execution:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise StoreError(f"no execution with id {execution_id!r}") from None

    def create(self, execution_id: str, input_payload: str, now: int) -> None:
        with self._lock:
            if execution_id in self._executions:
                raise StoreError(f"an execution with id {execution_id!r} already exists")
            op, event = _service.start_execution(execution_id, input_payload, now)
            self._executions[execution_id] = _Execution(operations={op.id: op}, events=[event])

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
                ex.operations, updates, now, new_callback_id=_new_callback_id
            )
            ex.operations.update(changed)
            ex.events.extend(events)
            ex.updates.extend(updates)
            return changed

    def fire_timers(self, execution_id: str, now: int) -> None:
        with self._lock:
            ex = self._get(execution_id)
            changed, events = _service.fire_timers(ex.operations, now)
            ex.operations.update(changed)
            ex.events.extend(events)

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


def _new_callback_id(op_id: str) -> str:
    return secrets.token_urlsafe(32)


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """Where an execution stands after the engine ran it as far as it could.

    ``status`` is SUCCEEDED, FAILED, or RUNNING (blocked on something only the
    outside world can complete, e.g. a callback). ``result`` is the workflow's
    return value; ``error`` the recorded failure.
    """

    execution_id: str
    status: str
    result: Any = None
    result_payload: str | None = None
    error: ErrorObject | None = None
    operations: tuple[Operation, ...] = ()
    invocations: int = 0

    def get(self) -> Any:
        """The result; raises :class:`WorkflowFailedError` if the execution failed."""
        if self.status == "FAILED":
            raise WorkflowFailedError(
                self.error or ErrorObject(type="Error"), execution_id=self.execution_id
            )
        if self.status != "SUCCEEDED":
            raise ValidationError(
                f"execution {self.execution_id!r} has not finished (status {self.status})"
            )
        return self.result


class InMemoryEngine:
    """Runs workflows to completion in this process, on a virtual clock by default.

    ``engine.run(workflow, input)`` starts an execution and drives it: straight-line
    steps run inline in one invocation; after each suspension (a wait, a retry
    delay) the clock is moved to the next timer, timers fire, and the workflow is
    re-invoked, replaying its log. ``check_args`` compares a digest of each step's
    arguments with the recorded one on replay.
    """

    def __init__(
        self,
        *,
        store: MemoryStore | None = None,
        clock: Clock | None = None,
        check_args: bool = True,
        max_invocations: int = 100_000,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.check_args = check_args
        self.max_invocations = max_invocations

    def start(
        self, workflow: Callable[..., Any], input: Any = None, *, execution_id: str | None = None
    ) -> str:
        """Record a new execution (without running it) and return its id."""
        from ._descriptors import check_generator_function

        check_generator_function(workflow, "a workflow")
        execution_id = execution_id or uuid.uuid4().hex
        payload = DEFAULT_SERDES.serialize(input)
        self.store.create(execution_id, payload, self.clock.now())
        return execution_id

    def run(
        self, workflow: Callable[..., Any], input: Any = None, *, execution_id: str | None = None
    ) -> ExecutionResult:
        """Start an execution of ``workflow`` with ``input`` and drive it as far as it goes."""
        execution_id = self.start(workflow, input, execution_id=execution_id)
        return self.resume(workflow, execution_id)

    def invoke_once(self, workflow: Callable[..., Any], execution_id: str) -> InvocationOutcome:
        """Run exactly one invocation (fire due timers first); record a finish."""
        store = self.store
        clock = self.clock
        store.fire_timers(execution_id, clock.now())
        outcome = run_invocation(
            workflow, execution_id, store, clock.now, check_args=self.check_args
        )
        if outcome.status != "PENDING":
            store.finish(
                execution_id,
                outcome.status,
                clock.now(),
                result=outcome.result,
                error=outcome.error,
            )
        return outcome

    def resume(self, workflow: Callable[..., Any], execution_id: str) -> ExecutionResult:
        """Drive an existing execution until it finishes or waits on the outside world."""
        status, _, _ = self.store.status(execution_id)
        invocations = 0
        while status == "RUNNING":
            if invocations >= self.max_invocations:
                raise StoreError(
                    f"execution {execution_id!r} did not finish within "
                    f"{self.max_invocations} invocations"
                )
            outcome = self.invoke_once(workflow, execution_id)
            invocations += 1
            if outcome.status != "PENDING":
                break
            wake = self.store.next_timer(execution_id)
            if wake is None:
                break  # only an external event (a callback) can move it on
            self.clock.sleep_until(wake)
        return self.result(execution_id, invocations=invocations)

    def result(self, execution_id: str, *, invocations: int = 0) -> ExecutionResult:
        status, payload, error = self.store.status(execution_id)
        value = None
        if payload is not None:
            value = DEFAULT_SERDES.deserialize(payload)
        ops = self.store.load(execution_id)
        return ExecutionResult(
            execution_id=execution_id,
            status=status,
            result=value,
            result_payload=payload,
            error=error,
            operations=tuple(op for op in ops.values() if op.id != execution_id),
            invocations=invocations,
        )
