"""The journal: a store's connection, its cache of each execution's log, and fenced writes.

:class:`_Journal` holds the state every part of :class:`~durable_gen.SqliteStore`
shares: the connection (and the lease-renewing one), the cache of logs, the
leases held. Its ``_flush`` is the one place a lease holder's changes are written:
one fenced transaction, one journal row; ``_append`` writes from outside the lease
holder's flow (callbacks, invokes, stop), bumping the execution's version so the
holder rereads."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..._core import service as _service
from ..._core.contract import (
    ADVANCING_STATUSES,
    LIVE_STATUSES,
    LeaseLostError,
)
from ..._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionNotFoundError,
    StoreError,
)
from ..._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from ..logs import LogBuffer, keep_logs_option, level_number
from ..owners import (
    LIVE_OWNERS,
    OwnerLocks,
    new_owner,
)
from .group import GroupCommit
from .logs import last_seq, write_logs
from .schema import (
    _SCHEMA,
    _SEQ_BITS,
    APPLICATION_ID,
    DEFAULT_LEASE_SECONDS,
    LOG_SCHEMA,
    MIGRATIONS,
    QUEUE_SCHEMA,
    SCHEDULE_SCHEMA,
    SCHEMA_VERSION,
    TIMEOUT_SCHEMA,
    _dumps,
    _loads,
    _store_error,
    default_db_path,
)

_STARTED = OperationStatus.STARTED


def insert_start(
    conn: sqlite3.Connection,
    execution_id: str,
    input_payload: str,
    now: int,
    *,
    wake_at: int | None = None,
    columns: Mapping[str, Any] = {},
) -> int:
    """Write a new RUNNING execution (due at ``wake_at``, default now) and its first
    journal row (the EXECUTION operation and ExecutionStarted) in ``conn``'s write
    transaction; its pk. ``columns``: the other ``executions`` columns to set (their
    names are this module's, never a caller's input). ``timeout_ms`` among them
    becomes the start's ExecutionTimeout, in whole seconds as Lambda's history has it
    (at least 1). The one way a start is written: ``create`` and the schedules'
    ticks."""
    timeout_ms = columns.get("timeout_ms")
    op, event = _service.start_execution(
        execution_id,
        input_payload,
        now,
        timeout_seconds=None if timeout_ms is None else max(1, round(timeout_ms / 1000)),
    )
    names = ", ".join(columns)
    marks = ", ?" * len(columns)
    cur = conn.execute(
        "INSERT INTO executions (id, status, input, created_at, updated_at, wake_at"
        f"{', ' if columns else ''}{names}) VALUES (?, 'RUNNING', ?, ?, ?, ?{marks})",
        (
            execution_id,
            input_payload,
            now,
            now,
            now if wake_at is None else wake_at,
            *columns.values(),
        ),
    )
    pk = cur.lastrowid
    assert pk is not None
    conn.execute(
        "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)",
        ((pk << _SEQ_BITS) | 1, _dumps([op.to_dict()]), _dumps([event])),
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
        "seq",
        "stale",
        "version",
    )

    def __init__(self, pk: int, version: int, seq: int, ops: dict[str, Operation]) -> None:
        self.pk = pk
        self.version = version
        self.seq = seq  # the last journal sequence number of the execution
        self.ops = ops
        self.pending_ops: dict[str, Operation] = {}
        self.pending_events: list[dict[str, Any]] = []
        self.stale = False
        #: another process wrote since the running invocation began (see ``release``)
        self.foreign = False


_Extra = Callable[[sqlite3.Connection, int], None]


_FAST_APPEND = (
    "INSERT INTO journal (key, ops, events) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
    "executions WHERE pk = ? AND version = ? AND lease_owner = ? AND status = 'RUNNING')"
)


class _Journal:
    """State and fenced writes shared by the parts of the SQLite store."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "FULL",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        busy_timeout: float = 30.0,
        create: bool = True,
        group: GroupCommit | None = None,
        keep_logs: int | None = None,
        log_level: int | str = "INFO",
    ) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise StoreError(
                f"synchronous must be 'FULL', 'EXTRA' or 'NORMAL', got {synchronous!r}"
            )
        self.path = Path(path) if path is not None else default_db_path()
        self.synchronous = synchronous.upper()
        self.lease_ms = round(lease_seconds * 1000)
        self.busy_timeout = busy_timeout
        self.owner = new_owner()
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._held: set[str] = set()
        self._acquired: dict[str, int] = {}  # execution -> its version when we took the lease
        self.listener: Callable[[str, Mapping[str, Operation]], None] | None = None
        #: log records kept per execution (0: none) and the lowest level kept
        #: (``_stores.logs``); records wait in ``_logs`` for the next durable write
        self.keep_logs = keep_logs_option(keep_logs)
        self.log_level = level_number(log_level)
        self._logs: dict[str, LogBuffer] = {}
        self._conn = self._open(create)
        #: shared with the other stores of a worker pool: their step results are
        #: written together (``group.py``); None: each is its own commit
        self._group = group
        self._own_group: GroupCommit | None = None  # the one this store's clones share
        self._renew_conn: sqlite3.Connection | None = None
        self._renew_lock = threading.Lock()
        self._locks = OwnerLocks(self.path)
        self._registered = False
        #: Set when the process shuts down: the running invocation ends at its next
        #: durable checkpoint (:class:`InvocationInterruptedError`, after the write).
        self.draining = False
        LIVE_OWNERS.add(self.owner)

    # ------------------------------------------------------------------ opening

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        # A URI, so that mode=rw can forbid creating the file; the path is quoted
        # (a '?' or '#' in a file name is part of the name).
        uri = "file:" + urllib.parse.quote(str(self.path.absolute()))
        uri += "?mode=rwc" if create else "?mode=rw"
        return sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout,
        )

    def _open(self, create: bool) -> sqlite3.Connection:
        # Only SQLite ever opens the database file: no open()/read() of its header
        # here (closing such a descriptor would drop the POSIX locks that this
        # process's SQLite connections hold on it; see "Sharing one file" above).
        # stat() opens nothing; a file that is not SQLite is told by SQLite itself.
        path = self.path
        if path.is_dir():
            raise StoreError(f"{path} is a directory, not a durable_gen database file")
        if not path.exists():
            if not create:
                raise StoreError(
                    f"no durable_gen database at {path}: nothing has run there yet. Start "
                    "an execution (durable-gen run), or point --db or DURABLE_GEN_DB at "
                    "the database you meant"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create {path.parent}: {e.strerror}") from None
        try:
            conn = self._connect(create=create)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {path}: {e}") from None
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as e:
            conn.close()
            if "not a database" in str(e):
                raise CorruptLogError(
                    f"{path} is not a SQLite database (it lacks the SQLite file header); "
                    "durable_gen leaves it untouched: pass another path with --db or "
                    "DURABLE_GEN_DB"
                ) from None
            raise CorruptLogError(
                f"{path} cannot be read as a SQLite database ({e}); durable_gen leaves it "
                "untouched: pass another path with --db or DURABLE_GEN_DB"
            ) from None
        try:
            if not tables:
                if not create:
                    raise StoreError(
                        f"{path} is an empty database, not a durable_gen one yet: nothing "
                        "has run there. Start an execution (durable-gen run), or point --db "
                        "or DURABLE_GEN_DB at the database you meant"
                    )
                self._initialize(conn)
            elif "durable_gen_schema" not in tables:
                raise CorruptLogError(
                    f"{path} is a SQLite database but not a durable_gen one (it has no "
                    "durable_gen_schema table); durable_gen leaves it untouched: pass "
                    "another path with --db or DURABLE_GEN_DB"
                )
            self._check_version(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot put {path} in WAL mode (journal_mode is {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.DatabaseError as e:
            conn.close()
            raise CorruptLogError(f"{path} cannot be used as a durable_gen database: {e}") from None
        except DurableGenError:
            conn.close()
            raise
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        # before any table exists: pages freed by deletions (retention) can then be
        # given back to the file system (``PRAGMA incremental_vacuum``, see ``purge``)
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:  # nobody initialized it since we looked
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                for stmt in (*LOG_SCHEMA, *TIMEOUT_SCHEMA, *QUEUE_SCHEMA, *SCHEDULE_SCHEMA):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO durable_gen_schema (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _check_version(self, conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT version FROM durable_gen_schema").fetchall()
        if len(rows) != 1 or type(rows[0][0]) is not int:
            raise CorruptLogError(
                f"{self.path} has a damaged durable_gen_schema table "
                f"(expected one integer version, found {rows!r:.60})"
            )
        version = rows[0][0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer durable_gen (schema version {version}; "
                f"this version reads up to {SCHEMA_VERSION}); upgrade durable_gen to open it"
            )
        if version < SCHEMA_VERSION:
            self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION`, one version per transaction
        (another process may be doing the same: the version is read again under the lock)."""
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = conn.execute("SELECT version FROM durable_gen_schema").fetchone()
                if version >= SCHEMA_VERSION:
                    conn.execute("COMMIT")
                    return
                for stmt in MIGRATIONS[version]:
                    try:
                        conn.execute(stmt)
                    except sqlite3.OperationalError as e:
                        # a column this migration adds is there already (a file made
                        # to look older than it is): keep it
                        if "ADD COLUMN" not in stmt or "duplicate column" not in str(e):
                            raise
                conn.execute("UPDATE durable_gen_schema SET version = ?", (version + 1,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _tx(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        if self._group is None:
            with self._tx_on(conn or self._conn) as c:
                yield c
            return
        # the stores of one pool take turns here rather than in SQLite's busy
        # handler, which sleeps between tries (see group.py)
        with self._group.write_lock, self._tx_on(conn or self._conn) as c:
            yield c

    @contextlib.contextmanager
    def _tx_on(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise _store_error(self.path, e) from None

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None

    def _pk(self, execution_id: str) -> tuple[int, int]:
        rows = self._query("SELECT pk, version FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return rows[0][0], rows[0][1]

    def _cached(self, execution_id: str) -> _Cached:
        c = self._cache.get(execution_id)
        pk, version = self._pk(execution_id)
        if c is not None and not c.stale and c.version == version:
            return c
        lo = pk << _SEQ_BITS
        ops: dict[str, Operation] = {}
        from_dict = Operation.from_dict
        loads = _loads
        last = lo
        # row by row, in one statement: the log's text is never held whole (at 100,000
        # operations it was a third of the peak memory of a resumed invocation)
        try:
            cur = self._conn.execute(
                "SELECT key, ops FROM journal WHERE key > ? AND key < ? ORDER BY key",
                (lo, lo + (1 << _SEQ_BITS)),
            )
            try:
                for key, body in cur:
                    last = key
                    if body is None:
                        continue
                    try:
                        for d in loads(body):
                            op = from_dict(d)
                            ops[op.id] = op
                    except (ValueError, TypeError) as e:
                        raise CorruptLogError(
                            f"execution {execution_id!r} has a journal row that is not valid "
                            f"JSON ({e}) in {self.path}"
                        ) from None
            finally:
                cur.close()
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None
        seq = last - lo
        fresh = _Cached(pk, version, seq, ops)
        fresh.foreign = c is not None  # reloaded: someone else wrote
        if c is not None and c.pending_ops:  # keep what this store has not written yet
            fresh.ops.update(c.pending_ops)
            fresh.pending_ops = c.pending_ops
            fresh.pending_events = c.pending_events
        self._cache[execution_id] = fresh
        return fresh

    def _flush(self, execution_id: str, c: _Cached, now: int, extra: _Extra | None = None) -> bool:
        """Write the pending changes as one journal row (and ``extra``) in one transaction.

        Fenced: the transaction first checks that this store holds the lease and the
        execution is RUNNING (or PAUSING: being paused, it may still write). A step's
        commit touches one page of the journal. True when the execution is PAUSING.
        """
        logs = self._logs.get(execution_id)
        if extra is None and c.pending_ops and not c.stale:
            try:
                if self._fast_flush(c, logs):
                    return False
            except BaseException:
                # not written: forget it, so that no later write records it behind the
                # back of the caller this error reaches (the log is read back instead)
                self._cache.pop(execution_id, None)
                raise
        log_seq: int | None = None
        try:
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT version, lease_owner, status FROM executions WHERE pk = ?", (c.pk,)
                ).fetchone()
                if row is None or row[1] != self.owner or row[2] not in ADVANCING_STATUSES:
                    raise LeaseLostError(
                        execution_id, row[2] if row else None, row[1] if row else None
                    )
                version = row[0]
                pausing: bool = row[2] == "PAUSING"
                seq = c.seq
                if version != c.version:  # someone else wrote (a callback, a takeover note)
                    if any(
                        op.type is OperationType.CALLBACK and op.status is not _STARTED
                        for op in c.pending_ops.values()
                    ):
                        raise _Conflict  # a timeout computed on a callback completed meanwhile
                    lo = c.pk << _SEQ_BITS
                    last = conn.execute(
                        "SELECT MAX(key) FROM journal WHERE key > ? AND key < ?",
                        (lo, lo + (1 << _SEQ_BITS)),
                    ).fetchone()[0]
                    seq = 0 if last is None else last - lo
                    c.stale = True
                    c.foreign = True
                pending_ops = c.pending_ops
                if pending_ops or c.pending_events:
                    seq += 1
                    conn.execute(
                        "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)",
                        (
                            (c.pk << _SEQ_BITS) | seq,
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
                                "VALUES (?, ?, ?, ?) ON CONFLICT (callback_id) DO UPDATE SET "
                                "body = excluded.body",
                                (op.callback_id, c.pk, op.id, _dumps(op.to_dict())),
                            )
                if logs:
                    log_seq = write_logs(conn, c.pk, logs.seq, logs.take(), self.keep_logs)
                if extra is not None:
                    version += 1
                    conn.execute(
                        "UPDATE executions SET version = ?, updated_at = ? WHERE pk = ?",
                        (version, now, c.pk),
                    )
                    extra(conn, c.pk)
        except LeaseLostError:
            self._cache.pop(execution_id, None)
            self._held.discard(execution_id)
            raise
        except _Conflict:
            self._cache.pop(execution_id, None)
            raise
        except sqlite3.Error as e:
            self._cache.pop(execution_id, None)
            raise _store_error(self.path, e) from None
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

    def log_sink(self, execution_id: str) -> LogBuffer | None:
        """Where the invocation of ``execution_id`` starting now hands its log records
        (None: this store keeps none); they are written with its next durable write.
        A new buffer each time: what a failed invocation left unwritten is dropped (its
        steps without a recorded result run again, and log again)."""
        if not self.keep_logs:
            return None
        with self._lock:
            pk, _ = self._pk(execution_id)
            try:
                seq = last_seq(self._conn, pk)
            except sqlite3.Error as e:
                raise _store_error(self.path, e) from None
            buffer = self._logs[execution_id] = LogBuffer(self.log_level, seq)
        return buffer

    def shared_group(self) -> GroupCommit:
        """The group commit this store's clones share (made on first use, closed with
        this store): their step results are written together."""
        with self._lock:
            if self._own_group is None:

                def connect() -> sqlite3.Connection:
                    conn = self._connect(create=False)
                    conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                    return conn

                self._own_group = GroupCommit(connect, _FAST_APPEND)
            return self._own_group

    def _fast_flush(self, c: _Cached, logs: LogBuffer | None = None) -> bool:
        """The common case (a step's result): one fenced INSERT, its own transaction.

        In autocommit mode a single write statement is a transaction of its own
        that takes the write lock first, so fence and append are atomic. False:
        the fence did not hold (or a callback changed); take the slow path. With
        log records waiting (``logs``), they are written in the same transaction
        after the fenced INSERT (not group-committed).
        """
        pending_ops = c.pending_ops
        for op in pending_ops.values():
            if op.callback_id is not None:
                return False
        seq = c.seq + 1
        events = c.pending_events
        params = (
            (c.pk << _SEQ_BITS) | seq,
            _dumps([op.to_dict() for op in pending_ops.values()]),
            _dumps(events) if events else None,
            c.pk,
            c.version,
            self.owner,
        )
        if logs:
            return self._fast_flush_logged(c, params, logs)
        try:
            if self._group is not None:
                written = self._group.append(params)
            else:
                written = self._conn.execute(_FAST_APPEND, params).rowcount == 1
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None
        if not written:
            return False
        c.seq = seq
        c.pending_ops = {}
        c.pending_events = []
        return True

    def _fast_flush_logged(self, c: _Cached, params: tuple[Any, ...], logs: LogBuffer) -> bool:
        """:meth:`_fast_flush` with log records: fenced INSERT, records, one commit."""
        try:
            with self._tx() as conn:
                if conn.execute(_FAST_APPEND, params).rowcount != 1:
                    return False  # nothing written: the slow path finds out why
                last = write_logs(conn, c.pk, logs.seq, logs.take(), self.keep_logs)
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None
        logs.seq = last
        c.seq += 1
        c.pending_ops = {}
        c.pending_events = []
        return True

    def _complete_parent(
        self,
        conn: sqlite3.Connection,
        pk: int,
        status: str,
        now: int,
        result: str | None,
        error: ErrorObject | None,
    ) -> None:
        row = conn.execute(
            "SELECT parent, parent_op FROM executions WHERE pk = ?", (pk,)
        ).fetchone()
        if row is not None and row[0] is not None:
            self._complete_invoke_in(conn, row[0], row[1], status, now, result, error)

    def _complete_invoke_in(
        self,
        conn: sqlite3.Connection,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        result: str | None,
        error: ErrorObject | None,
    ) -> None:
        row = conn.execute(
            "SELECT pk, status FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None or row[1] not in LIVE_STATUSES:
            return  # the invoking execution ended (e.g. stopped): nothing waits for this
        pk = row[0]
        lo = pk << _SEQ_BITS
        body = conn.execute(
            "SELECT ops FROM journal WHERE key > ? AND key < ? AND instr(ops, ?) > 0 "
            "ORDER BY key DESC LIMIT 1",
            (lo, lo + (1 << _SEQ_BITS), f'"Id":"{op_id}"'),
        ).fetchone()
        op = None
        for d in _loads(body[0]) if body else ():
            if d.get("Id") == op_id:
                op = Operation.from_dict(d)
        if op is None or op.type is not OperationType.CHAINED_INVOKE or op.status is not _STARTED:
            return
        new, events = _service.complete_chained_invoke(op, status, now, result=result, error=error)
        self._append(conn, pk, [new.to_dict()], events)
        conn.execute("UPDATE executions SET wake_at = ? WHERE pk = ?", (now, pk))

    def _append(
        self,
        conn: sqlite3.Connection,
        pk: int,
        ops: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> None:
        """Append a journal row outside the lease holder's flow (it bumps the version)."""
        lo = pk << _SEQ_BITS
        last = conn.execute(
            "SELECT MAX(key) FROM journal WHERE key > ? AND key < ?", (lo, lo + (1 << _SEQ_BITS))
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)",
            ((last or lo) + 1, _dumps(ops) if ops else None, _dumps(events) if events else None),
        )
        conn.execute("UPDATE executions SET version = version + 1 WHERE pk = ?", (pk,))
