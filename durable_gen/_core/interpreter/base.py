"""The interpreter's state and what every operation family uses: the work queue, recorded
outcomes, payload limits, and the replay checks (non-determinism, corrupt logs).
"""

from __future__ import annotations

import contextlib
import zlib
from collections import deque
from collections.abc import Callable, Generator, Mapping
from typing import Any, Final, NoReturn

from ..batch import BatchResult
from ..commands import Checkpoint, Command, Complete, Fail
from ..descriptors import (
    Step,
    StepSemantics,
    check_generator_function,
)
from ..errors import (
    ChildContextError,
    CorruptLogError,
    ErrorObject,
    InternalError,
    InvokeError,
    NonDeterminismError,
    OperationError,
    PayloadTooLargeError,
    SerializationError,
    StepError,
    WaitForConditionError,
    WorkflowDefinitionError,
    error_from_exception,
)
from ..log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    operation_id,
)
from ..present import describe_operation, ordinal
from ..retry import RetryPolicy
from ..serdes import BATCH_SERDES, DEFAULT_SERDES, PassThroughSerdes, Serdes

#: Context results larger than this are not stored; they are rebuilt by replay.
REPLAY_CHILDREN_THRESHOLD = 256 * 1024


#: The largest payload one operation may checkpoint by default (the service's limit).
MAX_PAYLOAD_BYTES = 256 * 1024


_DEFAULT_RETRY = RetryPolicy.default()


#: A WaitForCondition check that raises is not retried unless a policy is given (as on AWS).
_NO_RETRY = RetryPolicy.none()


_PASS_THROUGH = PassThroughSerdes()


_SUCCEEDED = OperationStatus.SUCCEEDED


_FAILED = OperationStatus.FAILED


_STARTED = OperationStatus.STARTED


_PENDING = OperationStatus.PENDING


_READY = OperationStatus.READY


_TIMED_OUT = OperationStatus.TIMED_OUT


_STEP = OperationType.STEP


_WAIT = OperationType.WAIT


_CONTEXT = OperationType.CONTEXT


_CALLBACK = OperationType.CALLBACK


_INVOKE = OperationType.CHAINED_INVOKE


_AT_MOST_ONCE = StepSemantics.AT_MOST_ONCE_PER_RETRY


_START = OperationAction.START


_SUCCEED = OperationAction.SUCCEED


_FAIL = OperationAction.FAIL


_RETRY = OperationAction.RETRY


_ST_STEP = OperationSubType.STEP.value


_ST_WAIT = OperationSubType.WAIT.value


_ST_CHILD = OperationSubType.RUN_IN_CHILD_CONTEXT.value


_ST_WFC = OperationSubType.WAIT_FOR_CONDITION.value


_ST_CALLBACK = OperationSubType.CALLBACK.value


_ST_WAIT_CALLBACK = OperationSubType.WAIT_FOR_CALLBACK.value


_ST_INVOKE = OperationSubType.CHAINED_INVOKE.value


_HINT = (
    "A running execution must yield the operations its log recorded, in the same "
    "order. Keep the old code path for executions started before the change behind "
    "a patch marker (if (yield Patched('my-change')): new code, else: old code), or "
    "let them finish before deploying it; `durable-gen check` finds the executions "
    "a change would break."
)


_MISSING = object()


Outcome = tuple[Any, BaseException | None] | None
"""What a handler returns: (value, exception) to resume with now, or None (blocked)."""


_SCALARS = frozenset((str, int, float, bool, type(None)))


def args_digest(args: tuple[Any, ...]) -> str | None:
    """A short digest of a step's arguments, or None when they cannot be serialized.

    Only a change detector (CRC-32), not a security measure. Scalars take a fast
    path through ``repr`` (stable for str/int/float/bool/None); anything else is
    serialized with the default serdes first.
    """
    if not args:
        return None
    if len(args) == 1:  # the common case, without building the text as str first
        a = args[0]
        t = type(a)
        # For these, bytes' %r (ascii()) writes exactly repr(args).encode().
        if t is int or t is float or t is bool or a is None or (t is str and a.isascii()):
            # %-formatting: the same text as f"{:08x}", ~75 ns (a fifth of a digest) less
            return "%08x" % _crc32(b"(%r,)" % args)  # noqa: UP031
    for a in args:
        if type(a) not in _SCALARS:
            try:
                text = DEFAULT_SERDES.serialize(list(args))
            except SerializationError:
                return None
            break
    else:
        text = repr(args)
    return f"{_crc32(text.encode()):08x}"


