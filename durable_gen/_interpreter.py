"""The replay interpreter: pure, sans-I/O.

This module owns every replay rule. Given a workflow, its input and the
checkpoint log, it drives the workflow's generators: for each yielded descriptor
it either replays the recorded outcome (the value is sent in; a failure is thrown
in with ``gen.throw``) or hands the engine a command (run this step attempt,
make these updates durable, suspend until ...). It never opens a database, reads
a clock, draws a random number or starts a thread: time comes in as ``now``, step
functions are run by the engine, and the engine reports back.

Usage (the engine's loop)::

    interp = Interpreter(workflow, input_value, operations, now=..., execution_id=...)
    while True:
        cmd = interp.next_command()
        # perform cmd (see _commands.py), report outcomes, stop on Suspend/Complete/Fail

Replay rules (see DESIGN.md):

- Operation ids come from position: the n-th operation of a context gets
  ``operation_id(context_id, n)``.
- A recorded operation must have the Type, SubType, Name and ParentId of what
  the workflow yields at that position, else :class:`NonDeterminismError`.
- A context that finishes before reaching operations its log recorded is
  non-deterministic too.
- Suspension closes every open generator (innermost first): ``finally`` blocks
  in a workflow run at every suspension, not only at the end.
"""

from __future__ import annotations

import contextlib
import zlib
from collections import deque
from collections.abc import Callable, Generator, Mapping
from typing import Any

from ._commands import AwaitOutcome, Checkpoint, Command, Complete, Fail, RunStep, Suspend
from ._descriptors import ChildContext, Step, StepSemantics, Wait, check_generator_function
from ._errors import (
    ChildContextError,
    CorruptLogError,
    ErrorObject,
    InternalError,
    NonDeterminismError,
    SerializationError,
    StepError,
    StepInterruptedError,
    WorkflowDefinitionError,
    error_from_exception,
    qualified_name,
)
from ._log import (
    _ROOT_IDS,
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    operation_id,
)
from ._retry import RetryPolicy
from ._serdes import DEFAULT_SERDES, Serdes

__all__ = ["Interpreter", "describe_operation", "ordinal"]

#: Child-context results larger than this are not stored; they are rebuilt by replay.
REPLAY_CHILDREN_THRESHOLD = 256 * 1024

_DEFAULT_RETRY = RetryPolicy.default()

_SUCCEEDED = OperationStatus.SUCCEEDED
_FAILED = OperationStatus.FAILED
_STARTED = OperationStatus.STARTED
_PENDING = OperationStatus.PENDING
_READY = OperationStatus.READY
_STEP = OperationType.STEP
_WAIT = OperationType.WAIT
_CONTEXT = OperationType.CONTEXT
_ST_STEP = OperationSubType.STEP.value
_ST_WAIT = OperationSubType.WAIT.value
_ST_CHILD = OperationSubType.RUN_IN_CHILD_CONTEXT.value

_HINT = (
    "A running execution must yield the operations its log recorded, in the same "
    "order. Keep the old code path for executions started before the change (for "
    "example branch on a version returned by a step), or let them finish before "
    "deploying it."
)

_KIND_WORDS = {
    _ST_STEP: "Step",
    _ST_WAIT: "Wait",
    _ST_CHILD: "ChildContext",
}


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_operation(sub_type: str | None, type_: str | None, name: str | None) -> str:
    """An operation as a person wrote it: ``Step 'charge'``, ``Wait``."""
    kind = _KIND_WORDS.get(sub_type or "") or sub_type or type_ or "operation"
    return f"{kind} {name!r}" if name else kind


class _Ctx:
    """One running context: the root workflow or a child context's generator."""

    __slots__ = (
        "counter",
        "desc",
        "gen",
        "id",
        "label",
        "op_name",
        "parent",
        "rebuild",
        "send_exc",
        "send_value",
        "serdes",
    )

    def __init__(
        self,
        gen: Generator[Any, Any, Any],
        ctx_id: str | None,
        label: str,
        parent: _Ctx | None,
        serdes: Serdes,
        rebuild: bool = False,
    ) -> None:
        self.gen = gen
        self.id = ctx_id
        self.label = label
        self.parent = parent
        self.counter = 0
        self.send_value: Any = None
        self.send_exc: BaseException | None = None
        self.desc: Any = None
        self.op_name: str | None = None
        self.serdes = serdes
        self.rebuild = rebuild  # re-running a succeeded ReplayChildren context


