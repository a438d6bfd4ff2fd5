"""What the durable service does with checkpoint updates -- pure, shared by local stores.

The Lambda service turns each OperationUpdate into a change of the operation it
names and into history events, fires retry and wait timers, and records the
execution's own lifecycle. The in-memory and SQLite stores play the service's part
with these functions, so local logs and histories read like AWS's.

All functions are pure: time comes in as ``now`` (epoch ms); they take the current
operations and return what changed plus the events to append.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .errors import (
    ErrorObject,
    StoreError,
)
from .log import (
    TERMINAL_STATUSES,
    Operation,
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
    OperationUpdate,
    dict_evolve,
    new_started_op,
    positional_evolve,
)

__all__ = [
    "InvalidUpdateError",
    "apply_updates",
    "complete_callback",
    "complete_chained_invoke",
    "execution_finished_event",
    "fire_timers",
    "invocation_completed_event",
    "chained_invoke_timeout_error",
    "time_out_execution",
    "next_timer",
    "start_execution",
]

Event = dict[str, Any]

_VALID_ACTIONS: Mapping[OperationType, frozenset[OperationAction]] = {
    OperationType.STEP: frozenset(
        {
            OperationAction.START,
            OperationAction.SUCCEED,
            OperationAction.FAIL,
            OperationAction.RETRY,
        }
    ),
    OperationType.CONTEXT: frozenset(
        {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL}
    ),
    OperationType.WAIT: frozenset({OperationAction.START, OperationAction.CANCEL}),
    OperationType.CALLBACK: frozenset({OperationAction.START}),
    OperationType.CHAINED_INVOKE: frozenset({OperationAction.START}),
    OperationType.EXECUTION: frozenset({OperationAction.SUCCEED, OperationAction.FAIL}),
}

_STATUS_FOR_ACTION = {
    OperationAction.START: OperationStatus.STARTED,
    OperationAction.SUCCEED: OperationStatus.SUCCEEDED,
    OperationAction.FAIL: OperationStatus.FAILED,
    OperationAction.RETRY: OperationStatus.PENDING,
    OperationAction.CANCEL: OperationStatus.CANCELLED,
}

_EVENT_PREFIX = {
    OperationType.STEP: "Step",
    OperationType.CONTEXT: "Context",
    OperationType.WAIT: "Wait",
    OperationType.CALLBACK: "Callback",
    OperationType.CHAINED_INVOKE: "ChainedInvoke",
}

_EVENT_SUFFIX = {
    OperationAction.START: "Started",
    OperationAction.SUCCEED: "Succeeded",
    OperationAction.FAIL: "Failed",
    OperationAction.CANCEL: "Cancelled",
}

# Reading an enum member through its class (``OperationType.STEP``) runs a Python
# descriptor on 3.11, ~0.15 µs each; the per-update code compares with these.
_EXECUTION = OperationType.EXECUTION
_CONTEXT = OperationType.CONTEXT
_STEP = OperationType.STEP
_WAIT = OperationType.WAIT
_CALLBACK = OperationType.CALLBACK
_CHAINED_INVOKE = OperationType.CHAINED_INVOKE
_START = OperationAction.START
_SUCCEED = OperationAction.SUCCEED
_FAIL = OperationAction.FAIL
_RETRY = OperationAction.RETRY
_STARTED = OperationStatus.STARTED
_PENDING = OperationStatus.PENDING
_READY = OperationStatus.READY
_SUCCEEDED = OperationStatus.SUCCEEDED
_TIMED_OUT = OperationStatus.TIMED_OUT
_WAIT_FOR_CONDITION = OperationSubType.WAIT_FOR_CONDITION


class InvalidUpdateError(StoreError):
    """A checkpoint update the service refuses (``InvalidParameterValueException``)."""


def _payload(text: str | None) -> dict[str, Any]:
    return {"Payload": text if text is not None else "", "Truncated": False}


def _error(err: ErrorObject | None) -> dict[str, Any]:
    return {"Payload": (err or ErrorObject()).to_dict(), "Truncated": False}


def _event(event_type: str, op: Operation, now: int, details: dict[str, Any] | None) -> Event:
    ev: Event = {"EventType": event_type, "EventTimestamp": now, "Id": op.id}
    if op.name is not None:
        ev["Name"] = op.name
    if op.parent_id is not None:
        ev["ParentId"] = op.parent_id
    if op.sub_type is not None:
        ev["SubType"] = op.sub_type
    if details is not None:
        ev[f"{event_type}Details"] = details
    return ev


_evolve = dict_evolve(Operation)
#: ``_evolve(op, {...})`` for a step's SUCCEED, the most frequent change.
_succeed_step = positional_evolve(
    Operation,
    ("status", "end_timestamp", "attempt", "next_attempt_timestamp", "result", "error"),
)


def start_execution(
    execution_id: str, input_payload: str, now: int, *, timeout_seconds: int | None = None
) -> tuple[Operation, Event]:
    """The EXECUTION operation and the ExecutionStarted event of a new execution."""
    op = Operation(
        id=execution_id,
        type=OperationType.EXECUTION,
        status=OperationStatus.STARTED,
        start_timestamp=now,
        input_payload=input_payload,
    )
    details: dict[str, Any] = {"Input": _payload(input_payload)}
    if timeout_seconds is not None:
        details["ExecutionTimeout"] = timeout_seconds
    ev = _event("ExecutionStarted", op, now, details)
    del ev["Id"]
    ev["Id"] = execution_id
    return op, ev


def execution_finished_event(
    execution_id: str, status: str, now: int, *, result: str | None, error: ErrorObject | None
) -> Event:
    """ExecutionSucceeded / Failed / TimedOut / Stopped."""
    name = {
        "SUCCEEDED": "ExecutionSucceeded",
        "FAILED": "ExecutionFailed",
        "TIMED_OUT": "ExecutionTimedOut",
        "STOPPED": "ExecutionStopped",
    }[status]
    details = {"Result": _payload(result)} if status == "SUCCEEDED" else {"Error": _error(error)}
    return {"EventType": name, "EventTimestamp": now, "Id": execution_id, f"{name}Details": details}


def invocation_completed_event(
    execution_id: str, start: int, end: int, request_id: str, error: ErrorObject | None = None
) -> Event:
    details: dict[str, Any] = {
        "StartTimestamp": start,
        "EndTimestamp": end,
        "RequestId": request_id,
    }
    if error is not None:
        details["Error"] = _error(error)
    return {
        "EventType": "InvocationCompleted",
        "EventTimestamp": end,
        "Id": execution_id,
        "InvocationCompletedDetails": details,
    }


def consecutive_failed_invocations(events: Iterable[Event]) -> int:
    """How many invocations in a row failed at the end of ``events`` (a history): the
    trailing InvocationCompleted events with an Error, up to the last one without."""
    failed = 0
    for e in events:
        if e.get("EventType") == "InvocationCompleted":
            details = e.get("InvocationCompletedDetails") or {}
            failed = failed + 1 if details.get("Error") is not None else 0
    return failed


#: The error type of a CHAINED_INVOKE whose invoked execution timed out (the service's).
CHAINED_INVOKE_TIMEOUT = "ChainedInvoke.Timeout"


def _seconds_text(ms: int) -> str:
    return f"{ms // 1000}" if ms % 1000 == 0 else f"{ms / 1000:g}"


def time_out_execution(
    ops: Mapping[str, Operation], execution_id: str, now: int, timeout_ms: int
) -> tuple[dict[str, Operation], list[Event], ErrorObject]:
    """An execution reached its deadline ``timeout_ms`` after it started: its EXECUTION
    operation ends TIMED_OUT, its open waits are cancelled (WaitCancelled) and its open
    callbacks time out (CallbackTimedOut): none of them can complete any more. Steps
    in flight are left as they are (their outcome is not recorded: the execution
    ended). Returns the changed operations, the events (ExecutionTimedOut last) and
    the execution's error."""
    error = ErrorObject(message=f"Execution timed out after {_seconds_text(timeout_ms)} seconds.")
    changed: dict[str, Operation] = {}
    events: list[Event] = []
    for op in ops.values():
        if op.status is not OperationStatus.STARTED:
            continue
        if op.type is OperationType.WAIT:
            new = attrs.evolve(op, status=OperationStatus.CANCELLED, end_timestamp=now)
            events.append(_event("WaitCancelled", new, now, {}))
        elif op.type is OperationType.CALLBACK:
            new = attrs.evolve(op, status=OperationStatus.TIMED_OUT, end_timestamp=now, error=error)
            events.append(_event("CallbackTimedOut", new, now, {"Error": _error(error)}))
        elif op.type is OperationType.EXECUTION:
            new = attrs.evolve(op, status=OperationStatus.TIMED_OUT, end_timestamp=now)
        else:
            continue
        changed[op.id] = new
    events.append(
        execution_finished_event(execution_id, "TIMED_OUT", now, result=None, error=error)
    )
    return changed, events, error


