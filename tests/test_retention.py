"""Retention (Lambda's RetentionPeriodInDays): ended executions older than their retention
are deleted with all their data by the workers, in batches, and the file stops growing."""

from __future__ import annotations

import sqlite3

import pytest

from durable_gen import (
    CreateCallback,
    SqliteEngine,
    Step,
    ValidationError,
    VirtualClock,
    get_logger,
)
from durable_gen._engine.durable import PURGE_BATCH
from tests._procs import run_cli

DAY = 86_400_000
log = get_logger("tests.retention")


def _work(n):
    log.info("step %s ran", n)
    return "x" * 2000  # a payload: the pages a purge must give back


def steps(event):
    a = yield Step(_work, 1, name="one")
    b = yield Step(_work, 2, name="two")
    return len(a) + len(b)


def with_callback(event):
    handle = yield CreateCallback(name="cb")
    return (yield handle.result())


def _counts(db):
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("executions", "journal", "callbacks", "logs")
        }


def test_retention_deletes_only_what_ended_before_now_minus_its_period(tmp_path):
    db = str(tmp_path / "r.db")
    clock = VirtualClock()
    t0 = clock.now()
    with SqliteEngine(db, clock=clock) as engine:
        engine.run(steps, None, execution_id="old")  # ended at t0, no retention of its own
        engine.start(with_callback, None, execution_id="cb", retention_days=2)
        engine.resume(with_callback, "cb", wait=False)  # waits for its callback
        engine.store.stop("cb", t0)  # ended at t0, kept 2 days; its callback row goes too
        clock.advance(86_400)
        engine.run(steps, None, execution_id="newer")  # ended at t0 + 1 day
        engine.start(with_callback, None, execution_id="live", retention_days=1)
        engine.resume(with_callback, "live", wait=False)  # running, its callback open
        assert engine.store.info("old").retention_ms is None
        assert engine.store.info("cb").retention_ms == 2 * DAY
        clock.sleep_until(t0 + 2 * DAY - 1)
        assert engine.purge() == 0  # cb ended 1 ms less than 2 days ago
        clock.sleep_until(t0 + 2 * DAY)
        before = _counts(db)
        assert engine.purge() == 1
        assert not engine.store.exists("cb")
        assert _counts(db)["callbacks"] == before["callbacks"] - 1  # live's is kept
        clock.sleep_until(t0 + 400 * DAY)
        assert engine.purge() == 0  # no retention and no default: kept forever
        assert {i.id for i in engine.store.executions()} == {"old", "newer", "live"}
    # a worker whose default is 2 days, at t0 + 2 days: "old" only
    clock = VirtualClock(start=t0 + 2 * DAY)
    with SqliteEngine(db, clock=clock, retention_days=2) as engine:
        before = _counts(db)
        assert engine.store.log_records("old").records  # it has log records to lose
        assert engine.purge() == 1
        assert {i.id for i in engine.store.executions()} == {"newer", "live"}
        after = _counts(db)
        assert after["executions"] == before["executions"] - 1
        assert 0 < after["logs"] < before["logs"]  # old's records went (the trigger)
        assert 0 < after["journal"] < before["journal"]
        clock.sleep_until(t0 + 3 * DAY - 1)  # "newer" ended at t0 + 1 day
        assert engine.purge() == 0
        clock.sleep_until(t0 + 3 * DAY)
        assert engine.purge() == 1
        clock.sleep_until(t0 + 400 * DAY)
        assert engine.purge() == 0
        assert [i.id for i in engine.store.executions()] == ["live"]  # running: never
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM logs").fetchone()[0] == 0  # live logs none


def test_an_executions_own_retention_wins_over_the_default(tmp_path):
    clock = VirtualClock()
    with SqliteEngine(str(tmp_path / "r.db"), clock=clock, retention_days=1) as engine:
        engine.run(steps, None, execution_id="engine-default")  # records 1 day
        engine.run(steps, None, execution_id="long", retention_days=10)
        engine.run(steps, None, execution_id="short", retention_days=0.5)
        assert engine.store.info("engine-default").retention_ms == DAY
        clock.advance(0.5 * 86_400)
        assert engine.purge() == 1
        assert not engine.store.exists("short")
        clock.advance(0.5 * 86_400)
        assert engine.purge() == 1
        assert not engine.store.exists("engine-default")
        clock.advance(8 * 86_400)
        assert engine.purge() == 0
        assert engine.store.exists("long")
        clock.advance(86_400)
        assert engine.purge() == 1
        assert engine.store.executions() == []


