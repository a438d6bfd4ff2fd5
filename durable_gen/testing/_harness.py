"""The machinery under the test runner and the replay checker.

- :class:`RecordingStore`: a :class:`~durable_gen.MemoryStore` that counts and
  describes every checkpoint, snapshots the log after each one, and can make the
  process "die" (raise :class:`SimulatedCrash`) right after chosen checkpoints.
- :class:`StepTracker`: a hook that records every step attempt, notices a step
  whose success is already recorded running again, and can make the process die
  while chosen attempts run.
- :class:`HarnessEngine`: the in-memory engine with those hooks plugged in.
- callback policies: what the outside world does when the workflow waits on a
  callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import attrs

from .._core.errors import ErrorObject
from .._core.log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
)
from .._core.present import describe_operation
from .._engine.clock import VirtualClock
from .._engine.hooks import Hooks
from .._engine.local import ExecutionResult
from .._engine.memory import InMemoryEngine
from .._stores.memory import MemoryStore

__all__ = [
    "StepCall",
    "StuckError",
    "drive",
    "pending_callbacks",
    "CallbackAnswer",
    "CallbackPolicy",
    "HarnessEngine",
    "PendingCallback",
    "RecordingStore",
    "SimulatedCrash",
    "StepTracker",
    "describe_updates",
    "fail",
    "leave_pending",
    "succeed",
    "succeed_all",
]


class SimulatedCrash(BaseException):
    """The process died here (a BaseException: no workflow or step code catches it)."""

    def __init__(self, where: str) -> None:
        self.where = where
        super().__init__(where)


def describe_update(u: OperationUpdate) -> str:
    """``START of Step 'charge'``."""
    return f"{u.action.value} of {describe_operation(u.sub_type, u.type.value, u.name)}"


def describe_updates(updates: Sequence[OperationUpdate]) -> str:
    """A checkpoint in words: its updates, at most three of them."""
    words = [describe_update(u) for u in updates[:3]]
    if len(updates) > 3:
        words.append(f"and {len(updates) - 3} more")
    return ", ".join(words)


class RecordingStore(MemoryStore):
    """A memory store that counts, describes and snapshots checkpoints; it can crash.

    ``crash_after`` holds 1-based checkpoint numbers (counted over the store's
    life, across resumes); right after such a checkpoint is applied the store
    raises :class:`SimulatedCrash`. ``watch`` names the execution whose log is
    snapshotted after every checkpoint to it (the caller adds the first entry).
    """

    def __init__(
        self,
        crash_after: Collection[int] = (),
        *,
        watch: str | None = None,
        total: int | None = None,
        crashes: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.crash_after = frozenset(crash_after)
        self.total = total
        self.watch = watch
        self.count = 0
        self.descriptions: list[str] = []
        #: (checkpoint number, time, the watched log after it); number 0: before any
        self.logs: list[tuple[int, int, dict[str, Operation]]] = []
        self.at_most_once: set[str] = set()  # steps whose START was made durable first
        self.crashes: list[str] = [] if crashes is None else crashes
        self.interrupted: set[str] = set()  # at-most-once steps a crash cut short

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        delta = super().checkpoint(execution_id, updates, now, durable=durable)
        if not updates:
            return delta
        self.count += 1
        self.descriptions.append(describe_updates(updates))
        if durable:
            for u in updates:
                if (
                    u.type is OperationType.STEP
                    and u.action is OperationAction.START
                    and u.sub_type == OperationSubType.STEP.value
                ):
                    self.at_most_once.add(u.id)
        if execution_id == self.watch:
            self.logs.append((self.count, now, dict(self.load(execution_id))))
        if self.count in self.crash_after:
            of = f" of {self.total}" if self.total and not self.crashes else ""
            where = f"after checkpoint {self.count}{of}: {self.descriptions[-1]}"
            self.crashes.append(where)
            if durable:
                self.interrupted.update(
                    u.id
                    for u in updates
                    if u.type is OperationType.STEP and u.action is OperationAction.START
                )
            raise SimulatedCrash(where)
        return delta


@attrs.frozen
class StepCall:
    """One step attempt that really ran (step, poll or submitter)."""

    execution_id: str
    operation_id: str
    name: str | None
    attempt: int


class StepTracker(Hooks):
    """Records step attempts; flags a recorded success running again; can crash.

    ``crash_during`` holds 1-based attempt numbers (counted over the tracker's
    life); such an attempt dies as it starts, before its function runs.
    """

    def __init__(
        self,
        store: RecordingStore,
        crash_during: Collection[int] = (),
        *,
        total: int | None = None,
        crashes: list[str] | None = None,
    ) -> None:
        self.store = store
        self.crash_during = frozenset(crash_during)
        self.total = total
        self.calls: list[StepCall] = []
        self.violations: list[str] = []
        self.crashes: list[str] = [] if crashes is None else crashes
        self._lock = threading.Lock()

    def on_step_attempt_start(
        self, execution_id: str, *, operation_id: str, name: str | None, attempt: int
    ) -> None:
        op = self.store.load(execution_id).get(operation_id)
        what = describe_operation(
            op.sub_type if op else None, op.type.value if op else "STEP", name
        )
        if op is not None and op.status is OperationStatus.SUCCEEDED:
            self.violations.append(
                f"{what} ran again (attempt {attempt}) although its success was recorded"
            )
        with self._lock:
            self.calls.append(StepCall(execution_id, operation_id, name, attempt))
            n = len(self.calls)
        if n in self.crash_during:
            of = f" of {self.total}" if self.total and not self.crashes else ""
            where = f"during step attempt {n}{of}: attempt {attempt} of {what}"
            self.crashes.append(where)
            if operation_id in self.store.at_most_once:
                self.store.interrupted.add(operation_id)
            raise SimulatedCrash(where)


class HarnessEngine(InMemoryEngine):
    """The in-memory engine, running every invocation with ``hooks``."""

    def __init__(
        self,
        *,
        store: MemoryStore | None = None,
        clock: VirtualClock | None = None,
        hooks: Sequence[Hooks] = (),
        functions: Mapping[str, Callable[..., Any]] | None = None,
        check_args: bool = True,
    ) -> None:
        super().__init__(
            store=store, clock=clock, functions=functions, check_args=check_args, hooks=hooks
        )


# --------------------------------------------------------------------- callbacks


@attrs.frozen
class PendingCallback:
    """A callback the workflow waits on.

    ``round`` counts the times the execution has waited on callbacks (from 1);
    ``index`` is this callback's place among the ones pending in this round
    (0-based, by operation id). Both are logical points a crash does not move.
    """

    callback_id: str
    name: str | None
    operation_id: str
    round: int
    index: int = 0


@attrs.frozen
class CallbackAnswer:
    """What the outside world does with a pending callback."""

    action: str  # "succeed" | "fail"
    payload: str | None = None
    error: ErrorObject | None = None


def succeed(payload: str = "") -> CallbackAnswer:
    """Complete the callback successfully with ``payload`` (a string, as sent on AWS)."""
    return CallbackAnswer("succeed", payload=payload)


def fail(message: str = "", error_type: str = "CallbackFailed") -> CallbackAnswer:
    """Complete the callback with a failure."""
    return CallbackAnswer("fail", error=ErrorObject(type=error_type, message=message))


CallbackPolicy = Callable[[PendingCallback], CallbackAnswer | None]
"""Called for each pending callback when the workflow waits; None leaves it pending."""


def succeed_all(payload: str = "ok") -> CallbackPolicy:
    """The default policy: succeed every pending callback with ``payload``."""

    def policy(cb: PendingCallback) -> CallbackAnswer:
        return succeed(payload)

    return policy


def leave_pending(cb: PendingCallback) -> None:
    """A policy that never completes a callback (timeouts decide)."""
    return None


def pending_callbacks(store: MemoryStore, execution_id: str) -> list[Operation]:
    """The execution's callbacks still waiting for the outside world, by id."""
    return sorted(
        (
            op
            for op in store.load(execution_id).values()
            if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        ),
        key=lambda op: op.id,
    )


