"""The replay interpreter: pure, sans-I/O. This module owns every replay rule.

Given a workflow, its input and the checkpoint log, it drives the workflow's
generators: for each yielded descriptor it either replays the recorded outcome
(the value is sent in; a failure is thrown in with ``gen.throw``) or hands the
engine a command (run this step attempt, make these updates durable, suspend
until ...). It never opens a database, reads a clock, draws a random number or
starts a thread: time comes in as ``now``, step functions are run by the engine,
and the engine reports back.

Usage (the engine's loop)::

    interp = Interpreter(workflow, input_value, operations, now=..., execution_id=...)
    while True:
        cmd = interp.next_command()
        # perform cmd (see _commands.py), report outcomes, stop on Suspend/Complete/Fail

Replay rules (see DESIGN.md):

- Operation ids come from position: the n-th operation of a context gets
  ``operation_id(context_id, n)``; branch ``i`` of a Parallel/Map gets
  ``operation_id(batch_id, i)`` (0-based, as AWS).
- A recorded operation must have the Type, SubType, Name and ParentId of what
  the workflow yields at that position, else :class:`NonDeterminismError`; a
  context that finishes before reaching operations its log recorded is
  non-deterministic too.
- Suspension closes every open generator (innermost first): ``finally`` blocks
  in a workflow run at every suspension, not only at the end.

Determinism under concurrency. Several contexts (Parallel/Map branches,
combinator operands) can be active at once, and the engine may run their steps
on threads that finish in any order. The interpreter *retires* outcomes strictly
in the order the work was issued (a reorder buffer): an outcome that arrives
early waits for the ones issued before it. When more than one context is active,
replay mirrors the live run event for event: recorded outcomes of leaf
operations go through the same queue, and contexts that already ended (branches,
child contexts, nested batches) are re-driven -- their recorded operations
replay, nothing is recorded again, their recorded outcome counts -- instead of
being short-cut. Every decision (ids, the order of updates, completion policies,
which operand a Race picks) is therefore a function of the outcomes alone:
identical whatever the thread timing, and identical between an uninterrupted run
and a crashed-and-resumed one. A single active context (ordinary sequential
code) replays inline, which is what makes replay fast.
"""

from __future__ import annotations

import contextlib
import zlib
from collections import deque
from collections.abc import Callable, Generator, Mapping
from functools import partial
from typing import Any, Final, NoReturn

import attrs

from ._batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
from ._commands import AwaitOutcome, Checkpoint, Command, Complete, Fail, RunStep, Suspend
from ._descriptors import (
    AwaitCallback,
    CallbackHandle,
    ChildContext,
    CreateCallback,
    Invoke,
    Map,
    Nesting,
    Parallel,
    Step,
    StepSemantics,
    Wait,
    WaitForCallback,
    WaitForCondition,
    _Combinator,
    check_generator_function,
)
from ._errors import (
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    CombinatorError,
    CorruptLogError,
    ErrorObject,
    InternalError,
    InvokeError,
    NonDeterminismError,
    OperationError,
    PayloadTooLargeError,
    SerializationError,
    StepError,
    StepInterruptedError,
    StoreError,
    WaitForConditionError,
    WorkflowDefinitionError,
    error_from_exception,
    operation_failure,
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
    new_step_update,
    operation_id,
)
from ._retry import RetryPolicy
from ._serdes import BATCH_SERDES, DEFAULT_SERDES, PassThroughSerdes, Serdes

__all__ = ["Interpreter", "describe_operation", "ordinal"]

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
    "order. Keep the old code path for executions started before the change (for "
    "example branch on a version returned by a step), or let them finish before "
    "deploying it."
)

_KIND_WORDS = {
    _ST_STEP: "Step",
    _ST_WAIT: "Wait",
    _ST_CHILD: "ChildContext",
    _ST_WFC: "WaitForCondition",
    _ST_CALLBACK: "CreateCallback",
    _ST_WAIT_CALLBACK: "WaitForCallback",
    _ST_INVOKE: "Invoke",
}

#: ErrorType a failed context records -> (type, sub types, error class) of the child
#: operation whose failure escaped it (see Interpreter._cause_in_log)
_CAUSE_KINDS: Final[
    dict[str, tuple[OperationType, frozenset[str] | None, type[OperationError]]]
] = {
    StepError.wire_type: (_STEP, frozenset({_ST_STEP}), StepError),
    WaitForConditionError.wire_type: (_STEP, frozenset({_ST_WFC}), WaitForConditionError),
    ChildContextError.wire_type: (_CONTEXT, None, ChildContextError),
    InvokeError.wire_type: (_INVOKE, None, InvokeError),
}

_MISSING = object()

Outcome = tuple[Any, BaseException | None] | None
"""What a handler returns: (value, exception) to resume with now, or None (blocked)."""


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_operation(sub_type: str | None, type_: str | None, name: str | None) -> str:
    """An operation as a person wrote it: ``Step 'charge'``, ``Wait``."""
    kind = _KIND_WORDS.get(sub_type or "") or sub_type or type_ or "operation"
    return f"{kind} {name!r}" if name else kind


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


# ----------------------------------------------------------------------------- contexts


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

    def returned(self, interp: Interpreter, ctx: _Ctx, value: Any) -> None:
        raise NotImplementedError

    def raised(self, interp: Interpreter, ctx: _Ctx, exc: Exception) -> None:
        raise NotImplementedError


class _RootOwner(_Owner):
    def returned(self, interp: Interpreter, ctx: _Ctx, value: Any) -> None:
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

    def raised(self, interp: Interpreter, ctx: _Ctx, exc: Exception) -> None:
        interp._finished = Fail(interp._take_updates(), error_from_exception(exc), exc)


def _child_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    return ChildContextError(error, operation_name=name, operation_id=op_id)


_CALLBACK_TIMEOUT_TYPES: Final = frozenset(
    {"Callback.Timeout", "Callback.Heartbeat", CallbackTimeoutError.wire_type}
)
#: what a WaitForCallback context records when its submitter step failed for good
#: (the second: logs written before durable_gen recorded errors as AWS does)
_SUBMITTER_FAILED_TYPES: Final = frozenset(
    {StepError.wire_type, qualified_name(CallbackSubmitterError)}
)


