"""What the PostgreSQL store does beyond the shared contract (``tests/store_contract`` runs
that on it): choosing it by URL, its schema's versions, one-line errors, group commit,
surviving a cut connection, NOTIFY, history pages."""

from __future__ import annotations

import threading

import psycopg
import pytest

from durable_gen import (
    CorruptLogError,
    LeaseLostError,
    OperationAction,
    OperationStatus,
    SqliteStore,
    StoreError,
    ValidationError,
    open_store,
)
from durable_gen._stores.postgres import PostgresStore
from durable_gen._stores.postgres import schema as pg_schema
from durable_gen._stores.postgres.journal import owner_key
from durable_gen._stores.queues import QueueRow
from tests._procs import wait_until
from tests.store_contract.test_engine_store import T0, step


def _admin(url: str):
    return psycopg.connect(url, autocommit=True)


def _lock_free(url: str, owner: str) -> bool:
    """Whether nobody holds ``owner``'s proof of life (as another machine would see)."""
    with _admin(url) as conn:
        key = owner_key(owner)
        free = conn.execute("SELECT pg_try_advisory_lock_shared(%s)", (key,)).fetchone()[0]
        if free:
            conn.execute("SELECT pg_advisory_unlock_shared(%s)", (key,))
        return bool(free)


def test_a_url_opens_postgres_and_anything_else_sqlite(pg_url, tmp_path, monkeypatch):
    with open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        assert store.create("ex1", "null", T0) is True
    monkeypatch.setenv("DURABLE_GEN_DB", pg_url.replace("postgresql://", "postgres://", 1))
    with open_store() as store:  # $DURABLE_GEN_DB, the short scheme too
        assert isinstance(store, PostgresStore)
        assert store.exists("ex1")
    with open_store(tmp_path / "x.db") as store:
        assert isinstance(store, SqliteStore)
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "y.db"))
    with open_store() as store:
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "y.db"


def test_the_password_never_shows(pg_url):
    url = pg_url.replace("postgres@", "postgres:s3cret@", 1)
    with PostgresStore(url) as store:
        assert "s3cret" not in store.path
        assert store.path.startswith("postgresql://postgres:***@/")


def test_a_newer_schema_is_refused_with_the_versions(pg_url):
    PostgresStore(pg_url).close()
    with _admin(pg_url) as conn:
        conn.execute("UPDATE durable_gen.durable_gen_schema SET version = 99")
    with pytest.raises(
        StoreError,
        match=r"^postgresql://postgres@/dg_\w+\?host=.+ \(schema durable_gen\) was written by a "
        r"newer durable_gen \(schema version 99; this version reads up to 3\); upgrade "
        r"durable_gen to open it$",
    ):
        PostgresStore(pg_url)


def test_an_older_schema_is_migrated_once_in_order(pg_url, monkeypatch):
    with PostgresStore(pg_url) as store:
        store.create("old", "null", T0)
    monkeypatch.setattr(pg_schema, "SCHEMA_VERSION", 5)
    monkeypatch.setattr(
        pg_schema,
        "MIGRATIONS",
        {
            3: ("ALTER TABLE executions ADD COLUMN note text DEFAULT 'three'",),
            4: ("UPDATE executions SET note = note || ' four'",),
        },
    )
    opened = []

    def open_one():
        opened.append(PostgresStore(pg_url))

    threads = [threading.Thread(target=open_one) for _ in range(4)]  # at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 4
    for s in opened:
        s.close()
    with _admin(pg_url) as conn:
        assert conn.execute("SELECT version FROM durable_gen.durable_gen_schema").fetchall() == [
            (5,)
        ]
        # each migration ran once, in order
        assert conn.execute("SELECT note FROM durable_gen.executions").fetchall() == [
            ("three four",)
        ]


def test_a_version_1_schema_gains_trace_context_and_schedules(pg_url):
    with PostgresStore(pg_url) as store:
        store.create("old", "null", T0)
    with _admin(pg_url) as conn:  # what version 1 was
        conn.execute("DROP TABLE durable_gen.schedules")
        conn.execute("ALTER TABLE durable_gen.executions DROP COLUMN trace_context")
        conn.execute("ALTER TABLE durable_gen.executions DROP COLUMN schedule")
        conn.execute("UPDATE durable_gen.durable_gen_schema SET version = 1")
    with PostgresStore(pg_url) as store:
        assert store.exists("old")
    with _admin(pg_url) as conn:
        assert conn.execute("SELECT version FROM durable_gen.durable_gen_schema").fetchall() == [
            (pg_schema.SCHEMA_VERSION,)
        ]
        assert conn.execute(
            "SELECT trace_context, schedule FROM durable_gen.executions"
        ).fetchall() == [(None, None)]
        assert conn.execute("SELECT count(*) FROM durable_gen.schedules").fetchall() == [(0,)]


