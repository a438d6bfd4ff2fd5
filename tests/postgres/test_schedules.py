"""Schedules on the PostgreSQL store: the SQLite store's rules (tests/test_schedules.py)
on a real server, and exactly one execution per tick when several stores (as workers
on several machines) fire the same ticks at once."""

from __future__ import annotations

import datetime
import json
import threading

from durable_gen import DurableEngine, Schedule
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.queues import Queue
from durable_gen._stores.postgres import PostgresStore
from tests._procs import run_cli

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TARGET = "tests.test_schedules:echo"


def _ids(store: PostgresStore, name: str) -> list[str]:
    rows = store._query("SELECT id FROM executions WHERE schedule = %s ORDER BY id", (name,))
    return [r[0] for r in rows]


def test_ticks_catch_up_skip_pause_and_backfill(pg_url):
    clock = VirtualClock(T0)
    with DurableEngine(PostgresStore(pg_url), clock=clock) as engine:
        assert engine.add_schedule(
            Schedule("m", TARGET, cron="* * * * *", catch_up=150, overlap="allow", input={"a": 1})
        )
        clock.advance(10 * 60 + 30)
        started = engine.fire_schedules()
        assert started == [f"sched:m:2026-01-01T00:{m:02d}:00Z" for m in (8, 9, 10)]
        assert engine.fire_schedules() == []
        ((schedule, stats),) = engine.schedules()
        assert schedule.input == {"a": 1}
        assert (stats.schedule.skipped, stats.live) == (7, 3)
        assert stats.schedule.next_tick == T0 + 11 * 60_000
        assert engine.work(once=True) == 3
        info = engine.store.info("sched:m:2026-01-01T00:08:00Z")
        assert json.loads(info.result or "") == {
            "a": 1,
            "scheduled_time": "2026-01-01T00:08:00Z",
            "actual_time": "2026-01-01T00:10:30Z",
        }
        assert engine.pause_schedule("m")
        clock.advance(120)
        assert engine.fire_schedules() == []
        start = datetime.datetime(2026, 1, 1, 0, 0, 30, tzinfo=datetime.UTC)
        end = datetime.datetime(2026, 1, 1, 0, 12, tzinfo=datetime.UTC)
        filled = engine.backfill_schedule("m", start, end)
        assert len(filled) == 12 - 3  # minutes 1 to 12 but 8, 9, 10
        assert engine.backfill_schedule("m", start, end) == []
        assert len(_ids(engine.store, "m")) == 12  # type: ignore[arg-type]
        assert engine.resume_schedule("m")
        engine.delete_schedule("m")
        assert engine.schedules() == []


def test_overlap_skip_and_a_schedule_onto_a_queue(pg_url):
    clock = VirtualClock(T0)
    with DurableEngine(PostgresStore(pg_url), clock=clock) as engine:
        engine.add_schedule(Schedule("s", "tests.test_schedules:slow", cron="* * * * *"))
        for _ in range(3):
            clock.advance(60)
            engine.fire_schedules()
            engine.work(once=True)
        ((_, stats),) = engine.schedules()
        assert (stats.schedule.skipped, stats.live) == (2, 1)
        # queues are kept on PostgreSQL too: a tick's execution goes onto the queue
        engine.add_queue(Queue("q", concurrency=1))
        assert engine.add_schedule(Schedule("q", TARGET, cron="* * * * *", queue="q"))
        clock.advance(60)
        (started,) = [e for e in engine.fire_schedules() if e.startswith("sched:q:")]
        assert engine.store._query("SELECT queue FROM executions WHERE id = %s", (started,)) == [
            ("q",)
        ]
        assert engine.work(once=True) >= 1
        assert engine.store.info(started).status == "SUCCEEDED"


def test_stores_firing_at_once_start_each_tick_once(pg_url):
    """Eight stores (workers on as many machines) fire 30 due ticks at the same moment."""
    clock = VirtualClock(T0)
    with DurableEngine(PostgresStore(pg_url), clock=clock) as engine:
        engine.add_schedule(
            Schedule("x", TARGET, cron="* * * * * *", overlap="allow", catch_up=3600)
        )
    stores = [PostgresStore(pg_url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    started: list[list[str]] = [[] for _ in stores]

    def fire(i: int) -> None:
        barrier.wait()
        for k in range(1, 31):
            started[i] += stores[i].fire_due(T0 + k * 1000)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_started = [x for s in started for x in s]
    assert len(all_started) == len(set(all_started)) == 30
    assert _ids(stores[0], "x") == sorted(all_started)
    for s in stores:
        s.close()


def test_the_cli_on_postgres(pg_url):
    added = run_cli("schedule", "add", "c", TARGET, "--cron", "*/5 * * * *", "--db", pg_url)
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_cli("schedule", "list", "--json", "--db", pg_url).stdout)
    assert (listed["name"], listed["cron"], listed["paused"]) == ("c", "*/5 * * * *", False)
    bad = run_cli("schedule", "add", "d", TARGET, "--cron", "nope", "--db", pg_url)
    assert bad.returncode == 2
    assert bad.stderr.startswith("durable-gen: malformed cron expression 'nope'")
