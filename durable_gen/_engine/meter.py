"""Metering: durable operations and bytes persisted, as Lambda meters durable functions.

Pure: no I/O.
:func:`compute_meter` turns an execution's history events, its checkpoint updates
and its operations into a :class:`Meter`; :func:`meter_execution` reads them from
any store; :func:`~durable_gen._engine.pricing.estimate` prices a meter with the prices the user
supplies (``pricing``).

The rules (issue 10's table, from the Lambda documentation of durable operations)
-----------------------------------------------------------------------------------

=========================  ===============================  ==================================
row (``MeterKind``)        durable operations               bytes persisted
=========================  ===============================  ==================================
Execution                  1                                input payload + output payload
                                                            (result, or the error when it
                                                            failed / timed out / stopped)
Step                       1 per ended attempt:             each attempt's payload: the
                           1 + N retries                    result, or the error of a retried
                           (RETRY, SUCCEED, FAIL)           or failed attempt
Wait                       1 (START)                        --
WaitForCondition           1 per poll: 1 + N polls          each poll's payload (the state),
                           (RETRY, SUCCEED, FAIL)           plus its error when it has one
Invocation-level retry     1 per invocation that ended      the error object
                           with an error
CreateCallback             1 (START)                        --
Callback completion        0                                the callback payload (the result
                                                            sent, or the error sent)
WaitForCallback            3 + N retries: its CONTEXT,      the submitter step's payloads
                           its CALLBACK, and 1 + N          (each attempt), the callback
                           submitter attempts               payload, and the context's result
                                                            (the second copy of the callback
                                                            payload)
Parallel/Map               1 + N branches: the batch        each branch context's result
                           CONTEXT and each branch          (copy 1) and the batch's result,
                           CONTEXT started                  a BatchResult holding every
                                                            branch's result and status
                                                            (copy 2 + statuses)
Promise helpers            1 when it completes              its result (or error)
(All/Any/Race/AllSettled)  (SUCCEED/FAIL)
RunInChildContext          1 when it completes              its result (or error); a result
                           (SUCCEED/FAIL)                   over 256 KiB is not stored
                                                            (ReplayChildren): 0 bytes
ChainedInvoke              1 (START)                        the input sent and the result
                                                            (or error) recorded at the end
=========================  ===============================  ==================================

Sizes: a payload counts ``len(payload.encode("utf-8"))``; an error counts its
ErrorObject as compact JSON (``json.dumps(error.to_dict(), separators=(",", ":"),
ensure_ascii=False)``, UTF-8); an empty ErrorObject (``{}``) counts 0.

Interpretations where the table is ambiguous (our choices):

- *Step* ``1 + N retries``: one operation per attempt that ended (each RETRY,
  SUCCEED or FAIL update) -- the Lambda documentation of step retries says each
  retried or failed attempt is "1 operation + error payload size". A START is
  not metered, so an attempt still running counts once it ends.
- *WaitForCondition* ``1 + N polls``: the first poll plus N further polls, i.e.
  one operation per poll that ended (RETRY/SUCCEED/FAIL), like a step. A poll
  whose check raised and is retried persists both its state and its error.
- Operations are attributed by where they sit: the CALLBACK and the STEP inside
  a WaitForCallback context belong to the *WaitForCallback* row (so a callback
  completed through the API counts there, as the "two copies" of the callback
  payload), not to *CreateCallback*/*Callback completion*/*Step*. Everything
  else inside a context (steps in a Parallel branch, in a child context, the
  operands of All/Any/...) is metered under its own row; the context rows count
  only the CONTEXT operations themselves.
- *Parallel/Map* branches count when they are started: branches a completion
  policy never started are not counted; with ``Nesting.FLAT`` no branch contexts
  exist, so the row is 1 (and only one copy of each result is stored). "Up to two
  copies" falls out of the payloads actually persisted.
- *Callback completion* covers completions sent through the API (succeed/fail).
  A callback the service times out persists a service-generated error; the
  table has no row for it and it is not metered.
- *Invocation-level retry*: every invocation that ended with an error (history
  event ``InvocationCompleted`` with an ``Error``: an ``InvocationError``, a crash,
  a non-deterministic replay) is retried by Lambda and counts 1 + its error object.
- *ChainedInvoke* is not in the table: 1 operation when started; bytes are the
  input payload it was started with and the result (or error) it ended with.
- *Execution*: the output counts once, from the first of: the terminal history
  event, an EXECUTION SUCCEED/FAIL update (a result too large for the response),
  the EXECUTION operation.

Which source is authoritative
-----------------------------

- What the **workflow checkpointed** (every row but the service-side ones below):
  the checkpoint **updates** when the store kept them (``MemoryStore.updates``,
  or the updates one Lambda invocation sent) -- they are exactly what was sent
  and metered. Without them (the SQLite store, AWS) the same records are rebuilt
  from the **history** events, one event per update (``StepFailed`` with
  ``RetryDetails.NextAttemptDelaySeconds`` is a RETRY, and so on). One loss: the
  history event of a WaitForCondition poll that raised and is retried carries
  the error but not the state; the meter then counts the error only (noted).
- What the **service records itself** comes from the **history**: the execution's
  input and output (``Execution*`` events), callback completions
  (``CallbackSucceeded``/``CallbackFailed``), chained-invoke results, and failed
  invocations (``InvocationCompleted``).
- The **operations** fill gaps: the execution's input/output when the history
  lacks them, the ``ReplayChildren`` flag (reported in ``Meter.replay_children``)
  and the identity (type, SubType, name, parent) of operations the other sources
  do not describe.
- History payloads marked ``Truncated`` are counted at their stored length and
  noted (the count is then a lower bound).

(Why one module of ~870 lines: a sixth of it is this docstring, the rules a reader
checks the code against; the rest is one pipeline -- records from updates or
history, a tally by kind, the Meter -- that reads best in one place. Prices and
estimates are in ``pricing``.)
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import attrs

from .._core.errors import (
    ErrorObject,
    ValidationError,
)
from .._core.log import (
    Operation,
    OperationAction,
    OperationSubType,
    OperationType,
    OperationUpdate,
)
from .._core.present import describe_operation

__all__ = [
    "KindUsage",
    "Meter",
    "MeterKind",
    "MeterSource",
    "PayloadSize",
    "compute_meter",
    "error_size",
    "meter_execution",
    "payload_size",
]


class MeterKind(enum.StrEnum):
    """The rows of the metering table, in its order."""

    EXECUTION = "Execution"
    STEP = "Step"
    WAIT = "Wait"
    WAIT_FOR_CONDITION = "WaitForCondition"
    INVOCATION_RETRY = "Invocation-level retry"
    CREATE_CALLBACK = "CreateCallback"
    CALLBACK_COMPLETION = "Callback completion"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    PARALLEL_MAP = "Parallel/Map"
    PROMISE = "Promise helpers"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    CHAINED_INVOKE = "ChainedInvoke"


_KINDS = tuple(MeterKind)

_PROMISE_SUBTYPES = frozenset({"All", "Any", "Race", "AllSettled"})
_BATCH_SUBTYPES = frozenset(
    {
        OperationSubType.PARALLEL.value,
        OperationSubType.PARALLEL_BRANCH.value,
        OperationSubType.MAP.value,
        OperationSubType.MAP_ITERATION.value,
    }
)
_WFCB = OperationSubType.WAIT_FOR_CALLBACK.value
_WFC = OperationSubType.WAIT_FOR_CONDITION.value
_ENDS = frozenset({OperationAction.RETRY, OperationAction.SUCCEED, OperationAction.FAIL})
_COMPLETES = frozenset({OperationAction.SUCCEED, OperationAction.FAIL})


def payload_size(payload: str | None) -> int:
    """Bytes a payload persists: its length in UTF-8."""
    return len(payload.encode("utf-8")) if payload else 0


def error_size(error: ErrorObject | Mapping[str, Any] | None) -> int:
    """Bytes an error persists: its ErrorObject as compact JSON in UTF-8 (``{}`` is 0)."""
    if error is None:
        return 0
    d = error.to_dict() if isinstance(error, ErrorObject) else dict(error)
    if not d:
        return 0
    return len(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# ----------------------------------------------------------------------------- values


@attrs.frozen(kw_only=True)
class KindUsage:
    """One row of the meter: durable operations and bytes persisted of one kind."""

    kind: MeterKind
    operations: int
    bytes: int


@attrs.frozen(kw_only=True)
class PayloadSize:
    """One persisted payload: how big, and which operation persisted it."""

    bytes: int
    kind: MeterKind
    operation_id: str
    name: str | None
    operation: str  # as a person wrote it: "Step 'charge'"
    what: str  # "result", "attempt 2 error", "callback payload", ...


def _fmt_int(n: float) -> str:
    return f"{n:,.0f}" if n == int(n) else f"{n:,.2f}"


@attrs.frozen(kw_only=True)
class Meter:
    """Durable operations and bytes persisted by one execution (or one invocation).

    ``rows`` has every :class:`MeterKind`, in the table's order. ``largest`` are
    the biggest payloads, largest first. ``retention_days`` (when given) turns
    the bytes persisted into ``retained_byte_days``. ``replay_children`` names the
    contexts whose result was not stored (over 256 KiB, rebuilt on replay).
    ``notes`` explain where the figures may be a lower bound.
    """

    execution_id: str | None = None
    status: str | None = None
    rows: tuple[KindUsage, ...]
    largest: tuple[PayloadSize, ...] = ()
    retention_days: float | None = None
    replay_children: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def operations(self) -> int:
        """Total durable operations."""
        return sum(r.operations for r in self.rows)

    @property
    def bytes_persisted(self) -> int:
        """Total bytes persisted."""
        return sum(r.bytes for r in self.rows)

    @property
    def retained_byte_days(self) -> float | None:
        """Bytes persisted x retention days, or None without a retention period."""
        if self.retention_days is None:
            return None
        return self.bytes_persisted * self.retention_days

    @property
    def operations_by_kind(self) -> dict[str, int]:
        return {r.kind.value: r.operations for r in self.rows}

    @property
    def bytes_by_kind(self) -> dict[str, int]:
        return {r.kind.value: r.bytes for r in self.rows}

    def row(self, kind: MeterKind | str) -> KindUsage:
        k = MeterKind(kind)
        return next(r for r in self.rows if r.kind is k)

    def operations_of(self, kind: MeterKind | str) -> int:
        return self.row(kind).operations

    def bytes_of(self, kind: MeterKind | str) -> int:
        return self.row(kind).bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: totals, every row, the largest payloads, retention, notes."""
        return {
            "execution_id": self.execution_id,
            "status": self.status,
            "operations": self.operations,
            "bytes_persisted": self.bytes_persisted,
            "by_kind": {
                r.kind.value: {"operations": r.operations, "bytes": r.bytes} for r in self.rows
            },
            "largest_payloads": [
                {
                    "bytes": p.bytes,
                    "kind": p.kind.value,
                    "operation_id": p.operation_id,
                    "name": p.name,
                    "operation": p.operation,
                    "what": p.what,
                }
                for p in self.largest
            ],
            "retention_days": self.retention_days,
            "retained_byte_days": self.retained_byte_days,
            "replay_children": list(self.replay_children),
            "notes": list(self.notes),
        }

    def to_table(self, *, all_rows: bool = False) -> str:
        """Aligned text: one line per kind used (every kind with ``all_rows``)."""
        rows = [r for r in self.rows if all_rows or r.operations or r.bytes]
        header = ("kind", "operations", "bytes persisted")
        body = [(r.kind.value, _fmt_int(r.operations), _fmt_int(r.bytes)) for r in rows]
        total = ("total", _fmt_int(self.operations), _fmt_int(self.bytes_persisted))
        w0 = max(len(x[0]) for x in [header, *body, total])
        w1 = max(len(x[1]) for x in [header, *body, total])
        w2 = max(len(x[2]) for x in [header, *body, total])

        def line(c: tuple[str, str, str]) -> str:
            return f"  {c[0]:<{w0}}  {c[1]:>{w1}}  {c[2]:>{w2}}"

        title = "durable operations and data persisted"
        if self.execution_id is not None:
            title += f" by execution {self.execution_id}"
        if self.status is not None:
            title += f" ({self.status})"
        out = [title, line(header)]
        out += [line(b) for b in body]
        out.append("  " + "-" * (w0 + w1 + w2 + 4))
        out.append(line(total))
        if self.largest:
            out.append("largest payloads")
            wb = max(len(_fmt_int(p.bytes)) for p in self.largest)
            out += [f"  {_fmt_int(p.bytes):>{wb}} B  {p.operation} {p.what}" for p in self.largest]
        if self.retention_days is not None:
            out.append(
                f"data retained: {_fmt_int(self.bytes_persisted)} B x "
                f"{_fmt_int(self.retention_days)} days = "
                f"{_fmt_int(self.retained_byte_days or 0)} byte-days"
            )
        if self.replay_children:
            out.append("not stored (ReplayChildren): " + ", ".join(self.replay_children))
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def summary_line(self) -> str:
        """One line for logs: ``durable-gen meter: 7 operations, 312 B (Step 4/120 B, ...)``."""
        parts = [
            f"{r.kind.value} {r.operations}/{_fmt_int(r.bytes)} B"
            for r in self.rows
            if r.operations or r.bytes
        ]
        who = f" {self.execution_id}" if self.execution_id else ""
        detail = f" ({', '.join(parts)})" if parts else ""
        return (
            f"durable-gen meter{who}: {self.operations} operations, "
            f"{_fmt_int(self.bytes_persisted)} B persisted{detail}"
        )


