"""Queues in a store's tables: declaring, listing and deleting them, refusing starts
they do not allow, admitting executions at lease time, and proposing what is due;
one implementation (:class:`QueueStore`) for the SQLite and the PostgreSQL stores,
each of which gives it its SQL dialect.

An execution started onto a queue (``create(queue=...)``) is admitted when a worker
takes its lease (:meth:`QueueStore._admit`, in ``acquire``'s write transaction: two
workers cannot both take the last slot) if its partition (the whole queue when it
is not partitioned) has room: fewer than ``concurrency`` of its executions hold a
live lease, fewer than ``worker_concurrency`` of them are held by this worker
process, and, for a first admission, none was first admitted in the last
``rate_period_ms / rate_limit`` (starts are spaced evenly, so any window of
``rate_period_ms`` holds at most ``rate_limit`` of them). A queue counts an
execution while it advances (holds a lease), not while it sleeps in a Wait, waits
for a callback or a retry: its lease is let go then. A lease of a worker that died
counts until it expires or is taken over.

Two workers admitting at the same moment:

- SQLite: ``acquire`` is one ``BEGIN IMMEDIATE`` transaction; the second worker
  waits for the file's write lock and then counts the first one's lease.
- PostgreSQL: transactions run side by side, and two of them counting the same
  partition's leases under READ COMMITTED would each see room for itself. So
  ``acquire`` first takes a transaction-scoped advisory lock of the partition
  (``pg_advisory_xact_lock``, keyed by :func:`partition_key`) before it counts: the
  admissions of one partition run one at a time, on any machine, and each counts
  the leases that the ones before it committed (the lock is let go at commit).
  Rather than locking the queue's row ``FOR UPDATE``: a partition has no row of its
  own, so that would serialize every partition of a queue; and the advisory lock
  holds no row, so it never waits behind ``put_queue`` or a reader's ``FOR SHARE``.
  The clock is read again once the lock is held (the server's, as for leases). A
  start with a dedup id likewise locks ``(queue, dedup id)`` before it looks for a
  live holder, and the unique index ``executions_dedup`` stands behind both stores.

:meth:`QueueStore._due_queued` proposes, per partition, at most as many due
executions as there is room for (already admitted ones first, then by priority,
higher first, then oldest first), and at most one first start of a rate-limited
partition per spacing interval, so workers do not spin on executions that would be
refused."""

from __future__ import annotations

import contextlib
import hashlib
import math
from typing import TYPE_CHECKING, Any, ClassVar

from .._core.contract import LIVE_STATUSES
from .._core.errors import ExecutionConflictError, ValidationError
from .queues import DuplicateExecutionError, QueueFullError, QueueRow, QueueStats
from .sqlite.schema import _now_ms

_ROW_COLUMNS = "name, concurrency, worker_concurrency, rate_limit, rate_period_ms, partitioned"
_LIVE = "('RUNNING', 'PAUSING', 'PAUSED')"
assert set(_LIVE.strip("()").replace("'", "").split(", ")) == set(LIVE_STATUSES)

#: the least time between two first admissions of one partition of the ``queues`` row
#: aliased ``q``, in ms
_SPACING = "(q.rate_period_ms * 1.0 / q.rate_limit)"


def _row(r: tuple[Any, ...]) -> QueueRow:
    return QueueRow(
        name=r[0],
        concurrency=r[1],
        worker_concurrency=r[2],
        rate_limit=r[3],
        rate_period_ms=r[4],
        partitioned=bool(r[5]),  # SQLite: 0 or 1
    )


