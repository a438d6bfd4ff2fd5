"""The PostgreSQL store's database: URL, connections, schema, migrations, error meanings.

Everything durable_gen keeps lives in one PostgreSQL schema of the database (default
``durable_gen``; the store sets ``search_path`` to it on each connection), so it
shares a database with other applications without touching their tables, and a
schema of that name that is not durable_gen's is refused, never altered.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
import psycopg.errors

from ..._core.errors import CorruptLogError, DurableGenError, StoreError

#: The schema this version of durable_gen writes in PostgreSQL; it refuses databases
#: with a newer one and migrates older ones (:data:`MIGRATIONS`) when it opens them.
#: PostgreSQL's versions are numbered apart from SQLite's: the two schemas differ.
SCHEMA_VERSION = 3
#: The PostgreSQL schema (namespace) durable_gen's tables live in, unless told otherwise.
DEFAULT_SCHEMA = "durable_gen"
#: Recorded in ``durable_gen_schema.application``: what tells our tables from others'.
APPLICATION = "durable_gen"
#: The key of the transaction-level advisory lock that serializes creating and
#: migrating the schema between processes opening a new database at once ("dgdb").
SETUP_LOCK = 0x64676462

#: The server's clock in epoch ms: leases are judged by it, so that machines whose
#: clocks disagree still agree on when a lease expires.
SERVER_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

_STATUSES = "'RUNNING', 'PAUSING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'STOPPED', 'TIMED_OUT'"

#: Statements that create schema version :data:`SCHEMA_VERSION` in an empty schema.
#:
#: ``executions`` holds one row per execution; its ``seq`` is the number of the
#: execution's last journal row and ``version`` counts the writes of processes other
#: than the lease holder (the holder's cache is valid while it matches). A step's
#: fenced checkpoint updates only ``seq`` -- no indexed column -- so the update is a
#: heap-only (HOT) one: ``fillfactor`` leaves room on each page for it.
#:
#: ``journal`` is append-only, one row per commit: ``ops`` a JSON array of
#: operations' new states, ``events`` a JSON array of history events. Loading an
#: execution reads its rows in order, the newest state of each operation winning;
#: the history is read from the same rows. No foreign key: a row is only ever
#: appended under the lock of its execution's row (the fence), which proves that row
#: exists, and deleting an execution deletes its rows in the same transaction.
_TABLES = (
    "CREATE TABLE durable_gen_schema ("
    " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    " version integer NOT NULL,"
    f" application text NOT NULL DEFAULT '{APPLICATION}')",
    "CREATE TABLE executions ("
    " pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " id text NOT NULL UNIQUE,"
    " target text,"
    " workdir text,"
    f" status text NOT NULL CHECK (status IN ({_STATUSES})),"
    " input text NOT NULL,"
    " result text,"
    " error text,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL,"
    " ended_at bigint,"
    " wake_at bigint,"
    " lease_owner text,"
    " lease_expires bigint,"
    " invocation_id text,"
    " invocation_started bigint,"
    " parent text,"
    " parent_op text,"
    " version bigint NOT NULL DEFAULT 0,"
    " seq integer NOT NULL DEFAULT 0,"
    " rewrites integer NOT NULL DEFAULT 0,"
    " code_version text,"
    " deadline bigint,"
    " timeout_ms bigint,"
    " retention_ms bigint"
    ") WITH (fillfactor = 80)",
    # due work: RUNNING executions by wake time (the workers' poll reads this only)
    "CREATE INDEX executions_due ON executions (wake_at, pk) "
    "WHERE status = 'RUNNING' AND wake_at IS NOT NULL",
    "CREATE INDEX executions_newest ON executions (created_at, pk)",
    "CREATE INDEX executions_newest_by_status ON executions (status, created_at, pk)",
    "CREATE INDEX executions_leases ON executions (lease_owner) WHERE lease_owner IS NOT NULL",
    "CREATE INDEX executions_deadline ON executions (deadline) "
    "WHERE deadline IS NOT NULL AND status IN ('RUNNING', 'PAUSING', 'PAUSED')",
    "CREATE INDEX executions_expiry ON executions ((ended_at + retention_ms)) "
    "WHERE retention_ms IS NOT NULL AND ended_at IS NOT NULL",
    "CREATE INDEX executions_ended ON executions (ended_at) "
    "WHERE retention_ms IS NULL AND ended_at IS NOT NULL",
    "CREATE TABLE journal ("
    " execution bigint NOT NULL,"
    " seq integer NOT NULL,"
    " ops text,"
    " events text,"
    " PRIMARY KEY (execution, seq))",
    "CREATE TABLE callbacks ("
    " callback_id text PRIMARY KEY,"
    " execution bigint NOT NULL,"
    " op_id text NOT NULL,"
    " body text NOT NULL)",
    "CREATE INDEX callbacks_execution ON callbacks (execution)",
    "CREATE TABLE logs ("
    " execution bigint NOT NULL,"
    " seq integer NOT NULL,"
    " time bigint NOT NULL,"
    " level integer NOT NULL,"
    " logger text NOT NULL,"
    " message text NOT NULL,"
    " op_id text,"
    " op_name text,"
    " attempt integer,"
    " exception text,"
    " PRIMARY KEY (execution, seq))",
    # for people with psql: each operation's newest state, and the history events
    "CREATE VIEW operations AS "
    "SELECT DISTINCT ON (j.execution, o.body ->> 'Id') j.execution, "
    "o.body ->> 'Id' AS op_id, o.body "
    "FROM journal j, jsonb_array_elements(j.ops::jsonb) AS o(body) "
    "WHERE j.ops IS NOT NULL ORDER BY j.execution, o.body ->> 'Id', j.seq DESC",
    "CREATE VIEW events AS "
    "SELECT j.execution, j.seq, e.n AS index, e.body "
    "FROM journal j, jsonb_array_elements(j.events::jsonb) WITH ORDINALITY AS e(body, n) "
    "WHERE j.events IS NOT NULL",
)

#: Version 2: the trace context an execution was started under and the schedule that
#: started it (as on SQLite, ``_stores.sqlite.schema.SCHEDULE_SCHEMA``).
SCHEDULE_TABLES = (
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS trace_context text",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS schedule text",
    "CREATE TABLE IF NOT EXISTS schedules ("
    " name text PRIMARY KEY,"
    " target text NOT NULL,"
    " workdir text,"
    " cron text NOT NULL,"
    " timezone text NOT NULL,"
    " input text NOT NULL,"
    " overlap text NOT NULL,"
    " catch_up_ms bigint NOT NULL,"
    " jitter_ms bigint NOT NULL DEFAULT 0,"
    " timeout_ms bigint,"
    " queue text,"
    " paused boolean NOT NULL DEFAULT false,"
    " next_tick bigint NOT NULL,"
    " buffered_tick bigint,"
    " last_tick bigint,"
    " last_execution text,"
    " skipped bigint NOT NULL DEFAULT 0,"
    " last_skipped bigint,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL)",
    "CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_tick) WHERE NOT paused",
    "CREATE INDEX IF NOT EXISTS executions_schedule ON executions (schedule, status) "
    "WHERE schedule IS NOT NULL",
)

#: Version 3: queues (as on SQLite, ``_stores.sqlite.schema.QUEUE_SCHEMA``; the rules
#: are ``_stores.queue_store``'s). ``queues`` holds each queue's limits (NULL: no
#: limit); an execution started onto one records its ``queue``, ``partition_key``
#: (NULL: the queue's only partition), ``priority`` (higher first), ``dedup_id`` and
#: ``first_admitted_at`` (epoch ms, the server's clock, of its first lease: the rate
#: limit counts these). The indexes count a partition's leased executions and recent
#: starts, find due unqueued work without reading queued rows, and refuse a second
#: live execution with one dedup id even if a check were skipped.
QUEUE_TABLES = (
    "CREATE TABLE IF NOT EXISTS queues ("
    " name text PRIMARY KEY,"
    " concurrency integer,"
    " worker_concurrency integer,"
    " rate_limit integer,"
    " rate_period_ms bigint,"
    " partitioned boolean NOT NULL DEFAULT false,"
    " created_at bigint NOT NULL,"
    " updated_at bigint NOT NULL)",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS queue text",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS partition_key text",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS priority integer NOT NULL DEFAULT 0",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS dedup_id text",
    "ALTER TABLE executions ADD COLUMN IF NOT EXISTS first_admitted_at bigint",
    # due work that is on no queue (the workers' poll), as ``executions_due`` is for all
    "CREATE INDEX IF NOT EXISTS executions_due_unqueued ON executions (wake_at, pk) "
    "WHERE status = 'RUNNING' AND wake_at IS NOT NULL AND queue IS NULL",
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

#: What takes a schema from version N to N + 1, in one transaction each. Each entry is
#: a tuple of statements.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: SCHEDULE_TABLES, 2: QUEUE_TABLES}

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,49}")


_PASSWORD = re.compile(r"(://[^:/@?#\[\]]*):[^@/?#]*@")


def redact(text: str) -> str:
    """``text`` (a URL, or a message quoting one) without the URL's password."""
    return _PASSWORD.sub(r"\1:***@", text)


