"""Schedules (issue 26, item 2) without processes: validation messages, tick maths
(seconds field, daylight saving time in Europe/Berlin), firing on an injected clock
(catch-up, skipped counts, overlap policies, jitter, timeout, pause, backfill), the
``schedule`` commands and stores without schedules. Real worker processes:
tests/test_schedule_processes.py."""

from __future__ import annotations

import datetime
import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from durable_gen import MemoryStore, Step, Wait
from durable_gen._core.errors import ValidationError
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.durable import DurableEngine
from durable_gen._engine.schedules import Schedule
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.schedules import (
    iso_utc,
    jitter_delay,
    next_tick,
    tick_id,
    ticks_between,
)
from tests._procs import run_cli

UTC = datetime.UTC
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TARGET = "tests.test_schedules:echo"


def echo(args):  # type: ignore[no-untyped-def]
    return (yield Step(lambda: args, name="echo"))


def slow(args):  # type: ignore[no-untyped-def]
    yield Wait(seconds=3600)
    return args


def _ms(*fields: int) -> int:
    """Epoch ms of a UTC time given as (year, month, day[, hour])."""
    return round(datetime.datetime(*fields, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def _engine(tmp_path: Path, clock: VirtualClock) -> SqliteEngine:
    return SqliteEngine(str(tmp_path / "s.db"), clock=clock)


def _ids(engine: DurableEngine, name: str) -> list[str]:
    rows = engine.store._query(  # type: ignore[attr-defined]
        "SELECT id FROM executions WHERE schedule = ? ORDER BY id", (name,)
    )
    return [r[0] for r in rows]


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"cron": "61 * * * *"},
            r"^malformed cron expression '61 \* \* \* \*' \(Bad minute\): give 5 fields "
            r"\(minute hour day month weekday\) or 6 with seconds first, "
            r"e\.g\. '\*/5 \* \* \* \*'$",
        ),
        ({"cron": "* * *"}, r"^malformed cron expression '\* \* \*' \(Wrong number of fields\)"),
        (
            {"timezone": "Mars/Olympus"},
            r"^unknown time zone 'Mars/Olympus': give an IANA name such as 'UTC' or "
            r"'Europe/Berlin'$",
        ),
        (
            {"catch_up": 0},
            r"^catch_up must be a number of seconds, more than 0 and at most 31622400, got 0$",
        ),
        (
            {"jitter": -1},
            r"^jitter must be a number of seconds, 0 or more and at most 31622400, got -1$",
        ),
        ({"timeout": -5}, r"^timeout must be from 1 to 31622400 seconds, got -5$"),
        (
            {"overlap": "queue"},
            r"^overlap must be one of 'skip', 'buffer-one', 'allow', got 'queue'$",
        ),
        (
            {"input": [1, 2]},
            r"^a schedule's input must be a JSON object \(a dict\), got list: \[1, 2\]$",
        ),
        (
            {"input": {"actual_time": "x"}},
            r"^a schedule's input may not have the key 'actual_time': each execution gets "
            r"scheduled_time and actual_time from the schedule$",
        ),
        ({"queue": ""}, r"^queue must be a queue's name or None, got ''$"),
    ],
)
def test_bad_schedules_are_refused_in_one_line(kw, message):
    args = {"cron": "* * * * *", **kw}
    with pytest.raises(ValidationError, match=message) as info:
        Schedule("s", TARGET, **args)
    assert "\n" not in str(info.value)


def test_bad_names_and_targets_are_refused():
    with pytest.raises(ValidationError, match=r"^a schedule name must be 1 to 64 letters"):
        Schedule("a b", TARGET, cron="* * * * *")
    with pytest.raises(ValidationError, match=r"^a schedule's target must be 'package"):
        Schedule("s", "no_colon", cron="* * * * *")
    with pytest.raises(
        ValidationError, match=r"^malformed cron expression .* \(Bad day-of-month\)"
    ):
        Schedule("s", TARGET, cron="0 0 31 2 *")


