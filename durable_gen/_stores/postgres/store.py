"""The PostgreSQL store: what the engines call, and what the outside world reads and writes."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
import psycopg

from ..._core import repair as _repair
from ..._core import service as _service
from ..._core.contract import LIVE_STATUSES, DurableStore, ExecutionInfo, check_same_start
from ..._core.errors import (
    CallbackClosedError,
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionPausedError,
    InvocationInterruptedError,
    StoreError,
    ValidationError,
)
from ..._core.log import Operation, OperationStatus, OperationType, OperationUpdate
from ..ids import new_callback_id
from ..logs import LogPage, level_number
from ..owners import LIVE_OWNERS
from ..sqlite import paging as _paging
from ..sqlite.outside import ORDERS, REDRIVABLE
from ..sqlite.schema import _dumps, _loads
from .group import GroupCommit
from .journal import (
    _INFO_COLUMNS,
    _STARTED,
    FAST_APPEND,
    _Conflict,
    _error,
    _info,
    _Journal,
)
from .schema import SERVER_NOW, connect, now_ms, store_error

#: Journal rows read by one query while filling a page of history.
_ROWS = 256


class PostgresStore(_Journal):
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
    ) -> bool:
        """Record a new RUNNING execution (due at once) with its EXECUTION operation;
        the arguments are :meth:`SqliteStore.create`'s. The insert and the look-up of
        an existing execution of that name are one statement and one transaction
        (``ON CONFLICT DO NOTHING``), so concurrent starts of one name, from any
        machines, create one execution."""
        op, event = _service.start_execution(
            execution_id,
            input_payload,
            now,
            timeout_seconds=None if timeout_ms is None else max(1, round(timeout_ms / 1000)),
        )
        with self._lock, self._tx() as conn:
            row = conn.execute(
                "INSERT INTO executions (id, target, workdir, status, input, created_at, "
                "updated_at, wake_at, parent, parent_op, code_version, deadline, timeout_ms, "
                "retention_ms, seq) VALUES (%s, %s, %s, 'RUNNING', %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING pk",
                (
                    execution_id,
                    target,
                    workdir,
                    input_payload,
                    now,
                    now,
                    now,
                    parent,
                    parent_op,
                    code_version,
                    deadline,
                    timeout_ms,
                    retention_ms,
                    1 if copied is None else 2,
                ),
            ).fetchone()
            if row is None:
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
            pk = row[0]
            conn.execute(
                "INSERT INTO journal (execution, seq, ops, events) VALUES (%s, 1, %s, %s)",
                (pk, _dumps([op.to_dict()]), _dumps([event])),
            )
            if copied is not None:
                conn.execute(
                    "INSERT INTO journal (execution, seq, ops, events) VALUES (%s, 2, %s, NULL)",
                    (pk, _dumps([o.to_dict() for o in copied])),
                )
            self._notify(conn)
        return True

    def fork(
        self,
        execution_id: str,
        new_id: str,
        at: str,
        now: int,
        *,
        target: str | None = None,
        code_version: str | None = None,
        reseal: Callable[[Operation], Operation] | None = None,
    ) -> str:
        """:meth:`SqliteStore.fork`: a new execution with the source's input and the
        operations it recorded before operation ``at``; the id of that operation."""
        with self._lock:
            ops = list(self._cached(execution_id).ops.values())
        point = _repair.find_operation(ops, at)
        copied = _repair.fork_operations(ops, point)
        if reseal is not None:
            copied = [reseal(op) for op in copied]
        start = next(op for op in copied if op.type is OperationType.EXECUTION)
        kept = [op for op in copied if op.type is not OperationType.EXECUTION]
        info = self.info(execution_id)
        if self.exists(new_id):
            raise ExecutionConflictError(
                f"an execution with id {new_id!r} exists already; give the fork another id"
            )
        self.create(
            new_id,
            start.input_payload if start.input_payload is not None else info.input,
            now,
            target=target or info.target,
            workdir=info.workdir,
            code_version=code_version,
            copied=kept,
        )
        return point.id

    def exists(self, execution_id: str) -> bool:
        with self._lock:
            return bool(self._query("SELECT 1 FROM executions WHERE id = %s", (execution_id,)))

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        with self._lock:
            return self._cached(execution_id).ops

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        with self._lock:
            c = self._cache.get(execution_id)
            if c is None or c.stale:
                c = self._cached(execution_id)
            if updates:
                changed, events = _service.apply_updates(
                    c.ops,
                    updates,
                    now,
                    new_callback_id=new_callback_id,
                    execution_id=execution_id,
                )
                c.ops.update(changed)
                c.pending_ops.update(changed)
                c.pending_events.extend(events)
            else:
                changed = {}
            pausing = False
            if durable and (c.pending_ops or c.pending_events):
                pausing = self._flush(execution_id, c, now)
            if self.listener is not None and changed:
                self.listener(execution_id, changed)
            if pausing:  # recorded; the invocation ends here (see pause)
                raise ExecutionPausedError(execution_id)
            if self.draining and durable and execution_id in self._held:
                raise InvocationInterruptedError(execution_id)  # recorded; shutting down
            return changed

    def fire_timers(self, execution_id: str, now: int) -> None:
        self.begin_invocation(execution_id, None, now)

    def begin_invocation(self, execution_id: str, request_id: str | None, now: int) -> None:
        """Fire due timers and note the invocation now running, in one transaction."""
        for _ in range(5):
            try:
                self._begin_invocation(execution_id, request_id, now)
                return
            except _Conflict:
                continue  # reload what the other process wrote, and fire timers again
        raise StoreError(
            f"execution {execution_id!r} keeps changing under this worker; try again",
            retryable=True,
        )

    def _begin_invocation(self, execution_id: str, request_id: str | None, now: int) -> None:
        with self._lock:
            c = self._cached(execution_id)
            c.foreign = False  # the invocation starting now reads all that was written
            changed, events = _service.fire_timers(c.ops, now)
            c.ops.update(changed)
            c.pending_ops.update(changed)
            c.pending_events.extend(events)

            def note(conn: Any, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET invocation_id = %s, invocation_started = %s "
                    "WHERE pk = %s",
                    (request_id, now if request_id else None, pk),
                )

            if request_id is not None or changed:
                self._flush(execution_id, c, now, note if request_id is not None else None)
            if self.listener is not None and changed:
                self.listener(execution_id, changed)

    def end_invocation(self, execution_id: str, event: dict[str, Any]) -> None:
        """Record the InvocationCompleted event; no invocation is running any more."""
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)

            def clear(conn: Any, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                    "WHERE pk = %s",
                    (pk,),
                )

            try:
                self._flush(execution_id, c, event["EventTimestamp"], clear)
            finally:
                self._logs.pop(execution_id, None)

    def next_timer(self, execution_id: str) -> int | None:
        with self._lock:
            return _service.next_timer(self._cached(execution_id).ops.values())

    def finish(
        self,
        execution_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(
                _service.execution_finished_event(
                    execution_id, status, now, result=result, error=error
                )
            )

            def end(conn: Any, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET status = %s, result = %s, error = %s, ended_at = %s, "
                    "wake_at = NULL, invocation_id = NULL, invocation_started = NULL "
                    "WHERE pk = %s",
                    (status, result, None if error is None else _dumps(error.to_dict()), now, pk),
                )
                self._complete_parent(conn, pk, status, now, result, error)

            self._flush(execution_id, c, now, end)

    def add_event(self, execution_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)
            self._flush(execution_id, c, event.get("EventTimestamp") or now_ms())

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        with self._lock:
            rows = self._query(
                "SELECT status, result, error FROM executions WHERE id = %s", (execution_id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        status, result, error = rows[0]
        return status, result, _error(error)

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

    def history_pages(
        self, execution_id: str, limit: int = _paging.MAX_PAGE
    ) -> Iterator[list[dict[str, Any]]]:
        """The history, a page of :meth:`history_page` at a time (memory: one page)."""
        marker: str | None = None
        while True:
            events, marker = self.history_page(execution_id, marker, limit)
            if events:
                yield events
            if marker is None:
                return

    def operations_page(
        self, execution_id: str, marker: str | None = None, limit: int = _paging.MAX_PAGE
    ) -> tuple[list[Operation], str | None]:
        """A page of :meth:`load`'s operations, in the order they were first recorded,
        from ``marker`` on, and the next page's marker (None: the last)."""
        _paging.check_limit(limit)
        with self._lock:
            c = self._cached(execution_id)
            return _paging.operations_page(c.ops, c.pk, execution_id, marker, limit)

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

    def log_records(
        self,
        execution_id: str,
        *,
        after: int = 0,
        limit: int | None = None,
        level: int | str = 0,
    ) -> LogPage:
        """The execution's kept log records numbered after ``after``, at ``level`` and
        above, in order; at most ``limit`` (None: all)."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValidationError(f"limit must be a positive integer or None, got {limit!r:.40}")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError(f"after must be a record number (0 or more), got {after!r:.40}")
        number = level_number(level, "level")
        with self._lock:
            pk, _ = self._pk(execution_id)
            return self._read_logs(pk, after, limit, number)

    # ------------------------------------------------------------------ listings, due work

    def info(self, execution_id: str) -> ExecutionInfo:
        """The execution's row."""
        with self._lock:
            rows = self._query(
                f"SELECT {_INFO_COLUMNS} FROM executions WHERE id = %s", (execution_id,)
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
        """Executions, filtered and ordered as :meth:`SqliteStore.executions` lists them."""
        key, down = _order(order)
        where: list[str] = []
        args: list[Any] = []
        wanted = {*statuses, *((status,) if status is not None else ())}
        if wanted:
            where.append("status = ANY(%s)")
            args.append(sorted(wanted))
        for column, value in (("target", target), ("code_version", code_version)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if name_prefix:
            where.append("left(id, %s) = %s")
            args += [len(name_prefix), name_prefix]
        if started_after is not None:
            where.append("created_at >= %s")
            args.append(started_after)
        if started_before is not None:
            where.append("created_at <= %s")
            args.append(started_before)
        if key != "created_at":
            where.append("ended_at IS NOT NULL")
        if after is not None:
            marked, marked_pk = _parse_marker(after, duration=key != "created_at")
            cmp = "<" if down else ">"
            where.append(f"({key}, pk) {cmp} (%s, %s)")
            args += [marked, marked_pk]
        sql = f"SELECT {_INFO_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        way = "DESC" if down else "ASC"
        sql += f" ORDER BY {key} {way}, pk {way} LIMIT %s"
        with self._lock:
            rows = self._query(sql, (*args, limit))
        return [_info(r) for r in rows]

    def page_marker(self, info: ExecutionInfo, *, order: str = "newest") -> str:
        """The marker that lists the executions after ``info`` in ``order``."""
        key, _ = _order(order)
        with self._lock:
            rows = self._query(f"SELECT {key}, pk FROM executions WHERE id = %s", (info.id,))
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {info.id!r}")
        if rows[0][0] is None:
            raise ValidationError(f"execution {info.id!r} has not ended: it has no duration")
        prefix = "" if key == "created_at" else "d"
        return f"{prefix}{rows[0][0]}.{rows[0][1]}"

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of live executions past their deadline (first: any worker times them out),
        then of RUNNING executions whose wake time has come and that a worker may take:
        no lease, an expired one, this store's, or one whose holder is proven dead
        (with ``code_version``, only those that started on it). A lease held by a live
        worker does not take a place in ``limit``."""
        overdue = self.overdue(now, limit=limit)
        pinned = "" if code_version is None else "AND code_version = %(version)s "
        args = {"now": now, "me": self.owner, "version": code_version}
        with self._lock:
            free = self._query(
                "SELECT id FROM executions WHERE status = 'RUNNING' AND wake_at IS NOT NULL "
                "AND wake_at <= %(now)s AND (lease_owner IS NULL OR lease_owner = %(me)s OR "
                f"lease_expires <= {SERVER_NOW}) {pinned}ORDER BY wake_at, pk LIMIT %(limit)s",
                {**args, "limit": limit},
            )
            holders = self._query(
                "SELECT DISTINCT lease_owner FROM executions WHERE status = 'RUNNING' "
                "AND wake_at IS NOT NULL AND wake_at <= %(now)s AND lease_owner <> %(me)s "
                f"AND lease_expires > {SERVER_NOW} {pinned}",
                args,
            )
            dead = [owner for (owner,) in holders if self.owner_is_dead(owner)]
            orphaned = (
                self._query(
                    "SELECT id FROM executions WHERE status = 'RUNNING' AND wake_at IS NOT NULL "
                    "AND wake_at <= %(now)s AND lease_owner = ANY(%(dead)s) "
                    f"{pinned}ORDER BY wake_at, pk LIMIT %(limit)s",
                    {**args, "dead": dead, "limit": limit},
                )
                if dead
                else []
            )
        late = set(overdue)
        ids = [r[0] for r in free] + [r[0] for r in orphaned]
        return overdue + [i for i in ids if i not in late][: max(0, limit - len(overdue))]

    def overdue(self, now: int, *, limit: int = 100) -> list[str]:
        """Ids of live executions whose deadline is at or before ``now``, earliest first."""
        with self._lock:
            rows = self._query(
                "SELECT id FROM executions WHERE status IN ('RUNNING', 'PAUSING', 'PAUSED') "
                "AND deadline IS NOT NULL AND deadline <= %s ORDER BY deadline LIMIT %s",
                (now, limit),
            )
        return [r[0] for r in rows]

    def next_wake(self, *, code_version: str | None = None) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds, or deadline
        of a live one, or None."""
        pinned = "" if code_version is None else "AND code_version = %(version)s "
        with self._lock:
            rows = self._query(
                "SELECT LEAST((SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                f"AND (lease_owner IS NULL OR lease_expires <= {SERVER_NOW}) {pinned}), "
                "(SELECT MIN(deadline) FROM executions WHERE status IN "
                "('RUNNING', 'PAUSING', 'PAUSED') AND deadline IS NOT NULL))",
                {"version": code_version},
            )
        return None if rows[0][0] is None else int(rows[0][0])

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
            raise store_error(self.url, e) from None

    def changed_elsewhere(self, execution_id: str) -> bool:
        """True when another process wrote to the execution since this store last looked."""
        with self._lock:
            c = self._cache.get(execution_id)
            _, version = self._pk(execution_id)
            return c is None or c.stale or c.version != version

    # ------------------------------------------------------------------ the outside world

    def callback_execution(self, callback_id: str) -> str:
        """The execution a callback id belongs to."""
        with self._lock:
            rows = self._query(
                "SELECT e.id FROM callbacks c JOIN executions e ON e.pk = c.execution "
                "WHERE c.callback_id = %s",
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
        """Succeed, fail or heartbeat a callback (from any process); returns its execution
        id. Needs no lease: appended to the journal, the execution made due (and the
        workers told). With ``execution_id``, a callback of any other execution is
        refused as unknown."""
        with self._lock, self._tx() as conn:
            row = conn.execute(
                "SELECT c.execution, c.body, e.id, e.status FROM callbacks c "
                "JOIN executions e ON e.pk = c.execution WHERE c.callback_id = %s "
                "FOR UPDATE OF c, e",
                (callback_id,),
            ).fetchone()
            if row is None or (execution_id is not None and row[2] != execution_id):
                where = "" if execution_id is None else f" in execution {execution_id!r:.80}"
                raise ExecutionNotFoundError(f"no callback with id {callback_id!r:.80}{where}")
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
                "UPDATE callbacks SET body = %s WHERE callback_id = %s",
                (_dumps(new.to_dict()), callback_id),
            )
            if action != "heartbeat":
                conn.execute(
                    "UPDATE executions SET wake_at = %s, updated_at = %s WHERE pk = %s",
                    (now, now, pk),
                )
                self._notify(conn)
        return str(execution_id)

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

    def _row(self, conn: Any, execution_id: str, columns: str) -> tuple[Any, ...]:
        """The execution's row, locked for this transaction."""
        row = conn.execute(
            f"SELECT {columns} FROM executions WHERE id = %s FOR UPDATE", (execution_id,)
        ).fetchone()
        if row is None:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return tuple(row)

    def stop(self, execution_id: str, now: int, *, error: ErrorObject | None = None) -> None:
        """End a live execution as STOPPED; its lease holder can write no more."""
        error = error or ErrorObject(type="ExecutionStopped", message="stopped by request")
        with self._lock:
            with self._tx() as conn:
                pk, status = self._row(conn, execution_id, "pk, status")
                if status not in LIVE_STATUSES:
                    raise ExecutionConflictError(
                        f"execution {execution_id!r} already ended {status}"
                    )
                conn.execute(
                    "UPDATE executions SET status = 'STOPPED', error = %s, ended_at = %s, "
                    "updated_at = %s, wake_at = NULL WHERE pk = %s",
                    (_dumps(error.to_dict()), now, now, pk),
                )
                first = conn.execute(
                    "SELECT ops FROM journal WHERE execution = %s AND seq = 1", (pk,)
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

    def time_out(self, execution_id: str, now: int) -> bool:
        """End a live execution whose deadline has come as TIMED_OUT, in one transaction
        (:meth:`SqliteStore.time_out`); False, writing nothing, when it already ended or
        its deadline has not come."""
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
                    "UPDATE executions SET status = 'TIMED_OUT', error = %s, ended_at = %s, "
                    "updated_at = %s, wake_at = NULL, invocation_id = NULL, "
                    "invocation_started = NULL WHERE pk = %s",
                    (_dumps(error.to_dict()), now, now, pk),
                )
                self._append(conn, pk, [op.to_dict() for op in changed.values()], events)
                for op in changed.values():
                    if op.callback_id is not None:
                        conn.execute(
                            "UPDATE callbacks SET body = %s WHERE callback_id = %s",
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

    def purge(self, now: int, *, default_retention_ms: int | None = None, limit: int = 500) -> int:
        """Delete up to ``limit`` ended executions whose retention has passed (their own,
        else ``default_retention_ms``; None: kept) with all their data, in one
        transaction; returns how many. Rows locked by another purger are skipped."""
        with self._lock:
            with self._tx() as conn:
                rows = conn.execute(
                    "SELECT pk, id FROM executions WHERE retention_ms IS NOT NULL "
                    "AND ended_at IS NOT NULL AND ended_at + retention_ms <= %s "
                    "ORDER BY ended_at + retention_ms LIMIT %s FOR UPDATE SKIP LOCKED",
                    (now, limit),
                ).fetchall()
                if default_retention_ms is not None and len(rows) < limit:
                    rows += conn.execute(
                        "SELECT pk, id FROM executions WHERE retention_ms IS NULL "
                        "AND ended_at IS NOT NULL AND ended_at <= %s ORDER BY ended_at "
                        "LIMIT %s FOR UPDATE SKIP LOCKED",
                        (now - default_retention_ms, limit - len(rows)),
                    ).fetchall()
                if rows:
                    self._delete_rows(conn, [pk for pk, _ in rows])
            for _, execution_id in rows:
                self._cache.pop(execution_id, None)
        return len(rows)

    def _delete_rows(self, conn: Any, pks: list[int]) -> None:
        for table in ("journal", "callbacks", "logs"):
            conn.execute(f"DELETE FROM {table} WHERE execution = ANY(%s)", (pks,))
        conn.execute("DELETE FROM executions WHERE pk = ANY(%s)", (pks,))

    def pause(self, execution_id: str, now: int, *, reason: str | None = None) -> str:
        """Pause a running execution (Lambda's PauseDurableExecution); its new status:
        PAUSING while a live worker advances it (PAUSED at its next checkpoint), else
        PAUSED. Pausing a paused execution changes nothing."""
        with self._lock, self._tx() as conn:
            pk, status, owner, expires, real = self._row(
                conn, execution_id, f"pk, status, lease_owner, lease_expires, {SERVER_NOW}"
            )
            if status in ("PAUSING", "PAUSED"):
                return str(status)
            if status != "RUNNING":
                raise ExecutionConflictError(
                    f"execution {execution_id!r} already ended {status}; only a running "
                    "execution can be paused"
                )
            held = owner is not None and expires > real and not self.owner_is_dead(owner)
            status = "PAUSING" if held else "PAUSED"
            conn.execute(
                "UPDATE executions SET status = %s, updated_at = %s WHERE pk = %s",
                (status, now, pk),
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
                "UPDATE executions SET status = 'RUNNING', wake_at = %s, updated_at = %s "
                "WHERE pk = %s",
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
            self._notify(conn)
        self._cache.pop(execution_id, None)

    def delete(self, execution_id: str, *, force: bool = False) -> None:
        """Delete an ended execution with its log, history, callbacks and log records.
        A running or paused one only with ``force`` (its worker is fenced off)."""
        with self._lock, self._tx() as conn:
            pk, status = self._row(conn, execution_id, "pk, status")
            if status in LIVE_STATUSES and not force:
                raise ExecutionConflictError(
                    f"execution {execution_id!r} is {status}; only an ended execution can "
                    "be deleted: stop it first (or force the deletion)"
                )
            self._delete_rows(conn, [pk])
        self._cache.pop(execution_id, None)

    def redrive(self, execution_id: str, now: int) -> list[str]:
        """Run a FAILED, STOPPED or TIMED_OUT execution again from its failures
        (:meth:`SqliteStore.redrive`); the ids of the operations that will run again."""
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
            # the log keeps its history events; the operations' state is rewritten in
            # one new row (row 1 keeps the execution's start, as stop() reads it)
            conn.execute("UPDATE journal SET ops = NULL WHERE execution = %s AND seq > 1", (pk,))
            event = {
                "EventType": "ExecutionRedriven",
                "EventTimestamp": now,
                "Id": execution_id,
                "ExecutionRedrivenDetails": {"RedriveTimestamp": now},
            }
            self._append(conn, pk, [op.to_dict() for op in kept], [event])
            conn.execute(
                "DELETE FROM callbacks WHERE execution = %s AND NOT (op_id = ANY(%s))",
                (pk, sorted(kept_ids)),
            )
            # a timeout runs again from the redrive (an absolute deadline is dropped)
            conn.execute(
                "UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL, "
                "ended_at = NULL, wake_at = %s, updated_at = %s, invocation_id = NULL, "
                "invocation_started = NULL, deadline = %s + timeout_ms, "
                "rewrites = rewrites + 1 WHERE pk = %s",
                (now, now, now, pk),
            )
            self._notify(conn)
        self._cache.pop(execution_id, None)
        return [op.id for op in ops if op.id not in kept_ids]


def _order(order: str) -> tuple[str, bool]:
    """The SQL key of an :meth:`PostgresStore.executions` order, and whether it descends."""
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


def _keeps_the_contract(store: PostgresStore) -> DurableStore:
    return store  # mypy checks that PostgresStore keeps the durable store contract
