"""Forward progress on the SQLite store: steps per second beside the raw commit rate.

    python -m benchmarks.sqlite_forward [--steps 10000] [--rounds 5] [--synchronous FULL]

A workflow of N straight-line steps runs to completion on a fresh database with
the store's default durability (WAL, synchronous=FULL: every step's result is
fsync'ed before the next step runs). Beside it, in the same run and on the same
disk, the raw rate of durable SQLite commits with the same pragmas: one INSERT per
transaction, of a row shaped and sized like the journal row a step commits (an
integer key, ~280 characters of operation JSON, ~415 of event JSON), as one
autocommit statement -- the cheapest durable commit sqlite3 offers, and what the
store's fast path executes. Rounds are interleaved; medians are printed.

Target: at-least-once steps (one commit per step) at >= half the raw rate.

The commits/step column is measured, not assumed: an untimed pass counts the
durable commits on every connection (a trace callback: a COMMIT closing a BEGIN,
or a write in autocommit mode) for 200 and 400 steps; the difference over 200.

A third reference row bounds what any store can reach with this interpreter: the
same workflow on the in-memory engine, each step's function doing the raw commit
(the interpreter's per-step work plus one durable commit, and nothing a store
adds: no fence, no JSON, no history events). On a disk whose fsync costs about
as much as a step's Python work, that ceiling itself sits near 0.5x.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time

from durable_gen import AT_LEAST_ONCE_PER_RETRY, AT_MOST_ONCE_PER_RETRY, InMemoryEngine, Step
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.sqlite import SqliteStore


def noop(i):
    return i


def straight_line(fn, semantics=AT_LEAST_ONCE_PER_RETRY):
    """A workflow of N steps ``fn(i)`` one after the other, returning their sum."""

    def workflow(n):
        total = 0
        for i in range(n):
            total += yield Step(fn, i, name="s", semantics=semantics)
        return total

    return workflow


at_least_once = straight_line(noop)
at_most_once = straight_line(noop, AT_MOST_ONCE_PER_RETRY)


def _fresh(directory, name):
    path = os.path.join(directory, name)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def _raw_db(directory, name, synchronous):
    conn = sqlite3.connect(_fresh(directory, name), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("CREATE TABLE journal (key INTEGER PRIMARY KEY, ops TEXT, events TEXT)")
    return conn


#: The raw row: key, ~280 characters of "operation", ~415 of "events" (see below).
_RAW_INSERT = "INSERT INTO journal (key, ops, events) VALUES (?, ?, ?)"
_OPS = "o" * 272
_EVENTS = "e" * 406


def raw_commits_per_second(directory, n, synchronous):
    """One journal-sized INSERT per durable transaction, with the store's pragmas.

    The row has the shape and size of the one a step commits (see
    ``durable_gen._stores.sqlite``: key ``execution << 32 | n``, the operation's new state
    and its two history events as JSON text), so the comparison is per commit of
    the same bytes, not of a tiny row.
    """
    conn = _raw_db(directory, "raw.db", synchronous)
    ops, events = _OPS, _EVENTS
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute(
            _RAW_INSERT,
            ((1 << 32) | i, f"{ops}{i:08d}", f"{events}{i:08d}"),
        )
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def interpreter_ceiling_per_second(directory, n, synchronous):
    """The in-memory engine running N steps, each committing the raw row itself.

    The interpreter's and driver's per-step work plus exactly one raw durable
    commit: what a store that added nothing to the commit would reach.
    """
    conn = _raw_db(directory, "ceiling.db", synchronous)
    ops, events = _OPS, _EVENTS

    def commit(i):
        conn.execute(
            _RAW_INSERT,
            ((1 << 32) | i, f"{ops}{i:08d}", f"{events}{i:08d}"),
        )
        return i

    t0 = time.perf_counter()
    result = InMemoryEngine().run(straight_line(commit), n)
    elapsed = time.perf_counter() - t0
    assert result.status == "SUCCEEDED", result
    assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == n
    conn.close()
    return n / elapsed


class _CommitCounter:
    """Counts durable commits on every SQLite connection opened while it is active.

    A commit is a COMMIT (or END) closing a BEGIN, or a write statement run in
    autocommit mode (its own transaction). Installed on connections through
    ``sqlite3.connect``, so the store's own connections (and any it opens for a
    lease) are counted as well as a raw one.
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self):
        self.commits = 0
        self._real = sqlite3.connect

    def __enter__(self):
        def connect(*args, **kwargs):
            conn = self._real(*args, **kwargs)
            self.watch(conn)
            return conn

        sqlite3.connect = connect
        return self

    def __exit__(self, *exc):
        sqlite3.connect = self._real

    def watch(self, conn):
        in_tx = [False]

        def trace(sql):
            words = sql.split(None, 1)
            head = words[0].upper() if words else ""
            if head == "BEGIN":
                in_tx[0] = True
            elif head in ("COMMIT", "END"):
                in_tx[0] = False
                self.commits += 1
            elif head == "ROLLBACK":
                in_tx[0] = False
            elif head in self._WRITES and not in_tx[0]:
                self.commits += 1

        conn.set_trace_callback(trace)