# ----------------------------------------------------------------------------- records


@attrs.frozen(kw_only=True)
class _Ident:
    type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None


@attrs.frozen(kw_only=True)
class _Record:
    """One thing the workflow checkpointed (an update, or the event standing for it)."""

    id: str
    type: OperationType
    action: OperationAction
    payload: str | None = None
    error: ErrorObject | Mapping[str, Any] | None = None
    truncated: bool = False


_EVENT_TYPES = {
    "Step": OperationType.STEP,
    "Context": OperationType.CONTEXT,
    "Wait": OperationType.WAIT,
    "Callback": OperationType.CALLBACK,
    "ChainedInvoke": OperationType.CHAINED_INVOKE,
    "Execution": OperationType.EXECUTION,
}


def _split_event_type(event_type: str) -> tuple[OperationType | None, str]:
    # Longest prefix first: "ChainedInvoke" before nothing else overlaps.
    for prefix, t in _EVENT_TYPES.items():
        if event_type.startswith(prefix):
            return t, event_type[len(prefix) :]
    return None, event_type


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    d = event.get(f"{event.get('EventType', '')}Details")
    return d if isinstance(d, Mapping) else {}


def _event_payload(d: Mapping[str, Any], key: str) -> tuple[str | None, bool]:
    p = d.get(key)
    if not isinstance(p, Mapping):
        return None, False
    text = p.get("Payload")
    return (text if isinstance(text, str) else None), bool(p.get("Truncated"))