_crc32 = zlib.crc32


def yield_site(gen: Any) -> str | None:
    """Where a suspended generator stands, ``path:line (function)``: the innermost
    frame, following ``yield from`` delegation; None once it has ended."""
    frame = None
    while gen is not None:
        inner = getattr(gen, "gi_frame", None)
        if inner is None:
            break
        frame = inner
        gen = getattr(gen, "gi_yieldfrom", None)
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"


class _Ctx:
    """One running generator: the root workflow, a child context, a branch, an operand."""

    __slots__ = (
        "counter",
        "gen",
        "id",
        "label",
        "op_parent",
        "owner",
        "parent",
        "send_exc",
        "send_value",
    )

    def __init__(
        self,
        gen: Generator[Any, Any, Any],
        ctx_id: str | None,
        op_parent: str | None,
        label: str,
        parent: _Ctx | None,
        owner: _Owner,
    ) -> None:
        self.gen = gen
        self.id = ctx_id  # prefix of the ids of its operations
        self.op_parent = op_parent  # ParentId recorded on its operations
        self.label = label
        self.parent = parent  # the context this one runs under (for abandonment)
        self.owner = owner
        self.counter = 0
        self.send_value: Any = None
        self.send_exc: BaseException | None = None


class _Owner:
    """What happens when a context's generator returns or raises."""

    #: Whether a context of this owner must reach every operation its log recorded
    #: before it returns (else the workflow changed: non-determinism).
    replays_whole_log = True

    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
        raise NotImplementedError

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        raise NotImplementedError


class _RootOwner(_Owner):
    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
        try:
            # a BatchResult is returned as AWS's JSON record of it (BatchSerdes)
            payload = (BATCH_SERDES if type(value) is BatchResult else DEFAULT_SERDES).serialize(
                value
            )
        except SerializationError as e:
            err = SerializationError(
                f"the workflow returned a value that cannot be stored: {e}", value_type=e.value_type
            )
            self.raised(interp, ctx, err)
            return
        interp._finished = Complete(interp._take_updates(), payload, value)

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        interp._finished = Fail(interp._take_updates(), error_from_exception(exc), exc)


class _Running:
    """A step-like attempt handed to the engine, awaiting its outcome."""

    __slots__ = ("attempt", "ctx", "desc", "op_id", "state")

    def __init__(self, ctx: _Ctx, desc: Any, op_id: str, attempt: int, state: Any = None) -> None:
        self.ctx = ctx
        self.desc = desc
        self.op_id = op_id
        self.attempt = attempt
        self.state = state  # WaitForCondition: the state this poll was given


class _Entry:
    """One unit of work in the retirement queue; ``action`` runs when it retires."""

    __slots__ = ("action", "ctx", "done", "run")

    def __init__(
        self,
        ctx: _Ctx | None,
        done: bool,
        action: Callable[[], None] | None,
        run: _Running | None = None,
    ) -> None:
        self.ctx = ctx
        self.done = done
        self.action = action
        self.run = run


#: ErrorType a failed context records -> (type, sub types, error class) of the child
#: operation whose failure escaped it (see Interpreter._cause_in_log)
#: (a step's sub type is "Step" or the workflow's own ``sub_type``)
_CAUSE_KINDS: Final[
    dict[str, tuple[OperationType, Callable[[str | None], bool], type[OperationError]]]
] = {
    StepError.wire_type: (_STEP, lambda sub_type: sub_type != _ST_WFC, StepError),
    WaitForConditionError.wire_type: (
        _STEP,
        lambda sub_type: sub_type == _ST_WFC,
        WaitForConditionError,
    ),
    ChildContextError.wire_type: (_CONTEXT, lambda _: True, ChildContextError),
    InvokeError.wire_type: (_INVOKE, lambda _: True, InvokeError),
}


