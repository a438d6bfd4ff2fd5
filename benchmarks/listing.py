"""Listing a page of executions from a database of 100,000 (issue 22, "scale").

    python -m benchmarks.listing [--executions N] [--repeat R]

Fills a fresh database with N executions (``SqliteStore.create``; a tenth of them
left RUNNING, the rest ended SUCCEEDED or FAILED), then times the store's listing
calls as ``durable-gen list`` makes them -- a page of 50 newest first, filtered by
status, by id prefix, and the next page through its marker -- and the whole
``durable-gen list`` process. Prints one Markdown table of medians (ms). The
database is filled with ``synchronous=NORMAL`` to save time (only the setup); every
timed call reads.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from durable_gen._stores.sqlite import SqliteStore


def fill(path: Path, n: int) -> None:
    store = SqliteStore(path, synchronous="NORMAL")
    conn = store._conn
    conn.execute("BEGIN IMMEDIATE")
    for i in range(n):  # one transaction: the setup is not what is measured
        status = "RUNNING" if i % 10 == 0 else ("FAILED" if i % 10 == 1 else "SUCCEEDED")
        conn.execute(
            "INSERT INTO executions (id, target, status, input, created_at, updated_at, "
            "wake_at, code_version) VALUES (?, 'benchmarks.throughput:steps', ?, 'null', ?, ?, "
            "NULL, 'v1')",
            (f"job-{i:06d}", status, 1_767_225_600_000 + i, 1_767_225_600_000 + i),
        )
    conn.execute("COMMIT")
    store.close()


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "list.db"
        started = time.perf_counter()
        fill(db, args.executions)
        print(f"filled {args.executions:,} executions in {time.perf_counter() - started:.1f} s")
        store = SqliteStore(db, create=False)
        page = store.executions(limit=50)
        marker = store.page_marker(page[-1])
        rows = [
            ("a page of 50, newest first", lambda: store.executions(limit=50)),
            ("a page of 50 RUNNING", lambda: store.executions(limit=50, status="RUNNING")),
            (
                "a page of 50 FAILED, by id prefix",
                lambda: store.executions(limit=50, status="FAILED", name_prefix="job-09"),
            ),
            ("the next page (its marker)", lambda: store.executions(limit=50, after=marker)),
            ("one execution by id", lambda: store.info("job-050000")),
        ]
        print(f"\n| {args.executions:,} executions | median ms ({args.repeat} runs) |")
        print("|---|---:|")
        for name, fn in rows:
            print(f"| {name} | {_median_ms(fn, args.repeat):.3f} |")
        store.close()
        cmd = [sys.executable, "-m", "durable_gen", "list", "--db", str(db), "--limit", "50"]
        whole = _median_ms(lambda: subprocess.run(cmd, check=True, capture_output=True), 5)
        print(f"| `durable-gen list` (whole process, 5 runs) | {whole:.1f} |")


if __name__ == "__main__":
    main()