def _wait_for_callback_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    """The error a failed WaitForCallback throws, from what its context recorded.

    As AWS's ``wait_for_callback``: a callback failure passes through as its own
    kind; a submitter step's failure (recorded ``...StepError``) becomes
    CallbackSubmitterError, keeping the step's message, data and stack trace.
    """
    if error.type in _CALLBACK_TIMEOUT_TYPES:
        return CallbackTimeoutError(error, operation_name=name, operation_id=op_id)
    if error.type in _SUBMITTER_FAILED_TYPES:
        error = attrs.evolve(error, type=CallbackSubmitterError.wire_type)
        return CallbackSubmitterError(error, operation_name=name, operation_id=op_id)
    return CallbackFailedError(error, operation_name=name, operation_id=op_id)


def _combinator_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    return CombinatorError(error, operation_name=name, operation_id=op_id)


class _ContextOwner(_Owner):
    """A recorded CONTEXT operation (ChildContext, WaitForCallback, combinators)."""

    def __init__(
        self,
        op_id: str,
        name: str | None,
        sub_type: str,
        parent: _Ctx,
        serdes: Serdes,
        recorded: Operation | None,
        make_error: Callable[[ErrorObject, str | None, str], OperationError],
    ) -> None:
        self.op_id = op_id
        self.name = name
        self.sub_type = sub_type
        self.parent = parent
        self.serdes = serdes
        self.recorded = recorded  # re-driving a context that already ended
        self.make_error = make_error

    def _replayed(self, interp: Interpreter, ctx: _Ctx, value: Any, exc: Exception | None) -> None:
        assert self.recorded is not None
        value, error = interp._recorded_outcome(self.recorded, self.serdes, ctx, value, exc)
        err = None if error is None else self.make_error(error, self.name, self.op_id)
        if err is not None:
            err.__cause__ = exc if exc is not None else interp._cause_in_log(self.recorded)
        interp._resume(self.parent, value, err)

    def returned(self, interp: Interpreter, ctx: _Ctx, value: Any) -> None:
        if self.recorded is not None:
            self._replayed(interp, ctx, value, None)
            return
        try:
            payload, value, big = interp._encode_context_result(self.serdes, value)
        except SerializationError as e:
            err = SerializationError(
                f"{ctx.label} returned a value that cannot be stored: {e}", value_type=e.value_type
            )
            self.raised(interp, ctx, err)
            return
        interp._updates.append(
            OperationUpdate(
                id=self.op_id,
                type=_CONTEXT,
                action=_SUCCEED,
                parent_id=self.parent.op_parent,
                name=self.name,
                sub_type=self.sub_type,
                payload=payload,
                replay_children=True if big else None,
            )
        )
        parent = self.parent
        interp._checkpoint_then(lambda: interp._resume(parent, value, None))

    def raised(self, interp: Interpreter, ctx: _Ctx, exc: Exception) -> None:
        if self.recorded is not None:
            self._replayed(interp, ctx, None, exc)
            return
        self.fail(interp, error_from_exception(exc), exc)

    def fail(self, interp: Interpreter, error: ErrorObject, cause: Exception | None = None) -> None:
        interp._updates.append(
            OperationUpdate(
                id=self.op_id,
                type=_CONTEXT,
                action=_FAIL,
                parent_id=self.parent.op_parent,
                name=self.name,
                sub_type=self.sub_type,
                error=error,
            )
        )
        err = self.make_error(error, self.name, self.op_id)
        err.__cause__ = cause  # the original failure stays reachable
        parent = self.parent
        interp._checkpoint_then(lambda: interp._resume(parent, None, err))


