"""Queues on the PostgreSQL store (issues 26 and 27): the in-process rules of
tests/test_queues.py on a real server (imported below; they take this module's
``engine``), admission racing between stores as workers on several machines would
(the partition's advisory lock), dedup ids started at once, the ``queue`` commands
and a schedule onto a queue through ``--db postgresql://...``, and real ``durable-gen
worker`` processes holding a queue's concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from durable_gen import DurableEngine, ExecutionConflictError, Schedule, ValidationError
from durable_gen._engine.queues import Queue
from durable_gen._stores.postgres import PostgresStore
from durable_gen._stores.queues import DuplicateExecutionError, QueueFullError
from tests._procs import cli, run_cli, spawn, stop, wait_until
from tests.store_contract.test_engine_store import T0
from tests.test_queue_processes import peak
from tests.test_queues import (  # the shared rules, on this module's ``engine``
    quick,
    sleeper,
    test_a_dedup_id_refuses_the_duplicate_while_the_first_lives,
    test_a_rate_limit_admits_one_start_per_spacing,
    test_a_sleeping_execution_does_not_hold_its_slot,
    test_bad_starts_record_nothing,
    test_partitions_have_their_own_limits,
    test_priorities_order_starts,
    test_worker_concurrency_counts_one_process,
    timed,
)

__all__ = [
    "test_a_dedup_id_refuses_the_duplicate_while_the_first_lives",
    "test_a_rate_limit_admits_one_start_per_spacing",
    "test_a_sleeping_execution_does_not_hold_its_slot",
    "test_bad_starts_record_nothing",
    "test_partitions_have_their_own_limits",
    "test_priorities_order_starts",
    "test_worker_concurrency_counts_one_process",
]


@pytest.fixture
def engine(pg_url: str) -> Iterator[DurableEngine]:
    with DurableEngine(PostgresStore(pg_url)) as e:
        yield e


def _statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT status, COUNT(*) FROM durable_gen.executions GROUP BY status"
        ).fetchall()
    return {s: int(n) for s, n in rows}


def _race(stores: list[PostgresStore], ids: list[str]) -> list[str]:
    """Each store takes the lease of its execution at the same moment; the ids taken."""
    barrier = threading.Barrier(len(stores))
    taken: list[str] = []
    errors: list[BaseException] = []

    def take(store: PostgresStore, execution_id: str) -> None:
        barrier.wait()
        try:
            store.acquire(execution_id, T0)
            taken.append(execution_id)
        except QueueFullError:
            pass
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=take, args=pair) for pair in zip(stores, ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return taken


def test_stores_taking_leases_at_once_never_pass_the_limit(pg_url):
    """8 stores (8 lease owners: workers on 8 machines) each take the lease of its
    own execution at the same moment, 15 rounds, on a queue of concurrency 2: exactly
    2 are admitted each round (READ COMMITTED counting alone would let more in)."""
    stores = [PostgresStore(pg_url) for _ in range(8)]
    try:
        first = stores[0]
        first.put_queue(Queue("two", concurrency=2).to_row())
        ids = [f"e{k}" for k in range(8)]
        for execution_id in ids:
            assert first.create(execution_id, "null", T0, queue="two")
        for _ in range(15):
            taken = _race(stores, ids)
            assert len(taken) == 2, taken
            ((_, running),) = [(s.queue.name, s.running) for s in first.queue_stats()]
            assert running == 2
            for execution_id in taken:
                stores[ids.index(execution_id)].release(execution_id, T0)
    finally:
        for s in stores:
            s.close()


def test_three_engines_at_once_never_pass_the_limit(pg_url, tmp_path):
    """30 executions on a queue of concurrency 3, advanced by 3 engines (3 stores)
    of 4 threads each in this process: never more than 3 steps overlap, by the
    steps' own clocks; each ran once."""
    log = tmp_path / "steps.log"
    engines = [DurableEngine(PostgresStore(pg_url)) for _ in range(3)]
    try:
        engines[0].add_queue(Queue("three", concurrency=3))
        for i in range(30):
            engines[0].start(timed, {"i": i, "log": str(log), "sleep": 0.02}, queue="three")
        done = threading.Event()
        threads = [
            threading.Thread(
                target=e.work, kwargs={"stop": done, "poll_seconds": 0.05, "concurrency": 4}
            )
            for e in engines
        ]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: _statuses(pg_url) == {"SUCCEEDED": 30}, 60, "30 to succeed")
        finally:
            done.set()
            for t in threads:
                t.join()
    finally:
        for e in engines:
            e.close()
    rows = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(r[0]) for r in rows) == list(range(30))
    assert 2 <= peak([(int(r[0]), int(r[1]), int(r[2]), r[3]) for r in rows]) <= 3