def _event_error(d: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, bool]:
    p = d.get("Error")
    if not isinstance(p, Mapping):
        return None, False
    inner = p.get("Payload")
    if isinstance(inner, Mapping):
        return inner, bool(p.get("Truncated"))
    return p, False  # an ErrorObject written directly


def _records_from_history(events: Iterable[Mapping[str, Any]]) -> list[_Record]:
    """The checkpoint updates the history events stand for (one event per update)."""
    out: list[_Record] = []
    for ev in events:
        t, what = _split_event_type(str(ev.get("EventType", "")))
        op_id = ev.get("Id")
        if t is None or t is OperationType.EXECUTION or not isinstance(op_id, str):
            continue
        d = _details(ev)
        if what == "Started":
            payload, trunc = (None, False)
            if t is OperationType.CHAINED_INVOKE:
                payload, trunc = _event_payload(d, "Input")
            out.append(
                _Record(
                    id=op_id,
                    type=t,
                    action=OperationAction.START,
                    payload=payload,
                    truncated=trunc,
                )
            )
            continue
        if t is OperationType.STEP or t is OperationType.CONTEXT:
            retry = d.get("RetryDetails")
            is_retry = isinstance(retry, Mapping) and retry.get("NextAttemptDelaySeconds")
            if what == "Succeeded":
                payload, trunc = _event_payload(d, "Result")
                action = OperationAction.RETRY if is_retry else OperationAction.SUCCEED
                out.append(
                    _Record(id=op_id, type=t, action=action, payload=payload, truncated=trunc)
                )
            elif what == "Failed":
                err, trunc = _event_error(d)
                action = OperationAction.RETRY if is_retry else OperationAction.FAIL
                out.append(_Record(id=op_id, type=t, action=action, error=err, truncated=trunc))
    return out


