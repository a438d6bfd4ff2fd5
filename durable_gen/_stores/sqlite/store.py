"""The SQLite store: what the engines call, built on the journal, leases and outside parts
(the logic it shares with the PostgreSQL store is in ``_stores.sql_store``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from ..._core.contract import DurableStore, check_same_start
from ..._core.log import Operation
from ..owners import LIVE_OWNERS
from ..sql_store import start_columns
from . import paging as _paging
from .journal import insert_start
from .outside import _Outside
from .queues import _Queues
from .schedules import _Schedules
from .schema import _SEQ_BITS, _loads
from .schema import _store_error as _sqlite_error


class SqliteStore(_Outside, _Queues, _Schedules):
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
        trace_context: str | None = None,
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
        (``_stores.queue_store``), in ``partition`` (a partitioned queue's key), with
        ``priority`` (higher first) and ``dedup_id`` (refused with
        :class:`~durable_gen._stores.queues.DuplicateExecutionError` while a live
        execution of the queue holds it); a start the queue does not allow is a
        :class:`ValidationError`, and nothing is recorded. ``trace_context``: the W3C
        ``traceparent`` it is started under (:meth:`trace_context`).
        """
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
            self._check_start(conn, queue, partition, dedup_id, priority, 0)
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
            )
            if copied is not None:
                self._append(conn, pk, [o.to_dict() for o in copied], [])
        return True

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


def _keeps_the_contract(store: SqliteStore) -> DurableStore:
    return store  # mypy checks that SqliteStore keeps the durable store contract
