"""The store operations whose logic is the same on SQLite and PostgreSQL.

:class:`_SqlStore` holds them once: the engine's calls that work on the cached log
(checkpoint, timers, invocations, finishing, forking), the reads of one execution,
and the writes of processes that hold no lease (stop, time out, pause, resume,
redrive, delete, purge, callbacks, invokes), and the listings. Each store mixes it
in *last* (SQLite's through ``sqlite.outside._Outside``), so that everything a store
defines itself comes first; the store gives its dialect through the small hooks at
the end of the class:

- SQL text is written with ``?`` placeholders, passed through :meth:`_sql`
  (SQLite keeps it; psycopg wants ``%s``);
- the row-lock suffixes (:attr:`_ROW_LOCK`, :attr:`_CALLBACK_LOCK`,
  :attr:`_PURGE_LOCK`): nothing on SQLite, whose write transactions
  (``BEGIN IMMEDIATE``) already hold the whole file; ``FOR UPDATE`` (and ``SKIP
  LOCKED`` for purgers that share the work) on PostgreSQL, where transactions
  run side by side;
- :meth:`_notify`: nothing on SQLite (workers poll it); PostgreSQL tells its
  listening workers that work is due when the transaction commits;
- where an execution's journal rows are (:meth:`_start_ops`,
  :meth:`_clear_rewritten_ops`, :meth:`_drop_callbacks_except`,
  :meth:`_delete_rows`): keyed ``pk << 32 | n`` on SQLite, ``(execution, seq)``
  on PostgreSQL;
- the lease clock of :meth:`pause` (:meth:`_lease_row`): this machine's clock on
  SQLite (one machine), the server's on PostgreSQL (many machines);
- the conditions of :meth:`executions` that each database writes its own way
  (:meth:`_status_in`, :attr:`_ID_PREFIX`, :meth:`_keyset`): ``IN`` lists and
  ``substr`` on SQLite, arrays, ``left`` and row comparisons on PostgreSQL.

What only looks alike stays in each store: starting an execution (SQLite looks
up the name first in its one writer's transaction; PostgreSQL inserts with ``ON
CONFLICT DO NOTHING``, as many machines start at once), due work and wake times
(the server's clock and dead-owner look-ups on PostgreSQL; the queue rules both use
are ``_stores.queue_store``'s),
paging history and the summary of operations (a pass over SQLite's local file;
PostgreSQL's from the cached log, sparing the server), leases and the group
commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from .._core import repair as _repair
from .._core import service as _service
from .._core.contract import LIVE_STATUSES, ExecutionInfo
from .._core.errors import (
    CallbackClosedError,
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionPausedError,
    InvocationInterruptedError,
    StoreError,
    ValidationError,
)
from .._core.log import Operation, OperationStatus, OperationType, OperationUpdate
from .ids import new_callback_id
from .logs import LogPage, level_number
from .sqlite import paging as _paging
from .sqlite.schema import _INFO_COLUMNS, _dumps, _error, _info, _loads, _no_callback, _now_ms

_STARTED = OperationStatus.STARTED

#: What redrive accepts: executions that ended without succeeding.
REDRIVABLE = frozenset({"FAILED", "STOPPED", "TIMED_OUT"})
#: How :meth:`executions` orders executions: by start, or by duration.
ORDERS = ("newest", "oldest", "longest", "shortest")


class _Cache(Protocol):
    """What the shared operations use of a store's cached log of one execution."""

    pk: int
    version: int
    ops: dict[str, Operation]
    pending_ops: dict[str, Operation]
    pending_events: list[dict[str, Any]]
    stale: bool
    foreign: bool