def _records_from_updates(updates: Iterable[OperationUpdate]) -> list[_Record]:
    return [
        _Record(id=u.id, type=u.type, action=u.action, payload=u.payload, error=u.error)
        for u in updates
        if u.type is not OperationType.EXECUTION
    ]


# ----------------------------------------------------------------------------- metering


class _Tally:
    def __init__(self, idents: Mapping[str, _Ident]) -> None:
        self.idents = idents
        self.ops = dict.fromkeys(_KINDS, 0)
        self.bytes = dict.fromkeys(_KINDS, 0)
        self.payloads: list[PayloadSize] = []

    def add(
        self,
        kind: MeterKind,
        op_id: str,
        *,
        ops: int = 0,
        nbytes: int = 0,
        what: str = "",
        label: str | None = None,
    ) -> None:
        self.ops[kind] += ops
        self.bytes[kind] += nbytes
        if nbytes:
            ident = self.idents.get(op_id)
            name = ident.name if ident is not None else None
            if label is None:
                label = (
                    describe_operation(ident.sub_type, ident.type.value, ident.name)
                    if ident is not None
                    else f"operation {op_id!r}"
                )
            self.payloads.append(
                PayloadSize(
                    bytes=nbytes,
                    kind=kind,
                    operation_id=op_id,
                    name=name,
                    operation=label,
                    what=what,
                )
            )