def test_a_target_that_does_not_load_records_nothing(tmp_path):
    with _engine(tmp_path, VirtualClock(T0)) as engine:
        with pytest.raises(ValidationError, match="has no attribute 'nope'"):
            engine.add_schedule(Schedule("s", "tests.test_schedules:nope", cron="* * * * *"))
        assert engine.schedules() == []


# ---------------------------------------------------------------------- tick maths


def test_a_sixth_field_is_seconds_and_comes_first():
    assert ticks_between("*/15 * * * * *", "UTC", T0, T0 + 60_000) == [
        T0 + s * 1000 for s in (0, 15, 30, 45, 60)
    ]
    # "30 5 * * * *": second 30 of minute 5 of every hour
    assert next_tick("30 5 * * * *", "UTC", T0) == T0 + (5 * 60 + 30) * 1000


def test_ticks_follow_berlin_across_daylight_saving_time():
    zone = "Europe/Berlin"
    # spring: 02:30 does not exist on 2026-03-29; the tick fires at 03:00 CEST (01:00Z)
    spring = ticks_between("30 2 * * *", zone, _ms(2026, 3, 28), _ms(2026, 3, 31))
    assert [iso_utc(t) for t in spring] == [
        "2026-03-28T01:30:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-30T00:30:00Z",
    ]
    # autumn: 02:30 happens twice on 2026-10-25; the tick fires once, at the first
    autumn = ticks_between("30 2 * * *", zone, _ms(2026, 10, 24), _ms(2026, 10, 27))
    assert [iso_utc(t) for t in autumn] == [
        "2026-10-24T00:30:00Z",
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00Z",
    ]
    # hourly: one tick every real hour through both changes, none twice, none lost
    hourly = ticks_between("0 * * * *", zone, _ms(2026, 10, 24, 22), _ms(2026, 10, 25, 4))
    assert [b - a for a, b in itertools.pairwise(hourly)] == [3_600_000] * 6
    hourly = ticks_between("0 * * * *", zone, _ms(2026, 3, 28, 22), _ms(2026, 3, 29, 4))
    assert [b - a for a, b in itertools.pairwise(hourly)] == [3_600_000] * 6
    # local midnight moves with the offset
    assert iso_utc(next_tick("0 0 * * *", zone, _ms(2026, 1, 1, 12))) == "2026-01-01T23:00:00Z"  # type: ignore[arg-type]
    assert iso_utc(next_tick("0 0 * * *", zone, _ms(2026, 7, 1, 12))) == "2026-07-01T22:00:00Z"  # type: ignore[arg-type]


def test_ids_and_jitter_are_derived_from_the_schedule_and_the_tick():
    assert tick_id("nightly", T0) == "sched:nightly:2026-01-01T00:00:00Z"
    assert tick_id("n", T0 + 5) == "sched:n:2026-01-01T00:00:00.005Z"
    delays = {jitter_delay("n", T0 + i * 1000, 10_000) for i in range(50)}
    assert all(0 <= d <= 10_000 for d in delays)
    assert len(delays) > 40
    assert jitter_delay("n", T0, 10_000) == jitter_delay("n", T0, 10_000)
    assert jitter_delay("n", T0, 0) == 0


# ---------------------------------------------------------------------- firing