class _Batch(_Owner):
    """A Parallel or Map in progress: admits branches, applies the completion policy."""

    def __init__(
        self,
        interp: Interpreter,
        parent: _Ctx,
        op_id: str,
        desc: Parallel | Map,
        recorded: Operation | None,
    ) -> None:
        self.interp = interp
        self.parent = parent
        self.op_id = op_id
        self.desc = desc
        self.recorded = recorded  # re-driving a batch that already ended
        self.is_map = isinstance(desc, Map)
        self.total = len(desc.items) if isinstance(desc, Map) else len(desc.branches)
        self.next_index = 0
        self.active: dict[int, _Ctx] = {}
        self.items: dict[int, BatchItem] = {}
        self.succeeded = 0  # items that SUCCEEDED; the others in ``items`` failed
        self.finished = False
        self.sub_type = OperationSubType.MAP.value if self.is_map else "Parallel"
        self.branch_sub_type = (
            OperationSubType.MAP_ITERATION.value
            if self.is_map
            else OperationSubType.PARALLEL_BRANCH.value
        )

    def branch_name(self, i: int) -> str:
        desc = self.desc
        if isinstance(desc, Map):
            if desc.item_namer is not None:
                return str(desc.item_namer(desc.items[i], i))
            return f"map-item-{i}"
        return f"parallel-branch-{i}"

    def admit(self) -> None:
        limit = self.desc.max_concurrency
        while (
            not self.finished
            and self.next_index < self.total
            and (limit is None or len(self.active) < limit)
        ):
            i = self.next_index
            self.next_index += 1
            self.start_branch(i)
        if not self.finished and self.total == 0:
            self.finish(CompletionReason.ALL_COMPLETED)

    def start_branch(self, i: int) -> None:
        interp = self.interp
        desc = self.desc
        bid = operation_id(self.op_id, i)
        name = self.branch_name(i)
        nested = desc.nesting is Nesting.NESTED
        recorded: Operation | None = None
        if nested:
            op = interp._ops.get(bid)
            if op is not None:
                interp._check_identity(
                    op, _CONTEXT, self.branch_sub_type, name, self.op_id, self.parent, i
                )
                # A branch that already ended is re-driven all the same (its recorded
                # operations replay), so that every event is retired in the order the
                # live run retired it; its recorded outcome is what counts.
                if op.is_terminal:
                    recorded = op
            else:
                interp._new_op()
                interp._updates.append(
                    OperationUpdate(
                        id=bid,
                        type=_CONTEXT,
                        action=_START,
                        parent_id=self.op_id,
                        name=name,
                        sub_type=self.branch_sub_type,
                    )
                )
        gen = desc.fn(desc.items[i], i) if isinstance(desc, Map) else desc.branches[i]()
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"branch {i} of {describe_operation(self.sub_type, None, desc.name)} must be "
                f"a generator function, its call returned {type(gen).__name__}"
            )
        owner = _BranchOwner(self, i, name, recorded)
        ctx = _Ctx(
            gen,
            bid,
            bid if nested else self.op_id,
            f"branch {name!r} of {describe_operation(self.sub_type, None, desc.name)}",
            self.parent,
            owner,
        )
        self.active[i] = ctx
        interp._open.append(ctx)
        interp._ready.append(ctx)

    def branch_done(self, i: int, item: BatchItem) -> None:
        if self.finished:
            return
        self.active.pop(i, None)
        items = self.items
        previous = items.get(i)
        if previous is not None and previous.status is BatchItemStatus.SUCCEEDED:
            self.succeeded -= 1
        items[i] = item
        if item.status is BatchItemStatus.SUCCEEDED:
            self.succeeded += 1
        succeeded = self.succeeded
        failed = len(items) - succeeded
        reason = self.desc.completion.decide(succeeded, failed, self.total)
        if reason is not None:
            self.finish(reason)
        else:
            self.admit()

    def finish(self, reason: CompletionReason) -> None:
        interp = self.interp
        self.finished = True
        items = dict(self.items)
        for i, ctx in self.active.items():
            items[i] = BatchItem(i, BatchItemStatus.STARTED)
            interp._abandon(ctx)
        self.active.clear()
        result = BatchResult.build(items.values(), reason)
        parent = self.parent
        if self.recorded is not None:
            rec = self.recorded
            if rec.status is not _SUCCEEDED:
                error = rec.error or ErrorObject(type="Error")
                err = ChildContextError(
                    error, operation_name=self.desc.name, operation_id=self.op_id
                )
                err.__cause__ = interp._cause_in_log(rec)
                interp._resume(parent, None, err)
                return
            if not rec.replay_children:
                result = interp._decode_batch(self.desc.serdes, rec, parent)
            interp._resume(parent, result, None)
            return
        serdes = self.desc.serdes or BATCH_SERDES
        try:
            payload, _, big = interp._encode_context_result(serdes, result)
        except SerializationError as e:
            exc = SerializationError(
                f"the result of {describe_operation(self.sub_type, None, self.desc.name)} "
                f"cannot be stored: {e}",
                value_type=e.value_type,
            )
            owner = _ContextOwner(
                self.op_id, self.desc.name, self.sub_type, parent, serdes, None, _child_error
            )
            owner.fail(interp, error_from_exception(exc))
            return
        interp._updates.append(
            OperationUpdate(
                id=self.op_id,
                type=_CONTEXT,
                action=_SUCCEED,
                parent_id=parent.op_parent,
                name=self.desc.name,
                sub_type=self.sub_type,
                payload=payload,
                replay_children=True if big else None,
            )
        )
        interp._checkpoint_then(lambda: interp._resume(parent, result, None))


class _BranchOwner(_Owner):
    def __init__(self, batch: _Batch, index: int, name: str, recorded: Operation | None) -> None:
        self.batch = batch
        self.index = index
        self.name = name
        self.recorded = recorded

    def _replayed(self, interp: Interpreter, ctx: _Ctx, value: Any, exc: Exception | None) -> None:
        assert self.recorded is not None
        serdes = self.batch.desc.item_serdes or DEFAULT_SERDES
        value, error = interp._recorded_outcome(self.recorded, serdes, ctx, value, exc)
        if error is None:
            item = BatchItem(self.index, BatchItemStatus.SUCCEEDED, value)
        else:
            item = BatchItem(self.index, BatchItemStatus.FAILED, None, error)
        self.batch.branch_done(self.index, item)

    def returned(self, interp: Interpreter, ctx: _Ctx, value: Any) -> None:
        batch = self.batch
        if self.recorded is not None:
            self._replayed(interp, ctx, value, None)
            return
        item = BatchItem(self.index, BatchItemStatus.SUCCEEDED, value)
        if batch.desc.nesting is Nesting.FLAT:
            batch.branch_done(self.index, item)
            return
        serdes = batch.desc.item_serdes or DEFAULT_SERDES
        try:
            payload, value, big = interp._encode_context_result(serdes, value)
        except SerializationError as e:
            err = SerializationError(
                f"{ctx.label} returned a value that cannot be stored: {e}", value_type=e.value_type
            )
            self.raised(interp, ctx, err)
            return
        item = BatchItem(self.index, BatchItemStatus.SUCCEEDED, value)
        interp._updates.append(
            OperationUpdate(
                id=ctx.id or "",
                type=_CONTEXT,
                action=_SUCCEED,
                parent_id=batch.op_id,
                name=self.name,
                sub_type=batch.branch_sub_type,
                payload=payload,
                replay_children=True if big else None,
            )
        )
        index = self.index
        interp._checkpoint_then(lambda: batch.branch_done(index, item))

    def raised(self, interp: Interpreter, ctx: _Ctx, exc: Exception) -> None:
        batch = self.batch
        if self.recorded is not None:
            self._replayed(interp, ctx, None, exc)
            return
        error = error_from_exception(exc)
        item = BatchItem(self.index, BatchItemStatus.FAILED, None, error)
        if batch.desc.nesting is Nesting.FLAT:
            batch.branch_done(self.index, item)
            return
        interp._updates.append(
            OperationUpdate(
                id=ctx.id or "",
                type=_CONTEXT,
                action=_FAIL,
                parent_id=batch.op_id,
                name=self.name,
                sub_type=batch.branch_sub_type,
                error=error,
            )
        )
        index = self.index
        interp._checkpoint_then(lambda: batch.branch_done(index, item))


def _operand(desc: Any) -> Generator[Any, Any, Any]:
    return (yield desc)


