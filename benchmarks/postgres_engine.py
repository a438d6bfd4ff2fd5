"""Steps per second of the durable engine's worker pool on PostgreSQL, with group commit
(``python -m benchmarks.postgres_engine [EXECUTIONS STEPS CONCURRENCY]``).

Starts EXECUTIONS executions of STEPS trivial steps, then one ``work(once=True,
concurrency=N)`` runs them all in this process; prints steps/s, and how many step
results each durable commit of the pool's group carried on average. The server is
the tests' throw-away cluster (``fsync=on``, ``synchronous_commit=on``) or
``$DURABLE_GEN_PG_URL``; the same run on a SQLite file is printed beside it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from durable_gen import DurableEngine, SqliteStore, Step
from durable_gen._stores.postgres import PostgresStore
from tests.postgres import _server

STEPS = 20


def add(a: int, b: int) -> int:
    return a + b


def flow(event: Any) -> Generator[Any, Any, int]:
    total = 0
    for i in range(STEPS):
        total = yield Step(add, total, i, name=f"s{i}")
    return total


def _bench(store: Any, name: str, executions: int, concurrency: int) -> None:
    with DurableEngine(store) as engine:
        for n in range(executions):
            engine.start(flow, None, execution_id=f"b{n}", target=f"{__name__}:flow")
        start = time.perf_counter()
        ended = engine.work(once=True, concurrency=concurrency, poll_seconds=0.05)
        elapsed = time.perf_counter() - start
        group = store.shared_group()
        per = group.writes / group.commits if group.commits else 0
        print(
            f"{name:9} {executions * STEPS / elapsed:7.0f} steps/s  ({ended} executions x "
            f"{STEPS} steps, concurrency {concurrency}, {elapsed:.2f} s; "
            f"{per:.1f} results per group commit)"
        )


def main() -> None:
    global STEPS
    executions, STEPS, concurrency = (int(a) for a in (sys.argv[1:] or ["200", "20", "8"]))
    _bench(PostgresStore(_server.fresh_database("bench")), "postgres", executions, concurrency)
    with tempfile.TemporaryDirectory() as d:
        _bench(SqliteStore(Path(d) / "b.db"), "sqlite", executions, concurrency)


if __name__ == "__main__":
    main()
