"""The PostgreSQL store: durable executions in a PostgreSQL database, shared by machines.

SQLite serves one machine (many processes); this store serves workers on many
machines or containers that share one PostgreSQL server. It keeps the same
promises (``_core.contract``: durable checkpoints, fencing, one name one execution,
leases) and passes the same contract suite (``tests/store_contract``), so the
durable engine (``_engine.durable.DurableEngine``), the worker pool and the CLI run
on it unchanged: ``durable-gen --db postgresql://user@host/dbname ...``, or
``$DURABLE_GEN_DB``, or :func:`durable_gen.open_store` from Python. It needs psycopg 3
(``pip install 'durable-gen[postgres]'``).

Its parts: ``schema`` (URL, connections, the schema, migrations, what PostgreSQL's
errors mean), ``group`` (group commit), ``journal`` (the cache of logs, fenced
writes, leases and liveness), ``schedules`` and ``queues`` (their dialect of the
shared ``_stores.schedule_store`` and ``_stores.queue_store``) and ``store``
(:class:`PostgresStore`).

Durability
    Every durable write is one committed transaction; with the server's
    ``synchronous_commit = on`` (PostgreSQL's default, which durable_gen never
    changes) and ``fsync = on``, a commit has reached the server's disk (the WAL)
    before ``checkpoint`` returns. Updates handed over with ``durable=False`` (the
    START of an at-least-once step) wait in memory for the next durable write.

Schema (PostgreSQL schema version 3), in its own PostgreSQL schema ``durable_gen``
    ``executions`` (one row per execution: its status, input and outcome, lease,
    wake time, deadline and retention, and ``seq``/``version``: the number of its
    last journal row, and how many writes other processes made), ``journal`` (the
    checkpoint log, append-only, one row per commit keyed ``(execution, seq)``: the
    operations' new states and the history events it added; an execution's log is
    its rows in order, the newest state of each operation winning, and its history
    is the events of the same rows -- derived when read, never stored twice),
    ``callbacks`` (callback id -> execution and operation), ``logs`` (kept log
    records), ``schedules`` and ``queues`` (versions 2 and 3), and the views
    ``operations`` and ``events`` for people with psql.
    ``durable_gen_schema`` holds the version; an older schema is migrated when opened
    (``schema.MIGRATIONS``, one transaction each, serialized between processes by an
    advisory lock), a newer one is refused, and a ``durable_gen`` schema that is not
    ours is refused and left untouched.

    Why a journal and not an operations table updated in place: a step's commit is
    then one INSERT of one small row plus a heap-only update of the execution's row,
    with no dead operation rows for autovacuum to chase; the history needs no table
    of its own; and a holder whose cache is behind reads the rows after the last one
    it saw, not the whole log. (``tests/postgres/bench_layout.py`` measures the two.)

Fencing, in the statement that writes
    A step's result is written by one statement (``journal.FAST_APPEND``): an UPDATE
    of the execution's row that matches only while this store holds the lease, the
    execution is RUNNING and nobody else wrote since this store read it, and the
    INSERT of the journal row from what that UPDATE returned. The row lock the
    UPDATE takes orders it against a takeover's UPDATE of the same row, so a worker
    that lost its lease never writes. Other writes lock the row (``FOR UPDATE``) and
    check the same in their transaction.

Leases and liveness, across machines
    ``acquire`` claims the row with ``SELECT ... FOR UPDATE SKIP LOCKED``: workers
    racing for one execution never queue behind each other's claims. Lease expiry
    is judged by the server's clock, so machines whose clocks disagree agree on it.
    A holder is proven dead by a session advisory lock (``journal.owner_key``) each
    store holds on its connection from before its first lease: the server drops it
    when the connection ends (the process was killed, on any machine), so another
    worker takes the lease at once instead of waiting for it to expire.

Group commit
    A worker pool's stores (``clone``) share one ``group.GroupCommit``: step results
    of executions ready at once are written in one transaction, one WAL flush.

Waking workers
    Writes that make work due (a start, a completed callback or invoke, a resume,
    a redrive, a lease let go of due work) ``NOTIFY`` the channel ``<schema>_due``
    when they commit; :meth:`PostgresStore.wait_for_work` waits for one (polling
    remains the fallback).
"""

from ..urls import is_postgres_url
from .journal import DEFAULT_LEASE_SECONDS
from .schema import SCHEMA_VERSION
from .store import PostgresStore

__all__ = ["DEFAULT_LEASE_SECONDS", "SCHEMA_VERSION", "PostgresStore", "is_postgres_url"]
