"""Functions bound to a queue (issue 26, item 1): a served function with ``"Queue"`` in
its ``--function-configs`` entry starts each Invoke through the HTTP API on that queue,
and a workflow's ``Invoke`` of a bound function (served, or ``engine.register(...,
queue=)``) starts its child execution there; the queue's limits hold for them."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from durable_gen import Invoke, Step
from durable_gen._core.errors import ValidationError
from durable_gen._engine.queues import Queue, QueueBinding, queue_binding
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._http.serve import make_server
from tests._procs import read_payloads, run_cli, wait_until
from tests.test_queue_processes import peak


def _nap(event: dict[str, Any]) -> int:
    start = time.time_ns()
    time.sleep(event.get("sleep", 0.1))
    line = f"{event['i']} {start} {time.time_ns()} {os.getpid()}\n"
    with open(event["log"], "a") as f:
        f.write(line)
    return int(event["i"])


def nap(event: dict[str, Any]):  # type: ignore[no-untyped-def]
    """One step that sleeps and appends ``i start_ns end_ns pid`` to ``event['log']``."""
    return (yield Step(_nap, event, name="nap"))


def caller(event: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Invoke the function named ``event['function']`` with the rest of the event."""
    return (yield Invoke(event["function"], event["payload"], name="call"))


def _rows(log: Path) -> list[tuple[int, int, int, str]]:
    out = []
    for line in log.read_text().splitlines():
        i, start, end, pid = line.split()
        out.append((int(i), int(start), int(end), pid))
    return out


