"""Schedules with real processes (issue 26, item 2, acceptance): a schedule every
second, 3 ``durable-gen worker`` processes on one SQLite file for about 10 s, one of
them killed with SIGKILL and restarted mid-way: exactly one execution per tick, no
tick missed; then the schedule paused starts nothing for 3 s, and a backfill starts
the ticks of the pause once (a second backfill starts none)."""

from __future__ import annotations

import datetime
import json
import signal
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_gen import Step
from tests._procs import (
    cli,
    free_port,
    kill,
    lambda_client,
    read_log,
    run_cli,
    spawn,
    stop,
    wait_for_port,
    wait_until,
)

NAME = "every"


def tick(args: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The scheduled workflow: one step that returns the tick it was started for."""
    return (yield Step(lambda: args["scheduled_time"], name="tick"))


Rows = Callable[[], list[tuple[str, str, int, str]]]
#: (id, status, created_at, input) of the schedule's executions, in SQL
SELECT = "SELECT id, status, created_at, input FROM executions WHERE schedule = '" + NAME + "'"


def sqlite_rows(db: Path) -> Rows:
    """A reader of (id, status, created_at, scheduled_time) of the schedule's executions."""

    def read() -> list[tuple[str, str, int, str]]:
        with sqlite3.connect(db, timeout=30) as conn:
            rows = conn.execute(SELECT).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])["scheduled_time"]) for r in rows]

    return read


def _second(iso: str) -> int:
    return int(datetime.datetime.fromisoformat(iso).timestamp())


def _missing(seconds: list[int]) -> list[int]:
    return sorted(set(range(min(seconds), max(seconds) + 1)) - set(seconds))


def _worker(db: str, logs: Path, name: str) -> Any:
    return spawn(cli("worker", "--db", db, "--poll", "0.5"), logs, name)


def test_one_execution_per_tick_across_three_workers_one_killed(tmp_path):
    db = tmp_path / "s.db"
    acceptance(str(db), sqlite_rows(db), tmp_path / "logs")


def acceptance(db: str, _rows: Rows, logs: Path) -> None:
    """The acceptance run on the database ``db`` (a path or a URL), read by ``_rows``."""
    added = run_cli(
        "schedule", "add", NAME, "tests.test_schedule_processes:tick", "--cron", "* * * * * *",
        "--overlap", "allow", "--catch-up", "60", "--db", db,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    workers = [_worker(db, logs, f"w{i}") for i in range(3)]
    try:
        wait_until(lambda: len(_rows()) >= 2, 20, "the first ticks")
        began = time.monotonic()
        steady = time.time()  # the workers are up: ticks from here are not catch-up
        time.sleep(4)
        kill(workers[0])  # SIGKILL: whatever it held (a transaction, a lease) is cut off
        time.sleep(1.5)
        workers[0] = _worker(db, logs, "w0-again")
        time.sleep(max(0.0, 10 - (time.monotonic() - began)))

        paused = run_cli("schedule", "pause", NAME, "--db", db)
        assert paused.returncode == 0, paused.stderr
        paused_at = time.time_ns() // 1_000_000
        before = _rows()
        time.sleep(3)
        during = _rows()
    finally:
        for w in workers:
            stop(w, signal.SIGTERM)
    errors = "".join(read_log(logs, n) for n in ("w0", "w1", "w2", "w0-again"))
    assert "Traceback" not in errors, errors

    # exactly one execution per tick, none missed while the workers ran
    ticks = [_second(r[3]) for r in before]
    ids = [r[0] for r in before]
    duplicates = len(ticks) - len(set(ticks))
    missed = _missing(ticks)
    # how late each tick's execution was recorded (the worker's clock, ms)
    latency = [r[2] - _second(r[3]) * 1000 for r in before if _second(r[3]) > steady]
    print(
        f"\nschedule figures: {len(set(ticks))} ticks, {len(ids)} executions, "
        f"{duplicates} duplicates, {len(missed)} missed; recorded after its tick: "
        f"median {statistics.median(latency):.0f} ms, max {max(latency)} ms"
    )
    assert len(ids) == len(set(ids))
    assert duplicates == 0
    assert missed == []
    assert len(ticks) >= 8
    for execution_id, _, _, scheduled in before:
        assert execution_id == f"sched:{NAME}:{scheduled}"

    # paused: nothing started for 3 s
    assert [r for r in during if r[2] > paused_at] == []
    assert len(during) == len(before)

    # backfill: the ticks of the pause, once
    start = min(r[3] for r in before)
    end = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    back = run_cli("schedule", "backfill", NAME, "--from", start, "--to", end, "--db", db)
    assert back.returncode == 0, back.stderr
    filled = back.stdout.split()
    assert len(filled) >= 3
    again = run_cli("schedule", "backfill", NAME, "--from", start, "--to", end, "--db", db)
    assert again.stdout.split() == [], again.stderr
    after = _rows()
    seconds = [_second(r[3]) for r in after]
    assert len(seconds) == len(set(seconds)) == len(before) + len(filled)
    assert _missing(seconds) == []

    # every one of them runs to its end once
    done = run_cli("worker", "--once", "--db", db)
    assert done.returncode == 0, done.stderr
    statuses = wait_until(
        lambda: {r[1] for r in _rows()} == {"SUCCEEDED"} and _rows(), 20, "all to succeed"
    )
    assert len(statuses) == len(after)
    listed = json.loads(run_cli("schedule", "list", "--json", "--db", db).stdout)
    assert listed["paused"] is True
    assert listed["skipped"] == 0


def test_serve_fires_the_schedules_too(tmp_path):
    """``serve`` works executions with the worker loop: it fires ticks, runs them, and
    its Lambda API shows them by id."""
    db = tmp_path / "serve.db"
    added = run_cli(
        "schedule", "add", NAME, "tests.test_schedule_processes:tick", "--cron", "* * * * * *",
        "--db", str(db),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = free_port()
    args = cli("serve", "--port", str(port), "--db", str(db))
    proc = spawn([*args, "--function", "tick=tests.test_schedule_processes:tick"], tmp_path, "s")
    try:
        wait_for_port(port, proc)
        rows = sqlite_rows(db)
        done = wait_until(
            lambda: [r for r in rows() if r[1] == "SUCCEEDED"][2:], 20, "three ticks run"
        )
        client = lambda_client(port)
        got = client.get_durable_execution(DurableExecutionArn=done[0][0])
        assert got["Status"] == "SUCCEEDED"
        assert json.loads(got["Result"]) == done[0][3]
    finally:
        stop(proc, signal.SIGINT)
