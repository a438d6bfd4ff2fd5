"""What the outside world reads and writes: listings, due work, callbacks, invokes, stop,
pause, resume and delete. None of it needs a lease; writes bump the execution's
version, so its lease holder rereads the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import attrs

from ..._core import repair as _repair
from ..._core import service as _service
from ..._core.contract import (
    LIVE_STATUSES,
    ExecutionInfo,
)
from ..._core.errors import (
    CallbackClosedError,
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ValidationError,
)
from ..._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from .journal import _STARTED
from .leases import _Leases
from .queues import due_queued, next_room
from .schema import (
    _INFO_COLUMNS,
    _SEQ_BITS,
    _dumps,
    _info,
    _loads,
    _no_callback,
    _now_ms,
    _store_error,
)

#: What redrive accepts: executions that ended without succeeding.
REDRIVABLE = frozenset({"FAILED", "STOPPED", "TIMED_OUT"})
#: How :meth:`_Outside.executions` orders executions: by start, or by duration.
ORDERS = ("newest", "oldest", "longest", "shortest")


class _Outside(_Leases):
    """Queries, and the writes of processes that do not hold the lease."""

    def info(self, execution_id: str) -> ExecutionInfo:
        """The execution's row; StoreError when there is none."""
        with self._lock:
            rows = self._query(
                f"SELECT {_INFO_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return _info(rows[0])

    def executions(
        self,
        *,
        status: str | None = None,
        limit: int = 100,
        statuses: Iterable[str] = (),
        target: str | None = None,
        code_version: str | None = None,
        name_prefix: str | None = None,
        started_after: int | None = None,
        started_before: int | None = None,
        after: str | None = None,
        order: str = "newest",
    ) -> list[ExecutionInfo]:
        """Executions, newest first, filtered: by status (one, or any of ``statuses``),
        target, code version, id prefix, and start time (epoch ms, inclusive).
        ``after``: the :func:`page_marker` of the last execution of the previous page.
        ``order`` (one of :data:`ORDERS`): ``newest`` or ``oldest`` first by start
        (keyset pages on an index), or ``longest``/``shortest`` first by duration,
        which lists ended executions only (a scan: no index holds durations)."""
        key, down = _order(order)
        where: list[str] = []
        args: list[Any] = []
        wanted = {*statuses, *((status,) if status is not None else ())}
        if wanted:
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args += sorted(wanted)
        for column, value in (("target", target), ("code_version", code_version)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if name_prefix:
            where.append("substr(id, 1, ?) = ?")
            args += [len(name_prefix), name_prefix]
        if started_after is not None:
            where.append("created_at >= ?")
            args.append(started_after)
        if started_before is not None:
            where.append("created_at <= ?")
            args.append(started_before)
        if key != "created_at":
            where.append("ended_at IS NOT NULL")
        if after is not None:
            at, pk = _parse_marker(after, duration=key != "created_at")
            cmp = "<" if down else ">"
            where.append(f"({key} {cmp} ? OR ({key} = ? AND pk {cmp} ?))")
            args += [at, at, pk]
        sql = f"SELECT {_INFO_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        way = "DESC" if down else "ASC"
        sql += f" ORDER BY {key} {way}, pk {way} LIMIT ?"
        with self._lock:
            rows = self._query(sql, (*args, limit))
        return [_info(r) for r in rows]

    def page_marker(self, info: ExecutionInfo, *, order: str = "newest") -> str:
        """The marker that lists the executions after ``info`` (one :meth:`executions`
        returned) in ``order``: opaque to callers, stable while executions are added.
        One marker serves ``newest`` and ``oldest`` (read the other way, it lists the
        executions before ``info``); one other, ``longest`` and ``shortest``."""
        key, _ = _order(order)
        with self._lock:
            rows = self._query(f"SELECT {key}, pk FROM executions WHERE id = ?", (info.id,))
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {info.id!r}")
        if rows[0][0] is None:
            raise ValidationError(f"execution {info.id!r} has not ended: it has no duration")
        prefix = "" if key == "created_at" else "d"
        return f"{prefix}{rows[0][0]}.{rows[0][1]}"

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of live executions past their deadline (first: any worker times them out,
        whoever holds their lease and whatever code version they run), then of RUNNING
        executions whose wake time has come and that a worker may take (with
        ``code_version``, only those that started on it). Executions on a queue come
        last, only as many as their partitions have room for now
        (``_stores.sqlite.queues``), in their queue's order."""
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
            queued = due_queued(self._conn, now, real, self.owner, limit)
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

    def overdue(self, now: int, *, limit: int = 100) -> list[str]:
        """Ids of live (running, pausing or paused) executions whose deadline is at or
        before ``now``, earliest deadline first: :meth:`time_out` ends them."""
        with self._lock:
            rows = self._query(
                "SELECT id FROM executions WHERE status IN ('RUNNING', 'PAUSING', 'PAUSED') "
                "AND deadline IS NOT NULL AND deadline <= ? ORDER BY deadline LIMIT ?",
                (now, limit),
            )
        return [r[0] for r in rows]

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
            room = next_room(self._conn, real)
            deadlines = self._query(
                "SELECT MIN(deadline) FROM executions WHERE status IN "
                "('RUNNING', 'PAUSING', 'PAUSED') AND deadline IS NOT NULL"
            )
        found = (rows[0][0] if rows else None, queued[0][0], room, deadlines[0][0])
        wakes = [w for w in found if w is not None]
        return min(wakes) if wakes else None

    def time_out(self, execution_id: str, now: int) -> bool:
        """End a live execution whose deadline has come (at or before ``now``) as
        TIMED_OUT, in one transaction: its ExecutionTimedOut event (Lambda's error,
        "Execution timed out after N seconds."), its open waits cancelled and its open
        callbacks closed (completing one afterwards raises :class:`CallbackClosedError`),
        the invoke that started it completed in its parent (``ChainedInvoke.Timeout``).
        Needs no lease: the holder's next write is fenced off (a step in flight is not
        interrupted; its result is not recorded). False, writing nothing, when the
        execution already ended or its deadline has not come."""
        with self._lock:
            with self._tx() as conn:
                pk, status, deadline, created, timeout = self._row(
                    conn, execution_id, "pk, status, deadline, created_at, timeout_ms"
                )
                if status not in LIVE_STATUSES or deadline is None or deadline > now:
                    return False
                if timeout is None:  # a caller's deadline: the time it gave from the start
                    timeout = deadline - created
                self._cache.pop(execution_id, None)
                ops = self._cached(execution_id).ops
                changed, events, error = _service.time_out_execution(
                    ops, execution_id, now, timeout
                )
                conn.execute(
                    "UPDATE executions SET status = 'TIMED_OUT', error = ?, ended_at = ?, "
                    "updated_at = ?, wake_at = NULL, invocation_id = NULL, "
                    "invocation_started = NULL, version = version + 1 WHERE pk = ?",
                    (_dumps(error.to_dict()), now, now, pk),
                )
                self._append(conn, pk, [op.to_dict() for op in changed.values()], events)
                for op in changed.values():
                    if op.callback_id is not None:
                        conn.execute(
                            "UPDATE callbacks SET body = ? WHERE callback_id = ?",
                            (_dumps(op.to_dict()), op.callback_id),
                        )
                self._complete_parent(
                    conn,
                    pk,
                    "TIMED_OUT",
                    now,
                    None,
                    _service.chained_invoke_timeout_error(timeout),
                )
            self._cache.pop(execution_id, None)
        return True

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
            with self._tx() as conn:
                rows = list(
                    conn.execute(
                        "SELECT pk, id FROM executions WHERE retention_ms IS NOT NULL "
                        "AND ended_at IS NOT NULL AND ended_at + retention_ms <= ? "
                        "ORDER BY ended_at + retention_ms LIMIT ?",
                        (now, limit),
                    )
                )
                if default_retention_ms is not None and len(rows) < limit:
                    rows += conn.execute(
                        "SELECT pk, id FROM executions WHERE retention_ms IS NULL "
                        "AND ended_at IS NOT NULL AND ended_at <= ? ORDER BY ended_at LIMIT ?",
                        (now - default_retention_ms, limit - len(rows)),
                    ).fetchall()
                for pk, _ in rows:
                    lo = pk << _SEQ_BITS
                    conn.execute(
                        "DELETE FROM journal WHERE key > ? AND key < ?",
                        (lo, lo + (1 << _SEQ_BITS)),
                    )
                    conn.execute("DELETE FROM callbacks WHERE execution = ?", (pk,))
                    conn.execute("DELETE FROM executions WHERE pk = ?", (pk,))  # logs: trigger
            for _, execution_id in rows:
                self._cache.pop(execution_id, None)
            if rows:
                # executescript steps the pragma to its end (execute() would free one
                # page: the statement returns no rows); its own short write transaction
                try:
                    self._conn.executescript(f"PRAGMA incremental_vacuum({int(vacuum_pages)})")
                except sqlite3.Error as e:
                    raise _store_error(self.path, e) from None
        return len(rows)

    def changed_elsewhere(self, execution_id: str) -> bool:
        """True when another process wrote to the execution since this store last looked."""
        with self._lock:
            c = self._cache.get(execution_id)
            _, version = self._pk(execution_id)
            return c is None or c.stale or c.version != version

    def callback_execution(self, callback_id: str) -> str:
        """The execution a callback id belongs to."""
        with self._lock:
            rows = self._query(
                "SELECT e.id FROM callbacks c JOIN executions e ON e.pk = c.execution "
                "WHERE c.callback_id = ?",
                (callback_id,),
            )
        if not rows:
            raise ExecutionNotFoundError(f"no callback with id {callback_id!r:.80}")
        return str(rows[0][0])

    def complete_callback(
        self,
        callback_id: str,
        action: str,
        now: int,
        *,
        payload: str | None = None,
        error: ErrorObject | None = None,
        execution_id: str | None = None,
    ) -> str:
        """Succeed, fail or heartbeat a callback (from any process); returns its execution id.

        Needs no lease: the completion is appended to the journal and the execution
        is made due, so its holder (or a worker) re-invokes it. With
        ``execution_id``, a callback of any other execution is refused as unknown.
        """
        with self._lock, self._tx() as conn:
            row = conn.execute(
                "SELECT c.execution, c.body, e.id, e.status FROM callbacks c "
                "JOIN executions e ON e.pk = c.execution WHERE c.callback_id = ?",
                (callback_id,),
            ).fetchone()
            if row is None or (execution_id is not None and row[2] != execution_id):
                raise ExecutionNotFoundError(_no_callback(callback_id, execution_id))
            pk, body, execution_id, status = row
            op = Operation.from_dict(_loads(body))
            if status not in LIVE_STATUSES:
                closed = CallbackClosedError if status == "TIMED_OUT" else ExecutionConflictError
                raise closed(
                    f"execution {execution_id!r} of callback {callback_id!r:.80} already "
                    f"ended {status}"
                    + (
                        f"; the callback was closed ({op.status.value})"
                        if op.status is not _STARTED
                        else ""
                    )
                )
            new, events = _service.complete_callback(op, action, now, payload=payload, error=error)
            self._append(conn, pk, [new.to_dict()], events)
            conn.execute(
                "UPDATE callbacks SET body = ? WHERE callback_id = ?",
                (_dumps(new.to_dict()), callback_id),
            )
            if action != "heartbeat":
                conn.execute(
                    "UPDATE executions SET wake_at = ?, updated_at = ? WHERE pk = ?",
                    (now, now, pk),
                )
        return str(execution_id)

    def stop(self, execution_id: str, now: int, *, error: ErrorObject | None = None) -> None:
        """End a RUNNING execution as STOPPED; its lease holder can write no more."""
        error = error or ErrorObject(type="ExecutionStopped", message="stopped by request")
        with self._lock:
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT pk, status FROM executions WHERE id = ?", (execution_id,)
                ).fetchone()
                if row is None:
                    raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
                pk, status = row
                if status not in LIVE_STATUSES:
                    raise ExecutionConflictError(
                        f"execution {execution_id!r} already ended {status}"
                    )
                conn.execute(
                    "UPDATE executions SET status = 'STOPPED', error = ?, ended_at = ?, "
                    "updated_at = ?, wake_at = NULL, version = version + 1 WHERE pk = ?",
                    (_dumps(error.to_dict()), now, now, pk),
                )
                first = conn.execute(
                    "SELECT ops FROM journal WHERE key = ?", ((pk << _SEQ_BITS) | 1,)
                ).fetchone()
                ops: list[dict[str, Any]] = []
                for d in _loads(first[0]) if first and first[0] else ():
                    if d.get("Id") == execution_id:
                        op = attrs.evolve(
                            Operation.from_dict(d),
                            status=OperationStatus.STOPPED,
                            end_timestamp=now,
                        )
                        ops.append(op.to_dict())
                event = _service.execution_finished_event(
                    execution_id, "STOPPED", now, result=None, error=error
                )
                self._append(conn, pk, ops, [event])
                self._complete_parent(conn, pk, "STOPPED", now, None, error)
            self._cache.pop(execution_id, None)

    def pause(self, execution_id: str, now: int, *, reason: str | None = None) -> str:
        """Pause a running execution (Lambda's PauseDurableExecution); its new status.

        Nothing advances a paused execution; callbacks may still be completed and
        invoked executions may still end (they are applied when it resumes). When a
        worker is advancing it, the status is PAUSING until that worker's next
        checkpoint (which is recorded), then PAUSED; otherwise PAUSED at once.
        Pausing a paused execution changes nothing.
        """
        with self._lock, self._tx() as conn:
            pk, status, owner, expires = self._row(
                conn, execution_id, "pk, status, lease_owner, lease_expires"
            )
            if status in ("PAUSING", "PAUSED"):
                return str(status)
            if status != "RUNNING":
                raise ExecutionConflictError(
                    f"execution {execution_id!r} already ended {status}; only a running "
                    "execution can be paused"
                )
            held = owner is not None and expires > _now_ms() and not self.owner_is_dead(owner)
            status = "PAUSING" if held else "PAUSED"
            conn.execute(
                "UPDATE executions SET status = ?, updated_at = ? WHERE pk = ?", (status, now, pk)
            )
            details: dict[str, Any] = {"PauseRequestTimestamp": now}
            if reason:
                details["Reason"] = reason
            event = {
                "EventType": "ExecutionPaused",
                "EventTimestamp": now,
                "Id": execution_id,
                "ExecutionPausedDetails": details,
            }
            self._append(conn, pk, [], [event])
        self._cache.pop(execution_id, None)
        return str(status)

    def resume_paused(self, execution_id: str, now: int, *, reason: str | None = None) -> None:
        """Resume a paused execution (Lambda's ResumeDurableExecution): due at once."""
        with self._lock, self._tx() as conn:
            pk, status = self._row(conn, execution_id, "pk, status")
            if status not in ("PAUSING", "PAUSED"):
                raise ExecutionConflictError(
                    f"execution {execution_id!r} is {status}, not paused; only a paused "
                    "execution can be resumed"
                )
            conn.execute(
                "UPDATE executions SET status = 'RUNNING', wake_at = ?, updated_at = ? "
                "WHERE pk = ?",
                (now, now, pk),
            )
            details: dict[str, Any] = {"ResumeRequestTimestamp": now}
            if reason:
                details["Reason"] = reason
            event = {
                "EventType": "ExecutionResumed",
                "EventTimestamp": now,
                "Id": execution_id,
                "ExecutionResumedDetails": details,
            }
            self._append(conn, pk, [], [event])
        self._cache.pop(execution_id, None)

    def delete(self, execution_id: str, *, force: bool = False) -> None:
        """Delete an ended execution with its log, history and callbacks (Lambda's
        DeleteDurableExecution). A running or paused one only with ``force`` (its
        worker, if any, is fenced off: it can write nothing more)."""
        with self._lock, self._tx() as conn:
            pk, status = self._row(conn, execution_id, "pk, status")
            if status in LIVE_STATUSES and not force:
                raise ExecutionConflictError(
                    f"execution {execution_id!r} is {status}; only an ended execution can "
                    "be deleted: stop it first (or force the deletion)"
                )
            lo = pk << _SEQ_BITS
            conn.execute(
                "DELETE FROM journal WHERE key > ? AND key < ?", (lo, lo + (1 << _SEQ_BITS))
            )
            conn.execute("DELETE FROM callbacks WHERE execution = ?", (pk,))
            conn.execute("DELETE FROM executions WHERE pk = ?", (pk,))
        self._cache.pop(execution_id, None)

    def redrive(self, execution_id: str, now: int) -> list[str]:
        """Run a FAILED, STOPPED or TIMED_OUT execution again from its failures: the
        operations that failed run again, recorded successes before them are kept
        (see :mod:`durable_gen._core.repair`). RUNNING and due at once; an
        ExecutionRedriven event marks the moment in its history. Returns the ids of
        the operations that will run again (dropped from the log)."""
        with self._lock, self._tx() as conn:
            pk, status = self._row(conn, execution_id, "pk, status")
            if status not in REDRIVABLE:
                why = "is still " + status if status in LIVE_STATUSES else "succeeded"
                raise ExecutionConflictError(
                    f"execution {execution_id!r} {why}; only a FAILED, STOPPED or "
                    "TIMED_OUT execution can be redriven"
                    + (" (stop it first)" if status in LIVE_STATUSES else "")
                )
            self._cache.pop(execution_id, None)
            ops = list(self._cached(execution_id).ops.values())
            kept = _repair.redrive_operations(ops)
            kept_ids = {op.id for op in kept}
            lo = pk << _SEQ_BITS
            # the log keeps its history events; the operations' state is rewritten in
            # one new row (row 1 keeps the execution's start, as stop() reads it)
            conn.execute(
                "UPDATE journal SET ops = NULL WHERE key > ? AND key < ?",
                (lo | 1, lo + (1 << _SEQ_BITS)),
            )
            event = {
                "EventType": "ExecutionRedriven",
                "EventTimestamp": now,
                "Id": execution_id,
                "ExecutionRedrivenDetails": {"RedriveTimestamp": now},
            }
            self._append(conn, pk, [op.to_dict() for op in kept], [event])
            for callback_id, op_id in conn.execute(
                "SELECT callback_id, op_id FROM callbacks WHERE execution = ?", (pk,)
            ).fetchall():
                if op_id not in kept_ids:
                    conn.execute("DELETE FROM callbacks WHERE callback_id = ?", (callback_id,))
            # a timeout runs again from the redrive (an absolute deadline is dropped)
            conn.execute(
                "UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL, "
                "ended_at = NULL, wake_at = ?, updated_at = ?, invocation_id = NULL, "
                "invocation_started = NULL, deadline = ? + timeout_ms WHERE pk = ?",
                (now, now, now, pk),
            )
        self._cache.pop(execution_id, None)
        return [op.id for op in ops if op.id not in kept_ids]

    def _row(self, conn: sqlite3.Connection, execution_id: str, columns: str) -> tuple[Any, ...]:
        row = conn.execute(
            f"SELECT {columns} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return tuple(row)

    def running_invokes(self, execution_id: str) -> list[Operation]:
        """CHAINED_INVOKE operations started and not yet completed."""
        with self._lock:
            return [
                op
                for op in self._cached(execution_id).ops.values()
                if op.type is OperationType.CHAINED_INVOKE and op.status is _STARTED
            ]

    def complete_invoke(
        self,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        """Complete a chained invoke with the outcome of the execution it started."""
        with self._lock, self._tx() as conn:
            self._complete_invoke_in(conn, execution_id, op_id, status, now, result, error)


def _version_filter(code_version: str | None) -> tuple[str, tuple[Any, ...]]:
    """An ``AND`` clause keeping executions of one code version (none: all of them)."""
    if code_version is None:
        return "", ()
    return "AND code_version = ? ", (code_version,)


def _order(order: str) -> tuple[str, bool]:
    """The SQL key of an :meth:`_Outside.executions` order, and whether it descends."""
    if order not in ORDERS:
        raise ValidationError(f"order {order!r:.40} is not one of {', '.join(ORDERS)}")
    key = "created_at" if order in ("newest", "oldest") else "(ended_at - created_at)"
    return key, order in ("newest", "longest")


def _parse_marker(marker: str, *, duration: bool = False) -> tuple[int, int]:
    text = marker.removeprefix("d") if duration else marker
    value, _, pk = text.partition(".")
    try:
        if duration and text == marker:
            raise ValueError(marker)
        return int(value), int(pk)
    except ValueError:
        raise ValidationError(
            f"{marker!r:.60} is not a page marker of this database: pass the one the "
            "previous page printed (--next-token) or leave it out"
        ) from None
