"""The local engine's resume loop, shared by the in-memory and SQLite engines.

An engine plays the durable service's part on one machine: it records a new
execution, then repeatedly fires due timers, runs one invocation of the workflow
(:func:`~durable_gen._engine.driver.run_invocation`), records an ``InvocationCompleted``
event, and either records the execution's end or sleeps until the next timer.
The store is the I/O port; the clock is injected (virtual in tests, real for the
``durable-gen`` command).

Subclasses hook into the loop: :meth:`LocalEngine._hold` (the SQLite engine
takes a lease there) and :meth:`LocalEngine._sleep_until`. The store notes the
invocation running (``begin_invocation``/``end_invocation``), so after a crash it
knows one was interrupted.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import attrs

from .._core import service as _service
from .._core.contract import EngineStore
from .._core.errors import (
    DurableGenError,
    ErrorObject,
    InvocationError,
    InvocationInterruptedError,
    StoreError,
    ValidationError,
    WorkflowFailedError,
    error_from_exception,
)
from .._core.log import Operation
from .._core.retry import Jitter, RetryPolicy
from .._core.serdes import DEFAULT_SERDES
from .clock import Clock
from .driver import (
    InvocationOutcome,
    run_invocation,
)
from .hooks import Hooks

__all__ = ["INVOCATION_RETRY", "ExecutionResult", "LocalEngine"]

#: How an engine retries an invocation that failed with a retryable
#: :class:`~durable_gen.InvocationError`: 5 consecutive failed invocations at most
#: (as AWS's emulator), 5 s after the first, doubling up to 60 s. Then the execution
#: fails with the last invocation's error.
INVOCATION_RETRY: Final = RetryPolicy(
    max_attempts=5, initial_delay=5, max_delay=60, jitter=Jitter.NONE
)


@attrs.frozen(kw_only=True)
class ExecutionResult:
    """Where an execution stands after the engine ran it as far as it could.

    ``status`` is SUCCEEDED, FAILED, STOPPED, or RUNNING (suspended: blocked on a
    timer the engine was told not to wait for, or on something only the outside
    world can complete, e.g. a callback). ``result`` is the workflow's return
    value; ``error`` the recorded failure.
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
        if self.status in ("FAILED", "STOPPED", "TIMED_OUT"):
            raise WorkflowFailedError(
                self.error or ErrorObject(type="Error"), execution_id=self.execution_id
            )
        if self.status != "SUCCEEDED":
            raise ValidationError(
                f"execution {self.execution_id!r} has not finished (status {self.status})"
            )
        return self.result


