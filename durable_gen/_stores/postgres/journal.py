"""The journal: a store's connections, its cache of each execution's log, fenced writes,
leases, and the proof that a lease holder is alive.

:class:`_Journal` holds the state every part of :class:`PostgresStore` shares. Its
``_flush`` is the one place a lease holder's changes are written (one fenced
transaction, one journal row); ``_fast_flush`` is the common case, a step's result,
as one fenced statement (``FAST_APPEND``) that a worker pool's stores commit
together (``group.py``); ``_append`` writes from outside the lease holder's flow
(callbacks, invokes, stop), bumping the execution's version so the holder rereads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import psycopg

from ..._core import service as _service
from ..._core.contract import (
    ADVANCING_STATUSES,
    LIVE_STATUSES,
    ExecutionInfo,
    LeaseHeldError,
    LeaseLostError,
    describe_owner,
    parse_owner,
)
from ..._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionNotFoundError,
    StoreError,
)
from ..._core.log import Operation, OperationStatus, OperationType
from ..logs import LogBuffer, LogEntry, LogPage, Pending, keep_logs_option, level_number
from ..owners import HOST, LIVE_OWNERS, new_owner, process_start_token
from ..sqlite.schema import _dumps, _loads, storable
from ..urls import is_postgres_url
from .group import GroupCommit
from .schema import (
    DEFAULT_SCHEMA,
    SERVER_NOW,
    check_schema_name,
    connect,
    lost_connection,
    prepare,
    redact,
    store_error,
)

_STARTED = OperationStatus.STARTED
#: Seconds between the attempts of :meth:`_Journal.release` to let go of a lease over a
#: lost connection (about 8 s in all: a server restart; then the lease expires instead).
RELEASE_RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 4.0)
#: How long a lease lasts without renewal; the engine renews it every third of this.
DEFAULT_LEASE_SECONDS = 30.0

#: A step's result: the fence (this store holds the lease, the execution is RUNNING,
#: nobody else wrote since this store read it) and the append in one statement --
#: one transaction, one row lock, one index entry. The UPDATE changes no indexed
#: column, so it is a heap-only (HOT) update. Returns the new row's number, or no
#: row when the fence does not hold (nothing written).
FAST_APPEND = (
    "WITH fence AS (UPDATE executions SET seq = seq + 1 WHERE pk = %(pk)s "
    "AND version = %(version)s AND lease_owner = %(owner)s AND status = 'RUNNING' "
    "RETURNING pk, seq) "
    "INSERT INTO journal (execution, seq, ops, events) "
    "SELECT pk, seq, %(ops)s, %(events)s FROM fence RETURNING seq"
)

#: An append from outside the lease holder's flow: the execution's version is bumped,
#: so the holder's cache (and its fast path) knows someone else wrote.
_OUTSIDE_APPEND = (
    "WITH row AS (UPDATE executions SET seq = seq + 1, version = version + 1 "
    "WHERE pk = %(pk)s RETURNING pk, seq) "
    "INSERT INTO journal (execution, seq, ops, events) "
    "SELECT pk, seq, %(ops)s, %(events)s FROM row"
)

_INFO_COLUMNS = (
    "id, target, workdir, status, input, result, error, created_at, updated_at, "
    "ended_at, wake_at, lease_owner, lease_expires, code_version, deadline, timeout_ms, "
    "retention_ms"
)

_LOG_INSERT = (
    "INSERT INTO logs (execution, seq, time, level, logger, message, op_id, op_name, "
    "attempt, exception) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def insert_start(
    conn: Any,
    execution_id: str,
    input_payload: str,
    now: int,
    *,
    wake_at: int | None = None,
    columns: Mapping[str, Any] = {},
    copied: list[Operation] | None = None,
) -> int | None:
    """Write a new RUNNING execution (due at ``wake_at``, default now) and its first
    journal row (the EXECUTION operation and ExecutionStarted; ``copied`` operations
    as a second) in ``conn``'s transaction; its pk, or None when an execution with
    that id exists (nothing written). ``columns``: the other ``executions`` columns
    to set (names are this module's, never a caller's input); ``timeout_ms`` among
    them becomes the start's ExecutionTimeout, in whole seconds as Lambda's history
    has it (at least 1). The one way a start is written: ``create`` and the
    schedules' ticks (as ``_stores.sqlite.journal.insert_start``)."""
    timeout_ms = columns.get("timeout_ms")
    op, event = _service.start_execution(
        execution_id,
        input_payload,
        now,
        timeout_seconds=None if timeout_ms is None else max(1, round(timeout_ms / 1000)),
    )
    names = "".join(f", {name}" for name in columns)
    marks = ", %s" * len(columns)
    row = conn.execute(
        f"INSERT INTO executions (id, status, input, created_at, updated_at, wake_at, seq{names}) "
        f"VALUES (%s, 'RUNNING', %s, %s, %s, %s, %s{marks}) "
        "ON CONFLICT (id) DO NOTHING RETURNING pk",
        (
            execution_id,
            input_payload,
            now,
            now,
            now if wake_at is None else wake_at,
            1 if copied is None else 2,
            *columns.values(),
        ),
    ).fetchone()
    if row is None:
        return None
    pk: int = row[0]
    conn.execute(
        "INSERT INTO journal (execution, seq, ops, events) VALUES (%s, 1, %s, %s)",
        (pk, _dumps([op.to_dict()]), _dumps([event])),
    )
    if copied is not None:
        conn.execute(
            "INSERT INTO journal (execution, seq, ops, events) VALUES (%s, 2, %s, NULL)",
            (pk, _dumps([o.to_dict() for o in copied])),
        )
    return pk


