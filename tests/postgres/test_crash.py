"""Two worker processes on one PostgreSQL database, one SIGKILLed mid-run and restarted:
every execution ends once, every recorded step ran once, none is stuck.

50 executions of 10 steps (``_crash_wf``), two ``durable-gen worker --concurrency 4``
processes (their step results group-committed). When a fifth of the steps ran, one
worker is killed with SIGKILL and started again. Then:

- every execution SUCCEEDED, with one ExecutionSucceeded event and one StepSucceeded
  per step;
- the run of each step whose result was recorded appears once in the step log (a
  recorded success never ran again);
- the only runs not recorded are the killed worker's, at most one per thread (steps
  it was running when it died, whose result never became durable);
- the killed worker's leases were taken over by proof of its death (its advisory
  lock gone), and its interrupted invocations ended with ``Runtime.ExitError``.
"""

from __future__ import annotations

import collections
import json
import signal

from durable_gen import DurableEngine
from durable_gen._stores.postgres import PostgresStore
from tests._procs import cli, cli_env, kill, read_log, spawn, stop, wait_until

from . import _crash_wf

EXECUTIONS = 50
CONCURRENCY = 4


def _lines(path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_killed_worker_loses_nothing_and_reruns_no_recorded_step(pg_url, tmp_path):
    log = tmp_path / "steps"
    env = cli_env(DG_STEP_LOG=str(log))
    with DurableEngine(PostgresStore(pg_url)) as engine:
        for n in range(EXECUTIONS):
            engine.start(
                _crash_wf.flow,
                {"id": f"ex{n}"},
                execution_id=f"ex{n}",
                target="tests.postgres._crash_wf:flow",
            )

    def worker(name: str):
        args = ("--db", pg_url, "worker", "--poll", "0.1", "--concurrency", str(CONCURRENCY))
        return spawn(cli(*args), tmp_path, name, env=env)

    a, b = worker("a"), worker("b")
    restarted = None
    try:
        wait_until(
            lambda: len(_lines(log)) >= EXECUTIONS * _crash_wf.STEPS // 5,
            timeout=120,
            what="a fifth of the steps to run",
            interval=0.01,
        )
        killed_pid = a.pid
        kill(a)  # SIGKILL: no cleanup, its leases left behind
        restarted = worker("a2")
        store = PostgresStore(pg_url)
        try:
            wait_until(
                lambda: len(store.executions(status="SUCCEEDED", limit=EXECUTIONS)) == EXECUTIONS,
                timeout=180,
                what="every execution to succeed",
                interval=0.2,
            )
            infos = store.executions(limit=EXECUTIONS + 1)
            histories = {i.id: store.history(i.id) for i in infos}
            results = {i.id: store.info(i.id).result for i in infos}
        finally:
            store.close()
    finally:
        for proc in (b, restarted):
            if proc is not None:
                stop(proc, signal.SIGTERM)
        kill(a)
    assert len(infos) == EXECUTIONS
    assert {i.status for i in infos} == {"SUCCEEDED"}

    recorded: dict[tuple[str, str], str] = {}
    exit_errors = 0
    for ex, events in histories.items():
        kinds = collections.Counter(e["EventType"] for e in events)
        assert kinds["ExecutionSucceeded"] == 1, (ex, kinds)
        assert kinds["StepSucceeded"] == _crash_wf.STEPS, (ex, kinds)
        names = [e["Name"] for e in events if e["EventType"] == "StepSucceeded"]
        assert names == [f"s{i}" for i in range(_crash_wf.STEPS)]
        tokens = json.loads(results[ex])
        for i, token in enumerate(tokens):
            recorded[(ex, str(i))] = token
        exit_errors += sum(
            1
            for e in events
            if e["EventType"] == "InvocationCompleted"
            and e["InvocationCompletedDetails"].get("Error", {}).get("Payload", {}).get("ErrorType")
            == "Runtime.ExitError"
        )
    runs = _lines(log)
    by_token = collections.Counter(token for _, _, _, token in runs)
    # every recorded run of a step appears once: a recorded success never ran again
    for key, token in recorded.items():
        assert by_token[token] == 1, (key, token)
    mine = set(recorded.values())
    unrecorded = [(ex, i, pid) for ex, i, pid, token in runs if token not in mine]
    # runs whose result was not recorded: only the killed worker's, one per thread at most
    assert all(pid == str(killed_pid) for _, _, pid in unrecorded), unrecorded
    assert len(unrecorded) <= CONCURRENCY, unrecorded
    # each such step ran again and was recorded then
    assert all((ex, i) in recorded for ex, i, _ in unrecorded)
    # the kill landed mid-invocation: those invocations were ended by the takeover
    assert exit_errors >= 1
    assert "Traceback" not in read_log(tmp_path, "b") + read_log(tmp_path, "a2")