class _Combination(_Owner):
    """All / Any / Race / AllSettled: operands run as concurrent virtual contexts."""

    def __init__(
        self,
        interp: Interpreter,
        parent: _Ctx,
        op_id: str,
        desc: Any,
        sub_type: str,
        recorded: Operation | None,
    ) -> None:
        self.interp = interp
        self.parent = parent
        self.op_id = op_id
        self.desc = desc
        self.kind: str = desc.kind
        self.sub_type = sub_type
        self.recorded = recorded
        self.total = len(desc.operations)
        self.settled: dict[int, tuple[bool, Any]] = {}
        self.ctxs: dict[int, _Ctx] = {}
        self.finished = False

    def start(self) -> None:
        if self.total == 0:
            self.decide()
            return
        label = describe_operation(self.sub_type, None, self.desc.name)
        for i, d in enumerate(self.desc.operations):
            if self.recorded is not None and not self._ended_in_log(i, d):
                # Re-driving a combinator that already decided: an operand with no
                # recorded end was abandoned when it decided, so it must not start
                # new work (a retry, a new operation) now.
                continue
            ctx = _Ctx(
                _operand(d), self.op_id, self.op_id, label, self.parent, _OperandOwner(self, i)
            )
            ctx.counter = i  # operand i is operation i+1 of the combinator
            self.ctxs[i] = ctx
            self.interp._open.append(ctx)
            self.interp._ready.append(ctx)
        self._finish_recorded_if_stuck()

    def _finish_recorded_if_stuck(self) -> None:
        """A re-driven combinator whose replayed operands cannot decide: its record can."""
        if not self.finished and self.recorded is not None and not self.ctxs:
            self.finish(self.recorded.status is OperationStatus.SUCCEEDED, None)

    def _ended_in_log(self, i: int, desc: Any) -> bool:
        if isinstance(desc, AwaitCallback | CallbackHandle):
            handle = desc.handle if isinstance(desc, AwaitCallback) else desc
            op = self.interp._ops.get(handle.operation_id)
        else:
            op = self.interp._ops.get(operation_id(self.op_id, i + 1))
        return op is not None and op.is_terminal

    def settle(self, i: int, ok: bool, value: Any) -> None:
        if self.finished:
            return
        self.ctxs.pop(i, None)
        self.settled[i] = (ok, value)
        self.decide()
        self._finish_recorded_if_stuck()

    def decide(self) -> None:
        kind = self.kind
        settled = self.settled
        outcome: tuple[bool, Any] | None = None
        if kind == "Race" and settled:
            outcome = next(iter(settled.values()))
        elif kind == "All":
            failure = next((v for ok, v in settled.values() if not ok), None)
            if failure is not None:
                outcome = (False, failure)
            elif len(settled) == self.total:
                outcome = (True, [settled[i][1] for i in range(self.total)])
        elif kind == "Any":
            success = next((v for ok, v in settled.values() if ok), _MISSING)
            if success is not _MISSING:
                outcome = (True, success)
            elif len(settled) == self.total:
                errs = [settled[i][1] for i in range(self.total)]
                outcome = (
                    False,
                    ErrorObject(
                        type=qualified_name(CombinatorError),
                        message=f"all {self.total} operations of Any failed: "
                        + "; ".join(f"{e.type}: {e.message}" for e in errs),
                    ),
                )
        elif kind == "AllSettled" and len(settled) == self.total:
            outcome = (
                True,
                [
                    {"status": "fulfilled", "value": v}
                    if ok
                    else {"status": "rejected", "reason": v.to_dict()}
                    for ok, v in (settled[i] for i in range(self.total))
                ],
            )
        if outcome is not None:
            self.finish(*outcome)

    def finish(self, ok: bool, value: Any) -> None:
        interp = self.interp
        self.finished = True
        for ctx in list(self.ctxs.values()):
            interp._abandon(ctx)
        self.ctxs.clear()
        owner = _ContextOwner(
            self.op_id,
            self.desc.name,
            self.sub_type,
            self.parent,
            DEFAULT_SERDES,
            self.recorded,
            _combinator_error,
        )
        if self.recorded is not None:
            owner._replayed(interp, self.parent, value if ok else None, None)
        elif ok:
            owner.returned(interp, self.parent, value)
        else:
            owner.fail(interp, value)


class _OperandOwner(_Owner):
    def __init__(self, comb: _Combination, index: int) -> None:
        self.comb = comb
        self.index = index

    def returned(self, interp: Interpreter, ctx: _Ctx, value: Any) -> None:
        self.comb.settle(self.index, True, value)

    def raised(self, interp: Interpreter, ctx: _Ctx, exc: Exception) -> None:
        self.comb.settle(self.index, False, operation_failure(exc))


# ----------------------------------------------------------------------------- work queue


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


def _callback_body(desc: WaitForCallback) -> Generator[Any, Any, Any]:
    """The body of a WaitForCallback context, recorded as AWS records it."""
    prefix = f"{desc.name} " if desc.name else ""
    handle = yield CreateCallback(
        f"{prefix}create callback id",
        timeout=desc.timeout,
        heartbeat_timeout=desc.heartbeat_timeout,
        serdes=desc.serdes,
    )
    # A failing submitter's StepError escapes: the context records it as AWS does
    # (ErrorType ...StepError) and _wait_for_callback_error makes it a
    # CallbackSubmitterError at the call site, as AWS's wait_for_callback does.
    yield Step(desc.submitter, handle.callback_id, name=f"{prefix}submitter", retry=desc.retry)
    return (yield handle.result())


# What a refused payload is, for _check_size's message (built only when it refuses).


def _result_of_step(run: _Running) -> str:
    return f"the result of step {run.desc.name or run.op_id!r}"


def _state_of(desc: WaitForCondition) -> str:
    return f"the state of {describe_operation(_ST_WFC, None, desc.name)}"


def _payload_of_invoke(desc: Invoke) -> str:
    return f"the payload of invoke {desc.name or desc.function_name!r}"


