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
    after: str | None = None,
    limit: int = LIST_PAGE,
) -> dict[str, Any]:
    """One page of executions, newest first: ``{"executions", "next"}``.

    ``function`` is a served function's name (or a ``module:function`` target);
    ``text`` keeps executions whose id (the execution's name) contains it, ignoring
    case; ``after`` is the ``next`` of the previous page (keyset pagination: stable
    while executions are added). A text filter scans at most :data:`MAX_SCAN`
    executions per page; ``next`` then continues the scan.
    """
    if status is not None and status not in EXECUTION_STATUSES:
        raise ValidationError(
            f"status {status!r:.40} is not an execution status; use one of "
            f"{', '.join(EXECUTION_STATUSES)}"
        )
    if not 1 <= limit <= MAX_LIST_PAGE:
        raise ValidationError(f"limit must be from 1 to {MAX_LIST_PAGE}, got {limit}")
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
    query: dict[str, Any] = {"status": status, "target": target}
    if not text:
        rows = store.executions(**query, limit=limit + 1, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        marker = store.page_marker(rows[-1]) if more else None
        return {"executions": [row(r, functions) for r in rows], "next": marker}
    needle = text.casefold()
    found: list[ExecutionInfo] = []
    scanned = 0
    cursor = after
    last: ExecutionInfo | None = None
    while scanned < MAX_SCAN:
        batch = store.executions(**query, limit=_SCAN_BATCH, after=cursor)
        for r in batch:
            scanned += 1
            last = r
            if needle in r.id.casefold():
                found.append(r)
                if len(found) > limit:
                    break
        if len(found) > limit or len(batch) < _SCAN_BATCH:
            break
        cursor = store.page_marker(batch[-1])
    marker = None
    if len(found) > limit:
        found = found[:limit]
        marker = store.page_marker(found[-1])
    elif scanned >= MAX_SCAN and last is not None:
        marker = store.page_marker(last)
    return {"executions": [row(r, functions) for r in found], "next": marker}


def operation(op: Operation, depth: int) -> dict[str, Any]:
    """One operation of the tree, ``depth`` levels below the execution."""
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
    return out


def tree(ops: Mapping[str, Operation]) -> list[dict[str, Any]]:
    """The operations in tree order (depth first, each context's children by start
    time), the EXECUTION operation left out; an operation whose parent is not
    recorded is shown at the top."""
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
        out.append(operation(op, depth))
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


def events_page(store: SqliteStore, execution_id: str, start: int) -> dict[str, Any]:
    """History events ``start`` (0-based) onwards, one page: ``{"events", "total", "next"}``."""
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
    ops = tree(store.load(execution_id))
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
        "history": events_page(store, execution_id, 0),
    }