class _Conflict(Exception):
    """Another process changed an operation this store was about to overwrite."""


class _Cached:
    """This store's view of one execution's log, valid while ``version`` matches."""

    __slots__ = (
        "foreign",
        "ops",
        "pending_events",
        "pending_ops",
        "pk",
        "rewrites",
        "seq",
        "stale",
        "version",
    )

    def __init__(
        self, pk: int, version: int, seq: int, rewrites: int, ops: dict[str, Operation]
    ) -> None:
        self.pk = pk
        self.version = version
        self.seq = seq  # the number of the last journal row read or written
        self.rewrites = rewrites  # redrives rewrite old rows: then read it all again
        self.ops = ops
        self.pending_ops: dict[str, Operation] = {}
        self.pending_events: list[dict[str, Any]] = []
        self.stale = False
        #: another process wrote since the running invocation began (see ``release``)
        self.foreign = False


_Extra = Callable[[Any, int], None]


def owner_key(owner: str) -> int:
    """The advisory lock key (a signed 64-bit integer) that proves ``owner`` alive."""
    digest = hashlib.blake2b(owner.encode(), digest_size=8, person=b"dg-owner").digest()
    return int.from_bytes(digest, "big", signed=True)


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL can hold it: lone surrogates and NUL (which ``text``
    columns refuse) replaced by U+FFFD. Log records need it; payloads never do
    (serdes writes JSON, which escapes both)."""
    text = storable(text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _error(text: str | None) -> ErrorObject | None:
    if text is None:
        return None
    try:
        return ErrorObject.from_dict(_loads(text))
    except ValueError as e:
        raise CorruptLogError(f"a recorded execution error is not valid JSON: {e}") from None


def _info(r: tuple[Any, ...]) -> ExecutionInfo:
    return ExecutionInfo(
        id=r[0],
        target=r[1],
        workdir=r[2],
        status=r[3],
        input=r[4],
        result=r[5],
        error=_error(r[6]),
        created_at=r[7],
        updated_at=r[8],
        ended_at=r[9],
        wake_at=r[10],
        lease_owner=r[11],
        lease_expires=r[12],
        code_version=r[13],
        deadline=r[14],
        timeout_ms=r[15],
        retention_ms=r[16],
    )


class _Journal:
    """State, connections, fenced writes and leases shared by the store's parts."""

    if TYPE_CHECKING:  # given by the store's queues (``_stores.queue_store``)

        def _admit(self, conn: Any, pk: int, execution_id: str, real: int) -> int | None: ...

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        create: bool = True,
        group: GroupCommit | None = None,
        keep_logs: int | None = None,
        log_level: int | str = "INFO",
    ) -> None:
        if not is_postgres_url(url):
            raise StoreError(
                f"{url!r:.80} is not a PostgreSQL URL: write it as "
                "postgresql://user[:password]@host[:port]/database"
            )
        if not lease_seconds > 0:
            raise StoreError(f"lease_seconds must be positive, got {lease_seconds!r}")
        self.url = url
        #: where the data is, for messages: the URL without its password
        self.path = redact(url)
        self.schema = check_schema_name(schema)
        self.lease_ms = round(lease_seconds * 1000)
        self.owner = new_owner()
        self.keep_logs = keep_logs_option(keep_logs)
        self.log_level = level_number(log_level)
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._held: set[str] = set()
        self._acquired: dict[str, int] = {}  # execution -> its version when we took the lease
        self._logs: dict[str, LogBuffer] = {}
        self.listener: Callable[[str, Mapping[str, Operation]], None] | None = None
        #: Set when the process shuts down: the running invocation ends at its next
        #: durable checkpoint (:class:`InvocationInterruptedError`, after the write).
        self.draining = False
        self._group = group
        self._own_group: GroupCommit | None = None
        self._registered = False
        self._renew_conn: Any = None
        self._renew_lock = threading.Lock()
        self._listen_conn: Any = None
        self._conn: Any = connect(url, self.schema)
        try:
            prepare(self._conn, url, self.schema, create=create)
        except psycopg.Error as e:
            self._conn.close()
            raise store_error(url, e) from None
        except BaseException:
            self._conn.close()
            raise
        LIVE_OWNERS.add(self.owner)

    # ------------------------------------------------------------------ connections

    def _db(self) -> Any:
        """The store's connection; a broken one is replaced (and this owner's proof of
        life taken again on the new one)."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            with contextlib.suppress(psycopg.Error):
                if conn is not None:
                    conn.close()
            self._conn = None
            conn = self._conn = connect(self.url, self.schema)
            if self._registered:
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", (owner_key(self.owner),))
                except psycopg.Error as e:
                    raise store_error(self.url, e) from None
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """A transaction on the store's connection; psycopg errors as store errors
        (the transaction rolled back: nothing of it was recorded)."""
        conn = self._db()
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as e:
            self._drop_if_lost(conn, e)
            raise store_error(self.url, e) from None

    def _drop_if_lost(self, conn: Any, e: BaseException) -> bool:
        """Close the store's connection ``conn`` if ``e`` says it is gone (the next
        use connects again); whether it was."""
        if not lost_connection(conn, e):
            return False
        with contextlib.suppress(psycopg.Error):
            conn.close()
        return True

    def _query(self, sql: str, args: Any = ()) -> list[Any]:
        """Rows of one read; a lost connection is retried once on a new one."""
        for attempt in (1, 2):
            conn = self._db()
            try:
                return list(conn.execute(sql, args).fetchall())
            except psycopg.Error as e:
                if self._drop_if_lost(conn, e) and attempt == 1:
                    continue
                raise store_error(self.url, e) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _pk(self, execution_id: str) -> tuple[int, int]:
        rows = self._query("SELECT pk, version FROM executions WHERE id = %s", (execution_id,))
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return rows[0][0], rows[0][1]

    def _notify(self, conn: Any) -> None:
        """Tell listening workers that work is due (sent when the transaction commits)."""
        conn.execute("SELECT pg_notify(%s, '')", (self.channel,))

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel on which this schema's new work is announced."""
        return f"{self.schema}_due"

    # ------------------------------------------------------------------ the cache

    def _cached(self, execution_id: str) -> _Cached:
        c = self._cache.get(execution_id)
        rows = self._query(
            "SELECT pk, version, seq, rewrites FROM executions WHERE id = %s", (execution_id,)
        )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        pk, version, seq, rewrites = rows[0]
        if c is not None and not c.stale and c.pk == pk and c.version == version:
            return c
        if (
            c is not None
            and not c.stale
            and c.pk == pk
            and c.rewrites == rewrites
            and not c.pending_ops
            and not c.pending_events
            and c.seq <= seq
        ):
            # appended to since: read the new rows only (the journal is append-only
            # but for redrive, which bumps ``rewrites``)
            c.seq = self._read_rows(execution_id, pk, c.seq, c.ops)
            c.version = version
            c.foreign = True
            return c
        ops: dict[str, Operation] = {}
        last = self._read_rows(execution_id, pk, 0, ops)
        fresh = _Cached(pk, version, last, rewrites, ops)
        fresh.foreign = c is not None  # reloaded: someone else wrote
        if c is not None and c.pending_ops:  # keep what this store has not written yet
            fresh.ops.update(c.pending_ops)
            fresh.pending_ops = c.pending_ops
            fresh.pending_events = c.pending_events
        self._cache[execution_id] = fresh
        return fresh

    def _read_rows(self, execution_id: str, pk: int, after: int, ops: dict[str, Operation]) -> int:
        """Apply the journal rows after ``after`` to ``ops``; the last row's number."""
        rows = self._query(
            "SELECT seq, ops FROM journal WHERE execution = %s AND seq > %s ORDER BY seq",
            (pk, after),
        )
        from_dict = Operation.from_dict
        last = after
        for seq, body in rows:
            last = seq
            if body is None:
                continue
            try:
                for d in _loads(body):
                    op = from_dict(d)
                    ops[op.id] = op
            except (ValueError, TypeError) as e:
                raise CorruptLogError(
                    f"execution {execution_id!r} has a journal row that is not valid JSON "
                    f"({e}) in {self.path}"
                ) from None
        return last

    # ------------------------------------------------------------------ writing

    def _flush(self, execution_id: str, c: _Cached, now: int, extra: _Extra | None = None) -> bool:
        """Write the pending changes as one journal row (and ``extra``) in one transaction.

        Fenced: the transaction locks the execution's row and checks that this store
        holds the lease and the execution is RUNNING (or PAUSING: being paused, it may
        still write). True when the execution is PAUSING.
        """
        logs = self._logs.get(execution_id)
        if extra is None and c.pending_ops and not c.stale:
            try:
                if self._fast_flush(c, logs):
                    return False
            except BaseException:
                # not known to be written: forget it, so that no later write records it
                # behind the back of the caller this error reaches (the log is reread)
                self._cache.pop(execution_id, None)
                raise
        log_seq: int | None = None
        try:
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT version, lease_owner, status, seq FROM executions WHERE pk = %s "
                    "FOR UPDATE",
                    (c.pk,),
                ).fetchone()
                if row is None or row[1] != self.owner or row[2] not in ADVANCING_STATUSES:
                    raise LeaseLostError(
                        execution_id, row[2] if row else None, row[1] if row else None
                    )
                version, _, status, seq = row
                pausing: bool = status == "PAUSING"
                if version != c.version:  # someone else wrote (a callback, a takeover note)
                    if any(
                        op.type is OperationType.CALLBACK and op.status is not _STARTED
                        for op in c.pending_ops.values()
                    ):
                        raise _Conflict  # a timeout computed on a callback completed meanwhile
                    c.stale = True
                    c.foreign = True
                pending_ops = c.pending_ops
                if pending_ops or c.pending_events:
                    seq += 1
                    conn.execute(
                        "INSERT INTO journal (execution, seq, ops, events) VALUES (%s, %s, %s, %s)",
                        (
                            c.pk,
                            seq,
                            _dumps([op.to_dict() for op in pending_ops.values()])
                            if pending_ops
                            else None,
                            _dumps(c.pending_events) if c.pending_events else None,
                        ),
                    )
                    for op in pending_ops.values():
                        if op.callback_id is not None:
                            conn.execute(
                                "INSERT INTO callbacks (callback_id, execution, op_id, body) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT (callback_id) DO UPDATE "
                                "SET body = excluded.body",
                                (op.callback_id, c.pk, op.id, _dumps(op.to_dict())),
                            )
                if logs:
                    log_seq = self._write_logs(conn, c.pk, logs)
                if extra is not None:
                    version += 1
                    conn.execute(
                        "UPDATE executions SET version = %s, updated_at = %s, seq = %s "
                        "WHERE pk = %s",
                        (version, now, seq, c.pk),
                    )
                    extra(conn, c.pk)
                elif seq != row[3]:
                    conn.execute("UPDATE executions SET seq = %s WHERE pk = %s", (seq, c.pk))
        except LeaseLostError:
            self._cache.pop(execution_id, None)
            self._held.discard(execution_id)
            raise
        except BaseException:
            self._cache.pop(execution_id, None)
            raise
        c.version = version
        c.seq = seq
        c.pending_ops = {}
        c.pending_events = []
        if logs is not None and log_seq is not None:
            logs.seq = log_seq
        return pausing

    def _fast_flush(self, c: _Cached, logs: LogBuffer | None = None) -> bool:
        """The common case (a step's result): one fenced statement, its own transaction
        (or a share of a group's). False: the fence did not hold (or a callback
        changed): take the slow path, which finds out why."""
        pending_ops = c.pending_ops
        for op in pending_ops.values():
            if op.callback_id is not None:
                return False
        events = c.pending_events
        params = {
            "pk": c.pk,
            "version": c.version,
            "owner": self.owner,
            "ops": _dumps([op.to_dict() for op in pending_ops.values()]),
            "events": _dumps(events) if events else None,
        }
        seq: int | None
        log_seq: int | None = None
        if logs:
            with self._tx() as conn:
                row = conn.execute(FAST_APPEND, params).fetchone()
                if row is None:
                    return False  # nothing written: the slow path finds out why
                seq = row[0]
                log_seq = self._write_logs(conn, c.pk, logs)
        elif self._group is not None:
            try:
                seq = self._group.append(params)
            except psycopg.Error as e:
                raise store_error(self.url, e) from None
        else:
            conn = self._db()
            try:
                row = conn.execute(FAST_APPEND, params).fetchone()
            except psycopg.Error as e:
                self._drop_if_lost(conn, e)
                raise store_error(self.url, e) from None
            seq = None if row is None else row[0]
        if seq is None:
            return False
        c.seq = seq
        c.pending_ops = {}
        c.pending_events = []
        if logs is not None and log_seq is not None:
            logs.seq = log_seq
        return True

    def _write_logs(self, conn: Any, pk: int, logs: LogBuffer) -> int:
        """Append the buffered records (numbered after ``logs.seq``: the lease holder is
        the only writer), keeping the newest ``keep_logs``; the last one's number."""
        records = logs.take()
        last, keep = logs.seq, self.keep_logs
        top = last + len(records)
        skip = max(0, len(records) - keep)
        rows = [(pk, last + 1 + i, *_pg_record(r)) for i, r in enumerate(records) if i >= skip]
        if rows:
            with conn.cursor() as cur:
                cur.executemany(_LOG_INSERT, rows)
        if top > keep:
            conn.execute("DELETE FROM logs WHERE execution = %s AND seq <= %s", (pk, top - keep))
        return top

    def _append(self, conn: Any, pk: int, ops: list[dict[str, Any]], events: list[Any]) -> None:
        """Append a journal row outside the lease holder's flow (it bumps the version)."""
        conn.execute(
            _OUTSIDE_APPEND,
            {
                "pk": pk,
                "ops": _dumps(ops) if ops else None,
                "events": _dumps(events) if events else None,
            },
        )

    def _complete_parent(
        self,
        conn: Any,
        pk: int,
        status: str,
        now: int,
        result: str | None,
        error: ErrorObject | None,
    ) -> None:
        row = conn.execute(
            "SELECT parent, parent_op FROM executions WHERE pk = %s", (pk,)
        ).fetchone()
        if row is not None and row[0] is not None:
            self._complete_invoke_in(conn, row[0], row[1], status, now, result, error)

    def _complete_invoke_in(
        self,
        conn: Any,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        result: str | None,
        error: ErrorObject | None,
    ) -> None:
        row = conn.execute(
            "SELECT pk, status FROM executions WHERE id = %s FOR UPDATE", (execution_id,)
        ).fetchone()
        if row is None or row[1] not in LIVE_STATUSES:
            return  # the invoking execution ended (e.g. stopped): nothing waits for this
        pk = row[0]
        body = conn.execute(
            "SELECT ops FROM journal WHERE execution = %s AND ops IS NOT NULL "
            "AND strpos(ops, %s) > 0 ORDER BY seq DESC LIMIT 1",
            (pk, f'"Id":{_dumps(op_id)}'),
        ).fetchone()
        op = None
        for d in _loads(body[0]) if body else ():
            if d.get("Id") == op_id:
                op = Operation.from_dict(d)
        if op is None or op.type is not OperationType.CHAINED_INVOKE or op.status is not _STARTED:
            return
        new, events = _service.complete_chained_invoke(op, status, now, result=result, error=error)
        self._append(conn, pk, [new.to_dict()], events)
        conn.execute("UPDATE executions SET wake_at = %s WHERE pk = %s", (now, pk))
        self._notify(conn)

    # ------------------------------------------------------------------ liveness

    def _register(self) -> None:
        """Before the first lease: hold this owner's advisory lock on the store's
        connection, for as long as that connection lives -- the proof of life other
        processes, on any machine, read (:meth:`owner_is_dead`)."""
        if self._registered:
            return
        conn = self._db()
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (owner_key(self.owner),))
        except psycopg.Error as e:
            raise store_error(self.url, e) from None
        self._registered = True

    def owner_is_dead(self, owner: str) -> bool:
        """True only when the lease holder ``owner`` is proven dead.

        An owner of this process is dead once its store closed. Any other owner holds
        a session advisory lock (key :func:`owner_key`) on its store's connection
        from before its first lease; the server drops that lock when the connection
        ends -- its process died (however: SIGKILL included, on any machine), or its
        connection was cut. If this store can take the lock, nobody holds it: dead.
        (A holder whose connection was cut while it lives is then judged dead: its
        lease is taken over and its next write is fenced off, as after an expiry.)
        """
        parsed = parse_owner(owner)
        if parsed is None:
            return False
        host, pid, token = parsed
        if host == HOST and pid == os.getpid() and token == (process_start_token(pid) or "-"):
            return owner not in LIVE_OWNERS
        key = owner_key(owner)
        with self._lock:
            conn = self._db()
            try:
                free = conn.execute("SELECT pg_try_advisory_lock_shared(%s)", (key,)).fetchone()
                if free is not None and free[0]:
                    conn.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))
                    return True
            except psycopg.Error as e:
                raise store_error(self.url, e) from None
        return False

    # ------------------------------------------------------------------ leases

    def acquire(self, execution_id: str, now: int) -> None:
        """Take the lease of ``execution_id`` for this store.

        Free, expired, or held by a dead owner: taken (an invocation the dead holder
        was running gets its InvocationCompleted event with ``Runtime.ExitError``).
        Otherwise :class:`LeaseHeldError`. The row is claimed with ``FOR UPDATE SKIP
        LOCKED``: a worker finding it locked by another's claim (or write) does not
        queue behind it; it is told the execution is being advanced.
        """
        columns = (
            f"pk, lease_owner, lease_expires, invocation_id, invocation_started, version, "
            f"{SERVER_NOW}"
        )
        with self._lock:
            self._register()
            with self._tx() as conn:
                row = conn.execute(
                    f"SELECT {columns} FROM executions WHERE id = %s FOR UPDATE SKIP LOCKED",
                    (execution_id,),
                ).fetchone()
                if row is None:
                    peek = conn.execute(
                        f"SELECT lease_owner, lease_expires, {SERVER_NOW} FROM executions "
                        "WHERE id = %s",
                        (execution_id,),
                    ).fetchone()
                    if peek is None:
                        raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
                    owner, expires, real = peek
                    if owner is not None and owner != self.owner and expires > real:
                        raise LeaseHeldError(execution_id, owner, expires)
                    row = conn.execute(  # being written right now: wait for that write
                        f"SELECT {columns} FROM executions WHERE id = %s FOR UPDATE",
                        (execution_id,),
                    ).fetchone()
                    if row is None:
                        raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
                pk, owner, expires, invocation_id, invocation_started, version, real = row
                if (
                    owner is not None
                    and owner != self.owner
                    and expires > real
                    and not self.owner_is_dead(owner)
                ):
                    raise LeaseHeldError(execution_id, owner, expires)
                # a queued execution: its partition's room, in this transaction, under the
                # partition's advisory lock (QueueFullError; ``_stores.queue_store``)
                first = self._admit(conn, pk, execution_id, real)
                conn.execute(
                    f"UPDATE executions SET lease_owner = %s, lease_expires = {SERVER_NOW} + %s, "
                    "version = version + 1"
                    + (", first_admitted_at = %s" if first is not None else "")
                    + " WHERE pk = %s",
                    (self.owner, self.lease_ms, *(() if first is None else (first,)), pk),
                )
                if invocation_id is not None and owner != self.owner:
                    who = describe_owner(owner) if owner else "a worker"
                    event = _service.invocation_completed_event(
                        execution_id,
                        invocation_started,
                        now,
                        invocation_id,
                        ErrorObject(
                            type="Runtime.ExitError",
                            message=f"the worker running this invocation ({who}) stopped "
                            "before it ended",
                        ),
                    )
                    self._append(conn, pk, [], [event])
                    conn.execute(
                        "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                        "WHERE pk = %s",
                        (pk,),
                    )
            self._acquired[execution_id] = version + 1
            c = self._cache.get(execution_id)
            if c is not None and c.version == version and not c.pending_ops:
                c.version = version + 1  # nobody wrote since this store last did
            else:
                self._cache.pop(execution_id, None)  # read what the last holder wrote
            self._held.add(execution_id)

    def release_all(self) -> None:
        """Let go of every lease this store holds, leaving each execution due as it was
        (a shutdown that cannot wait for a running step; its outcome is fenced off)."""
        with self._lock:
            for execution_id in list(self._held):
                with contextlib.suppress(DurableGenError):
                    self.release(execution_id, None, keep_wake=True, retry=False)

    def release(
        self, execution_id: str, wake_at: int | None, *, keep_wake: bool = False, retry: bool = True
    ) -> None:
        """Give the lease up; a RUNNING execution is due again at ``wake_at``.

        ``wake_at`` was computed from what the last invocation saw. If another
        process wrote since that invocation began (a callback completed, an invoked
        execution ended: both make the execution due), the earlier of ``wake_at`` and
        the wake time that process set is kept, so such a wake-up is never lost.
        """
        with self._lock:
            self._held.discard(execution_id)
            acquired = self._acquired.pop(execution_id, None)
            c = self._cache.get(execution_id)
            if c is not None and (c.pending_ops or c.pending_events):
                del self._cache[execution_id]  # never written: as if the process had died
                c, acquired = None, None
            # a pause asked for while this store advanced the execution takes effect now
            sql = (
                "UPDATE executions SET lease_owner = NULL, lease_expires = NULL, "
                "status = CASE WHEN status = 'PAUSING' THEN 'PAUSED' ELSE status END"
            )
            args: tuple[Any, ...] = ()
            if not keep_wake:
                sql += (
                    ", wake_at = CASE WHEN status NOT IN ('RUNNING', 'PAUSING') THEN NULL "
                    "WHEN version = %s THEN %s::bigint "
                    "ELSE LEAST(COALESCE(%s::bigint, wake_at), COALESCE(wake_at, %s::bigint)) "
                    "END"
                )
                # no cache: this store has not touched the log since it took the lease
                known = acquired if c is None else None if c.stale or c.foreign else c.version
                args = (known, wake_at, wake_at, wake_at)
            # a lease not let go of stays this live worker's until it expires: after a
            # cut connection or a server restart (the invocation ended on that), retry
            # for a few seconds on a new connection before leaving it to expire
            for delay in (*(RELEASE_RETRY_DELAYS if retry else ()), None):
                try:
                    with self._tx() as conn:
                        row = conn.execute(
                            sql + " WHERE id = %s AND lease_owner = %s RETURNING status, wake_at",
                            (*args, execution_id, self.owner),
                        ).fetchone()
                        if row is not None and row[0] == "RUNNING" and row[1] is not None:
                            self._notify(conn)  # due again: an idle worker may take it
                    break
                except StoreError as e:
                    if not e.retryable or delay is None:
                        raise
                    time.sleep(delay)

    def renew(self, execution_id: str) -> bool:
        """Extend the lease (from any thread); False when it is no longer ours or ended."""
        with self._renew_lock:
            for attempt in (1, 2):
                if self._renew_conn is None or self._renew_conn.closed or self._renew_conn.broken:
                    self._renew_conn = connect(self.url, self.schema)
                conn = self._renew_conn
                try:
                    cur = conn.execute(
                        f"UPDATE executions SET lease_expires = {SERVER_NOW} + %s "
                        "WHERE id = %s AND lease_owner = %s AND status IN ('RUNNING', 'PAUSING')",
                        (self.lease_ms, execution_id, self.owner),
                    )
                    return bool(cur.rowcount == 1)
                except psycopg.Error as e:
                    if lost_connection(conn, e):
                        with contextlib.suppress(psycopg.Error):
                            conn.close()
                        if attempt == 1:
                            continue
                    raise store_error(self.url, e) from None
        return False  # pragma: no cover

    # ------------------------------------------------------------------ logs

    def log_sink(self, execution_id: str) -> LogBuffer | None:
        """Where the invocation of ``execution_id`` starting now hands its log records
        (None: this store keeps none); they are written with its next durable write."""
        if not self.keep_logs:
            return None
        with self._lock:
            pk, _ = self._pk(execution_id)
            rows = self._query("SELECT MAX(seq) FROM logs WHERE execution = %s", (pk,))
            buffer = self._logs[execution_id] = LogBuffer(self.log_level, int(rows[0][0] or 0))
        return buffer

    def _read_logs(self, pk: int, after: int, limit: int | None, level: int) -> LogPage:
        rows = self._query(
            "SELECT seq, time, level, logger, message, op_id, op_name, attempt, exception "
            "FROM logs WHERE execution = %s AND seq > %s AND level >= %s ORDER BY seq LIMIT %s",
            (pk, after, level, None if limit is None else limit + 1),
        )
        first = self._query("SELECT MIN(seq) FROM logs WHERE execution = %s", (pk,))[0][0]
        more = limit is not None and len(rows) > limit
        if more:
            rows = rows[:limit]
        return LogPage(
            records=tuple(LogEntry.from_pending(r[0], tuple(r[1:])) for r in rows),
            dropped=0 if first is None else first - 1,
            more=more,
        )


def _pg_record(record: Pending) -> Pending:
    t, level, logger, message, op_id, op_name, attempt, exception = record
    return (
        t,
        level,
        pg_text(logger),
        pg_text(message),
        op_id,
        op_name,
        attempt,
        None if exception is None else pg_text(exception),
    )