def test_each_tick_starts_one_execution_with_its_times(tmp_path):
    clock = VirtualClock(T0 + 500)
    with _engine(tmp_path, clock) as engine:
        schedule = Schedule("s", TARGET, cron="* * * * * *", input={"a": 1}, overlap="allow")
        assert engine.add_schedule(schedule)
        assert engine.fire_schedules() == []  # the first tick is the one after now
        clock.advance(0.7)  # T0 + 1200
        assert engine.fire_schedules() == ["sched:s:2026-01-01T00:00:01Z"]
        assert engine.fire_schedules() == []  # fired: the tick is not started twice
        clock.advance(2.0)  # T0 + 3200: ticks 2 and 3
        started = engine.fire_schedules()
        assert started == ["sched:s:2026-01-01T00:00:02Z", "sched:s:2026-01-01T00:00:03Z"]
        assert engine.work(once=True) == 3
        info = engine.store.info("sched:s:2026-01-01T00:00:02Z")
        assert info.status == "SUCCEEDED"
        assert json.loads(info.result or "") == {
            "a": 1,
            "scheduled_time": "2026-01-01T00:00:02Z",
            "actual_time": "2026-01-01T00:00:03.200Z",
        }
        ((listed, stats),) = engine.schedules()
        assert listed == schedule
        assert stats.schedule.last_tick == T0 + 3000
        assert stats.schedule.last_execution == "sched:s:2026-01-01T00:00:03Z"
        assert stats.schedule.next_tick == T0 + 4000
        assert (stats.schedule.skipped, stats.live) == (0, 0)