def test_one_dedup_id_started_at_once_starts_one(pg_url):
    """6 stores start executions with one dedup id at the same moment: one starts,
    the others are refused naming it (the (queue, dedup id) advisory lock)."""
    stores = [PostgresStore(pg_url) for _ in range(6)]
    try:
        stores[0].put_queue(Queue("d").to_row())
        barrier = threading.Barrier(len(stores))
        started: list[str] = []
        refused: list[str] = []

        def start(k: int) -> None:
            barrier.wait()
            try:
                stores[k].create(f"x{k}", "null", T0, queue="d", dedup_id="order-7")
                started.append(f"x{k}")
            except DuplicateExecutionError as e:
                refused.append(e.existing_id)

        threads = [threading.Thread(target=start, args=(k,)) for k in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(started) == 1
        assert refused == started * 5
    finally:
        for s in stores:
            s.close()


def test_declaring_listing_and_deleting(engine):
    assert engine.add_queue(Queue("q", concurrency=2, rate_limit=(5, 60.0))) is True
    assert engine.add_queue(Queue("q", concurrency=3)) is False  # new limits
    x = engine.start(sleeper, 1, queue="q")
    engine.start(quick, 2, queue="q", priority=4)
    ((queue, stats),) = engine.queues()
    assert queue == Queue("q", concurrency=3)
    assert (stats.depth, stats.running, stats.sleeping, stats.started) == (2, 0, 0, 0)
    with pytest.raises(ExecutionConflictError, match="cannot become partitioned"):
        engine.add_queue(Queue("q", partitioned=True))
    with pytest.raises(
        ExecutionConflictError,
        match=r"^queue 'q' has 2 queued or running executions; stop them or let them end",
    ):
        engine.delete_queue("q")
    assert engine.work(once=True) == 1
    ((_, stats),) = engine.queues()
    assert (stats.depth, stats.running, stats.sleeping, stats.started) == (0, 0, 1, 2)
    engine.store.stop(x, T0)
    engine.delete_queue("q")
    assert engine.queues() == []
    with pytest.raises(ValidationError, match=r"^no queue named 'q' \(queues: none\)$"):
        engine.delete_queue("q")
    with pytest.raises(ValidationError, match=r"^no queue named 'q' \(queues: none\); declare"):
        engine.start(quick, 3, queue="q")


def test_a_schedule_starts_onto_a_queue(engine):
    engine.add_queue(Queue("nightly", concurrency=1))
    assert engine.add_schedule(
        Schedule("s", "tests.test_schedules:echo", cron="* * * * * *", queue="nightly")
    )
    wait_until(engine.fire_schedules, 5, "a tick")
    rows = engine.store._query("SELECT queue FROM executions WHERE schedule = 's'")
    assert rows
    assert {r[0] for r in rows} == {"nightly"}


def test_the_cli_declares_starts_onto_and_deletes_a_queue(pg_url):
    db = ("--db", pg_url)
    added = run_cli(*db, "queue", "add", "mail", "--concurrency", "2", "--rate-limit", "50")
    assert added.returncode == 0, added.stderr
    target = "tests/test_queues.py:quick"
    first = run_cli(*db, "start", target, "--input", "1", "--queue", "mail", "--dedup-id", "d1")
    assert first.returncode == 0, first.stderr
    eid = first.stdout.strip()
    again = run_cli(*db, "start", target, "--input", "2", "--queue", "mail", "--dedup-id", "d1")
    assert again.returncode == 1
    assert f"held by execution {eid!r}" in again.stderr
    unknown = run_cli(*db, "start", target, "--queue", "nope")
    assert unknown.returncode == 2
    assert "no queue named 'nope' (queues: 'mail')" in unknown.stderr
    scheduled = run_cli(
        *db, "schedule", "add", "s", target, "--cron", "0 0 * * *", "--queue", "mail"
    )
    assert scheduled.returncode == 0, scheduled.stderr
    listed = run_cli(*db, "queue", "list")
    assert listed.stdout.splitlines()[1].split()[:4] == ["mail", "1", "0", "0"]
    assert run_cli(*db, "worker", "--once").returncode == 0
    assert _statuses(pg_url) == {"SUCCEEDED": 1}
    assert run_cli(*db, "schedule", "delete", "s").returncode == 0
    deleted = run_cli(*db, "queue", "delete", "mail")
    assert deleted.returncode == 0, deleted.stderr
    assert run_cli(*db, "queue", "list", "--json").stdout == ""


def test_concurrency_3_holds_across_3_worker_processes(pg_url, tmp_path):
    """60 executions on a queue of concurrency 3, 3 ``durable-gen --db postgresql://...
    worker --concurrency 4`` processes: never more than 3 steps overlap (their own
    clocks), each ran once, all SUCCEEDED."""
    log = tmp_path / "steps.log"
    with DurableEngine(PostgresStore(pg_url)) as engine:
        engine.add_queue(Queue("three", concurrency=3))
        for i in range(60):
            engine.start(timed, {"i": i, "log": str(log)}, queue="three")
    procs = [
        spawn(
            cli("--db", pg_url, "worker", "--concurrency", "4", "--poll", "0.1"),
            tmp_path,
            f"worker{k}",
        )
        for k in range(3)
    ]
    try:
        wait_until(
            lambda: sum(n for s, n in _statuses(pg_url).items() if s != "RUNNING") == 60,
            60,
            "60 executions to end",
            interval=0.1,
        )
    finally:
        for p in procs:
            stop(p)
    assert _statuses(pg_url) == {"SUCCEEDED": 60}
    rows = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(r[0]) for r in rows) == list(range(60))  # each step's body ran once
    most = peak([(int(r[0]), int(r[1]), int(r[2]), r[3]) for r in rows])
    print(f"peak overlap of 60 steps on concurrency 3, 3 processes: {most}")
    assert 2 <= most <= 3