def chained_invoke_timeout_error(timeout_ms: int) -> ErrorObject:
    """What the CHAINED_INVOKE of an execution that timed out carries (the service's)."""
    return ErrorObject(
        type=CHAINED_INVOKE_TIMEOUT,
        message=f"CHAINED_INVOKE timed out after {_seconds_text(timeout_ms)} seconds.",
    )


def apply_updates(
    ops: Mapping[str, Operation],
    updates: Iterable[OperationUpdate],
    now: int,
    *,
    new_callback_id: Callable[[str], str] | None = None,
    execution_id: str | None = None,
) -> tuple[dict[str, Operation], list[Event]]:
    """Apply a batch of updates as the service does; returns (changed ops, events).

    ``ops`` is not modified. Invalid updates raise :class:`InvalidUpdateError` and
    nothing of the batch is applied. With ``execution_id``, a ChainedInvokeStarted
    event names the invoked execution and version as AWS records them.
    """
    changed: dict[str, Operation] = {}
    events: list[Event] = []
    for upd in updates:
        cur = changed.get(upd.id) or ops.get(upd.id)
        new, evs = _apply_one(cur, upd, now, ops, changed, new_callback_id)
        changed[upd.id] = new
        if execution_id is not None and upd.type is _CHAINED_INVOKE:
            for ev in evs:
                if ev["EventType"] == "ChainedInvokeStarted":
                    details = ev["ChainedInvokeStartedDetails"]
                    details["ExecutedVersion"] = "$LATEST"
                    details["DurableExecutionArn"] = chained_execution_id(execution_id, upd.id)
        events.extend(evs)
    return changed, events


