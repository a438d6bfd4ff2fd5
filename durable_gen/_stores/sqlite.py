"""The embedded engine: durable executions in one SQLite file, shared by processes.

:class:`SqliteStore` keeps executions, their checkpoint logs and their history
events in a SQLite database and plays the durable service's part with the pure
functions of ``_core.service`` -- so a local log and history read like AWS's.
:class:`SqliteEngine` is the durable engine (``_engine.durable.DurableEngine``: leases,
heartbeats, the worker of ``durable-gen worker``) on it.

Durability
    The database runs in WAL mode with ``synchronous=FULL`` by default: every
    durable checkpoint is one transaction, fsync'ed before ``checkpoint`` returns,
    so nothing the engine acts on (an at-most-once START, a step's result before
    the next step runs) can be lost, not even to a power cut. ``synchronous=
    "NORMAL"`` survives a killed process but may lose the last commits to an OS
    crash or power loss. Updates handed over with ``durable=False`` (the START of
    an at-least-once step) are buffered in memory and written in the transaction
    of the next durable checkpoint: such a step costs one commit.

Where the database is
    ``--db PATH``, else ``$DURABLE_GEN_DB``, else
    ``$XDG_DATA_HOME/durable_gen/durable_gen.db`` (``~/.local/share/...``): one
    per user, so ``durable-gen list`` sees every execution wherever it is run.

Schema (version 1)
    ``executions``: one row per execution (id, target ``module:function`` or
    ``/abs/file.py:function`` plus the directory it was started from, status,
    input, result, error, timestamps, wake time, lease owner and expiry, the
    running invocation, a version bumped by writers other than the lease holder).
    ``journal``: the log, one row per commit, keyed ``execution pk << 32 | n``:
    ``ops`` is a JSON array of ``Operation.to_dict()`` (the operations' new
    states), ``events`` a JSON array of history events. A step's commit appends
    one row -- one page -- which is what keeps a step close to a bare commit;
    loading an execution reads its rows in key order, the last state of each
    operation winning. ``callbacks`` maps callback ids to their execution.
    ``operations`` and ``events`` are SQL views over the journal for people with
    a ``sqlite3`` shell. ``durable_gen_schema`` holds the schema version; a
    database written by a newer schema, a SQLite database that is not
    durable_gen's, and a file that is not SQLite at all are refused with an
    error, and nothing is ever rewritten to "fix" them.

Sharing one file
    Several processes may share a database (a ``serve``, workers, ``run``, and
    ``list``/``show``/``callback`` from a shell). SQLite keeps that safe only if
    nothing but SQLite touches the file: closing *any* descriptor of a file drops
    every POSIX lock the process holds on it (SQLite's "How To Corrupt An SQLite
    Database File", 2.2), after which another process may believe it is the last
    connection and reset the -wal/-shm files under live connections -- "disk I/O
    error", then "database disk image is malformed". So, by construction:

    - the database file is opened by sqlite3 only: never ``open()``-ed, read or
      copied by durable_gen (a file that is not SQLite is told by SQLite's own
      "file is not a database", and left untouched);
    - a process keeps its stores open: ``serve`` uses one store for all its
      request threads (and one for its worker) instead of one per request;
    - the lease owners' liveness uses lock files of their own, beside the
      database (``<database>-owners/``), never locks on the database file;
    - read-only commands open an existing database (``create=False``) and never
      create one or its folders.

    Tests run real processes against one file and check ``PRAGMA integrity_check``.

One worker at a time (the durable store contract, ``_core.contract``)
    Advancing an execution needs its lease (an owner -- host, pid, process start
    token and a random part -- and an expiry), taken in a write transaction.
    Every durable checkpoint checks, in its own transaction, that this store still
    holds the lease and the execution is still RUNNING (a fencing check), so a
    worker that lost its lease can never write. A lease whose holder is proven
    dead (``_stores.owners``: its lock file is free, or /proc says its pid is gone) is
    taken over at once, and the invocation it was running is recorded as ended
    with ``Runtime.ExitError``; otherwise a lease is taken over once it expired.
    The engine renews its lease from a background thread while a long step runs
    or it sleeps.

Names, pause, delete
    An execution's id is its name, with Lambda's rule (:meth:`SqliteStore.create`):
    one name, one execution. ``pause`` makes a RUNNING execution PAUSING (its
    worker records its next checkpoint, then stops) or PAUSED; nothing advances a
    paused execution, though its callbacks can be completed; ``resume_paused``
    makes it due again. ``delete`` removes an ended execution with its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core import service as _service
from .._core.contract import (
    DurableStore,
    ExecutionInfo,
    LeaseHeldError,
    LeaseLostError,
    check_same_start,
    describe_owner,
)
from .._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionPausedError,
    InvocationInterruptedError,
    StoreError,
)
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from .ids import new_callback_id
from .owners import (
    LIVE_OWNERS,
    OwnerLocks,
    new_owner,
    owner_is_dead,
)

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "SCHEMA_VERSION",
    "SqliteStore",
    "default_db_path",
]

#: The schema this version of durable_gen writes; it refuses databases with a newer one.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of durable_gen databases ("dgdb").
APPLICATION_ID = 0x64676462
#: How long a lease lasts without renewal; the engine renews it every third of this.
DEFAULT_LEASE_SECONDS = 30.0
_SCHEMA = """
CREATE TABLE durable_gen_schema (version INTEGER NOT NULL);
CREATE TABLE executions (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target TEXT,
    workdir TEXT,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ended_at INTEGER,
    wake_at INTEGER,
    lease_owner TEXT,
    lease_expires INTEGER,
    invocation_id TEXT,
    invocation_started INTEGER,
    parent TEXT,
    parent_op TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_due ON executions (status, wake_at);
CREATE TABLE journal (
    key INTEGER PRIMARY KEY,
    ops TEXT,
    events TEXT
);
CREATE TABLE callbacks (
    callback_id TEXT PRIMARY KEY,
    execution INTEGER NOT NULL REFERENCES executions (pk),
    op_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE VIEW operations AS
SELECT execution, op_id, body FROM (
    SELECT journal.key >> 32 AS execution,
           json_extract(o.value, '$.Id') AS op_id,
           o.value AS body,
           row_number() OVER (
               PARTITION BY journal.key >> 32, json_extract(o.value, '$.Id')
               ORDER BY journal.key DESC
           ) AS newest
    FROM journal, json_each(journal.ops) AS o
) WHERE newest = 1;
CREATE VIEW events AS
SELECT journal.key >> 32 AS execution, journal.key & 4294967295 AS seq, e.value AS body
FROM journal, json_each(journal.events) AS e;
"""

#: Journal keys: ``execution pk << 32 | sequence number`` (one row per commit).
_SEQ_BITS = 32


def default_db_path() -> Path:
    """``$DURABLE_GEN_DB``, else ``$XDG_DATA_HOME/durable_gen/durable_gen.db``."""
    env = os.environ.get("DURABLE_GEN_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "durable_gen" / "durable_gen.db"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------------- the store


_STARTED = OperationStatus.STARTED


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


def _make_std_dumps() -> Callable[[Any], str]:
    """Compact JSON: ``JSONEncoder(separators=(",", ":"), ensure_ascii=False,
    check_circular=False).encode``, with its C encoder built once.

    ``encode`` builds a new C encoder object (and a closure) on every call, which is
    a fifth of the cost of encoding a step's journal row. The text is the same.
    """
    enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the plain encoder
        return enc.encode
    chunks = make(
        None, enc.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    join = "".join

    def dumps(value: Any) -> str:
        if isinstance(value, str):
            return enc.encode(value)
        return join(chunks(value, 0))

    return dumps


_std_dumps = _make_std_dumps()


def _make_codec() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """The journal's JSON encoder and decoder: orjson's, or the standard library's.

    Encoding a step's row (its operation and two history events) was a fifth of a
    durable step's CPU time with the standard library's C encoder; orjson does it in
    a tenth of the time, and decodes 3x faster. Both encoders write compact JSON with
    non-ASCII characters as they are, so rows are the same text whichever wrote
    them: what orjson refuses (integers beyond 64 bits, non-string keys, lone
    surrogates) goes to :func:`_std_dumps`. Journal rows are typed records (strings,
    integer timestamps, booleans, nested objects): they hold no floats, the one
    place the two would differ (orjson writes NaN as null).
    """
    try:
        import orjson
    except ImportError:  # a platform without orjson wheels: the standard library
        return _std_dumps, json.loads
    encode = orjson.dumps
    refused = orjson.JSONEncodeError

    def dumps(value: Any) -> str:
        try:
            return encode(value).decode()
        except refused:
            return _std_dumps(value)

    return dumps, orjson.loads


_dumps, _loads = _make_codec()

#: Statuses in which the lease holder may write (PAUSING: a pause waits for its
#: next checkpoint), and those in which the outside world may still complete
#: callbacks and invokes, or stop the execution.
_ADVANCING = ("RUNNING", "PAUSING")
_LIVE = ("RUNNING", "PAUSING", "PAUSED")

_FAST_APPEND = (
    "INSERT INTO journal (key, ops, events) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
    "executions WHERE pk = ? AND version = ? AND lease_owner = ? AND status = 'RUNNING')"
)


class SqliteStore:
    """Executions in a SQLite database, updated with the service's semantics.

    ``path`` defaults to :func:`default_db_path`. ``synchronous`` is ``"FULL"``
    (default: every durable checkpoint survives power loss) or ``"NORMAL"``.
    Writing to an execution needs its lease (:meth:`acquire`); the engine takes
    care of that.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: str = "FULL",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        busy_timeout: float = 30.0,
        create: bool = True,
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
        self._conn = self._open(create)
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

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _tx(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        conn = conn or self._conn
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
        rows = self._query(
            "SELECT key, ops FROM journal WHERE key > ? AND key < ? ORDER BY key",
            (lo, lo + (1 << _SEQ_BITS)),
        )
        ops: dict[str, Operation] = {}
        from_dict = Operation.from_dict
        loads = _loads
        for _, body in rows:
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
        seq = rows[-1][0] - lo if rows else 0
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
        if extra is None and c.pending_ops and not c.stale:
            try:
                if self._fast_flush(c):
                    return False
            except BaseException:
                # not written: forget it, so that no later write records it behind the
                # back of the caller this error reaches (the log is read back instead)
                self._cache.pop(execution_id, None)
                raise
        try:
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT version, lease_owner, status FROM executions WHERE pk = ?", (c.pk,)
                ).fetchone()
                if row is None or row[1] != self.owner or row[2] not in _ADVANCING:
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
        return pausing

    def _fast_flush(self, c: _Cached) -> bool:
        """The common case (a step's result): one fenced INSERT, its own transaction.

        In autocommit mode a single write statement is a transaction of its own
        that takes the write lock first, so fence and append are atomic. False:
        the fence did not hold (or a callback changed); take the slow path.
        """
        pending_ops = c.pending_ops
        for op in pending_ops.values():
            if op.callback_id is not None:
                return False
        seq = c.seq + 1
        events = c.pending_events
        try:
            cur = self._conn.execute(
                _FAST_APPEND,
                (
                    (c.pk << _SEQ_BITS) | seq,
                    _dumps([op.to_dict() for op in pending_ops.values()]),
                    _dumps(events) if events else None,
                    c.pk,
                    c.version,
                    self.owner,
                ),
            )
        except sqlite3.Error as e:
            raise _store_error(self.path, e) from None
        if cur.rowcount != 1:
            return False
        c.seq = seq
        c.pending_ops = {}
        c.pending_events = []
        return True

    # ------------------------------------------------------------------ the store interface

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
        """
        op, event = _service.start_execution(execution_id, input_payload, now)
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
            cur = conn.execute(
                "INSERT INTO executions (id, target, workdir, status, input, "
                "created_at, updated_at, wake_at, parent, parent_op) "
                "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?)",
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
                ),
            )
            pk = cur.lastrowid
            assert pk is not None
            conn.execute(
                "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)",
                ((pk << _SEQ_BITS) | 1, _dumps([op.to_dict()]), _dumps([event])),
            )
        return True

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
        """Record the InvocationCompleted event; no invocation is running any more."""
        with self._lock:
            c = self._cached(execution_id)
            c.pending_events.append(event)

            def clear(conn: sqlite3.Connection, pk: int) -> None:
                conn.execute(
                    "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                    "WHERE pk = ?",
                    (pk,),
                )

            self._flush(execution_id, c, event["EventTimestamp"], clear)

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

    # ------------------------------------------------------------------ executions

    def info(self, execution_id: str) -> ExecutionInfo:
        """The execution's row; StoreError when there is none."""
        with self._lock:
            rows = self._query(
                f"SELECT {_INFO_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
            )
        if not rows:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return _info(rows[0])

    def executions(self, *, status: str | None = None, limit: int = 100) -> list[ExecutionInfo]:
        """Executions, newest first."""
        sql = f"SELECT {_INFO_COLUMNS} FROM executions"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY created_at DESC, pk DESC LIMIT ?"
        with self._lock:
            rows = self._query(sql, (*args, limit))
        return [_info(r) for r in rows]

    def due(self, now: int, *, limit: int = 100) -> list[str]:
        """Ids of RUNNING executions whose wake time has come and that a worker may take."""
        real = _now_ms()
        with self._lock:
            rows = self._query(
                "SELECT id, lease_owner, lease_expires FROM executions "
                "WHERE status = 'RUNNING' AND wake_at IS NOT NULL AND wake_at <= ? "
                "ORDER BY wake_at LIMIT ?",
                (now, limit),
            )
        return [
            r[0]
            for r in rows
            if r[1] is None or r[1] == self.owner or r[2] <= real or self.owner_is_dead(r[1])
        ]

    def next_wake(self) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds, or None."""
        with self._lock:
            rows = self._query(
                "SELECT MIN(wake_at) FROM executions WHERE status = 'RUNNING' "
                "AND (lease_owner IS NULL OR lease_expires <= ?)",
                (_now_ms(),),
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
            if status not in _LIVE:
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
                if status not in _LIVE:
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
            if status in _LIVE and not force:
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

    def _row(self, conn: sqlite3.Connection, execution_id: str, columns: str) -> tuple[Any, ...]:
        row = conn.execute(
            f"SELECT {columns} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None:
            raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
        return tuple(row)

    # ------------------------------------------------------------------ leases

    def _register(self) -> None:
        """Before the first lease: hold this owner's lock file (proof of life), and
        remove those of dead owners that hold no lease any more."""
        if self._registered:
            return
        self._registered = True
        self._locks.hold(self.owner)
        self._locks.sweep(
            lambda owner: bool(
                self._query("SELECT 1 FROM executions WHERE lease_owner = ? LIMIT 1", (owner,))
            )
        )

    def owner_is_dead(self, owner: str) -> bool:
        """True only when the lease holder ``owner`` is proven dead (see ``_stores.owners``)."""
        return owner_is_dead(owner, self._locks)

    def acquire(self, execution_id: str, now: int) -> None:
        """Take the lease of ``execution_id`` for this store.

        Free, expired, or held by a dead process of this machine: taken (an
        invocation the dead holder was running gets its InvocationCompleted event
        with ``Runtime.ExitError``). Otherwise :class:`LeaseHeldError`.
        """
        real = _now_ms()
        with self._lock:
            self._register()
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT pk, lease_owner, lease_expires, invocation_id, invocation_started, "
                    "version FROM executions WHERE id = ?",
                    (execution_id,),
                ).fetchone()
                if row is None:
                    raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
                pk, owner, expires, invocation_id, invocation_started, version = row
                if (
                    owner is not None
                    and owner != self.owner
                    and expires > real
                    and not self.owner_is_dead(owner)
                ):
                    raise LeaseHeldError(execution_id, owner, expires)
                conn.execute(
                    "UPDATE executions SET lease_owner = ?, lease_expires = ?, "
                    "version = version + 1 WHERE pk = ?",
                    (self.owner, real + self.lease_ms, pk),
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
                        "WHERE pk = ?",
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
                    self.release(execution_id, None, keep_wake=True)

    def release(self, execution_id: str, wake_at: int | None, *, keep_wake: bool = False) -> None:
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
                    "WHEN version = ? THEN ? "
                    "ELSE MIN(COALESCE(?, wake_at), COALESCE(wake_at, ?)) END"
                )
                # no cache: this store has not touched the log since it took the lease
                known = acquired if c is None else None if c.stale or c.foreign else c.version
                args = (known, wake_at, wake_at, wake_at)
            with self._tx() as conn:
                conn.execute(
                    sql + " WHERE id = ? AND lease_owner = ?", (*args, execution_id, self.owner)
                )

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
        if row is None or row[1] not in _LIVE:
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

    def renew(self, execution_id: str) -> bool:
        """Extend the lease (from any thread); False when it is no longer ours or ended."""
        with self._renew_lock:
            if self._renew_conn is None:
                self._renew_conn = self._connect()
                self._renew_conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            with self._tx(self._renew_conn) as conn:
                cur = conn.execute(
                    "UPDATE executions SET lease_expires = ? "
                    "WHERE id = ? AND lease_owner = ? AND status IN ('RUNNING', 'PAUSING')",
                    (_now_ms() + self.lease_ms, execution_id, self.owner),
                )
                return cur.rowcount == 1


_INFO_COLUMNS = (
    "id, target, workdir, status, input, result, error, created_at, updated_at, "
    "ended_at, wake_at, lease_owner, lease_expires"
)


def _no_callback(callback_id: str, execution_id: str | None) -> str:
    where = "" if execution_id is None else f" in execution {execution_id!r:.80}"
    return f"no callback with id {callback_id!r:.80}{where}"


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
    )


def _store_error(path: Path, e: sqlite3.Error) -> DurableGenError:
    """A SQLite error as a durable_gen error naming the cause and the fix."""
    text = str(e)
    if isinstance(e, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text):
        return CorruptLogError(
            f"{path} is damaged: {text}. durable_gen leaves it untouched; restore it from a "
            "backup (the sqlite3 shell's .recover command may salvage what is left)"
        )
    if "locked" in text or "busy" in text:
        return StoreError(
            f"database {path} is locked: another process holds a write transaction on it "
            f"and did not let go in time ({text}); nothing was recorded by this call. Try "
            "again; if it persists, end the process holding it (e.g. a sqlite3 shell left "
            "inside BEGIN) or raise busy_timeout",
            retryable=True,
        )
    if "full" in text or "I/O error" in text or "readonly" in text or "read-only" in text:
        why = {"full": "the disk is full", "I/O error": "the disk failed to write"}
        cause = next((v for k, v in why.items() if k in text), "the file cannot be written")
        return StoreError(
            f"cannot write to database {path}: {cause} ({text}); the change was rolled back "
            "and nothing was recorded by this call. Free space on (or repair) the disk, or "
            "fix the file's permissions, then resume the execution: it continues from its "
            "last checkpoint",
            retryable=True,
        )
    return StoreError(f"database {path}: {text}")


def _keeps_the_contract(store: SqliteStore) -> DurableStore:
    return store  # mypy checks that SqliteStore keeps the durable store contract
