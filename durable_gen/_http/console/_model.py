"""What the console shows, as JSON-ready values: executions, operations, callbacks, events.

Everything here reads a store and returns plain dicts and lists; rendering (HTML on
the server, DOM nodes in the browser) is elsewhere. Times are epoch ms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..._core.contract import LIVE_STATUSES, ExecutionInfo
from ..._core.errors import DurableGenError, ErrorObject, ValidationError
from ..._core.log import Operation, OperationStatus, OperationType
from ..._core.present import describe_operation
from ..._core.serdes import DEFAULT_SERDES
from ..._stores.logs import LEVELS, LogEntry
from ..._stores.sqlite import SqliteStore

#: The statuses an execution can have (the list's status filter).
EXECUTION_STATUSES = (
    "RUNNING",
    "PAUSING",
    "PAUSED",
    "SUCCEEDED",
    "FAILED",
    "STOPPED",
    "TIMED_OUT",
)
#: Longest payload text shown (a longer one is cut, with its full length said).
MAX_SHOWN_CHARS = 50_000
#: History events per page.
EVENTS_PAGE = 200
#: Executions per page of the list, by default and at most.
LIST_PAGE = 50
MAX_LIST_PAGE = 500
#: A text filter scans at most this many executions per request (then says where it got).
MAX_SCAN = 50_000
#: How the list can be sorted (the store's orders): by start, or by duration (ended
#: executions only), and the order that reads a page backwards (the "Previous" page).
ORDERS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "longest": "Longest first",
    "shortest": "Shortest first",
}
_REVERSED = {"newest": "oldest", "oldest": "newest", "longest": "shortest", "shortest": "longest"}
#: Log records per request of the execution page (the store keeps 1,000 by default).
LOGS_PAGE = 500
#: Log levels of the execution page's filter.
LOG_LEVELS = tuple(LEVELS)
#: Longest fork name: the HTTP API's rule for execution names.
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_SCAN_BATCH = 1000
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes kept by ``surrogateescape``)
    replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


def payload(data: str | None) -> dict[str, Any] | None:
    """A stored payload for display: ``{"text", "kind", "chars", "truncated"}``.

    ``kind`` is ``json`` (pretty-printed), ``python`` (a value JSON cannot carry,
    decoded by the default serdes and shown by its ``repr``) or ``text`` (neither).
    """
    if data is None:
        return None
    kind = "json"
    try:
        text = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        try:
            text, kind = repr(DEFAULT_SERDES.deserialize(data)), "python"
        except (DurableGenError, ValueError, RecursionError, TypeError):
            text, kind = data, "text"
    return _cut(text, kind)


def _cut(text: str, kind: str) -> dict[str, Any]:
    text = clean(text)
    out: dict[str, Any] = {"text": text[:MAX_SHOWN_CHARS], "kind": kind, "chars": len(text)}
    out["truncated"] = len(text) > MAX_SHOWN_CHARS
    return out


def error(e: ErrorObject | None) -> dict[str, Any] | None:
    """A recorded failure: its type, message, data and stack trace lines."""
    if e is None:
        return None
    stack = [clean(line) for frame in e.stack_trace or () for line in frame.splitlines()]
    return {
        "type": clean(e.type or "Error"),
        "message": _cut(e.message or "", "text"),
        "data": payload(e.data),
        "stack": stack[:2000],
    }


def function_of(info: ExecutionInfo, functions: Mapping[str, str]) -> str | None:
    """The served function (by name) an execution runs, else None."""
    for name, target in functions.items():
        if target == info.target:
            return name
    return None


def row(info: ExecutionInfo, functions: Mapping[str, str]) -> dict[str, Any]:
    """An execution as one row of the list."""
    return {
        "id": clean(info.id),
        "status": info.status,
        "function": function_of(info, functions),
        "target": clean(info.target) if info.target else None,
        "version": clean(info.code_version) if info.code_version else None,
        "started": info.created_at,
        "ended": info.ended_at,
    }


def list_page(
    store: SqliteStore,
    functions: Mapping[str, str],
    *,
    status: str | None = None,
    function: str | None = None,
    text: str | None = None,
    version: str | None = None,
    order: str = "newest",
    after: str | None = None,
    before: str | None = None,
    limit: int = LIST_PAGE,
) -> dict[str, Any]:
    """One page of executions: ``{"executions", "next", "previous", "order"}``.

    ``function`` is a served function's name (or a ``module:function`` target);
    ``text`` keeps executions whose id (the execution's name) contains it, ignoring
    case; ``version`` keeps those that started on that code version. ``order`` is one
    of :data:`ORDERS` (``longest``/``shortest``: ended executions only). ``after`` is
    the ``next`` of the page before (keyset pagination: stable while executions are
    added), ``before`` the ``previous`` of the page after: that page is read
    backwards (the reversed order from the marker) and shown in ``order``. A text
    filter scans at most :data:`MAX_SCAN` executions per page; ``next`` (or
    ``previous``) then continues the scan.
    """
    if status is not None and status not in EXECUTION_STATUSES:
        raise ValidationError(
            f"status {status!r:.40} is not an execution status; use one of "
            f"{', '.join(EXECUTION_STATUSES)}"
        )
    if order not in ORDERS:
        raise ValidationError(f"order {order!r:.40} is not one of {', '.join(ORDERS)}")
    if not 1 <= limit <= MAX_LIST_PAGE:
        raise ValidationError(f"limit must be from 1 to {MAX_LIST_PAGE}, got {limit}")
    if after is not None and before is not None:
        raise ValidationError("give after (the next page) or before (the previous one), not both")
    target = None
    if function is not None:
        target = functions.get(function)
        if target is None and ":" in function:
            target = function
        if target is None:
            served = ", ".join(sorted(functions)) or "none"
            raise ValidationError(
                f"no function named {function!r:.80} is served (served: {served}); give "
                "a served function's name or a module:function target"
            )
    query: dict[str, Any] = {"status": status, "target": target, "code_version": version}
    backwards = before is not None
    way = _REVERSED[order] if backwards else order
    rows, more, scanned_to = _scan(store, query, way, before if backwards else after, limit, text)
    marker = None
    if more:
        marker = store.page_marker(rows[-1], order=way)
    elif scanned_to is not None:
        marker = store.page_marker(scanned_to, order=way)
    if backwards:
        rows.reverse()
        previous = marker
        following = store.page_marker(rows[-1], order=order) if rows else None
    else:
        previous = store.page_marker(rows[0], order=order) if after and rows else None
        following = marker
    return {
        "executions": [row(r, functions) for r in rows],
        "next": following,
        "previous": previous,
        "order": order,
    }


def _scan(
    store: SqliteStore,
    query: dict[str, Any],
    order: str,
    cursor: str | None,
    limit: int,
    text: str | None,
) -> tuple[list[ExecutionInfo], bool, ExecutionInfo | None]:
    """Up to ``limit`` executions from ``cursor`` on in ``order``; whether more follow;
    and, when a text filter stopped at :data:`MAX_SCAN`, the last execution scanned."""
    if not text:
        rows = store.executions(**query, limit=limit + 1, after=cursor, order=order)
        return rows[:limit], len(rows) > limit, None
    needle = text.casefold()
    found: list[ExecutionInfo] = []
    scanned = 0
    last: ExecutionInfo | None = None
    while scanned < MAX_SCAN:
        batch = store.executions(**query, limit=_SCAN_BATCH, after=cursor, order=order)
        for r in batch:
            scanned += 1
            last = r
            if needle in r.id.casefold():
                found.append(r)
                if len(found) > limit:
                    return found[:limit], True, None
        if len(batch) < _SCAN_BATCH:
            return found, False, None
        cursor = store.page_marker(batch[-1], order=order)
    return found, False, last


def operation(op: Operation, depth: int, invoked: str | None = None) -> dict[str, Any]:
    """One operation of the tree, ``depth`` levels below the execution; ``invoked``:
    the id of the execution a CHAINED_INVOKE started."""
    out: dict[str, Any] = {
        "id": op.id,
        "parent": op.parent_id,
        "depth": depth,
        "type": op.type.value,
        "subtype": op.sub_type,
        "kind": clean(describe_operation(op.sub_type, op.type.value, None)),
        "name": clean(op.name) if op.name is not None else None,
        "status": op.status.value,
        "attempt": op.attempt,
        "start": op.start_timestamp,
        "end": op.end_timestamp,
        "input": payload(op.input_payload),
        "result": payload(op.result),
        "error": error(op.error),
    }
    if op.next_attempt_timestamp is not None and op.status is OperationStatus.PENDING:
        out["next_attempt"] = op.next_attempt_timestamp
    if op.type is OperationType.WAIT and op.scheduled_end_timestamp:
        out["wait_until"] = op.scheduled_end_timestamp
    if op.type is OperationType.CALLBACK:
        out["callback_id"] = op.callback_id
        out["timeout_s"] = op.callback_timeout
        out["heartbeat_timeout_s"] = op.callback_heartbeat_timeout
        out["last_heartbeat"] = op.last_heartbeat
        if op.callback_timeout:
            out["deadline"] = op.start_timestamp + op.callback_timeout * 1000
    if op.function_name is not None:
        out["function_name"] = clean(op.function_name)
    if invoked is not None:
        out["invoked"] = clean(invoked)
    return out


def tree(
    ops: Mapping[str, Operation], invoked: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The operations in tree order (depth first, each context's children by start
    time), the EXECUTION operation left out; an operation whose parent is not
    recorded is shown at the top. ``invoked``: the executions CHAINED_INVOKE
    operations started, by operation id (:func:`invoked_executions`)."""
    invoked = invoked or {}
    shown = [op for op in ops.values() if op.type is not OperationType.EXECUTION]
    ids = {op.id for op in shown}
    children: dict[str | None, list[Operation]] = {}
    for op in shown:
        parent = op.parent_id if op.parent_id in ids else None
        children.setdefault(parent, []).append(op)
    out: list[dict[str, Any]] = []
    stack: list[tuple[Operation, int]] = [
        (op, 0) for op in reversed(sorted(children.get(None, []), key=_started))
    ]
    while stack:
        op, depth = stack.pop()
        out.append(operation(op, depth, invoked.get(op.id)))
        kids = sorted(children.get(op.id, []), key=_started)
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return out


def _started(op: Operation) -> int:
    return op.start_timestamp


def event(e: Mapping[str, Any]) -> dict[str, Any]:
    """A history event: its number, type, time, operation and details as text."""
    details = {k: v for k, v in e.items() if k.endswith("Details")}
    text = json.dumps(details, ensure_ascii=False, default=str) if details else ""
    return {
        "n": e.get("EventId"),
        "type": e.get("EventType"),
        "time": e.get("EventTimestamp"),
        "name": clean(str(e["Name"])) if e.get("Name") is not None else None,
        "op": e.get("Id"),
        "details": clean(text[:2000] + ("…" if len(text) > 2000 else "")),
    }


def invoked_executions(events: list[dict[str, Any]]) -> dict[str, str]:
    """The execution each CHAINED_INVOKE started, by operation id: its
    ChainedInvokeStarted event names it (``DurableExecutionArn``: the id here, an
    ARN on AWS, whose last ``/`` segment is the id)."""
    out: dict[str, str] = {}
    for e in events:
        if e.get("EventType") != "ChainedInvokeStarted":
            continue
        details = e.get("ChainedInvokeStartedDetails")
        arn = details.get("DurableExecutionArn") if isinstance(details, dict) else None
        op_id = e.get("Id")
        if isinstance(arn, str) and arn and isinstance(op_id, str):
            out[op_id] = arn.rsplit("/", 1)[-1]
    return out


def events_page(
    store: SqliteStore,
    execution_id: str,
    start: int,
    every: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """History events ``start`` (0-based) onwards, one page: ``{"events", "total", "next"}``
    (``every``: the history, when the caller has read it)."""
    if every is None:
        every = store.history(execution_id)
    page = every[start : start + EVENTS_PAGE]
    after = start + len(page)
    return {
        "events": [event(e) for e in page],
        "total": len(every),
        "next": after if after < len(every) else None,
    }


def execution(info: ExecutionInfo, functions: Mapping[str, str]) -> dict[str, Any]:
    """The execution's own record, its payloads decoded."""
    out = row(info, functions)
    out.update(
        live=info.status in LIVE_STATUSES,
        wake_at=info.wake_at if info.status in LIVE_STATUSES else None,
        input=payload(info.input),
        result=payload(info.result),
        error=error(info.error),
    )
    return out


def detail(store: SqliteStore, execution_id: str, functions: Mapping[str, str]) -> dict[str, Any]:
    """Everything the execution page shows: the execution, its operation tree, its
    open callbacks and the first page of its history."""
    info = store.info(execution_id)
    every = store.history(execution_id)
    ops = tree(store.load(execution_id), invoked_executions(every))
    live = info.status in LIVE_STATUSES
    callbacks = [
        op
        for op in ops
        if op["type"] == "CALLBACK" and op["status"] == OperationStatus.STARTED.value and live
    ]
    return {
        "execution": execution(info, functions),
        "operations": ops,
        "callbacks": callbacks,
        "history": events_page(store, execution_id, 0, every),
    }


def log_record(r: LogEntry) -> dict[str, Any]:
    """One kept log record (``durable-gen logs --json``'s fields, times in epoch ms)."""
    return {
        "seq": r.seq,
        "time": r.time,
        "level": r.level_name,
        "logger": clean(r.logger),
        "message": clean(r.message),
        "op": r.operation_id,
        "op_name": clean(r.operation_name) if r.operation_name is not None else None,
        "attempt": r.attempt,
        "exception": clean(r.exception) if r.exception is not None else None,
    }


def logs_page(
    store: SqliteStore, execution_id: str, *, after: int = 0, level: str = "DEBUG"
) -> dict[str, Any]:
    """The execution's kept log records numbered after ``after``, at ``level`` and
    above: ``{"records", "dropped", "last", "more", "live"}``. ``last`` is the number
    to ask ``after`` next (new records follow it: the live tail); ``more``: another
    page is there already; ``live``: the execution may still log."""
    if level not in LEVELS:
        raise ValidationError(f"level must be one of {', '.join(LEVELS)}, got {level!r:.40}")
    live = store.info(execution_id).status in LIVE_STATUSES  # first: what it wrote is read
    page = store.log_records(execution_id, after=after, limit=LOGS_PAGE, level=LEVELS[level])
    records = [log_record(r) for r in page.records]
    return {
        "records": records,
        "dropped": page.dropped,
        "last": records[-1]["seq"] if records else after,
        "more": page.more,
        "live": live,
    }


#: The query parameters of a cost estimate (``durable-gen show --meter``'s flags).
PRICE_PARAMS = ("per_million_operations", "per_gb_persisted", "per_gb_month_retained")


def meter(
    store: SqliteStore,
    execution_id: str,
    *,
    prices: Mapping[str, str] | None = None,
    retention_days: float | None = None,
    executions_per_month: int = 1_000_000,
    currency: str | None = None,
) -> dict[str, Any]:
    """Durable operations and bytes persisted by the execution, as ``durable-gen show
    --meter`` reports them (``Meter.to_dict``, every label cleaned), and with
    ``prices`` (the three unit prices, as text) a cost estimate
    (``Estimate.to_dict``): ``{"meter", "estimate"}``. durable_gen knows no prices:
    the user gives them."""
    from ..._engine.meter import meter_execution
    from ..._engine.pricing import estimate, prices_from_flags

    store.info(execution_id)  # a clear error for an unknown id
    m = meter_execution(store, execution_id, retention_days=retention_days, largest=10)
    doc = _cleaned(m.to_dict())
    doc["rows"] = [
        {"kind": r.kind.value, "operations": r.operations, "bytes": r.bytes} for r in m.rows
    ]
    est = None
    if prices:
        flags: dict[str, Any] = dict(prices)
        if currency:
            flags["currency"] = currency
        est = estimate(m, prices_from_flags(flags), executions_per_month).to_dict()
        est = _cleaned(est)
    return {"meter": doc, "estimate": est}


def _cleaned(value: Any) -> Any:
    """A JSON-ready value with every string :func:`clean`."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v) for v in value]
    return value


def fork_name(name: str | None) -> str | None:
    """A fork's execution name as the HTTP API accepts it (None: the store draws one)."""
    if name is None:
        return None
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"a fork's name must be 1 to 64 letters, digits, '-' or '_', got {name!r:.80}"
        )
    return name