def chained_execution_id(execution_id: str, op_id: str) -> str:
    """The id of the execution a CHAINED_INVOKE operation starts (deterministic)."""
    return f"{execution_id}.{op_id[:16]}"


def _parent_ok(
    parent_id: str | None, ops: Mapping[str, Operation], changed: Mapping[str, Operation]
) -> bool:
    """No parent, or a parent that is a recorded (or just changed) CONTEXT operation."""
    if parent_id is None:
        return True
    parent = changed.get(parent_id) or ops.get(parent_id)
    return parent is not None and parent.type is _CONTEXT


def _apply_one(
    cur: Operation | None,
    upd: OperationUpdate,
    now: int,
    ops: Mapping[str, Operation],
    changed: Mapping[str, Operation],
    new_callback_id: Callable[[str], str] | None,
) -> tuple[Operation, list[Event]]:
    t = upd.type
    action = upd.action
    if t is _STEP and _parent_ok(upd.parent_id, ops, changed):
        # A step's START and SUCCEED, the most frequent updates: what the general path
        # below computes for them, without its dispatch (anything unusual -- a bad
        # parent, a SUCCEED without START, a mismatch to refuse -- goes the general way).
        if action is _START and cur is None:
            new = new_started_op(
                upd.id, _STEP, _STARTED, now, upd.parent_id, upd.name, upd.sub_type, upd.args_digest
            )
            return new, [_event("StepStarted", new, now, {})]
        if (
            action is _SUCCEED
            and cur is not None
            and cur.status is _STARTED
            and cur.type is _STEP
            and cur.sub_type == upd.sub_type
            and cur.name == upd.name
            and upd.args_digest is None
        ):
            attempt = (cur.attempt or 0) + 1
            new = _succeed_step(cur, _SUCCEEDED, now, attempt, None, upd.payload, None)
            succeeded: dict[str, Any] = {"Result": _payload(upd.payload)}
            if attempt > 1:
                succeeded["RetryDetails"] = {"CurrentAttempt": attempt}
            return new, [_event("StepSucceeded", new, now, succeeded)]
    if action not in _VALID_ACTIONS[t]:
        raise InvalidUpdateError(f"invalid action {action.value} for a {t.value} operation")
    if cur is not None:
        if cur.type is not t or cur.sub_type != upd.sub_type or cur.name != upd.name:
            raise InvalidUpdateError(
                f"update for operation {upd.id!r} does not match the recorded operation "
                f"(recorded {cur.type.value}/{cur.sub_type}/{cur.name!r}, "
                f"update {t.value}/{upd.sub_type}/{upd.name!r})"
            )
        if cur.status in TERMINAL_STATUSES:
            raise InvalidUpdateError(
                f"operation {upd.id!r} already ended {cur.status.value}; it cannot {action.value}"
            )
    if not _parent_ok(upd.parent_id, ops, changed):
        raise InvalidUpdateError(
            f"update for operation {upd.id!r} names parent {upd.parent_id!r}, "
            "which is not a recorded CONTEXT operation"
        )
    if t is _EXECUTION:
        if cur is None:
            raise InvalidUpdateError(f"no EXECUTION operation {upd.id!r}")
        status = _STATUS_FOR_ACTION[action]
        return attrs.evolve(
            cur,
            status=status,
            end_timestamp=now,
            result=upd.payload,
            error=upd.error,
        ), []

    status = _STATUS_FOR_ACTION[action]
    terminal = status in TERMINAL_STATUSES
    fields: dict[str, Any] = {"status": status}
    if terminal:
        fields["end_timestamp"] = now
    details: dict[str, Any] | None = {}
    prefix = _EVENT_PREFIX[t]
    event_type = prefix + _EVENT_SUFFIX.get(action, "")

    if t is _STEP:
        attempt = (cur.attempt or 0) if cur is not None else 0
        if action is not _START:
            attempt += 1
            fields["attempt"] = attempt
            fields["next_attempt_timestamp"] = None
        if upd.args_digest is not None:
            fields["args_digest"] = upd.args_digest
        if action is _SUCCEED:
            fields["result"] = upd.payload
            fields["error"] = None
            details = {"Result": _payload(upd.payload)}
            if attempt > 1:
                details["RetryDetails"] = {"CurrentAttempt": attempt}
        elif action is _FAIL:
            fields["error"] = upd.error
            details = {"Error": _error(upd.error), "RetryDetails": {"CurrentAttempt": attempt}}
        elif action is _RETRY:
            delay = upd.next_attempt_delay_seconds
            if delay is None:
                raise InvalidUpdateError(
                    f"RETRY of step {upd.id!r} needs StepOptions.NextAttemptDelaySeconds"
                )
            fields["next_attempt_timestamp"] = now + delay * 1000
            fields["result"] = upd.payload
            fields["error"] = upd.error
            retry = {"CurrentAttempt": attempt, "NextAttemptDelaySeconds": delay}
            if upd.error is None and upd.sub_type == _WAIT_FOR_CONDITION:
                event_type = "StepSucceeded"
                details = {"Result": _payload(upd.payload), "RetryDetails": retry}
            else:
                event_type = "StepFailed"
                details = {"Error": _error(upd.error), "RetryDetails": retry}
    elif t is _WAIT:
        if action is _START:
            secs = upd.wait_seconds
            if secs is None or secs < 1:
                raise InvalidUpdateError(
                    f"WAIT START {upd.id!r} needs WaitOptions.WaitSeconds >= 1"
                )
            fields["scheduled_end_timestamp"] = now + secs * 1000
            details = {"Duration": secs, "ScheduledEndTimestamp": now + secs * 1000}
        else:
            details = {}
    elif t is _CONTEXT:
        if action is _SUCCEED:
            fields["result"] = upd.payload
            if upd.replay_children is not None:
                fields["replay_children"] = upd.replay_children
            details = {"Result": _payload(upd.payload)}
        elif action is _FAIL:
            fields["error"] = upd.error
            details = {"Error": _error(upd.error)}
    elif t is _CALLBACK:
        if new_callback_id is None:
            raise InvalidUpdateError("this store cannot create callbacks")
        cb_id = new_callback_id(upd.id)
        fields["callback_id"] = cb_id
        fields["callback_timeout"] = upd.callback_timeout_seconds or None
        fields["callback_heartbeat_timeout"] = upd.callback_heartbeat_timeout_seconds or None
        details = {
            "CallbackId": cb_id,
            "Timeout": upd.callback_timeout_seconds or 0,
            "HeartbeatTimeout": upd.callback_heartbeat_timeout_seconds or 0,
        }
    elif t is _CHAINED_INVOKE:
        fields["function_name"] = upd.function_name
        fields["input_payload"] = upd.payload
        details = {"Input": _payload(upd.payload), "FunctionName": upd.function_name}
        if upd.tenant_id is not None:
            details["TenantId"] = upd.tenant_id
    if cur is None:
        new = Operation(
            id=upd.id,
            type=t,
            start_timestamp=now,
            parent_id=upd.parent_id,
            name=upd.name,
            sub_type=upd.sub_type,
            **fields,
        )
    else:
        new = _evolve(cur, fields)
    return new, [_event(event_type, new, now, details)]


