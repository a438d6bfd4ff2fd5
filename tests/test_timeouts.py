"""Execution timeouts (Lambda's ExecutionTimeout): an execution still running at its
deadline ends TIMED_OUT, with Lambda's history event, whoever advances it."""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import time
import urllib.error
import urllib.request

import pytest

from durable_gen import (
    CreateCallback,
    Invoke,
    InvokeError,
    SqliteEngine,
    Step,
    ValidationError,
    VirtualClock,
    Wait,
    WorkflowFailedError,
)
from durable_gen._core.errors import CallbackClosedError
from tests._procs import cli, cli_env, free_port, run_cli, spawn, stop

HOUR = 3_600_000
DAY = 24 * HOUR


def waits_a_month(event):
    yield Wait(seconds=30 * 86400)
    return "woke"


def awaits_a_callback(event):
    handle = yield CreateCallback(name="approval")
    return (yield handle.result())


def _instant():
    return "done"


def quick(event):
    return (yield Step(_instant, name="quick"))


#: set by the test: the step blocks until released, then returns
_released = threading.Event()
_entered = threading.Event()


def _blocks():
    _entered.set()
    assert _released.wait(30)
    return "late result"


def runs_a_long_step(event):
    value = yield Step(_blocks, name="long")
    return value


def invokes_a_slow_one(event):
    try:
        return (yield Invoke("slow", None, name="call"))
    except InvokeError as e:
        return {"type": e.error_type, "message": str(e.error_message)}


def _events(store, execution_id):
    return [e["EventType"] for e in store.history(execution_id)]


def _engine(tmp_path, clock=None, **kw):
    return SqliteEngine(str(tmp_path / "t.db"), clock=clock or VirtualClock(), **kw)


def test_a_waiting_execution_times_out_at_its_deadline_with_lambdas_event(tmp_path):
    clock = VirtualClock()
    with _engine(tmp_path, clock) as engine:
        eid = engine.start(waits_a_month, None, timeout=3600, execution_id="w")
        result = engine.resume(waits_a_month, eid)  # sleeps (virtually): the deadline first
        assert result.status == "TIMED_OUT"
        info = engine.store.info(eid)
        assert info.ended_at - info.created_at == HOUR  # at 1 h, not at 30 days
        assert info.deadline == info.created_at + HOUR
        assert info.timeout_ms == HOUR
        assert info.error is not None
        assert info.error.message == "Execution timed out after 3600 seconds."
        history = engine.store.history(eid)
        assert history[0]["ExecutionStartedDetails"]["ExecutionTimeout"] == 3600
        assert [e["EventType"] for e in history][-2:] == ["WaitCancelled", "ExecutionTimedOut"]
        assert history[-1] == {
            "EventType": "ExecutionTimedOut",
            "EventTimestamp": info.created_at + HOUR,
            "Id": eid,
            "ExecutionTimedOutDetails": {
                "Error": {
                    "Payload": {"ErrorMessage": "Execution timed out after 3600 seconds."},
                    "Truncated": False,
                }
            },
            "EventId": len(history),
        }
        ops = engine.store.load(eid)
        assert ops[eid].status.value == "TIMED_OUT"
        (wait,) = [op for op in ops.values() if op.type.value == "WAIT"]
        assert wait.status.value == "CANCELLED"  # closed: it can never fire
        with pytest.raises(WorkflowFailedError, match=r"Execution timed out after 3600 seconds"):
            result.get()


def test_a_worker_times_out_an_execution_sleeping_in_a_wait(tmp_path):
    clock = VirtualClock()
    with _engine(tmp_path, clock) as engine:
        eid = engine.start(waits_a_month, None, timeout=3600, target=f"{__name__}:waits_a_month")
        assert engine.work(once=True) == 0  # now in its 30-day wait
        assert engine.store.status(eid)[0] == "RUNNING"
        assert engine.store.due(clock.now()) == []
        clock.advance(3599)
        assert engine.work(once=True) == 0
        assert engine.store.status(eid)[0] == "RUNNING"
        clock.advance(1)
        assert engine.store.due(clock.now()) == [eid]  # the deadline makes it due
        assert engine.store.next_wake() == clock.now()
        assert engine.work(once=True) == 1
        assert engine.store.status(eid)[0] == "TIMED_OUT"
        assert engine.store.info(eid).ended_at == clock.now()
        assert engine.store.due(clock.now()) == []
        assert engine.work(once=True) == 0  # ended once


