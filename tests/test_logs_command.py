"""Kept log records: the SQLite store keeps what workflows log, bounded, once per line;
``durable-gen logs`` (real processes) and ``GET .../logs`` show them."""

from __future__ import annotations

import base64
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from durable_gen import (
    InMemoryEngine,
    Parallel,
    Step,
    VirtualClock,
    Wait,
    get_logger,
)
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores import logs as _logs
from durable_gen._stores.encrypted import EncryptedStore, KeyRing, PayloadCipher
from durable_gen._stores.sqlite import SCHEMA_VERSION, SqliteStore
from tests._procs import cli, cli_env, run_cli

log = get_logger("tests.kept")
loud = get_logger("tests.kept.replays", log_replays=True)


def work(i):
    log.info("step %s ran", i)
    return i


def failing():
    try:
        raise ValueError("bad input 7")
    except ValueError:
        log.exception("could not parse")
    return 0


def branch(i):
    return (yield Step(work, i, name=f"b{i}"))


def flow(event):
    log.info("flow starts with %(n)s", {"n": event["n"]})
    a = yield Step(work, 1, name="one")
    loud.info("about to nap")  # shown again when replayed (log_replays), kept once
    yield Wait(seconds=5, name="nap")  # a second invocation replays the lines above
    log.info("after the nap")
    yield Parallel([lambda: branch(2), lambda: branch(3)], name="fan")  # pool threads
    yield Step(failing, name="parse")
    log.debug("too fine to keep")
    log.warning("done with %s", a)
    return a


def chatty(event):
    for i in range(event["n"]):
        yield Step(work, i, name=f"s{i}")
    return event["n"]


def _run(engine, workflow=flow, input=None, execution_id="ex"):
    return engine.run(workflow, input if input is not None else {"n": 4}, execution_id=execution_id)


def _messages(store, execution_id="ex", **kw):
    return [r.message for r in store.log_records(execution_id, **kw).records]


def test_records_are_kept_once_in_order_with_where_they_came_from(tmp_path):
    shown = []

    class Collect(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    handler = Collect()
    shows = logging.getLogger("tests.kept.replays")
    shows.addHandler(handler)
    shows.setLevel(logging.INFO)
    try:
        with SqliteEngine(str(tmp_path / "db"), clock=VirtualClock()) as engine:
            result = _run(engine)
            assert (result.status, result.invocations) == ("SUCCEEDED", 2)
            page = engine.store.log_records("ex")
    finally:
        shows.removeHandler(handler)
        shows.setLevel(logging.NOTSET)
    assert shown == ["about to nap", "about to nap"]  # replayed: shown, not kept again
    assert [r.message for r in page.records] == [
        "flow starts with 4",
        "step 1 ran",
        "about to nap",
        "after the nap",
        "step 2 ran",
        "step 3 ran",
        "could not parse",
        "done with 1",
    ]
    assert [r.seq for r in page.records] == list(range(1, 9))
    assert page.dropped == 0
    assert not page.more
    by = {r.message: r for r in page.records}
    step = by["step 1 ran"]
    assert (step.operation_name, step.attempt, step.level_name, step.logger) == (
        "one",
        1,
        "INFO",
        "tests.kept",
    )
    assert step.operation_id is not None
    assert by["step 2 ran"].operation_name == "b2"  # a branch's step, on a pool thread
    assert by["step 3 ran"].operation_name == "b3"
    body = by["flow starts with 4"]
    assert body.attempt is None
    assert by["done with 1"].level_name == "WARNING"
    exc = by["could not parse"].exception
    assert exc is not None
    assert exc.startswith("Traceback (most recent call last):")
    assert exc.endswith("ValueError: bad input 7")
    assert by["could not parse"].level == logging.ERROR
    assert all(r.exception is None for r in page.records if r.message != "could not parse")


def test_reading_filters_by_level_and_pages_by_seq(tmp_path):
    with SqliteEngine(str(tmp_path / "db"), clock=VirtualClock()) as engine:
        _run(engine)
        store = engine.store
        assert _messages(store, level="WARNING") == ["could not parse", "done with 1"]
        first = store.log_records("ex", limit=3)
        assert [r.seq for r in first.records] == [1, 2, 3]
        assert first.more
        rest = store.log_records("ex", after=3, limit=10)
        assert [r.seq for r in rest.records] == [4, 5, 6, 7, 8]
        assert not rest.more
        with pytest.raises(Exception, match=r"^no execution with id 'nope'$"):
            store.log_records("nope")
        with pytest.raises(ValueError, match=r"^level must be a logging level"):
            store.log_records("ex", level="LOUD")


def test_records_are_kept_whatever_the_logging_configuration(tmp_path):
    logger = logging.getLogger("tests.kept")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)  # no handler would show INFO
    try:
        with SqliteEngine(str(tmp_path / "db"), clock=VirtualClock()) as engine:
            _run(engine, chatty, {"n": 2})
            assert _messages(engine.store) == ["step 0 ran", "step 1 ran"]
    finally:
        logger.setLevel(saved)


