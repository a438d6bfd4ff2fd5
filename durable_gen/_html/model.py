"""What a timeline draws, worked out from an execution's operations and history events.

Pure: no I/O, no clock (``now`` is the last recorded time unless the caller gives
one). :func:`build_timeline` turns the log into rows nested by context, each with
its operation's extent and the segments and marks drawn in it:

- a step: each attempt its own segment (succeeded, failed with its error, or still
  running), each retry delay between attempts a segment of its own, read from the
  ``StepStarted``/``StepSucceeded``/``StepFailed`` events (``RetryDetails``
  ``CurrentAttempt`` and ``NextAttemptDelaySeconds``); without events, from the
  operation (its attempt count, last error and next attempt time);
- a wait: the time waited (to its wake time while it still waits), a mark at the wake time;
- a callback: from its creation to its completion (or now), a mark at its timeout
  when that falls on the axis; the row names the callback id and its timeouts;
- a context (child context, Parallel, Map, their branches): its span; its
  operations are rows below it, one level deeper;
- a chained invoke: its span and the function it called.

Parts still to come (a wait's wake time, a retry's due time) are drawn as
``todo``; the axis reaches them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._core.contract import ExecutionInfo
from .._core.log import Operation, OperationStatus, OperationSubType, OperationType
from .._core.present import describe_operation, fmt_duration, fmt_time, short
from .axis import Axis, choose_axis, fmt_offset

__all__ = ["Mark", "Row", "Segment", "Timeline", "build_timeline"]

_T = OperationType
_S = OperationStatus

#: How much of a payload or an error message a tooltip shows.
TIP_CHARS = 300


@attrs.frozen
class Segment:
    """A bar from ``start`` to ``end`` (epoch ms) of one ``kind`` (a CSS class)."""

    start: int
    end: int
    kind: str
    tip: str
    #: the step attempt it is (1-based), or None
    attempt: int | None = None
    #: still to come (a wait not over, a retry not yet due)
    todo: bool = False


@attrs.frozen
class Mark:
    """A point in time on a row: a wait's wake time, a callback's timeout."""

    at: int
    kind: str
    tip: str


@attrs.frozen
class Row:
    """One operation, ``depth`` contexts deep."""

    op: Operation
    depth: int
    label: str
    start: int
    end: int
    segments: tuple[Segment, ...]
    marks: tuple[Mark, ...]
    #: the extent's tooltip: status, times, result or error
    tip: str
    #: text shown under the label (callback id and timeouts, wake time, function)
    info: str
    #: how many rows below it are its descendants
    descendants: int = 0


@attrs.frozen
class Timeline:
    """An execution laid out on one time axis starting at ``t0``."""

    info: ExecutionInfo
    t0: int
    now: int
    axis: Axis
    rows: tuple[Row, ...]
    invocations: tuple[Segment, ...]
    #: rows left out past ``max_rows``
    hidden: int


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    d = event.get(f"{event.get('EventType')}Details")
    return d if isinstance(d, Mapping) else {}


def _error_text(box: Any) -> str:
    """``Type: message`` of an ``{"Payload": ErrorObject}`` box, or ''."""
    payload = box.get("Payload") if isinstance(box, Mapping) else None
    if not isinstance(payload, Mapping):
        return ""
    kind = payload.get("ErrorType")
    message = payload.get("ErrorMessage")
    text = ": ".join(str(x) for x in (kind, message) if x)
    return short(text, TIP_CHARS)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _op_error(op: Operation) -> str:
    if op.error is None:
        return ""
    text = ": ".join(str(x) for x in (op.error.type, op.error.message) if x)
    return short(text, TIP_CHARS)


def _step_segments(op: Operation, events: Sequence[Mapping[str, Any]], now: int) -> list[Segment]:
    """Each attempt of a step and each delay between two, from its events."""
    out: list[Segment] = []
    started: int | None = None
    due: int | None = None
    attempt = 0
    polling = op.sub_type == OperationSubType.WAIT_FOR_CONDITION.value
    noun = "check" if polling else "attempt"
    for e in events:
        kind = e.get("EventType")
        ts = _int_or_none(e.get("EventTimestamp"))
        if ts is None:
            continue
        if kind == "StepStarted":
            started = ts
        elif kind in ("StepSucceeded", "StepFailed"):
            d = _details(e)
            retry = d.get("RetryDetails")
            retry = retry if isinstance(retry, Mapping) else {}
            attempt = _int_or_none(retry.get("CurrentAttempt")) or attempt + 1
            if started is not None:
                begin = started
            elif due is not None and due <= ts:
                begin = due
            elif not out:
                begin = min(op.start_timestamp, ts)
            else:
                begin = ts
            ok = kind == "StepSucceeded"
            delay = _int_or_none(retry.get("NextAttemptDelaySeconds"))
            if ok and polling and delay is not None:
                outcome = "not done yet"
            else:
                outcome = "succeeded" if ok else "failed"
            tip = f"{noun} {attempt}: {outcome} in {fmt_duration(ts - begin)}"
            err = _error_text(d.get("Error"))
            if err:
                tip += f" — {err}"
            out.append(Segment(begin, ts, "ok" if ok else "fail", tip, attempt=attempt))
            due = None
            if delay is not None:
                due = ts + delay * 1000
                what = "next check" if polling else "retry delay"
                out.append(
                    Segment(
                        ts,
                        due,
                        "delay",
                        f"{what} {delay} s: {noun} {attempt + 1} due {fmt_time(due)}",
                        todo=due > now,
                    )
                )
            started = None
    if started is not None:
        out.append(
            Segment(
                started,
                max(now, started),
                "run",
                f"{noun} {attempt + 1} running",
                attempt=attempt + 1,
            )
        )
    if not out:
        out = _step_from_operation(op, now)
    return out


def _step_from_operation(op: Operation, now: int) -> list[Segment]:
    """A step whose events are not at hand: one bar, and the delay it is in, if any."""
    end = op.end_timestamp if op.end_timestamp is not None else now
    n = op.attempt or 1
    if op.status is _S.SUCCEEDED:
        kind, outcome = "ok", "succeeded"
    elif op.status in (_S.FAILED, _S.PENDING, _S.READY) or op.error is not None:
        kind, outcome = "fail", "failed"
    else:
        kind, outcome = "run", "running"
    tip = f"attempt {n}: {outcome}"
    if op.error is not None:
        tip += f" — {_op_error(op)}"
    out = [Segment(op.start_timestamp, max(end, op.start_timestamp), kind, tip, attempt=n)]
    due = op.next_attempt_timestamp
    if op.status is _S.PENDING and due is not None and due > end:
        out.append(
            Segment(end, due, "delay", f"attempt {n + 1} due {fmt_time(due)}", todo=due > now)
        )
    return out


def _segments_and_marks(
    op: Operation, events: Sequence[Mapping[str, Any]], now: int
) -> tuple[list[Segment], list[Mark], str]:
    """What a row draws, and the text under its label."""
    status = op.status.value
    end = op.end_timestamp
    if op.type is _T.STEP:
        return _step_segments(op, events, now), [], ""
    if op.type is _T.WAIT:
        wake = op.scheduled_end_timestamp
        stop = end if end is not None else (wake if wake is not None else now)
        stop = max(stop, op.start_timestamp)
        todo = end is None
        length = f" {fmt_duration(wake - op.start_timestamp)}" if wake is not None else ""
        tip = f"wait{length}: {status.lower()}"
        marks = []
        info = ""
        if wake is not None:
            verb = "wakes" if todo else ("woke" if op.status is _S.SUCCEEDED else "was to wake")
            info = f"{verb} {fmt_time(wake)}"
            tip += f", {info}"
            marks.append(Mark(wake, "wake", f"wake time {fmt_time(wake)}"))
        return [Segment(op.start_timestamp, stop, "wait", tip, todo=todo)], marks, info
    if op.type is _T.CALLBACK:
        stop = max(end if end is not None else now, op.start_timestamp)
        bad = op.status in (_S.FAILED, _S.TIMED_OUT, _S.CANCELLED, _S.STOPPED)
        took = fmt_duration(stop - op.start_timestamp)
        tip = (
            f"callback open for {took}, not completed yet"
            if end is None
            else f"callback {status.lower()} after {took}"
        )
        if op.result is not None and op.status is _S.SUCCEEDED:
            tip += f" — result {short(op.result, TIP_CHARS)}"
        if op.error is not None:
            tip += f" — {_op_error(op)}"
        parts = []
        marks = []
        if op.callback_timeout:
            parts.append(f"timeout {_secs(op.callback_timeout)}")
            deadline = op.start_timestamp + op.callback_timeout * 1000
            marks.append(Mark(deadline, "deadline", f"times out at {fmt_time(deadline)}"))
        if op.callback_heartbeat_timeout:
            parts.append(f"heartbeat {_secs(op.callback_heartbeat_timeout)}")
        parts.append(f"callback id {op.callback_id or '?'}")
        kind = "cb cbbad" if bad else "cb"
        segment = Segment(op.start_timestamp, stop, kind, tip, todo=end is None)
        return [segment], marks, " · ".join(parts)
    stop = max(end if end is not None else now, op.start_timestamp)
    took = f"{status.lower()} after {fmt_duration(stop - op.start_timestamp)}"
    if op.type is _T.CHAINED_INVOKE:
        info = f"function {op.function_name}" if op.function_name else ""
        tip = f"invoke {took}" + (f" — {_op_error(op)}" if op.error is not None else "")
        return [Segment(op.start_timestamp, stop, "invoke", tip)], [], info
    tip = f"context {took}" + (f" — {_op_error(op)}" if op.error is not None else "")
    return [Segment(op.start_timestamp, stop, "ctx", tip)], [], ""


def _secs(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds} s ({fmt_offset(seconds * 1000)})"


#: How many attempts a step's row tooltip lists (the first ones and the last).
TIP_ATTEMPTS = 10


def _row_tip(op: Operation, label: str, start: int, end: int, segments: Sequence[Segment]) -> str:
    parts = [f"{label}: {op.status.value}", f"started {fmt_time(op.start_timestamp)}"]
    if op.end_timestamp is not None:
        parts.append(f"ended {fmt_time(op.end_timestamp)} ({fmt_duration(end - start)})")
    attempts = [s.tip for s in segments if s.attempt is not None]
    if len(attempts) > 1:
        if len(attempts) > TIP_ATTEMPTS:
            cut = len(attempts) - TIP_ATTEMPTS + 1
            attempts[TIP_ATTEMPTS - 2 : -1] = [f"... {cut} more attempts ..."]
        parts.extend(attempts)
    if op.type is not _T.CALLBACK:
        if op.result is not None and op.status is _S.SUCCEEDED and op.type is not _T.CONTEXT:
            parts.append(f"result {short(op.result, TIP_CHARS)}")
        if op.error is not None:
            parts.append(f"error {_op_error(op)}")
    return "\n".join(parts)


def _nest(operations: Sequence[Operation]) -> list[tuple[int, Operation, int]]:
    """(depth, operation, descendants) in tree order; an operation whose parent is
    not among ``operations`` is a root."""
    ops = [op for op in operations if op.type is not _T.EXECUTION]
    ids = {op.id for op in ops}
    children: dict[str | None, list[Operation]] = {}
    for op in ops:
        parent = op.parent_id if op.parent_id in ids and op.parent_id != op.id else None
        children.setdefault(parent, []).append(op)
    ordered: list[list[Any]] = []
    seen: set[str] = set()
    stack: list[tuple[int, Operation]] = [(0, op) for op in reversed(children.get(None, []))]
    open_rows: list[list[Any]] = []  # the ancestors of the row being placed
    while stack:
        depth, op = stack.pop()
        if op.id in seen:
            continue
        seen.add(op.id)
        del open_rows[depth:]
        for ancestor in open_rows:
            ancestor[2] += 1
        entry: list[Any] = [depth, op, 0]
        ordered.append(entry)
        open_rows.append(entry)
        stack.extend((depth + 1, c) for c in reversed(children.get(op.id, [])))
    return [(d, op, n) for d, op, n in ordered]


def build_timeline(
    info: ExecutionInfo,
    operations: Sequence[Operation],
    events: Sequence[Mapping[str, Any]],
    *,
    now: int | None = None,
    max_rows: int = 2000,
) -> Timeline:
    """Lay out one execution: rows nested by context, invocations, and the axis.

    ``now`` (epoch ms) ends what is still running; by default the execution's end,
    or the last time the store or a history event records.
    """
    if now is None:
        stamps = [_int_or_none(e.get("EventTimestamp")) for e in events]
        now = info.ended_at or max(
            [info.updated_at, *(s for s in stamps if s is not None)], default=info.updated_at
        )
    by_op: dict[str, list[Mapping[str, Any]]] = {}
    invocations: list[Segment] = []
    for e in events:
        if e.get("EventType") == "InvocationCompleted":
            d = _details(e)
            stamp = _int_or_none(e.get("EventTimestamp")) or now
            start = _int_or_none(d.get("StartTimestamp")) or stamp
            stop = max(_int_or_none(d.get("EndTimestamp")) or stamp, start)
            err = _error_text(d.get("Error"))
            tip = f"invocation {d.get('RequestId', '')} ({fmt_duration(stop - start)})"
            if err:
                tip += f" — {err}"
            invocations.append(Segment(start, stop, "inverr" if err else "inv", tip))
        elif isinstance(e.get("Id"), str):
            by_op.setdefault(e["Id"], []).append(e)

    nested = _nest(operations)
    rows: list[Row] = []
    for depth, op, descendants in nested[:max_rows]:
        label = describe_operation(op.sub_type, op.type.value, op.name)
        segments, marks, text = _segments_and_marks(op, by_op.get(op.id, []), now)
        start = min([op.start_timestamp, *(s.start for s in segments)])
        end = max([op.end_timestamp or start, *(s.end for s in segments)])
        rows.append(
            Row(
                op=op,
                depth=depth,
                label=label,
                start=start,
                end=end,
                segments=tuple(segments),
                marks=tuple(marks),
                tip=_row_tip(op, label, start, end, segments),
                info=text,
                descendants=min(descendants, max(0, max_rows - len(rows) - 1)),
            )
        )
    starts = [info.created_at, *(r.start for r in rows), *(s.start for s in invocations)]
    t0 = min(starts)
    t1 = max([t0, now, *(r.end for r in rows), *(s.end for s in invocations)])
    return Timeline(
        info=info,
        t0=t0,
        now=now,
        axis=choose_axis(t1 - t0),
        rows=tuple(rows),
        invocations=tuple(invocations),
        hidden=max(0, len(nested) - max_rows),
    )
