"""The in-memory engine: plays the durable service's part in one process.

It keeps executions in a :class:`~durable_gen.MemoryStore`, fires retry and wait
timers on the clock it is given, and re-invokes the workflow after each
suspension. With a :class:`VirtualClock` (the default) waits and retry delays take
no real time; with :class:`RealClock` they are slept through.

An execution started with a ``timeout`` (Lambda's ExecutionTimeout) or a
``deadline`` ends TIMED_OUT at it, as on the SQLite engine: the engine sleeps to the
deadline rather than past it, and looks before each invocation. It does not look
while an invocation runs: a step that is still running at the deadline (only
possible on a real clock) records its result, and the execution times out when it
next suspends, or succeeds if it ends first.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._core import service as _service
from .._core.errors import ErrorObject
from .._core.log import OperationStatus, OperationType
from .._core.retry import RetryPolicy
from .._core.serdes import DEFAULT_SERDES
from .._stores.memory import MemoryStore
from .clock import (
    Clock,
    VirtualClock,
)
from .hooks import HookRunner, Hooks
from .limits import Limits, deadline_ms
from .local import (
    INVOCATION_RETRY,
    ExecutionResult,
    LocalEngine,
)

__all__ = ["InMemoryEngine"]


class InMemoryEngine(LocalEngine):
    """Runs workflows to completion in this process, on a virtual clock by default.

    ``engine.run(workflow, input)`` starts an execution and drives it: straight-line
    steps run inline in one invocation; after each suspension (a wait, a retry
    delay) the clock is moved to the next timer, timers fire, and the workflow is
    re-invoked, replaying its log. ``check_args`` compares a digest of each step's
    arguments with the recorded one on replay. The resume loop is
    :class:`~durable_gen._engine.local.LocalEngine`'s, shared with the SQLite engine.
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
        invocation_retry: RetryPolicy = INVOCATION_RETRY,
    ) -> None:
        super().__init__(
            store if store is not None else MemoryStore(),
            clock if clock is not None else VirtualClock(),
            check_args=check_args,
            max_invocations=max_invocations,
            hooks=hooks,
            invocation_retry=invocation_retry,
        )
        #: Durable functions that ``Invoke(function_name, ...)`` can reach, by name.
        self.functions: dict[str, Callable[..., Any]] = dict(functions or {})

    def register(self, function_name: str, workflow: Callable[..., Any]) -> None:
        """Make ``workflow`` invocable as ``Invoke(function_name, payload)``."""
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, f"function {function_name!r}")
        self.functions[function_name] = workflow

    def start(
        self,
        workflow: Callable[..., Any],
        input: Any = None,
        *,
        execution_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime.datetime | None = None,
    ) -> str:
        """Record a new execution (without running it) and return its id; ``timeout``
        (seconds, Lambda's ExecutionTimeout) and ``deadline`` (a timezone-aware datetime;
        the earlier wins): an execution still running then ends TIMED_OUT. Bad values:
        a :class:`~durable_gen.ValidationError`, and nothing is recorded."""
        if timeout is None and deadline is None:
            return super().start(workflow, input, execution_id=execution_id)
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, "a workflow")
        now = self.clock.now()
        limits = Limits.of(timeout=timeout)
        at = None if deadline is None else deadline_ms(deadline, now)
        if limits.timeout_ms is not None:
            by_timeout = now + limits.timeout_ms
            at = by_timeout if at is None else min(at, by_timeout)
        execution_id = execution_id or uuid.uuid4().hex
        self.store.create(
            execution_id,
            DEFAULT_SERDES.serialize(input),
            now,
            deadline=at,
            timeout_ms=limits.timeout_ms,
        )
        return execution_id

    def run(
        self,
        workflow: Callable[..., Any],
        input: Any = None,
        *,
        execution_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime.datetime | None = None,
    ) -> ExecutionResult:
        """Start an execution (``timeout``, ``deadline``: as :meth:`start`) and drive it
        as far as it goes."""
        execution_id = self.start(
            workflow, input, execution_id=execution_id, timeout=timeout, deadline=deadline
        )
        return self.resume(workflow, execution_id)

    def resume(
        self, workflow: Callable[..., Any], execution_id: str, *, wait: bool = True
    ) -> ExecutionResult:
        """Drive the execution; chained invokes run as executions of registered functions.
        One past its deadline ends TIMED_OUT instead."""
        if self._time_out_if_due(execution_id):
            return self.result(execution_id)
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
                self.store.create(
                    child,
                    op.input_payload or "null",
                    now(),
                    trace_context=self._invoke_trace_context(execution_id, op.id),
                )
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

    def _invoke_trace_context(self, execution_id: str, operation_id: str) -> str | None:
        """The trace context the hooks give the execution an invoke starts (None: no
        hook traces)."""
        hook = HookRunner(self.hooks, execution_id)
        if not hook.wants("invoke_trace_context"):
            return None
        answer = hook.first(
            "invoke_trace_context",
            operation_id=operation_id,
            execution_started=self.store.load(execution_id)[execution_id].start_timestamp,
            traceparent=self.store.trace_context(execution_id),
        )
        return answer if isinstance(answer, str) else None

    def _time_out_if_due(self, execution_id: str) -> bool:
        """End the execution TIMED_OUT if its deadline has come; True if it did."""
        if not self.store.exists(execution_id):
            return False
        return self.store.time_out(execution_id, self.clock.now())

    def _sleep_until(self, execution_id: str, when: int) -> bool:
        # While a callback is pending, time is not skipped: the outside world may
        # complete it at any moment. The engine returns RUNNING; complete the callback
        # (or advance the clock past its timeout) and resume.
        ops = self.store.load(execution_id).values()
        if any(
            op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED for op in ops
        ):
            return False
        deadline = self.store.deadline(execution_id)
        if deadline is not None and when >= deadline:
            self.clock.sleep_until(deadline)  # not past it: it ends TIMED_OUT there
            return not self._time_out_if_due(execution_id)
        self.clock.sleep_until(when)
        return True
