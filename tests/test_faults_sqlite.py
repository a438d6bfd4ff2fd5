"""Faults injected into the SQLite store: each ends in a retry or a clear error, and
the stored log afterwards holds every recorded operation exactly once.

- another process holding a write transaction (a real ``sqlite3`` connection in a
  subprocess) while a step's result is committed;
- a full disk / an I/O error on commit (a connection wrapper raising what SQLite
  raises), once (transient) and until the space is freed;
- a truncated or corrupted database file (refused, left byte for byte as it was);
- a process killed (SIGKILL) between a step's side effect and its checkpoint, for
  at-least-once and at-most-once steps (on PostgreSQL too).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from durable_gen import CorruptLogError, CreateCallback, Step, StoreError, Wait
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.durable import DurableEngine
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.factory import open_store
from durable_gen._stores.sqlite import SqliteStore

LEDGER: list[str] = []  # side effects of the steps below, in order


def effect(name: str) -> str:
    LEDGER.append(name)
    return f"done-{name}"


def three_steps(event):
    a = yield Step(effect, "a", name="a")
    b = yield Step(effect, "b", name="b")
    yield Wait(seconds=5, name="pause")
    c = yield Step(effect, "c", name="c")
    return [a, b, c]


@pytest.fixture(autouse=True)
def _fresh_ledger():
    LEDGER.clear()


def _log(db: Path | str, execution_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored operations (by name) and history, read by a fresh store (a SQLite
    path, or a PostgreSQL URL)."""
    with open_store(db) as store:
        ops = {op.name: op for op in store.load(execution_id).values() if op.name}
        return ops, store.history(execution_id)


def _assert_each_step_once(db: Path, execution_id: str, names: list[str]) -> None:
    ops, history = _log(db, execution_id)
    for name in names:
        assert ops[name].status.value == "SUCCEEDED", name
        assert ops[name].result == json.dumps(f"done-{name}")
    succeeded = collections.Counter(e["Name"] for e in history if e["EventType"] == "StepSucceeded")
    assert succeeded == dict.fromkeys(names, 1)  # nothing lost, nothing recorded twice
    assert [e["EventId"] for e in history] == list(range(1, len(history) + 1))
    ends = [e for e in history if e["EventType"].startswith("Execution")]
    assert [e["EventType"] for e in ends] == ["ExecutionStarted", "ExecutionSucceeded"]


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


# ---------------------------------------------------------------- failing connection


class _FailingConnection:
    """A sqlite3 connection whose writes fail with ``error`` while ``armed``.

    A failing COMMIT (or autocommit INSERT) raises before SQLite runs it, as a
    commit that hit a full disk does: the store then rolls the transaction back.
    """

    def __init__(self, real: sqlite3.Connection, error: str, shots: int | None) -> None:
        self._real = real
        self.error = error
        self.shots = shots  # None: fail until disarmed
        self.armed = False
        self.failures = 0

    def execute(self, sql: str, *args: Any) -> Any:
        write = sql == "COMMIT" or sql.startswith("INSERT INTO journal")
        if self.armed and write and (self.shots is None or self.shots > 0):
            if self.shots is not None:
                self.shots -= 1
            self.failures += 1
            raise sqlite3.OperationalError(self.error)
        return self._real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _engine_with_faults(db: Path, error: str, shots: int | None):
    engine = SqliteEngine(db, clock=VirtualClock())
    conn = _FailingConnection(engine.store._conn, error, shots)
    engine.store._conn = conn  # type: ignore[assignment]
    return engine, conn


def _arm_at_step(conn: _FailingConnection, name: str):
    """A step function that arms the fault while it runs (its own result then fails)."""

    def step(n: str) -> str:
        if n == name:
            conn.armed = True
        return effect(n)

    return step


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("database or disk is full", "the disk is full"),
        ("disk I/O error", "the disk failed to write"),
    ],
)
def test_a_commit_failing_once_is_a_clear_retryable_error_and_resume_completes(
    tmp_path, error, cause
):
    db = tmp_path / "x.db"
    engine, conn = _engine_with_faults(db, error, shots=1)
    step = _arm_at_step(conn, "b")

    def flow(event):
        a = yield Step(step, "a", name="a")
        b = yield Step(step, "b", name="b")
        yield Wait(seconds=5, name="pause")
        c = yield Step(step, "c", name="c")
        return [a, b, c]

    execution_id = engine.start(flow, None)
    with pytest.raises(StoreError) as ei:
        engine.resume(flow, execution_id)
    message = str(ei.value)
    assert message.startswith(f"cannot write to database {db}: {cause} ({error})")
    assert "nothing was recorded by this call" in message
    assert "then resume the execution" in message
    assert ei.value.retryable
    assert conn.failures == 1

    ops, _ = _log(db, execution_id)
    assert ops["a"].status.value == "SUCCEEDED"
    assert "b" not in ops  # the lost commit left no trace, not even half of one

    result = engine.resume(flow, execution_id)
    engine.close()
    assert result.status == "SUCCEEDED"
    assert result.result == ["done-a", "done-b", "done-c"]
    assert LEDGER == ["a", "b", "b", "c"]  # at-least-once: b's unrecorded attempt re-ran
    _assert_each_step_once(db, execution_id, ["a", "b", "c"])


