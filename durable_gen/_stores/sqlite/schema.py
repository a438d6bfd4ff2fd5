"""The SQLite store's file: schema, journal encoding, opening, and what SQLite errors mean.

Only SQLite opens the database file (see the package's docstring for why); the
store (``journal._Journal._open``) refuses what is not a durable_gen database and
leaves it untouched, and puts a new one in WAL mode with the schema below."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._core.contract import (
    ExecutionInfo,
)
from ..._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    StoreError,
)

#: The schema this version of durable_gen writes; it refuses databases with a newer one
#: and migrates older ones (:data:`MIGRATIONS`) when it opens them.
SCHEMA_VERSION = 7
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
    version INTEGER NOT NULL DEFAULT 0,
    code_version TEXT,
    deadline INTEGER,
    timeout_ms INTEGER,
    retention_ms INTEGER
);
CREATE INDEX executions_due ON executions (status, wake_at);
CREATE INDEX executions_newest ON executions (created_at, pk);
CREATE INDEX executions_newest_by_status ON executions (status, created_at, pk);
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

#: The log records kept for each execution (``_stores.logs``; ``sqlite.logs`` writes
#: and reads them): ``seq`` numbers an execution's records from 1, the oldest are
#: deleted past the bound, and they go with their execution (the trigger). Statements
#: of their own (the trigger's body has semicolons): run after :data:`_SCHEMA`.
LOG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS logs ("
    " execution INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " time INTEGER NOT NULL,"
    " level INTEGER NOT NULL,"
    " logger TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " op_id TEXT,"
    " op_name TEXT,"
    " attempt INTEGER,"
    " exception TEXT,"
    " PRIMARY KEY (execution, seq)"
    ") WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS logs_go_with_their_execution AFTER DELETE ON executions "
    "BEGIN DELETE FROM logs WHERE execution = old.pk; END",
)

#: Execution timeouts and retention (schema version 5): ``deadline`` (epoch ms) is when
#: a live execution ends TIMED_OUT, ``timeout_ms`` the ExecutionTimeout it started
#: with, ``retention_ms`` how long it is kept once ended (NULL: no deadline, no
#: timeout, kept as the purging worker's default says). The indexes find executions
#: past their deadline and ended ones past their retention without reading the table.
TIMEOUT_SCHEMA = (
    "CREATE INDEX IF NOT EXISTS executions_deadline ON executions (status, deadline) "
    "WHERE deadline IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS executions_expiry ON executions (ended_at + retention_ms) "
    "WHERE retention_ms IS NOT NULL AND ended_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS executions_ended ON executions (ended_at) "
    "WHERE retention_ms IS NULL AND ended_at IS NOT NULL",
)

#: Queues (schema version 6, ``_stores.queue_store``): the ``queues`` table holds each
#: queue's limits (NULL: no limit); an execution started onto one records its ``queue``,
#: ``partition_key`` (NULL: the queue's only partition), ``priority`` (higher first),
#: ``dedup_id`` and ``first_admitted_at`` (epoch ms of its first lease: the rate limit
#: counts these). The indexes count a partition's leased executions and recent starts,
#: find due unqueued work without reading queued rows, and refuse a second live
#: execution with one dedup id even if a check were skipped.
QUEUE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS queues ("
    " name TEXT PRIMARY KEY,"
    " concurrency INTEGER,"
    " worker_concurrency INTEGER,"
    " rate_limit INTEGER,"
    " rate_period_ms INTEGER,"
    " partitioned INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ")",
    "ALTER TABLE executions ADD COLUMN queue TEXT",
    "ALTER TABLE executions ADD COLUMN partition_key TEXT",
    "ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE executions ADD COLUMN dedup_id TEXT",
    "ALTER TABLE executions ADD COLUMN first_admitted_at INTEGER",
    "CREATE INDEX IF NOT EXISTS executions_due_unqueued ON executions (status, wake_at) "
    "WHERE queue IS NULL",
    "CREATE INDEX IF NOT EXISTS executions_queued ON executions "
    "(queue, partition_key, status, wake_at) WHERE queue IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS executions_queue_leases ON executions "
    "(queue, partition_key, lease_expires) WHERE queue IS NOT NULL AND lease_owner IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS executions_queue_starts ON executions "
    "(queue, partition_key, first_admitted_at) "
    "WHERE queue IS NOT NULL AND first_admitted_at IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS executions_dedup ON executions (queue, dedup_id) "
    "WHERE dedup_id IS NOT NULL AND status IN ('RUNNING', 'PAUSING', 'PAUSED')",
)

#: Trace context and schedules (schema version 7): ``trace_context`` is the W3C
#: ``traceparent`` an execution was started under (an Invoke's span, or the header of
#: serve's caller; NULL: none), so its trace continues from its caller's
#: (``durable_gen.otel``). The ``schedules`` table holds each schedule
#: (``_engine.schedules``): its cron expression, time zone, input, policies and
#: ``next_tick`` (epoch ms of the next tick not yet handled); an execution a schedule
#: started records its ``schedule`` (the overlap policy counts the live ones).
SCHEDULE_SCHEMA = (
    "ALTER TABLE executions ADD COLUMN trace_context TEXT",
    "ALTER TABLE executions ADD COLUMN schedule TEXT",
    "CREATE TABLE IF NOT EXISTS schedules ("
    " name TEXT PRIMARY KEY,"
    " target TEXT NOT NULL,"
    " workdir TEXT,"
    " cron TEXT NOT NULL,"
    " timezone TEXT NOT NULL,"
    " input TEXT NOT NULL,"
    " overlap TEXT NOT NULL,"
    " catch_up_ms INTEGER NOT NULL,"
    " jitter_ms INTEGER NOT NULL DEFAULT 0,"
    " timeout_ms INTEGER,"
    " queue TEXT,"
    " paused INTEGER NOT NULL DEFAULT 0,"
    " next_tick INTEGER NOT NULL,"
    " buffered_tick INTEGER,"
    " last_tick INTEGER,"
    " last_execution TEXT,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " last_skipped INTEGER,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ")",
    "CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_tick) WHERE paused = 0",
    "CREATE INDEX IF NOT EXISTS executions_schedule ON executions (schedule, status) "
    "WHERE schedule IS NOT NULL",
)

#: What takes a database from schema version N to N + 1, in one transaction each.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: the code version an execution started on (version pinning)
    1: ("ALTER TABLE executions ADD COLUMN code_version TEXT",),
    # 3: listing newest first (all, or by status) reads a page, not the table
    2: (
        "CREATE INDEX IF NOT EXISTS executions_newest ON executions (created_at, pk)",
        "CREATE INDEX IF NOT EXISTS executions_newest_by_status "
        "ON executions (status, created_at, pk)",
    ),
    # 4: the log records of each execution (``durable-gen logs``)
    3: LOG_SCHEMA,
    # 5: execution timeouts (a deadline) and retention (``TIMEOUT_SCHEMA``). The file
    # keeps the auto_vacuum mode it was created with: switching it to INCREMENTAL
    # needs a VACUUM of the whole file, which this migration does not run (see
    # ``_stores.sqlite``, "Retention")
    4: (
        "ALTER TABLE executions ADD COLUMN deadline INTEGER",
        "ALTER TABLE executions ADD COLUMN timeout_ms INTEGER",
        "ALTER TABLE executions ADD COLUMN retention_ms INTEGER",
        *TIMEOUT_SCHEMA,
    ),
    # 6: queues (``QUEUE_SCHEMA``)
    5: QUEUE_SCHEMA,
    # 7: trace context and schedules (``SCHEDULE_SCHEMA``)
    6: SCHEDULE_SCHEMA,
}

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


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` as the database can hold it: code points UTF-8 cannot encode (lone
    surrogates, such as the undecodable bytes ``surrogateescape`` keeps in an error
    message or a log line) replaced by U+FFFD. SQLite stores text as UTF-8; without
    this, such a string fails the write (``UnicodeEncodeError``). Payloads never need
    it: serdes encodes strings with surrogates losslessly (see ``_core.serdes``)."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def _make_codec() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """The journal's JSON encoder and decoder: orjson's, or the standard library's.

    Encoding a step's row (its operation and two history events) was a fifth of a
    durable step's CPU time with the standard library's C encoder; orjson does it in
    a tenth of the time, and decodes 3x faster. Both encoders write compact JSON with
    non-ASCII characters as they are, so rows are the same text whichever wrote
    them: what orjson refuses (integers beyond 64 bits, non-string keys, lone
    surrogates) goes to :func:`_std_dumps`, its lone surrogates replaced
    (:func:`storable`). Journal rows are typed records (strings,
    integer timestamps, booleans, nested objects): they hold no floats, the one
    place the two would differ (orjson writes NaN as null).
    """
    try:
        import orjson
    except ImportError:  # a platform without orjson wheels: the standard library

        def std_dumps(value: Any) -> str:
            return storable(_std_dumps(value))

        return std_dumps, json.loads
    encode = orjson.dumps
    refused = orjson.JSONEncodeError

    def dumps(value: Any) -> str:
        try:
            return encode(value).decode()
        except refused:
            return storable(_std_dumps(value))

    return dumps, orjson.loads


_dumps, _loads = _make_codec()

#: Statuses in which the lease holder may write (PAUSING: a pause waits for its
#: next checkpoint), and those in which the outside world may still complete
#: callbacks and invokes, or stop the execution.
_INFO_COLUMNS = (
    "id, target, workdir, status, input, result, error, created_at, updated_at, "
    "ended_at, wake_at, lease_owner, lease_expires, code_version, deadline, timeout_ms, "
    "retention_ms"
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
        code_version=r[13],
        deadline=r[14],
        timeout_ms=r[15],
        retention_ms=r[16],
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