def _count(condition: str) -> str:
    """How many rows of a group meet ``condition`` (0 or more on both databases)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def process_of(owner: str) -> str:
    """The part of a lease owner (``host:pid:start-token:random``) that names its process."""
    return owner.rsplit(":", 1)[0] + ":"


def partition_key(*parts: str | None) -> int:
    """A signed 32-bit key for ``parts`` (a queue and its partition, or a queue and a
    dedup id): the second key of a PostgreSQL advisory lock."""
    text = "\x00".join("\x01" if p is None else p for p in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=4, person=b"dg-queue").digest()
    return int.from_bytes(digest, "big", signed=True)


class QueueStore:
    """Declaring, listing and deleting queues; the checks of a start, admission at
    lease time and the due queued executions.

    A mixin placed after the store's journal class (whose ``_lock``, ``_tx``,
    ``_query`` and ``owner`` it uses), with the dialect the store gives it: the class
    attributes below, ``_sql`` and :meth:`_lock_partition`. Its SQL is written with
    ``?`` placeholders, which ``_sql`` turns into the driver's."""

    #: NULL-safe equality of ``partition_key`` and a value: ``IS`` on SQLite,
    #: ``IS NOT DISTINCT FROM`` on PostgreSQL
    _SAME: ClassVar[str]
    #: appended to a start's read of its queue's row ("" or " FOR SHARE": a queue
    #: being deleted waits for the start, then counts it)
    _QUEUE_SHARE: ClassVar[str]
    #: appended to the read of a queue's row that its change or deletion follows
    _QUEUE_LOCK: ClassVar[str]

    if TYPE_CHECKING:
        owner: str

        @property
        def _lock(self) -> contextlib.AbstractContextManager[Any]:
            raise NotImplementedError

        def _tx(self) -> contextlib.AbstractContextManager[Any]:
            raise NotImplementedError

        def _query(self, sql: str, args: Any = ()) -> list[Any]:
            raise NotImplementedError

        def _sql(self, text: str) -> str:
            raise NotImplementedError

    def _lock_partition(self, conn: Any, parts: tuple[str | None, ...], real: int) -> int:
        """Serialize, until ``conn``'s transaction ends, the admissions (or dedup
        checks) of ``parts``; the time now (``real`` where nothing waited)."""
        return real  # SQLite: the write transaction already holds the whole file

    # ------------------------------------------------------------------ rows

    def _q(self, conn: Any, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return conn.execute(self._sql(sql), args)

    def _read_queue(self, conn: Any, name: str, lock: str = "") -> QueueRow | None:
        r = self._q(conn, f"SELECT {_ROW_COLUMNS} FROM queues WHERE name = ?{lock}", (name,))
        r = r.fetchone()
        return None if r is None else _row(r)

    def _queue_names(self, conn: Any) -> str:
        names = [r[0] for r in self._q(conn, "SELECT name FROM queues ORDER BY name LIMIT 20")]
        return ", ".join(repr(n) for n in names) or "none"

    def _live_on(self, conn: Any, name: str) -> int:
        (n,) = self._q(
            conn,
            f"SELECT COUNT(*) FROM executions WHERE queue = ? AND status IN {_LIVE}",
            (name,),
        ).fetchone()
        return int(n)

    def _last_start(self, conn: Any, queue: str, partition: str | None) -> int | None:
        """The latest first admission of a partition (the executions_queue_starts index)."""
        (last,) = self._q(
            conn,
            "SELECT MAX(first_admitted_at) FROM executions WHERE queue = ? "
            f"AND partition_key {self._SAME} ? AND first_admitted_at IS NOT NULL",
            (queue, partition),
        ).fetchone()
        return None if last is None else int(last)

    # ------------------------------------------------------------------ starts, leases

    def _check_start(
        self,
        conn: Any,
        queue: str | None,
        partition: str | None,
        dedup_id: str | None,
        priority: int,
        real: int,
    ) -> None:
        """Refuse a start onto ``queue`` that its declaration does not allow, or whose
        ``dedup_id`` a live execution of the queue holds (in ``create``'s transaction)."""
        if queue is None:
            if partition is not None or dedup_id is not None or priority != 0:
                what = "a partition" if partition is not None else "a dedup id"
                what = "a priority" if partition is None and dedup_id is None else what
                raise ValidationError(
                    f"{what} needs a queue: start it with queue=NAME (--queue NAME)"
                )
            return
        q = self._read_queue(conn, queue, self._QUEUE_SHARE)
        if q is None:
            raise ValidationError(
                f"no queue named {queue!r:.80} (queues: {self._queue_names(conn)}); declare "
                "it first (engine.add_queue(Queue(...)) or durable-gen queue add)"
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
            self._lock_partition(conn, ("dedup", queue, dedup_id), real)
            r = self._q(
                conn,
                f"SELECT id FROM executions WHERE queue = ? AND dedup_id = ? AND status IN {_LIVE}",
                (queue, dedup_id),
            ).fetchone()
            if r is not None:
                raise DuplicateExecutionError(queue, dedup_id, r[0])

    def _admit(self, conn: Any, pk: int, execution_id: str, real: int) -> int | None:
        """Refuse (:class:`QueueFullError`) the lease of a queued execution whose
        partition has no room; the time of its first admission when this is it
        (``first_admitted_at`` to set), else None."""
        row = self._q(
            conn,
            "SELECT queue, partition_key, first_admitted_at FROM executions WHERE pk = ?",
            (pk,),
        ).fetchone()
        if row is None or row[0] is None:
            return None
        queue, partition, first = row
        q = self._read_queue(conn, queue)
        if q is None:  # deleted while it was queued (``delete_queue`` refuses that): no rule
            return real if first is None else None
        real = self._lock_partition(conn, ("admit", queue, partition), real)
        where = (
            f"queue = ? AND partition_key {self._SAME} ? AND lease_owner IS NOT NULL "
            "AND lease_expires > ?"
        )
        args = (queue, partition, real)
        part = "" if partition is None else f" (partition {partition!r:.60})"
        if q.concurrency is not None:
            (n,) = self._q(
                conn, f"SELECT COUNT(*) FROM executions WHERE {where} AND pk != ?", (*args, pk)
            ).fetchone()
            if n >= q.concurrency:
                raise QueueFullError(
                    execution_id, queue, f"{n} of its {q.concurrency} slots{part} are taken"
                )
        if q.worker_concurrency is not None:
            prefix = process_of(self.owner)
            (n,) = self._q(
                conn,
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
            return None
        if q.rate_limit is not None and q.rate_period_ms is not None:
            gap = q.rate_period_ms / q.rate_limit
            last = self._last_start(conn, queue, partition)
            if last is not None and real - last < gap:
                raise QueueFullError(
                    execution_id,
                    queue,
                    f"its last start{part} was {real - last} ms ago; its rate limit of "
                    f"{q.rate_limit} per {q.rate_period_ms / 1000:g} s spaces starts "
                    f"{gap:g} ms apart",
                )
        return real

    # ------------------------------------------------------------------ due work

    def _due_queued(self, conn: Any, now: int, real: int, limit: int) -> list[str]:
        """Due queued executions that their partitions have room for now (see the module)."""
        queues = {
            q.name: q
            for q in (_row(r) for r in self._q(conn, f"SELECT {_ROW_COLUMNS} FROM queues"))
        }
        if not queues:
            return []
        prefix = process_of(self.owner)
        leased: dict[tuple[str, str | None], tuple[int, int]] = {}
        for queue, partition, n, mine in self._q(
            conn,
            "SELECT queue, partition_key, COUNT(*), "
            f"{_count('substr(lease_owner, 1, ?) = ?')} "
            "FROM executions WHERE queue IS NOT NULL AND lease_owner IS NOT NULL "
            "AND lease_expires > ? GROUP BY queue, partition_key",
            (len(prefix), prefix, real),
        ):
            leased[(queue, partition)] = (int(n), int(mine or 0))
        # (every queued execution's queue is declared: create refuses an unknown queue and
        # delete_queue one with live executions)
        # per partition, only as many rows as it has slots (a top-k sort over the
        # executions_queued index): a deep queue costs no more to look at than a shallow one
        due = (
            f"SELECT id, first_admitted_at FROM executions WHERE queue = ? AND partition_key "
            f"{self._SAME} ? AND status = 'RUNNING' AND wake_at IS NOT NULL AND wake_at <= ? "
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
                    for r in self._q(
                        conn,
                        "SELECT DISTINCT partition_key FROM executions WHERE queue = ? "
                        "AND status = 'RUNNING' AND wake_at <= ? ORDER BY partition_key",
                        (name, now),
                    )
                ]
            for partition in parts:
                n, mine = leased.get((name, partition), (0, 0))
                slots = limit if q.concurrency is None else min(limit, q.concurrency - n)
                if q.worker_concurrency is not None:
                    slots = min(slots, q.worker_concurrency - mine)
                if slots <= 0:
                    continue
                starts = limit
                if q.rate_limit is not None and q.rate_period_ms is not None:
                    # one start per spacing interval: none if it started one within it
                    last = self._last_start(conn, name, partition)
                    gap = q.rate_period_ms / q.rate_limit
                    starts = 0 if last is not None and real - last < gap else 1
                for execution_id, first in self._q(
                    conn, due, (name, partition, now, real, slots)
                ).fetchall():
                    if first is None:
                        if starts <= 0:
                            break  # the rest are not admitted either
                        starts -= 1
                    out.append((first is None, len(out), execution_id))
        # admitted ones first, then each partition's order (priority, age)
        return [execution_id for _, _, execution_id in sorted(out)[:limit]]

    def _next_room(self, conn: Any, real: int) -> int | None:
        """When the spacing of a rate-limited partition that started one within it next
        lets a start through, or None."""
        rows = self._q(
            conn,
            f"SELECT name, partitioned, {_SPACING} FROM queues AS q WHERE rate_limit IS NOT NULL",
        ).fetchall()
        soonest: float | None = None
        for name, partitioned, spacing in rows:
            gap = float(spacing)  # PostgreSQL: a numeric
            if partitioned:
                lasts = [
                    r[0]
                    for r in self._q(
                        conn,
                        "SELECT MAX(first_admitted_at) FROM executions WHERE queue = ? "
                        "AND first_admitted_at > ? GROUP BY partition_key",
                        (name, real - gap),
                    )
                ]
            else:
                lasts = [self._last_start(conn, name, None)]
            for last in lasts:
                if last is not None and last + gap > real:
                    soonest = last + gap if soonest is None else min(soonest, last + gap)
        return None if soonest is None else math.ceil(soonest)

    # ------------------------------------------------------------------ the store's methods

    def put_queue(self, queue: QueueRow) -> bool:
        """Record ``queue``'s limits (a new queue, or new limits of one); True if new.
        Executions already on it keep their place and follow the new limits."""
        now = _now_ms()
        with self._lock, self._tx() as conn:
            old = self._read_queue(conn, queue.name, self._QUEUE_LOCK)
            if old is not None and old.partitioned != queue.partitioned:
                n = self._live_on(conn, queue.name)
                if n:
                    raise ExecutionConflictError(
                        f"queue {queue.name!r} has {n} queued or running executions: it "
                        "cannot become partitioned or stop being so until they end"
                    )
            self._q(
                conn,
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
                    bool(queue.partitioned),  # SQLite stores it as 1 or 0
                    now,
                    now,
                ),
            )
        return old is None

    def queue(self, name: str) -> QueueRow | None:
        """The queue named ``name``, or None."""
        with self._lock:
            rows = self._query(
                self._sql(f"SELECT {_ROW_COLUMNS} FROM queues WHERE name = ?"), (name,)
            )
        return _row(rows[0]) if rows else None

    def queue_stats(self) -> list[QueueStats]:
        """Every queue with its load now, by name."""
        with self._lock:
            real = self._clock_now()
            rows = [
                _row(r) for r in self._query(f"SELECT {_ROW_COLUMNS} FROM queues ORDER BY name")
            ]
            counts = {
                r[0]: r[1:]
                for r in self._query(
                    self._sql(
                        "SELECT queue, "
                        + _count("status = 'RUNNING' AND first_admitted_at IS NULL")
                        + ", "
                        + _count("lease_owner IS NOT NULL AND lease_expires > ?")
                        + ", "
                        + _count(
                            "first_admitted_at IS NOT NULL "
                            "AND (lease_owner IS NULL OR lease_expires <= ?)"
                        )
                        + f" FROM executions WHERE queue IS NOT NULL AND status IN {_LIVE} "
                        "GROUP BY queue"
                    ),
                    (real, real),
                )
            }
            starts = {
                r[0]: r[1]
                for r in self._query(
                    self._sql(
                        "SELECT e.queue, COUNT(*) FROM executions AS e JOIN queues AS q "
                        "ON q.name = e.queue WHERE e.first_admitted_at > ? - "
                        "COALESCE(q.rate_period_ms, 60000) GROUP BY e.queue"
                    ),
                    (real,),
                )
            }
        out = []
        for q in rows:
            depth, running, sleeping = counts.get(q.name, (0, 0, 0))
            out.append(
                QueueStats(
                    queue=q,
                    depth=int(depth or 0),
                    running=int(running or 0),
                    sleeping=int(sleeping or 0),
                    started=int(starts.get(q.name, 0)),
                )
            )
        return out

    def delete_queue(self, name: str) -> None:
        """Delete a queue none of whose executions is queued or running (they keep
        its name, for history); unknown: :class:`ValidationError`."""
        with self._lock, self._tx() as conn:
            if self._read_queue(conn, name, self._QUEUE_LOCK) is None:
                raise ValidationError(
                    f"no queue named {name!r:.80} (queues: {self._queue_names(conn)})"
                )
            n = self._live_on(conn, name)
            if n:
                raise ExecutionConflictError(
                    f"queue {name!r} has {n} queued or running executions; stop them or "
                    "let them end before deleting it"
                )
            self._q(conn, "DELETE FROM queues WHERE name = ?", (name,))

    def _clock_now(self) -> int:
        """The time leases are judged by (this machine's on SQLite, the server's on
        PostgreSQL), in epoch ms."""
        return _now_ms()