def test_a_full_disk_until_space_is_freed_changes_nothing_then_another_process_resumes(
    tmp_path,
):
    db = tmp_path / "x.db"
    engine, conn = _engine_with_faults(db, "database or disk is full", shots=None)
    step = _arm_at_step(conn, "b")

    def flow(event):
        a = yield Step(step, "a", name="a")
        b = yield Step(step, "b", name="b")
        c = yield Step(step, "c", name="c")
        return [a, b, c]

    execution_id = engine.start(flow, None)
    with pytest.raises(StoreError, match=r"the disk is full"):
        engine.resume(flow, execution_id)
    before = _dump(db)
    with pytest.raises(StoreError, match=r"the disk is full"):
        engine.resume(flow, execution_id)  # still full: refused again, nothing written
    assert _dump(db) == before
    engine.close()  # its lease cannot even be released: it dies with the process

    # space freed; a new engine (as a restarted process) takes over the dead lease
    with SqliteEngine(db, clock=VirtualClock()) as again:
        result = again.resume(flow, execution_id)
    assert result.status == "SUCCEEDED"
    assert LEDGER.count("a") == 1
    _assert_each_step_once(db, execution_id, ["a", "b", "c"])


def test_a_failed_commit_is_not_kept_in_the_store_cache(tmp_path):
    """After a failed write the store must not believe it recorded what it did not."""
    db = tmp_path / "x.db"
    engine, conn = _engine_with_faults(db, "database or disk is full", shots=1)
    execution_id = engine.start(three_steps, None)
    conn.armed = True
    with pytest.raises(StoreError):
        engine.resume(three_steps, execution_id)
    on_disk = {op.id for op in SqliteStore(db).load(execution_id).values()}
    assert set(engine.store.load(execution_id)) == on_disk
    assert engine.resume(three_steps, execution_id).status == "SUCCEEDED"
    engine.close()
    _assert_each_step_once(db, execution_id, ["a", "b", "c"])


# ---------------------------------------------------------------- locked by another process