def _queued(db: Path) -> dict[str, tuple[str | None, int, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, queue, priority, status FROM executions")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _serve(db: Path, configs: dict[str, Any]) -> Any:
    return make_server(
        "127.0.0.1",
        0,
        db=str(db),
        functions={
            "nap": "tests.test_queue_serve:nap",
            "caller": "tests.test_queue_serve:caller",
        },
        concurrency=4,
        function_configs=configs,
    )


def test_an_http_invoke_of_a_bound_function_starts_on_its_queue(tmp_path):
    """4 Invokes (asynchronous) of a function bound to a queue of concurrency 1, on a
    server advancing 4 at once: each execution is on the queue with the binding's
    priority, they run one at a time, and ``queue list`` counted them."""
    db, log = tmp_path / "api.db", tmp_path / "steps.log"
    with SqliteEngine(str(db)) as engine:
        engine.add_queue(Queue("one", concurrency=1))
    server = _serve(db, {"nap": {"Queue": "one", "Priority": 2}})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    client = read_payloads(
        boto3.client(
            "lambda",
            endpoint_url=f"http://{host!s}:{port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1}, read_timeout=30),
        )
    )
    try:
        for i in range(4):
            payload = json.dumps({"i": i, "log": str(log)})
            out = client.invoke(
                FunctionName="nap",
                Payload=payload,
                InvocationType="Event",
                DurableExecutionName=f"n{i}",
            )
            assert out["StatusCode"] == 202
        with SqliteEngine(str(db)) as engine:
            ((queue, stats),) = engine.queues()
            assert queue.name == "one"
            assert stats.depth + stats.running + stats.started >= 4
        wait_until(
            lambda: all(s == "SUCCEEDED" for _, _, s in _queued(db).values()),
            20,
            "4 executions to succeed",
            interval=0.05,
        )
        # a synchronous Invoke waits for its execution, admitted by the queue too
        payload = json.dumps({"i": 4, "log": str(log), "sleep": 0})
        out = client.invoke(FunctionName="nap", Payload=payload, DurableExecutionName="n4")
        assert json.loads(out["Payload"].read()) == 4
    finally:
        client.close()
        server.shutdown()
        server.drain(1.0)
        server.server_close()
        thread.join(5)
    assert _queued(db) == {f"n{i}": ("one", 2, "SUCCEEDED") for i in range(5)}
    rows = _rows(log)
    assert sorted(r[0] for r in rows) == list(range(5))
    assert peak(rows) == 1


def test_a_served_workflows_invoke_of_a_bound_function_is_queued(tmp_path):
    """A served function's ``Invoke("nap", ...)`` of the bound one: the child execution
    is on the queue, and the queue's concurrency holds over the children."""
    db, log = tmp_path / "api.db", tmp_path / "steps.log"
    with SqliteEngine(str(db)) as engine:
        engine.add_queue(Queue("one", concurrency=1))
    server = _serve(db, {"nap": {"Queue": "one"}})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with SqliteEngine(str(db)) as engine:
            for i in range(3):
                event = {"function": "nap", "payload": {"i": i, "log": str(log)}}
                engine.start(caller, event, execution_id=f"c{i}", target=_CALLER)
        wait_until(
            lambda: (
                len(_queued(db)) == 6 and all(s == "SUCCEEDED" for _, _, s in _queued(db).values())
            ),
            20,
            "3 callers and their 3 children to succeed",
            interval=0.05,
        )
    finally:
        server.shutdown()
        server.drain(1.0)
        server.server_close()
        thread.join(5)
    queued = _queued(db)
    assert sorted(q for q, _, _ in queued.values() if q is not None) == ["one"] * 3
    assert all(queued[f"c{i}"][0] is None for i in range(3))  # the callers are not
    assert peak(_rows(log)) == 1


_CALLER = "tests.test_queue_serve:caller"


def test_a_registered_function_bound_to_a_queue(tmp_path):
    """``engine.register(name, workflow, queue=, priority=)``: an ``Invoke`` of it
    starts the child on the queue, which admits it (concurrency 1 over 3 children)."""
    db, log = tmp_path / "q.db", tmp_path / "steps.log"
    with SqliteEngine(str(db)) as engine:
        engine.add_queue(Queue("one", concurrency=1))
        engine.register("napper", nap, queue="one", priority=7)
        for i in range(3):
            event = {"function": "napper", "payload": {"i": i, "log": str(log), "sleep": 0.05}}
            engine.start(caller, event, execution_id=f"c{i}")
        engine.work(once=True, concurrency=4)
        children = {k: v for k, v in _queued(db).items() if v[0] is not None}
        assert sorted(children.values()) == [("one", 7, "SUCCEEDED")] * 3
        assert all(engine.store.info(f"c{i}").status == "SUCCEEDED" for i in range(3))
    assert peak(_rows(log)) == 1


def test_bad_bindings_are_refused(tmp_path):
    db = tmp_path / "q.db"
    with SqliteEngine(str(db)) as engine:
        engine.add_queue(Queue("one", concurrency=1))
        with pytest.raises(
            ValidationError,
            match=r"^function 'napper' is bound to queue 'nope', which does not exist "
            r"\(queues: 'one'\); declare it first \(durable-gen queue add nope\)$",
        ):
            engine.register("napper", nap, queue="nope")
        with pytest.raises(ValidationError, match=r"^priority 3 needs a queue"):
            engine.register("napper", nap, priority=3)
        assert "napper" not in engine.functions
    with pytest.raises(
        ValidationError, match=r"^function 'nap' is bound to queue 'nope', which does not exist"
    ):
        _serve(db, {"nap": {"Queue": "nope"}})
    with pytest.raises(
        ValidationError, match=r"^the configuration of function 'nap' has a Priority but no Queue"
    ):
        _serve(db, {"nap": {"Priority": 1}})
    with pytest.raises(
        ValidationError,
        match=r"^the Queue or Priority of function 'nap': priority must be an integer",
    ):
        queue_binding("nap", {"Queue": "one", "Priority": "high"})
    assert queue_binding("nap", {"DurableConfig": {"ExecutionTimeout": 5}}) is None
    assert queue_binding("nap", {"Queue": "one"}) == QueueBinding("one")


def test_serve_with_a_binding_to_an_unknown_queue_exits_at_start(tmp_path):
    db = tmp_path / "q.db"
    with SqliteEngine(str(db)) as engine:
        engine.add_queue(Queue("one"))
    done = run_cli(
        "serve",
        "--port",
        "0",
        "--db",
        str(db),
        "--function",
        "nap=tests.test_queue_serve:nap",
        "--function-configs",
        json.dumps({"nap": {"Queue": "nope", "DurableConfig": {"ExecutionTimeout": 60}}}),
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "durable-gen: function 'nap' is bound to queue 'nope', which does not exist "
        "(queues: 'one'); declare it first (durable-gen queue add nope)"
    )