def test_workers_delete_in_bounded_batches(tmp_path):
    db = str(tmp_path / "r.db")
    clock = VirtualClock()
    n = 2 * PURGE_BATCH + 100
    with SqliteEngine(db, clock=clock) as engine:
        for k in range(n):  # ended executions, written directly (no workflow runs needed)
            engine.store.create(f"e{k}", "null", clock.now(), retention_ms=DAY)
            engine.store.stop(f"e{k}", clock.now())
        clock.advance(86_400)
        assert [engine.purge(limit=400) for _ in range(4)] == [400, 400, 300, 0]
    with SqliteEngine(db, clock=clock) as engine:
        for k in range(n):
            engine.store.create(f"f{k}", "null", clock.now(), retention_ms=DAY)
            engine.store.stop(f"f{k}", clock.now())
        clock.advance(86_400)
        deleted = []
        real = engine.store.purge

        def spy(now, **kw):
            deleted.append(real(now, **kw))
            return deleted[-1]

        engine.store.purge = spy  # type: ignore[method-assign]
        engine.work(once=True)  # a batch per turn, until fewer than a batch were left
        assert deleted == [PURGE_BATCH, PURGE_BATCH, 100]
        assert engine.store.executions() == []
        engine.work(once=True)  # looked a moment ago: not again until the interval passed
        assert len(deleted) == 3


def _pages(db):
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("PRAGMA page_count").fetchone()[0],
            conn.execute("PRAGMA freelist_count").fetchone()[0],
        )


def _steady_load(db, retention_days, rounds=10, per_round=40):
    """Each round starts and finishes ``per_round`` executions, then half a day passes
    and a worker turn runs (about two rounds are kept); the page counts after each."""
    clock = VirtualClock()
    sizes = []
    with SqliteEngine(db, clock=clock, retention_days=retention_days) as engine:
        for r in range(rounds):
            for k in range(per_round):
                engine.run(steps, None, execution_id=f"r{r}-{k}")
            clock.advance(43_200)
            engine.work(once=True)
            with sqlite3.connect(db) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes.append(_pages(db))
    return sizes


def test_the_file_stops_growing_under_a_steady_load_with_retention(tmp_path):
    kept = _steady_load(str(tmp_path / "kept.db"), None)
    purged = _steady_load(str(tmp_path / "purged.db"), 1)
    # without retention the file grows every round (the measure can tell growth apart)
    assert kept[-1][0] > 3 * kept[2][0]
    # with it: flat after the first rounds, and freed pages are given back
    steady = [pages for pages, _ in purged[2:]]
    assert max(steady) <= purged[2][0] + 8, purged
    assert all(free <= 8 for _, free in purged), purged
    with sqlite3.connect(tmp_path / "purged.db") as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
        assert conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] <= 2 * 40


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "7", True])
def test_bad_retention_is_refused_and_records_nothing(tmp_path, bad):
    with SqliteEngine(str(tmp_path / "r.db"), clock=VirtualClock()) as engine:
        with pytest.raises(ValidationError, match=r"^retention_days must be "):
            engine.start(steps, None, execution_id="x", retention_days=bad)
        assert engine.store.executions() == []
    with pytest.raises(ValidationError, match=r"^retention_days must be "):
        SqliteEngine(str(tmp_path / "r.db"), retention_days=bad)


@pytest.mark.parametrize("command", [["start", f"{__name__}:steps"], ["worker", "--once"]])
@pytest.mark.parametrize("bad", ["0", "-2", "nan", "soon"])
def test_the_cli_refuses_a_bad_retention_in_one_line(tmp_path, command, bad):
    db = tmp_path / "r.db"
    done = run_cli(*command, "--db", str(db), "--retention-days", bad)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(
        f"argument --retention-days: --retention-days must be more than 0 and at most "
        f"36500 days, got {float('nan') if bad == 'soon' else float(bad)} ({bad!r})"
    )
    assert not db.exists()