def _kind_of(op_id: str, idents: Mapping[str, _Ident]) -> MeterKind | None:
    ident = idents.get(op_id)
    if ident is None:
        return None
    parent = idents.get(ident.parent_id) if ident.parent_id else None
    in_wfcb = parent is not None and parent.sub_type == _WFCB
    t = ident.type
    if t is OperationType.STEP:
        if in_wfcb:
            return MeterKind.WAIT_FOR_CALLBACK
        return MeterKind.WAIT_FOR_CONDITION if ident.sub_type == _WFC else MeterKind.STEP
    if t is OperationType.CALLBACK:
        return MeterKind.WAIT_FOR_CALLBACK if in_wfcb else MeterKind.CREATE_CALLBACK
    if t is OperationType.WAIT:
        return MeterKind.WAIT
    if t is OperationType.CHAINED_INVOKE:
        return MeterKind.CHAINED_INVOKE
    if t is OperationType.CONTEXT:
        st = ident.sub_type or ""
        if st == _WFCB:
            return MeterKind.WAIT_FOR_CALLBACK
        if st in _BATCH_SUBTYPES:
            return MeterKind.PARALLEL_MAP
        if st in _PROMISE_SUBTYPES:
            return MeterKind.PROMISE
        return MeterKind.RUN_IN_CHILD_CONTEXT
    return None


def _counts_at_start(kind: MeterKind, t: OperationType) -> bool:
    """Whether a START of this operation is a metered durable operation."""
    if t is OperationType.STEP:
        return False
    if t is OperationType.CONTEXT:
        return kind in (MeterKind.PARALLEL_MAP, MeterKind.WAIT_FOR_CALLBACK)
    return True  # WAIT, CALLBACK, CHAINED_INVOKE


