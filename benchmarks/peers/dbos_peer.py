"""DBOS Transact (pip ``dbos``, 3.x) on a SQLite system database: the throughput scenarios.

    python -m benchmarks.peers.dbos_peer [--runs 3] [--sizes 1000,5000]
        [--workflows 100] [--steps 20] [--concurrency 32]
    python -m benchmarks.peers.dbos_peer child sequential N [wal] # one run, JSON out
    python -m benchmarks.peers.dbos_peer child fanout W S MODE C  # MODE: queue | start

The same workloads durable_gen runs in ``benchmarks.throughput``, written the way
DBOS's README writes them: ``@DBOS.step()`` on ``noop(i)`` (returns its
argument), ``@DBOS.workflow()`` on a loop calling it N times and summing the
results; DBOS's default serializer; its system database a SQLite file in a fresh
temporary directory (``system_database_url="sqlite:///..."``, no server). DBOS
keeps global state (one ``DBOS`` instance per process), so every run is a fresh
child process; the parent reports medians.

Scenarios:

(a) ``sequential N``: one workflow of N steps, called directly (DBOS runs it in
    the calling thread). Timed: the workflow call, after ``DBOS.launch()`` and a
    warm-up workflow. Also reported: the child's whole wall time (import, launch,
    warm-up, run, ``DBOS.destroy()``) as measured by the parent.
(b) ``fanout W S MODE C``: W workflows of S steps, started and then executed
    concurrently by DBOS itself.

    * ``queue`` (the figure ``benchmarks.throughput`` uses for DBOS): a queue
      registered with ``DBOS.register_queue(name, worker_concurrency=C)`` and the
      default polling interval (1 s), each workflow enqueued with
      ``DBOS.enqueue_workflow`` under ``SetWorkflowID``. This is what DBOS's
      README and queue tutorial give for "run many tasks concurrently with flow
      control", and it matches durable_gen's scenario: every start is a durable
      row first, and executors take them from the database with a bounded number
      running at once. The queue is registered (and its worker thread running)
      before the clock starts, as an application registers its queues at launch.
    * ``start``: ``DBOS.start_workflow`` for each, under ``SetWorkflowID``. DBOS
      records the workflow and hands it to its executor thread pool, whose size
      is ``max_executor_threads`` (default ``sys.maxsize``: one thread per
      workflow, no bound), so this is DBOS's own unbounded concurrency.

    Timed: from just before the first start until every ``handle.get_result()``
    has returned, polling every 50 ms (``POLL``; the default is 1 s) for enqueued
    workflows, so the figure is at most 50 ms late. (DBOS's own ``completed_at``
    cannot serve: on SQLite its timestamps have whole-second resolution.) Checked:
    every result is right.
(c) peak RSS: the child's ``ru_maxrss`` from ``os.wait4``, the child forked by a
    small launcher process (see ``_LAUNCHER`` for why not straight from the
    benchmark); for ``sequential 5000`` that is a fresh process that launched
    DBOS, ran a warm-up and the 5,000-step workflow. The child also reports its
    own ``getrusage(RUSAGE_SELF).ru_maxrss`` and ``/proc/self/status`` VmHWM.

Durability, read live in every child (not typed): ``PRAGMA journal_mode`` and
``PRAGMA synchronous`` on a connection of DBOS's own system-database engine, and
the isolation level DBOS sets on its DB-API connections. DBOS sets neither
pragma (``dbos/_sys_db_sqlite.py``, ``set_sqlite_immediate``: only
``isolation_level = "IMMEDIATE"``, ``busy_timeout`` and ``foreign_keys``), so
SQLite's defaults apply: a rollback journal (``delete``) and ``synchronous=2``
(FULL). A step's output is written by ``SystemDatabase.record_operation_result``
in its own ``engine.begin()`` transaction, committed before the step call
returns (``dbos/_core.py``, ``invoke_step.record_step_result``); the child checks
that from the outside too: in a probe workflow every step counts, over an
independent ``sqlite3`` connection, the step rows already committed for its
workflow, and must see all previous steps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from . import PeerUnavailable, noop

NAME = "DBOS"
QUEUE = "bench"
POLL = 0.05  # seconds between handle.get_result() polls of an enqueued workflow
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return f"dbos {v('dbos')} (SQLAlchemy {v('sqlalchemy')}, SQLite {sqlite3.sqlite_version})"
    except PackageNotFoundError as e:
        raise PeerUnavailable(f"dbos is not installed ({e}); pip install -e '.[bench]'") from e


def available() -> None:
    """Raise PeerUnavailable unless dbos can be imported here."""
    try:
        import dbos  # noqa: F401
    except ImportError as e:
        raise PeerUnavailable(f"dbos is not installed ({e}); pip install -e '.[bench]'") from e


# -- the child: one run in a fresh process ---------------------------------------------


def _launch(directory: str, journal: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Define the step and workflows, launch DBOS on a SQLite file; (functions, db file).

    ``journal="wal"`` creates the file in WAL mode before DBOS opens it (WAL is a
    persistent property of the file): not DBOS's default, a what-if row.
    ``journal="pg=URL"``: a Postgres system database instead (a fresh database
    named after the temporary directory on the server at URL, dropped after)."""
    from dbos import DBOS

    @DBOS.step()
    def noop_step(i: int) -> int:
        return noop(i)

    @DBOS.workflow()
    def steps(n: int) -> int:
        total = 0
        for i in range(n):
            total += noop_step(i)
        return total

    path = os.path.join(directory, "dbos_sys.sqlite")
    url = f"sqlite:///{path}"
    if journal is not None and journal.startswith("pg="):
        base, _, query = journal[3:].partition("?")
        name = "dbos_bench_" + os.path.basename(directory).lower().replace("-", "_")
        url = f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else "")
    elif journal is not None:
        pre = sqlite3.connect(path)
        mode = pre.execute(f"PRAGMA journal_mode = {journal}").fetchone()[0]
        pre.close()
        if mode != journal:
            raise AssertionError(f"could not set journal_mode={journal}: {mode}")

    @DBOS.step()
    def committed_steps(i: int) -> int:
        # Rows of this workflow's steps already committed, seen from outside DBOS.
        if not url.startswith("sqlite"):
            return -1  # the probe is for SQLite files
        conn = sqlite3.connect(path)
        try:
            return conn.execute(
                "SELECT COUNT(*) FROM operation_outputs WHERE workflow_uuid = ?",
                (DBOS.workflow_id,),
            ).fetchone()[0]
        finally:
            conn.close()

    @DBOS.workflow()
    def probe(n: int) -> list[int]:
        return [committed_steps(i) for i in range(n)]

    DBOS(
        config={
            "name": "durable-gen-bench",
            "system_database_url": url,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    return {"steps": steps, "probe": probe}, {"path": path, "url": url}


def _drop_postgres(url: str) -> None:
    """Drop the per-run Postgres database (nothing for SQLite: its directory goes)."""
    if url.startswith("sqlite"):
        return
    import sqlalchemy as sa

    u = sa.make_url(url)
    engine = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _durability() -> dict[str, Any]:
    """journal_mode, synchronous and isolation level of DBOS's own engine connections."""
    import sqlalchemy as sa
    from dbos._dbos import _get_dbos_instance  # private: the launched instance

    engine = _get_dbos_instance()._sys_db.engine
    if engine.dialect.name != "sqlite":
        with engine.connect() as c:
            show = {
                k: c.execute(sa.text(f"SHOW {k}")).scalar()
                for k in ("fsync", "synchronous_commit", "wal_sync_method", "transaction_isolation")
            }
            version = c.execute(sa.text("SHOW server_version")).scalar()
        return {
            "journal_mode": f"Postgres {version} WAL, wal_sync_method={show['wal_sync_method']}",
            "synchronous": f"fsync={show['fsync']}, synchronous_commit="
            f"{show['synchronous_commit']}",
            "isolation_level": str(show["transaction_isolation"]),
        }
    with engine.connect() as c:
        journal = c.execute(sa.text("PRAGMA journal_mode")).scalar()
        sync = c.execute(sa.text("PRAGMA synchronous")).scalar()
        isolation = c.connection.dbapi_connection.isolation_level
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {
        "journal_mode": str(journal),
        "synchronous": f"{sync} ({names.get(sync, '?')})",
        "isolation_level": isolation,
    }


def _warm_up(fns: dict[str, Any]) -> bool | None:
    """A 10-step workflow, and the probe: True if each step saw all previous ones committed."""
    if fns["steps"](10) != 45:
        raise AssertionError("DBOS warm-up workflow returned a wrong sum")
    seen = fns["probe"](5)
    if seen == [-1] * 5:
        return None  # not a SQLite file: no probe
    return seen == list(range(5))


def _rss_mib() -> dict[str, float | None]:
    """The child's own view: ``getrusage`` and the kernel's VmHWM of this address space."""
    hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {
        "self_ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vmhwm_mib": hwm,
    }


def child_sequential(n: int, journal: str | None = None) -> dict[str, Any]:
    from dbos import DBOS

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        fns, where = _launch(d, journal)
        try:
            durability = _durability()
            committed_first = _warm_up(fns)
            c0, t0 = time.process_time(), time.perf_counter()
            total = fns["steps"](n)
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - c0
            if total != n * (n - 1) // 2:
                raise AssertionError(f"DBOS workflow returned {total}")
            rss = _rss_mib()
        finally:
            DBOS.destroy()
            _drop_postgres(where["url"])
    return {
        "scenario": "sequential",
        "n": n,
        "seconds": seconds,
        "cpu_s": cpu,
        "steps_per_s": n / seconds,
        **rss,
        "step_committed_before_next": committed_first,
        **durability,
    }


def child_fanout(workflows: int, steps_each: int, mode: str, concurrency: int) -> dict[str, Any]:
    from dbos import DBOS, SetWorkflowID

    expected = steps_each * (steps_each - 1) // 2
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        fns, _ = _launch(d)
        try:
            durability = _durability()
            _warm_up(fns)
            if mode == "queue":
                DBOS.register_queue(QUEUE, worker_concurrency=concurrency)
                # An application registers its queues at launch; wait for DBOS's queue
                # manager (which looks for new queues every second) to start its thread.
                deadline = time.monotonic() + 10
                while not any(t.name == f"queue-worker-{QUEUE}" for t in threading.enumerate()):
                    if time.monotonic() > deadline:
                        raise AssertionError("DBOS did not start a worker for the queue")
                    time.sleep(0.01)
            t0_wall = time.time()
            handles = []
            for k in range(workflows):
                with SetWorkflowID(f"bench-{k}"):
                    if mode == "queue":
                        handles.append(DBOS.enqueue_workflow(QUEUE, fns["steps"], steps_each))
                    elif mode == "start":
                        handles.append(DBOS.start_workflow(fns["steps"], steps_each))
                    else:
                        raise ValueError(f"mode {mode!r}")
            started = time.time() - t0_wall
            results = [h.get_result(polling_interval_sec=POLL) for h in handles]
            seconds = time.time() - t0_wall
            if results != [expected] * workflows:
                raise AssertionError(f"DBOS results: {results[:5]}...")
            rss = _rss_mib()
        finally:
            DBOS.destroy()
    total = workflows * steps_each
    return {
        "scenario": "fanout",
        "mode": mode,
        "workflows": workflows,
        "steps": steps_each,
        "concurrency": concurrency if mode == "queue" else None,
        "start_seconds": started,
        "seconds": seconds,
        "steps_per_s": total / seconds,
        **rss,
        **durability,
    }


# -- the parent: fresh processes, medians ----------------------------------------------


#: A small process that forks, execs ``cmd`` and reports the child's ``os.wait4``
#: rusage. Why not ``subprocess`` from the benchmark itself: CPython spawns with
#: vfork, and on exec Linux folds the spawning address space's RSS high-water mark
#: into the child's ``ru_maxrss`` -- every child would report at least the
#: benchmark's own peak (75 MiB here). Forked from this launcher instead, a child's
#: ``ru_maxrss`` is at least the launcher's few MiB (``spawn_floor_mib``) and
#: otherwise its own peak.
_LAUNCHER = """
import json, os, resource, sys, time
cmd, out = json.loads(sys.argv[1]), sys.argv[2]
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(out, "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "wall": wall,
               "maxrss_kib": ru.ru_maxrss, "launcher_maxrss_kib": floor}, f)
"""


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
    }


def measured_run(cmd: list[str], timeout: float = 150) -> dict[str, Any]:
    """Run ``cmd`` (cwd: the repository) from the launcher above.

    Returns ``stdout``, ``stderr``, ``rc``, ``process_s`` (fork to exit, timed in
    the launcher) and ``rss_peak_mib`` (the child's ``ru_maxrss`` from ``wait4``).
    """
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "rusage.json")
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, json.dumps(cmd), report],
            cwd=_ROOT,
            env=env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode:
            raise RuntimeError(f"launcher failed ({proc.returncode}): {proc.stderr[-2000:]}")
        with open(report) as f:
            r = json.load(f)
    return {
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "rc": r["rc"],
        "process_s": r["wall"],
        "rss_peak_mib": r["maxrss_kib"] / 1024,
        "launcher_rss_mib": r["launcher_maxrss_kib"] / 1024,
    }


