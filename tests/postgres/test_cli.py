"""The durable-gen command on PostgreSQL, end to end with real processes: ``run``,
``start``, a ``worker`` running beside them, ``callback``, ``list``, ``show`` and
``history`` -- all through ``--db postgresql://...`` or ``$DURABLE_GEN_DB``."""

from __future__ import annotations

import json
import signal
import time

from tests._procs import cli, cli_env, read_log, run_cli, spawn, stop, wait_until

WF = """
import os
from durable_gen import CreateCallback, Step, Wait

def counted(x):
    with open(os.environ["DG_COUNT_FILE"], "a") as f:
        f.write(f"{x}\\n")
    return x * 2

def flow(event):
    a = yield Step(counted, event["n"], name="double")
    yield Wait(seconds=1, name="pause")
    handle = yield CreateCallback("approval", timeout=3600)
    b = yield Step(counted, a, name="again")
    answer = yield handle.result()
    return {"a": a, "b": b, "answer": answer}

def quick(event):
    return (yield Step(counted, event, name="only"))
"""


def _history(url: str, execution_id: str) -> list[dict]:
    done = run_cli("--db", url, "history", execution_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["Events"]


def test_run_worker_callback_list_show_history_on_postgres(pg_url, tmp_path):
    (tmp_path / "pgwf.py").write_text(WF)
    count = tmp_path / "count"
    env = cli_env(DG_COUNT_FILE=str(count))
    target = f"{tmp_path / 'pgwf.py'}:flow"

    # run: the first step, then suspended on the wait (exit 3, its id on stdout)
    done = run_cli(
        "--db", pg_url, "run", target, "--id", "r1", "--input", '{"n": 2}', "--no-wait", env=env
    )
    assert (done.returncode, done.stdout.strip()) == (3, "r1"), done.stderr
    # start: recorded only, for the worker ($DURABLE_GEN_DB names the database)
    env_db = {**env, "DURABLE_GEN_DB": pg_url}
    done = run_cli(
        "start", f"{tmp_path / 'pgwf.py'}:quick", "--id", "q1", "--input", "5", env=env_db
    )
    assert (done.returncode, done.stdout.strip()) == (0, "q1"), done.stderr

    worker = spawn(cli("--db", pg_url, "worker", "--poll", "0.1"), tmp_path, "worker", env=env)
    try:
        # the worker ends the wait, starts the callback and runs the step after it
        events = wait_until(
            lambda: (
                [e for e in _history(pg_url, "r1") if e["EventType"] == "StepSucceeded"][1:]
                and _history(pg_url, "r1")
            ),
            timeout=60,
            what="the worker to advance r1 to its callback",
            interval=0.2,
        )
        callback_id = next(
            e["CallbackStartedDetails"]["CallbackId"]
            for e in events
            if e["EventType"] == "CallbackStarted"
        )
        done = run_cli("--db", pg_url, "callback", "succeed", callback_id, '"yes"', env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "succeeded callback of execution r1\n"
        wait_until(
            lambda: "r1 SUCCEEDED" in read_log(tmp_path, "worker"),
            timeout=60,
            what="the worker to finish r1",
            interval=0.1,
        )
        wait_until(
            lambda: "q1 SUCCEEDED" in read_log(tmp_path, "worker"),
            timeout=60,
            what="the worker to finish q1",
            interval=0.1,
        )
    finally:
        assert stop(worker, signal.SIGTERM) == 0, read_log(tmp_path, "worker")

    # every step ran once: 2 and 4 (flow), 5 (quick)
    assert sorted(count.read_text().split()) == ["2", "4", "5"]
    done = run_cli("--db", pg_url, "show", "r1", env=env)
    assert done.returncode == 0, done.stderr
    assert "status   SUCCEEDED" in done.stdout
    assert 'result   {"a":4,"b":8,"answer":"\\"yes\\""}' in done.stdout
    done = run_cli("--db", pg_url, "list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["executions"]
    assert sorted((r["id"], r["status"]) for r in rows) == [
        ("q1", "SUCCEEDED"),
        ("r1", "SUCCEEDED"),
    ]
    kinds = [e["EventType"] for e in _history(pg_url, "r1")]
    assert kinds[0] == "ExecutionStarted"
    assert kinds[-1] == "ExecutionSucceeded"
    for kind in ("WaitStarted", "WaitSucceeded", "CallbackStarted", "CallbackSucceeded"):
        assert kinds.count(kind) == 1, kinds
    assert kinds.count("StepSucceeded") == 2
    # run again with the id: the recorded execution, nothing runs again
    done = run_cli("--db", pg_url, "run", target, "--id", "r1", "--input", '{"n": 2}', env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": 4, "b": 8, "answer": '"yes"'}
    assert sorted(count.read_text().split()) == ["2", "4", "5"]


def test_bad_urls_and_missing_data_get_one_line(pg_url, tmp_path):
    unreachable = "postgresql://nobody@127.0.0.1:1/nothing"
    done = run_cli("--db", unreachable, "list")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "durable-gen: cannot reach the PostgreSQL server at postgresql://nobody@127.0.0.1:1/"
        "nothing ("
    ), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # a read-only command on a database where nothing ran creates nothing
    done = run_cli("--db", pg_url, "list")
    assert done.returncode == 1
    assert "no durable_gen data in" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _status(url: str, execution_id: str) -> str | None:
    done = run_cli("--db", url, "show", execution_id, "--json")
    return json.loads(done.stdout)["status"] if done.returncode == 0 else None


def test_an_idle_worker_wakes_on_notify_not_at_its_next_poll(pg_url, tmp_path):
    """A worker polling every 120 s (single loop, and a pool) picks up a started
    execution at once: the start's NOTIFY ends its idle wait (LISTEN/NOTIFY)."""
    (tmp_path / "pgwf.py").write_text(WF)
    env = cli_env(DG_COUNT_FILE=str(tmp_path / "count"))
    target = f"{tmp_path / 'pgwf.py'}:quick"
    for name, extra in (("single", []), ("pool", ["--concurrency", "4"])):
        worker = spawn(
            cli("--db", pg_url, "worker", "--poll", "120", *extra), tmp_path, name, env=env
        )
        try:
            time.sleep(3)  # idle first: the worker has looked, found nothing, and waits
            assert worker.poll() is None, read_log(tmp_path, name)
            done = run_cli("--db", pg_url, "start", target, "--id", f"n-{name}", "--input", "3")
            assert done.returncode == 0, done.stderr
            # well before the 120 s poll: woken by the NOTIFY
            wait_until(lambda n=name: _status(pg_url, f"n-{n}") == "SUCCEEDED", 30, f"n-{name}")
        finally:
            stop(worker)


def test_serve_on_postgres_answers_the_lambda_api(pg_url, tmp_path):
    """``durable-gen serve --db postgresql://...``: boto3 invokes, reads and lists."""
    import threading

    from durable_gen._http.serve import make_server
    from tests._procs import close_clients, lambda_client

    (tmp_path / "pgserve.py").write_text(
        "from durable_gen import Step\n\n"
        "def triple(x):\n    return x * 3\n\n"
        "def flow(event):\n    return (yield Step(triple, event['n'], name='triple'))\n"
    )
    server = make_server(
        "127.0.0.1", 0, db=pg_url, functions={"triple": f"{tmp_path / 'pgserve.py'}:flow"}
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        lam = lambda_client(server.server_address[1])
        out = lam.invoke(FunctionName="triple", Payload=b'{"n": 7}', DurableExecutionName="s1")
        assert json.loads(out["Payload"].read()) == 21
        arn = out["DurableExecutionArn"]
        assert lam.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED"
        events = lam.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        assert [e["EventType"] for e in events][-1] == "ExecutionSucceeded"
        listed = lam.list_durable_executions_by_function(FunctionName="triple")
        assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]
    finally:
        close_clients()
        server.drain()
        server.shutdown()
        server.server_close()
