"""Child contexts, Parallel and Map (batches with completion policies and concurrency
limits) and the promise combinators: operations that hold other operations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

from ..batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionItemStatus,
    CompletionPolicy,
    CompletionReason,
)
from ..descriptors import (
    AwaitCallback,
    CallbackHandle,
    ChildContext,
    Map,
    Nesting,
    Parallel,
    ParallelBranch,
)
from ..errors import (
    ChildContextError,
    CombinatorError,
    ErrorObject,
    NonDeterminismError,
    OperationError,
    SerializationError,
    WorkflowDefinitionError,
    error_from_exception,
    operation_failure,
    qualified_name,
)
from ..log import (
    Operation,
    OperationStatus,
    OperationSubType,
    OperationUpdate,
    operation_id,
)
from ..present import describe_operation, ordinal
from ..serdes import BATCH_SERDES, DEFAULT_SERDES, PassThroughSerdes, Serdes
from .base import (
    _CONTEXT,
    _FAIL,
    _HINT,
    _MISSING,
    _ST_WAIT_CALLBACK,
    _START,
    _SUCCEED,
    _SUCCEEDED,
    REPLAY_CHILDREN_THRESHOLD,
    Outcome,
    _Base,
    _Ctx,
    _Owner,
    yield_site,
)


def _child_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    return ChildContextError(error, operation_name=name, operation_id=op_id)


def _combinator_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    return CombinatorError(error, operation_name=name, operation_id=op_id)


def _encode_returned(interp: _Base, ctx: _Ctx, serdes: Serdes, value: Any) -> tuple[str, Any, bool]:
    """What a context's generator returned, encoded to be recorded (see
    ``_encode_context_result``); SerializationError names the context."""
    try:
        return interp._encode_context_result(serdes, value)
    except SerializationError as e:
        raise SerializationError(
            f"{ctx.label} returned a value that cannot be stored: {e}", value_type=e.value_type
        ) from e


def _summary_of(interp: _Base, summary: Callable[[Any], Any], value: Any, label: str) -> str:
    """What a context records in place of a result over the limit (AWS's summary)."""
    text = summary(value)
    if not isinstance(text, str):
        raise SerializationError(
            f"the summary of {label} must be a str, got {type(text).__name__}",
            value_type=type(text).__name__,
        )
    _, _, big = interp._encode_context_result(PassThroughSerdes(), text)
    if big:
        raise SerializationError(
            f"the summary of {label} is over the {REPLAY_CHILDREN_THRESHOLD:,} bytes a "
            "context may store; return a shorter one",
            value_type="str",
        )
    return text


def _summary_envelope(result: BatchResult[Any], result_type: str, summary: str | None) -> str:
    """The record of a Parallel or Map result over the limit, as AWS's SDK writes it
    (its ``CompletionRecord.summary_envelope``): the completion decision, counts, and
    the workflow's own summary, if any, under ``summary``."""
    started = [i.index for i in result.all if i.status is BatchItemStatus.STARTED]
    completed = [i.index for i in result.all if i.status is not BatchItemStatus.STARTED]
    indexes = (
        {"startedIndexes": started}
        if len(started) <= len(completed)
        else {"completedIndexes": completed}
    )
    fields: dict[str, Any] = {
        "type": result_type,
        "totalCount": result.total_count,
        "completionReason": result.completion_reason.value,
        **indexes,
        "startedCount": result.started_count,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "status": result.status.value,
    }
    if summary is not None:
        fields["summary"] = summary
    return json.dumps(fields)


class _VirtualOwner(_Owner):
    """A virtual child context: nothing recorded; its outcome goes straight to its parent."""

    def __init__(self, op_id: str, desc: ChildContext[Any], parent: _Ctx) -> None:
        self.op_id = op_id
        self.desc = desc
        self.parent = parent

    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
        try:  # the value goes through its serdes, as a recorded context's does
            _, value, _ = _encode_returned(interp, ctx, self.desc.serdes or DEFAULT_SERDES, value)
        except SerializationError as e:
            self.raised(interp, ctx, e)
            return
        if interp.virtual_events is not None:
            interp.virtual_events.append(("end", self.op_id, None))
        interp._resume(self.parent, value, None)

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        error = error_from_exception(exc)
        if interp.virtual_events is not None:
            interp.virtual_events.append(("end", self.op_id, error))
        err = _child_error(error, self.desc.name, self.op_id)
        err.__cause__ = exc
        interp._resume(self.parent, None, err)


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
        summary: Callable[[Any], str] | None = None,
    ) -> None:
        self.op_id = op_id
        self.name = name
        self.sub_type = sub_type
        self.parent = parent
        self.serdes = serdes
        self.recorded = recorded  # re-driving a context that already ended
        self.make_error = make_error
        self.summary = summary  # what is recorded in place of a result over the limit

    def _replayed(self, interp: _Base, ctx: _Ctx, value: Any, exc: Exception | None) -> None:
        assert self.recorded is not None
        value, error = interp._recorded_outcome(self.recorded, self.serdes, ctx, value, exc)
        err = None if error is None else self.make_error(error, self.name, self.op_id)
        if err is not None:
            err.__cause__ = exc if exc is not None else interp._cause_in_log(self.recorded)
        interp._resume(self.parent, value, err)

    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
        if self.recorded is not None:
            self._replayed(interp, ctx, value, None)
            return
        raw = value
        try:
            payload, value, big = _encode_returned(interp, ctx, self.serdes, value)
        except SerializationError as e:
            self.raised(interp, ctx, e)
            return
        if big and self.summary is not None:
            try:
                payload = _summary_of(interp, self.summary, raw, ctx.label)
            except Exception as e:  # the user's summary failed: the context fails
                self.raised(interp, ctx, e)
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

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        if self.recorded is not None:
            self._replayed(interp, ctx, None, exc)
            return
        self.fail(interp, error_from_exception(exc), exc)

    def fail(self, interp: _Base, error: ErrorObject, cause: Exception | None = None) -> None:
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
        interp: _Base,
        parent: _Ctx,
        op_id: str,
        desc: Parallel | Map[Any],
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
        self.items: dict[int, BatchItem[Any]] = {}
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
        branch = desc.branches[i]
        if isinstance(branch, ParallelBranch) and branch.name is not None:
            return branch.name
        return f"parallel-branch-{i}"

    def given_name(self, i: int) -> str | None:
        """The name a branch was given (None for the default one), as a
        ``should_complete`` predicate sees it."""
        desc = self.desc
        if isinstance(desc, Map):
            return None if desc.item_namer is None else self.branch_name(i)
        branch = desc.branches[i]
        return branch.name if isinstance(branch, ParallelBranch) else None

    def snapshot(self) -> tuple[CompletionItemStatus, ...]:
        """Every branch's status, for a ``should_complete`` predicate."""
        items = self.items
        statuses = []
        for i in range(self.total):
            item = items.get(i)
            status = (
                item.status
                if item is not None
                else BatchItemStatus.STARTED
                if i in self.active
                else None
            )
            statuses.append(CompletionItemStatus(i, self.given_name(i), status))
        return tuple(statuses)

    def decide(self) -> CompletionReason | None:
        succeeded = self.succeeded
        policy: CompletionPolicy = self.desc.completion
        return policy.decide(succeeded, len(self.items) - succeeded, self.total, self.snapshot)

    def start(self) -> None:
        """Admit the first branches; a ``should_complete`` predicate is asked first
        (it may complete the batch before any branch starts, as on AWS)."""
        if self.desc.completion.should_complete is not None and self.total:
            reason = self.decide()
            if reason is not None:
                self.finish(reason)
                return
        self.admit()

    def admit(self) -> None:
        limit = self.desc.max_concurrency
        started = False
        while (
            not self.finished
            and self.next_index < self.total
            and (limit is None or len(self.active) < limit)
        ):
            i = self.next_index
            self.next_index += 1
            self.start_branch(i)
            started = True
        if not self.finished and self.total == 0:
            self.finish(self.decide() or CompletionReason.ALL_COMPLETED)
        elif started and not self.finished and self.desc.completion.should_complete is not None:
            # AWS's SDK asks the predicate again once branches have started
            reason = self.decide()
            if reason is not None:
                self.finish(reason)

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

    def branch_done(self, i: int, item: BatchItem[Any]) -> None:
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
        reason = self.decide()
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
        label = describe_operation(self.sub_type, None, self.desc.name)
        try:
            payload, _, big = interp._encode_context_result(serdes, result)
            if big:
                summary = self.desc.summary
                text = None if summary is None else _summary_of(interp, summary, result, label)
                payload = _summary_envelope(
                    result, "MapResult" if self.is_map else "ParallelResult", text
                )
        except Exception as e:  # not storable, or the user's summary failed
            exc = (
                SerializationError(
                    f"the result of {label} cannot be stored: {e}", value_type=e.value_type
                )
                if isinstance(e, SerializationError)
                else e
            )
            owner = _ContextOwner(
                self.op_id, self.desc.name, self.sub_type, parent, serdes, None, _child_error
            )
            owner.fail(interp, error_from_exception(exc), exc)
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

    def _replayed(self, interp: _Base, ctx: _Ctx, value: Any, exc: Exception | None) -> None:
        assert self.recorded is not None
        serdes = self.batch.desc.item_serdes or DEFAULT_SERDES
        value, error = interp._recorded_outcome(self.recorded, serdes, ctx, value, exc)
        item: BatchItem[Any]
        if error is None:
            item = BatchItem(self.index, BatchItemStatus.SUCCEEDED, value)
        else:
            item = BatchItem(self.index, BatchItemStatus.FAILED, None, error)
        self.batch.branch_done(self.index, item)

    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
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
            payload, value, big = _encode_returned(interp, ctx, serdes, value)
        except SerializationError as e:
            self.raised(interp, ctx, e)
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

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        batch = self.batch
        if self.recorded is not None:
            self._replayed(interp, ctx, None, exc)
            return
        error = error_from_exception(exc)
        item: BatchItem[Any] = BatchItem(self.index, BatchItemStatus.FAILED, None, error)
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
        interp: _Base,
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
    # a combinator's operand may stop early (Any/Race settle on the first outcome)
    replays_whole_log = False

    def __init__(self, comb: _Combination, index: int) -> None:
        self.comb = comb
        self.index = index

    def returned(self, interp: _Base, ctx: _Ctx, value: Any) -> None:
        self.comb.settle(self.index, True, value)

    def raised(self, interp: _Base, ctx: _Ctx, exc: Exception) -> None:
        self.comb.settle(self.index, False, operation_failure(exc))


