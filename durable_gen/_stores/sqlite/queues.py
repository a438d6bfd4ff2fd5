"""Queues on the SQLite store: their table, admission at lease time, and what is due.

An execution started onto a queue (``create(queue=...)``) is admitted when a worker
takes its lease (:func:`admit`, in ``acquire``'s write transaction: two workers
cannot both take the last slot) if its partition (the whole queue when it is not
partitioned) has room: fewer than ``concurrency`` of its executions hold a live
lease, fewer than ``worker_concurrency`` of them are held by this worker process,
and, for a first admission, none was first admitted in the last
``rate_period_ms / rate_limit`` (starts are spaced evenly, so any
window of ``rate_period_ms`` holds at most ``rate_limit`` of them). A queue
counts an execution while it advances (holds a lease), not while it sleeps in a
Wait, waits for a callback or a retry: its lease is let go then. A lease of a
worker that died counts until it expires or is taken over.

:func:`due_queued` proposes, per partition, at most as many due executions as
there is room for (already admitted ones first, then by priority, higher first,
then oldest first), and at most one first start of a rate-limited partition per
spacing interval, so workers do not spin on executions that would be refused."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from ..._core.contract import LIVE_STATUSES
from ..._core.errors import ExecutionConflictError, ValidationError
from ..queues import DuplicateExecutionError, QueueFullError, QueueRow, QueueStats
from .journal import _Journal
from .schema import _now_ms

_ROW_COLUMNS = "name, concurrency, worker_concurrency, rate_limit, rate_period_ms, partitioned"
_LIVE = "('RUNNING', 'PAUSING', 'PAUSED')"
assert set(_LIVE.strip("()").replace("'", "").split(", ")) == set(LIVE_STATUSES)


def _row(r: tuple[Any, ...]) -> QueueRow:
    return QueueRow(
        name=r[0],
        concurrency=r[1],
        worker_concurrency=r[2],
        rate_limit=r[3],
        rate_period_ms=r[4],
        partitioned=bool(r[5]),
    )


def process_of(owner: str) -> str:
    """The part of a lease owner (``host:pid:start-token:random``) that names its process."""
    return owner.rsplit(":", 1)[0] + ":"


#: the least time between two first admissions of one partition of the ``queues`` row
#: aliased ``q``, in ms
_SPACING = "(q.rate_period_ms * 1.0 / q.rate_limit)"


def read_queue(conn: sqlite3.Connection, name: str) -> QueueRow | None:
    r = conn.execute(f"SELECT {_ROW_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
    return None if r is None else _row(r)


def _names(conn: sqlite3.Connection) -> str:
    names = [r[0] for r in conn.execute("SELECT name FROM queues ORDER BY name LIMIT 20")]
    return ", ".join(repr(n) for n in names) or "none"


def check_start(
    conn: sqlite3.Connection,
    queue: str | None,
    partition: str | None,
    dedup_id: str | None,
    priority: int,
) -> None:
    """Refuse a start onto ``queue`` that its declaration does not allow, or whose
    ``dedup_id`` a live execution of the queue holds (in ``create``'s transaction)."""
    if queue is None:
        if partition is not None or dedup_id is not None or priority != 0:
            what = "a partition" if partition is not None else "a dedup id"
            what = "a priority" if partition is None and dedup_id is None else what
            raise ValidationError(f"{what} needs a queue: start it with queue=NAME (--queue NAME)")
        return
    q = read_queue(conn, queue)
    if q is None:
        raise ValidationError(
            f"no queue named {queue!r:.80} (queues: {_names(conn)}); declare it first "
            "(engine.add_queue(Queue(...)) or durable-gen queue add)"
        )
    if q.partitioned and partition is None:
        raise ValidationError(
            f"queue {queue!r} is partitioned: give the start a partition key (--partition K)"
        )
    if not q.partitioned and partition is not None:
        raise ValidationError(
            f"queue {queue!r} is not partitioned, got partition {partition!r:.80}; "
            "leave it out, or declare the queue with partitioned=True (--partitioned)"
        )
    if dedup_id is not None:
        r = conn.execute(
            f"SELECT id FROM executions WHERE queue = ? AND dedup_id = ? AND status IN {_LIVE}",
            (queue, dedup_id),
        ).fetchone()
        if r is not None:
            raise DuplicateExecutionError(queue, dedup_id, r[0])


def admit(conn: sqlite3.Connection, pk: int, execution_id: str, owner: str, real: int) -> bool:
    """Refuse (:class:`QueueFullError`) the lease of a queued execution whose partition
    has no room; True when this is its first admission (``first_admitted_at`` to set)."""
    row = conn.execute(
        "SELECT queue, partition_key, first_admitted_at FROM executions WHERE pk = ?", (pk,)
    ).fetchone()
    if row is None or row[0] is None:
        return False
    queue, partition, first = row
    q = read_queue(conn, queue)
    if q is None:  # deleted while it was queued (``delete_queue`` refuses that): no rule
        return first is None
    where = "queue = ? AND partition_key IS ? AND lease_owner IS NOT NULL AND lease_expires > ?"
    args = (queue, partition, real)
    part = "" if partition is None else f" (partition {partition!r:.60})"
    if q.concurrency is not None:
        (n,) = conn.execute(
            f"SELECT COUNT(*) FROM executions WHERE {where} AND pk != ?", (*args, pk)
        ).fetchone()
        if n >= q.concurrency:
            raise QueueFullError(
                execution_id, queue, f"{n} of its {q.concurrency} slots{part} are taken"
            )
    if q.worker_concurrency is not None:
        prefix = process_of(owner)
        (n,) = conn.execute(
            f"SELECT COUNT(*) FROM executions WHERE {where} AND pk != ? "
            "AND substr(lease_owner, 1, ?) = ?",
            (*args, pk, len(prefix), prefix),
        ).fetchone()
        if n >= q.worker_concurrency:
            raise QueueFullError(
                execution_id,
                queue,
                f"this worker process advances {n} of its {q.worker_concurrency}{part}",
            )
    if first is not None:
        return False
    if q.rate_limit is not None and q.rate_period_ms is not None:
        gap = q.rate_period_ms / q.rate_limit
        last = _last_start(conn, queue, partition)
        if last is not None and real - last < gap:
            raise QueueFullError(
                execution_id,
                queue,
                f"its last start{part} was {real - last} ms ago; its rate limit of "
                f"{q.rate_limit} per {q.rate_period_ms / 1000:g} s spaces starts "
                f"{gap:g} ms apart",
            )
    return True


def due_queued(conn: sqlite3.Connection, now: int, real: int, owner: str, limit: int) -> list[str]:
    """Due queued executions that their partitions have room for now (see the module)."""
    queues = {
        q.name: q for q in (_row(r) for r in conn.execute(f"SELECT {_ROW_COLUMNS} FROM queues"))
    }
    if not queues:
        return []
    prefix = process_of(owner)
    leased: dict[tuple[str, str | None], tuple[int, int]] = {}
    for queue, partition, n, mine in conn.execute(
        "SELECT queue, partition_key, COUNT(*), SUM(substr(lease_owner, 1, ?) = ?) "
        "FROM executions WHERE queue IS NOT NULL AND lease_owner IS NOT NULL "
        "AND lease_expires > ? GROUP BY queue, partition_key",
        (len(prefix), prefix, real),
    ):
        leased[(queue, partition)] = (n, mine or 0)
    # (every queued execution's queue is declared: create refuses an unknown queue and
    # delete_queue one with live executions)
    # per partition, only as many rows as it has slots (SQLite's top-k sort over the
    # executions_queued index): a deep queue costs no more to look at than a shallow one
    due = (
        "SELECT id, first_admitted_at FROM executions WHERE queue = ? AND partition_key IS ? "
        "AND status = 'RUNNING' AND wake_at IS NOT NULL AND wake_at <= ? "
        "AND (lease_owner IS NULL OR lease_expires <= ?) "
        "ORDER BY first_admitted_at IS NULL, priority DESC, wake_at, pk LIMIT ?"
    )
    out: list[tuple[bool, int, str]] = []  # (not yet admitted, position, id)
    for name in sorted(queues):
        q = queues[name]
        parts: list[str | None] = [None]
        if q.partitioned:
            parts = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT partition_key FROM executions WHERE queue = ? "
                    "AND status = 'RUNNING' AND wake_at <= ? ORDER BY partition_key",
                    (name, now),
                )
            ]
        for partition in parts:
            key = (name, partition)
            n, mine = leased.get(key, (0, 0))
            slots = limit if q.concurrency is None else min(limit, q.concurrency - n)
            if q.worker_concurrency is not None:
                slots = min(slots, q.worker_concurrency - mine)
            if slots <= 0:
                continue
            starts = limit
            if q.rate_limit is not None and q.rate_period_ms is not None:
                # one start per spacing interval: none if it started one within it
                last = _last_start(conn, name, partition)
                gap = q.rate_period_ms / q.rate_limit
                starts = 0 if last is not None and real - last < gap else 1
            for execution_id, first in conn.execute(due, (name, partition, now, real, slots)):
                if first is None:
                    if starts <= 0:
                        break  # the rest are not admitted either
                    starts -= 1
                out.append((first is None, len(out), execution_id))
    # admitted ones first, then each partition's order (priority, age)
    return [execution_id for _, _, execution_id in sorted(out)[:limit]]


