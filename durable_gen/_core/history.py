"""The checkpoint log rebuilt from history events -- pure, the inverse of ``service``.

``service`` turns each checkpoint update into a change of an operation and into
``GetDurableExecutionHistory`` events; :func:`operations_from_history` reads those
events back into the operations replay needs (ids, parents, types, subtypes, names,
statuses, attempts and retry times, results and errors, callback ids, the input),
so a history -- written by ``durable-gen history ID --json`` or returned by AWS --
can be replayed against workflow code without the store that recorded it.

What a history does not carry, and so the rebuilt log lacks:

- the digest of a step's arguments (a local extension): steps called with other
  arguments are not caught;
- ``ReplayChildren`` of a context: inferred when the recorded result is empty or
  is the summary record AWS's SDK writes for a large Parallel or Map result; a
  child context with a ``summary=`` of its own over 256 KiB is not recognised;
- the state a WaitForCondition check carried into a retry after it raised;
- READY: a retry whose time has come is PENDING with a past NextAttemptTimestamp,
  which replay treats the same way.

Payloads AWS truncated in the history (``Truncated: true``) are kept as they are;
replaying an operation whose result was cut fails to decode it.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .errors import CorruptLogError, ErrorObject, brief
from .log import (
    TERMINAL_STATUSES,
    Operation,
    OperationStatus,
    OperationSubType,
    OperationType,
    _int,
    _s,
)

__all__ = ["events_of", "operations_from_history", "parse_timestamp"]

_S = OperationStatus
_T = OperationType

#: Event type -> the operation type it belongs to and the status it leaves it in.
_OPERATION_EVENTS: Mapping[str, tuple[OperationType, OperationStatus]] = {
    "StepStarted": (_T.STEP, _S.STARTED),
    "StepSucceeded": (_T.STEP, _S.SUCCEEDED),
    "StepFailed": (_T.STEP, _S.FAILED),
    "WaitStarted": (_T.WAIT, _S.STARTED),
    "WaitSucceeded": (_T.WAIT, _S.SUCCEEDED),
    "WaitCancelled": (_T.WAIT, _S.CANCELLED),
    "CallbackStarted": (_T.CALLBACK, _S.STARTED),
    "CallbackSucceeded": (_T.CALLBACK, _S.SUCCEEDED),
    "CallbackFailed": (_T.CALLBACK, _S.FAILED),
    "CallbackTimedOut": (_T.CALLBACK, _S.TIMED_OUT),
    "ContextStarted": (_T.CONTEXT, _S.STARTED),
    "ContextSucceeded": (_T.CONTEXT, _S.SUCCEEDED),
    "ContextFailed": (_T.CONTEXT, _S.FAILED),
    "ChainedInvokeStarted": (_T.CHAINED_INVOKE, _S.STARTED),
    "ChainedInvokeSucceeded": (_T.CHAINED_INVOKE, _S.SUCCEEDED),
    "ChainedInvokeFailed": (_T.CHAINED_INVOKE, _S.FAILED),
    "ChainedInvokeTimedOut": (_T.CHAINED_INVOKE, _S.TIMED_OUT),
    "ChainedInvokeStopped": (_T.CHAINED_INVOKE, _S.STOPPED),
}

_EXECUTION_EVENTS: Mapping[str, OperationStatus] = {
    "ExecutionStarted": _S.STARTED,
    "ExecutionSucceeded": _S.SUCCEEDED,
    "ExecutionFailed": _S.FAILED,
    "ExecutionTimedOut": _S.TIMED_OUT,
    "ExecutionStopped": _S.STOPPED,
}

#: Events that change no operation.
_OTHER_EVENTS = frozenset({"InvocationCompleted", "ExecutionPaused", "ExecutionResumed"})

_BATCH_SUMMARIES = {
    OperationSubType.PARALLEL.value: "ParallelResult",
    OperationSubType.MAP.value: "MapResult",
}


def parse_timestamp(value: Any, where: str) -> int:
    """A history timestamp as epoch ms.

    Epoch numbers (milliseconds as durable_gen writes them, or seconds as the
    Lambda REST API and the AWS CLI do: below 10**11 is taken as seconds), a
    ``datetime`` (as boto3 parses them) or an ISO 8601 string (``json.dumps(...,
    default=str)`` of a boto3 response); a naive time is UTC.
    """
    if isinstance(value, bool):
        pass
    elif isinstance(value, int | float) and math.isfinite(value):
        return round(value) if abs(value) >= 1e11 else round(value * 1000)
    elif isinstance(value, datetime.datetime):
        return _epoch_ms(value)
    elif isinstance(value, str):
        try:
            return parse_timestamp(float(value), where)
        except (ValueError, CorruptLogError):
            pass
        try:
            return _epoch_ms(datetime.datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise CorruptLogError(
        f"{where}: expected a timestamp (epoch number, ISO 8601 string), got {brief(value)}"
    )


def _epoch_ms(t: datetime.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return round(t.timestamp() * 1000)


def events_of(history: Any) -> list[Mapping[str, Any]]:
    """The events of a history document: ``{"Events": [...]}`` (GetDurableExecutionHistory,
    ``durable-gen history --json``) or a bare list of events."""
    events = history.get("Events") if isinstance(history, Mapping) else history
    if not isinstance(events, list) or not all(isinstance(e, Mapping) for e in events):
        raise CorruptLogError(
            'a history must be {"Events": [...]} (GetDurableExecutionHistory\'s shape) '
            f"or a list of events, got {brief(history)}"
        )
    return events


def operations_from_history(events: Iterable[Mapping[str, Any]]) -> dict[str, Operation]:
    """The operations a history's events record, keyed by id, in the order they began.

    Events are read in ``EventId`` order when every event has one (pages of a
    history may be concatenated in any order), else in the order given. An event
    type this does not know, an event without an ``Id``, or events that disagree
    on an operation's type raise :class:`CorruptLogError` naming the event.
    """
    listed = list(events)
    if listed and all(type(e.get("EventId")) is int for e in listed):
        listed.sort(key=lambda e: int(e["EventId"]))
    ops: dict[str, Operation] = {}
    last = 0
    for n, event in enumerate(listed, 1):
        kind = event.get("EventType")
        try:
            stamp = event.get("EventTimestamp")
            now = last if stamp is None else parse_timestamp(stamp, "EventTimestamp")
            last = max(last, now)
            if not isinstance(kind, str) or kind not in _OTHER_EVENTS:
                op = _apply_event(ops, event, kind, now)
                ops[op.id] = op
        except CorruptLogError as e:
            where = f"event {event.get('EventId', n)} ({brief(kind, 40)})"
            raise CorruptLogError(f"{where}: {e}") from None
    return ops


def _apply_event(
    ops: Mapping[str, Operation], event: Mapping[str, Any], kind: Any, now: int
) -> Operation:
    """The operation ``event`` names, as the event leaves it."""
    op_id = event.get("Id")
    if not isinstance(op_id, str) or not op_id:
        raise CorruptLogError("the event names no operation (Id)")
    cur = ops.get(op_id)
    details = event.get(f"{kind}Details") or {}
    if not isinstance(details, Mapping):
        raise CorruptLogError(f"{kind}Details must be an object, got {brief(details)}")
    if isinstance(kind, str) and kind in _EXECUTION_EVENTS:
        type_, status = _T.EXECUTION, _EXECUTION_EVENTS[kind]
    elif isinstance(kind, str) and kind in _OPERATION_EVENTS:
        type_, status = _OPERATION_EVENTS[kind]
    else:
        raise CorruptLogError(
            f"unknown event type {brief(kind, 40)}; a history holds "
            f"{', '.join([*_EXECUTION_EVENTS, *_OPERATION_EVENTS, *sorted(_OTHER_EVENTS)])}"
        )
    if cur is None:
        cur = Operation(
            id=op_id,
            type=type_,
            status=status,
            start_timestamp=now,
            parent_id=_s(event, "ParentId", op_id),
            name=_s(event, "Name", op_id),
            sub_type=_s(event, "SubType", op_id),
        )
    elif cur.type is not type_:
        raise CorruptLogError(
            f"operation {op_id!r} is a {cur.type} in the events before, not a {type_}"
        )
    if type_ is _T.EXECUTION and status is _S.STARTED:
        return attrs.evolve(cur, input_payload=_payload(details, "Input", op_id))
    fields: dict[str, Any] = {"status": status}
    if status in TERMINAL_STATUSES:
        fields["end_timestamp"] = now
    if status is _S.SUCCEEDED:
        fields["result"] = _payload(details, "Result", op_id)
        fields["error"] = None
    elif status in TERMINAL_STATUSES:
        fields["error"] = _error(details)
    if type_ is _T.STEP and status is not _S.STARTED:
        _step_outcome(cur, details, now, fields)
    elif type_ is _T.WAIT and status is _S.STARTED:
        end = details.get("ScheduledEndTimestamp")
        duration = _int(details, "Duration", op_id)
        fields["scheduled_end_timestamp"] = (
            parse_timestamp(end, "ScheduledEndTimestamp")
            if end is not None
            else None
            if duration is None
            else now + duration * 1000
        )
    elif type_ is _T.CALLBACK and status is _S.STARTED:
        fields["callback_id"] = _s(details, "CallbackId", op_id)
        fields["callback_timeout"] = _int(details, "Timeout", op_id) or None
        fields["callback_heartbeat_timeout"] = _int(details, "HeartbeatTimeout", op_id) or None
    elif type_ is _T.CALLBACK and status is _S.SUCCEEDED:
        fields["result"] = fields["result"] or ""
    elif type_ is _T.CHAINED_INVOKE and status is _S.STARTED:
        fields["function_name"] = _s(details, "FunctionName", op_id)
        fields["input_payload"] = _payload(details, "Input", op_id)
    elif type_ is _T.CONTEXT and status is _S.SUCCEEDED:
        fields["replay_children"] = _replay_children(cur.sub_type, fields["result"])
    return attrs.evolve(cur, **fields)


def _payload(details: Mapping[str, Any], key: str, op_id: str) -> str | None:
    """``{"Payload": "...", "Truncated": false}`` under ``key``, as a string."""
    box = details.get(key)
    if box is None:
        return None
    if not isinstance(box, Mapping):
        raise CorruptLogError(f"{key} must be an object with a Payload, got {brief(box)}")
    return _s(box, "Payload", op_id)


def _error(details: Mapping[str, Any]) -> ErrorObject | None:
    box = details.get("Error")
    if box is None:
        return None
    payload = box.get("Payload") if isinstance(box, Mapping) else None
    if not isinstance(payload, Mapping):
        raise CorruptLogError(f"Error.Payload must be an ErrorObject, got {brief(box)}")
    return ErrorObject.from_dict(payload)


def _step_outcome(
    cur: Operation, details: Mapping[str, Any], now: int, fields: dict[str, Any]
) -> None:
    """A step's attempt ended: succeeded, failed, or (with a retry delay) PENDING."""
    retry = details.get("RetryDetails") or {}
    if not isinstance(retry, Mapping):
        raise CorruptLogError(f"RetryDetails must be an object, got {brief(retry)}")
    attempt = _int(retry, "CurrentAttempt", cur.id)
    fields["attempt"] = attempt if attempt is not None else (cur.attempt or 0) + 1
    fields["next_attempt_timestamp"] = None
    delay = _int(retry, "NextAttemptDelaySeconds", cur.id)
    if delay is not None:  # a retry (or a WaitForCondition poll) is scheduled
        fields["status"] = _S.PENDING
        fields["next_attempt_timestamp"] = now + delay * 1000
        fields.pop("end_timestamp", None)
        fields.setdefault("result", None)
        fields["error"] = _error(details)


def _replay_children(sub_type: str | None, result: str | None) -> bool | None:
    """Whether a succeeded context's result was left out, to be rebuilt by replay.

    The history does not say; a result left out is recorded as an empty payload,
    or (Parallel, Map) as the summary record AWS's SDK writes in its place.
    """
    if result == "":
        return True
    summary = _BATCH_SUMMARIES.get(sub_type or "")
    if summary is None or not result or not result.startswith("{"):
        return None
    try:
        record = json.loads(result)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("type") == summary and "all" not in record:
        return True
    return None