def test_a_callback_of_a_timed_out_execution_is_closed(tmp_path):
    clock = VirtualClock()
    with _engine(tmp_path, clock) as engine:
        deadline = datetime.datetime.fromtimestamp(clock.now() / 1000 + 3600, datetime.UTC)
        eid = engine.start(
            awaits_a_callback, None, deadline=deadline, target=f"{__name__}:awaits_a_callback"
        )
        engine.work(once=True)
        (cb,) = [op for op in engine.store.load(eid).values() if op.type.value == "CALLBACK"]
        clock.advance(3600)
        assert engine.work(once=True) == 1
        assert engine.store.status(eid)[0] == "TIMED_OUT"
        closed = engine.store.load(eid)[cb.id]
        assert closed.status.value == "TIMED_OUT"
        assert _events(engine.store, eid)[-2:] == ["CallbackTimedOut", "ExecutionTimedOut"]
        assert engine.store.info(eid).timeout_ms is None  # a caller's deadline, no timeout
        before = engine.store.history(eid)
        with pytest.raises(CallbackClosedError, match=r"already ended TIMED_OUT; the callback"):
            engine.store.complete_callback(cb.callback_id, "succeed", clock.now(), payload='"ok"')
        assert engine.store.history(eid) == before  # nothing recorded


def test_a_step_in_flight_at_the_deadline_does_not_record_its_success(tmp_path):
    """Real threads: the step blocks in one worker's thread while another worker (its
    own store: another lease owner) ends the execution at its deadline; when the step
    returns, the fenced write refuses its result."""
    _released.clear()
    _entered.clear()
    clock = VirtualClock()
    db = str(tmp_path / "t.db")
    with SqliteEngine(db, clock=clock) as a, SqliteEngine(db, clock=clock) as b:
        eid = a.start(runs_a_long_step, None, timeout=60, target=f"{__name__}:runs_a_long_step")
        results = []
        runner = threading.Thread(target=lambda: results.append(a.resume(runs_a_long_step, eid)))
        runner.start()
        try:
            assert _entered.wait(10)
            assert b.work(once=True) == 0  # before the deadline: held by a, left alone
            clock.advance(61)
            assert b.work(once=True) == 1  # past it: ended, though a holds the lease
            assert b.store.status(eid)[0] == "TIMED_OUT"
        finally:
            _released.set()
            runner.join(30)
        assert not runner.is_alive()
        (result,) = results
        assert result.status == "TIMED_OUT"
        events = _events(b.store, eid)
        assert "StepSucceeded" not in events
        assert events[-1] == "ExecutionTimedOut"
        step = [op for op in b.store.load(eid).values() if op.name == "long"]
        assert all(op.status.value != "SUCCEEDED" for op in step)
        assert b.store.status(eid)[0] == "TIMED_OUT"


def test_a_pool_times_out_an_execution_its_own_thread_is_running(tmp_path):
    _released.clear()
    _entered.clear()
    clock = VirtualClock()
    with _engine(tmp_path, clock) as engine:
        eid = engine.start(
            runs_a_long_step, None, timeout=60, target=f"{__name__}:runs_a_long_step"
        )
        stop_event = threading.Event()
        worker = threading.Thread(
            target=engine.work,
            kwargs={"stop": stop_event, "concurrency": 2, "poll_seconds": 0.05},
        )
        worker.start()
        try:
            assert _entered.wait(10)
            clock.advance(61)
            for _ in range(200):  # the dispatcher's next turn (it polls every 0.05 s)
                if engine.store.status(eid)[0] != "RUNNING":
                    break
                time.sleep(0.05)
            assert engine.store.status(eid)[0] == "TIMED_OUT"
        finally:
            _released.set()
            stop_event.set()
            worker.join(30)
        assert "StepSucceeded" not in _events(engine.store, eid)


def test_an_invoked_function_times_out_by_its_configuration(tmp_path):
    clock = VirtualClock()
    configs = {"slow": {"DurableConfig": {"ExecutionTimeout": 600}}}
    with _engine(tmp_path, clock, functions={"slow": waits_a_month}, function_configs=configs) as e:
        result = e.run(invokes_a_slow_one, None)
        assert result.status == "SUCCEEDED"
        assert result.result == {
            "type": "ChainedInvoke.Timeout",
            "message": "CHAINED_INVOKE timed out after 600 seconds.",
        }
        (child,) = [i for i in e.store.executions() if i.id != result.execution_id]
        assert child.status == "TIMED_OUT"
        assert child.timeout_ms == 600_000


