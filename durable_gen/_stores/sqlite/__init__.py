"""The SQLite store: durable executions in one SQLite file, shared by processes.

Its parts, each a module of this package, stacked into one class:
``schema`` (the file: schema, journal encoding, error meanings), ``journal`` (the
connection, the cache of logs, fenced writes), ``leases`` (one worker at a time),
``outside`` (listings, due work, and the writes of callbacks, invokes, stop, pause,
delete, timeouts and retention), ``store`` (:class:`SqliteStore`: what the engines call).

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

Schema (version 5)
    ``executions``: one row per execution (id, target ``module:function`` or
    ``/abs/file.py:function`` plus the directory it was started from, status,
    input, result, error, timestamps, wake time, lease owner and expiry, the
    running invocation, a version bumped by writers other than the lease holder,
    the code version it started on, its deadline, ExecutionTimeout and retention).
    ``journal``: the log, one row per commit, keyed ``execution pk << 32 | n``:
    ``ops`` is a JSON array of ``Operation.to_dict()`` (the operations' new
    states), ``events`` a JSON array of history events. A step's commit appends
    one row -- one page -- which is what keeps a step close to a bare commit;
    loading an execution reads its rows in key order, the last state of each
    operation winning. ``callbacks`` maps callback ids to their execution.
    ``logs``: the log records kept for each execution (``_stores.logs``: the newest
    ``keep_logs``, default 1,000, numbered ``seq`` from 1; written in the lease
    holder's checkpoint transactions; deleted with their execution by a trigger).
    ``operations`` and ``events`` are SQL views over the journal for people with
    a ``sqlite3`` shell. ``durable_gen_schema`` holds the schema version; an
    older schema is migrated when the file is opened (``schema.MIGRATIONS``, one
    transaction per version: 2 added ``code_version``, 3 the indexes that list
    executions newest first, 4 the ``logs`` table, 5 ``deadline``, ``timeout_ms``,
    ``retention_ms`` and their indexes); a database
    written by a newer schema, a SQLite database that is not
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

Timeouts and retention (Lambda's ExecutionTimeout and RetentionPeriodInDays)
    An execution may record a ``deadline``: once it has passed, :meth:`SqliteStore.due`
    lists the execution first (whoever holds its lease) and a worker ends it with
    :meth:`SqliteStore.time_out`, one transaction that needs no lease (like ``stop``):
    status TIMED_OUT, Lambda's ExecutionTimedOut event, open waits cancelled and open
    callbacks closed; the lease holder's next fenced write is refused, so the result
    of a step still running then is never recorded. A redrive gives it its timeout
    again, from the redrive. Ended executions past their ``retention_ms`` (or a
    worker's default) are deleted by :meth:`SqliteStore.purge`, at most 500 per
    transaction, with their journal, callbacks and log records; then
    ``PRAGMA incremental_vacuum`` gives the freed pages back. New files are created
    with ``auto_vacuum = INCREMENTAL``; a file created before schema version 5 keeps
    ``auto_vacuum = NONE`` (switching needs a VACUUM of the whole file, which the
    migration does not run): its freed pages are reused by new executions, so it
    stops growing, but it does not shrink. To shrink such a file once, with nothing
    else using it: ``sqlite3 FILE "PRAGMA auto_vacuum = INCREMENTAL; VACUUM;"``.

Names, pause, delete, redrive, fork
    An execution's id is its name, with Lambda's rule (:meth:`SqliteStore.create`):
    one name, one execution. ``pause`` makes a RUNNING execution PAUSING (its
    worker records its next checkpoint, then stops) or PAUSED; nothing advances a
    paused execution, though its callbacks can be completed; ``resume_paused``
    makes it due again. ``delete`` removes an ended execution with its log.
    ``redrive`` and ``fork`` rewrite or copy operations as
    :mod:`durable_gen._core.repair` decides, in one transaction each: redrive
    clears the ``ops`` of the execution's journal rows after its first and appends
    one row with the kept operations (the history events stay); fork inserts the
    new execution with its copied operations.
"""

from .schema import DEFAULT_LEASE_SECONDS, SCHEMA_VERSION, default_db_path
from .store import SqliteStore

__all__ = ["DEFAULT_LEASE_SECONDS", "SCHEMA_VERSION", "SqliteStore", "default_db_path"]
