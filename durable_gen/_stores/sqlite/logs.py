"""The ``logs`` table: an execution's kept log records (see ``_stores.logs``).

Written only inside the lease holder's fenced transactions (``journal._flush``),
so records share the fate of the checkpoint they are written with; read by
``SqliteStore.log_records`` (``durable-gen logs``, ``GET .../logs``).
"""

from __future__ import annotations

import sqlite3

from ..logs import LogEntry, LogPage, Pending
from .schema import storable

_INSERT = (
    "INSERT INTO logs (execution, seq, time, level, logger, message, op_id, op_name, "
    "attempt, exception) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def last_seq(conn: sqlite3.Connection, pk: int) -> int:
    """The number of execution ``pk``'s last record (0: none yet)."""
    return int(
        conn.execute("SELECT MAX(seq) FROM logs WHERE execution = ?", (pk,)).fetchone()[0] or 0
    )


def write_logs(
    conn: sqlite3.Connection, pk: int, last: int, records: list[Pending], keep: int
) -> int:
    """Append ``records`` to execution ``pk``'s (numbered after ``last``: the lease
    holder is the only writer, so it knows), keeping the newest ``keep``; returns the
    number of the last one."""
    top = last + len(records)
    skip = max(0, len(records) - keep)  # more than the bound at once: the newest only
    rows = [(pk, last + 1 + i, *_storable(r)) for i, r in enumerate(records) if i >= skip]
    conn.executemany(_INSERT, rows)
    if top > keep:
        conn.execute("DELETE FROM logs WHERE execution = ? AND seq <= ?", (pk, top - keep))
    return top


def _storable(record: Pending) -> Pending:
    """A record whose texts SQLite can store (``schema.storable``: lone surrogates,
    e.g. undecodable bytes in a message, become U+FFFD)."""
    t, level, logger, message, op_id, op_name, attempt, exception = record
    if message.isascii() and (exception is None or exception.isascii()) and logger.isascii():
        return record
    return (
        t,
        level,
        storable(logger),
        storable(message),
        op_id,
        op_name,
        attempt,
        None if exception is None else storable(exception),
    )


def read_logs(
    conn: sqlite3.Connection,
    pk: int,
    *,
    after: int = 0,
    limit: int | None = None,
    level: int = 0,
) -> LogPage:
    """Execution ``pk``'s records numbered after ``after`` at ``level`` and above, in
    order; at most ``limit`` of them (None: all)."""
    rows = conn.execute(
        "SELECT seq, time, level, logger, message, op_id, op_name, attempt, exception "
        "FROM logs WHERE execution = ? AND seq > ? AND level >= ? ORDER BY seq LIMIT ?",
        (pk, after, level, -1 if limit is None else limit + 1),
    ).fetchall()
    first = conn.execute("SELECT MIN(seq) FROM logs WHERE execution = ?", (pk,)).fetchone()[0]
    more = limit is not None and len(rows) > limit
    if more:
        rows = rows[:limit]
    return LogPage(
        records=tuple(LogEntry.from_pending(r[0], r[1:]) for r in rows),
        dropped=0 if first is None else first - 1,
        more=more,
    )