def fire_timers(ops: Mapping[str, Operation], now: int) -> tuple[dict[str, Operation], list[Event]]:
    """Fire every due timer: scheduled retries become READY, elapsed waits SUCCEEDED."""
    changed: dict[str, Operation] = {}
    events: list[Event] = []
    for op in ops.values():
        if op.type is _STEP and op.status is _PENDING:
            due = op.next_attempt_timestamp
            if due is not None and due <= now:
                changed[op.id] = attrs.evolve(op, status=_READY)
        elif op.type is _WAIT and op.status is _STARTED:
            due = op.scheduled_end_timestamp
            if due is not None and due <= now:
                new = attrs.evolve(op, status=_SUCCEEDED, end_timestamp=now)
                changed[op.id] = new
                secs = round((due - op.start_timestamp) / 1000)
                events.append(_event("WaitSucceeded", new, now, {"Duration": secs}))
        elif op.type is _CALLBACK and op.status is _STARTED:
            timed_out = _callback_timed_out(op, now)
            if timed_out is not None:
                err = ErrorObject(type=timed_out[0], message=timed_out[1])
                new = attrs.evolve(op, status=_TIMED_OUT, end_timestamp=now, error=err)
                changed[op.id] = new
                events.append(_event("CallbackTimedOut", new, now, {"Error": _error(err)}))
    return changed, events