_QUEUE_INDEXES = (
    "executions_due_unqueued",
    "executions_queued",
    "executions_queue_leases",
    "executions_queue_starts",
    "executions_dedup",
)


def test_a_version_2_schema_gains_queues(pg_url):
    with PostgresStore(pg_url) as store:
        store.create("old", "null", T0)
    with _admin(pg_url) as conn:  # what version 2 was
        for index in _QUEUE_INDEXES:
            conn.execute(f"DROP INDEX durable_gen.{index}")
        for column in ("queue", "partition_key", "priority", "dedup_id", "first_admitted_at"):
            conn.execute(f"ALTER TABLE durable_gen.executions DROP COLUMN {column}")
        conn.execute("DROP TABLE durable_gen.queues")
        conn.execute("UPDATE durable_gen.durable_gen_schema SET version = 2")
    with PostgresStore(pg_url) as store:
        assert store.exists("old")
        assert store.put_queue(QueueRow(name="q", concurrency=1)) is True
        assert store.create("new", "null", T0, queue="q", dedup_id="d") is True
        assert store.due(T0) == ["old", "new"]
    with _admin(pg_url) as conn:
        assert conn.execute("SELECT version FROM durable_gen.durable_gen_schema").fetchall() == [
            (pg_schema.SCHEMA_VERSION,)
        ]
        assert conn.execute(
            "SELECT id, queue, partition_key, priority, dedup_id, first_admitted_at "
            "FROM durable_gen.executions ORDER BY pk"
        ).fetchall() == [("old", None, None, 0, None, None), ("new", "q", None, 0, "d", None)]
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'durable_gen'"
            )
        }
        assert set(_QUEUE_INDEXES) <= names


def test_a_schema_of_another_application_is_refused_and_left_alone(pg_url):
    with _admin(pg_url) as conn:
        conn.execute("CREATE SCHEMA durable_gen")
        conn.execute("CREATE TABLE durable_gen.orders (id int)")
    with pytest.raises(CorruptLogError, match=r"has a schema 'durable_gen' that is not"):
        PostgresStore(pg_url)
    with _admin(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM durable_gen.orders").fetchone() == (0,)
        # another schema name: a home of its own in the same database
    with PostgresStore(pg_url, schema="workflows") as store:
        assert store.create("ex1", "null", T0)


def test_read_only_opening_creates_nothing(pg_url):
    with pytest.raises(StoreError, match=r"^no durable_gen data in .+ \(schema durable_gen\)"):
        PostgresStore(pg_url, create=False)
    with _admin(pg_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'durable_gen'"
        ).fetchone() == (0,)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.db", r"^'sqlite:///x.db' is not a PostgreSQL URL: write it as "),
        (
            "postgresql://u@[::1/x",
            r"^postgresql://u@\[::1/x is not a valid PostgreSQL URL \(end of string reached",
        ),
        (
            "postgresql://u:pw@127.0.0.1:1/x",
            r"^cannot reach the PostgreSQL server at postgresql://u:\*\*\*@127.0.0.1:1/x \(.*"
            r"\); is it running and listening there\?",
        ),
    ],
)
def test_bad_urls_get_one_line_that_says_what_to_do(url, message):
    with pytest.raises(StoreError, match=message) as e:
        PostgresStore(url)
    assert "\n" not in str(e.value)
    assert "pw@" not in str(e.value)


def test_a_missing_database_says_how_to_make_one(pg_url):
    url = pg_url.replace("/dg_", "/missing_dg_", 1)
    with pytest.raises(StoreError, match=r"does not exist\. Create it \(createdb NAME"):
        PostgresStore(url)


def test_group_commit_writes_the_results_of_many_executions_in_one_transaction(pg_url):
    parent = PostgresStore(pg_url)
    stores = [parent.clone() for _ in range(8)]
    try:
        for i, s in enumerate(stores):
            s.create(f"e{i}", "null", T0)
            s.acquire(f"e{i}", T0)
            s.checkpoint(f"e{i}", [step("a", OperationAction.START)], T0, durable=False)
        group = parent.shared_group()
        # hold the row of e0 so that the first (lone) write waits; the other seven queue
        blocker = _admin(pg_url)
        blocker.execute("BEGIN")
        blocker.execute("SELECT 1 FROM durable_gen.executions WHERE id = 'e0' FOR UPDATE")
        errors: list[BaseException] = []

        def write(i: int) -> None:
            try:
                stores[i].checkpoint(
                    f"e{i}", [step("a", OperationAction.SUCCEED, payload="1")], T0, durable=True
                )
            except BaseException as e:  # reported below
                errors.append(e)

        first = threading.Thread(target=write, args=(0,))
        first.start()
        wait_until(lambda: group._leading, 10, "the first write to lead")
        rest = [threading.Thread(target=write, args=(i,)) for i in range(1, 8)]
        for t in rest:
            t.start()
        wait_until(lambda: len(group._queue) == 7, 10, "seven writes to queue")
        blocker.execute("ROLLBACK")
        blocker.close()
        for t in [first, *rest]:
            t.join(30)
        assert errors == []
        assert (group.commits, group.writes) == (2, 8)  # one lone write, then seven at once
        view = PostgresStore(pg_url)
        try:
            for i in range(8):
                assert view.load(f"e{i}")["a"].status is OperationStatus.SUCCEEDED
        finally:
            view.close()
    finally:
        for s in [*stores, parent]:
            s.close()