def commits_per_step(directory, run, n=200):
    """Durable commits per step, measured: the commits of 2n steps minus those of n,
    over n (what starting and finishing an execution costs cancels out)."""
    counts = []
    for steps in (n, 2 * n):
        with _CommitCounter() as counter:
            run(directory, steps, counter)
        counts.append(counter.commits)
    return (counts[1] - counts[0]) / n


def _count_raw(directory, n, counter):
    conn = _raw_db(directory, "raw-count.db", "FULL")
    counter.watch(conn)
    for i in range(n):
        conn.execute(_RAW_INSERT, ((1 << 32) | i, _OPS, _EVENTS))
    conn.close()


def _count_ceiling(directory, n, counter):
    conn = _raw_db(directory, "ceiling-count.db", "FULL")
    counter.watch(conn)

    def commit(i):
        conn.execute(_RAW_INSERT, ((1 << 32) | i, _OPS, _EVENTS))
        return i

    assert InMemoryEngine().run(straight_line(commit), n).status == "SUCCEEDED"
    conn.close()


def _count_engine(workflow):
    def count(directory, n, counter):
        engine = SqliteEngine(store=SqliteStore(_fresh(directory, "count.db")))
        assert engine.run(workflow, n).status == "SUCCEEDED"
        engine.close()

    return count


def steps_per_second(directory, workflow, n, synchronous):
    store = SqliteStore(_fresh(directory, "engine.db"), synchronous=synchronous)
    engine = SqliteEngine(store=store)
    t0 = time.perf_counter()
    result = engine.run(workflow, n)
    elapsed = time.perf_counter() - t0
    assert result.status == "SUCCEEDED", result
    assert result.result == n * (n - 1) // 2
    engine.close()
    return n / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args(argv)
    n = args.steps
    raw, ceiling, alo, amo = [], [], [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        for _ in range(args.rounds):
            raw.append(raw_commits_per_second(d, n, args.synchronous))
            ceiling.append(interpreter_ceiling_per_second(d, n, args.synchronous))
            alo.append(steps_per_second(d, at_least_once, n, args.synchronous))
            amo.append(steps_per_second(d, at_most_once, n, args.synchronous))
        # commits per step, counted on the connections (an untimed pass of its own)
        commits = [
            commits_per_step(d, run)
            for run in (
                _count_raw,
                _count_ceiling,
                _count_engine(at_least_once),
                _count_engine(at_most_once),
            )
        ]
    raw_rate = statistics.median(raw)
    rows = [
        ("raw SQLite: 1 step-sized INSERT/commit", commits[0], raw, raw),
        ("ceiling: in-memory engine + raw commit", commits[1], ceiling, raw),
        ("steps, AT_LEAST_ONCE (default)", commits[2], alo, raw),
        ("steps, AT_MOST_ONCE", commits[3], amo, raw),
    ]
    print(
        f"{n:,} steps on SQLite (WAL, synchronous={args.synchronous}), "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        f"| {'workload':<38} | commits/step | {'per second':>10} | vs raw commits "
        "| per round (vs that round's raw) |"
    )
    print(f"|{'-' * 40}|--------------|------------|----------------|{'-' * 33}|")
    for name, per_step, rates, base in rows:
        rate = statistics.median(rates)
        per_round = " ".join(f"{r / b:.2f}" for r, b in zip(rates, base, strict=True))
        print(
            f"| {name:<38} | {per_step:>12.2f} | {rate:>10,.0f} | {rate / raw_rate:>13.2f}x "
            f"| {per_round:<31} |"
        )


if __name__ == "__main__":
    main()