def _callback_deadlines(op: Operation) -> list[int]:
    out = []
    if op.callback_timeout:
        out.append(op.start_timestamp + op.callback_timeout * 1000)
    if op.callback_heartbeat_timeout:
        out.append((op.last_heartbeat or op.start_timestamp) + op.callback_heartbeat_timeout * 1000)
    return out


def _callback_timed_out(op: Operation, now: int) -> tuple[str, str] | None:
    # ErrorType and ErrorMessage as AWS's service writes them (its emulator's words)
    if op.callback_timeout and op.start_timestamp + op.callback_timeout * 1000 <= now:
        return "Callback.Timeout", "Callback timed out"
    hb = op.callback_heartbeat_timeout
    if hb and (op.last_heartbeat or op.start_timestamp) + hb * 1000 <= now:
        return "Callback.Heartbeat", "Callback timed out on heartbeat"
    return None


def complete_callback(
    op: Operation,
    action: str,
    now: int,
    *,
    payload: str | None = None,
    error: ErrorObject | None = None,
) -> tuple[Operation, list[Event]]:
    """An external completion of a callback: ``succeed``, ``fail`` or ``heartbeat``."""
    if op.type is not OperationType.CALLBACK:
        raise InvalidUpdateError(f"operation {op.id!r} is not a callback")
    if op.status is not OperationStatus.STARTED:
        raise InvalidUpdateError(
            f"callback {op.callback_id!r} already ended {op.status.value}; it cannot be "
            f"completed again"
        )
    if action == "heartbeat":
        return attrs.evolve(op, last_heartbeat=now), []
    if action == "succeed":
        new = attrs.evolve(
            op, status=OperationStatus.SUCCEEDED, end_timestamp=now, result=payload or ""
        )
        return new, [_event("CallbackSucceeded", new, now, {"Result": _payload(payload)})]
    if action == "fail":
        err = error or ErrorObject()
        new = attrs.evolve(op, status=OperationStatus.FAILED, end_timestamp=now, error=err)
        return new, [_event("CallbackFailed", new, now, {"Error": _error(err)})]
    raise InvalidUpdateError(f"unknown callback action {action!r}; use succeed, fail or heartbeat")