def check_schema_name(schema: str) -> str:
    if not isinstance(schema, str) or _IDENTIFIER.fullmatch(schema) is None:
        raise StoreError(
            f"schema must be a lowercase PostgreSQL identifier (letters, digits and _, "
            f"not starting with a digit), got {schema!r:.80}"
        )
    return schema


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def connect(url: str, schema: str, *, application_name: str = "durable_gen") -> Any:
    """A new autocommit connection with ``search_path`` on durable_gen's schema."""
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            application_name=application_name,
            connect_timeout=10,
        )
    except psycopg.ProgrammingError as e:  # the URL itself: libpq could not parse it
        raise StoreError(
            f"{redact(url)} is not a valid PostgreSQL URL ({_first_line(e)}); write it as "
            "postgresql://user[:password]@host[:port]/database"
        ) from None
    except psycopg.OperationalError as e:
        raise connection_error(url, e) from None
    try:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
    except psycopg.Error as e:
        conn.close()
        raise store_error(url, e) from None
    return conn


def _first_line(e: BaseException) -> str:
    text = redact(str(e).strip())  # libpq quotes the URL it could not use
    return text.splitlines()[0] if text else type(e).__name__


def connection_error(url: str, e: BaseException) -> StoreError:
    """A failure to connect, named: which server, why, and what to do."""
    text = str(e).strip()
    where = redact(url)
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return StoreError(
            f"PostgreSQL at {where} refused the login ({_first_line(e)}): check the user "
            "and password in the URL (or ~/.pgpass, $PGPASSWORD)"
        )
    if "does not exist" in low and "database" in low:
        return StoreError(
            f"PostgreSQL at {where}: {_first_line(e)}. Create it (createdb NAME, or CREATE "
            "DATABASE) or point --db or DURABLE_GEN_DB at an existing database"
        )
    if "role" in low and "does not exist" in low:
        return StoreError(f"PostgreSQL at {where}: {_first_line(e)}: check the user in the URL")
    return StoreError(
        f"cannot reach the PostgreSQL server at {where} ({_first_line(e)}); is it running "
        "and listening there? Check the host, port and network, then try again",
        retryable=True,
    )


