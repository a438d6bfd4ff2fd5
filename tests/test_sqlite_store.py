"""The SQLite store: durability, round trips, refusing foreign files, leases and fencing."""

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
    ErrorObject,
    ExecutionAlreadyStartedError,
    ExecutionNotFoundError,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StoreError,
    _owners,
    _sqlite,
)
from durable_gen._owners import owner_is_dead
from durable_gen._sqlite import (
    SCHEMA_VERSION,
    LeaseHeldError,
    LeaseLostError,
    SqliteStore,
    default_db_path,
)

T0 = 1_767_225_600_000


def step(op_id: str, action: OperationAction, **kw) -> OperationUpdate:
    return OperationUpdate(
        id=op_id, type=OperationType.STEP, action=action, sub_type="Step", name=op_id, **kw
    )


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


def test_round_trip_through_a_new_store(store, db):
    ex = started(store)
    store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 1, durable=False)
    store.checkpoint(ex, [step("a", OperationAction.SUCCEED, payload='"x"')], T0 + 2, durable=True)
    store.checkpoint(
        ex,
        [
            step("b", OperationAction.START),
            step(
                "b",
                OperationAction.RETRY,
                error=ErrorObject(type="E", message="m"),
                next_attempt_delay_seconds=3,
            ),
        ],
        T0 + 3,
        durable=True,
    )
    mine = dict(store.load(ex))
    with SqliteStore(db) as other:
        theirs = dict(other.load(ex))
        assert theirs == mine
        assert list(theirs) == [ex, "a", "b"]  # the order operations were first recorded
        assert theirs["a"].status is OperationStatus.SUCCEEDED
        assert theirs["a"].result == '"x"'
        assert theirs["b"].status is OperationStatus.PENDING
        assert theirs["b"].next_attempt_timestamp == T0 + 3 + 3000
        assert other.next_timer(ex) == T0 + 3003
        assert other.history(ex) == store.history(ex)
        assert [e["EventType"] for e in other.history(ex)] == [
            "ExecutionStarted",
            "StepStarted",
            "StepSucceeded",
            "StepStarted",
            "StepFailed",
        ]
        assert other.status(ex) == ("RUNNING", None, None)
        info = other.info(ex)
        assert (info.target, info.input, info.status) == ("mod:fn", '{"n":1}', "RUNNING")


def test_non_durable_updates_wait_for_the_next_durable_checkpoint(store, db):
    ex = started(store)
    store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 1, durable=False)
    assert store.load(ex)["a"].status is OperationStatus.STARTED  # this store sees it
    with SqliteStore(db) as other:
        assert "a" not in other.load(ex)  # not written yet
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


def test_a_name_starts_one_execution_and_unknown_ids_are_not_found(store):
    started(store)
    history = store.history("ex1")
    # the same name, input and target: the existing execution, nothing written
    assert store.create("ex1", '{"n":1}', T0 + 5, target="mod:fn") is False
    assert store.create("ex1", '{"n":1}', T0 + 5) is False  # target unknown: not compared
    assert store.history("ex1") == history
    with pytest.raises(
        ExecutionAlreadyStartedError,
        match=r"^execution 'ex1' was already started with another input; one name starts "
        r"one execution \(starting it again with the same input returns that execution\): "
        r"choose another name, or send the same input$",
    ) as e:
        store.create("ex1", "null", T0)
    assert (e.value.execution_id, e.value.conflict) == ("ex1", "input")
    with pytest.raises(
        ExecutionAlreadyStartedError,
        match=r"^execution name 'ex1' is taken by an execution of mod:fn, not of mod:other; ",
    ) as e:
        store.create("ex1", '{"n":1}', T0, target="mod:other")
    assert e.value.conflict == "function"
    assert store.info("ex1").input == '{"n":1}'
    for call in (store.load, store.status, store.history, store.info):
        with pytest.raises(ExecutionNotFoundError, match=r"^no execution with id 'nope'$"):
            call("nope")


def test_schema_version_is_recorded(store, db):
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM durable_gen_schema").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA application_id").fetchone()[0] == _sqlite.APPLICATION_ID
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


def test_writing_needs_the_lease(store, db):
    store.create("ex1", "null", T0)
    with pytest.raises(
        LeaseLostError, match=r"^stopped advancing execution 'ex1': the lease was released$"
    ):
        store.checkpoint("ex1", [step("a", OperationAction.START)], T0, durable=True)