def complete_chained_invoke(
    op: Operation,
    status: str,
    now: int,
    *,
    result: str | None = None,
    error: ErrorObject | None = None,
) -> tuple[Operation, list[Event]]:
    """The invoked execution ended: SUCCEEDED, FAILED, TIMED_OUT or STOPPED."""
    if op.type is not OperationType.CHAINED_INVOKE or op.status is not OperationStatus.STARTED:
        raise InvalidUpdateError(f"operation {op.id!r} is not a running chained invoke")
    st = OperationStatus(status)
    name = {
        OperationStatus.SUCCEEDED: "ChainedInvokeSucceeded",
        OperationStatus.FAILED: "ChainedInvokeFailed",
        OperationStatus.TIMED_OUT: "ChainedInvokeTimedOut",
        OperationStatus.STOPPED: "ChainedInvokeStopped",
    }[st]
    if st is OperationStatus.SUCCEEDED:
        new = attrs.evolve(op, status=st, end_timestamp=now, result=result)
        return new, [_event(name, new, now, {"Result": _payload(result)})]
    new = attrs.evolve(op, status=st, end_timestamp=now, error=error)
    return new, [_event(name, new, now, {"Error": _error(error)})]


def next_timer(ops: Iterable[Operation]) -> int | None:
    """When the earliest pending timer is due (epoch ms), or None."""
    best: int | None = None
    for op in ops:
        due: int | None = None
        if op.type is _STEP and op.status is _PENDING:
            due = op.next_attempt_timestamp
        elif op.type is _WAIT and op.status is _STARTED:
            due = op.scheduled_end_timestamp
        elif op.type is _CALLBACK and op.status is _STARTED:
            deadlines = _callback_deadlines(op)
            due = min(deadlines) if deadlines else None
        if due is not None and (best is None or due < best):
            best = due
    return best