class StuckError(AssertionError):
    """The execution waits on something neither the callback policy nor time provides."""


def drive(
    engine: InMemoryEngine,
    workflow: Callable[..., Any],
    execution_id: str,
    policy: CallbackPolicy,
    *,
    max_rounds: int = 10_000,
) -> ExecutionResult:
    """Resume until the execution ends; a :class:`SimulatedCrash` is followed by a resume.

    Whenever the execution waits on callbacks, ``policy`` answers them; when it
    answers none, the clock moves to the next timer.
    """
    rounds = 0
    for _ in range(max_rounds):
        try:
            result = engine.resume(workflow, execution_id)
        except SimulatedCrash:
            continue
        if result.status != "RUNNING":
            return result
        pending = pending_callbacks(engine.store, execution_id)
        answered = 0
        if pending:
            rounds += 1
            for i, op in enumerate(pending):
                answer = policy(PendingCallback(op.callback_id or "", op.name, op.id, rounds, i))
                if answer is None:
                    continue
                engine.store.complete_callback(
                    op.callback_id or "",
                    answer.action,
                    engine.clock.now(),
                    payload=answer.payload,
                    error=answer.error,
                )
                answered += 1
        if answered:
            continue
        wake = engine.store.next_timer(execution_id)
        if wake is None:
            names = ", ".join(describe_operation(op.sub_type, None, op.name) for op in pending)
            raise StuckError(
                f"the execution waits on {names or 'nothing the engine can see'} and the "
                "callback policy completes none of them; give check_replay a policy that "
                "answers them (callbacks=...)"
            )
        engine.clock.sleep_until(wake)
    raise StuckError(f"the execution did not finish within {max_rounds} resumes")