def test_a_live_holder_keeps_its_lease(store, db):
    ex = started(store)
    with SqliteStore(db) as other:
        with pytest.raises(
            LeaseHeldError,
            match=rf"^execution 'ex1' is being advanced by another worker \(pid {os.getpid()} "
            r"on .+\); its lease expires at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$",
        ):
            other.acquire(ex, T0)
        store.release(ex, T0 + 5)
        other.acquire(ex, T0)  # released: free to take
        assert other.info(ex).wake_at is None or other.info(ex).lease_owner == other.owner


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced(db):
    a = SqliteStore(db, lease_seconds=0.05)
    b = SqliteStore(db)
    ex = started(a)
    a.checkpoint(ex, [step("s", OperationAction.START)], T0 + 1, durable=False)
    time.sleep(0.1)
    b.acquire(ex, T0 + 2)
    with pytest.raises(
        LeaseLostError,
        match=rf"^stopped advancing execution 'ex1': the lease passed to pid {os.getpid()} on ",
    ):
        a.checkpoint(ex, [step("s", OperationAction.SUCCEED, payload="1")], T0 + 3, durable=True)
    assert "s" not in b.load(ex)  # nothing of the fenced holder was written
    assert not a.renew(ex)
    assert b.renew(ex)
    a.close()
    b.close()


def test_the_lease_of_a_dead_holder_in_this_process_is_taken_at_once(db):
    a = SqliteStore(db)
    ex = started(a)
    a.begin_invocation(ex, "req-1", T0 + 1)
    _owners.LIVE_OWNERS.discard(a.owner)  # "a" died without letting go
    with SqliteStore(db) as b:
        b.acquire(ex, T0 + 50)
        last = b.history(ex)[-1]
    assert last == {
        "EventType": "InvocationCompleted",
        "EventTimestamp": T0 + 50,
        "Id": ex,
        "InvocationCompletedDetails": {
            "StartTimestamp": T0 + 1,
            "EndTimestamp": T0 + 50,
            "RequestId": "req-1",
            "Error": {
                "Payload": {
                    "ErrorType": "Runtime.ExitError",
                    "ErrorMessage": f"the worker running this invocation (pid {os.getpid()} on "
                    f"{_owners.HOST}) stopped before it ended",
                },
                "Truncated": False,
            },
        },
        "EventId": 2,
    }


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


def test_stop_ends_the_execution_and_fences_its_holder(store, db):
    ex = started(store)
    with SqliteStore(db) as other:
        other.stop(ex, T0 + 10)
        with pytest.raises(StoreError, match=r"^execution 'ex1' already ended STOPPED$"):
            other.stop(ex, T0 + 11)
    with pytest.raises(
        LeaseLostError, match=r"^stopped advancing execution 'ex1': it ended STOPPED$"
    ):
        store.checkpoint(ex, [step("a", OperationAction.START)], T0 + 12, durable=True)
    status, result, error = store.status(ex)
    assert (status, result) == ("STOPPED", None)
    assert error == ErrorObject(type="ExecutionStopped", message="stopped by request")
    assert store.load(ex)[ex].status is OperationStatus.STOPPED
    last = store.history(ex)[-1]
    assert last["EventType"] == "ExecutionStopped"
    assert last["ExecutionStoppedDetails"]["Error"]["Payload"]["ErrorType"] == "ExecutionStopped"


def test_finish_records_the_end(store):
    ex = started(store)
    store.finish(ex, "SUCCEEDED", T0 + 5, result='"done"')
    assert store.status(ex) == ("SUCCEEDED", '"done"', None)
    info = store.info(ex)
    assert (info.ended_at, info.wake_at) == (T0 + 5, None)
    assert store.history(ex)[-1]["ExecutionSucceededDetails"] == {
        "Result": {"Payload": '"done"', "Truncated": False}
    }


def test_due_and_listing(store, db):
    for i in range(3):
        store.create(f"e{i}", "null", T0 + i)
    store.acquire("e1", T0)
    store.release("e1", T0 + 10_000)
    assert store.due(T0 + 5) == ["e0", "e2"]
    assert store.due(T0 + 20_000) == ["e0", "e2", "e1"]
    assert [e.id for e in store.executions()] == ["e2", "e1", "e0"]
    assert [e.id for e in store.executions(status="SUCCEEDED")] == []
    assert store.next_wake() == T0


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
    real_fire = _sqlite._service.fire_timers
    raced = []

    def fire_while_completed_elsewhere(ops, now):
        out = real_fire(ops, now)  # computed on the log as loaded: the callback timed out
        if not raced:
            raced.append(1)
            with SqliteStore(db) as other:
                other.complete_callback(callback_id, "succeed", T0 + 1500, payload="yes")
        return out

    monkeypatch.setattr(_sqlite._service, "fire_timers", fire_while_completed_elsewhere)
    store.begin_invocation(ex, "req", T0 + 2000)
    op = store.load(ex)["cb"]
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, "yes")
    kinds = [e["EventType"] for e in store.history(ex)]
    assert "CallbackSucceeded" in kinds
    assert "CallbackTimedOut" not in kinds