def test_ticks_past_the_catch_up_window_are_skipped_and_counted(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_schedule(Schedule("m", TARGET, cron="* * * * *", catch_up=150, overlap="allow"))
        clock.advance(10 * 60 + 30)  # down 10.5 minutes: ticks at minutes 1 to 10
        started = engine.fire_schedules()
        # within 150 s of 00:10:30: 00:08:00 up to 00:10:00
        assert started == [f"sched:m:2026-01-01T00:{m:02d}:00Z" for m in (8, 9, 10)]
        ((_, stats),) = engine.schedules()
        assert stats.schedule.skipped == 7
        assert stats.schedule.last_skipped == T0 + 7 * 60_000
        assert stats.schedule.next_tick == T0 + 11 * 60_000
        listed = run_cli("schedule", "list", "--json", "--db", str(tmp_path / "s.db"))
        record = json.loads(listed.stdout)
        assert (record["skipped"], record["last_skipped"]) == (7, "2026-01-01T00:07:00Z")


def test_overlap_skip_buffer_one_and_allow(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        for policy in ("skip", "buffer-one", "allow"):
            target = "tests.test_schedules:slow"
            engine.add_schedule(Schedule(policy, target, cron="* * * * *", overlap=policy))
        for _ in range(3):  # three ticks while the first execution sleeps
            clock.advance(60)
            engine.fire_schedules()
            engine.work(once=True)
        assert len(_ids(engine, "skip")) == 1
        assert len(_ids(engine, "buffer-one")) == 1
        assert len(_ids(engine, "allow")) == 3
        stats = {s.name: st for s, st in engine.schedules()}
        assert stats["skip"].schedule.skipped == 2
        assert stats["buffer-one"].schedule.buffered_tick == T0 + 120_000
        assert stats["buffer-one"].schedule.skipped == 1  # one held, the next one skipped
        assert stats["allow"].live == 3
        # the live one ends: the held tick starts at once, between ticks
        engine.store.stop("sched:buffer-one:2026-01-01T00:01:00Z", clock.now())  # type: ignore[attr-defined]
        clock.advance(1)
        assert engine.fire_schedules() == ["sched:buffer-one:2026-01-01T00:02:00Z"]
        stats = {s.name: st for s, st in engine.schedules()}
        assert stats["buffer-one"].schedule.buffered_tick is None


def test_jitter_delays_the_start_not_the_id_and_timeout_sets_the_deadline(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_schedule(Schedule("j", TARGET, cron="* * * * *", jitter=30, timeout=120))
        clock.advance(60)
        (execution_id,) = engine.fire_schedules()
        assert execution_id == "sched:j:2026-01-01T00:01:00Z"
        delay = jitter_delay("j", T0 + 60_000, 30_000)
        info = engine.store.info(execution_id)
        assert info.deadline == T0 + 60_000 + delay + 120_000
        assert info.timeout_ms == 120_000
        wake = engine.store._query(  # type: ignore[attr-defined]
            "SELECT wake_at FROM executions WHERE id = ?", (execution_id,)
        )
        assert wake == [(T0 + 60_000 + delay,)]


def test_a_paused_schedule_starts_nothing_and_resumes_from_now(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_schedule(Schedule("p", TARGET, cron="* * * * *"))
        assert engine.pause_schedule("p") is True
        assert engine.pause_schedule("p") is False
        clock.advance(300)
        assert engine.fire_schedules() == []
        assert engine.resume_schedule("p") is True
        ((_, stats),) = engine.schedules()
        assert stats.schedule.next_tick == T0 + 360_000
        assert stats.schedule.skipped == 0
        assert engine.fire_schedules() == []


def test_backfill_starts_the_missing_ticks_once(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_schedule(Schedule("b", TARGET, cron="* * * * *", catch_up=60))
        clock.advance(5 * 60 + 1)  # ticks 1 to 5; only 5 is within the window
        assert engine.fire_schedules() == ["sched:b:2026-01-01T00:05:00Z"]
        start = datetime.datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
        end = datetime.datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
        started = engine.backfill_schedule("b", start, end)
        assert started == [f"sched:b:2026-01-01T00:0{m}:00Z" for m in range(1, 5)]
        assert engine.backfill_schedule("b", start, end) == []
        assert len(_ids(engine, "b")) == 5
        with pytest.raises(ValidationError, match="its end is later than now"):
            engine.backfill_schedule("b", start, end + datetime.timedelta(hours=1))
        with pytest.raises(ValidationError, match="must be a timezone-aware datetime"):
            engine.backfill_schedule("b", start.replace(tzinfo=None), end)
        with pytest.raises(ValidationError, match=r"^no schedule named 'x' \(schedules: 'b'\)$"):
            engine.backfill_schedule("x", start, end)


def test_a_schedule_starts_onto_its_queue(tmp_path):
    from durable_gen._engine.queues import Queue

    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_queue(Queue("q", concurrency=1))
        engine.add_schedule(Schedule("q", TARGET, cron="* * * * *", queue="q"))
        clock.advance(60)
        (execution_id,) = engine.fire_schedules()
        queue = engine.store._query(  # type: ignore[attr-defined]
            "SELECT queue FROM executions WHERE id = ?", (execution_id,)
        )
        assert queue == [("q",)]
        assert engine.work(once=True) == 1


def test_a_new_definition_keeps_the_state_and_delete_keeps_the_executions(tmp_path):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        assert engine.add_schedule(Schedule("d", TARGET, cron="* * * * *"))
        clock.advance(60)
        engine.fire_schedules()
        assert not engine.add_schedule(Schedule("d", TARGET, cron="* * * * *", input={"x": 1}))
        ((schedule, stats),) = engine.schedules()
        assert schedule.input == {"x": 1}
        assert stats.schedule.last_tick == T0 + 60_000
        engine.delete_schedule("d")
        assert engine.schedules() == []
        assert _ids(engine, "d") == ["sched:d:2026-01-01T00:01:00Z"]
        with pytest.raises(ValidationError, match=r"^no schedule named 'd' \(schedules: none\)$"):
            engine.delete_schedule("d")


def test_stores_without_schedules_say_so():
    """A store without schedule methods (the in-memory store): a clear error from the
    engine, and its workers fire nothing."""
    engine = DurableEngine(MemoryStore(), clock=VirtualClock(T0))
    with pytest.raises(
        ValidationError,
        match=r"^schedules need the SQLite or PostgreSQL store in this version; "
        r"MemoryStore has none$",
    ):
        engine.add_schedule(Schedule("s", TARGET, cron="* * * * *"))
    assert engine.fire_schedules() == []


# ---------------------------------------------------------------------- CLI


def test_the_cli_adds_lists_pauses_backfills_and_deletes(tmp_path):
    db = str(tmp_path / "c.db")
    done = run_cli(
        "schedule", "add", "c", TARGET, "--cron", "*/10 * * * * *", "--input", '{"k": 2}',
        "--timezone", "Europe/Berlin", "--overlap", "allow", "--jitter", "1", "--db", db,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("added schedule c: */10 * * * * * (Europe/Berlin), next tick ")
    listed = run_cli("schedule", "list", "--db", db)
    assert listed.stdout.splitlines()[0].split() == [
        "SCHEDULE", "CRON", "ZONE", "PAUSED", "NEXT", "LAST", "LAST", "EXECUTION", "SKIPPED",
        "LIVE",
    ]  # fmt: skip
    assert run_cli("schedule", "pause", "c", "--db", db).stderr == "paused schedule c\n"
    record = json.loads(run_cli("schedule", "list", "--json", "--db", db).stdout)
    assert record["paused"] is True
    assert record["next_tick"] is None
    assert record["input"] == {"k": 2}
    assert record["jitter"] == 1.0
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    back = run_cli(
        "schedule", "backfill", "c", "--from", (now - datetime.timedelta(seconds=30)).isoformat(),
        "--to", now.isoformat(), "--db", db,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert len(back.stdout.split()) in (3, 4)
    assert run_cli("schedule", "resume", "c", "--db", db).returncode == 0
    assert run_cli("schedule", "delete", "c", "--db", db).returncode == 0
    assert "no schedules" in run_cli("schedule", "list", "--db", db).stderr


def test_bad_cli_input_is_one_line_and_records_nothing(tmp_path):
    db = tmp_path / "b.db"
    for args in (
        ("add", "s", TARGET, "--cron", "* * *"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--timezone", "Nowhere/Land"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--catch-up", "-3"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--catch-up", "soon"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--timeout", "0"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--input", "[1]"),
        ("add", "s", TARGET, "--cron", "* * * * *", "--input", '{"scheduled_time": 1}'),
        ("add", "s", TARGET, "--cron", "* * * * *", "--overlap", "sometimes"),
        ("add", "s", "tests.test_schedules:missing", "--cron", "* * * * *"),
        ("backfill", "s", "--from", "yesterday", "--to", "2026-01-01T00:00:00Z"),
        ("pause", "nope"),
    ):
        done = run_cli("schedule", *args, "--db", str(db))
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("durable-gen: "), done.stderr
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM schedules").fetchone() == (0,)
            assert conn.execute("SELECT COUNT(*) FROM executions").fetchone() == (0,)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_worker_loop_fires_and_runs_the_ticks(tmp_path, concurrency):
    clock = VirtualClock(T0)
    with _engine(tmp_path, clock) as engine:
        engine.add_schedule(Schedule("w", TARGET, cron="*/10 * * * * *", overlap="allow"))
        clock.advance(35)
        assert engine.work(once=True, concurrency=concurrency) == 3
        assert _ids(engine, "w") == [f"sched:w:2026-01-01T00:00:{s}Z" for s in (10, 20, 30)]
        # idle: it sleeps no later than the next tick (00:00:40), however long the poll
        assert engine._poll_delay(60.0) == pytest.approx(5.0)


def test_an_encrypting_store_keeps_no_schedules(tmp_path):
    """Its inner store would take the inputs unsealed: refused, and nothing fires."""
    import base64

    from durable_gen import EncryptedStore, KeyRing, PayloadCipher, SqliteStore

    ring = KeyRing("k", {"k": base64.b64decode(KeyRing.generate_key())})
    store = EncryptedStore(SqliteStore(tmp_path / "e.db"), PayloadCipher(ring))
    with DurableEngine(store, clock=VirtualClock(T0)) as engine:
        with pytest.raises(ValidationError, match=r"EncryptedStore has none$"):
            engine.add_schedule(Schedule("s", TARGET, cron="* * * * *"))
        assert engine.fire_schedules() == []