def _last_start(conn: sqlite3.Connection, queue: str, partition: str | None) -> int | None:
    """The latest first admission of a partition (the executions_queue_starts index)."""
    (last,) = conn.execute(
        "SELECT MAX(first_admitted_at) FROM executions WHERE queue = ? "
        "AND partition_key IS ? AND first_admitted_at IS NOT NULL",
        (queue, partition),
    ).fetchone()
    return None if last is None else int(last)


def next_room(conn: sqlite3.Connection, real: int) -> int | None:
    """When the spacing of a rate-limited partition that started one within it next
    lets a start through, or None."""
    rows = conn.execute(
        f"SELECT name, partitioned, {_SPACING} FROM queues AS q WHERE rate_limit IS NOT NULL"
    ).fetchall()
    soonest: float | None = None
    for name, partitioned, gap in rows:
        if partitioned:
            lasts = [
                r[0]
                for r in conn.execute(
                    "SELECT MAX(first_admitted_at) FROM executions WHERE queue = ? "
                    "AND first_admitted_at > ? GROUP BY partition_key",
                    (name, real - gap),
                )
            ]
        else:
            lasts = [_last_start(conn, name, None)]
        for last in lasts:
            if last is not None and last + gap > real:
                soonest = last + gap if soonest is None else min(soonest, last + gap)
    return None if soonest is None else math.ceil(soonest)