def _charge_checkpoints(records: Sequence[_Record], tally: _Tally) -> None:
    attempts: dict[str, int] = {}
    started: set[str] = set()
    for rec in records:
        kind = _kind_of(rec.id, tally.idents)
        if kind is None:
            continue
        t = rec.type
        action = rec.action
        ops = 0
        if action is OperationAction.START:
            if rec.id not in started and _counts_at_start(kind, t):
                ops = 1
            started.add(rec.id)
        elif t is OperationType.STEP and action in _ENDS:
            ops = 1
        elif t is OperationType.CONTEXT and action in _COMPLETES:
            if not _counts_at_start(kind, t):
                ops = 1
        else:
            continue  # WAIT CANCEL: not metered
        prefix = ""
        if t is OperationType.STEP and action in _ENDS:
            n = attempts[rec.id] = attempts.get(rec.id, 0) + 1
            ident = tally.idents[rec.id]
            prefix = f"poll {n} " if ident.sub_type == _WFC else f"attempt {n} "
        tally.add(kind, rec.id, ops=ops)
        if t is OperationType.CHAINED_INVOKE:
            tally.add(kind, rec.id, nbytes=payload_size(rec.payload), what="input")
            continue
        if t is OperationType.STEP and tally.idents[rec.id].sub_type == _WFC:
            payload_what = "state"
        else:
            payload_what = "result"
        tally.add(kind, rec.id, nbytes=payload_size(rec.payload), what=prefix + payload_what)
        tally.add(kind, rec.id, nbytes=error_size(rec.error), what=prefix + "error")


def _charge_service_side(
    events: Sequence[Mapping[str, Any]], tally: _Tally, notes: list[str]
) -> None:
    for ev in events:
        event_type = str(ev.get("EventType", ""))
        op_id = ev.get("Id")
        d = _details(ev)
        if event_type == "InvocationCompleted":
            err, trunc = _event_error(d)
            if err is not None:
                tally.add(
                    MeterKind.INVOCATION_RETRY,
                    str(op_id or ""),
                    ops=1,
                    nbytes=error_size(err),
                    what="error",
                    label=f"invocation {d.get('RequestId', '')}".strip(),
                )
                if trunc:
                    notes.append(_TRUNCATED)
            continue
        if not isinstance(op_id, str):
            continue
        t, what = _split_event_type(event_type)
        if t is OperationType.CALLBACK and what in ("Succeeded", "Failed"):
            kind = _kind_of(op_id, tally.idents) or MeterKind.CREATE_CALLBACK
            if kind is MeterKind.CREATE_CALLBACK:
                kind = MeterKind.CALLBACK_COMPLETION
            if what == "Succeeded":
                payload, trunc = _event_payload(d, "Result")
                tally.add(kind, op_id, nbytes=payload_size(payload), what="callback payload")
            else:
                err, trunc = _event_error(d)
                tally.add(kind, op_id, nbytes=error_size(err), what="callback error")
            if trunc:
                notes.append(_TRUNCATED)
        elif t is OperationType.CHAINED_INVOKE and what in (
            "Succeeded",
            "Failed",
            "TimedOut",
            "Stopped",
        ):
            if what == "Succeeded":
                payload, trunc = _event_payload(d, "Result")
                nbytes, label = payload_size(payload), "result"
            else:
                err, trunc = _event_error(d)
                nbytes, label = error_size(err), "error"
            tally.add(MeterKind.CHAINED_INVOKE, op_id, nbytes=nbytes, what=label)
            if trunc:
                notes.append(_TRUNCATED)


_TRUNCATED = "some history payloads are truncated; their bytes are a lower bound"

_TERMINAL_EVENTS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionStopped": "STOPPED",
}


