"""How much Python work between durable commits costs, on this disk.

    python -m benchmarks.commit_work [--commits 3000] [--rounds 2]

The raw loop of ``benchmarks.sqlite_forward`` (one step-sized INSERT per durable
transaction, WAL, synchronous=FULL), with a fixed amount of work done between two
commits: nothing, a busy loop, or ``json.dumps`` of a small document repeated for
the same time. It prints the time per iteration, the commit's own time (the
``execute`` call, median and mean) and the iteration rate against the bare loop.

This is the reference for the durable target (``steps >= 0.5x raw commits``): a
durable step is one commit plus the engine's CPU work, and this table shows what
a given amount of CPU work between commits costs on the machine at hand. Where
fsync is cheap (tens of µs, as on the project's VM) the commit also gets slower
once the thread does work between commits, so the ratio falls below
``commit / (commit + work)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from benchmarks.sqlite_forward import _EVENTS, _OPS, _RAW_INSERT, _raw_db

_DOC = [{"a": i, "b": "x" * 20, "c": [1, 2, 3]} for i in range(3)]  # ~2 µs a call


def _busy(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def _json(us: float) -> None:
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        json.dumps(_DOC)


def _loop(
    directory: str, n: int, work: Callable[[float], None] | None, us: float
) -> tuple[float, float, float, float]:
    conn = _raw_db(directory, "work.db", "FULL")
    pc = time.perf_counter
    times = []
    worked = 0.0
    t0 = pc()
    for i in range(n):
        t = pc()
        conn.execute(
            _RAW_INSERT,
            ((1 << 32) | i, f"{_OPS}{i:08d}", f"{_EVENTS}{i:08d}"),
        )
        t1 = pc()
        times.append(t1 - t)
        if work is not None:
            work(us)
            worked += pc() - t1
    per_iter = (pc() - t0) / n
    conn.close()
    return per_iter, statistics.median(times), statistics.mean(times), worked / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    cases: list[tuple[str, Callable[[float], None] | None, float]] = [
        ("none (the raw loop)", None, 0),
        ("20 µs busy loop", _busy, 20),
        ("40 µs busy loop", _busy, 40),
        ("40 µs of json.dumps", _json, 40),
        ("60 µs of json.dumps", _json, 60),
        ("80 µs busy loop", _busy, 80),
    ]
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, _, _ in cases}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        for _ in range(args.rounds):
            for name, work, us in cases:
                results[name].append(_loop(d, args.commits, work, us))
    base = statistics.median(r[0] for r in results[cases[0][0]])
    print(
        f"{args.commits:,} durable commits (WAL, synchronous=FULL) with work between them, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(
        f"| {'work between commits':<22} | work µs | per iteration µs | commit median µs "
        "| commit mean µs | vs raw commits |"
    )
    print(
        f"|{'-' * 24}|---------|------------------|------------------|----------------|"
        "----------------|"
    )
    for name, _, _ in cases:
        rs = results[name]
        it = statistics.median(r[0] for r in rs)
        med = statistics.median(r[1] for r in rs)
        mean = statistics.median(r[2] for r in rs)
        worked = statistics.median(r[3] for r in rs)
        print(
            f"| {name:<22} | {worked * 1e6:>7.1f} | {it * 1e6:>16.1f} | {med * 1e6:>16.1f} "
            f"| {mean * 1e6:>14.1f} | {base / it:>13.2f}x |"
        )


if __name__ == "__main__":
    main()
