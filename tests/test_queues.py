"""Queues on the SQLite store (issue 26, item 1): admission by concurrency, per-worker
concurrency, rate limit, priority, dedup id and partition; the ``queue`` commands;
bad input; migration of a version-5 file. The in-process tests take the ``engine``
fixture: tests/postgres/test_queues.py runs them on PostgreSQL with its own. The
concurrency and rate tests use real worker processes; the steps write their own start
and end times."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_gen import Step, Wait
from durable_gen._core.errors import ValidationError
from durable_gen._engine.queues import Queue
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.queues import DuplicateExecutionError, QueueFullError
from durable_gen._stores.sqlite import SCHEMA_VERSION
from tests._procs import cli, run_cli, spawn, stop, wait_until


def _timed(args: dict[str, Any]) -> int:
    start = time.time_ns()
    time.sleep(args.get("sleep", 0.05))
    end = time.time_ns()
    line = f"{args['i']} {start} {end} {os.getpid()}\n"
    fd = os.open(args["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return int(args["i"])


def timed(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """One step that sleeps and appends ``i start_ns end_ns pid`` to ``args['log']``."""
    return (yield Step(_timed, args, name="timed"))


def quick(i: int):  # type: ignore[no-untyped-def]
    return (yield Step(lambda: i, name="quick"))


def sleeper(i: int):  # type: ignore[no-untyped-def]
    yield Wait(seconds=3600)
    return i


def _engine(tmp_path: Path) -> SqliteEngine:
    return SqliteEngine(str(tmp_path / "q.db"))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    """The engine of the in-process tests (tests/postgres/test_queues.py runs them on
    PostgreSQL with its own ``engine``)."""
    with _engine(tmp_path) as e:
        yield e


def _statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM executions GROUP BY status"))


def _admissions(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT first_admitted_at FROM executions WHERE first_admitted_at IS NOT NULL "
            "ORDER BY first_admitted_at"
        )
        return [r[0] for r in rows]


def _workers(db: Path, logs: Path, n: int, concurrency: int) -> list[Any]:
    return [
        spawn(
            cli("worker", "--db", str(db), "--concurrency", str(concurrency), "--poll", "0.1"),
            logs,
            f"worker{k}",
        )
        for k in range(n)
    ]


def _wait_all_ended(db: Path, count: int, timeout: float) -> None:
    wait_until(
        lambda: _statuses(db).get("SUCCEEDED", 0) + _statuses(db).get("FAILED", 0) == count,
        timeout,
        f"{count} executions to end",
        interval=0.1,
    )


# ---------------------------------------------------------------- real processes


def test_concurrency_holds_across_worker_processes(tmp_path):
    """60 executions, concurrency=3 (2 per worker process), 3 worker processes of 4
    threads each: never more than 3 steps overlap (by the steps' own times), nor more
    than 2 of one process; each runs once, all succeed."""
    db, log = tmp_path / "q.db", tmp_path / "steps.log"
    with _engine(tmp_path) as engine:
        engine.add_queue(Queue("three", concurrency=3, worker_concurrency=2))
        for i in range(60):
            engine.start(timed, {"i": i, "log": str(log)}, queue="three")
    procs = _workers(db, tmp_path / "logs", 3, 4)
    try:
        _wait_all_ended(db, 60, 50)
    finally:
        for p in procs:
            stop(p)
    assert _statuses(db) == {"SUCCEEDED": 60}
    rows = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(r[0]) for r in rows) == list(range(60))  # each step ran once
    assert _peak(rows) <= 3
    assert _peak(rows) >= 2  # the workers did run the queue's slots side by side
    pids = {r[3] for r in rows}
    assert len(pids) >= 2  # 2 per process: another process had to take a slot
    assert all(_peak([r for r in rows if r[3] == pid]) <= 2 for pid in pids)


def _peak(rows: list[list[str]]) -> int:
    """The most steps running at one instant, from their start and end times."""
    events = sorted(
        [(int(r[1]), 1) for r in rows] + [(int(r[2]), -1) for r in rows]
    )  # an end sorts before a start at the same instant
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_a_rate_limit_spaces_first_starts(tmp_path):
    """10 starts per second, 30 executions, 2 worker processes: first admissions are
    100 ms apart at least, so no window of one second holds more than 10 and the 30
    span 2.9 s at least (tests/test_queue_processes.py: 100 at 20 per second)."""
    db, log = tmp_path / "q.db", tmp_path / "steps.log"
    with _engine(tmp_path) as engine:
        engine.add_queue(Queue("ten", rate_limit=(10, 1.0)))
        for i in range(30):
            engine.start(timed, {"i": i, "log": str(log), "sleep": 0}, queue="ten")
    began = time.monotonic()
    procs = _workers(db, tmp_path / "logs", 2, 4)
    try:
        _wait_all_ended(db, 30, 40)
        took = time.monotonic() - began
    finally:
        for p in procs:
            stop(p)
    assert _statuses(db) == {"SUCCEEDED": 30}
    times = _admissions(db)
    assert len(times) == 30
    assert all(later - earlier >= 100 for earlier, later in itertools.pairwise(times))
    assert all(times[k + 10] - times[k] >= 1000 for k in range(20))
    assert times[-1] - times[0] >= 2900
    assert took >= 2.9


def test_the_cli_starts_onto_a_queue_and_lists_it(tmp_path):
    db = tmp_path / "q.db"
    added = run_cli(
        "queue",
        "add",
        "mail",
        "--db",
        str(db),
        "--concurrency",
        "2",
        "--rate-limit",
        "50",
        "--per",
        "60",
    )
    assert added.returncode == 0, added.stderr
    assert added.stderr == "added queue mail: concurrency 2, 50 per 60 s\n"
    target = "tests/test_queues.py:quick"
    first = run_cli(
        "start",
        target,
        "--db",
        str(db),
        "--input",
        "1",
        "--queue",
        "mail",
        "--priority",
        "5",
        "--dedup-id",
        "d1",
    )
    assert first.returncode == 0, first.stderr
    eid = first.stdout.strip()
    again = run_cli(
        "start", target, "--db", str(db), "--input", "2", "--queue", "mail", "--dedup-id", "d1"
    )
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1
    assert f"held by execution {eid!r}" in again.stderr
    same = run_cli(
        "start",
        target,
        "--db",
        str(db),
        "--input",
        "2",
        "--queue",
        "mail",
        "--dedup-id",
        "d1",
        "--on-duplicate",
        "existing",
    )
    assert (same.returncode, same.stdout.strip()) == (0, eid)
    listed = run_cli("queue", "list", "--db", str(db), "--json")
    record = json.loads(listed.stdout)
    assert record == {
        "name": "mail",
        "concurrency": 2,
        "worker_concurrency": None,
        "rate_limit": [50, 60.0],
        "partitioned": False,
        "depth": 1,
        "running": 0,
        "sleeping": 0,
        "started": 0,
    }
    worker = run_cli("worker", "--db", str(db), "--once")
    assert worker.returncode == 0, worker.stderr
    table = run_cli("queue", "list", "--db", str(db)).stdout.splitlines()
    assert table[0].split() == ["QUEUE", "DEPTH", "RUNNING", "SLEEPING", "RATE", "LIMITS"]
    assert table[1].split()[:5] == ["mail", "0", "0", "0", "1/50"]
    deleted = run_cli("queue", "delete", "mail", "--db", str(db))
    assert deleted.returncode == 0, deleted.stderr
    assert run_cli("queue", "list", "--db", str(db), "--json").stdout == ""


# ---------------------------------------------------------------- in process


def test_priorities_order_starts(engine, tmp_path):
    """One worker, concurrency 1: higher priority first, equal priorities oldest first."""
    log = tmp_path / "steps.log"
    engine.add_queue(Queue("p", concurrency=1))
    priorities = [0, 5, -2, 5, 9, 1, 0, 3]
    for i, p in enumerate(priorities):
        engine.start(timed, {"i": i, "log": str(log), "sleep": 0}, queue="p", priority=p)
    assert engine.work(once=True) == len(priorities)
    order = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert order == sorted(range(len(priorities)), key=lambda i: (-priorities[i], i))


def test_a_dedup_id_refuses_the_duplicate_while_the_first_lives(engine, tmp_path):
    engine.add_queue(Queue("d"))
    first = engine.start(quick, 1, queue="d", dedup_id="order-7")
    with pytest.raises(
        DuplicateExecutionError, match=rf"^dedup id 'order-7' is held by execution '{first}'"
    ):
        engine.start(quick, 2, queue="d", dedup_id="order-7")
    assert engine.start(quick, 3, queue="d", dedup_id="order-7", on_duplicate="existing") == first
    assert len(engine.store.executions()) == 1
    other = engine.start(quick, 4, queue="d", dedup_id="order-8")  # another id: started
    assert engine.work(once=True) == 2
    again = engine.start(quick, 5, queue="d", dedup_id="order-7")  # the first ended
    assert again not in (first, other)


def test_partitions_have_their_own_limits(engine, tmp_path):
    engine.add_queue(Queue("per-user", concurrency=1, partitioned=True))
    a1 = engine.start(sleeper, 1, queue="per-user", partition="alice")
    a2 = engine.start(sleeper, 2, queue="per-user", partition="alice")
    b1 = engine.start(sleeper, 3, queue="per-user", partition="bob")
    store = engine.store
    assert sorted(store.due(engine.clock.now())) == sorted([a1, b1])  # one per partition
    other = store.clone()
    try:
        store.acquire(a1, engine.clock.now())
        with pytest.raises(QueueFullError, match=r"1 of its 1 slots \(partition 'alice'\)"):
            other.acquire(a2, engine.clock.now())
        other.acquire(b1, engine.clock.now())  # bob's partition has its own slot
        assert store.due(engine.clock.now()) == []
        store.release(a1, None)  # a1 stops advancing: a2 may start
        assert store.due(engine.clock.now()) == [a2]
    finally:
        other.close()


def test_a_rate_limit_admits_one_start_per_spacing(engine, tmp_path):
    """2 starts per 10 s: one start at a time is proposed, and a second start within
    5 s of the first is refused; an execution already admitted is not held back."""
    engine.add_queue(Queue("slow", rate_limit=(2, 10.0)))
    x = engine.start(sleeper, 1, queue="slow")
    y = engine.start(sleeper, 2, queue="slow")
    store, now = engine.store, engine.clock.now()
    assert store.due(now) == [x]
    store.acquire(x, now)
    store.release(x, now)  # due again at once: it was admitted, no start to space
    assert store.due(now) == [x]
    with pytest.raises(
        QueueFullError,
        match=r"^execution '.+' waits for room on queue 'slow': its last start was \d+ ms "
        r"ago; its rate limit of 2 per 10 s spaces starts 5000 ms apart$",
    ):
        store.acquire(y, now)
    assert store.next_wake() is not None


def test_worker_concurrency_counts_one_process(engine, tmp_path):
    engine.add_queue(Queue("w", worker_concurrency=1))
    x = engine.start(sleeper, 1, queue="w")
    y = engine.start(sleeper, 2, queue="w")
    other = engine.store.clone()  # same process, another lease owner
    try:
        engine.store.acquire(x, engine.clock.now())
        with pytest.raises(QueueFullError, match="this worker process advances 1 of its 1"):
            other.acquire(y, engine.clock.now())
    finally:
        other.close()


def test_a_sleeping_execution_does_not_hold_its_slot(engine, tmp_path):
    """Limits count executions while they advance: one asleep in a Wait frees its slot."""
    engine.add_queue(Queue("one", concurrency=1))
    asleep = engine.start(sleeper, 1, queue="one")
    done = engine.start(quick, 2, queue="one")
    assert engine.work(once=True) == 1
    assert engine.store.info(asleep).status == "RUNNING"
    assert engine.store.info(done).status == "SUCCEEDED"
    ((_, stats),) = engine.queues()
    assert (stats.depth, stats.running, stats.sleeping, stats.started) == (0, 0, 1, 2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Queue("q", rate_limit=(0, 1.0)),
            r"^rate_limit must be \(starts, seconds\): an integer of 1 or more and a period of "
            r"at least 0.001 s, got \(0, 1.0\)$",
        ),
        (
            lambda: Queue("q", concurrency=-1),
            r"^concurrency must be an integer of 1 or more \(or None\), got -1$",
        ),
        (
            lambda: Queue("", concurrency=1),
            r"^a queue name must be a non-empty string of at most 200 characters, got ''$",
        ),
    ],
)
def test_bad_queues_are_refused(make, message):
    with pytest.raises(ValidationError, match=message):
        make()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"queue": "nope"}, r"^no queue named 'nope' \(queues: 'q'\); declare it first"),
        ({"dedup_id": "x"}, r"^dedup_id 'x' needs a queue: start it with queue=NAME"),
        ({"partition": "k"}, r"^partition 'k' needs a queue"),
        ({"priority": 3}, r"^priority 3 needs a queue"),
        ({"queue": "q", "partition": "k"}, r"^queue 'q' is not partitioned, got partition 'k'"),
        (
            {"queue": "q", "on_duplicate": "skip"},
            r"^on_duplicate must be 'error' or 'existing', got 'skip'$",
        ),
    ],
)
def test_bad_starts_record_nothing(engine, tmp_path, kw, message):
    engine.add_queue(Queue("q"))
    with pytest.raises(ValidationError, match=message) as info:
        engine.start(quick, 1, execution_id="x", **kw)
    assert "\n" not in str(info.value)
    assert engine.store.executions() == []


def test_bad_cli_input_is_one_line_and_records_nothing(tmp_path):
    db = tmp_path / "q.db"
    assert run_cli("queue", "add", "q", "--db", str(db)).returncode == 0
    for args in (
        ("queue", "add", "r", "--rate-limit", "0"),
        ("queue", "add", "r", "--concurrency", "-2"),
        ("start", "tests/test_queues.py:quick", "--queue", "nope"),
        ("start", "tests/test_queues.py:quick", "--dedup-id", "d"),
    ):
        done = run_cli(*args, "--db", str(db))
        assert done.returncode == 2, (args, done.stderr)
        last = done.stderr.splitlines()[-1]
        assert last.startswith(("durable-gen: ", "durable-gen queue add: error: ")), last
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone() == (0,)
        assert conn.execute("SELECT name FROM queues").fetchall() == [("q",)]


def test_a_version_5_database_is_migrated(tmp_path):
    db = tmp_path / "v5.db"
    with SqliteEngine(str(db)) as engine:
        old = engine.run(quick, 1, execution_id="old")
    indexes = (
        "executions_due_unqueued",
        "executions_queued",
        "executions_queue_leases",
        "executions_queue_starts",
        "executions_dedup",
    )
    with sqlite3.connect(db) as conn:
        for index in indexes:
            conn.execute(f"DROP INDEX {index}")
        for column in ("queue", "partition_key", "priority", "dedup_id", "first_admitted_at"):
            conn.execute(f"ALTER TABLE executions DROP COLUMN {column}")
        conn.execute("DROP TABLE queues")
        conn.execute("UPDATE durable_gen_schema SET version = 5")
    with SqliteEngine(str(db)) as engine:
        assert engine.store.info("old").result == old.result_payload
        engine.add_queue(Queue("q", concurrency=1))
        eid = engine.start(quick, 2, queue="q")
        assert engine.work(once=True) == 1
        assert engine.store.info(eid).status == "SUCCEEDED"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM durable_gen_schema").fetchone() == (
            SCHEMA_VERSION,
        )
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert set(indexes) <= names
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_version_6_database_gains_trace_context_and_schedules(tmp_path):
    db = tmp_path / "v6.db"
    with SqliteEngine(str(db)) as engine:
        old = engine.run(quick, 1, execution_id="old")
    with sqlite3.connect(db) as conn:  # what version 6 was
        for index in ("schedules_due", "executions_schedule"):
            conn.execute(f"DROP INDEX {index}")
        conn.execute("DROP TABLE schedules")
        for column in ("trace_context", "schedule"):
            conn.execute(f"ALTER TABLE executions DROP COLUMN {column}")
        conn.execute("UPDATE durable_gen_schema SET version = 6")
    with SqliteEngine(str(db)) as engine:
        assert engine.store.info("old").result == old.result_payload
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM durable_gen_schema").fetchone() == (
            SCHEMA_VERSION,
        )
        assert conn.execute("SELECT trace_context, schedule FROM executions").fetchall() == [
            (None, None)
        ]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"schedules", "schedules_due", "executions_schedule"} <= names
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