def test_the_engines_default_timeout_and_redrive(tmp_path):
    clock = VirtualClock()
    with _engine(tmp_path, clock, timeout=120) as engine:
        eid = engine.start(waits_a_month, None)
        assert engine.resume(waits_a_month, eid).status == "TIMED_OUT"
        assert engine.store.info(eid).ended_at - engine.store.info(eid).created_at == 120_000
        # an execution that ended before its deadline is not timed out later
        ok = engine.start(quick, None, timeout=3600)
        assert engine.resume(quick, ok).status == "SUCCEEDED"
        clock.advance(7200)
        assert engine.store.time_out(ok, clock.now()) is False
        assert engine.store.status(ok)[0] == "SUCCEEDED"
        # redriven, it gets its timeout again, from the redrive
        engine.store.redrive(eid, clock.now())
        assert engine.store.info(eid).deadline == clock.now() + 120_000
        assert engine.resume(waits_a_month, eid).status == "TIMED_OUT"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"timeout": 0}, r"^timeout must be from 1 to 31622400 seconds, got 0$"),
        ({"timeout": -5}, r"^timeout must be from 1 to 31622400 seconds, got -5$"),
        ({"timeout": float("nan")}, r"^timeout must be from 1 to 31622400 seconds, got nan$"),
        ({"timeout": "60"}, r"^timeout must be a number of seconds, .*; got '60'$"),
        ({"timeout": True}, r"^timeout must be a number of seconds, .*; got True$"),
        (
            {"deadline": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)},
            r"^deadline 2020-01-01T00:00:00\+00:00 has already passed: give a time in the future$",
        ),
        ({"deadline": datetime.datetime(2030, 1, 1)}, r"^deadline must be a timezone-aware"),
    ],
)
def test_bad_timeouts_are_refused_and_record_nothing(tmp_path, kw, message):
    with _engine(tmp_path) as engine:
        with pytest.raises(ValidationError, match=message):
            engine.start(quick, None, execution_id="x", **kw)
        assert engine.store.executions() == []
        assert not engine.store.exists("x")


def test_a_version_4_database_is_migrated(tmp_path):
    """A file as durable_gen with schema 4 left it: no timeout columns, indexes or
    auto_vacuum; its executions stay as they were and new ones can time out."""
    db = tmp_path / "v4.db"
    clock = VirtualClock()
    with SqliteEngine(str(db), clock=clock) as engine:
        old = engine.run(quick, None, execution_id="old")
    with sqlite3.connect(db) as conn:
        for index in ("executions_deadline", "executions_expiry", "executions_ended"):
            conn.execute(f"DROP INDEX {index}")
        for column in ("deadline", "timeout_ms", "retention_ms"):
            conn.execute(f"ALTER TABLE executions DROP COLUMN {column}")
        conn.execute("UPDATE durable_gen_schema SET version = 4")
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    with SqliteEngine(str(db), clock=clock) as engine:
        info = engine.store.info("old")
        assert info.status == "SUCCEEDED"
        assert info.result == old.result_payload
        assert (info.deadline, info.timeout_ms, info.retention_ms) == (None, None, None)
        eid = engine.start(waits_a_month, None, timeout=60, retention_days=1)
        assert engine.resume(waits_a_month, eid).status == "TIMED_OUT"
        clock.advance(86_400)
        assert engine.purge() == 1  # retention works on the migrated file
    with sqlite3.connect(db) as conn:
        # and on to the newest schema (6: queues, ``test_queues``)
        assert conn.execute("SELECT version FROM durable_gen_schema").fetchone() >= (5,)
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"executions_deadline", "executions_expiry", "executions_ended"} <= indexes
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)  # documented
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------- processes