def _charge_execution(
    execution_id: str | None,
    events: Sequence[Mapping[str, Any]],
    updates: Sequence[OperationUpdate] | None,
    operations: Mapping[str, Operation],
    tally: _Tally,
    notes: list[str],
) -> tuple[str | None, str | None]:
    """Meter the execution row; returns (execution id, status)."""
    exec_op = next((op for op in operations.values() if op.type is OperationType.EXECUTION), None)
    if execution_id is None and exec_op is not None:
        execution_id = exec_op.id
    started = next((e for e in events if e.get("EventType") == "ExecutionStarted"), None)
    ended = next((e for e in events if e.get("EventType") in _TERMINAL_EVENTS), None)
    if execution_id is None:
        for e in (started, ended):
            if e is not None and isinstance(e.get("Id"), str):
                execution_id = e["Id"]
                break
    eid = execution_id or ""
    label = "execution"
    if (
        started is None
        and exec_op is None
        and not any(u.type is OperationType.EXECUTION for u in updates or ())
    ):
        return execution_id, None  # nothing of the execution itself is known
    # input
    input_text: str | None = None
    if started is not None:
        input_text, trunc = _event_payload(_details(started), "Input")
        if trunc:
            notes.append(_TRUNCATED)
    if input_text is None and exec_op is not None:
        input_text = exec_op.input_payload
    if started is not None or exec_op is not None:
        tally.add(MeterKind.EXECUTION, eid, ops=1)
        tally.add(
            MeterKind.EXECUTION, eid, nbytes=payload_size(input_text), what="input", label=label
        )
    # output
    status: str | None = None
    out_bytes, out_what = 0, "result"
    if ended is not None:
        status = _TERMINAL_EVENTS[str(ended["EventType"])]
        d = _details(ended)
        if status == "SUCCEEDED":
            text, trunc = _event_payload(d, "Result")
            out_bytes = payload_size(text)
        else:
            err, trunc = _event_error(d)
            out_bytes, out_what = error_size(err), "error"
        if trunc:
            notes.append(_TRUNCATED)
    if not out_bytes:
        final = [
            u for u in updates or () if u.type is OperationType.EXECUTION and u.action in _COMPLETES
        ]
        if final:
            u = final[-1]
            status = status or ("SUCCEEDED" if u.action is OperationAction.SUCCEED else "FAILED")
            out_bytes = payload_size(u.payload) or error_size(u.error)
            out_what = "result" if u.payload else "error"
        elif exec_op is not None and exec_op.is_terminal:
            status = status or exec_op.status.value
            out_bytes = payload_size(exec_op.result) or error_size(exec_op.error)
            out_what = "result" if exec_op.result else "error"
    if status is None and (started is not None or exec_op is not None):
        status = "RUNNING"
    tally.add(MeterKind.EXECUTION, eid, nbytes=out_bytes, what=out_what, label=label)
    return execution_id, status


def _identities(
    operations: Mapping[str, Operation],
    updates: Sequence[OperationUpdate] | None,
    events: Sequence[Mapping[str, Any]],
) -> dict[str, _Ident]:
    idents: dict[str, _Ident] = {}
    for ev in events:
        t, _ = _split_event_type(str(ev.get("EventType", "")))
        op_id = ev.get("Id")
        if t is None or not isinstance(op_id, str) or op_id in idents:
            continue
        idents[op_id] = _Ident(
            type=t,
            sub_type=_opt(ev.get("SubType")),
            name=_opt(ev.get("Name")),
            parent_id=_opt(ev.get("ParentId")),
        )
    for u in updates or ():
        idents.setdefault(
            u.id, _Ident(type=u.type, sub_type=u.sub_type, name=u.name, parent_id=u.parent_id)
        )
    for op in operations.values():
        idents.setdefault(
            op.id,
            _Ident(type=op.type, sub_type=op.sub_type, name=op.name, parent_id=op.parent_id),
        )
    return idents


def _opt(v: object) -> str | None:
    return v if isinstance(v, str) else None


