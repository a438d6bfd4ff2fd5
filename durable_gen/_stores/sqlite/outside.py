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
from .schema import _INFO_COLUMNS, _SEQ_BITS, _dumps, _info, _loads, _no_callback, _now_ms

#: What redrive accepts: executions that ended without succeeding.
REDRIVABLE = frozenset({"FAILED", "STOPPED", "TIMED_OUT"})


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
    ) -> list[ExecutionInfo]:
        """Executions, newest first, filtered: by status (one, or any of ``statuses``),
        target, code version, id prefix, and start time (epoch ms, inclusive).
        ``after``: the :func:`page_marker` of the last execution of the previous page."""
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
        if after is not None:
            created, pk = _parse_marker(after)
            where.append("(created_at < ? OR (created_at = ? AND pk < ?))")
            args += [created, created, pk]
        sql = f"SELECT {_INFO_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, pk DESC LIMIT ?"
        with self._lock:
            rows = self._query(sql, (*args, limit))
        return [_info(r) for r in rows]

    def page_marker(self, info: ExecutionInfo) -> str:
        """The marker that lists the executions after ``info`` (one :meth:`executions`
        returned): opaque to callers, stable while executions are added."""
        with self._lock:
            rows = self._query("SELECT created_at, pk FROM executions WHERE id = ?", (info.id,))
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {info.id!r}")
        return f"{rows[0][0]}.{rows[0][1]}"

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of RUNNING executions whose wake time has come and that a worker may take
        (with ``code_version``, only those that started on it)."""
        real = _now_ms()
        pinned, args = _version_filter(code_version)
        with self._lock:
            rows = self._query(
                "SELECT id, lease_owner, lease_expires FROM executions "
                "WHERE status = 'RUNNING' AND wake_at IS NOT NULL AND wake_at <= ? "
                f"{pinned}ORDER BY wake_at LIMIT ?",
                (now, *args, limit),
            )
        return [
            r[0]
            for r in rows
            if r[1] is None or r[1] == self.owner or r[2] <= real or self.owner_is_dead(r[1])
        ]

    def next_wake(self, *, code_version: str | None = None) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds, or None
        (with ``code_version``, of those that started on it)."""
        pinned, args = _version_filter(code_version)
        with self._lock:
            rows = self._query(
                "SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND (lease_owner IS NULL OR lease_expires <= ?) {pinned}",
                (_now_ms(), *args),
            )
        return rows[0][0] if rows else None

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
            if status not in LIVE_STATUSES:
                raise ExecutionConflictError(
                    f"execution {execution_id!r} of callback {callback_id!r:.80} already "
                    f"ended {status}"
                )
            op = Operation.from_dict(_loads(body))
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
            conn.execute(
                "UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL, "
                "ended_at = NULL, wake_at = ?, updated_at = ?, invocation_id = NULL, "
                "invocation_started = NULL WHERE pk = ?",
                (now, now, pk),
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


def _parse_marker(marker: str) -> tuple[int, int]:
    created, _, pk = marker.partition(".")
    try:
        return int(created), int(pk)
    except ValueError:
        raise ValidationError(
            f"{marker!r:.60} is not a page marker of this database: pass the one the "
            "previous page printed (--next-token) or leave it out"
        ) from None
