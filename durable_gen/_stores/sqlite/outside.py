"""What the outside world reads: listings and due work, and purge's vacuum; and the
SQLite dialect of the operations the stores share (``_stores.sql_store``: callbacks,
invokes, stop, pause, resume, delete, redrive, timeouts and retention). None of it
needs a lease; writes bump the execution's version, so its lease holder rereads the
log."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..logs import LogPage
from ..sql_store import ORDERS, REDRIVABLE, _SqlStore
from .journal import _Conflict
from .leases import _Leases
from .logs import read_logs
from .schema import _SEQ_BITS, _now_ms, _store_error

__all__ = ["ORDERS", "REDRIVABLE", "_Outside"]


class _Outside(_Leases, _SqlStore):
    """Queries, and the writes of processes that do not hold the lease (their logic in
    :class:`~durable_gen._stores.sql_store._SqlStore`, SQLite's dialect here)."""

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of live executions past their deadline (first: any worker times them out,
        whoever holds their lease and whatever code version they run), then of RUNNING
        executions whose wake time has come and that a worker may take (with
        ``code_version``, only those that started on it). Executions on a queue come
        last, only as many as their partitions have room for now
        (``_stores.queue_store``), in their queue's order."""
        real = _now_ms()
        overdue = self.overdue(now, limit=limit)
        pinned, args = _version_filter(code_version)
        with self._lock:
            rows = self._query(
                "SELECT id, lease_owner, lease_expires FROM executions "
                "WHERE status = 'RUNNING' AND wake_at IS NOT NULL AND wake_at <= ? "
                f"AND queue IS NULL {pinned}ORDER BY wake_at LIMIT ?",
                (now, *args, limit),
            )
            queued = self._due_queued(self._conn, now, real, limit)
            if queued and code_version is not None:
                marks = ", ".join("?" * len(queued))
                pinned_ids = {
                    r[0]
                    for r in self._query(
                        f"SELECT id FROM executions WHERE id IN ({marks}) {pinned}",
                        (*queued, *args),
                    )
                }
                queued = [q for q in queued if q in pinned_ids]
        late = set(overdue)
        takeable = [
            r[0]
            for r in rows
            if r[0] not in late
            and (r[1] is None or r[1] == self.owner or r[2] <= real or self.owner_is_dead(r[1]))
        ]
        takeable += [q for q in queued if q not in late]
        return overdue + takeable[: max(0, limit - len(overdue))]

    def next_wake(self, *, code_version: str | None = None) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds, or deadline
        of a live one, or None (with ``code_version``, wake times of those that started
        on it)."""
        pinned, args = _version_filter(code_version)
        with self._lock:
            real = _now_ms()
            rows = self._query(
                "SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND (lease_owner IS NULL OR lease_expires <= ?) AND queue IS NULL {pinned}",
                (real, *args),
            )
            # queued executions: their timers, and when a rate window frees a start (one
            # that waits for a slot is found by the next poll, or when a slot here frees)
            queued = self._query(
                "SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND queue IS NOT NULL AND wake_at > ? {pinned}",
                (real, *args),
            )
            room = self._next_room(self._conn, real)
            deadlines = self._query(
                "SELECT MIN(deadline) FROM executions WHERE status IN "
                "('RUNNING', 'PAUSING', 'PAUSED') AND deadline IS NOT NULL"
            )
        found = (rows[0][0] if rows else None, queued[0][0], room, deadlines[0][0])
        wakes = [w for w in found if w is not None]
        return min(wakes) if wakes else None

    def purge(
        self,
        now: int,
        *,
        default_retention_ms: int | None = None,
        limit: int = 500,
        vacuum_pages: int = 2000,
    ) -> int:
        """Delete up to ``limit`` ended executions whose retention has passed, with their
        log, history, callbacks and log records, in one transaction; returns how many.

        An execution's retention is its own (recorded at start), else
        ``default_retention_ms`` (None: kept forever). Then up to ``vacuum_pages`` free
        pages are given back to the file system (``PRAGMA incremental_vacuum``; a file
        created before schema version 5 keeps its free pages for reuse instead)."""
        with self._lock:
            purged = super().purge(now, default_retention_ms=default_retention_ms, limit=limit)
            if purged:
                # executescript steps the pragma to its end (execute() would free one
                # page: the statement returns no rows); its own short write transaction
                try:
                    self._conn.executescript(f"PRAGMA incremental_vacuum({int(vacuum_pages)})")
                except sqlite3.Error as e:
                    raise _store_error(self.path, e) from None
        return purged

    # ------------------------------------------------------------------ the dialect
    # (see ``_stores.sql_store``): one writer at a time, so no row locks; the journal
    # keyed ``pk << 32 | n``; workers poll, so nothing to notify.

    _CONFLICT = _Conflict
    _ROW_LOCK = ""  # BEGIN IMMEDIATE: the transaction holds the file's write lock
    _CALLBACK_LOCK = ""
    _PURGE_LOCK = ""
    #: stop and time_out bump the version in their UPDATE too (as they always have)
    _END_SET = ", version = version + 1"
    _REDRIVE_SET = ""  # the cache rereads a whole log whose version changed
    _ID_PREFIX = "substr(id, 1, ?) = ?"

    def _sql(self, text: str) -> str:
        return text

    def _status_in(self, statuses: list[str]) -> tuple[str, list[Any]]:
        return f"status IN ({', '.join('?' * len(statuses))})", statuses

    def _keyset(self, key: str, cmp: str, at: int, pk: int) -> tuple[str, list[Any]]:
        return f"({key} {cmp} ? OR ({key} = ? AND pk {cmp} ?))", [at, at, pk]

    def _notify(self, conn: Any) -> None:
        pass

    def _lease_row(self, conn: sqlite3.Connection, execution_id: str) -> tuple[Any, ...]:
        row = self._row(conn, execution_id, "pk, status, lease_owner, lease_expires")
        return (*row, _now_ms())

    def _start_ops(self, conn: sqlite3.Connection, pk: int) -> str | None:
        first = conn.execute(
            "SELECT ops FROM journal WHERE key = ?", ((pk << _SEQ_BITS) | 1,)
        ).fetchone()
        return first[0] if first else None

    def _clear_rewritten_ops(self, conn: sqlite3.Connection, pk: int) -> None:
        lo = pk << _SEQ_BITS
        conn.execute(
            "UPDATE journal SET ops = NULL WHERE key > ? AND key < ?",
            (lo | 1, lo + (1 << _SEQ_BITS)),
        )

    def _drop_callbacks_except(self, conn: sqlite3.Connection, pk: int, kept_ids: set[str]) -> None:
        for callback_id, op_id in conn.execute(
            "SELECT callback_id, op_id FROM callbacks WHERE execution = ?", (pk,)
        ).fetchall():
            if op_id not in kept_ids:
                conn.execute("DELETE FROM callbacks WHERE callback_id = ?", (callback_id,))

    def _delete_rows(self, conn: sqlite3.Connection, pks: list[int]) -> None:
        for pk in pks:
            lo = pk << _SEQ_BITS
            conn.execute(
                "DELETE FROM journal WHERE key > ? AND key < ?", (lo, lo + (1 << _SEQ_BITS))
            )
            conn.execute("DELETE FROM callbacks WHERE execution = ?", (pk,))
            conn.execute("DELETE FROM executions WHERE pk = ?", (pk,))  # logs: trigger

    def _read_logs(self, pk: int, after: int, limit: int | None, level: int) -> LogPage:
        try:
            return read_logs(self._conn, pk, after=after, limit=limit, level=level)
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None


def _version_filter(code_version: str | None) -> tuple[str, tuple[Any, ...]]:
    """An ``AND`` clause keeping executions of one code version (none: all of them)."""
    if code_version is None:
        return "", ()
    return "AND code_version = ? ", (code_version,)
