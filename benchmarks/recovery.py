"""Recovery: SIGKILL a 5,000-step `durable-gen run` at half way, resume it to the end.

    python -m benchmarks.recovery [--steps N] [--rounds R]

Each round: ``durable-gen run benchmarks.recovery:counted --input N --id R`` in a
child process; once half the steps are recorded (read from the database), the
child gets SIGKILL. Then, in this process, ``SqliteEngine.resume`` drives the same
execution to its end, timed. For comparison, a fresh execution of the steps that
were left (``counted`` from the kill point on, on another database) is timed the
same way: the difference, divided by the steps recorded before the kill, is the
resume overhead per recorded step (loading the log, replaying it). Every step
appends its index to a side file: a recorded step that ran again would show twice
(only the one step in flight at the kill may, at least once per retry).
Prints one Markdown table of medians.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from durable_gen import Step, Workflow

SIDE = "DG_RECOVERY_SIDE"


def touch(i: int) -> int:
    """A step's side effect: its index, one line per run."""
    with open(os.environ[SIDE], "a") as f:
        f.write(f"{i}\n")
    return i


def counted(n: int | list[int]) -> Workflow[int]:
    """Steps ``range(n)`` (or ``range(start, stop)``), each recording its index."""
    first, stop = (0, n) if isinstance(n, int) else (n[0], n[1])
    total = 0
    for i in range(first, stop):
        total += yield from Step(touch, i, name="s")
    return total


def _recorded(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM journal WHERE ops LIKE '%\"SUCCEEDED\"%'"
            ).fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def one_round(n: int, workdir: Path) -> dict[str, Any]:
    from durable_gen._engine.sqlite import SqliteEngine

    db = workdir / "killed.db"
    side = workdir / "side.txt"
    env = {**os.environ, SIDE: str(side), "PYTHONPATH": str(Path(__file__).parents[1])}
    args = [sys.executable, "-m", "durable_gen", "run", "benchmarks.recovery:counted"]
    args += ["--input", str(n), "--id", "R", "--db", str(db), "--quiet"]
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _recorded(db) < n // 2:
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the run ended before half way: {child.stderr.read()!r:.300}")
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    os.environ[SIDE] = str(side)
    with SqliteEngine(str(db)) as engine:
        recorded = sum(
            1 for op in engine.store.load("R").values() if op.status.value == "SUCCEEDED"
        )
        started = time.perf_counter()
        result = engine.resume(counted, "R")
        resume_s = time.perf_counter() - started
    assert result.status == "SUCCEEDED", result
    assert result.result == n * (n - 1) // 2, result.result
    runs = collections.Counter(int(line) for line in side.read_text().split())
    twice = [i for i, k in runs.items() if k > 1]
    assert set(runs) == set(range(n)), "a step never ran"
    # recorded steps are 0 .. recorded-1; only the one in flight (index ``recorded``,
    # not yet durable when the child died) may have run twice
    rerun_recorded = [i for i in twice if i < recorded]
    # the part of the resume that is recovery proper: load the log from the file
    # (a new store, cold cache) and replay the recorded steps without running any
    from durable_gen._stores.sqlite import SqliteStore
    from durable_gen.testing import check_replay_compatible

    started = time.perf_counter()
    with SqliteStore(db) as store:
        ops = store.load("R")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    assert check_replay_compatible(counted, ops).compatible
    replay_s = time.perf_counter() - started
    fresh_db = workdir / "fresh.db"
    with SqliteEngine(str(fresh_db)) as engine:
        started = time.perf_counter()
        engine.run(counted, [recorded, n])
        fresh_s = time.perf_counter() - started
    for p in (db, fresh_db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
    side.unlink()
    return {
        "recorded": recorded,
        "resume_s": resume_s,
        "fresh_s": fresh_s,
        "overhead_us": (resume_s - fresh_s) / recorded * 1e6,
        "load_us": load_s / recorded * 1e6,
        "replay_us": replay_s / recorded * 1e6,
        "in_flight_ran_twice": twice == [recorded],
        "recorded_ran_twice": rerun_recorded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.rounds):
            rounds.append(one_round(args.steps, Path(d)))

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rounds)

    rows = [
        ("steps recorded before the kill", f"{median('recorded'):,.0f}"),
        ("resume to the end (s)", f"{median('resume_s'):.3f}"),
        ("the same remaining steps, fresh (s)", f"{median('fresh_s'):.3f}"),
        ("difference per recorded step (µs; fsync noise included)", f"{median('overhead_us'):.1f}"),
        ("of which: loading the log, per recorded step (µs)", f"{median('load_us'):.2f}"),
        ("of which: replaying it, per recorded step (µs)", f"{median('replay_us'):.2f}"),
        ("recorded steps that ran again", str(sum(len(r["recorded_ran_twice"]) for r in rounds))),
        (
            "rounds where the step in flight at the kill ran again (at least once)",
            str(sum(bool(r["in_flight_ran_twice"]) for r in rounds)),
        ),
    ]
    print(f"\n| recovery, {args.steps:,} steps killed at half way | median of {args.rounds} |")
    print("|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\nper round:", json.dumps(rounds))


if __name__ == "__main__":
    main()