def test_a_fenced_write_in_a_group_is_refused_alone(pg_url):
    parent = PostgresStore(pg_url)
    a, b = parent.clone(), parent.clone()
    thief = PostgresStore(pg_url, lease_seconds=30)
    try:
        for s, ex in ((a, "a"), (b, "b")):
            s.create(ex, "null", T0)
            s.acquire(ex, T0)
        with _admin(pg_url) as conn:  # a's lease expires: the thief takes it over
            conn.execute("UPDATE durable_gen.executions SET lease_expires = 0 WHERE id = 'a'")
        thief.acquire("a", T0)
        with pytest.raises(LeaseLostError, match=r"the lease passed to pid \d+ on "):
            a.checkpoint("a", [step("s", OperationAction.START)], T0, durable=True)
        b.checkpoint("b", [step("s", OperationAction.START)], T0, durable=True)
        assert "s" not in thief.load("a")
        assert "s" in PostgresStore.load(thief, "b")
    finally:
        for s in (a, b, thief, parent):
            s.close()


def test_a_cut_connection_is_replaced_and_the_owner_proven_alive_again(pg_url):
    store = PostgresStore(pg_url)
    other = PostgresStore(pg_url)
    try:
        store.create("ex1", "null", T0)
        store.acquire("ex1", T0)
        assert not _lock_free(pg_url, store.owner)  # its proof of life
        with _admin(pg_url) as conn:
            pid = store._conn.info.backend_pid
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(lambda: _lock_free(pg_url, store.owner), 10, "the server to drop the session")
        # a read is retried on a new connection, which takes the proof of life again
        assert store.load("ex1")["ex1"].status is OperationStatus.STARTED
        assert not _lock_free(pg_url, store.owner)
        # a write whose connection is cut is reported as retryable, never half-done
        with _admin(pg_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
        with pytest.raises(StoreError) as e:
            store.checkpoint("ex1", [step("a", OperationAction.START)], T0, durable=True)
        assert e.value.retryable
        # the next one reads what was recorded and writes
        store.checkpoint("ex1", [step("a", OperationAction.START)], T0, durable=True)
        assert other.load("ex1")["a"].status is OperationStatus.STARTED
    finally:
        store.close()
        other.close()


def test_workers_are_told_when_work_becomes_due(pg_url):
    worker = PostgresStore(pg_url)
    starter = PostgresStore(pg_url)
    try:
        assert worker.wait_for_work(0.05) is False  # nothing happened
        woke: list[bool] = []
        t = threading.Thread(target=lambda: woke.append(worker.wait_for_work(30)))
        worker.wait_for_work(0)  # listening from now on
        t.start()
        starter.create("ex1", "null", T0)
        t.join(30)
        assert woke == [True]
        # a heartbeat makes nothing due: no notification
        assert worker.wait_for_work(0.05) is False
    finally:
        worker.close()
        starter.close()


def test_history_pages_forwards_and_backwards(pg_url):
    store = PostgresStore(pg_url)
    try:
        store.create("ex1", "null", T0)
        store.acquire("ex1", T0)
        for i in range(12):
            store.checkpoint(
                "ex1",
                [
                    step(f"s{i}", OperationAction.START),
                    step(f"s{i}", OperationAction.SUCCEED, payload=str(i)),
                ],
                T0 + i,
                durable=True,
            )
        whole = store.history("ex1")
        assert len(whole) == 25
        for reverse in (False, True):
            pages, marker = [], None
            while True:
                page, marker = store.history_page("ex1", marker, 7, reverse=reverse)
                pages.append(page)
                if marker is None:
                    break
            events = [e for p in pages for e in p]
            assert events == (whole[::-1] if reverse else whole)
            assert [len(p) for p in pages] == [7, 7, 7, 4]
        with pytest.raises(ValidationError, match=r"^Marker 'nope' is not a marker of execution"):
            store.history_page("ex1", "nope")
        assert [len(p) for p in store.history_pages("ex1", 10)] == [10, 10, 5]
    finally:
        store.close()