class _Contexts(_Base):
    """Child contexts, Parallel and Map (batches with completion policies and concurrency
    limits) and the promise combinators.
    """

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

    def _do_child(
        self, ctx: _Ctx, desc: ChildContext[Any], op_id: str, op: Operation | None
    ) -> Outcome:
        if desc.virtual:
            return self._virtual_child(ctx, desc, op_id, op)

        def body() -> Any:
            return desc.fn(*desc.args)

        return self._context_op(
            ctx,
            op_id,
            op,
            desc.name,
            desc.sub_type,
            desc.serdes,
            body,
            _child_error,
            desc.summary,
        )

    def _virtual_child(
        self, ctx: _Ctx, desc: ChildContext[Any], op_id: str, op: Operation | None
    ) -> Outcome:
        """A virtual child context: takes an id, records nothing, runs on every replay.

        Its operations' ids are made from its id (so they stay deterministic) and
        their ParentId is the enclosing context's, as AWS's SDK records them.
        """
        if op is not None:  # the log has an operation where this records none
            source = yield_site(ctx.gen)
            self.close()
            what = f"child context {desc.name!r}" if desc.name else "child context"
            raise NonDeterminismError(
                position=f"{ordinal(ctx.counter)} operation of {ctx.label}",
                recorded=describe_operation(op.sub_type, op.type, op.name),
                yielded=f"yielded a virtual {what}, which records no operation of its own",
                operation_id=op.id,
                hint=_HINT,
                source=source,
            )
        gen = desc.fn(*desc.args)
        if not isinstance(gen, Generator):
            raise WorkflowDefinitionError(
                f"virtual child context {desc.name!r} must run a generator function, "
                f"its call returned {type(gen).__name__}"
            )
        label = f"virtual child context {desc.name!r}" if desc.name else "virtual child context"
        if self.virtual_events is not None:
            self.virtual_events.append(("start", op_id, desc.name, desc.sub_type, ctx.op_parent))
        child = _Ctx(gen, op_id, ctx.op_parent, label, ctx, _VirtualOwner(op_id, desc, ctx))
        self._open.append(child)
        self._ready.appendleft(child)
        return None

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
        summary: Callable[[Any], str] | None = None,
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
            op_id, name, sub_type, ctx, serdes or DEFAULT_SERDES, recorded, make_error, summary
        )
        kind = (
            describe_operation(sub_type, None, None)
            if sub_type == _ST_WAIT_CALLBACK
            else "child context"
        )
        label = f"{kind} {name!r}" if name else kind
        child = _Ctx(gen, op_id, op_id, label, ctx, owner)
        self._open.append(child)
        self._ready.appendleft(child)
        return None

    def _do_batch(
        self, ctx: _Ctx, desc: Parallel | Map[Any], op_id: str, op: Operation | None
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
        _Batch(self, ctx, op_id, desc, recorded).start()
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