def spawn_floor_mib() -> float:
    """``ru_maxrss`` the launcher reports for ``/bin/true``: the floor of every figure."""
    return measured_run(["true"])["rss_peak_mib"]


def run_child(*args: Any, timeout: float = 150) -> dict[str, Any]:
    """One fresh process; its JSON, plus ``process_s`` and ``rss_peak_mib`` from wait4."""
    cmd = [sys.executable, "-m", "benchmarks.peers.dbos_peer", "child", *map(str, args)]
    run = measured_run(cmd, timeout)
    if run["rc"]:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {run['rc']}: {run['stderr'][-2000:]}")
    out = json.loads(run["stdout"].strip().splitlines()[-1])
    out["process_s"] = run["process_s"]
    out["rss_peak_mib"] = run["rss_peak_mib"]
    return out


def sequential(n: int, journal: str | None = None) -> dict[str, Any]:
    return run_child("sequential", n, *([journal] if journal else []))


def fanout(workflows: int, steps_each: int, mode: str = "queue", concurrency: int = 32) -> Any:
    return run_child("fanout", workflows, steps_each, mode, concurrency)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["child"]:
        kind = args[1]
        if kind == "sequential":
            out = child_sequential(int(args[2]), args[3] if len(args) > 3 else None)
        elif kind == "fanout":
            out = child_fanout(int(args[2]), int(args[3]), args[4], int(args[5]))
        else:
            raise SystemExit(f"unknown child scenario {kind!r}")
        print(json.dumps(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    ns = parser.parse_args(args)
    available()
    print(version())
    jobs: list[tuple[str, Any]] = [
        (f"sequential {n:,} steps", lambda n=n: sequential(n))
        for n in map(int, ns.sizes.split(","))
    ]
    big = max(map(int, ns.sizes.split(",")))
    jobs.append((f"sequential {big:,} steps, file in WAL mode", lambda: sequential(big, "wal")))
    for mode in ("queue", "start"):
        label = f"{ns.workflows} x {ns.steps}, {mode}"
        if mode == "queue":
            label += f" (worker_concurrency={ns.concurrency})"
        jobs.append(
            (
                label,
                lambda mode=mode: fanout(ns.workflows, ns.steps, mode, ns.concurrency),
            )
        )
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in jobs}
    for _ in range(ns.runs):
        for name, job in jobs:
            samples[name].append(job())
    first = next(iter(samples.values()))[0]
    print(
        f"durability: journal_mode={first['journal_mode']}, synchronous={first['synchronous']}, "
        f"isolation_level={first['isolation_level']}; "
        f"step committed before the next: {first.get('step_committed_before_next')}"
    )
    print(
        f"\n| scenario (median of {ns.runs} fresh processes) | steps/s | process s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|")
    for name, runs in samples.items():
        print(
            f"| {name} | {statistics.median(r['steps_per_s'] for r in runs):,.0f} "
            f"| {statistics.median(r['process_s'] for r in runs):,.2f} "
            f"| {statistics.median(r['rss_peak_mib'] for r in runs):,.1f} |"
        )


if __name__ == "__main__":
    main()
