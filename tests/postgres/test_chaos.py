"""Many machines on one PostgreSQL server under fire (issue 27): worker processes
SIGKILLed, their connections cut with ``pg_terminate_backend``, the server restarted
mid-run -- every execution SUCCEEDED, none lost, no recorded success ran again.

The run itself is ``benchmarks/postgres_chaos.py`` (its docstring states the rule
checked); a smaller run here in the default run, the acceptance run (4 workers x 200
executions x 20 steps, 10 kills, 3 cuts, 1 restart) marked slow. Before them, one
test for each weakness such a run found:

- a lease whose release failed on a cut connection or a restarting server stayed
  held by a live worker until it expired (30 s): the release is retried;
- a worker's loop exited on a lost connection (``due``, ``next_wake``, the LISTEN
  wait of a single-threaded worker) and a worker started while the server restarts
  exited at once: it waits for the server and polls meanwhile;
- a connection the server ended (``pg_terminate_backend``: 57P01) is replaced at the
  next use by the store, the group commit (whose batch fails as retryable: whether
  it committed is unknown) and the LISTEN connection (checked here; it already was);
- an invocation ended by a lost connection was recorded as a failed invocation
  (``durable_gen.StoreError``), counted toward the failures that end an execution.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import psycopg
import pytest

from benchmarks import postgres_chaos
from durable_gen import DurableEngine, Step
from durable_gen._core.errors import StoreError
from durable_gen._core.log import OperationAction
from durable_gen._stores.postgres import PostgresStore
from durable_gen._stores.postgres.schema import lost_connection
from tests._procs import cli, cli_env, read_log, spawn, stop, wait_until
from tests.store_contract.test_engine_store import T0, step

from . import _server


def _cluster() -> _server.Cluster:
    cluster = _server.cluster()
    if cluster is None:
        pytest.skip("restarts the server: needs the tests' own cluster, not $DURABLE_GEN_PG_URL")
    return cluster


def _terminate(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def _lease(url: str, execution_id: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT lease_owner FROM durable_gen.executions WHERE id = %s", (execution_id,)
        ).fetchone()
    assert row is not None
    return row[0]


def _step(name: str) -> Any:
    return step(name, OperationAction.START)


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url)
    yield s
    s.close()


# ---------------------------------------------------------------------- the weak spots


def test_a_connection_ended_by_the_server_counts_as_lost(pg_url):
    conn = psycopg.connect(pg_url, autocommit=True)
    try:
        _ = conn.execute("SELECT 1")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT 1")
        assert lost_connection(conn, e.value)
    finally:
        conn.close()
    other = psycopg.connect(pg_url, autocommit=True)
    try:
        with pytest.raises(psycopg.Error) as e:
            other.execute("SELECT 1/0")
        assert not lost_connection(other, e.value)  # a failed statement: the connection lives
    finally:
        other.close()


def test_a_release_over_a_cut_connection_lets_go_of_the_lease(pg_url, store):
    store.create("ex1", "null", T0)
    store.acquire("ex1", T0)
    assert _lease(pg_url, "ex1") == store.owner
    assert _terminate(pg_url, "durable_gen") >= 1
    store.release("ex1", T0)
    assert _lease(pg_url, "ex1") is None  # not left to expire


def test_a_release_while_the_server_restarts_lets_go_of_the_lease(pg_url, store):
    cluster = _cluster()
    store.create("ex1", "null", T0)
    store.acquire("ex1", T0)
    cluster.stop("immediate")
    starter = threading.Timer(0.5, cluster.start)
    starter.start()
    try:
        store.release("ex1", T0)  # retried until the server is back
    finally:
        starter.join()
    assert _lease(pg_url, "ex1") is None


def test_a_group_commit_whose_connection_is_cut_fails_retryably_then_reconnects(pg_url, store):
    a, b = store.clone(), store.clone()  # one group commit
    try:
        for s, ex in ((a, "ex1"), (b, "ex2")):
            s.create(ex, "null", T0)
            s.acquire(ex, T0)
        a.checkpoint("ex1", [_step("s0")], T0, durable=True)  # the group's connection exists
        assert _terminate(pg_url, "durable_gen group") == 1
        with pytest.raises(StoreError) as e:
            a.checkpoint("ex1", [_step("s1")], T0, durable=True)
        assert e.value.retryable
        # the next writes go through on a new connection, the lease still held
        a.acquire("ex1", T0)
        a.checkpoint("ex1", [_step("s1")], T0, durable=True)
        b.checkpoint("ex2", [_step("s0")], T0, durable=True)
        assert {"s0", "s1"} <= set(store.load("ex1"))
        assert "s0" in store.load("ex2")
    finally:
        a.close()
        b.close()


def test_the_listen_connection_is_replaced_after_a_cut(pg_url, store):
    starter = PostgresStore(pg_url)
    try:
        assert store.wait_for_work(0) is False  # listening
        assert _terminate(pg_url, "durable_gen listen") == 1
        time.sleep(0.2)
        errors: list[StoreError] = []
        try:
            store.wait_for_work(0.2)
        except StoreError as e:  # the cut may be seen here: said once
            errors.append(e)
        assert all(e.retryable for e in errors)
        store.wait_for_work(0)
        starter.create("ex1", "null", T0)
        assert wait_until(lambda: store.wait_for_work(0.5), 10, "the NOTIFY of a start")
    finally:
        starter.close()


def _flaky_flow(event: Any) -> Generator[Any, Any, str]:
    yield Step(lambda: 1, name="a")
    yield Step(lambda: 2, name="b")
    return "done"


def test_an_invocation_ended_by_a_lost_connection_is_not_a_failed_invocation(pg_url, store):
    engine = DurableEngine(store)
    with engine:
        engine.start(_flaky_flow, None, execution_id="ex1")
        real = store.checkpoint
        calls = collections.Counter[str]()

        def checkpoint(execution_id: str, updates: Any, *args: Any, **kw: Any) -> Any:
            if any(u.name == "b" for u in updates) and not calls["cut"]:
                calls["cut"] += 1
                raise StoreError("lost the connection (a test)", retryable=True)
            return real(execution_id, updates, *args, **kw)

        store.checkpoint = checkpoint  # type: ignore[method-assign]
        with pytest.raises(StoreError):
            engine.resume(_flaky_flow, "ex1")
        store.checkpoint = real  # type: ignore[method-assign]
        completed = [e for e in store.history("ex1") if e["EventType"] == "InvocationCompleted"]
        assert [e["InvocationCompletedDetails"].get("Error") for e in completed] == [None]
        assert engine.resume(_flaky_flow, "ex1").status == "SUCCEEDED"


def test_a_worker_rides_out_a_server_restart_and_waits_for_it_at_start(pg_url, tmp_path):
    cluster = _cluster()
    env = cli_env(**{postgres_chaos.ENV_LOG: str(tmp_path / "steps")})
    args = ("--db", pg_url, "worker", "--poll", "0.2")
    with DurableEngine(PostgresStore(pg_url)):
        pass  # the schema exists before the server goes away
    one = spawn(cli(*args), tmp_path, "one", env=env)  # single-threaded: its own loop
    pool = spawn(cli(*args, "--concurrency", "4"), tmp_path, "pool", env=env)
    late = None
    try:
        time.sleep(1.5)  # both started and idle
        cluster.stop("immediate")
        late = spawn(cli(*args, "--concurrency", "2"), tmp_path, "late", env=env)
        wait_until(
            lambda: "waiting up to 30 s for it" in read_log(tmp_path, "late"),
            timeout=30,
            what="the late worker to wait for the server",
            interval=0.1,
        )
        time.sleep(0.5)  # meanwhile the two idle ones poll a server that is gone
        cluster.start()
        with DurableEngine(PostgresStore(pg_url)) as engine:
            for n in range(12):
                engine.start(
                    postgres_chaos.flow,
                    {"id": f"ex{n}", "steps": 3},
                    execution_id=f"ex{n}",
                    target=postgres_chaos.TARGET,
                )
            wait_until(
                lambda: len(engine.store.executions(status="SUCCEEDED", limit=20)) == 12,
                timeout=60,
                what="every execution to succeed after the restart",
                interval=0.1,
            )
        for proc in (one, pool, late):
            assert proc.poll() is None, read_log(tmp_path, "one") + read_log(tmp_path, "pool")
    finally:
        for proc in (one, pool, late):
            if proc is not None:
                stop(proc)
    for name in ("one", "pool", "late"):
        assert "Traceback" not in read_log(tmp_path, name)


# ---------------------------------------------------------------------- the runs


def _chaos(pg_url: str, tmp_path: Any, **sizes: int) -> postgres_chaos.ChaosReport:
    cluster = _cluster()
    report = postgres_chaos.run(
        pg_url, tmp_path, restart_server=cluster.restart, timeout=300, **sizes
    )
    print(report.table())
    assert report.problems == [], report.table()
    assert report.lost == 0
    assert report.rerun_recorded == 0
    assert report.succeeded == report.executions
    assert report.duplicates <= report.duplicate_bound
    return report


def test_two_workers_under_kills_cuts_and_a_restart_lose_nothing(pg_url, tmp_path):
    _chaos(
        pg_url,
        tmp_path,
        workers=2,
        executions=40,
        steps=10,
        kills=3,
        cuts=1,
        restarts=1,
        concurrency=4,
    )


@pytest.mark.slow
def test_four_workers_200_executions_of_20_steps_under_fire(pg_url, tmp_path):
    _chaos(
        pg_url,
        tmp_path,
        workers=4,
        executions=200,
        steps=20,
        kills=10,
        cuts=3,
        restarts=1,
        concurrency=8,
    )