class _Running:
    """A step attempt handed to the engine, awaiting its outcome."""

    __slots__ = ("attempt", "ctx", "desc", "op_id")

    def __init__(self, ctx: _Ctx, desc: Step, op_id: str, attempt: int) -> None:
        self.ctx = ctx
        self.desc = desc
        self.op_id = op_id
        self.attempt = attempt


_SCALARS = frozenset((str, int, float, bool, type(None)))


def args_digest(args: tuple[Any, ...]) -> str | None:
    """A short digest of a step's arguments, or None when they cannot be serialized.

    Only a change detector (CRC-32), not a security measure. Scalars take a fast
    path through ``repr`` (stable for str/int/float/bool/None); anything else is
    serialized with the default serdes first.
    """
    if not args:
        return None
    for a in args:
        if type(a) not in _SCALARS:
            try:
                text = DEFAULT_SERDES.serialize(list(args))
            except SerializationError:
                return None
            break
    else:
        text = repr(args)
    return f"{zlib.crc32(text.encode()):08x}"


class Interpreter:
    """Drives one invocation of a workflow against its log. Pure: no I/O.

    ``operations`` is the log (id -> Operation) as loaded; ``now`` is the current
    time in epoch milliseconds, used only to decide whether a scheduled retry is
    due. ``check_args`` also compares a digest of each step's arguments with the
    recorded one (the embedded and in-memory engines turn it on).
    """

    def __init__(
        self,
        workflow: Callable[..., Any],
        input_value: Any,
        operations: Mapping[str, Operation],
        *,
        now: int,
        execution_id: str,
        check_args: bool = False,
    ) -> None:
        check_generator_function(workflow, "a workflow")
        self._ops: dict[str, Operation] = dict(operations)
        self._recorded = frozenset(self._ops)
        self.now = now
        self.execution_id = execution_id
        self._check_args = check_args
        self._updates: list[OperationUpdate] = []
        self._ready: deque[_Ctx] = deque()
        self._running: dict[str, _Running] = {}
        self._commands: deque[Command] = deque()
        self._parked: dict[int, int] = {}  # id(ctx) -> wake_at (ms) for timer waits
        self._open: list[_Ctx] = []  # contexts whose generators are alive
        self._awaiting_ack: list[tuple[_Ctx, Any, BaseException | None]] | None = None
        self._pending_resumes: list[tuple[_Ctx, Any, BaseException | None]] = []
        self._finished: Command | None = None
        self.replaying = True
        gen = workflow(input_value)
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"a workflow must return a generator when called, got {type(gen).__name__}"
            )
        self._root = _Ctx(gen, None, "the root context", None, DEFAULT_SERDES)
        self._open.append(self._root)
        self._ready.append(self._root)

    # ------------------------------------------------------------------ engine API

    def next_command(self) -> Command:
        """The next thing the engine must do."""
        if self._awaiting_ack is not None:
            raise InternalError(
                "next_command() called while a Checkpoint is unacknowledged; "
                "call checkpointed() once its updates are durable"
            )
        if self._finished is not None:
            return self._finished
        commands = self._commands
        ready = self._ready
        while not commands:
            if ready:
                self._drive(ready.popleft())
                continue
            if self._running:
                return AwaitOutcome(self._take_updates())
            return self._stop()
        cmd = commands.popleft()
        if isinstance(cmd, Checkpoint):
            self._awaiting_ack = self._pending_resumes
            self._pending_resumes = []
        return cmd

    def checkpointed(self, delta: Mapping[str, Operation] | None = None) -> None:
        """The updates of the last Checkpoint are durable; ``delta`` is what changed."""
        if self._awaiting_ack is None:
            raise InternalError("checkpointed() called with no Checkpoint outstanding")
        if delta:
            self._ops.update(delta)
        resumes = self._awaiting_ack
        self._awaiting_ack = None
        for ctx, value, exc in resumes:
            ctx.send_value = value
            ctx.send_exc = exc
            self._ready.append(ctx)

    def step_returned(self, op_id: str, value: Any) -> None:
        """The engine ran a step attempt and it returned ``value``."""
        run = self._take_running(op_id)
        desc = run.desc
        serdes = desc.serdes or DEFAULT_SERDES
        try:
            payload = serdes.serialize(value)
            if not isinstance(payload, str):
                raise SerializationError(
                    f"serdes {type(serdes).__name__}.serialize returned "
                    f"{type(payload).__name__}, not str",
                    value_type=type(payload).__name__,
                )
            if serdes is not DEFAULT_SERDES:
                value = serdes.deserialize(payload)
        except SerializationError as e:
            err = ErrorObject(
                type=qualified_name(SerializationError),
                message=f"step {desc.name or op_id!r} returned a value that cannot be stored: {e}",
            )
            self._fail_step(run, err)
            return
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_STEP,
                action=OperationAction.SUCCEED,
                parent_id=run.ctx.id,
                name=desc.name,
                sub_type=_ST_STEP,
                payload=payload,
            )
        )
        self._checkpoint_then_resume(run.ctx, value, None)

    def step_raised(self, op_id: str, exc: BaseException) -> None:
        """The engine ran a step attempt and it raised ``exc``."""
        run = self._take_running(op_id)
        self._attempt_failed(run, exc, error_from_exception(exc))

    def close(self) -> None:
        """Close every open generator (innermost first)."""
        while self._open:
            ctx = self._open.pop()
            # a finally block that raises while suspending must not hide the suspension
            with contextlib.suppress(Exception):
                ctx.gen.close()

    # ------------------------------------------------------------------ driving

    def _drive(self, ctx: _Ctx) -> None:
        """Run ``ctx`` until it blocks or finishes; replays recorded operations inline."""
        gen = ctx.gen
        ops = self._ops
        root_ids = _ROOT_IDS
        value = ctx.send_value
        exc = ctx.send_exc
        ctx.send_value = ctx.send_exc = None
        while True:
            try:
                desc = gen.send(value) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                self._context_returned(ctx, stop.value)
                return
            except Exception as e:  # the workflow raised
                self._context_raised(ctx, e)
                return
            exc = None
            ctx.counter += 1
            tdesc = type(desc)
            parent = ctx.id
            n = ctx.counter
            op_id = root_ids[n] if parent is None and n < len(root_ids) else operation_id(parent, n)
            op = ops.get(op_id)
            if tdesc is Step:
                if op is not None:
                    if not (
                        op.type is _STEP
                        and op.name == desc.name
                        and op.parent_id == parent
                        and op.sub_type == _ST_STEP
                    ):
                        self._check(ctx, op, _STEP, _ST_STEP, desc.name)
                    status = op.status
                    if status is _SUCCEEDED:
                        if self._check_args and op.args_digest is not None:
                            self._check_digest(ctx, op, desc)
                        res = op.result
                        if res is None:
                            value = None
                        else:
                            try:
                                value = (desc.serdes or DEFAULT_SERDES).deserialize(res)
                            except SerializationError as e:
                                raise self._corrupt(ctx, op, e) from e
                        continue
                    if status is _FAILED:
                        value = None
                        exc = self._step_error(op, desc.name)
                        continue
                if self._start_step(ctx, desc, op_id, op):
                    return
                continue
            if tdesc is Wait:
                if op is not None:
                    self._check(ctx, op, _WAIT, _ST_WAIT, desc.name)
                    if op.is_terminal:
                        value = None
                        continue
                    wake = op.scheduled_end_timestamp
                    if wake is None:
                        raise self._corrupt(ctx, op, "a started wait has no ScheduledEndTimestamp")
                else:
                    self.replaying = False
                    self._updates.append(
                        OperationUpdate(
                            id=op_id,
                            type=_WAIT,
                            action=OperationAction.START,
                            parent_id=parent,
                            name=desc.name,
                            sub_type=_ST_WAIT,
                            wait_seconds=desc.seconds,
                        )
                    )
                    wake = self.now + desc.seconds * 1000
                self._parked[id(ctx)] = wake
                return
            if tdesc is ChildContext:
                if op is not None:
                    self._check(ctx, op, _CONTEXT, _ST_CHILD, desc.name)
                    if op.status is _SUCCEEDED and not op.replay_children:
                        res = op.result
                        try:
                            value = (
                                None
                                if res is None
                                else (desc.serdes or DEFAULT_SERDES).deserialize(res)
                            )
                        except SerializationError as e:
                            raise self._corrupt(ctx, op, e) from e
                        continue
                    if op.status is _FAILED:
                        value = None
                        exc = ChildContextError(
                            op.error or ErrorObject(type="Error"),
                            operation_name=desc.name,
                            operation_id=op_id,
                        )
                        continue
                else:
                    self.replaying = False
                    self._updates.append(
                        OperationUpdate(
                            id=op_id,
                            type=_CONTEXT,
                            action=OperationAction.START,
                            parent_id=parent,
                            name=desc.name,
                            sub_type=_ST_CHILD,
                        )
                    )
                self._start_child(ctx, desc, op_id, op)
                return
            self._bad_yield(ctx, desc)

    def _start_child(self, ctx: _Ctx, desc: ChildContext, op_id: str, op: Operation | None) -> None:
        gen = desc.fn(*desc.args)
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"ChildContext function {desc.name!r} must return a generator, "
                f"got {type(gen).__name__}"
            )
        label = f"child context {desc.name!r}" if desc.name else "child context"
        child = _Ctx(
            gen,
            op_id,
            label,
            ctx,
            desc.serdes or DEFAULT_SERDES,
            rebuild=op is not None and op.status is _SUCCEEDED,
        )
        child.desc = desc
        child.op_name = desc.name
        self._open.append(child)
        self._ready.appendleft(child)

    def _start_step(self, ctx: _Ctx, desc: Step, op_id: str, op: Operation | None) -> bool:
        """Handle a step that is new or in flight. True when ``ctx`` is now blocked."""
        at_most_once = desc.semantics is StepSemantics.AT_MOST_ONCE_PER_RETRY
        if op is None:
            self.replaying = False
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_STEP,
                    action=OperationAction.START,
                    parent_id=ctx.id,
                    name=desc.name,
                    sub_type=_ST_STEP,
                    args_digest=args_digest(desc.args) if self._check_args else None,
                )
            )
            self._run(ctx, desc, op_id, 1, at_most_once)
            return True
        status = op.status
        attempt = (op.attempt or 0) + 1
        if status is _STARTED:
            self.replaying = False
            if at_most_once:
                # An attempt began and never recorded its outcome: do not run it again.
                run = _Running(ctx, desc, op_id, attempt)
                interrupted = StepInterruptedError(
                    f"attempt {attempt} of step {desc.name or op_id!r} was started but "
                    "never recorded an outcome (the process stopped during it); with "
                    "AT_MOST_ONCE_PER_RETRY it is not run again"
                )
                self._attempt_failed(run, interrupted, error_from_exception(interrupted))
                return True
            self._run(ctx, desc, op_id, attempt, False)
            return True
        if status is _PENDING or status is _READY:
            due = op.next_attempt_timestamp
            if status is _PENDING and due is not None and due > self.now:
                self._parked[id(ctx)] = due
                return True
            self.replaying = False
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_STEP,
                    action=OperationAction.START,
                    parent_id=ctx.id,
                    name=desc.name,
                    sub_type=_ST_STEP,
                )
            )
            self._run(ctx, desc, op_id, attempt, at_most_once)
            return True
        # CANCELLED / TIMED_OUT / STOPPED: terminal without a result.
        ctx.send_exc = self._step_error(op, desc.name)
        self._ready.appendleft(ctx)
        return True

    def _run(self, ctx: _Ctx, desc: Step, op_id: str, attempt: int, durable_first: bool) -> None:
        self._running[op_id] = _Running(ctx, desc, op_id, attempt)
        self._commands.append(
            RunStep(
                self._take_updates(),
                durable_first,
                op_id=op_id,
                name=desc.name,
                fn=desc.fn,
                args=desc.args,
                attempt=attempt,
            )
        )

    def _take_running(self, op_id: str) -> _Running:
        run = self._running.pop(op_id, None)
        if run is None:
            raise InternalError(f"no step attempt is running with operation id {op_id!r}")
        return run

    def _attempt_failed(self, run: _Running, exc: BaseException, error: ErrorObject) -> None:
        desc = run.desc
        policy = desc.retry or _DEFAULT_RETRY
        decision = policy.decide(exc, run.attempt, jitter_key=f"{self.execution_id}/{run.op_id}")
        if not decision.retry:
            self._fail_step(run, error)
            return
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=OperationAction.RETRY,
                parent_id=run.ctx.id,
                name=desc.name,
                sub_type=_ST_STEP,
                error=error,
                next_attempt_delay_seconds=decision.delay_seconds,
            )
        )
        self._parked[id(run.ctx)] = self.now + decision.delay_seconds * 1000

    def _fail_step(self, run: _Running, error: ErrorObject) -> None:
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=OperationAction.FAIL,
                parent_id=run.ctx.id,
                name=run.desc.name,
                sub_type=_ST_STEP,
                error=error,
            )
        )
        exc = StepError(error, operation_name=run.desc.name, operation_id=run.op_id)
        self._checkpoint_then_resume(run.ctx, None, exc)

    def _checkpoint_then_resume(self, ctx: _Ctx, value: Any, exc: BaseException | None) -> None:
        self._pending_resumes.append((ctx, value, exc))
        self._commands.append(Checkpoint(self._take_updates()))

    def _step_error(self, op: Operation, name: str | None) -> StepError:
        error = op.error or ErrorObject(
            type="durable_gen.StepError", message=f"the step ended {op.status.value}"
        )
        return StepError(error, operation_name=name, operation_id=op.id)

    # ------------------------------------------------------------------ contexts end

    def _context_returned(self, ctx: _Ctx, value: Any) -> None:
        self._check_nothing_skipped(ctx)
        serdes = ctx.serdes
        try:
            payload = serdes.serialize(value)
        except SerializationError as e:
            what = "the workflow" if ctx.parent is None else ctx.label
            err = SerializationError(
                f"{what} returned a value that cannot be stored: {e}", value_type=e.value_type
            )
            self._context_raised(ctx, err)
            return
        self._open.remove(ctx)
        parent = ctx.parent
        if parent is None:
            self._finished = Complete(self._take_updates(), payload, value)
            return
        if ctx.rebuild:  # the result was rebuilt by replaying the children
            parent.send_value = value
            self._ready.appendleft(parent)
            return
        big = len(payload) > REPLAY_CHILDREN_THRESHOLD
        assert ctx.id is not None
        self._updates.append(
            OperationUpdate(
                id=ctx.id,
                type=_CONTEXT,
                action=OperationAction.SUCCEED,
                parent_id=parent.id,
                name=ctx.op_name,
                sub_type=_ST_CHILD,
                payload="" if big else payload,
                replay_children=True if big else None,
            )
        )
        if serdes is not DEFAULT_SERDES:
            value = serdes.deserialize(payload)
        self._checkpoint_then_resume(parent, value, None)

    def _context_raised(self, ctx: _Ctx, exc: Exception) -> None:
        if isinstance(exc, NonDeterminismError | CorruptLogError | InternalError):
            raise exc
        self._open.remove(ctx)
        error = error_from_exception(exc)
        parent = ctx.parent
        if parent is None:
            self._finished = Fail(self._take_updates(), error, exc)
            return
        assert ctx.id is not None
        self._updates.append(
            OperationUpdate(
                id=ctx.id,
                type=_CONTEXT,
                action=OperationAction.FAIL,
                parent_id=parent.id,
                name=ctx.op_name,
                sub_type=_ST_CHILD,
                error=error,
            )
        )
        cerr = ChildContextError(error, operation_name=ctx.op_name, operation_id=ctx.id)
        self._checkpoint_then_resume(parent, None, cerr)

    def _check_nothing_skipped(self, ctx: _Ctx) -> None:
        next_id = operation_id(ctx.id, ctx.counter + 1)
        if next_id in self._recorded:
            op = self._ops[next_id]
            self.close()
            raise NonDeterminismError(
                position=f"{ordinal(ctx.counter + 1)} operation of {ctx.label}",
                recorded=describe_operation(op.sub_type, op.type, op.name),
                yielded=f"returned after {ctx.counter} operation"
                + ("" if ctx.counter == 1 else "s"),
                operation_id=next_id,
                hint=_HINT,
            )

    # ------------------------------------------------------------------ stopping

    def _stop(self) -> Command:
        """Nothing is ready and nothing runs: suspend (or report the finished root)."""
        if self._finished is not None:
            return self._finished
        wake = min(self._parked.values()) if self._parked else None
        self.close()
        self._finished = Suspend(self._take_updates(), wake)
        return self._finished

    def _take_updates(self) -> list[OperationUpdate]:
        ups = self._updates
        self._updates = []
        return ups

    # ------------------------------------------------------------------ checks

    def _check(
        self, ctx: _Ctx, op: Operation, type_: OperationType, sub_type: str, name: str | None
    ) -> None:
        if (
            op.type is type_
            and op.sub_type == sub_type
            and op.name == name
            and op.parent_id == ctx.id
        ):
            return
        recorded = describe_operation(op.sub_type, op.type, op.name)
        yielded = describe_operation(sub_type, type_, name)
        if recorded == yielded and op.parent_id != ctx.id:
            recorded += f" under parent {op.parent_id!r}"
            yielded += f" under parent {ctx.id!r}"
        self.close()
        raise NonDeterminismError(
            position=f"{ordinal(ctx.counter)} operation of {ctx.label}",
            recorded=recorded,
            yielded=f"yielded {yielded}",
            operation_id=op.id,
            hint=_HINT,
        )

    def _check_digest(self, ctx: _Ctx, op: Operation, desc: Step) -> None:
        digest = args_digest(desc.args)
        if digest is not None and digest != op.args_digest:
            self.close()
            what = describe_operation(_ST_STEP, "STEP", desc.name)
            raise NonDeterminismError(
                position=f"{ordinal(ctx.counter)} operation of {ctx.label}",
                recorded=f"{what} called with other arguments",
                yielded=f"yielded {what} with arguments {desc.args!r:.120}",
                operation_id=op.id,
                hint=_HINT,
            )

    def _corrupt(self, ctx: _Ctx, op: Operation, why: object) -> CorruptLogError:
        self.close()
        what = describe_operation(op.sub_type, op.type, op.name)
        return CorruptLogError(
            f"the recorded {what} (the {ordinal(ctx.counter)} operation of {ctx.label}, "
            f"id {op.id!r}) cannot be replayed: {why}"
        )

    def _bad_yield(self, ctx: _Ctx, desc: object) -> None:
        position = f"the {ordinal(ctx.counter)} operation of {ctx.label}"
        self.close()
        if isinstance(desc, Generator):
            raise WorkflowDefinitionError(
                f"the workflow yielded a generator object at {position}; to run a "
                "generator function as a sub-workflow, yield ChildContext(fn, *args)"
            )
        if callable(desc):
            name = getattr(desc, "__name__", repr(desc))
            raise WorkflowDefinitionError(
                f"the workflow yielded the function {name!r} at {position}; to run it "
                f"as a step, yield Step({name}, *args)"
            )
        raise WorkflowDefinitionError(
            f"the workflow yielded {desc!r:.60} ({type(desc).__name__}) at {position}; "
            "a workflow may only yield operation descriptors such as Step(fn, ...), "
            "Wait(seconds=...) or ChildContext(fn, ...)"
        )
