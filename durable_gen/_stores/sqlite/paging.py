"""Reading an execution's history and operations a page at a time (issue 22, scale).

An execution of 100,000 operations has some 200,000 history events; answering a
page of them must not cost reading them all. History events live in the journal,
a few per row, under keys ``pk << 32 | seq``; a page is read by key from where the
last one stopped (``key >= ?  ORDER BY key LIMIT ?``), a bounded number of rows at a
time, so a page costs O(page) whatever its place in the history.

Operations are paged from the store's cached log instead (:meth:`_Journal._cached`):
an operation's current state is its newest version, which may sit in any later row
(a Parallel's context starts first and ends last), and the schema keeps no
per-operation index that would find it without reading the whole log. The cache
reads it once per change of the execution; every page after that costs O(page).

Markers are opaque to the caller (base64 of the position and the execution's
database key): a marker of another execution, or text that is no marker, is a
:class:`ValidationError` saying so, never a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from ..._core.errors import CorruptLogError, ValidationError
from ..._core.log import Operation, OperationStatus, OperationType
from .schema import _SEQ_BITS, _loads

#: Largest page (the Lambda API's MaxItems maximum).
MAX_PAGE = 1000
#: Journal rows read by one query while filling a page.
_ROWS = 256
_MARKER = re.compile(r"(?P<kind>[hro])\.(?P<pk>[0-9]{1,19})(?P<nums>(?:\.[0-9]{1,19}){1,3})")


def encode_marker(kind: str, pk: int, *numbers: int) -> str:
    text = ".".join([kind, str(pk), *map(str, numbers)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def bad_marker(marker: str, execution_id: str) -> ValidationError:
    return ValidationError(
        f"Marker {marker!r:.80} is not a marker of execution {execution_id!r:.80} for this "
        "listing: pass the NextMarker of the previous page unchanged (or no Marker for "
        "the first page)"
    )


def decode_marker(marker: str, kind: str, pk: int, count: int, execution_id: str) -> list[int]:
    """The numbers in ``marker``, which must be a ``kind`` marker of execution ``pk``."""
    bad = bad_marker(marker, execution_id)
    if not isinstance(marker, str) or not 0 < len(marker) <= 200 or not marker.isascii():
        raise bad
    try:
        text = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    m = _MARKER.fullmatch(text)
    if m is None or m["kind"] != kind or int(m["pk"]) != pk:
        raise bad
    numbers = [int(n) for n in m["nums"][1:].split(".")]
    if len(numbers) != count:
        raise bad
    return numbers


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            f"a page holds 1 to {MAX_PAGE} items, got {limit!r:.40} ({type(limit).__name__})"
        )
    return limit


def history_page(
    conn: sqlite3.Connection,
    pk: int,
    execution_id: str,
    marker: str | None,
    limit: int,
    reverse: bool,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` history events (with their EventId) from ``marker`` on, oldest
    first (newest first with ``reverse``), and the marker of the next page (None: none).

    A forward marker holds the journal sequence number of the next event's row, its
    index in the row and its EventId; a reverse one the same, going backwards. The
    first reverse page counts the events (in SQL, without decoding them) to number
    them from the end.
    """
    lo = pk << _SEQ_BITS
    hi = lo + (1 << _SEQ_BITS)
    kind = "r" if reverse else "h"
    if marker is not None:
        seq, index, event_id = decode_marker(marker, kind, pk, 3, execution_id)
        key = lo + seq
        if not (0 < seq < 1 << _SEQ_BITS) or event_id < 1:
            raise bad_marker(marker, execution_id)
    elif reverse:
        row = conn.execute(
            "SELECT key, json_array_length(events), (SELECT sum(json_array_length(events)) "
            "FROM journal WHERE key > ?1 AND key < ?2 AND events IS NOT NULL) "
            "FROM journal WHERE key > ?1 AND key < ?2 AND events IS NOT NULL "
            "ORDER BY key DESC LIMIT 1",
            (lo, hi),
        ).fetchone()
        if row is None:
            return [], None
        key, index, event_id = row[0], row[1] - 1, row[2]
    else:
        key, index, event_id = lo + 1, 0, 1
    out: list[dict[str, Any]] = []
    start: int | None = index  # where to begin in the first row read
    size = min(limit + 1, _ROWS)
    loads = _loads
    while True:
        if reverse:
            rows = conn.execute(
                "SELECT key, events FROM journal WHERE key > ? AND key <= ? "
                "AND events IS NOT NULL ORDER BY key DESC LIMIT ?",
                (lo, key, size),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT key, events FROM journal WHERE key >= ? AND key < ? "
                "AND events IS NOT NULL ORDER BY key LIMIT ?",
                (key, hi, size),
            ).fetchall()
        for k, body in rows:
            events = loads(body)
            if start is not None:
                if marker is not None and (k != key or not 0 <= start < len(events)):
                    raise bad_marker(marker, execution_id)  # no such position
                i, start = start, None
            else:
                i = len(events) - 1 if reverse else 0
            step = -1 if reverse else 1
            while 0 <= i < len(events):
                if len(out) == limit:
                    return out, encode_marker(kind, pk, k - lo, i, event_id)
                out.append({**events[i], "EventId": event_id})
                event_id += step
                i += step
        if len(rows) < size:
            if start is not None and marker is not None:
                raise bad_marker(marker, execution_id)  # its row is gone
            return out, None
        key = rows[-1][0] + (-1 if reverse else 1)
        size = _ROWS


