"""The PostgreSQL store: what the engines call, and what the outside world reads and writes
(the logic it shares with the SQLite store is in ``_stores.sql_store``; its dialect here)."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import psycopg

from ..._core.contract import DurableStore, check_same_start
from ..._core.errors import ExecutionConflictError
from ..._core.log import Operation, OperationType
from ..owners import LIVE_OWNERS
from ..sql_store import _SqlStore, start_columns
from ..sqlite import paging as _paging
from ..sqlite.schema import _loads
from .group import GroupCommit
from .journal import (
    _STARTED,
    FAST_APPEND,
    _Conflict,
    _Journal,
    insert_start,
)
from .queues import _Queues
from .schedules import _Schedules
from .schema import SERVER_NOW, connect, store_error

#: Journal rows read by one query while filling a page of history.
_ROWS = 256


class PostgresStore(_Queues, _Schedules, _Journal, _SqlStore):
    """Executions in a PostgreSQL database, updated with the service's semantics.

    ``url``: ``postgresql://user[:password]@host[:port]/database`` (libpq's URL:
    ``?sslmode=...``, ``?host=/socket/dir`` and the rest work). ``schema``: the
    PostgreSQL schema its tables live in (default ``durable_gen``), created with
    them when missing (``create``; else a missing one is an error). Writing to an
    execution needs its lease (:meth:`acquire`); the engine takes care of that.
    ``keep_logs`` and ``log_level``: as :class:`~durable_gen.SqliteStore`'s.
    Every commit is durable as the server's ``synchronous_commit`` makes it: keep it
    ``on`` (the default) for the store contract's promise.
    """

    def close(self) -> None:
        """Let go of every lease this store holds and close its connections."""
        with self._lock:
            try:
                self.release_all()
            finally:
                LIVE_OWNERS.discard(self.owner)
                for conn in (self._conn, self._listen_conn):
                    if conn is not None:
                        conn.close()
                self._conn = self._listen_conn = None
                with self._renew_lock:
                    if self._renew_conn is not None:
                        self._renew_conn.close()
                        self._renew_conn = None
                if self._own_group is not None:
                    self._own_group.close()

    def clone(self) -> PostgresStore:
        """Another store on the same database, with its own connection and lease owner;
        the clones of one store write their step results together (group commit)."""
        return PostgresStore(
            self.url,
            schema=self.schema,
            lease_seconds=self.lease_ms / 1000,
            group=self.shared_group(),
            keep_logs=self.keep_logs,
            log_level=self.log_level,
        )

    def shared_group(self) -> GroupCommit:
        """The group commit this store's clones share (made on first use, closed with
        this store): their step results are written together."""
        with self._lock:
            if self._own_group is None:
                self._own_group = GroupCommit(
                    lambda: connect(self.url, self.schema, application_name="durable_gen group"),
                    FAST_APPEND,
                )
            return self._own_group

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the engine's

    def create(
        self,
        execution_id: str,
        input_payload: str,
        now: int,
        *,
        target: str | None = None,
        workdir: str | None = None,
        parent: str | None = None,
        parent_op: str | None = None,
        same_input: Callable[[str], bool] | None = None,
        code_version: str | None = None,
        copied: list[Operation] | None = None,
        deadline: int | None = None,
        timeout_ms: int | None = None,
        retention_ms: int | None = None,
        queue: str | None = None,
        partition: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        trace_context: str | None = None,
    ) -> bool:
        """Record a new RUNNING execution (due at once) with its EXECUTION operation;
        the arguments are :meth:`SqliteStore.create`'s. The insert and the look-up of
        an existing execution of that name are one statement and one transaction
        (``ON CONFLICT DO NOTHING``), so concurrent starts of one name, from any
        machines, create one execution. A start onto a queue looks the name up first
        (an existing execution is returned before its own dedup id could refuse it),
        then checks what the queue allows (``_stores.queue_store``)."""
        with self._lock, self._tx() as conn:
            if queue is not None or partition is not None or dedup_id is not None or priority:
                existing = conn.execute(
                    "SELECT input, target FROM executions WHERE id = %s", (execution_id,)
                ).fetchone()
                if existing is not None:
                    check_same_start(
                        execution_id,
                        (same_input or input_payload.__eq__)(existing[0]),
                        existing[1],
                        target,
                    )
                    return False
                self._check_start(conn, queue, partition, dedup_id, priority, now)
            pk = insert_start(
                conn,
                execution_id,
                input_payload,
                now,
                columns=start_columns(
                    target=target,
                    workdir=workdir,
                    parent=parent,
                    parent_op=parent_op,
                    code_version=code_version,
                    deadline=deadline,
                    timeout_ms=timeout_ms,
                    retention_ms=retention_ms,
                    queue=queue,
                    partition=partition,
                    priority=priority,
                    dedup_id=dedup_id,
                    trace_context=trace_context,
                ),
                copied=copied,
            )
            if pk is None:
                existing = conn.execute(
                    "SELECT input, target FROM executions WHERE id = %s", (execution_id,)
                ).fetchone()
                if existing is None:  # created and deleted meanwhile: as taken
                    raise ExecutionConflictError(
                        f"execution {execution_id!r} was being created and deleted at once; "
                        "try again"
                    )
                check_same_start(
                    execution_id,
                    (same_input or input_payload.__eq__)(existing[0]),
                    existing[1],
                    target,
                )
                return False
            self._notify(conn)
        return True

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's events (GetDurableExecutionHistory shapes), EventId from 1."""
        with self._lock:
            pk, _ = self._pk(execution_id)
            rows = self._query(
                "SELECT events FROM journal WHERE execution = %s AND events IS NOT NULL "
                "ORDER BY seq",
                (pk,),
            )
        events = [e for (body,) in rows for e in _loads(body)]
        return [{**e, "EventId": i} for i, e in enumerate(events, 1)]

    def history_page(
        self,
        execution_id: str,
        marker: str | None = None,
        limit: int = _paging.MAX_PAGE,
        *,
        reverse: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of :meth:`history` (:meth:`SqliteStore.history_page`'s contract): up to
        ``limit`` events from ``marker``, and the next page's marker (None: the last).
        Reads O(page) journal rows by key wherever the page is."""
        _paging.check_limit(limit)
        with self._lock:
            pk, _ = self._pk(execution_id)
            return self._history_page(pk, execution_id, marker, limit, reverse)

    def _history_page(
        self, pk: int, execution_id: str, marker: str | None, limit: int, reverse: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        kind = "r" if reverse else "h"
        if marker is not None:
            seq, index, event_id = _paging.decode_marker(marker, kind, pk, 3, execution_id)
            if not 0 < seq < 1 << 31 or event_id < 1:
                raise _paging.bad_marker(marker, execution_id)
        elif reverse:
            rows = self._query(
                "SELECT seq, json_array_length(events::json), (SELECT sum("
                "json_array_length(events::json)) FROM journal WHERE execution = %(pk)s AND "
                "events IS NOT NULL) FROM journal WHERE execution = %(pk)s AND events IS NOT "
                "NULL ORDER BY seq DESC LIMIT 1",
                {"pk": pk},
            )
            if not rows:
                return [], None
            seq, index, event_id = rows[0][0], rows[0][1] - 1, int(rows[0][2])
        else:
            seq, index, event_id = 1, 0, 1
        out: list[dict[str, Any]] = []
        start: int | None = index
        size = min(limit + 1, _ROWS)
        while True:
            if reverse:
                rows = self._query(
                    "SELECT seq, events FROM journal WHERE execution = %s AND seq <= %s "
                    "AND events IS NOT NULL ORDER BY seq DESC LIMIT %s",
                    (pk, seq, size),
                )
            else:
                rows = self._query(
                    "SELECT seq, events FROM journal WHERE execution = %s AND seq >= %s "
                    "AND events IS NOT NULL ORDER BY seq LIMIT %s",
                    (pk, seq, size),
                )
            for k, body in rows:
                events = _loads(body)
                if start is not None:
                    if marker is not None and (k != seq or not 0 <= start < len(events)):
                        raise _paging.bad_marker(marker, execution_id)  # no such position
                    i, start = start, None
                else:
                    i = len(events) - 1 if reverse else 0
                step = -1 if reverse else 1
                while 0 <= i < len(events):
                    if len(out) == limit:
                        return out, _paging.encode_marker(kind, pk, k, i, event_id)
                    out.append({**events[i], "EventId": event_id})
                    event_id += step
                    i += step
            if len(rows) < size:
                if start is not None and marker is not None:
                    raise _paging.bad_marker(marker, execution_id)  # its row is gone
                return out, None
            seq = rows[-1][0] + (-1 if reverse else 1)
            size = _ROWS

    def operations_summary(
        self, execution_id: str, *, head: int, tail: int
    ) -> _paging.OperationsSummary:
        """Counts by status and the first ``head`` / last ``tail`` operations
        (``durable-gen show``), from the cached log."""
        with self._lock:
            ops = [
                op
                for op in self._cached(execution_id).ops.values()
                if op.type is not OperationType.EXECUTION
            ]
        out = _paging.OperationsSummary()
        out.count = len(ops)
        out.by_status = dict(collections.Counter(op.status.value for op in ops))
        out.first = ops[:head]
        out.last = ops[head:][-tail:] if tail else []
        out.open_callbacks = [
            op for op in ops if op.type is OperationType.CALLBACK and op.status is _STARTED
        ]
        out.failed = [op for op in ops if op.error is not None and op.error.stack_trace]
        return out

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of live executions past their deadline (first: any worker times them out),
        then of RUNNING executions whose wake time has come and that a worker may take:
        no lease, an expired one, this store's, or one whose holder is proven dead
        (with ``code_version``, only those that started on it). A lease held by a live
        worker does not take a place in ``limit``. Executions on a queue come last,
        only as many as their partitions have room for now (``_stores.queue_store``),
        in their queue's order."""
        overdue = self.overdue(now, limit=limit)
        pinned = "" if code_version is None else "AND code_version = %(version)s "
        args = {"now": now, "me": self.owner, "version": code_version}
        with self._lock:
            free = self._query(
                "SELECT id FROM executions WHERE status = 'RUNNING' AND wake_at IS NOT NULL "
                "AND wake_at <= %(now)s AND queue IS NULL AND (lease_owner IS NULL OR "
                f"lease_owner = %(me)s OR lease_expires <= {SERVER_NOW}) {pinned}"
                "ORDER BY wake_at, pk LIMIT %(limit)s",
                {**args, "limit": limit},
            )
            holders = self._query(
                "SELECT DISTINCT lease_owner FROM executions WHERE status = 'RUNNING' "
                "AND wake_at IS NOT NULL AND wake_at <= %(now)s AND queue IS NULL "
                f"AND lease_owner <> %(me)s AND lease_expires > {SERVER_NOW} {pinned}",
                args,
            )
            dead = [owner for (owner,) in holders if self.owner_is_dead(owner)]
            orphaned = (
                self._query(
                    "SELECT id FROM executions WHERE status = 'RUNNING' AND wake_at IS NOT NULL "
                    "AND wake_at <= %(now)s AND queue IS NULL AND lease_owner = ANY(%(dead)s) "
                    f"{pinned}ORDER BY wake_at, pk LIMIT %(limit)s",
                    {**args, "dead": dead, "limit": limit},
                )
                if dead
                else []
            )
            queued = self._queued_due(now, limit, code_version)
        late = set(overdue)
        ids = [r[0] for r in free] + [r[0] for r in orphaned] + queued
        return overdue + [i for i in ids if i not in late][: max(0, limit - len(overdue))]

    def _queued_due(self, now: int, limit: int, code_version: str | None) -> list[str]:
        """The due queued executions their partitions have room for (``due``'s last part)."""
        if not self._query("SELECT 1 FROM queues LIMIT 1"):
            return []  # no queue: nothing more to read
        with self._tx() as conn:
            (real,) = conn.execute(f"SELECT {SERVER_NOW}").fetchone()
            queued = self._due_queued(conn, now, int(real), limit)
            if queued and code_version is not None:
                pinned = {
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM executions WHERE id = ANY(%s) AND code_version = %s",
                        (queued, code_version),
                    )
                }
                queued = [q for q in queued if q in pinned]
        return queued

    def next_wake(self, *, code_version: str | None = None) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds, or deadline
        of a live one, or None (queued executions: their timers, and when a rate window
        frees a start; one that waits for a slot is found by the next poll, or the
        NOTIFY of a lease let go)."""
        pinned = "" if code_version is None else "AND code_version = %(version)s "
        with self._lock:
            rows = self._query(
                "SELECT LEAST((SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND queue IS NULL AND (lease_owner IS NULL OR lease_expires <= {SERVER_NOW}) "
                f"{pinned}), (SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND queue IS NOT NULL AND wake_at > {SERVER_NOW} {pinned}), "
                "(SELECT MIN(deadline) FROM executions WHERE status IN "
                "('RUNNING', 'PAUSING', 'PAUSED') AND deadline IS NOT NULL)), "
                f"EXISTS (SELECT 1 FROM queues WHERE rate_limit IS NOT NULL), {SERVER_NOW}",
                {"version": code_version},
            )
            wake, rated, real = rows[0]
            room = None
            if rated:  # when a rate-limited partition's spacing lets its next start in
                with self._tx() as conn:
                    room = self._next_room(conn, int(real))
        wakes = [w for w in (wake, room) if w is not None]
        return int(min(wakes)) if wakes else None

    def wait_for_work(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a NOTIFY that work is due (an execution
        started, a callback completed, an invoked execution ended, a lease let go of
        a due execution); True when one came. A worker polls after it regardless:
        this only makes it wake sooner."""
        with self._lock:
            if self._listen_conn is None or self._listen_conn.closed or self._listen_conn.broken:
                self._listen_conn = connect(
                    self.url, self.schema, application_name="durable_gen listen"
                )
                try:
                    self._listen_conn.execute(f'LISTEN "{self.channel}"')
                except psycopg.Error as e:
                    raise store_error(self.url, e) from None
            conn = self._listen_conn
        try:
            return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as e:
            # cut or the server restarting: the next call listens on a new connection
            # (notifications sent meanwhile are lost; the worker's polling finds that work)
            self._drop_if_lost(conn, e)
            raise store_error(self.url, e) from None

    # ------------------------------------------------------------------ the dialect
    # (see ``_stores.sql_store``): transactions run side by side, so the rows they
    # write are locked; the journal keyed ``(execution, seq)``; workers LISTEN.

    _CONFLICT = _Conflict
    _ROW_LOCK = " FOR UPDATE"
    _CALLBACK_LOCK = " FOR UPDATE OF c, e"
    _PURGE_LOCK = " FOR UPDATE SKIP LOCKED"  # another purger takes the next rows
    _END_SET = ""  # _append bumps the version
    #: redrive rewrites old journal rows: caches read the whole log again
    _REDRIVE_SET = ", rewrites = rewrites + 1"
    _ID_PREFIX = "left(id, ?) = ?"

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def _status_in(self, statuses: list[str]) -> tuple[str, list[Any]]:
        return "status = ANY(?)", [statuses]

    def _keyset(self, key: str, cmp: str, at: int, pk: int) -> tuple[str, list[Any]]:
        return f"({key}, pk) {cmp} (?, ?)", [at, pk]

    def _lease_row(self, conn: Any, execution_id: str) -> tuple[Any, ...]:
        # the server's clock: the lease holders' machines compare expiries with it
        return self._row(
            conn, execution_id, f"pk, status, lease_owner, lease_expires, {SERVER_NOW}"
        )

    def _start_ops(self, conn: Any, pk: int) -> str | None:
        first = conn.execute(
            "SELECT ops FROM journal WHERE execution = %s AND seq = 1", (pk,)
        ).fetchone()
        return first[0] if first else None

    def _clear_rewritten_ops(self, conn: Any, pk: int) -> None:
        conn.execute("UPDATE journal SET ops = NULL WHERE execution = %s AND seq > 1", (pk,))

    def _drop_callbacks_except(self, conn: Any, pk: int, kept_ids: set[str]) -> None:
        conn.execute(
            "DELETE FROM callbacks WHERE execution = %s AND NOT (op_id = ANY(%s))",
            (pk, sorted(kept_ids)),
        )

    def _delete_rows(self, conn: Any, pks: list[int]) -> None:
        for table in ("journal", "callbacks", "logs"):
            conn.execute(f"DELETE FROM {table} WHERE execution = ANY(%s)", (pks,))
        conn.execute("DELETE FROM executions WHERE pk = ANY(%s)", (pks,))


def _keeps_the_contract(store: PostgresStore) -> DurableStore:
    return store  # mypy checks that PostgresStore keeps the durable store contract
