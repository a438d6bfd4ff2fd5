"""Steps per second on PostgreSQL: durable_gen beside DBOS on the same server (issue 27).

``python -m benchmarks.postgres_vs_dbos [--rounds 3] [--workflows 100] [--steps 20]
[--sequential 5000] [--concurrency 8] [--queue-poll 0.05]``

The throughput issue's scenarios (``benchmarks.throughput``, ``benchmarks/RESULTS.md``
"Throughput vs DBOS"), here with both libraries on ONE PostgreSQL server: the tests'
throw-away cluster (``tests/postgres/_server``: ``initdb`` from the installed binaries,
``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``), or
``$DURABLE_GEN_PG_URL``. The settings are read back with ``SHOW`` (on a plain
connection, and on each library's own connections in every run) and printed.

Every run is a fresh process with a fresh database on that server; rounds interleave
the libraries. The workload is the throughput issue's: N steps of ``noop(i)`` (returns
its argument), summed; the results are checked.

- **W x S across executions** (default 100 x 20). Timed from just before the first
  start until every execution has ended (both libraries' starts are inside the clock).

  * durable_gen: ``DurableEngine(PostgresStore(url))``, ``engine.start`` W times,
    then ``engine.work(once=True, concurrency=C, poll_seconds=0.05)`` in the same
    process: a pool of C threads, each with its own store handle (a clone: its own
    connection and lease owner), their step results written together (group commit).
  * DBOS ``start_workflow``: ``DBOS.start_workflow`` for each, under
    ``SetWorkflowID``; DBOS hands each to its executor, a ``ThreadPoolExecutor``
    of ``max_executor_threads`` threads -- default ``sys.maxsize``, left as is: one
    thread per workflow, no bound. Its system database's SQLAlchemy pool is DBOS's
    default (``pool_size=20``, ``max_overflow=0``).
  * DBOS queue: ``DBOS.register_queue("bench", worker_concurrency=C,
    polling_interval_sec=QUEUE_POLL)`` (default 0.05 s; DBOS's own default is 1 s,
    which would make the figure its sleep), registered and its worker thread running
    before the clock, then ``DBOS.enqueue_workflow`` for each: the same bound (C) as
    durable_gen's pool, and like durable_gen's start each start is a durable row
    first. Results are awaited with ``handle.get_result(polling_interval_sec=0.05)``
    (its default is 1 s), so a figure is at most 50 ms late.

- **One execution of N sequential steps** (default 5,000): durable_gen
  ``engine.run(steps, N)``; DBOS the ``@DBOS.workflow()`` called directly (it runs in
  the calling thread). Timed: the run alone.

Both sides are timed after their set-up and a 10-step warm-up workflow (DBOS:
``DBOS.launch()``; durable_gen: the store opened and its schema made).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

QUEUE = "bench"
POLL = 0.05  # handle.get_result() polling of DBOS's handles
TARGET = "benchmarks.throughput:steps"
SHOW = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _show(conn: Any, names: tuple[str, ...] = (*SHOW, "transaction_isolation")) -> dict[str, str]:
    return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}


# -- children: one run each, in a fresh process, JSON out ------------------------------


def dg_child(url: str, scenario: str, n: int, steps_each: int, concurrency: int) -> dict[str, Any]:
    from benchmarks.throughput import steps
    from durable_gen import DurableEngine
    from durable_gen._stores.postgres import PostgresStore
    from durable_gen._stores.postgres.schema import connect

    store = PostgresStore(url)
    conn = connect(url, store.schema)  # a connection as the store makes its own
    settings = _show(conn)
    conn.close()
    with DurableEngine(store) as engine:
        warm = engine.run(steps, 10, execution_id="warm-up")
        if warm.status != "SUCCEEDED" or warm.result != 45:
            raise AssertionError(f"warm-up ended {warm.status}: {warm.error}")
        if scenario == "sequential":
            t0 = time.perf_counter()
            result = engine.run(steps, n, execution_id="seq")
            seconds = time.perf_counter() - t0
            if result.status != "SUCCEEDED" or result.result != n * (n - 1) // 2:
                raise AssertionError(f"run ended {result.status}: {result.error}")
            total = n
        else:
            t0 = time.perf_counter()
            ids = [
                engine.start(steps, steps_each, execution_id=f"b{k}", target=TARGET)
                for k in range(n)
            ]
            engine.work(once=True, concurrency=concurrency, poll_seconds=0.05)
            seconds = time.perf_counter() - t0
            expected = steps_each * (steps_each - 1) // 2
            for ex in ids:
                status, payload, error = store.status(ex)
                if status != "SUCCEEDED" or payload is None or int(payload) != expected:
                    raise AssertionError(f"{ex} ended {status}: {payload} {error}")
            total = n * steps_each
        group = store.shared_group()
        per_commit = group.writes / group.commits if group.commits else None
    return {
        "steps_per_s": total / seconds,
        "seconds": seconds,
        "per_commit": per_commit,
        **settings,
    }


def dbos_child(base: str, scenario: str, n: int, steps_each: int, concurrency: int, poll: float):
    from dbos import DBOS, SetWorkflowID

    from benchmarks.peers.dbos_peer import _drop_postgres, _launch, _warm_up

    with tempfile.TemporaryDirectory() as d:
        fns, where = _launch(d, f"pg={base}")
        try:
            import sqlalchemy as sa
            from dbos._dbos import _get_dbos_instance  # private: the launched instance

            engine = _get_dbos_instance()._sys_db.engine
            with engine.connect() as c:
                settings = {
                    k: str(c.execute(sa.text(f"SHOW {k}")).scalar())
                    for k in (*SHOW, "transaction_isolation")
                }
            _warm_up(fns)
            if scenario == "sequential":
                t0 = time.perf_counter()
                total = fns["steps"](n)
                seconds = time.perf_counter() - t0
                if total != n * (n - 1) // 2:
                    raise AssertionError(f"DBOS workflow returned {total}")
                total = n
            else:
                if scenario == "queue":
                    DBOS.register_queue(
                        QUEUE, worker_concurrency=concurrency, polling_interval_sec=poll
                    )
                    deadline = time.monotonic() + 10
                    while not any(t.name == f"queue-worker-{QUEUE}" for t in threading.enumerate()):
                        if time.monotonic() > deadline:
                            raise AssertionError("DBOS did not start a worker for the queue")
                        time.sleep(0.01)
                t0 = time.perf_counter()
                handles = []
                for k in range(n):
                    with SetWorkflowID(f"bench-{k}"):
                        if scenario == "queue":
                            handles.append(DBOS.enqueue_workflow(QUEUE, fns["steps"], steps_each))
                        else:
                            handles.append(DBOS.start_workflow(fns["steps"], steps_each))
                results = [h.get_result(polling_interval_sec=POLL) for h in handles]
                seconds = time.perf_counter() - t0
                if results != [steps_each * (steps_each - 1) // 2] * n:
                    raise AssertionError(f"DBOS results: {results[:5]}...")
                total = n * steps_each
        finally:
            DBOS.destroy()
            _drop_postgres(where["url"])
    return {"steps_per_s": total / seconds, "seconds": seconds, **settings}


# -- the parent ------------------------------------------------------------------------


def _child(*args: Any, timeout: float = 300) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.postgres_vs_dbos", "child", *map(str, args)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        cmd, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[3:])} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["child"]:
        lib, where, scenario, n, s, c = args[1:7]
        if lib == "dg":
            out = dg_child(where, scenario, int(n), int(s), int(c))
        else:
            out = dbos_child(where, scenario, int(n), int(s), int(c), float(args[7]))
        print(json.dumps(out))
        return {}
    p = argparse.ArgumentParser(prog="python -m benchmarks.postgres_vs_dbos")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workflows", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--sequential", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--queue-poll", type=float, default=0.05)
    p.add_argument("--no-dbos", action="store_true", help="durable_gen only")
    a = p.parse_args(args)

    import psycopg

    from tests.postgres import _server

    admin = _server.server()
    with psycopg.connect(admin, autocommit=True) as conn:
        settings = _show(conn, SHOW)
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    load = os.getloadavg()
    print(
        f"server: PostgreSQL {version}, "
        + ", ".join(f"{k}={v}" for k, v in settings.items())
        + f"; {os.cpu_count()} CPUs shared by the server and the benchmark; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    # DBOS's URL: SQLAlchemy with psycopg 3, the database named per run by the peer
    query = admin.partition("?")[2]
    dbos_base = "postgresql+psycopg://postgres@/" + (f"?{query}" if query else "")
    if os.environ.get(_server.ENV_URL):
        dbos_base = admin.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0]
    w, s, c, seq = a.workflows, a.steps, a.concurrency, a.sequential
    jobs: list[tuple[str, str, tuple[Any, ...]]] = [
        ("dg", "fanout", (w, s, c)),
        ("dg", "sequential", (seq, 0, 1)),
    ]
    if not a.no_dbos:
        jobs[1:1] = [
            ("dbos", "start", (w, s, c, a.queue_poll)),
            ("dbos", "queue", (w, s, c, a.queue_poll)),
        ]
        jobs.append(("dbos", "sequential", (seq, 0, 1, a.queue_poll)))
    samples: dict[str, list[dict[str, Any]]] = {f"{lib} {sc}": [] for lib, sc, _ in jobs}
    t_start = time.monotonic()
    for r in range(a.rounds):
        for lib, scenario, rest in jobs:
            where = _server.fresh_database("bench") if lib == "dg" else dbos_base
            out = _child(lib, where, scenario, *rest)
            samples[f"{lib} {scenario}"].append(out)
            print(
                f"round {r + 1} {lib:4} {scenario:10} {out['steps_per_s']:7,.0f} steps/s "
                f"({out['seconds']:.2f} s)",
                flush=True,
            )
    wall = time.monotonic() - t_start

    def rates(key: str) -> list[float]:
        return [o["steps_per_s"] for o in samples.get(key, [])]

    def ratio(a_key: str, b_key: str) -> str:
        if not samples.get(b_key):
            return "n/a"
        return f"{statistics.median(rates(a_key)) / statistics.median(rates(b_key)):.2f}x"

    def dbos(key: str) -> str:
        return _cell(rates(key)) if samples.get(key) else "n/a"

    fan = f"{w} x {s} across executions"
    print(
        f"\n| scenario (steps/s, median (min-max) of {a.rounds} fresh processes) "
        "| durable_gen | DBOS | durable_gen/DBOS |"
    )
    print("|---|---:|---:|---:|")
    print(
        f"| {fan}: durable_gen pool of {c} / DBOS `start_workflow` (a thread per "
        f"workflow) | {_cell(rates('dg fanout'))} | {dbos('dbos start')} "
        f"| {ratio('dg fanout', 'dbos start')} |"
    )
    print(
        f"| {fan}: durable_gen pool of {c} / DBOS queue, worker_concurrency={c}, "
        f"polling {a.queue_poll:g} s | {_cell(rates('dg fanout'))} | {dbos('dbos queue')} "
        f"| {ratio('dg fanout', 'dbos queue')} |"
    )
    print(
        f"| one execution of {seq:,} sequential steps | {_cell(rates('dg sequential'))} "
        f"| {dbos('dbos sequential')} | {ratio('dg sequential', 'dbos sequential')} |"
    )
    per = [o["per_commit"] for o in samples["dg fanout"] if o.get("per_commit")]
    if per:
        print(
            f"\ndurable_gen {fan}: step results per group commit "
            + " ".join(f"{x:.1f}" for x in per)
        )
    for key, runs in samples.items():
        seen = {k: runs[0][k] for k in (*SHOW, "transaction_isolation")}
        if any({k: o[k] for k in seen} != seen for o in runs):
            print(f"PROBLEM: {key}: the settings changed between runs")
        print(
            f"{key}: read on its own connection: " + ", ".join(f"{k}={v}" for k, v in seen.items())
        )
    print(f"\nwall time of the rounds: {wall:.0f} s")
    return samples


if __name__ == "__main__":
    main()