def test_the_level_kept_is_a_store_option(tmp_path):
    store = SqliteStore(tmp_path / "db", log_level="WARNING")
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:
        _run(engine)
        assert _messages(store) == ["could not parse", "done with 1"]
    store = SqliteStore(tmp_path / "db2", log_level=logging.DEBUG)
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:
        _run(engine)
        assert "too fine to keep" in _messages(store)


def test_the_newest_records_are_kept_and_the_dropped_ones_counted(tmp_path):
    store = SqliteStore(tmp_path / "db", keep_logs=5)
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:
        _run(engine, chatty, {"n": 12})
        page = store.log_records("ex")
        assert [r.message for r in page.records] == [f"step {i} ran" for i in range(7, 12)]
        assert [r.seq for r in page.records] == list(range(8, 13))
        assert page.dropped == 7
        with sqlite3.connect(tmp_path / "db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM logs").fetchone() == (5,)


def test_more_records_than_the_bound_in_one_write_keep_the_newest(tmp_path):
    def burst(event):
        yield Step(lambda: [log.info("line %s", i) for i in range(10)] and 1, name="burst")
        return 1

    store = SqliteStore(tmp_path / "db", keep_logs=3)
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:
        engine.run(burst, execution_id="ex")
        page = store.log_records("ex")
    assert [(r.seq, r.message) for r in page.records] == [
        (8, "line 7"),
        (9, "line 8"),
        (10, "line 9"),
    ]
    assert page.dropped == 7


def test_long_messages_and_tracebacks_are_cut_with_a_marker(tmp_path):
    def big():
        log.info("x" * 20_000)
        try:
            raise RuntimeError("y" * 20_000 + " the end")
        except RuntimeError:
            log.exception("short")
        return 1

    def wf(event):
        return (yield Step(big, name="big"))

    with SqliteEngine(str(tmp_path / "db"), clock=VirtualClock()) as engine:
        engine.run(wf, execution_id="ex")
        long, short = engine.store.log_records("ex").records
    cap = _logs.MAX_MESSAGE
    assert long.message == "x" * cap + f"... [{20_000 - cap} more characters not kept]"
    assert short.message == "short"
    assert short.exception is not None
    assert short.exception.startswith("[")
    assert short.exception.endswith("y the end")  # the end of a traceback names the error
    assert len(short.exception) < cap + 100


def test_keeping_logs_can_be_turned_off(tmp_path, monkeypatch):
    store = SqliteStore(tmp_path / "db", keep_logs=0)
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:
        _run(engine)
        assert _messages(store) == []
    monkeypatch.setenv("DURABLE_GEN_KEEP_LOGS", "0")
    with SqliteEngine(str(tmp_path / "db2"), clock=VirtualClock()) as engine:
        _run(engine)
        assert _messages(engine.store) == []
    monkeypatch.setenv("DURABLE_GEN_KEEP_LOGS", "2")
    with SqliteEngine(str(tmp_path / "db3"), clock=VirtualClock()) as engine:
        _run(engine)
        assert _messages(engine.store) == ["could not parse", "done with 1"]
    monkeypatch.setenv("DURABLE_GEN_KEEP_LOGS", "lots")
    with pytest.raises(ValueError, match=r"^DURABLE_GEN_KEEP_LOGS must be how many log records"):
        SqliteStore(tmp_path / "db4")
    with pytest.raises(
        ValueError, match=r"^keep_logs must be how many log records .*got -1 \(int\)$"
    ):
        SqliteStore(tmp_path / "db4", keep_logs=-1)


def test_an_encrypted_store_keeps_no_plain_text_logs(tmp_path):
    key = base64.b64decode(KeyRing.generate_key())
    cipher = PayloadCipher(KeyRing(active="k1", keys={"k1": key}))
    inner = SqliteStore(tmp_path / "db")
    store = EncryptedStore(inner, cipher)
    with SqliteEngine(store=store, clock=VirtualClock()) as engine:  # type: ignore[arg-type]
        _run(engine)
        assert store.status("ex")[0] == "SUCCEEDED"
        assert _messages(inner) == []


def test_records_go_with_their_execution(tmp_path):
    db = tmp_path / "db"
    with SqliteEngine(str(db), clock=VirtualClock()) as engine:
        _run(engine, chatty, {"n": 3}, execution_id="a")
        engine.store.delete("a")
        # the freed primary key is used again: the new execution starts with no records
        _run(engine, chatty, {"n": 1}, execution_id="b")
        assert _messages(engine.store, "b") == ["step 0 ran"]
        assert engine.store.log_records("b").dropped == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM logs").fetchone() == (1,)