# ----------------------------------------------------------------------------- interpreter


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
        gen = workflow(input_value)
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"a workflow must return a generator when called, got {type(gen).__name__}"
            )
        self._root = _Ctx(gen, None, None, "the root context", None, _RootOwner())
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
        commands = self._commands
        ready = self._ready
        queue = self._queue
        while True:
            if commands:
                cmd = commands.popleft()
                if type(cmd) is Checkpoint:
                    self._awaiting_ack = self._acks.pop(id(cmd))
                return cmd
            if self._finished is not None:
                return self._finished
            if ready:
                self._drive(ready.popleft())
                continue
            if queue:
                key = next(iter(queue))
                entry = queue[key]
                if not entry.done:
                    return AwaitOutcome(self._take_updates())
                del queue[key]
                assert entry.action is not None
                entry.action()
                continue
            return self._stop()

    def checkpointed(self, delta: Mapping[str, Operation] | None = None) -> None:
        """The updates of the last Checkpoint are durable; ``delta`` is what changed."""
        action = self._awaiting_ack
        if action is None:
            raise InternalError("checkpointed() called with no Checkpoint outstanding")
        if delta:
            self._ops.update(delta)
        self._awaiting_ack = None
        action()

    def awaits_only(self, op_id: str) -> bool:
        """Whether the next command would be an empty AwaitOutcome for ``op_id`` alone.

        True when nothing but that step's attempt is outstanding: no command, update,
        ready context or other queued work. The engine may then run the attempt at
        once instead of asking for the next command (sequential code, the common case).
        """
        return (
            not self._commands
            and not self._ready
            and not self._updates
            and self._finished is None
            and len(self._queue) == 1
            and op_id in self._queue
        )

    def merge(self, delta: Mapping[str, Operation]) -> None:
        """Operations the store changed outside a Checkpoint's acknowledgement."""
        self._ops.update(delta)

    def step_returned(self, op_id: str, value: Any) -> None:
        """The engine ran a step attempt and it returned ``value``."""
        entry = self._arrival(op_id)
        if entry is not None:
            run = entry.run
            assert run is not None
            entry.action = partial(self._step_value, run, value)
            entry.done = True

    def step_raised(self, op_id: str, exc: BaseException) -> None:
        """The engine ran a step attempt and it raised ``exc``."""
        entry = self._arrival(op_id)
        if entry is not None:
            run = entry.run
            assert run is not None
            entry.action = lambda: self._attempt_failed(run, exc, error_from_exception(exc))
            entry.done = True

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

    # ------------------------------------------------------------------ plumbing

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

    def _decode_batch(self, serdes: Serdes | None, op: Operation, ctx: _Ctx) -> BatchResult:
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
        op_type, sub_types, cls = kind
        found: Operation | None = None
        for child in self._ops.values():
            if (
                child.parent_id == op.id
                and child.type is op_type
                and (sub_types is None or child.sub_type in sub_types)
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

    # ------------------------------------------------------------------ driving

    def _drive(self, ctx: _Ctx) -> None:
        """Run ``ctx`` until it blocks or finishes; replays recorded operations inline."""
        self._current = ctx
        gen = ctx.gen
        ops = self._ops
        root_ids = _ROOT_IDS
        # never rebound (mutated in place), so locals save a lookup per replayed op
        ready = self._ready
        queue = self._queue
        check_args = self._check_args
        value = ctx.send_value
        exc = ctx.send_exc
        ctx.send_value = ctx.send_exc = None
        while True:
            try:
                desc = gen.send(value) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                self._check_nothing_skipped(ctx)
                self._open.remove(ctx)
                ctx.owner.returned(self, ctx, stop.value)
                return
            except Exception as e:  # the workflow raised
                if isinstance(e, NonDeterminismError | CorruptLogError | InternalError):
                    raise
                self._open.remove(ctx)
                ctx.owner.raised(self, ctx, e)
                return
            exc = None
            tdesc = type(desc)
            if tdesc is AwaitCallback or tdesc is CallbackHandle:
                handle = desc.handle if tdesc is AwaitCallback else desc
                outcome = self._await_callback(ctx, handle)
                if outcome is None:
                    return
                value, exc = outcome
                if self._resolved(ctx, value, exc):
                    continue
                return
            ctx.counter += 1
            n = ctx.counter
            prefix = ctx.id
            op_id = root_ids[n] if prefix is None and n < len(root_ids) else operation_id(prefix, n)
            op = ops.get(op_id)
            if tdesc is Step:
                if op is not None:
                    if not (
                        op.type is _STEP
                        and op.name == desc.name
                        and op.parent_id == ctx.op_parent
                        and op.sub_type == _ST_STEP
                    ):
                        self._check(ctx, op, _STEP, _ST_STEP, desc.name)
                    status = op.status
                    if status is _SUCCEEDED:
                        if check_args and op.args_digest is not None:
                            digest = args_digest(desc.args)
                            if digest is not None and digest != op.args_digest:
                                self._check_digest(ctx, op, desc)  # raises
                        res = op.result
                        if res is None:
                            value = None
                        else:
                            try:
                                value = (desc.serdes or DEFAULT_SERDES).deserialize(res)
                            except SerializationError as e:
                                raise self._corrupt(ctx, op, e) from e
                        if ready or queue:
                            self._resolved(ctx, value, None)
                            return
                        continue
                    if status is _FAILED:
                        value = None
                        exc = self._step_error(op, desc.name, StepError)
                        if self._resolved(ctx, value, exc):
                            continue
                        return
                self._start_step(ctx, desc, op_id, op)
                return
            handler = _HANDLERS.get(tdesc)
            if handler is None:
                if not isinstance(desc, _Combinator):
                    self._bad_yield(ctx, desc)
                handler = Interpreter._do_combinator
            outcome = handler(self, ctx, desc, op_id, op)
            if outcome is None:
                return
            value, exc = outcome
            if self._resolved(ctx, value, exc):
                continue
            return

    # ------------------------------------------------------------------ steps

    def _start_step(self, ctx: _Ctx, desc: Step, op_id: str, op: Operation | None) -> None:
        """A step that is new or in flight: run an attempt, or wait for its retry timer."""
        at_most_once = desc.semantics is _AT_MOST_ONCE
        if op is None:
            self._new_op()
            self._updates.append(
                new_step_update(
                    op_id,
                    _STEP,
                    _START,
                    ctx.op_parent,
                    desc.name,
                    _ST_STEP,
                    None,
                    args_digest(desc.args) if self._check_args else None,
                )
            )
            self._run(ctx, desc, op_id, 1, at_most_once, desc.fn, desc.args)
            return
        status = op.status
        attempt = (op.attempt or 0) + 1
        if status is _STARTED:
            self._new_op()
            if at_most_once:
                # An attempt began and never recorded its outcome: do not run it again.
                run = _Running(ctx, desc, op_id, attempt)
                interrupted = StepInterruptedError(
                    f"attempt {attempt} of step {desc.name or op_id!r} was started but "
                    "never recorded an outcome (the process stopped during it); with "
                    "AT_MOST_ONCE_PER_RETRY it is not run again"
                )
                self._attempt_failed(run, interrupted, error_from_exception(interrupted))
                return
            self._run(ctx, desc, op_id, attempt, False, desc.fn, desc.args)
            return
        if status is _PENDING or status is _READY:
            due = op.next_attempt_timestamp
            if status is _PENDING and due is not None and due > self.now:
                self._park(ctx, due)
                return
            self._new_op()
            self._updates.append(
                new_step_update(
                    op_id, _STEP, _START, ctx.op_parent, desc.name, _ST_STEP, None, None
                )
            )
            self._run(ctx, desc, op_id, attempt, at_most_once, desc.fn, desc.args)
            return
        # CANCELLED / TIMED_OUT / STOPPED: terminal without a result.
        exc = self._step_error(op, desc.name, StepError)
        if self._resolved(ctx, None, exc):
            self._resume(ctx, None, exc)

    def _run(
        self,
        ctx: _Ctx,
        desc: Any,
        op_id: str,
        attempt: int,
        durable_first: bool,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        state: Any = None,
    ) -> None:
        self._queue[op_id] = _Entry(ctx, False, None, _Running(ctx, desc, op_id, attempt, state))
        self._commands.append(
            RunStep(
                self._take_updates(),
                durable_first,
                op_id=op_id,
                name=desc.name,
                fn=fn,
                args=args,
                attempt=attempt,
            )
        )

    def _step_value(self, run: _Running, value: Any) -> None:
        desc = run.desc
        if type(desc) is WaitForCondition:
            self._poll_value(run, value)
            return
        serdes = desc.serdes or DEFAULT_SERDES
        try:
            payload = serdes.serialize(value)
            if not isinstance(payload, str):
                raise SerializationError(
                    f"serdes {type(serdes).__name__}.serialize returned "
                    f"{type(payload).__name__}, not str",
                    value_type=type(payload).__name__,
                )
            if len(payload) * 4 > self.max_payload_bytes:  # _check_size's own first test
                self._check_size(payload, _result_of_step, run)
            if serdes is not DEFAULT_SERDES:
                value = serdes.deserialize(payload)
        except SerializationError as e:
            err = ErrorObject(
                type=qualified_name(type(e)),
                message=f"step {desc.name or run.op_id!r} returned a value that cannot be "
                f"stored: {e}",
            )
            self._fail_step(run, err)
            return
        self._updates.append(
            new_step_update(
                run.op_id, _STEP, _SUCCEED, run.ctx.op_parent, desc.name, _ST_STEP, payload, None
            )
        )
        # a partial, not a closure: no cell variables to make on every step
        self._checkpoint_then(partial(self._resume, run.ctx, value, None))

    def _attempt_failed(self, run: _Running, exc: BaseException, error: ErrorObject) -> None:
        desc = run.desc
        policy = desc.retry or (_NO_RETRY if type(desc) is WaitForCondition else _DEFAULT_RETRY)
        decision = policy.decide(exc, run.attempt, jitter_key=f"{self.execution_id}/{run.op_id}")
        if not decision.retry:
            self._fail_step(run, error)
            return
        is_poll = type(desc) is WaitForCondition
        payload = None
        if is_poll:
            payload = self._encode_state(run, run.state)
            if payload is None:
                return
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_RETRY,
                parent_id=run.ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC if is_poll else _ST_STEP,
                error=error,
                payload=payload,
                next_attempt_delay_seconds=decision.delay_seconds,
            )
        )
        self._park(run.ctx, self.now + decision.delay_seconds * 1000)

    def _fail_step(self, run: _Running, error: ErrorObject) -> None:
        desc = run.desc
        is_poll = type(desc) is WaitForCondition
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_FAIL,
                parent_id=run.ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC if is_poll else _ST_STEP,
                error=error,
            )
        )
        cls: type[OperationError] = WaitForConditionError if is_poll else StepError
        exc = cls(error, operation_name=desc.name, operation_id=run.op_id)
        ctx = run.ctx
        self._checkpoint_then(lambda: self._resume(ctx, None, exc))

    def _step_error(
        self, op: Operation, name: str | None, cls: type[OperationError]
    ) -> OperationError:
        error = op.error or ErrorObject(
            type=qualified_name(cls), message=f"the operation ended {op.status.value}"
        )
        return cls(error, operation_name=name, operation_id=op.id)

    # ------------------------------------------------------------------ wait-for-condition

    def _do_wait_for_condition(
        self, ctx: _Ctx, desc: WaitForCondition, op_id: str, op: Operation | None
    ) -> Outcome:
        if op is None:
            self._new_op()
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_STEP,
                    action=_START,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WFC,
                )
            )
            state = desc.initial_state
            self._run(ctx, desc, op_id, 1, False, desc.check, (state,), state=state)
            return None
        self._check(ctx, op, _STEP, _ST_WFC, desc.name)
        status = op.status
        if status is _SUCCEEDED:
            return self._decode(desc.serdes, op, ctx), None
        if op.is_terminal:
            return None, self._step_error(op, desc.name, WaitForConditionError)
        state = desc.initial_state if op.result is None else self._decode(desc.serdes, op, ctx)
        attempt = (op.attempt or 0) + 1
        if status is _STARTED:
            self._new_op()
            self._run(ctx, desc, op_id, attempt, False, desc.check, (state,), state=state)
            return None
        due = op.next_attempt_timestamp
        if status is _PENDING and due is not None and due > self.now:
            self._park(ctx, due)
            return None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_STEP,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC,
            )
        )
        self._run(ctx, desc, op_id, attempt, False, desc.check, (state,), state=state)
        return None

    def _encode_state(self, run: _Running, state: Any) -> str | None:
        """The serialized poll state, or None after failing the operation."""
        desc = run.desc
        try:
            payload = str((desc.serdes or DEFAULT_SERDES).serialize(state))
            self._check_size(payload, _state_of, desc)
            return payload
        except SerializationError as e:
            self._fail_step(
                run,
                ErrorObject(
                    type=qualified_name(type(e)),
                    message=f"the state of {describe_operation(_ST_WFC, None, desc.name)} "
                    f"cannot be stored: {e}",
                ),
            )
            return None

    def _poll_value(self, run: _Running, state: Any) -> None:
        desc: WaitForCondition = run.desc
        ctx = run.ctx
        try:
            go_on = bool(desc.wait_strategy.should_continue(state))
        except Exception as e:  # the predicate is workflow code: the workflow sees it
            self._resume(ctx, None, e)
            return
        payload = self._encode_state(run, state)
        if payload is None:
            return
        serdes = desc.serdes or DEFAULT_SERDES
        if not go_on:
            if serdes is not DEFAULT_SERDES:
                state = serdes.deserialize(payload)
            self._updates.append(
                OperationUpdate(
                    id=run.op_id,
                    type=_STEP,
                    action=_SUCCEED,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WFC,
                    payload=payload,
                )
            )
            self._checkpoint_then(lambda: self._resume(ctx, state, None))
            return
        delay = desc.wait_strategy.next_delay(
            run.attempt, jitter_key=f"{self.execution_id}/{run.op_id}"
        )
        if delay is None:
            self._fail_step(
                run,
                ErrorObject(
                    type=qualified_name(WaitForConditionError),
                    message=f"the condition was still unmet after {run.attempt} "
                    f"poll{'s' if run.attempt != 1 else ''}",
                    data=payload,
                ),
            )
            return
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_RETRY,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC,
                payload=payload,
                next_attempt_delay_seconds=delay,
            )
        )
        self._park(ctx, self.now + delay * 1000)

    # ------------------------------------------------------------------ waits

    def _do_wait(self, ctx: _Ctx, desc: Wait, op_id: str, op: Operation | None) -> Outcome:
        if op is not None:
            self._check(ctx, op, _WAIT, _ST_WAIT, desc.name)
            if op.is_terminal:
                return None, None
            wake = op.scheduled_end_timestamp
            if wake is None:
                raise self._corrupt(ctx, op, "a started wait has no ScheduledEndTimestamp")
        else:
            self._new_op()
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_WAIT,
                    action=_START,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WAIT,
                    wait_seconds=desc.seconds,
                )
            )
            wake = self.now + desc.seconds * 1000
        self._park(ctx, wake)
        return None

    # ------------------------------------------------------------------ contexts

    def _shortcut(self, op: Operation) -> bool:
        """Whether a recorded context can return its recorded outcome without re-running.

        Only when it ended, its result was stored, and nothing else is in flight:
        otherwise re-driving it keeps the order of events the live run had.
        """
        return op.is_terminal and not op.replay_children and not self._concurrent()

    def _open_context(
        self,
        ctx: _Ctx,
        op_id: str,
        op: Operation | None,
        name: str | None,
        sub_type: str,
        decode: Callable[[Operation], Any],
        make_error: Callable[[ErrorObject, str | None, str], OperationError],
    ) -> tuple[bool, Outcome, Operation | None]:
        """The common start of a context-like operation: (done, outcome, recorded).

        ``done``: its recorded outcome is the answer (see :meth:`_shortcut`).
        Otherwise it must run: ``recorded`` is its operation when it already ended
        (it is re-driven) and a new one is STARTed.
        """
        if op is not None:
            self._check(ctx, op, _CONTEXT, sub_type, name)
            if self._shortcut(op):
                if op.status is _SUCCEEDED:
                    return True, (decode(op), None), None
                error = op.error or ErrorObject(type="Error")
                err = make_error(error, name, op_id)
                err.__cause__ = self._cause_in_log(op)
                return True, (None, err), None
            return False, None, op if op.is_terminal else None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_CONTEXT,
                action=_START,
                parent_id=ctx.op_parent,
                name=name,
                sub_type=sub_type,
            )
        )
        return False, None, None

    def _do_child(self, ctx: _Ctx, desc: ChildContext, op_id: str, op: Operation | None) -> Outcome:
        def body() -> Any:
            return desc.fn(*desc.args)

        return self._context_op(
            ctx, op_id, op, desc.name, _ST_CHILD, desc.serdes, body, _child_error
        )

    def _do_wait_for_callback(
        self, ctx: _Ctx, desc: WaitForCallback, op_id: str, op: Operation | None
    ) -> Outcome:
        return self._context_op(
            ctx,
            op_id,
            op,
            desc.name,
            _ST_WAIT_CALLBACK,
            # the context's result is stored as AWS's wait_for_callback stores it: with
            # the default serdes (desc.serdes reads the callback's payload, inside)
            None,
            lambda: _callback_body(desc),
            _wait_for_callback_error,
        )

    def _context_op(
        self,
        ctx: _Ctx,
        op_id: str,
        op: Operation | None,
        name: str | None,
        sub_type: str,
        serdes: Serdes | None,
        body: Callable[[], Any],
        make_error: Callable[[ErrorObject, str | None, str], OperationError],
    ) -> Outcome:
        done, outcome, recorded = self._open_context(
            ctx, op_id, op, name, sub_type, lambda o: self._decode(serdes, o, ctx), make_error
        )
        if done:
            return outcome
        gen = body()
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"{describe_operation(sub_type, None, name)} must run a generator function, "
                f"its call returned {type(gen).__name__}"
            )
        owner = _ContextOwner(
            op_id, name, sub_type, ctx, serdes or DEFAULT_SERDES, recorded, make_error
        )
        kind = (
            "child context" if sub_type == _ST_CHILD else describe_operation(sub_type, None, None)
        )
        label = f"{kind} {name!r}" if name else kind
        child = _Ctx(gen, op_id, op_id, label, ctx, owner)
        self._open.append(child)
        self._ready.appendleft(child)
        return None

    def _do_batch(
        self, ctx: _Ctx, desc: Parallel | Map, op_id: str, op: Operation | None
    ) -> Outcome:
        sub_type = OperationSubType.MAP.value if isinstance(desc, Map) else "Parallel"
        done, outcome, recorded = self._open_context(
            ctx,
            op_id,
            op,
            desc.name,
            sub_type,
            lambda o: self._decode_batch(desc.serdes, o, ctx),
            _child_error,
        )
        if done:
            return outcome
        _Batch(self, ctx, op_id, desc, recorded).admit()
        return None

    def _do_combinator(self, ctx: _Ctx, desc: Any, op_id: str, op: Operation | None) -> Outcome:
        sub_type = str(desc.kind)
        done, outcome, recorded = self._open_context(
            ctx,
            op_id,
            op,
            desc.name,
            sub_type,
            lambda o: self._decode(None, o, ctx),
            _combinator_error,
        )
        if done:
            return outcome
        _Combination(self, ctx, op_id, desc, sub_type, recorded).start()
        return None

    # ------------------------------------------------------------------ callbacks & invoke

    def _do_create_callback(
        self, ctx: _Ctx, desc: CreateCallback, op_id: str, op: Operation | None
    ) -> Outcome:
        if op is not None:
            self._check(ctx, op, _CALLBACK, _ST_CALLBACK, desc.name)
            return self._handle(ctx, desc, op), None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_CALLBACK,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_CALLBACK,
                callback_timeout_seconds=desc.timeout,
                callback_heartbeat_timeout_seconds=desc.heartbeat_timeout,
            )
        )

        def created() -> None:
            recorded = self._ops.get(op_id)
            if recorded is None or not recorded.callback_id:
                raise StoreError(
                    f"the service did not return a CallbackId for callback {desc.name or op_id!r}"
                )
            self._resume(ctx, self._handle(ctx, desc, recorded), None)

        self._checkpoint_then(created)
        return None

    def _handle(self, ctx: _Ctx, desc: CreateCallback, op: Operation) -> CallbackHandle:
        if not op.callback_id:
            raise self._corrupt(ctx, op, "a recorded callback has no CallbackId")
        return CallbackHandle(
            callback_id=op.callback_id, operation_id=op.id, name=desc.name, serdes=desc.serdes
        )

    def _await_callback(self, ctx: _Ctx, handle: CallbackHandle) -> Outcome:
        op = self._ops.get(handle.operation_id)
        if op is None or op.type is not _CALLBACK:
            raise WorkflowDefinitionError(
                f"the workflow awaited callback {handle.name or handle.callback_id!r}, which "
                "this execution never created; yield CreateCallback(...) first and await "
                "the handle it yields"
            )
        status = op.status
        if status is _SUCCEEDED:
            res = op.result
            try:
                value = (handle.serdes or _PASS_THROUGH).deserialize(res if res is not None else "")
            except SerializationError as e:
                return None, CallbackFailedError(
                    ErrorObject(
                        type=qualified_name(SerializationError),
                        message=f"the callback's payload cannot be read: {e}",
                    ),
                    operation_name=handle.name,
                    operation_id=op.id,
                )
            return value, None
        if op.is_terminal:
            return None, self._callback_error(op, handle.name)
        self._park(ctx, None)
        return None

    @staticmethod
    def _callback_error(op: Operation, name: str | None) -> OperationError:
        """The error awaiting a callback that did not succeed throws, as AWS's SDK's.

        TIMED_OUT gives CallbackTimeoutError, any other end CallbackFailedError
        (AWS's CallbackExternalError); as in AWS's SDK the error's type is the
        class's, with the recorded message, data and stack trace (the external
        system's own ErrorType stays on the callback operation, and on ``__cause__``).
        """
        timed_out = op.status is _TIMED_OUT
        cls: type[OperationError] = CallbackTimeoutError if timed_out else CallbackFailedError
        recorded = op.error or ErrorObject()
        error = ErrorObject(
            type=cls.wire_type,
            message=recorded.message or ("Callback timed out" if timed_out else "Callback failed"),
            data=recorded.data,
            stack_trace=recorded.stack_trace,
        )
        exc = cls(error, operation_name=name, operation_id=op.id)
        # what the service recorded ("Callback.Timeout" or "Callback.Heartbeat", or
        # the external system's error) stays reachable
        exc.__cause__ = cls(recorded, operation_name=name, operation_id=op.id)
        return exc

    def _do_invoke(self, ctx: _Ctx, desc: Invoke, op_id: str, op: Operation | None) -> Outcome:
        if op is not None:
            self._check(ctx, op, _INVOKE, _ST_INVOKE, desc.name)
            if op.status is _SUCCEEDED:
                return self._decode(desc.serdes, op, ctx), None
            if op.is_terminal:
                return None, self._step_error(op, desc.name, InvokeError)
            self._park(ctx, None)
            return None
        try:
            payload = DEFAULT_SERDES.serialize(desc.payload)
            self._check_size(payload, _payload_of_invoke, desc)
        except SerializationError as e:
            return None, InvokeError(
                ErrorObject(
                    type=qualified_name(type(e)),
                    message=f"the payload of invoke {desc.name or desc.function_name!r} "
                    f"cannot be sent: {e}",
                ),
                operation_name=desc.name,
                operation_id=op_id,
            )
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_INVOKE,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_INVOKE,
                payload=payload,
                function_name=desc.function_name,
                tenant_id=desc.tenant_id,
            )
        )
        self._checkpoint_then(lambda: self._park(ctx, None))
        return None

    # ------------------------------------------------------------------ stopping

    def _stop(self) -> Command:
        """Nothing is ready and nothing runs: suspend (or report the finished root)."""
        if self._finished is not None:
            return self._finished
        wakes = [w for w in self._parked.values() if w is not None]
        self.close()
        self._finished = Suspend(self._take_updates(), min(wakes) if wakes else None)
        return self._finished

    # ------------------------------------------------------------------ checks

    def _check(
        self, ctx: _Ctx, op: Operation, type_: OperationType, sub_type: str, name: str | None
    ) -> None:
        if (
            op.type is type_
            and op.sub_type == sub_type
            and op.name == name
            and op.parent_id == ctx.op_parent
        ):
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
        self.close()
        raise NonDeterminismError(
            position=f"{where} of {ctx.label}",
            recorded=recorded,
            yielded=f"yielded {yielded}",
            operation_id=op.id,
            hint=_HINT,
        )

    def _check_nothing_skipped(self, ctx: _Ctx) -> None:
        if isinstance(ctx.owner, _OperandOwner):
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


_Handler = Callable[[Interpreter, _Ctx, Any, str, Operation | None], Outcome]

_HANDLERS: dict[type, _Handler] = {
    Wait: Interpreter._do_wait,
    ChildContext: Interpreter._do_child,
    WaitForCondition: Interpreter._do_wait_for_condition,
    CreateCallback: Interpreter._do_create_callback,
    WaitForCallback: Interpreter._do_wait_for_callback,
    Invoke: Interpreter._do_invoke,
    Parallel: Interpreter._do_batch,
    Map: Interpreter._do_batch,
}
