"""One invocation: load the log, interpret, run steps, persist updates, stop.

The driver performs the interpreter's commands against a store (the I/O port).
It is shared by the local engines (in-memory and SQLite); the Lambda shim has its
own driver because it batches against the remote checkpoint API.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import attrs

from .._core.commands import (
    AwaitOutcome,
    Checkpoint,
    Complete,
    Fail,
    FailInvocation,
    RunStep,
    Suspend,
)
from .._core.errors import (
    CorruptLogError,
    ErrorObject,
    InternalError,
    SerializationError,
    error_from_exception,
)
from .._core.interpreter import Interpreter
from .._core.log import (
    TERMINAL_STATUSES,
    Operation,
    OperationType,
    OperationUpdate,
)
from .._core.serdes import DEFAULT_SERDES
from . import logger as _logging
from .hooks import (
    HookRunner,
    Hooks,
)

__all__ = [
    "InvocationOutcome",
    "Store",
    "current_attempt",
    "drive_interpreter",
    "run_invocation",
    "run_step_attempt",
]

_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("durable_gen_attempt", default=0)


def current_attempt() -> int:
    """Inside a step function: the 1-based number of the running attempt (0 outside)."""
    return _attempt.get()


class Store(Protocol):
    """What the driver needs from a store."""

    def load(self, execution_id: str) -> Mapping[str, Operation]: ...

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]: ...


@attrs.frozen(kw_only=True)
class InvocationOutcome:
    """How one invocation ended: SUCCEEDED, FAILED or PENDING (suspended)."""

    status: str
    result: str | None = None
    value: Any = None
    error: ErrorObject | None = None
    exception: BaseException | None = None
    wake_at: int | None = None
    steps_run: int = 0


def load_input(operations: Mapping[str, Operation], execution_id: str) -> Any:
    op = operations.get(execution_id)
    if op is None or op.type is not OperationType.EXECUTION:
        raise CorruptLogError(f"the log of execution {execution_id!r} has no EXECUTION operation")
    payload = op.input_payload
    if payload is None or payload == "":
        return None
    try:
        return DEFAULT_SERDES.deserialize(payload)
    except SerializationError as e:
        raise CorruptLogError(f"the input of execution {execution_id!r} cannot be read: {e}") from e


def run_step_attempt(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    attempt: int,
    log_ctx: _logging.LogContext | None = None,
) -> Any:
    """Run one step attempt as engines do: attempt number and log context set."""
    token = _attempt.set(attempt)
    log_token = _logging.current.set(log_ctx)
    try:
        return fn(*args)
    finally:
        _logging.current.reset(log_token)
        _attempt.reset(token)


def run_invocation(
    workflow: Callable[..., Any],
    execution_id: str,
    store: Store,
    now: Callable[[], int],
    *,
    check_args: bool = True,
    max_workers: int = 16,
    hooks: Sequence[Hooks] = (),
) -> InvocationOutcome:
    """Run one invocation of ``workflow`` for ``execution_id`` until it stops.

    A step that is the only one outstanding runs inline in this thread (ordinary
    sequential workflows never touch a thread). When the interpreter hands out
    several steps before it needs an outcome (Parallel/Map branches, combinator
    operands) they run concurrently on a thread pool of ``max_workers``; the
    interpreter retires their outcomes in a deterministic order whatever order
    they finish in. Updates that need not be durable before the next action are
    handed to the store with ``durable=False`` so it may batch them.
    """
    ops = store.load(execution_id)
    input_value = load_input(ops, execution_id)
    interp = Interpreter(
        workflow, input_value, ops, now=now(), execution_id=execution_id, check_args=check_args
    )
    hook = HookRunner(hooks, execution_id)
    if hook:
        execution_op = ops.get(execution_id)
        hook.call(
            "on_invocation_info",
            execution_started=execution_op.start_timestamp if execution_op else now(),
        )
        stored = getattr(store, "trace_context", None)  # the caller's trace, if any
        if stored is not None and hook.wants("on_trace_context"):
            traceparent = stored(execution_id)
            if traceparent is not None:
                hook.call("on_trace_context", traceparent=traceparent)
        hook.call("on_invocation_start", first=len(ops) <= 1)
        interp.observed = []  # what the workflow replays, for on_operation_replayed
        interp.virtual_events = []  # virtual child contexts, for on_virtual_context_*
    log_sink = getattr(store, "log_sink", None)  # a store that keeps log records
    try:
        outcome = drive_interpreter(
            interp,
            execution_id,
            store,
            now,
            max_workers,
            hook,
            log_sink=log_sink(execution_id) if log_sink is not None else None,
        )
    except BaseException as e:
        if hook:  # the invocation raised (it will be retried): it still ends
            hook.call("on_invocation_end", status="RETRY", error=error_from_exception(e))
        raise
    if hook:
        hook.call("on_invocation_end", status=outcome.status, error=outcome.error)
    return outcome


#: operations whose terminal state only an invocation writes (the service ends the others)
_WRITTEN_BY_INVOCATIONS = frozenset({OperationType.STEP, OperationType.CONTEXT})


def _since_previous_invocation(
    store: Store, execution_id: str
) -> tuple[int | None, frozenset[str] | None]:
    """When the execution's previous invocation ended (epoch ms) and the operations
    with history events after it, if the store keeps a history."""
    history = getattr(store, "history", None)
    if history is None:
        return None, None
    try:
        events = history(execution_id)
    except Exception:
        return None, None
    later: set[str] = set()
    for event in reversed(events):
        if event.get("EventType") == "InvocationCompleted":
            details = event.get("InvocationCompletedDetails") or {}
            end = details.get("EndTimestamp", event.get("EventTimestamp"))
            return (int(end) if isinstance(end, (int, float)) else None), frozenset(later)
        op_id = event.get("Id")
        if isinstance(op_id, str):
            later.add(op_id)
    return None, None


def drive_interpreter(
    interp: Interpreter,
    execution_id: str,
    store: Store,
    now: Callable[[], int],
    max_workers: int = 16,
    hook: HookRunner | None = None,
    *,
    log_sink: _logging.LogSink | None = None,
    updated_ids: Collection[str] | None = None,
) -> InvocationOutcome:
    """Perform ``interp``'s commands against ``store`` until the invocation ends.

    Shared by the local engines and the Lambda shim (whose store adapter buffers
    what may wait and flushes to the checkpoint API what must be durable).
    ``log_sink``: where the store keeps the invocation's log records, if it does.
    ``updated_ids``: the operations that changed since the previous invocation, when
    the caller knows them (Lambda's ``UpdatedOperationIds``); otherwise the store's
    history says.
    """
    if hook is None:
        hook = HookRunner((), execution_id)
    hooked = bool(hook)  # its hooks are fixed: test once, not per update and attempt
    steps = 0
    workflow_log = _logging.WorkflowLogContext(interp, log_sink)

    last_now = 0  # the time of the last checkpoint

    def persist(updates: list[OperationUpdate], durable: bool) -> Mapping[str, Operation]:
        nonlocal last_now
        last_now = now()
        if not hooked:
            return store.checkpoint(execution_id, updates, last_now, durable=durable)
        began = time.perf_counter()
        delta = store.checkpoint(execution_id, updates, last_now, durable=durable)
        hook.call(
            "on_checkpoint",
            updates=len(updates),
            durable=durable,
            seconds=time.perf_counter() - began,
        )
        hook.updates(updates)
        return delta

    def persist_and_merge(updates: list[OperationUpdate], durable: bool) -> None:
        delta = persist(updates, durable)
        if delta:
            interp.merge(delta)

    # Workflow code runs inside next_command(): its log lines carry the workflow's
    # context. Without hooks nothing else runs in this thread between two commands
    # but step attempts (which set and restore their own), so the context is set
    # once for the whole loop; with hooks, only around each command.
    observed = interp.observed
    # (end of the previous invocation, operations with events since), read once
    previous: list[tuple[int | None, frozenset[str] | None]] = []

    def replayed() -> None:
        """Report the recorded operations the workflow reached (hooks only)."""
        assert observed is not None
        ops = observed[:]
        observed.clear()
        for op in ops:
            if op.status in TERMINAL_STATUSES and op.type in _WRITTEN_BY_INVOCATIONS:
                changed = False  # the invocation that ended it reported it then
            elif updated_ids is not None:
                changed = op.id in updated_ids
            else:
                if not previous:
                    previous.append(_since_previous_invocation(store, execution_id))
                since, later = previous[0]
                if later is not None and op.status in TERMINAL_STATUSES:
                    changed = op.id in later  # its end is an event after that invocation
                else:  # a retry or poll that became due records no event: by time
                    last_change = op.end_timestamp or op.start_timestamp
                    if op.next_attempt_timestamp is not None:
                        last_change = max(last_change, op.next_attempt_timestamp)
                    changed = since is None or last_change >= since
            hook.call("on_operation_replayed", op, changed=changed)

    virtual = interp.virtual_events

    def virtual_contexts() -> None:
        """Report the virtual child contexts that started or ended (hooks only)."""
        assert virtual is not None
        events = virtual[:]
        virtual.clear()
        for event in events:
            if event[0] == "start":
                _, op_id, name, sub_type, parent_id = event
                hook.call(
                    "on_virtual_context_start",
                    operation_id=op_id,
                    name=name,
                    sub_type=sub_type,
                    parent_id=parent_id,
                )
            else:
                hook.call("on_virtual_context_end", operation_id=event[1], error=event[2])

    def next_command() -> Any:
        token = _logging.current.set(workflow_log)
        try:
            return interp.next_command()
        finally:
            _logging.current.reset(token)
            if virtual:
                virtual_contexts()
            if observed:
                replayed()

    log_token = None
    if not hooked:
        next_command = interp.next_command  # the context is set on the next line
        log_token = _logging.current.set(workflow_log)

    def run_step(cmd: RunStep) -> Any:
        if hooked:
            hook.call(
                "on_step_attempt_start", operation_id=cmd.op_id, name=cmd.name, attempt=cmd.attempt
            )
        return run_step_attempt(
            cmd.fn,
            cmd.args,
            cmd.attempt,
            _logging.StepLogContext(
                interp.execution_id, cmd.op_id, cmd.name, cmd.attempt, log_sink
            ),
        )

    pending: list[RunStep] = []  # handed out, not yet started
    running: dict[Future[Any], RunStep] = {}
    pool: ThreadPoolExecutor | None = None

    def report(
        cmd: RunStep, fut: Future[Any] | None, value: Any, exc: BaseException | None
    ) -> None:
        if fut is not None:
            exc = fut.exception()
            if exc is None:
                value = fut.result()
        if hooked and (exc is None or isinstance(exc, Exception)):
            hook.call(
                "on_step_attempt_end",
                operation_id=cmd.op_id,
                name=cmd.name,
                attempt=cmd.attempt,
                succeeded=exc is None,
                error=exc,
            )
        interp.now = now()
        if exc is None:
            interp.step_returned(cmd.op_id, value)
        elif isinstance(exc, Exception):
            interp.step_raised(cmd.op_id, exc)
        else:  # KeyboardInterrupt, SystemExit, a simulated crash: the process stops
            raise exc

    def run_inline(step: RunStep) -> None:
        """The only step outstanding: run it in this thread and report its outcome."""
        try:
            value = run_step(step)
        except Exception as e:
            report(step, None, None, e)
        else:
            report(step, None, value, None)

    def launch_pending() -> None:
        nonlocal pool
        if not pending:
            return
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="durable-step")
        for cmd in pending:
            running[pool.submit(run_step, cmd)] = cmd
        pending.clear()

    try:
        while True:
            cmd = next_command()
            tcmd = type(cmd)
            if tcmd is RunStep:
                assert isinstance(cmd, RunStep)
                if cmd.updates:
                    persist_and_merge(cmd.updates, cmd.durable_first)
                steps += 1
                if not pending and not running and interp.awaits_only(cmd.op_id):
                    run_inline(cmd)  # what the AwaitOutcome that would come next does
                    continue
                pending.append(cmd)
                continue
            if tcmd is AwaitOutcome:
                if cmd.updates:
                    persist_and_merge(cmd.updates, False)
                if len(pending) == 1 and not running:
                    run_inline(pending.pop())
                    continue
                launch_pending()
                if not running:
                    raise InternalError("the interpreter awaits an outcome but no step is running")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in [f for f in running if f in done]:  # in the order issued
                    report(running.pop(fut), fut, None, None)
                continue
            launch_pending()
            if tcmd is Checkpoint:
                delta = persist(cmd.updates, True)
                interp.checkpointed(delta)
                interp.now = last_now  # the checkpoint's time: one clock read less per step
                continue
            # The invocation ends: let abandoned attempts (their batch completed
            # without them) finish, since a thread cannot be killed.
            for fut in list(running):
                fut.exception()
            if tcmd is Suspend:
                assert isinstance(cmd, Suspend)
                persist(cmd.updates, True)
                return InvocationOutcome(status="PENDING", wake_at=cmd.wake_at, steps_run=steps)
            if tcmd is Complete:
                assert isinstance(cmd, Complete)
                persist(cmd.updates, True)
                return InvocationOutcome(
                    status="SUCCEEDED", result=cmd.result, value=cmd.value, steps_run=steps
                )
            if tcmd is Fail:
                assert isinstance(cmd, Fail)
                persist(cmd.updates, True)
                return InvocationOutcome(
                    status="FAILED", error=cmd.error, exception=cmd.exception, steps_run=steps
                )
            if tcmd is FailInvocation:
                assert isinstance(cmd, FailInvocation)
                # what was handed over without waiting (the START of an at-least-once
                # step, of a context) is made durable, as AWS's checkpoint thread
                # drains its queue while the handler unwinds; then the invocation fails
                persist(cmd.updates, True)
                raise cmd.exception
            raise InternalError(f"unknown command {cmd!r}")
    except SystemExit:
        # The runtime is exiting (a step called sys.exit: Lambda's Runtime.ExitError).
        # Like AWS's SDK, whose checkpoint thread drains its queue as the handler
        # unwinds, make what was handed over without waiting (the STARTs of
        # at-least-once steps, of contexts) durable first, so the next invocation
        # resumes an interrupted context instead of finding nothing recorded. A
        # process that is killed outright loses them, as it would on AWS.
        with contextlib.suppress(Exception):
            store.checkpoint(execution_id, [], now(), durable=True)
        raise
    finally:
        interp.close()
        if log_token is not None:
            _logging.current.reset(log_token)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