def test_a_version_3_database_is_migrated_and_keeps_logs(tmp_path):
    db = tmp_path / "old.db"
    SqliteStore(db).close()
    with sqlite3.connect(db) as conn:  # as durable_gen with schema 3 left it
        conn.execute("DROP TRIGGER logs_go_with_their_execution")
        conn.execute("DROP TABLE logs")
        conn.execute("UPDATE durable_gen_schema SET version = 3")
    assert SCHEMA_VERSION >= 4
    with SqliteEngine(str(db), clock=VirtualClock()) as engine:
        _run(engine, chatty, {"n": 2}, execution_id="a")
        assert _messages(engine.store, "a") == ["step 0 ran", "step 1 ran"]
        engine.store.delete("a")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM durable_gen_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert conn.execute("SELECT COUNT(*) FROM logs").fetchone() == (0,)  # the trigger
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_worker_pool_keeps_each_executions_records(tmp_path):
    db = str(tmp_path / "db")
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        for k in range(6):
            engine.start(chatty, {"n": 3}, execution_id=f"e{k}", target=f"{__name__}:chatty")
        assert engine.work(once=True, concurrency=3) == 6
        for k in range(6):
            assert _messages(engine.store, f"e{k}") == ["step 0 ran", "step 1 ran", "step 2 ran"]


def test_the_in_memory_store_keeps_them_too():
    engine = InMemoryEngine()
    result = engine.run(flow, {"n": 4}, execution_id="ex")
    assert result.status == "SUCCEEDED"
    page = engine.store.log_records("ex")
    assert [r.message for r in page.records][:3] == [
        "flow starts with 4",
        "step 1 ran",
        "about to nap",
    ]
    assert len(page.records) == 8
    assert [r.message for r in engine.store.log_records("ex", level="WARNING").records] == [
        "could not parse",
        "done with 1",
    ]


# ---------------------------------------------------------------------- real processes

CRASHY = """
import os, signal
from durable_gen import Step, Wait, get_logger

log = get_logger("crashy")
MARK = os.environ["CRASH_MARK"]


def work(i):
    log.info("step %s ran", i)
    if i == 3 and not os.path.exists(MARK):
        open(MARK, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # a crash after 3 recorded steps
    return i


def flow(event):
    log.info("flow starts")
    total = 0
    for i in range(6):
        total += yield Step(work, i, name=f"s{i}")
        log.info("after s%s", i)
    try:
        raise KeyError("k")
    except KeyError:
        log.exception("caught it")
    return total


def napping(event):
    log.info("before the nap")
    yield Wait(seconds=event["seconds"], name="nap")
    yield Step(work, 0, name="late")
    log.warning("woke up")
    return 1
"""


@pytest.fixture
def crashy(tmp_path):
    (tmp_path / "crashy.py").write_text(CRASHY)
    env = cli_env(CRASH_MARK=str(tmp_path / "crashed"), DURABLE_GEN_DB=str(tmp_path / "p.db"))
    return tmp_path, env


