"""The SQLite store's own matters: its journal layout, SQL views, schema, refusing foreign or
damaged files, the default path, liveness of lease owners. What every store promises
(durability, leases, fencing, names) is tested in tests/store_contract on every store."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from durable_gen import (
    CorruptLogError,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StoreError,
)
from durable_gen._core import service as _service
from durable_gen._stores import owners as _owners
from durable_gen._stores.owners import owner_is_dead
from durable_gen._stores.sqlite import (
    SCHEMA_VERSION,
    SqliteStore,
    default_db_path,
)
from durable_gen._stores.sqlite import schema as _schema
from tests.store_contract.test_engine_store import step

T0 = 1_767_225_600_000


@pytest.fixture
def db(tmp_path):
    return tmp_path / "store.db"


@pytest.fixture
def store(db):
    s = SqliteStore(db)
    yield s
    s.close()


def started(store: SqliteStore, ex: str = "ex1") -> str:
    store.create(ex, '{"n":1}', T0, target="mod:fn")
    store.acquire(ex, T0)
    return ex


def test_a_step_is_one_journal_row_holding_its_latest_state(store, db):
    # (what every store promises is in tests/store_contract; this is SQLite's layout)
    ex = started(store)
    store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 1, durable=False)
    store.checkpoint(ex, [step("a", OperationAction.SUCCEED, payload="1")], T0 + 2, durable=True)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT ops, events FROM journal ORDER BY key").fetchall()
    conn.close()
    assert len(rows) == 2  # the creation, then START + SUCCEED in one commit
    assert rows[1][0].count('"Id":"a"') == 1  # only the step's latest state is written
    assert [e["EventType"] for e in json.loads(rows[1][1])] == ["StepStarted", "StepSucceeded"]
    with SqliteStore(db) as other:
        assert other.load(ex)["a"].status is OperationStatus.SUCCEEDED


def test_sql_views_show_operations_and_events(store, db):
    ex = started(store)
    store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 1, durable=True)
    store.checkpoint(ex, [step("a", OperationAction.SUCCEED, payload="1")], T0 + 2, durable=True)
    conn = sqlite3.connect(db)
    ops = conn.execute("SELECT op_id, json_extract(body, '$.Status') FROM operations").fetchall()
    events = conn.execute("SELECT json_extract(body, '$.EventType') FROM events").fetchall()
    conn.close()
    assert sorted(ops) == [("a", "SUCCEEDED"), (ex, "STARTED")]
    assert [e for (e,) in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
    ]


def test_schema_version_is_recorded(store, db):
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM durable_gen_schema").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA application_id").fetchone()[0] == _schema.APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store.synchronous == "FULL"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_newer_schema_is_refused_and_left_alone(db):
    SqliteStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE durable_gen_schema SET version = 99")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(
        StoreError,
        match=rf"^{re.escape(str(db))} was written by a newer durable_gen \(schema version 99; "
        rf"this version reads up to {SCHEMA_VERSION}\); upgrade durable_gen to open it$",
    ):
        SqliteStore(db)
    assert db.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(db):
    db.write_bytes(b"these are my notes, not a database\n" * 20)
    before = db.read_bytes()
    with pytest.raises(
        CorruptLogError,
        match=rf"^{re.escape(str(db))} is not a SQLite database \(it lacks the SQLite file "
        r"header\); durable_gen leaves it untouched: pass another path with --db or "
        r"DURABLE_GEN_DB$",
    ):
        SqliteStore(db)
    assert db.read_bytes() == before
    assert not os.path.exists(str(db) + "-wal")


def test_a_damaged_sqlite_file_is_refused(db):
    SqliteStore(db).close()
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page
    db.write_bytes(bytes(data))
    with pytest.raises(
        CorruptLogError,
        match=rf"^{re.escape(str(db))} cannot be read as a SQLite database \(.*\); "
        r"durable_gen leaves it untouched: pass another path with --db or DURABLE_GEN_DB$",
    ):
        SqliteStore(db)


def test_another_programs_sqlite_database_is_refused_and_left_alone(db):
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(
        CorruptLogError,
        match=rf"^{re.escape(str(db))} is a SQLite database but not a durable_gen one \(it has "
        r"no durable_gen_schema table\); durable_gen leaves it untouched: pass another path "
        r"with --db or DURABLE_GEN_DB$",
    ):
        SqliteStore(db)
    assert db.read_bytes() == before


def test_an_unreadable_journal_row_is_a_corrupt_log(store, db):
    ex = started(store)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE journal SET ops = '[{oops' WHERE key = ?", ((1 << 32) | 1,))
    conn.commit()
    conn.close()
    with (
        SqliteStore(db) as other,
        pytest.raises(
            CorruptLogError, match=r"^execution 'ex1' has a journal row that is not valid JSON"
        ),
    ):
        other.load(ex)


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("DURABLE_GEN_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "durable_gen" / "durable_gen.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home/.local/share/durable_gen/durable_gen.db"


def test_owner_liveness():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = f"{_owners.HOST}:{p.pid}:-:abcd"
    assert owner_is_dead(dead)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # exited, not reaped: a zombie
    try:
        token = _owners.process_start_token(zombie.pid) or "-"
        assert owner_is_dead(f"{_owners.HOST}:{zombie.pid}:{token}:abcd")
    finally:
        zombie.wait()
    me = _owners.new_owner()
    assert owner_is_dead(me)  # a token of this process that no open store uses
    _owners.LIVE_OWNERS.add(me)
    try:
        assert not owner_is_dead(me)
    finally:
        _owners.LIVE_OWNERS.discard(me)
    parent = os.getppid()
    assert not owner_is_dead(f"{_owners.HOST}:{parent}:{_owners.process_start_token(parent)}:x")
    # the pid runs a process started at another time: the holder died and the pid was reused
    assert owner_is_dead(f"{_owners.HOST}:{parent}:{_owners.BOOT_ID}.1:x")
    assert not owner_is_dead(f"another-host:{p.pid}:-:abcd")  # cannot tell: wait for expiry
    assert not owner_is_dead("garbage")


def test_a_callback_completed_while_its_timeout_fires_keeps_the_completion(store, db, monkeypatch):
    ex = started(store)
    start = OperationUpdate(
        id="cb",
        type=OperationType.CALLBACK,
        action=OperationAction.START,
        sub_type="Callback",
        name="cb",
        callback_timeout_seconds=1,
    )
    store.checkpoint(ex, [start], T0, durable=True)
    callback_id = store.load(ex)["cb"].callback_id
    real_fire = _service.fire_timers
    raced = []

    def fire_while_completed_elsewhere(ops, now):
        out = real_fire(ops, now)  # computed on the log as loaded: the callback timed out
        if not raced:
            raced.append(1)
            with SqliteStore(db) as other:
                other.complete_callback(callback_id, "succeed", T0 + 1500, payload="yes")
        return out

    monkeypatch.setattr(_service, "fire_timers", fire_while_completed_elsewhere)
    store.begin_invocation(ex, "req", T0 + 2000)
    op = store.load(ex)["cb"]
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, "yes")
    kinds = [e["EventType"] for e in store.history(ex)]
    assert "CallbackSucceeded" in kinds
    assert "CallbackTimedOut" not in kinds


def test_delete_removes_every_row_of_the_execution(store, db):
    for ex in ("keep", "gone"):
        started(store, ex)
        store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 1, durable=True)
    store.stop("gone", T0 + 2)
    conn = sqlite3.connect(db)
    count = (
        "SELECT COUNT(*) FROM journal WHERE key >> 32 = (SELECT pk FROM executions WHERE id = ?)"
    )
    assert conn.execute(count, ("gone",)).fetchone()[0] == 3
    store.delete("gone")
    assert conn.execute("SELECT id FROM executions").fetchall() == [("keep",)]
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 2  # keep's rows
    conn.close()


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "executions_newest"),
        ({"status": "RUNNING"}, "executions_newest_by_status"),
    ],
)
def test_a_page_of_executions_is_read_through_an_index_not_the_table(tmp_path, filters, index):
    # 100,000 executions list a page in milliseconds only if the newest-first order
    # comes from an index (benchmarks.listing measures it); this is the plan SQLite
    # chooses for the store's own query
    store = SqliteStore(tmp_path / "plan.db")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    store.executions(limit=50, **filters)
    store._conn.set_trace_callback(None)
    query = next(s for s in statements if s.startswith("SELECT") and "ORDER BY" in s)
    plan = " ".join(row[3] for row in store._conn.execute("EXPLAIN QUERY PLAN " + query))
    assert f"USING INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort of the whole table
    store.close()
