"""Redrive, fork and version pinning on the SQLite engine: what runs again, what never
does (side-effect counters), what is refused, and the schema migration they need."""

from __future__ import annotations

import base64
import collections
import sqlite3

import pytest

from durable_gen import (
    ChildContext,
    CompletionPolicy,
    CreateCallback,
    ExecutionConflictError,
    Map,
    RetryPolicy,
    Step,
    StepError,
    ValidationError,
    VersionMismatchError,
    VirtualClock,
)
from durable_gen._core.log import OperationStatus
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.encrypted import EncryptedStore, KeyRing, PayloadCipher
from durable_gen._stores.sqlite import SqliteStore
from durable_gen._stores.sqlite import schema as _schema

NO_RETRY = RetryPolicy.none()
ran: collections.Counter[str] = collections.Counter()
broken: set[str] = set()


@pytest.fixture(autouse=True)
def _reset():
    ran.clear()
    broken.clear()


def act(name: str) -> str:
    ran[name] += 1
    if name in broken:
        raise RuntimeError(f"{name} broke")
    return f"{name}:ok"


def step(name: str) -> Step:
    return Step(act, name, name=name, retry=NO_RETRY)


def sequential(_event):
    a = yield step("a")
    b = yield step("b")
    c = yield step("c")
    return [a, b, c]


def in_context(_event):
    def body():
        x = yield step("x")
        y = yield step("y")
        return [x, y]

    inner = yield ChildContext(body, name="ctx")
    after = yield step("after")
    return [inner, after]


def mapped(_event):
    result = yield Map(
        range(4),
        lambda item, i: (yield step(f"item{item}")),
        name="items",
        completion=CompletionPolicy.all_completed(),  # every item records its outcome
    )
    result.throw_if_error()
    return result.get_results()


def caught(_event):
    try:
        first = yield step("first")
    except StepError:
        first = "caught"
    second = yield step("second")
    third = yield step("third")
    return [first, second, third]


def waits_for_approval(_event):
    a = yield step("a")
    handle = yield CreateCallback("approval", timeout=3600)
    answer = yield handle.result()
    b = yield step("b")
    return [a, answer, b]


def _engine(tmp_path, **kw) -> SqliteEngine:
    return SqliteEngine(str(tmp_path / "db.sqlite"), clock=VirtualClock(), **kw)


def _run(engine, workflow, execution_id="ex"):
    engine.start(workflow, None, execution_id=execution_id, target=f"{__name__}:x")
    return engine.resume(workflow, execution_id, wait=False)


# ---------------------------------------------------------------------- redrive


def test_redrive_runs_the_failed_step_again_and_keeps_the_successes_before_it(tmp_path):
    engine = _engine(tmp_path)
    broken.add("b")
    assert _run(engine, sequential).status == "FAILED"
    assert ran == {"a": 1, "b": 1}
    broken.clear()
    rerun = engine.store.redrive("ex", engine.clock.now())
    assert len(rerun) == 1  # b
    assert engine.store.info("ex").status == "RUNNING"
    result = engine.resume(sequential, "ex", wait=False)
    assert result.status == "SUCCEEDED"
    assert result.result == ["a:ok", "b:ok", "c:ok"]
    assert ran == {"a": 1, "b": 2, "c": 1}
    kinds = [e["EventType"] for e in engine.store.history("ex")]
    assert kinds.index("ExecutionFailed") < kinds.index("ExecutionRedriven")
    assert kinds[-1] == "ExecutionSucceeded"


def test_redrive_reopens_a_failed_context_and_keeps_its_successful_steps(tmp_path):
    engine = _engine(tmp_path)
    broken.add("y")
    assert _run(engine, in_context).status == "FAILED"
    broken.clear()
    engine.store.redrive("ex", engine.clock.now())
    result = engine.resume(in_context, "ex", wait=False)
    assert result.result == [["x:ok", "y:ok"], "after:ok"]
    assert ran == {"x": 1, "y": 2, "after": 1}


def test_redrive_of_a_map_runs_only_the_failed_items_again(tmp_path):
    engine = _engine(tmp_path)
    broken.update({"item1", "item3"})
    assert _run(engine, mapped).status == "FAILED"
    assert ran == {"item0": 1, "item1": 1, "item2": 1, "item3": 1}
    broken.clear()
    engine.store.redrive("ex", engine.clock.now())
    result = engine.resume(mapped, "ex", wait=False)
    assert result.status == "SUCCEEDED"
    assert result.result == ["item0:ok", "item1:ok", "item2:ok", "item3:ok"]
    assert ran == {"item0": 1, "item1": 2, "item2": 1, "item3": 2}