class _Base:
    """The interpreter's state and what every operation family uses."""

    def __init__(
        self,
        workflow: Callable[..., Any],
        input_value: Any,
        operations: Mapping[str, Operation],
        *,
        now: int,
        execution_id: str,
        check_args: bool = False,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        check_generator_function(workflow, "a workflow")
        self.max_payload_bytes = max_payload_bytes
        self._ops: dict[str, Operation] = dict(operations)
        self._recorded = frozenset(self._ops)
        self.now = now
        self.execution_id = execution_id
        self._check_args = check_args
        self._updates: list[OperationUpdate] = []
        self._ready: deque[_Ctx] = deque()
        self._queue: dict[object, _Entry] = {}  # retirement order = insertion order
        self._abandoned: set[str] = set()
        self._commands: deque[Command] = deque()
        self._acks: dict[int, Callable[[], None]] = {}  # id(Checkpoint) -> on-ack action
        self._parked: dict[_Ctx, int | None] = {}  # blocked on a timer (ms) or the outside
        self._open: list[_Ctx] = []  # contexts whose generators are alive
        self._awaiting_ack: Callable[[], None] | None = None
        self._finished: Command | None = None
        self._current: _Ctx | None = None
        self._recorded_children: dict[str | None, int] | None = None
        self.replaying = True
        #: when a list (an engine with hooks sets one): each recorded operation the
        #: workflow reaches on replay is appended to it (pure data; never read here)
        self.observed: list[Operation] | None = None
        #: when a list (an engine with hooks sets one): each virtual child context that
        #: starts or ends is appended, in order, as ``("start", op_id, name, sub_type,
        #: parent_id)`` or ``("end", op_id, error_or_None)`` (pure data; never read here)
        self.virtual_events: list[tuple[Any, ...]] | None = None
        #: patch ids whose old branch this execution takes (``Patched`` yielded False)
        self.old_paths: list[str] = []
        gen = workflow(input_value)
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"a workflow must return a generator when called, got {type(gen).__name__}"
            )
        self._root = _Ctx(gen, None, None, "the root context", None, _RootOwner())
        self._open.append(self._root)
        self._ready.append(self._root)

    def merge(self, delta: Mapping[str, Operation]) -> None:
        """Operations the store changed outside a Checkpoint's acknowledgement."""
        self._ops.update(delta)

    def close(self) -> None:
        """Close every open generator (innermost first)."""
        while self._open:
            ctx = self._open.pop()
            # a finally block that raises while suspending must not hide the suspension
            with contextlib.suppress(Exception):
                ctx.gen.close()

    def is_replaying(self) -> bool:
        """Whether the context being driven is re-running code an earlier invocation ran.

        True until the context has consumed every operation recorded for it when
        the log was loaded: the code after the last of them runs for the first time.
        """
        ctx = self._current
        if ctx is None or not self._recorded:
            return False
        counts = self._recorded_children
        if counts is None:
            counts = {}
            for op_id in self._recorded:
                op = self._ops[op_id]
                if op.type is not OperationType.EXECUTION:
                    counts[op.parent_id] = counts.get(op.parent_id, 0) + 1
            self._recorded_children = counts
        return ctx.counter < counts.get(ctx.op_parent, 0)

    @property
    def current_operation(self) -> tuple[str | None, str | None]:
        """(context id, context label) of the context being driven, for loggers."""
        ctx = self._current
        return (None, None) if ctx is None else (ctx.id, ctx.label)

    def _arrival(self, op_id: str) -> _Entry | None:
        entry = self._queue.get(op_id)
        if entry is None or entry.run is None or entry.done:
            if op_id in self._abandoned:
                self._abandoned.discard(op_id)
                return None  # its branch was abandoned when its batch completed
            raise InternalError(f"no step attempt is running with operation id {op_id!r}")
        return entry

    def _take_updates(self) -> list[OperationUpdate]:
        ups = self._updates
        self._updates = []
        return ups

    def _checkpoint_then(self, action: Callable[[], None]) -> None:
        cmd = Checkpoint(self._take_updates())
        self._acks[id(cmd)] = action
        self._commands.append(cmd)

    def _resume(self, ctx: _Ctx, value: Any, exc: BaseException | None) -> None:
        ctx.send_value = value
        ctx.send_exc = exc
        self._ready.append(ctx)

    def _concurrent(self) -> bool:
        """Whether other work is in flight, so replay must keep the live order."""
        return bool(self._ready or self._queue)

    def _resolved(self, ctx: _Ctx, value: Any, exc: BaseException | None) -> bool:
        """A replayed outcome for ``ctx``. True: continue inline; False: queued."""
        if not self._ready and not self._queue:
            return True
        self._queue[object()] = _Entry(ctx, True, lambda: self._resume(ctx, value, exc))
        return False

    def _new_op(self) -> None:
        self.replaying = False

    def _park(self, ctx: _Ctx, wake: int | None) -> None:
        self._parked[ctx] = wake

    def _abandon(self, ctx: _Ctx) -> None:
        """Stop a branch (and everything below it) whose batch completed without it."""
        doomed = [c for c in self._open if c is ctx or self._descends(c, ctx)]
        doomed_set = set(doomed)
        for c in reversed(doomed):
            with contextlib.suppress(Exception):
                c.gen.close()
            self._open.remove(c)
            self._parked.pop(c, None)
        kept = [c for c in self._ready if c not in doomed_set]
        self._ready.clear()  # in place: next_command holds a reference to this deque
        self._ready.extend(kept)
        for key, entry in list(self._queue.items()):
            run = entry.run
            if entry.ctx in doomed_set or (run is not None and run.ctx in doomed_set):
                del self._queue[key]
                if run is not None and not entry.done:
                    self._abandoned.add(run.op_id)

    def _escape(self, parent: _Ctx, exc: BaseException) -> None:
        """An ExecutionError left a context: no owner records it (no context FAIL, no
        batch item); the other contexts running under the same parent (a batch's other
        branches, a combinator's other operands) stop, and ``parent`` gets it."""
        for c in [c for c in self._open if c.parent is parent]:
            self._abandon(c)
        self._resume(parent, None, exc)

    @staticmethod
    def _descends(c: _Ctx, ancestor: _Ctx) -> bool:
        p = c.parent
        while p is not None:
            if p is ancestor:
                return True
            p = p.parent
        return False

    def _check_size(self, payload: str, what: Callable[[Any], str], subject: Any) -> None:
        """Refuse a payload over the per-operation limit, before it reaches the store.

        ``what(subject)`` names the payload in the error; it is only called then (a
        step's result is checked on every step, so no message and no closure per step).
        """
        limit = self.max_payload_bytes
        if len(payload) * 4 > limit and len(payload.encode()) > limit:
            size = len(payload.encode())
            raise PayloadTooLargeError(
                f"{what(subject)} is {size} bytes once serialized, over the {limit}-byte "
                "limit of one checkpoint; keep large data elsewhere (a file, a bucket) and "
                "return a reference to it",
                size=size,
                limit=limit,
            )

    def _encode_context_result(self, serdes: Serdes, value: Any) -> tuple[str, Any, bool]:
        payload = serdes.serialize(value)
        if serdes is not DEFAULT_SERDES:
            value = serdes.deserialize(payload)
        n = len(payload)  # characters; the limit is in UTF-8 bytes (up to 4 per character)
        big = n > REPLAY_CHILDREN_THRESHOLD or (
            n * 4 > REPLAY_CHILDREN_THRESHOLD
            and len(payload.encode("utf-8")) > REPLAY_CHILDREN_THRESHOLD
        )
        return ("" if big else payload), value, big

    def _decode(self, serdes: Serdes | None, op: Operation, ctx: _Ctx) -> Any:
        res = op.result
        if res is None:
            return None
        try:
            return (serdes or DEFAULT_SERDES).deserialize(res)
        except SerializationError as e:
            raise self._corrupt(ctx, op, e) from e

    def _decode_batch(self, serdes: Serdes | None, op: Operation, ctx: _Ctx) -> BatchResult[Any]:
        value = self._decode(serdes, op, ctx)
        if isinstance(value, BatchResult):
            return value
        try:
            return BatchResult.from_record(value)
        except (KeyError, TypeError, ValueError) as e:
            raise self._corrupt(ctx, op, f"not a batch result ({e})") from e

    def _cause_in_log(self, op: Operation) -> OperationError | None:
        """The error a recorded failed context wraps, rebuilt from its children.

        A context records what escaped its body as AWS does (``...StepError`` and
        the step's message); the step's own failure (``ValueError``, ...) is on the
        step. This finds that operation among the context's children -- the last
        to end, of the recorded kind, with the recorded message -- so that the error
        thrown on replay has the same ``__cause__`` chain as on the first run.
        """
        error = op.error
        kind = _CAUSE_KINDS.get(error.type or "") if error is not None else None
        if error is None or kind is None:
            return None
        op_type, accepts, cls = kind
        found: Operation | None = None
        for child in self._ops.values():
            if (
                child.parent_id == op.id
                and child.type is op_type
                and accepts(child.sub_type)
                and child.is_terminal
                and child.status is not _SUCCEEDED
                and child.error is not None
                and child.error.message == error.message
                and (found is None or (child.end_timestamp or 0) >= (found.end_timestamp or 0))
            ):
                found = child
        if found is None or found.error is None:
            return None
        cause = cls(found.error, operation_name=found.name, operation_id=found.id)
        if found.type is _CONTEXT:
            cause.__cause__ = self._cause_in_log(found)
        return cause

    def _recorded_outcome(
        self, rec: Operation, serdes: Serdes, ctx: _Ctx, value: Any, exc: Exception | None
    ) -> tuple[Any, ErrorObject | None]:
        """The outcome a re-driven context counts with: the one its log recorded."""
        if rec.status is _SUCCEEDED:
            if rec.replay_children:  # not stored: the re-run rebuilt it
                if exc is not None:
                    raise self._corrupt(
                        ctx, rec, f"its log recorded success, but replaying it raised {exc!r}"
                    )
                return value, None
            return self._decode(serdes, rec, ctx), None
        return None, rec.error or ErrorObject(type="Error", message=f"ended {rec.status.value}")

    def _check(
        self, ctx: _Ctx, op: Operation, type_: OperationType, sub_type: str, name: str | None
    ) -> None:
        if (
            op.type is type_
            and op.sub_type == sub_type
            and op.name == name
            and op.parent_id == ctx.op_parent
        ):
            if self.observed is not None:
                self.observed.append(op)
            return
        self._mismatch(
            ctx, op, type_, sub_type, name, ctx.op_parent, f"{ordinal(ctx.counter)} operation"
        )

    def _check_identity(
        self,
        op: Operation,
        type_: OperationType,
        sub_type: str,
        name: str | None,
        parent_id: str,
        ctx: _Ctx,
        index: int,
    ) -> None:
        if (
            op.type is type_
            and op.sub_type == sub_type
            and op.name == name
            and op.parent_id == parent_id
        ):
            if self.observed is not None:
                self.observed.append(op)
            return
        self._mismatch(ctx, op, type_, sub_type, name, parent_id, f"branch {index} (0-based)")

    def _mismatch(
        self,
        ctx: _Ctx,
        op: Operation,
        type_: OperationType,
        sub_type: str,
        name: str | None,
        parent_id: str | None,
        where: str,
    ) -> NoReturn:
        recorded = describe_operation(op.sub_type, op.type, op.name)
        yielded = describe_operation(sub_type, type_, name)
        if recorded == yielded and op.parent_id != parent_id:
            recorded += f" under parent {op.parent_id!r}"
            yielded += f" under parent {parent_id!r}"
        source = yield_site(ctx.gen)
        self.close()
        raise NonDeterminismError(
            position=f"{where} of {ctx.label}",
            recorded=recorded,
            yielded=f"yielded {yielded}",
            operation_id=op.id,
            hint=_HINT,
            source=source,
        )

    def _check_nothing_skipped(self, ctx: _Ctx) -> None:
        if not ctx.owner.replays_whole_log:
            return
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

    def _check_digest(self, ctx: _Ctx, op: Operation, desc: Step[Any]) -> None:
        digest = args_digest(desc.args)
        if digest is not None and digest != op.args_digest:
            source = yield_site(ctx.gen)
            self.close()
            what = describe_operation(_ST_STEP, "STEP", desc.name)
            raise NonDeterminismError(
                position=f"{ordinal(ctx.counter)} operation of {ctx.label}",
                recorded=f"{what} called with other arguments",
                yielded=f"yielded {what} with arguments {desc.args!r:.120}",
                operation_id=op.id,
                hint=_HINT,
                source=source,
            )

    def _corrupt(self, ctx: _Ctx, op: Operation, why: object) -> CorruptLogError:
        self.close()
        what = describe_operation(op.sub_type, op.type, op.name)
        return CorruptLogError(
            f"the recorded {what} (the {ordinal(ctx.counter)} operation of {ctx.label}, "
            f"id {op.id!r}) cannot be replayed: {why}"
        )

    def _bad_yield(self, ctx: _Ctx, desc: object) -> NoReturn:
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