class _SqlStore:
    """The operations both SQL stores run the same way; the dialect hooks are last."""

    if TYPE_CHECKING:  # given by each store's journal (and, for create, the store)
        _lock: threading.RLock
        _cache: dict[str, Any]
        _held: set[str]
        _logs: dict[str, Any]
        draining: bool
        listener: Callable[[str, Mapping[str, Operation]], None] | None

        def _tx(self) -> AbstractContextManager[Any]: ...
        def _query(self, sql: str, args: Any = ...) -> list[Any]: ...
        def _pk(self, execution_id: str) -> tuple[int, int]: ...
        def _cached(self, execution_id: str) -> _Cache: ...
        def _flush(
            self,
            execution_id: str,
            c: Any,
            now: int,
            extra: Callable[[Any, int], None] | None = None,
        ) -> bool: ...
        def _append(
            self, conn: Any, pk: int, ops: list[dict[str, Any]], events: list[Any]
        ) -> None: ...
        def _complete_parent(self, conn: Any, *args: Any, **kwargs: Any) -> None: ...
        def _complete_invoke_in(self, conn: Any, *args: Any, **kwargs: Any) -> None: ...
        def owner_is_dead(self, owner: str) -> bool: ...
        def history_page(
            self, execution_id: str, *args: Any, **kwargs: Any
        ) -> tuple[list[dict[str, Any]], str | None]: ...
        def create(
            self, execution_id: str, input_payload: str, now: int, *args: Any, **kwargs: Any
        ) -> bool: ...

    # ------------------------------------------------------------------ the engine's

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
        """A new execution (``new_id``) with ``execution_id``'s input and the operations
        it recorded before operation ``at`` (an id, or a unique name), due at once
        (DBOS's fork_workflow); the copied operations never run again. ``target``
        (default: the source's) and ``code_version`` are the new execution's. Returns
        the id of the operation forked from. An unknown source or operation, or an
        existing ``new_id``: a clear error and nothing written. ``reseal`` rewrites
        each copied operation (and the EXECUTION one, whose input the fork takes) for
        the new execution: an encrypting wrapper seals payloads under its id."""
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
            return bool(
                self._query(self._sql("SELECT 1 FROM executions WHERE id = ?"), (execution_id,))
            )

    def trace_context(self, execution_id: str) -> str | None:
        """The W3C ``traceparent`` the execution was started under (None: none, or no
        such execution)."""
        with self._lock:
            rows = self._query(
                self._sql("SELECT trace_context FROM executions WHERE id = ?"), (execution_id,)
            )
        return rows[0][0] if rows else None

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
            except self._CONFLICT:
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
                    self._sql(
                        "UPDATE executions SET invocation_id = ?, invocation_started = ? "
                        "WHERE pk = ?"
                    ),
                    (request_id, now if request_id else None, pk),
                )

            if request_id is not None or changed:
                self._flush(execution_id, c, now, note if request_id is not None else None)
            if self.listener is not None and changed:
                self.listener(execution_id, changed)

    def end_invocation(self, execution_id: str, event: dict[str, Any]) -> None:
        """Record the InvocationCompleted event; no invocation is running any more
        (the log records it left are written with it)."""
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)

            def clear(conn: Any, pk: int) -> None:
                conn.execute(
                    self._sql(
                        "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                        "WHERE pk = ?"
                    ),
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
                    self._sql(
                        "UPDATE executions SET status = ?, result = ?, error = ?, ended_at = ?, "
                        "wake_at = NULL, invocation_id = NULL, invocation_started = NULL "
                        "WHERE pk = ?"
                    ),
                    (status, result, None if error is None else _dumps(error.to_dict()), now, pk),
                )
                self._complete_parent(conn, pk, status, now, result, error)

            self._flush(execution_id, c, now, end)

    def add_event(self, execution_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)
            self._flush(execution_id, c, event.get("EventTimestamp") or _now_ms())

    # ------------------------------------------------------------------ reading one

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        with self._lock:
            rows = self._query(
                self._sql("SELECT status, result, error FROM executions WHERE id = ?"),
                (execution_id,),
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        status, result, error = rows[0]
        return status, result, _error(error)

    def info(self, execution_id: str) -> ExecutionInfo:
        """The execution's row; StoreError when there is none."""
        with self._lock:
            rows = self._query(
                self._sql(f"SELECT {_INFO_COLUMNS} FROM executions WHERE id = ?"), (execution_id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return _info(rows[0])

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
        """A page of :meth:`load`'s operations (in the order they were first recorded,
        each in its current state) from ``marker`` on, and the next page's marker (None:
        the last). Paged from the cached log: the first page of an execution that changed
        reads its log; every other page costs O(page) (see ``paging``'s docstring)."""
        _paging.check_limit(limit)
        with self._lock:
            c = self._cached(execution_id)
            return _paging.operations_page(c.ops, c.pk, execution_id, marker, limit)

    def log_records(
        self,
        execution_id: str,
        *,
        after: int = 0,
        limit: int | None = None,
        level: int | str = 0,
    ) -> LogPage:
        """The execution's kept log records numbered after ``after``, at ``level`` and
        above, in order; at most ``limit`` (None: all). ``dropped`` on the page: how
        many of its oldest records were not kept (``keep_logs``)."""
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

    def changed_elsewhere(self, execution_id: str) -> bool:
        """True when another process wrote to the execution since this store last looked."""
        with self._lock:
            c = self._cache.get(execution_id)
            _, version = self._pk(execution_id)
            return c is None or c.stale or c.version != version

    def running_invokes(self, execution_id: str) -> list[Operation]:
        """CHAINED_INVOKE operations started and not yet completed."""
        with self._lock:
            return [
                op
                for op in self._cached(execution_id).ops.values()
                if op.type is OperationType.CHAINED_INVOKE and op.status is _STARTED
            ]

    # ------------------------------------------------------------------ listings

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
            clause, values = self._status_in(sorted(wanted))
            where.append(clause)
            args += values
        for column, value in (("target", target), ("code_version", code_version)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if name_prefix:
            where.append(self._ID_PREFIX)
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
            clause, values = self._keyset(key, "<" if down else ">", at, pk)
            where.append(clause)
            args += values
        sql = f"SELECT {_INFO_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        way = "DESC" if down else "ASC"
        sql += f" ORDER BY {key} {way}, pk {way} LIMIT ?"
        with self._lock:
            rows = self._query(self._sql(sql), (*args, limit))
        return [_info(r) for r in rows]

    def page_marker(self, info: ExecutionInfo, *, order: str = "newest") -> str:
        """The marker that lists the executions after ``info`` (one :meth:`executions`
        returned) in ``order``: opaque to callers, stable while executions are added.
        One marker serves ``newest`` and ``oldest`` (read the other way, it lists the
        executions before ``info``); one other, ``longest`` and ``shortest``."""
        key, _ = _order(order)
        with self._lock:
            rows = self._query(
                self._sql(f"SELECT {key}, pk FROM executions WHERE id = ?"), (info.id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {info.id!r}")
        if rows[0][0] is None:
            raise ValidationError(f"execution {info.id!r} has not ended: it has no duration")
        prefix = "" if key == "created_at" else "d"
        return f"{prefix}{rows[0][0]}.{rows[0][1]}"

    def overdue(self, now: int, *, limit: int = 100) -> list[str]:
        """Ids of live (running, pausing or paused) executions whose deadline is at or
        before ``now``, earliest deadline first: :meth:`time_out` ends them."""
        with self._lock:
            rows = self._query(
                self._sql(
                    "SELECT id FROM executions WHERE status IN ('RUNNING', 'PAUSING', 'PAUSED') "
                    "AND deadline IS NOT NULL AND deadline <= ? ORDER BY deadline LIMIT ?"
                ),
                (now, limit),
            )
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ the outside world

    def callback_execution(self, callback_id: str) -> str:
        """The execution a callback id belongs to."""
        with self._lock:
            rows = self._query(
                self._sql(
                    "SELECT e.id FROM callbacks c JOIN executions e ON e.pk = c.execution "
                    "WHERE c.callback_id = ?"
                ),
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
        is made due (and listening workers told), so its holder (or a worker)
        re-invokes it. With ``execution_id``, a callback of any other execution is
        refused as unknown.
        """
        with self._lock, self._tx() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT c.execution, c.body, e.id, e.status FROM callbacks c "
                    "JOIN executions e ON e.pk = c.execution WHERE c.callback_id = ?"
                    f"{self._CALLBACK_LOCK}"
                ),
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
                self._sql("UPDATE callbacks SET body = ? WHERE callback_id = ?"),
                (_dumps(new.to_dict()), callback_id),
            )
            if action != "heartbeat":
                conn.execute(
                    self._sql("UPDATE executions SET wake_at = ?, updated_at = ? WHERE pk = ?"),
                    (now, now, pk),
                )
                self._notify(conn)
        return str(execution_id)

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
        """The execution's ``columns``, locked for this transaction (:attr:`_ROW_LOCK`)."""
        row = conn.execute(
            self._sql(f"SELECT {columns} FROM executions WHERE id = ?{self._ROW_LOCK}"),
            (execution_id,),
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
                    self._sql(
                        "UPDATE executions SET status = 'STOPPED', error = ?, ended_at = ?, "
                        f"updated_at = ?, wake_at = NULL{self._END_SET} WHERE pk = ?"
                    ),
                    (_dumps(error.to_dict()), now, now, pk),
                )
                first = self._start_ops(conn, pk)
                ops: list[dict[str, Any]] = []
                for d in _loads(first) if first else ():
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
                    self._sql(
                        "UPDATE executions SET status = 'TIMED_OUT', error = ?, ended_at = ?, "
                        "updated_at = ?, wake_at = NULL, invocation_id = NULL, "
                        f"invocation_started = NULL{self._END_SET} WHERE pk = ?"
                    ),
                    (_dumps(error.to_dict()), now, now, pk),
                )
                self._append(conn, pk, [op.to_dict() for op in changed.values()], events)
                for op in changed.values():
                    if op.callback_id is not None:
                        conn.execute(
                            self._sql("UPDATE callbacks SET body = ? WHERE callback_id = ?"),
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
        """Delete up to ``limit`` ended executions whose retention has passed, with their
        log, history, callbacks and log records, in one transaction; returns how many.
        An execution's retention is its own (recorded at start), else
        ``default_retention_ms`` (None: kept forever)."""
        with self._lock:
            with self._tx() as conn:
                rows = conn.execute(
                    self._sql(
                        "SELECT pk, id FROM executions WHERE retention_ms IS NOT NULL "
                        "AND ended_at IS NOT NULL AND ended_at + retention_ms <= ? "
                        f"ORDER BY ended_at + retention_ms LIMIT ?{self._PURGE_LOCK}"
                    ),
                    (now, limit),
                ).fetchall()
                if default_retention_ms is not None and len(rows) < limit:
                    rows += conn.execute(
                        self._sql(
                            "SELECT pk, id FROM executions WHERE retention_ms IS NULL "
                            "AND ended_at IS NOT NULL AND ended_at <= ? ORDER BY ended_at "
                            f"LIMIT ?{self._PURGE_LOCK}"
                        ),
                        (now - default_retention_ms, limit - len(rows)),
                    ).fetchall()
                if rows:
                    self._delete_rows(conn, [pk for pk, _ in rows])
            for _, execution_id in rows:
                self._cache.pop(execution_id, None)
        return len(rows)

    def pause(self, execution_id: str, now: int, *, reason: str | None = None) -> str:
        """Pause a running execution (Lambda's PauseDurableExecution); its new status.

        Nothing advances a paused execution; callbacks may still be completed and
        invoked executions may still end (they are applied when it resumes). When a
        worker is advancing it, the status is PAUSING until that worker's next
        checkpoint (which is recorded), then PAUSED; otherwise PAUSED at once.
        Pausing a paused execution changes nothing.
        """
        with self._lock, self._tx() as conn:
            pk, status, owner, expires, real = self._lease_row(conn, execution_id)
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
                self._sql("UPDATE executions SET status = ?, updated_at = ? WHERE pk = ?"),
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
                self._sql(
                    "UPDATE executions SET status = 'RUNNING', wake_at = ?, updated_at = ? "
                    "WHERE pk = ?"
                ),
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
        """Delete an ended execution with its log, history, callbacks and log records
        (Lambda's DeleteDurableExecution). A running or paused one only with ``force``
        (its worker, if any, is fenced off: it can write nothing more)."""
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
            # the log keeps its history events; the operations' state is rewritten in
            # one new row (row 1 keeps the execution's start, as stop() reads it)
            self._clear_rewritten_ops(conn, pk)
            event = {
                "EventType": "ExecutionRedriven",
                "EventTimestamp": now,
                "Id": execution_id,
                "ExecutionRedrivenDetails": {"RedriveTimestamp": now},
            }
            self._append(conn, pk, [op.to_dict() for op in kept], [event])
            self._drop_callbacks_except(conn, pk, kept_ids)
            # a timeout runs again from the redrive (an absolute deadline is dropped)
            conn.execute(
                self._sql(
                    "UPDATE executions SET status = 'RUNNING', result = NULL, error = NULL, "
                    "ended_at = NULL, wake_at = ?, updated_at = ?, invocation_id = NULL, "
                    f"invocation_started = NULL, deadline = ? + timeout_ms{self._REDRIVE_SET} "
                    "WHERE pk = ?"
                ),
                (now, now, now, pk),
            )
            self._notify(conn)
        self._cache.pop(execution_id, None)
        return [op.id for op in ops if op.id not in kept_ids]

    # ------------------------------------------------------------------ the dialect

    #: Raised by the journal's flush when another process changed the log under it.
    _CONFLICT: ClassVar[type[Exception]]
    #: After a ``SELECT`` of one execution's row that a write transaction reads.
    _ROW_LOCK: ClassVar[str]
    #: After the ``SELECT`` of a callback's row and its execution's, to complete it.
    _CALLBACK_LOCK: ClassVar[str]
    #: After the ``SELECT`` of the executions purge deletes (purgers share the work).
    _PURGE_LOCK: ClassVar[str]
    #: More ``SET`` of the ``UPDATE`` that ends an execution from outside (stop,
    #: time out), besides the version bump of :meth:`_append`.
    _END_SET: ClassVar[str]
    #: More ``SET`` of redrive's ``UPDATE`` of the execution.
    _REDRIVE_SET: ClassVar[str]
    #: A condition that ``id`` starts with a prefix: its length, then the prefix.
    _ID_PREFIX: ClassVar[str]

    def _sql(self, text: str) -> str:
        """``text`` (SQL with ``?`` placeholders) in the database's parameter style."""
        raise NotImplementedError

    def _status_in(self, statuses: list[str]) -> tuple[str, list[Any]]:
        """A condition that ``status`` is one of ``statuses``, and its arguments."""
        raise NotImplementedError

    def _keyset(self, key: str, cmp: str, at: int, pk: int) -> tuple[str, list[Any]]:
        """A condition that ``(key, pk)`` comes after ``(at, pk)`` (``cmp``: ``<`` or
        ``>``), and its arguments."""
        raise NotImplementedError

    def _notify(self, conn: Any) -> None:
        """Tell waiting workers, once ``conn``'s transaction commits, that work is due."""
        raise NotImplementedError

    def _lease_row(self, conn: Any, execution_id: str) -> tuple[Any, ...]:
        """``pk, status, lease_owner, lease_expires`` of the execution (locked, as
        :meth:`_row`) and the time its lease expiry is compared with."""
        raise NotImplementedError

    def _start_ops(self, conn: Any, pk: int) -> str | None:
        """The ``ops`` of the execution's first journal row (its start)."""
        raise NotImplementedError

    def _clear_rewritten_ops(self, conn: Any, pk: int) -> None:
        """Drop the ``ops`` of the execution's journal rows after the first (redrive
        writes their state again); their history events stay."""
        raise NotImplementedError

    def _drop_callbacks_except(self, conn: Any, pk: int, kept_ids: set[str]) -> None:
        """Delete the execution's callbacks whose operation is not in ``kept_ids``."""
        raise NotImplementedError

    def _delete_rows(self, conn: Any, pks: list[int]) -> None:
        """Delete the executions ``pks`` with their journal, callbacks and log records."""
        raise NotImplementedError

    def _read_logs(self, pk: int, after: int, limit: int | None, level: int) -> LogPage:
        """The execution's kept log records (:meth:`log_records`, checked)."""
        raise NotImplementedError


def start_columns(
    *,
    target: str | None,
    workdir: str | None,
    parent: str | None,
    parent_op: str | None,
    code_version: str | None,
    deadline: int | None,
    timeout_ms: int | None,
    retention_ms: int | None,
    queue: str | None,
    partition: str | None,
    priority: int,
    dedup_id: str | None,
    trace_context: str | None,
) -> dict[str, Any]:
    """The ``executions`` columns of a start (``create``'s arguments, by column name),
    for each store's ``insert_start``; a start onto no queue writes no queue columns
    (their defaults: no queue, priority 0)."""
    queued = (
        {}
        if queue is None
        else {
            "queue": queue,
            "partition_key": partition,
            "priority": priority,
            "dedup_id": dedup_id,
        }
    )
    return {
        "target": target,
        "workdir": workdir,
        "parent": parent,
        "parent_op": parent_op,
        "code_version": code_version,
        "deadline": deadline,
        "timeout_ms": timeout_ms,
        "retention_ms": retention_ms,
        **queued,
        "trace_context": trace_context,
    }


def _order(order: str) -> tuple[str, bool]:
    """The SQL key of an :meth:`executions` order, and whether it descends."""
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