def test_redrive_drops_what_followed_a_caught_failure_in_the_same_context(tmp_path):
    # "second" ran after the caught failure of "first": its code was reached only
    # because "first" failed, so it is run again rather than kept
    engine = _engine(tmp_path)
    broken.update({"first", "third"})
    assert _run(engine, caught).status == "FAILED"
    broken.clear()
    engine.store.redrive("ex", engine.clock.now())
    result = engine.resume(caught, "ex", wait=False)
    assert result.result == ["first:ok", "second:ok", "third:ok"]
    assert ran == {"first": 2, "second": 2, "third": 2}


def test_redrive_of_a_stopped_execution(tmp_path):
    engine = _engine(tmp_path)
    assert _run(engine, waits_for_approval).status == "RUNNING"
    engine.store.stop("ex", engine.clock.now())
    engine.store.redrive("ex", engine.clock.now())
    assert engine.store.info("ex").status == "RUNNING"
    cb = next(op for op in engine.store.load("ex").values() if op.name == "approval")
    assert cb.status is OperationStatus.STARTED  # the open callback is kept, still open
    engine.store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload='"yes"')
    result = engine.resume(waits_for_approval, "ex", wait=False)
    assert result.result == ["a:ok", '"yes"', "b:ok"]  # a callback answers raw text
    assert ran == {"a": 1, "b": 1}


@pytest.mark.parametrize("state", ["RUNNING", "SUCCEEDED"])
def test_redrive_refuses_a_running_or_succeeded_execution_and_changes_nothing(tmp_path, state):
    engine = _engine(tmp_path)
    if state == "RUNNING":
        _run(engine, waits_for_approval)
    else:
        _run(engine, sequential)
    before = (engine.store.info("ex"), engine.store.history("ex"), dict(engine.store.load("ex")))
    with pytest.raises(ExecutionConflictError, match="only a FAILED, STOPPED or TIMED_OUT"):
        engine.store.redrive("ex", engine.clock.now())
    after = (engine.store.info("ex"), engine.store.history("ex"), dict(engine.store.load("ex")))
    assert after == before


# ---------------------------------------------------------------------- fork


def test_fork_copies_the_operations_before_the_point_and_runs_the_rest(tmp_path):
    engine = _engine(tmp_path)
    assert _run(engine, sequential).status == "SUCCEEDED"
    point = engine.store.fork("ex", "ex-fork", "b", engine.clock.now(), code_version="v2")
    assert point == next(op.id for op in engine.store.load("ex").values() if op.name == "b")
    info = engine.store.info("ex-fork")
    assert (info.status, info.code_version, info.input) == ("RUNNING", "v2", "null")
    result = engine.resume(sequential, "ex-fork")
    assert result.result == ["a:ok", "b:ok", "c:ok"]
    assert ran == {"a": 1, "b": 2, "c": 2}
    assert engine.store.info("ex").status == "SUCCEEDED"  # the source is untouched


def test_fork_inside_a_context_reopens_it(tmp_path):
    engine = _engine(tmp_path)
    _run(engine, in_context)
    engine.store.fork("ex", "f", "y", engine.clock.now())
    assert engine.resume(in_context, "f").result == [["x:ok", "y:ok"], "after:ok"]
    assert ran == {"x": 1, "y": 2, "after": 2}


def test_fork_of_a_waiting_execution_opens_a_callback_of_its_own(tmp_path):
    engine = _engine(tmp_path)
    _run(engine, waits_for_approval)
    engine.store.fork("ex", "f", "approval", engine.clock.now())
    assert engine.resume(waits_for_approval, "f", wait=False).status == "RUNNING"
    mine = next(op for op in engine.store.load("f").values() if op.name == "approval")
    theirs = next(op for op in engine.store.load("ex").values() if op.name == "approval")
    assert mine.callback_id != theirs.callback_id
    engine.store.complete_callback(mine.callback_id, "succeed", engine.clock.now(), payload='"f"')
    assert engine.resume(waits_for_approval, "f", wait=False).result == ["a:ok", '"f"', "b:ok"]
    assert ran == {"a": 1, "b": 1}
    assert engine.store.info("ex").status == "RUNNING"