def operations_page(
    ops: Mapping[str, Operation],
    pk: int,
    execution_id: str,
    marker: str | None,
    limit: int,
) -> tuple[list[Operation], str | None]:
    """Up to ``limit`` of ``ops`` (an execution's cached log, in the order its
    operations were first recorded) from ``marker`` on, and the next page's marker.

    The marker is a position in that order, which new operations extend at its end
    and updates leave alone: pages taken while the execution runs still list every
    operation once (in its state when its page was read)."""
    start = 0
    if marker is not None:
        (start,) = decode_marker(marker, "o", pk, 1, execution_id)
        if start > len(ops):
            raise bad_marker(marker, execution_id)
    page = list(itertools.islice(ops.values(), start, start + limit + 1))
    if len(page) > limit:
        return page[:limit], encode_marker("o", pk, start + limit)
    return page, None


class OperationsSummary:
    """What ``durable-gen show`` prints of a large execution, read in one pass over
    its log holding little more than each operation's id and status."""

    __slots__ = ("by_status", "count", "failed", "first", "last", "open_callbacks")

    def __init__(self) -> None:
        #: operations recorded (the EXECUTION one left out)
        self.count = 0
        #: how many are in each status
        self.by_status: dict[str, int] = {}
        #: the first ``head`` operations, as recorded first, in their newest state
        self.first: list[Operation] = []
        #: the last ``tail`` (none of them among ``first``)
        self.last: list[Operation] = []
        #: CALLBACK operations STARTED (waiting for the outside world)
        self.open_callbacks: list[Operation] = []
        #: operations whose error carries a stack trace
        self.failed: list[Operation] = []


def summarize_operations(
    conn: sqlite3.Connection, pk: int, execution_id: str, head: int, tail: int
) -> OperationsSummary:
    """One pass over the execution's journal rows (a bounded number at a time)."""
    lo = pk << _SEQ_BITS
    hi = lo + (1 << _SEQ_BITS)
    statuses: dict[str, str] = {}
    first: dict[str, Operation] = {}
    last: collections.OrderedDict[str, Operation] = collections.OrderedDict()
    callbacks: dict[str, Operation] = {}
    failed: dict[str, Operation] = {}
    from_dict = Operation.from_dict
    execution = OperationType.EXECUTION
    callback = OperationType.CALLBACK
    started = OperationStatus.STARTED
    key = lo
    while True:
        rows = conn.execute(
            "SELECT key, ops FROM journal WHERE key > ? AND key < ? AND ops IS NOT NULL "
            "ORDER BY key LIMIT ?",
            (key, hi, _ROWS),
        ).fetchall()
        for _, body in rows:
            try:
                versions = [from_dict(d) for d in _loads(body)]
            except (ValueError, TypeError) as e:
                raise CorruptLogError(
                    f"execution {execution_id!r} has a journal row that is not valid JSON ({e})"
                ) from None
            for op in versions:
                if op.type is execution:
                    continue
                op_id = op.id
                new = op_id not in statuses
                statuses[op_id] = op.status.value
                if op_id in first or (new and len(first) < head):
                    first[op_id] = op
                elif op_id in last or new:
                    last[op_id] = op
                    if len(last) > tail:
                        last.popitem(last=False)
                if op.type is callback and op.status is started:
                    callbacks[op_id] = op
                else:
                    callbacks.pop(op_id, None)
                if op.error is not None and op.error.stack_trace:
                    failed[op_id] = op
                else:
                    failed.pop(op_id, None)
        if len(rows) < _ROWS:
            break
        key = rows[-1][0]
    out = OperationsSummary()
    out.count = len(statuses)
    out.by_status = dict(collections.Counter(statuses.values()))
    out.first = list(first.values())
    out.last = list(last.values())
    out.open_callbacks = list(callbacks.values())
    out.failed = list(failed.values())
    return out