class _Queues(_Journal):
    """Declaring, listing and deleting queues."""

    def put_queue(self, queue: QueueRow) -> bool:
        """Record ``queue``'s limits (a new queue, or new limits of one); True if new.
        Executions already on it keep their place and follow the new limits."""
        now = _now_ms()
        with self._lock, self._tx() as conn:
            old = read_queue(conn, queue.name)
            if old is not None and old.partitioned != queue.partitioned:
                (n,) = conn.execute(
                    f"SELECT COUNT(*) FROM executions WHERE queue = ? AND status IN {_LIVE}",
                    (queue.name,),
                ).fetchone()
                if n:
                    raise ExecutionConflictError(
                        f"queue {queue.name!r} has {n} queued or running executions: it "
                        "cannot become partitioned or stop being so until they end"
                    )
            conn.execute(
                "INSERT INTO queues (name, concurrency, worker_concurrency, rate_limit, "
                "rate_period_ms, partitioned, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "concurrency = excluded.concurrency, "
                "worker_concurrency = excluded.worker_concurrency, "
                "rate_limit = excluded.rate_limit, rate_period_ms = excluded.rate_period_ms, "
                "partitioned = excluded.partitioned, updated_at = excluded.updated_at",
                (
                    queue.name,
                    queue.concurrency,
                    queue.worker_concurrency,
                    queue.rate_limit,
                    queue.rate_period_ms,
                    int(queue.partitioned),
                    now,
                    now,
                ),
            )
        return old is None

    def queue(self, name: str) -> QueueRow | None:
        """The queue named ``name``, or None."""
        with self._lock:
            return read_queue(self._conn, name)

    def queue_stats(self) -> list[QueueStats]:
        """Every queue with its load now, by name."""
        real = _now_ms()
        with self._lock:
            rows = [
                _row(r) for r in self._query(f"SELECT {_ROW_COLUMNS} FROM queues ORDER BY name")
            ]
            counts = {
                r[0]: r[1:]
                for r in self._query(
                    "SELECT queue, "
                    "SUM(status = 'RUNNING' AND first_admitted_at IS NULL), "
                    "SUM(lease_owner IS NOT NULL AND lease_expires > ?), "
                    "SUM(first_admitted_at IS NOT NULL "
                    "AND (lease_owner IS NULL OR lease_expires <= ?)) "
                    f"FROM executions WHERE queue IS NOT NULL AND status IN {_LIVE} "
                    "GROUP BY queue",
                    (real, real),
                )
            }
            starts = {
                r[0]: r[1]
                for r in self._query(
                    "SELECT e.queue, COUNT(*) FROM executions AS e JOIN queues AS q "
                    "ON q.name = e.queue WHERE e.first_admitted_at > ? - "
                    "COALESCE(q.rate_period_ms, 60000) GROUP BY e.queue",
                    (real,),
                )
            }
        out = []
        for q in rows:
            depth, running, sleeping = counts.get(q.name, (0, 0, 0))
            out.append(
                QueueStats(
                    queue=q,
                    depth=depth or 0,
                    running=running or 0,
                    sleeping=sleeping or 0,
                    started=starts.get(q.name, 0),
                )
            )
        return out

    def delete_queue(self, name: str) -> None:
        """Delete a queue none of whose executions is queued or running (they keep
        its name, for history); unknown: :class:`ValidationError`."""
        with self._lock, self._tx() as conn:
            if read_queue(conn, name) is None:
                raise ValidationError(f"no queue named {name!r:.80} (queues: {_names(conn)})")
            (n,) = conn.execute(
                f"SELECT COUNT(*) FROM executions WHERE queue = ? AND status IN {_LIVE}",
                (name,),
            ).fetchone()
            if n:
                raise ExecutionConflictError(
                    f"queue {name!r} has {n} queued or running executions; stop them or "
                    "let them end before deleting it"
                )
            conn.execute("DELETE FROM queues WHERE name = ?", (name,))