class LocalEngine:
    """Drives executions on one machine against ``store``, on ``clock``.

    ``engine.run(workflow, input)`` starts an execution and drives it: straight-line
    steps run inline in one invocation; after each suspension (a wait, a retry
    delay) the clock sleeps until the next timer, timers fire, and the workflow is
    re-invoked, replaying its log. ``check_args`` compares a digest of each step's
    arguments with the recorded one on replay.
    """

    def __init__(
        self,
        store: EngineStore,
        clock: Clock,
        *,
        check_args: bool = True,
        max_invocations: int = 100_000,
        hooks: Sequence[Hooks] = (),
        invocation_retry: RetryPolicy = INVOCATION_RETRY,
    ) -> None:
        self.store = store
        self.clock = clock
        self.check_args = check_args
        self.max_invocations = max_invocations
        #: Lifecycle hooks called in every invocation (see :class:`~durable_gen.Hooks`).
        self.hooks: tuple[Hooks, ...] = tuple(hooks)
        #: When an invocation that failed with an InvocationError is tried again
        #: (``attempt``: the consecutive failed invocations, from the history).
        self.invocation_retry = invocation_retry
        self._retry_at: dict[str, int] = {}  # execution -> when its failed invocation reruns

    # ------------------------------------------------------------------ public API

    def start(
        self, workflow: Callable[..., Any], input: Any = None, *, execution_id: str | None = None
    ) -> str:
        """Record a new execution (without running it) and return its id.

        ``execution_id`` is a name, as on Lambda: when an execution of that name
        exists already with the same input, it is that execution's id that is
        returned (nothing new is recorded; ``run`` then returns its outcome); with
        another input, :class:`~durable_gen.ExecutionAlreadyStartedError`.
        """
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, "a workflow")
        execution_id = execution_id or uuid.uuid4().hex
        payload = DEFAULT_SERDES.serialize(input)
        self._create(workflow, execution_id, payload)
        return execution_id

    def run(
        self, workflow: Callable[..., Any], input: Any = None, *, execution_id: str | None = None
    ) -> ExecutionResult:
        """Start an execution of ``workflow`` with ``input`` and drive it as far as it goes."""
        execution_id = self.start(workflow, input, execution_id=execution_id)
        return self.resume(workflow, execution_id)

    def invoke_once(self, workflow: Callable[..., Any], execution_id: str) -> InvocationOutcome:
        """Run exactly one invocation (fire due timers first); record its end.

        Records an ``InvocationCompleted`` event (with the error when the invocation
        itself failed, e.g. on non-deterministic replay) and, when the workflow
        finished, the execution's end.
        """
        clock = self.clock
        request_id = str(uuid.uuid4())
        started = clock.now()
        self._begin_invocation(execution_id, request_id, started)
        try:
            outcome = run_invocation(
                workflow,
                execution_id,
                self.store,
                clock.now,
                check_args=self.check_args,
                hooks=self.hooks,
            )
        except DurableGenError as e:
            # a pause or a shutdown ends the invocation at a recorded checkpoint: no error;
            # so does a lost connection (a retryable store error): nothing failed, the
            # execution goes on from its last checkpoint, and it must not count among the
            # failed invocations that end an execution (``invocation_retry``)
            clean = isinstance(e, InvocationInterruptedError) or (
                isinstance(e, StoreError) and e.retryable
            )
            error = None if clean else error_from_exception(e)
            event = _service.invocation_completed_event(
                execution_id, started, clock.now(), request_id, error
            )
            with contextlib.suppress(DurableGenError):
                self._end_invocation(execution_id, event)
            raise
        self._end_invocation(
            execution_id,
            _service.invocation_completed_event(execution_id, started, clock.now(), request_id),
        )
        if outcome.status != "PENDING":
            self.store.finish(
                execution_id,
                outcome.status,
                clock.now(),
                result=outcome.result,
                error=outcome.error,
            )
        return outcome

    def resume(
        self, workflow: Callable[..., Any], execution_id: str, *, wait: bool = True
    ) -> ExecutionResult:
        """Drive an existing execution until it finishes or waits on the outside world.

        With ``wait=False`` it also returns (status RUNNING) when the execution
        suspends on a timer that is not due yet, instead of sleeping until it is.
        """
        invocations = 0
        with self._hold(execution_id):
            status, _, _ = self.store.status(execution_id)
            while status == "RUNNING":
                if invocations >= self.max_invocations:
                    raise StoreError(
                        f"execution {execution_id!r} did not finish within "
                        f"{self.max_invocations} invocations"
                    )
                try:
                    outcome = self.invoke_once(workflow, execution_id)
                except InvocationError as e:
                    invocations += 1
                    retry_at = self._invocation_failed(execution_id, e)
                    if retry_at is None:
                        break  # the execution failed with it
                    if not wait and retry_at > self.clock.now():
                        break  # due again then (a worker's lease records it)
                    if not self._sleep_until(execution_id, retry_at):
                        break
                    self._retry_at.pop(execution_id, None)
                    status, _, _ = self.store.status(execution_id)
                    continue
                invocations += 1
                if outcome.status != "PENDING":
                    break
                wake = self.store.next_timer(execution_id)
                if wake is None:
                    # only an external event (a callback) can move it on
                    if not wait or not self._await_event(execution_id):
                        break
                else:
                    if not wait and wake > self.clock.now():
                        break
                    if not self._sleep_until(execution_id, wake):
                        break
                status, _, _ = self.store.status(execution_id)
        return self.result(execution_id, invocations=invocations)

    def _invocation_failed(self, execution_id: str, error: InvocationError) -> int | None:
        """An invocation failed with ``error`` (its InvocationCompleted event is recorded):
        when to run the next one (epoch ms), or None once the execution failed with it."""
        failures = _service.consecutive_failed_invocations(self.store.history(execution_id))
        decision = self.invocation_retry.decide(
            error, max(failures, 1), jitter_key=f"{execution_id}/invocation-{failures}"
        )
        now = self.clock.now()
        if not decision.retry:
            self.store.finish(execution_id, "FAILED", now, error=error_from_exception(error))
            return None
        retry_at = now + decision.delay_seconds * 1000
        self._retry_at[execution_id] = retry_at
        return retry_at

    def result(self, execution_id: str, *, invocations: int = 0) -> ExecutionResult:
        """The execution as recorded now."""
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

    # ------------------------------------------------------------------ hooks

    def _create(self, workflow: Callable[..., Any], execution_id: str, payload: str) -> None:
        self.store.create(execution_id, payload, self.clock.now())

    @contextlib.contextmanager
    def _hold(self, execution_id: str) -> Iterator[None]:
        """Hold the right to advance ``execution_id`` (a lease, for shared stores)."""
        yield

    def _begin_invocation(self, execution_id: str, request_id: str, now: int) -> None:
        self.store.begin_invocation(execution_id, request_id, now)

    def _end_invocation(self, execution_id: str, event: dict[str, Any]) -> None:
        self.store.end_invocation(execution_id, event)

    def _sleep_until(self, execution_id: str, when: int) -> bool:
        """Sleep until ``when``; False when the engine must stop driving instead."""
        self.clock.sleep_until(when)
        return True

    def _await_event(self, execution_id: str) -> bool:
        """Block until the outside world changes the execution (True) or give up (False).

        Engines whose executions other processes can complete (callbacks) wait here;
        the in-memory engine returns at once.
        """
        return False