def _logs_cli(env, *args, cwd=None):
    return subprocess.run(
        cli("logs", *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_a_crash_and_resume_stores_each_line_once(crashy):
    tmp, env = crashy
    target = f"{tmp / 'crashy.py'}:flow"
    first = run_cli("run", target, "--id", "c1", "--quiet", env=env)
    assert first.returncode == -signal.SIGKILL
    done = run_cli("run", target, "--id", "c1", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    out = _logs_cli(env, "c1", "--json")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    expected = ["flow starts"]
    for i in range(6):
        expected += [f"step {i} ran", f"after s{i}"]
    assert [r["message"] for r in records] == [*expected, "caught it"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert set(records[0]) == {
        "execution_id",
        "seq",
        "time",
        "level",
        "levelno",
        "logger",
        "message",
        "operation_id",
        "operation_name",
        "attempt",
        "exception",
    }
    step3 = records[expected.index("step 3 ran")]
    assert (step3["operation_name"], step3["attempt"], step3["level"], step3["logger"]) == (
        "s3",
        1,
        "INFO",
        "crashy",
    )
    assert step3["time"].endswith("Z")
    assert records[-1]["exception"].endswith("KeyError: 'k'")


def test_logs_prints_records_and_filters_them(crashy):
    tmp, env = crashy
    (tmp / "crashed").touch()  # no crash this time
    assert (
        run_cli("run", f"{tmp / 'crashy.py'}:flow", "--id", "r", "--quiet", env=env).returncode == 0
    )
    out = _logs_cli(env, "r")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("INFO     the root context: flow starts")
    assert lines[1].endswith("INFO     s0 #1: step 0 ran")
    error_at = next(i for i, line in enumerate(lines) if "ERROR" in line)
    assert lines[error_at].endswith("ERROR    the root context: caught it")
    assert lines[error_at + 1] == "    Traceback (most recent call last):"
    assert lines[-1] == "    KeyError: 'k'"
    only = _logs_cli(env, "r", "--level", "error", "--json")
    assert [json.loads(line)["message"] for line in only.stdout.splitlines()] == ["caught it"]


def test_logs_of_an_unknown_execution_or_database(crashy):
    tmp, env = crashy
    missing = tmp / "nothing-here" / "x.db"
    out = _logs_cli(env, "nope", "--db", str(missing))
    assert out.returncode == 1
    assert out.stderr.startswith(f"durable-gen: no durable_gen database at {missing}: ")
    assert not missing.parent.exists()  # a read-only command creates nothing
    (tmp / "crashed").touch()
    assert (
        run_cli("run", f"{tmp / 'crashy.py'}:flow", "--id", "r", "--quiet", env=env).returncode == 0
    )
    out = _logs_cli(env, "nope")
    assert (out.returncode, out.stdout, out.stderr) == (
        1,
        "",
        "durable-gen: no execution with id 'nope'\n",
    )
    bad = _logs_cli(env, "r", "--level", "LOUD")
    assert bad.returncode == 2
    assert "invalid choice: 'LOUD'" in bad.stderr


def test_logs_says_how_many_records_were_dropped(crashy):
    tmp, env = crashy
    (tmp / "crashed").touch()
    small = {**env, "DURABLE_GEN_KEEP_LOGS": "4"}
    assert (
        run_cli("run", f"{tmp / 'crashy.py'}:flow", "--id", "d", "--quiet", env=small).returncode
        == 0
    )
    out = _logs_cli(env, "d")
    lines = out.stdout.splitlines()
    assert lines[0] == "(10 earlier log records dropped: the store keeps each execution's newest)"
    as_json = _logs_cli(env, "d", "--json")
    assert [json.loads(line)["seq"] for line in as_json.stdout.splitlines()] == [11, 12, 13, 14]
    assert "10 earlier log records dropped" in as_json.stderr
    bad = run_cli("list", env={**env, "DURABLE_GEN_KEEP_LOGS": "many"})
    assert bad.returncode == 2
    assert bad.stderr.startswith("durable-gen: DURABLE_GEN_KEEP_LOGS must be how many log records")


def test_follow_prints_records_as_they_come_until_the_execution_ends(crashy):
    tmp, env = crashy
    target = f"{tmp / 'crashy.py'}:napping"
    assert (
        run_cli("start", target, "--id", "f", "--input", '{"seconds": 1}', env=env).returncode == 0
    )
    follow = subprocess.Popen(
        cli("logs", "f", "--follow"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = run_cli("run", target, "--id", "f", "--quiet", env=env)
        assert run.returncode == 0, run.stderr
        out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, err
    messages = [line.split(": ", 1)[1] for line in out.splitlines()]
    assert messages == ["before the nap", "step 0 ran", "woke up"]


# ---------------------------------------------------------------------- HTTP


def test_the_http_route_pages_records_by_seq(tmp_path):
    from durable_gen._http.serve import make_server

    db = str(tmp_path / "api.db")
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        _run(engine)
    server = make_server("127.0.0.1", 0, db=db, functions={})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    base = f"http://{host!s}:{port}/2025-12-01/durable-executions"

    def get(path):
        try:
            with urllib.request.urlopen(f"{base}/{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        status, body = get("ex/logs?MaxItems=4")
        assert status == 200
        assert [r["Seq"] for r in body["Records"]] == [1, 2, 3, 4]
        assert body["NextToken"] == "4"
        assert body["DroppedRecords"] == 0
        assert body["Records"][1] == {
            "Seq": 2,
            "Timestamp": body["Records"][1]["Timestamp"],
            "Level": "INFO",
            "Logger": "tests.kept",
            "Message": "step 1 ran",
            "OperationId": body["Records"][1]["OperationId"],
            "OperationName": "one",
            "Attempt": 1,
        }
        assert isinstance(body["Records"][1]["Timestamp"], float)
        status, body = get("ex/logs?MaxItems=4&NextToken=4")
        assert [r["Seq"] for r in body["Records"]] == [5, 6, 7, 8]
        assert "NextToken" not in body
        assert body["Records"][2]["Exception"].endswith("ValueError: bad input 7")
        status, body = get("ex/logs?Level=warning")
        assert [r["Message"] for r in body["Records"]] == ["could not parse", "done with 1"]
        assert get("nope/logs")[0] == 404
        status, body = get("ex/logs?Level=LOUD")
        assert status == 400
        assert "Level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in json.dumps(body)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_keep_logs_env(monkeypatch):
    monkeypatch.delenv("DURABLE_GEN_KEEP_LOGS", raising=False)