_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE durable_gen_schema SET version = version")
print("locked", flush=True)
sys.stdin.read()  # hold the write transaction until the test closes stdin
conn.execute("ROLLBACK")
"""


def test_a_write_lock_held_by_another_process_is_a_clear_retryable_error(tmp_path):
    db = tmp_path / "x.db"
    lockers: list[subprocess.Popen[str]] = []

    def step(n: str) -> str:
        if n == "b" and not lockers:  # b's side effect happens, then its commit finds a lock
            p = subprocess.Popen(
                [sys.executable, "-c", _LOCKER, str(db)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            lockers.append(p)
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "locked"
        return effect(n)

    def flow(event):
        a = yield Step(step, "a", name="a")
        b = yield Step(step, "b", name="b")
        c = yield Step(step, "c", name="c")
        return [a, b, c]

    store = SqliteStore(db, busy_timeout=0.2)
    engine = SqliteEngine(store=store, clock=VirtualClock())
    execution_id = engine.start(flow, None)
    try:
        with pytest.raises(StoreError) as ei:
            engine.resume(flow, execution_id)
        message = str(ei.value)
        assert message.startswith(f"database {db} is locked: another process holds a write")
        assert "nothing was recorded by this call" in message
        assert ei.value.retryable
        with SqliteStore(db) as reader:  # readers are not blocked (WAL)
            assert reader.info(execution_id).status == "RUNNING"
    finally:
        for p in lockers:
            p.communicate("", timeout=10)  # the other process lets go
    result = engine.resume(flow, execution_id)
    engine.close()
    assert result.status == "SUCCEEDED"
    assert LEDGER == ["a", "b", "b", "c"]
    _assert_each_step_once(db, execution_id, ["a", "b", "c"])


_TO_ARM: list[_FailingConnection] = []


def arming_effect(name: str) -> str:
    if name == "b" and _TO_ARM:
        _TO_ARM.pop().armed = True
    return effect(name)


def arming_flow(event):
    a = yield Step(arming_effect, "a", name="a")
    b = yield Step(arming_effect, "b", name="b")
    yield Wait(seconds=5, name="pause")
    c = yield Step(arming_effect, "c", name="c")
    return [a, b, c]


def test_a_worker_retries_a_transiently_failing_execution_soon(tmp_path):
    """work() logs the failure and leaves the execution due in a second, not a minute."""
    db = tmp_path / "x.db"
    engine, conn = _engine_with_faults(db, "database or disk is full", shots=1)
    engine.clock = clock = VirtualClock()
    execution_id = engine.start(arming_flow, None, target=f"{__name__}:arming_flow")
    _TO_ARM[:] = [conn]
    lines: list[str] = []
    engine.work(once=True, log=lines.append)
    assert any("the disk is full" in line for line in lines)
    wake = engine.store.info(execution_id).wake_at
    assert wake is not None
    assert wake - clock.now() == 1_000
    clock.advance(1)
    engine.work(once=True, log=lines.append)  # the first pass sleeps through the wait
    clock.advance(10)
    engine.work(once=True, log=lines.append)
    engine.close()
    assert lines[-1] == f"execution {execution_id} SUCCEEDED"
    _assert_each_step_once(db, execution_id, ["a", "b", "c"])


# ---------------------------------------------------------------- damaged files


def _populated(tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "good.db"
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        ids = [engine.run(three_steps, i).execution_id for i in range(120)]
    return db, ids


@pytest.mark.parametrize(
    "damage",
    ["truncated-to-half", "truncated-to-header", "garbage-pages", "zeroed-tail-of-page-1"],
)
def test_a_damaged_database_is_refused_clearly_and_left_untouched(tmp_path, damage):
    db, ids = _populated(tmp_path)
    data = db.read_bytes()
    page = 4096
    damaged = {
        "truncated-to-half": data[: len(data) // 2],
        "truncated-to-header": data[:100],
        "garbage-pages": data[: 3 * page] + bytes(range(256)) * 80 + data[3 * page + 20480 :],
        "zeroed-tail-of-page-1": data[:100] + b"\0" * (page - 100) + data[page:],
    }[damage]
    bad = tmp_path / "bad.db"
    bad.write_bytes(damaged)

    def use() -> None:
        with SqliteStore(bad) as store:
            for execution_id in ids:
                store.load(execution_id)
                store.history(execution_id)
            with SqliteEngine(store=store) as engine:
                engine.work(once=True)

    with pytest.raises(CorruptLogError) as ei:
        use()
    message = str(ei.value)
    assert str(bad) in message
    assert "malformed" in message
    assert "untouched" in message
    assert bad.read_bytes() == damaged  # never "repaired"
    assert not Path(f"{bad}-wal").exists() or Path(f"{bad}-wal").stat().st_size == 0


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\xff\xfe not sqlite at all " * 100)
    before = bad.read_bytes()
    with pytest.raises(CorruptLogError, match=r"is not a SQLite database"):
        SqliteStore(bad)
    assert bad.read_bytes() == before


# ---------------------------------------------------------------- SIGKILL after a side effect

_CRASH_WORKFLOW = """
import os, time
from durable_gen import AT_MOST_ONCE_PER_RETRY, Jitter, RetryPolicy, Step, current_attempt

LEDGER = os.environ["LEDGER"]
RETRY = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)


def effect(name):
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{name} {current_attempt()}\\n".encode())
    os.close(fd)
    marker = LEDGER + "." + name
    if not os.path.exists(marker):  # the first time: stop here until killed
        open(marker, "w").close()
        time.sleep(60)
    return f"done-{name}"


def first(name):
    return effect(name) if name != "a" else "done-a"


def at_least_once(event):
    a = yield Step(first, "a", name="a")
    b = yield Step(effect, "b", name="b")
    return [a, b]


def at_most_once(event):
    a = yield Step(first, "a", name="a")
    b = yield Step(effect, "b", name="b", semantics=AT_MOST_ONCE_PER_RETRY, retry=RETRY)
    return [a, b]