def test_a_worker_process_times_out_what_another_process_started(tmp_path):
    """``start --timeout`` in one process; a ``worker`` process ends it at its deadline;
    ``list --status TIMED_OUT`` and ``show`` report it."""
    db = str(tmp_path / "p.db")
    env = cli_env()
    target = f"{__name__}:waits_a_month"
    bad = run_cli("start", target, "--db", db, "--timeout", "-1", env=env)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "argument --timeout: --timeout must be from 1 to 31622400 seconds, got -1.0 ('-1')"
        )
    )
    assert not (tmp_path / "p.db").exists()  # nothing recorded, not even a database
    started = run_cli("start", target, "--db", db, "--timeout", "2", env=env)
    assert started.returncode == 0, started.stderr
    eid = started.stdout.strip()
    worker = spawn(
        cli("worker", "--db", db, "--poll", "0.1"),
        tmp_path / "logs",
        "worker",
        env=env,
    )
    try:
        status = None
        for _ in range(200):
            listed = run_cli("list", "--db", db, "--status", "TIMED_OUT", "--json", env=env)
            rows = json.loads(listed.stdout)["executions"] if listed.stdout.strip() else []
            if rows:
                status = rows[0]
                break
            time.sleep(0.1)
        assert status is not None
        assert status["id"] == eid
        assert status["timeout_seconds"] == 2
    finally:
        assert stop(worker) == 0
    shown = run_cli("show", eid, "--db", db, env=env)
    assert "status   TIMED_OUT" in shown.stdout
    assert "error    Error: Execution timed out after 2 seconds." in shown.stdout
    assert "deadline" in shown.stdout
    assert "TIMED_OUT" in (tmp_path / "logs" / "worker.err").read_text()


def test_serve_times_out_by_the_functions_durable_config(tmp_path):
    """``serve --function-configs``: the function's ExecutionTimeout, in Lambda's shapes
    (GetDurableExecution, history, list), and a closed callback is Lambda's error."""
    from durable_gen._http.serve import make_server

    server = make_server(
        "127.0.0.1",
        free_port(),
        db=str(tmp_path / "s.db"),
        functions={"approve": f"{__name__}:awaits_a_callback"},
        function_configs={
            "approve": {"DurableConfig": {"ExecutionTimeout": 1, "RetentionPeriodInDays": 7}}
        },
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def call(method, path, body=None):
        req = urllib.request.Request(base + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), dict(e.headers)

    try:
        req = urllib.request.Request(
            base + "/2015-03-31/functions/approve/invocations",
            data=b"{}",
            method="POST",
            headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": "e1"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            arn = r.headers["X-Amz-Durable-Execution-Arn"]
        quoted = urllib.request.quote(arn, safe="")
        for _ in range(300):
            _, described, _ = call("GET", f"/2025-12-01/durable-executions/{quoted}")
            if described["Status"] != "RUNNING":
                break
            time.sleep(0.05)
        assert described["Status"] == "TIMED_OUT"
        assert described["DurableConfig"] == {"ExecutionTimeout": 1, "RetentionPeriodInDays": 7}
        assert described["ExpectedExecutionTimeoutTimestamp"] == described["StartTimestamp"] + 1
        assert described["Error"] == {"ErrorMessage": "Execution timed out after 1 seconds."}
        _, history, _ = call("GET", f"/2025-12-01/durable-executions/{quoted}/history")
        kinds = [e["EventType"] for e in history["Events"]]
        assert kinds[-2:] == ["CallbackTimedOut", "ExecutionTimedOut"]
        callback_id = next(
            e["CallbackStartedDetails"]["CallbackId"]
            for e in history["Events"]
            if e["EventType"] == "CallbackStarted"
        )
        status, body, _ = call(
            "POST", f"/2025-12-01/durable-execution-callbacks/{callback_id}/succeed", b'"ok"'
        )
        assert status == 400
        assert body["__type"] == "CallbackTimeoutException"
        _, listed, _ = call(
            "GET", "/2025-12-01/functions/approve/durable-executions?Statuses=TIMED_OUT"
        )
        assert [x["DurableExecutionName"] for x in listed["DurableExecutions"]] == ["e1"]
        assert listed["DurableExecutions"][0]["Status"] == "TIMED_OUT"
    finally:
        server.shutdown()
        server.drain(1)
        server.server_close()


def test_serve_refuses_a_bad_durable_config(tmp_path):
    from durable_gen._http.serve import make_server

    with pytest.raises(
        ValidationError,
        match=r"^ExecutionTimeout of function 'approve' must be from 1 to 31622400 seconds, "
        r"got 0$",
    ):
        make_server(
            "127.0.0.1",
            0,
            db=str(tmp_path / "s.db"),
            functions={"approve": f"{__name__}:awaits_a_callback"},
            function_configs={"approve": {"DurableConfig": {"ExecutionTimeout": 0}}},
        )
