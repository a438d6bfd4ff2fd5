"""The SQLite store: what the engines call, built on the journal, leases and outside parts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..._core import repair as _repair
from ..._core import service as _service
from ..._core.contract import (
    DurableStore,
    check_same_start,
)
from ..._core.errors import (
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionPausedError,
    InvocationInterruptedError,
    StoreError,
    ValidationError,
)
from ..._core.log import (
    Operation,
    OperationType,
    OperationUpdate,
)
from ..ids import new_callback_id
from ..logs import LogPage, level_number
from ..owners import (
    LIVE_OWNERS,
)
from . import paging as _paging
from .journal import _Conflict
from .logs import read_logs
from .outside import _Outside
from .queues import _Queues, check_start
from .schema import _SEQ_BITS, _dumps, _error, _loads, _now_ms
from .schema import _store_error as _sqlite_error


class SqliteStore(_Outside, _Queues):
    """Executions in a SQLite database, updated with the service's semantics.

    ``path`` defaults to :func:`default_db_path`. ``synchronous`` is ``"FULL"``
    (default: every durable checkpoint survives power loss) or ``"NORMAL"``.
    Writing to an execution needs its lease (:meth:`acquire`); the engine takes
    care of that. ``keep_logs``: how many log records of each execution to keep
    (default ``$DURABLE_GEN_KEEP_LOGS``, else 1,000; 0 keeps none), at ``log_level``
    (default INFO) and above; :meth:`log_records` reads them (``_stores.logs``).
    """

    def close(self) -> None:
        """Close the database connections (leases held are released first)."""
        with self._lock:
            self.release_all()
            LIVE_OWNERS.discard(self.owner)
            self._locks.release(self.owner)
            self._conn.close()
            with self._renew_lock:
                if self._renew_conn is not None:
                    self._renew_conn.close()
                    self._renew_conn = None
            if self._own_group is not None:
                self._own_group.close()

    def clone(self) -> SqliteStore:
        """Another store on the same file, with its own connection and lease owner;
        the clones of one store write their step results together (group commit)."""
        return SqliteStore(
            self.path,
            synchronous=self.synchronous,
            lease_seconds=self.lease_ms / 1000,
            busy_timeout=self.busy_timeout,
            group=self.shared_group(),
            keep_logs=self.keep_logs,
            log_level=self.log_level,
        )

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    ) -> bool:
        """Record a new RUNNING execution (due at once) with its EXECUTION operation.

        Lambda's name rule: when ``execution_id`` exists already with the same input
        (and target, when both are known), nothing is written and False is returned
        -- the caller gets the existing execution; with another input or target,
        :class:`ExecutionAlreadyStartedError`. Look-up and insert are one write
        transaction, so concurrent starts of one name create one execution.
        ``same_input(stored)`` compares a stored input (default: equal text).
        ``parent``/``parent_op``: the execution and CHAINED_INVOKE operation that
        invoked it; when it ends, that operation is completed with its outcome.
        ``code_version``: the version of the workflow's code it starts on.
        ``copied``: operations recorded with it, in the same transaction (a fork).
        ``deadline`` (epoch ms): when it ends TIMED_OUT if still running (``time_out``);
        ``timeout_ms``: the ExecutionTimeout it was given; ``retention_ms``: how long
        it is kept once ended (``purge``). ``queue``: the queue that admits it
        (``_stores.sqlite.queues``), in ``partition`` (a partitioned queue's key), with
        ``priority`` (higher first) and ``dedup_id`` (refused with
        :class:`~durable_gen._stores.queues.DuplicateExecutionError` while a live
        execution of the queue holds it); a start the queue does not allow is a
        :class:`ValidationError`, and nothing is recorded.
        """
        op, event = _service.start_execution(
            execution_id,
            input_payload,
            now,
            # as Lambda's history has it: whole seconds (at least 1)
            timeout_seconds=None if timeout_ms is None else max(1, round(timeout_ms / 1000)),
        )
        with self._lock, self._tx() as conn:
            row = conn.execute(
                "SELECT input, target FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is not None:
                check_same_start(
                    execution_id,
                    (same_input or input_payload.__eq__)(row[0]),
                    row[1],
                    target,
                )
                return False
            check_start(conn, queue, partition, dedup_id, priority)
            cur = conn.execute(
                "INSERT INTO executions (id, target, workdir, status, input, "
                "created_at, updated_at, wake_at, parent, parent_op, code_version, "
                "deadline, timeout_ms, retention_ms, queue, partition_key, priority, dedup_id) "
                "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    queue,
                    partition,
                    priority,
                    dedup_id,
                ),
            )
            pk = cur.lastrowid
            assert pk is not None
            conn.execute(
                "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)",
                ((pk << _SEQ_BITS) | 1, _dumps([op.to_dict()]), _dumps([event])),
            )
            if copied is not None:
                self._append(conn, pk, [o.to_dict() for o in copied], [])
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
            return bool(self._query("SELECT 1 FROM executions WHERE id = ?", (execution_id,)))

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

            def note(conn: sqlite3.Connection, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET invocation_id = ?, invocation_started = ? WHERE pk = ?",
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

            def clear(conn: sqlite3.Connection, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                    "WHERE pk = ?",
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

            def end(conn: sqlite3.Connection, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET status = ?, result = ?, error = ?, ended_at = ?, "
                    "wake_at = NULL, invocation_id = NULL, invocation_started = NULL "
                    "WHERE pk = ?",
                    (status, result, None if error is None else _dumps(error.to_dict()), now, pk),
                )
                self._complete_parent(conn, pk, status, now, result, error)

            self._flush(execution_id, c, now, end)

    def add_event(self, execution_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)
            self._flush(execution_id, c, event.get("EventTimestamp") or _now_ms())

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        with self._lock:
            rows = self._query(
                "SELECT status, result, error FROM executions WHERE id = ?", (execution_id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        status, result, error = rows[0]
        return status, result, _error(error)

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's events (GetDurableExecutionHistory shapes), EventId from 1."""
        with self._lock:
            pk, _ = self._pk(execution_id)
            lo = pk << _SEQ_BITS
            rows = self._query(
                "SELECT events FROM journal WHERE key > ? AND key < ? AND events IS NOT NULL "
                "ORDER BY key",
                (lo, lo + (1 << _SEQ_BITS)),
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
        """A page of :meth:`history`: up to ``limit`` (1 to 1,000) events from ``marker``
        (None: the first; oldest first, or newest first with ``reverse``) and the opaque
        marker of the next page (None: this was the last). Reads O(page) rows by key,
        wherever the page is in the history; a marker that is not one this store handed
        out for the execution (and direction) is a :class:`ValidationError`."""
        _paging.check_limit(limit)
        with self._lock:
            pk, _ = self._pk(execution_id)
            try:
                return _paging.history_page(self._conn, pk, execution_id, marker, limit, reverse)
            except sqlite3.Error as e:
                raise _sqlite_error(self.path, e) from None

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

    def operations_summary(
        self, execution_id: str, *, head: int, tail: int
    ) -> _paging.OperationsSummary:
        """Counts by status and the first ``head`` / last ``tail`` operations, read in
        one pass over the log without keeping every operation (``durable-gen show``)."""
        with self._lock:
            pk, _ = self._pk(execution_id)
            try:
                return _paging.summarize_operations(self._conn, pk, execution_id, head, tail)
            except sqlite3.Error as e:
                raise _sqlite_error(self.path, e) from None

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
            try:
                return read_logs(self._conn, pk, after=after, limit=limit, level=number)
            except sqlite3.Error as e:
                raise _sqlite_error(self.path, e) from None


def _keeps_the_contract(store: SqliteStore) -> DurableStore:
    return store  # mypy checks that SqliteStore keeps the durable store contract