#: SQLSTATE classes whose error means "try again" (nothing was recorded): connection
#: exceptions, serialization failures and deadlocks, the server shutting down or
#: out of resources.
_RETRYABLE = ("08", "40", "53", "57")


def lost_connection(conn: Any, e: BaseException) -> bool:
    """Whether ``e`` (raised on ``conn``) means the connection is gone: broken or closed,
    a connection exception (SQLSTATE class 08), or the server ending the session (57P01
    ``pg_terminate_backend`` or a fast shutdown, 57P02 a crash of another backend, 57P03
    still starting). psycopg marks a connection broken only once it next fails to use
    it; such a connection is replaced at once instead."""
    if conn is None or conn.closed or conn.broken:
        return True
    if not isinstance(e, psycopg.Error):
        return False
    state = getattr(e, "sqlstate", None) or ""
    if isinstance(e, psycopg.OperationalError) and not state:
        return True
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def store_error(url: str, e: psycopg.Error) -> DurableGenError:
    """A psycopg error as a durable_gen error naming the cause and the fix."""
    where = redact(url)
    state = getattr(e, "sqlstate", None) or ""
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return StoreError(
            f"PostgreSQL at {where}: the role may not do this ({_first_line(e)}). Grant it "
            f"the rights on durable_gen's schema (GRANT USAGE, CREATE ON SCHEMA ... TO it, "
            "and on its tables), or connect as the schema's owner"
        )
    if isinstance(e, psycopg.errors.DiskFull):
        return StoreError(
            f"PostgreSQL at {where} cannot write: its disk is full ({_first_line(e)}); "
            "nothing was recorded by this call. Free space on the server, then resume",
            retryable=True,
        )
    if (isinstance(e, psycopg.OperationalError) and not state) or state.startswith(_RETRYABLE):
        return StoreError(
            f"lost the connection to PostgreSQL at {where} or the server refused for now "
            f"({_first_line(e)}); nothing of this call is known to be recorded. It is "
            "retried: the execution continues from its last checkpoint",
            retryable=True,
        )
    if isinstance(e, psycopg.errors.DataCorrupted | psycopg.errors.IndexCorrupted):
        return CorruptLogError(f"PostgreSQL at {where} reports damaged data: {_first_line(e)}")
    return StoreError(f"PostgreSQL at {where}: {_first_line(e)}")