"""


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("workflow", "attempts"),
    [("at_least_once", ["b 1", "b 1"]), ("at_most_once", ["b 1", "b 2"])],
)
def test_sigkill_between_a_side_effect_and_its_checkpoint(
    request, tmp_path, workflow, attempts, store
):
    """On a SQLite file and on PostgreSQL (a fresh database on the tests' server)."""
    wf = tmp_path / "crashy.py"
    wf.write_text(_CRASH_WORKFLOW)
    db = request.getfixturevalue("pg_url") if store == "postgres" else str(tmp_path / "x.db")
    ledger = tmp_path / "ledger"
    env = dict(os.environ, LEDGER=str(ledger))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable_gen", "run", f"{wf}:{workflow}", "--db", db],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not Path(f"{ledger}.b").exists():
        assert proc.poll() is None, "the run ended before the step ran"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # b's effect happened; its result was never recorded
    proc.wait(timeout=10)

    with open_store(db) as store:
        [info] = store.executions()
        ops = {op.name: op for op in store.load(info.id).values() if op.name}
    assert ops["a"].status.value == "SUCCEEDED"
    if workflow == "at_most_once":
        assert ops["b"].status.value == "STARTED"  # START was durable before the effect
    else:
        assert "b" not in ops  # START rides with the result, which never came

    os.environ["LEDGER"] = str(ledger)
    try:
        clock = VirtualClock(start=time.time_ns() // 1_000_000)
        with DurableEngine(open_store(db), clock=clock) as engine:
            result = engine.resume(engine.workflow_for(engine.store.info(info.id)), info.id)
    finally:
        del os.environ["LEDGER"]
    assert result.status == "SUCCEEDED"
    assert result.result == ["done-a", "done-b"]
    assert ledger.read_text().split("\n")[:-1] == attempts
    ops, history = _log(db, info.id)
    assert ops["b"].attempt == int(attempts[-1][-1])
    succeeded = collections.Counter(e["Name"] for e in history if e["EventType"] == "StepSucceeded")
    assert succeeded == {"a": 1, "b": 1}  # nothing recorded twice
    interrupted = [
        e["InvocationCompletedDetails"]["Error"]["Payload"]
        for e in history
        if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]
    ]
    assert [p["ErrorType"] for p in interrupted] == ["Runtime.ExitError"]
    assert re.fullmatch(
        r"the worker running this invocation \(pid \d+ on .+\) stopped before it ended",
        interrupted[0]["ErrorMessage"],
    )
    if workflow == "at_most_once":
        failed = [e for e in history if e["EventType"] == "StepFailed"]
        assert [e["Name"] for e in failed] == ["b"]  # the interrupted attempt, handed to retry


# ---------------------------------------------------------------- races with the outside world


def waits_for_approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(effect, "notify", name="notify")
    answer = yield handle.result()
    return answer


@pytest.mark.parametrize("timeout_pending", [True, False])
def test_a_callback_completed_while_the_worker_lets_go_is_not_lost(tmp_path, timeout_pending):
    """The soak found it: release() overwrote the wake-up the completion had set."""
    db = tmp_path / "x.db"
    engine = SqliteEngine(db, clock=VirtualClock())
    execution_id = engine.start(waits_for_approval, None, target=f"{__name__}:waits_for_approval")
    real_next_timer = engine.store.next_timer

    def next_timer_then_complete(eid: str) -> int | None:
        wake = real_next_timer(eid)  # computed before the callback completes ...
        with SqliteStore(db) as outside:  # ... which happens before the lease is released
            [(callback_id,)] = outside._query("SELECT callback_id FROM callbacks")
            outside.complete_callback(
                callback_id, "succeed", engine.clock.now(), payload='"yes"', execution_id=eid
            )
        engine.store.next_timer = real_next_timer  # type: ignore[method-assign]
        return wake if timeout_pending else None

    engine.store.next_timer = next_timer_then_complete  # type: ignore[method-assign]
    assert engine.resume(waits_for_approval, execution_id, wait=False).status == "RUNNING"
    info = engine.store.info(execution_id)
    assert info.wake_at is not None
    assert info.wake_at <= engine.clock.now()  # due now, not at the callback's timeout
    engine.work(once=True)
    engine.close()
    with SqliteStore(db) as store:
        assert store.info(execution_id).status == "SUCCEEDED"