def test_fork_refuses_an_unknown_point_an_ambiguous_name_and_a_taken_id(tmp_path):
    engine = _engine(tmp_path)
    _run(engine, mapped)
    now = engine.clock.now()
    with pytest.raises(ValidationError, match="no operation with id or name 'nope'"):
        engine.store.fork("ex", "f", "nope", now)
    engine.start(sequential, None, execution_id="taken", target=f"{__name__}:x")
    with pytest.raises(ExecutionConflictError, match="'taken' exists already"):
        engine.store.fork("ex", "taken", "item1", now)
    assert not engine.store.exists("f")
    assert [i.id for i in engine.store.executions()] == ["taken", "ex"]


def test_fork_and_redrive_on_an_encrypted_store_keep_payloads_readable(tmp_path):
    cipher = PayloadCipher(KeyRing("k1", {"k1": base64.b64decode(KeyRing.generate_key())}))
    store = EncryptedStore(SqliteStore(tmp_path / "enc.db"), cipher)
    engine = SqliteEngine(store=store, clock=VirtualClock())
    # the secret has a "-", which base64 never writes: a ciphertext cannot contain it by
    # chance (a 2-character "s3" did, now and then)
    secret = "top-secret"
    engine.start(sequential, {"secret": secret}, execution_id="ex", target=f"{__name__}:x")
    broken.add("c")
    assert engine.resume(sequential, "ex").status == "FAILED"
    broken.clear()
    store.fork("ex", "f", "c", engine.clock.now())
    raw = SqliteStore(tmp_path / "enc.db")
    assert secret not in raw.info("f").input
    assert "a:ok" not in str(raw.load("f"))
    assert engine.resume(sequential, "f").result == ["a:ok", "b:ok", "c:ok"]
    store.redrive("ex", engine.clock.now())
    assert engine.resume(sequential, "ex").result == ["a:ok", "b:ok", "c:ok"]
    assert ran == {"a": 1, "b": 1, "c": 3}
    raw.close()


# ---------------------------------------------------------------------- version pinning


def test_a_pinned_engine_advances_only_executions_of_its_version(tmp_path):
    db = str(tmp_path / "db.sqlite")
    clock = VirtualClock()
    with SqliteEngine(db, clock=clock, version="v1") as v1:
        v1.start(sequential, None, execution_id="old", target=f"{__name__}:sequential")
    with SqliteEngine(db, clock=clock, version="v2") as v2:
        v2.start(sequential, None, execution_id="new", target=f"{__name__}:sequential")
        assert v2.work(once=True) == 1
        assert v2.store.info("new").status == "SUCCEEDED"
        assert v2.store.info("old").status == "RUNNING"  # left for a v1 worker
        with pytest.raises(VersionMismatchError, match="started on code version 'v1'"):
            v2.resume(sequential, "old")
        assert [i.id for i in v2.store.executions(code_version="v1")] == ["old"]
    with SqliteEngine(db, clock=clock, version="v1") as v1:
        assert v1.work(once=True) == 1
    assert ran == {"a": 2, "b": 2, "c": 2}


def test_an_unpinned_engine_records_a_digest_and_says_when_the_code_changed(tmp_path):
    db = str(tmp_path / "db.sqlite")
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        engine.start(sequential, None, execution_id="ex", target=f"{__name__}:sequential")
        recorded = engine.store.info("ex").code_version
        assert recorded is not None
        assert recorded.startswith("src-")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE executions SET code_version = 'src-000000000000'")
    said: list[str] = []
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        assert engine.work(once=True, log=said.append) == 1
    assert any("started on code version src-000000000000, replaying it on src-" in s for s in said)


def test_a_version_1_database_is_migrated_when_opened(tmp_path):
    db = tmp_path / "old.db"
    SqliteStore(db).close()
    with sqlite3.connect(db) as conn:  # as durable_gen with schema 1 left it
        conn.execute("ALTER TABLE executions DROP COLUMN code_version")
        conn.execute("UPDATE durable_gen_schema SET version = 1")
    with SqliteEngine(str(db), clock=VirtualClock(), version="v9") as engine:
        assert _run(engine, sequential).status == "SUCCEEDED"
        assert engine.store.info("ex").code_version == "v9"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM durable_gen_schema").fetchall() == [
            (_schema.SCHEMA_VERSION,)
        ]