def compute_meter(
    *,
    history: Iterable[Mapping[str, Any]] = (),
    operations: Mapping[str, Operation] | Iterable[Operation] | None = None,
    updates: Iterable[OperationUpdate] | None = None,
    execution_id: str | None = None,
    retention_days: float | None = None,
    largest: int = 5,
) -> Meter:
    """The meter of an execution from its history, updates and operations.

    Any source may be missing: without ``updates`` the checkpointed records are
    rebuilt from ``history``; without ``history`` only what the workflow
    checkpointed (and, from ``operations``, the execution's input and output) is
    metered -- which is what one Lambda invocation knows. See the module
    docstring for which source is authoritative for what.
    """
    if retention_days is not None and (
        not isinstance(retention_days, int | float)
        or isinstance(retention_days, bool)
        or not math.isfinite(retention_days)
        or retention_days < 0
    ):
        raise ValidationError(
            f"retention_days must be a number of days >= 0, got {retention_days!r:.40}"
        )
    if type(largest) is not int or largest < 0:
        raise ValidationError(f"largest must be an int >= 0, got {largest!r:.40}")
    events = [e for e in history if isinstance(e, Mapping)]
    if operations is None:
        ops: Mapping[str, Operation] = {}
    elif isinstance(operations, Mapping):
        ops = cast("Mapping[str, Operation]", operations)  # by the signature
    else:
        ops = {op.id: op for op in operations}
    upds = None if updates is None else list(updates)
    idents = _identities(ops, upds, events)
    tally = _Tally(idents)
    notes: list[str] = []

    execution_id, status = _charge_execution(execution_id, events, upds, ops, tally, notes)
    if upds is not None:
        records = _records_from_updates(upds)
    else:
        records = _records_from_history(events)
        if any(
            r.action is OperationAction.RETRY
            and r.error is not None
            and (i := idents.get(r.id)) is not None
            and i.sub_type == _WFC
            for r in records
        ):
            notes.append(
                "a WaitForCondition poll raised and was retried: the history records its "
                "error but not its state, so its state is not counted"
            )
    if any(r.truncated for r in records):
        notes.append(_TRUNCATED)
    _charge_checkpoints(records, tally)
    _charge_service_side(events, tally, notes)

    replay_children = []
    for op_id in sorted(
        {op.id for op in ops.values() if op.replay_children}
        | {u.id for u in upds or () if u.replay_children}
    ):
        ident = idents[op_id]
        replay_children.append(describe_operation(ident.sub_type, ident.type.value, ident.name))

    indexed = list(enumerate(tally.payloads))
    indexed.sort(key=lambda x: (-x[1].bytes, x[0]))
    return Meter(
        execution_id=execution_id,
        status=status,
        rows=tuple(
            KindUsage(kind=k, operations=tally.ops[k], bytes=tally.bytes[k]) for k in _KINDS
        ),
        largest=tuple(p for _, p in indexed[:largest]),
        retention_days=None if retention_days is None else float(retention_days),
        replay_children=tuple(replay_children),
        notes=tuple(dict.fromkeys(notes)),
    )


class MeterSource(Protocol):
    """What :func:`meter_execution` needs from a store (``updates`` is optional)."""

    def history(self, execution_id: str) -> list[dict[str, Any]]: ...

    def load(self, execution_id: str) -> Mapping[str, Operation]: ...


def meter_execution(
    store: MeterSource,
    execution_id: str,
    *,
    retention_days: float | None = None,
    largest: int = 5,
) -> Meter:
    """Meter an execution of any store with ``history`` and ``load`` (and maybe ``updates``).

    ``MemoryStore`` keeps every checkpoint update, which then is the authoritative
    record of what was checkpointed; the SQLite store's history stands in for it.
    """
    history = store.history(execution_id)
    operations = store.load(execution_id)
    get_updates: Callable[[str], Iterable[OperationUpdate]] | None = getattr(store, "updates", None)
    updates = get_updates(execution_id) if callable(get_updates) else None
    return compute_meter(
        history=history,
        operations=operations,
        updates=updates,
        execution_id=execution_id,
        retention_days=retention_days,
        largest=largest,
    )