def prepare(conn: Any, url: str, schema: str, *, create: bool) -> None:
    """Make sure ``schema`` holds durable_gen's tables at :data:`SCHEMA_VERSION`:
    create them in a new database (``create``), migrate an older schema, refuse a
    newer one or a schema of that name that is not durable_gen's."""
    where = redact(url)
    state = _look(conn, schema)
    if state == "ours":
        version = _version(conn, where, schema)
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} (schema {schema}) was written by a newer durable_gen (schema "
                f"version {version}; this version reads up to {SCHEMA_VERSION}); upgrade "
                "durable_gen to open it"
            )
    elif state == "foreign":
        raise CorruptLogError(
            f"{where} has a schema {schema!r} that is not durable_gen's (it has no "
            "durable_gen_schema table, or one of another application); durable_gen leaves "
            "it untouched: pass another database, or another schema name"
        )
    elif not create:
        raise StoreError(
            f"no durable_gen data in {where} (schema {schema}): nothing has run there yet. "
            "Start an execution (durable-gen run), or point --db or DURABLE_GEN_DB at the "
            "database you meant"
        )
    # create or migrate, one transaction per step, serialized between processes
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            state = _look(conn, schema)
            if state == "absent":
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                for stmt in (*_TABLES, *SCHEDULE_TABLES, *QUEUE_TABLES):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO durable_gen_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
                return
            if state == "foreign":
                raise CorruptLogError(f"{where}: schema {schema!r} is not durable_gen's")
            version = _version(conn, where, schema)
            if version >= SCHEMA_VERSION:
                return
            for stmt in MIGRATIONS[version]:
                conn.execute(stmt)
            conn.execute("UPDATE durable_gen_schema SET version = %s", (version + 1,))


def _look(conn: Any, schema: str) -> str:
    """``absent`` (no such schema, or an empty one), ``ours`` or ``foreign``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'p')",
        (schema,),
    ).fetchall()
    names = {r[0] for r in rows}
    if not names:
        return "absent"
    if "durable_gen_schema" not in names:
        return "foreign"
    app = conn.execute("SELECT application FROM durable_gen_schema").fetchall()
    if len(app) != 1 or app[0][0] != APPLICATION:
        return "foreign"
    return "ours"


def _version(conn: Any, where: str, schema: str) -> int:
    rows = conn.execute("SELECT version FROM durable_gen_schema").fetchall()
    if len(rows) != 1 or type(rows[0][0]) is not int:
        raise CorruptLogError(
            f"{where} (schema {schema}) has a damaged durable_gen_schema table "
            f"(expected one integer version, found {rows!r:.60})"
        )
    return int(rows[0][0])
