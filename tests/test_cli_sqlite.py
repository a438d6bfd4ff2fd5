"""The durable-gen command on the SQLite engine: resume, list/show/history/stop, callbacks."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import sys

import pytest

from durable_gen._cli.main import main
from durable_gen._stores.sqlite import SqliteStore

WF = """
import os
from durable_gen import CreateCallback, Step, Wait, ChildContext

COUNT = os.environ["DG_COUNT_FILE"]

def counted(x):
    with open(COUNT, "a") as f:
        f.write("x\\n")
    return x * 2

def kid(x):
    return (yield Step(counted, x, name="in-kid"))

def flow(event):
    a = yield Step(counted, event["n"], name="double")
    b = yield ChildContext(kid, a, name="kid")
    return {"a": a, "b": b}

def sleepy(event):
    yield Step(counted, 1, name="first")
    yield Wait(seconds=3600, name="an-hour")
    return "woke"

def approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(counted, 1, name="notify")
    return {"answer": (yield handle.result())}
"""


@pytest.fixture
def wf(tmp_path, monkeypatch):
    p = tmp_path / "clwf.py"
    p.write_text(WF)
    monkeypatch.setenv("DG_COUNT_FILE", str(tmp_path / "count"))
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "cli.db"))
    return p


def calls(tmp_path):
    p = tmp_path / "count"
    return len(p.read_text().splitlines()) if p.exists() else 0


def test_run_then_run_again_with_the_id_replays_without_rerunning(wf, tmp_path, capsys):
    args = ["run", f"{wf}:flow", "--input", '{"n": 21}', "--id", "r1"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == {"a": 42, "b": 84}
    assert calls(tmp_path) == 2
    assert main(args) == 0  # already ended: reports the recorded result
    assert json.loads(capsys.readouterr().out) == {"a": 42, "b": 84}
    assert calls(tmp_path) == 2


def test_db_option_wins_over_the_environment(wf, tmp_path, capsys):
    other = tmp_path / "other.db"
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "o", "--db", str(other)]) == 0
    with SqliteStore(other) as store:
        assert store.status("o")[0] == "SUCCEEDED"
    capsys.readouterr()
    env_db = tmp_path / "cli.db"  # $DURABLE_GEN_DB: nothing ran there
    assert main(["show", "o"]) == 1
    assert capsys.readouterr().err == (
        f"durable-gen: no durable_gen database at {env_db}: nothing has run there yet. "
        "Start an execution (durable-gen run), or point --db or DURABLE_GEN_DB at the "
        "database you meant\n"
    )
    assert not env_db.exists()  # a read-only command creates nothing


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "x"],
        ["history", "x"],
        ["stop", "x"],
        ["pause", "x"],
        ["resume", "x"],
        ["delete", "x"],
    ],
)
def test_commands_that_only_read_or_complete_never_create_a_database(tmp_path, capsys, command):
    db = tmp_path / "missing" / "dg.db"
    assert main([*command, "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"durable-gen: no durable_gen database at {db}: ")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_another_target_or_input(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "r2"]) == 0
    capsys.readouterr()
    assert main(["run", f"{wf}:sleepy", "--id", "r2"]) == 2
    assert (
        capsys.readouterr().err == f"durable-gen: execution 'r2' runs {wf}:flow, not {wf}:sleepy\n"
    )
    assert main(["run", f"{wf}:flow", "--input", '{"n": 2}', "--id", "r2"]) == 2
    assert capsys.readouterr().err == (
        "durable-gen: execution 'r2' was started with another input ({\"n\":1}); "
        "leave out --input to resume it\n"
    )


def test_no_wait_suspends_with_exit_3_and_the_id_on_stdout(wf, capsys):
    assert main(["run", f"{wf}:sleepy", "--id", "s1", "--no-wait"]) == 3
    out = capsys.readouterr()
    assert out.out == "s1\n"
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(
        r"durable-gen: execution s1 started\n"
        rf"durable-gen: Wait 'an-hour': waiting until {when}\n"
        rf"durable-gen: execution s1 is suspended until {when}; "
        r"`durable-gen worker` or `durable-gen run TARGET --id s1` resumes it\n",
        out.err,
    )
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "STARTED", "VERSION", "NOTE", "TARGET"]
    assert lines[1].startswith("s1 ")
    assert " RUNNING " in lines[1]
    assert "wakes in 60.0 min" in lines[1] or "wakes in 59.9 min" in lines[1]
    assert main(["stop", "s1"]) == 0
    assert capsys.readouterr().err == "stopped execution s1\n"
    assert main(["stop", "s1"]) == 1
    assert capsys.readouterr().err == "durable-gen: execution 's1' already ended STOPPED\n"
    assert main(["run", f"{wf}:sleepy", "--id", "s1"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution s1 resumed\ndurable-gen: execution s1 was stopped\n"
    )


def test_show_prints_status_result_and_the_operation_tree(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 3}', "--id", "t1"]) == 0
    capsys.readouterr()
    assert main(["show", "t1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "execution t1"
    assert lines[1] == "  status   SUCCEEDED"
    assert lines[2] == f"  target   {wf}:flow"
    assert '  input    {"n":3}' in lines
    assert '  result   {"a":6,"b":12}' in lines
    tree = lines[lines.index("operations (3)") + 1 :]
    assert [re.sub(r"  \d+ ms", "", line) for line in tree] == [
        "├── Step 'double'  SUCCEEDED  → 6",
        "└── ChildContext 'kid'  SUCCEEDED  → 12",
        "    └── Step 'in-kid'  SUCCEEDED  → 12",
    ]


def test_history_text_and_json(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 3}', "--id", "h1"]) == 0
    capsys.readouterr()
    assert main(["history", "h1", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["Events"]
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "ContextStarted",
        "StepStarted",
        "StepSucceeded",
        "ContextSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert [e["EventId"] for e in events] == list(range(1, 10))
    assert events[2]["StepSucceededDetails"] == {"Result": {"Payload": "6", "Truncated": False}}
    assert main(["history", "h1"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 9
    assert re.fullmatch(
        r"   3  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z  StepSucceeded +'double'  Result=6", text[2]
    )


def test_show_html_writes_a_self_contained_timeline(wf, tmp_path, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 3}', "--id", "v1"]) == 0
    out = tmp_path / "t.html"
    assert main(["show", "v1", "--html", str(out)]) == 0
    assert capsys.readouterr().err.endswith(f"wrote {out}\n")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "durable_gen execution v1" in page
    for needle in ("Step &#x27;double&#x27;", "ChildContext &#x27;kid&#x27;", "invocations"):
        assert needle in page
    assert page.count('class="bar ok"') == 2  # the two step attempts
    assert page.count('class="bar inv"') == 1
    for remote in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert remote not in page


def test_html_shows_retries_and_waits(tmp_path):
    from durable_gen import Jitter, RetryPolicy, Step, VirtualClock, Wait, current_attempt
    from durable_gen._engine.sqlite import SqliteEngine
    from durable_gen._html.timeline import render_timeline

    def flaky():
        if current_attempt() < 3:
            raise ConnectionError("try again")
        return "ok"

    def wf(_):
        yield Step(flaky, name="flaky", retry=RetryPolicy(initial_delay=2, jitter=Jitter.NONE))
        yield Wait(seconds=5, name="rest")
        return 1

    with SqliteEngine(tmp_path / "h.db", clock=VirtualClock()) as engine:
        engine.run(wf, execution_id="h")
        store = engine.store
        page = render_timeline(store.info("h"), list(store.load("h").values()), store.history("h"))
    assert page.count('class="bar fail"') == 2
    assert page.count('class="bar delay"') == 2
    assert page.count('class="bar ok"') == 1
    assert page.count('class="bar wait"') == 1
    assert page.count('class="bar inv"') == 4
    assert "attempt 2: failed in 0 ms — ConnectionError: try again" in page


def test_callbacks_from_the_command_line(wf, capsys):
    assert main(["run", f"{wf}:approval", "--id", "c1", "--no-wait"]) == 3
    capsys.readouterr()
    with SqliteStore() as store:
        history = store.history("c1")
    cid = next(e for e in history if e["EventType"] == "CallbackStarted")["CallbackStartedDetails"][
        "CallbackId"
    ]
    assert main(["callback", "heartbeat", cid]) == 0
    assert capsys.readouterr().err == "heartbeat sent to callback of execution c1\n"
    assert main(["callback", "succeed", cid, '{"ok": true}']) == 0
    assert capsys.readouterr().err == "succeeded callback of execution c1\n"
    assert main(["callback", "succeed", cid, "again"]) == 1
    assert capsys.readouterr().err == (
        f"durable-gen: callback {cid!r} already ended SUCCEEDED; it cannot be completed again\n"
    )
    assert main(["callback", "fail", "nope"]) == 1
    assert capsys.readouterr().err == "durable-gen: no callback with id 'nope'\n"
    assert main(["run", f"{wf}:approval", "--id", "c1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"answer": '{"ok": true}'}


def test_worker_once_finishes_due_executions(wf, capsys):
    assert main(["run", f"{wf}:approval", "--id", "c2", "--no-wait"]) == 3
    capsys.readouterr()
    with SqliteStore() as store:
        cid = next(
            e["CallbackStartedDetails"]["CallbackId"]
            for e in store.history("c2")
            if e["EventType"] == "CallbackStarted"
        )
        store.complete_callback(cid, "fail", 0)
    assert main(["worker", "--once"]) == 0
    assert capsys.readouterr().err == "durable-gen worker: execution c2 FAILED\n"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["show", "nope"], "no execution with id 'nope'", 1),
        (["history", "nope"], "no execution with id 'nope'", 1),
        (["stop", "nope"], "no execution with id 'nope'", 1),
        (
            ["callback", "heartbeat", "cb", "payload"],
            "a heartbeat carries no payload",
            2,
        ),
        (
            ["run", "{wf}:flow", "--input", "1", "--input-file", "x"],
            "give --input or --input-file, not both",
            2,
        ),
    ],
)
def test_bad_input_gets_one_line(wf, tmp_path, capsys, args, message, code):
    SqliteStore(tmp_path / "cli.db").close()  # the database exists; the id does not
    args = [a.replace("{wf}", str(wf)) for a in args]
    assert main(args) == code
    assert capsys.readouterr().err == f"durable-gen: {message}\n"


def test_a_target_that_fails_to_import_gets_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "x.db"))
    bad = tmp_path / "broken.py"
    bad.write_text("def flow(:\n")
    assert main(["run", f"{bad}:flow"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"durable-gen: importing {bad} failed: SyntaxError: ")
    assert err.count("\n") == 1


def test_a_file_that_is_not_a_database_gets_one_line(wf, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    assert main(["list", "--db", str(notes)]) == 1
    assert capsys.readouterr().err == (
        f"durable-gen: CorruptLogError: {notes} is not a SQLite database (it lacks the SQLite "
        "file header); durable_gen leaves it untouched: pass another path with --db or "
        "DURABLE_GEN_DB\n"
    )
    assert notes.read_text() == "not a database"


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal(wf, monkeypatch, capsys):
    from durable_gen._cli.main import _Progress
    from durable_gen._core.log import (
        Operation,
        OperationStatus,
        OperationType,
    )

    stream = _Tty()
    p = _Progress(stream, "abcdef0123456789", {}, live=True)
    step = Operation(
        id="s",
        type=OperationType.STEP,
        status=OperationStatus.STARTED,
        start_timestamp=1,
        name="charge",
        sub_type="Step",
    )
    p.on_change("abcdef0123456789", {"s": step})
    p.render(force=True)
    assert stream.getvalue().endswith(
        "\r\x1b[K[abcdef012345] 0 operations done · running Step 'charge' (attempt 1)"
    )
    done = Operation(
        id="s",
        type=OperationType.STEP,
        status=OperationStatus.SUCCEEDED,
        start_timestamp=1,
        name="charge",
        sub_type="Step",
        attempt=1,
    )
    p.on_change("abcdef0123456789", {"s": done})
    p.on_wait("abcdef0123456789", "waiting for a callback")
    p.render(force=True)
    assert stream.getvalue().endswith("1 operations done · waiting for a callback")
    p.close()
    assert stream.getvalue().endswith("\r\x1b[K")

    monkeypatch.setattr(sys, "stderr", _Tty())
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "p1"]) == 0
    assert sys.stderr.getvalue().startswith(
        "durable-gen: execution p1 started\n\r\x1b[K[p1] 0 operations done · starting"
    )
    assert sys.stderr.getvalue().endswith("\r\x1b[K")


def test_show_meter_counts_the_executions_operations_and_bytes(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 21}', "--id", "m1"]) == 0
    capsys.readouterr()
    assert main(["show", "m1", "--meter", "--json", "--retention-days", "10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # Execution 1 + two steps + the child context; input {"n":21} (8 B) + output
    # {"a":42,"b":84} (15 B); steps "42", "84" (2 B each); the child context "84"
    assert doc["operations"] == 4
    assert doc["by_kind"]["Step"] == {"operations": 2, "bytes": 4}
    assert doc["by_kind"]["RunInChildContext"] == {"operations": 1, "bytes": 2}
    assert doc["by_kind"]["Execution"] == {"operations": 1, "bytes": 8 + 15}
    assert doc["bytes_persisted"] == 29
    assert doc["retained_byte_days"] == 290


def test_show_meter_prices_with_the_users_prices(wf, tmp_path, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "m2"]) == 0
    capsys.readouterr()
    prices = tmp_path / "prices.toml"
    prices.write_text("[prices]\nper_million_operations = 2.0\nper_gb_persisted = 0\n")
    args = ["show", "m2", "--meter", "--json", "--prices", str(prices)]
    assert (
        main([*args, "--price-per-gb-month-retained", "0", "--executions-per-month", "1000"]) == 0
    )
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["per_month"]["operations"] == pytest.approx(4 * 1000 * 2.0 / 1e6)
    # a missing price is a usage error naming it, not a made-up default
    assert main(args) == 2
    assert "per_gb_month_retained" in capsys.readouterr().err


def test_meter_options_without_meter_are_refused(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "m3"]) == 0
    capsys.readouterr()
    assert main(["show", "m3", "--retention-days", "3"]) == 2
    assert "--retention-days and --prices go with --meter" in capsys.readouterr().err


def test_keys_in_the_environment_encrypt_the_database_at_rest(wf, tmp_path, monkeypatch, capsys):
    from durable_gen import KeyRing

    monkeypatch.setenv("DURABLE_GEN_KEYS", f"k1:{KeyRing.generate_key()}")
    assert main(["run", f"{wf}:flow", "--input", '{"n": 123457}', "--id", "enc"]) == 0
    assert json.loads(capsys.readouterr().out) == {"a": 246914, "b": 493828}
    assert main(["show", "enc"]) == 0
    assert "493828" in capsys.readouterr().out  # the owner reads it in clear
    raw = "\n".join(sqlite3.connect(tmp_path / "cli.db").iterdump())  # the file does not
    assert "246914" not in raw
    assert "123457" not in raw
    # another key: a clear error, not garbage, and the data stays as it was
    monkeypatch.setenv("DURABLE_GEN_KEYS", f"k1:{KeyRing.generate_key()}")
    assert main(["show", "enc"]) == 1
    assert "does not authenticate with key 'k1'" in capsys.readouterr().err
    monkeypatch.setenv("DURABLE_GEN_KEYS", "not a key")
    assert main(["show", "enc"]) == 2
    assert "DURABLE_GEN_KEYS" in capsys.readouterr().err


def test_callback_with_execution_refuses_a_callback_of_another_execution(wf, capsys):
    assert main(["run", f"{wf}:approval", "--id", "ap1", "--no-wait"]) == 3
    assert main(["run", f"{wf}:approval", "--id", "ap2", "--no-wait"]) == 3
    capsys.readouterr()
    with SqliteStore() as store:
        cb = next(o for o in store.load("ap1").values() if o.callback_id)
    args = ["callback", "succeed", cb.callback_id, '"yes"']
    assert main([*args, "--execution", "ap2"]) == 1
    assert "ap2" in capsys.readouterr().err
    with SqliteStore() as store:
        assert store.load("ap1")[cb.id].status.value == "STARTED"  # untouched
    assert main([*args, "--execution", "ap1"]) == 0
    assert "execution ap1" in capsys.readouterr().err


# ---------------------------------------------------------------- pause, resume, delete


def _callback_of(execution_id):
    with SqliteStore() as store:
        return next(o.callback_id for o in store.load(execution_id).values() if o.callback_id)


def _status(execution_id):
    with SqliteStore() as store:
        return store.status(execution_id)[0]


def test_pause_holds_an_execution_until_it_is_resumed(wf, tmp_path, capsys):
    assert main(["run", f"{wf}:approval", "--id", "pz", "--no-wait"]) == 3
    assert main(["pause", "pz", "--reason", "deploy"]) == 0
    assert capsys.readouterr().err.endswith("paused execution pz\n")
    assert _status("pz") == "PAUSED"
    assert main(["pause", "pz"]) == 0  # pausing a paused execution changes nothing
    # a callback may still be completed; nothing advances the execution
    assert main(["callback", "succeed", _callback_of("pz"), '"yes"']) == 0
    invocations = _invocations("pz")
    assert main(["worker", "--once"]) == 0
    assert (_status("pz"), _invocations("pz")) == ("PAUSED", invocations)  # not invoked
    capsys.readouterr()
    assert main(["list"]) == 0
    assert re.search(r"pz\s+PAUSED", capsys.readouterr().out)
    assert main(["resume", "pz"]) == 0
    assert "resumed execution pz" in capsys.readouterr().err
    assert main(["worker", "--once"]) == 0
    assert (_status("pz"), _invocations("pz")) == ("SUCCEEDED", invocations + 1)
    assert calls(tmp_path) == 1  # notify ran once, before the pause
    with SqliteStore() as store:
        types = [e["EventType"] for e in store.history("pz")]
    assert types.index("ExecutionPaused") < types.index("ExecutionResumed")
    paused = next(e for e in store_history("pz") if e["EventType"] == "ExecutionPaused")
    assert paused["ExecutionPausedDetails"]["Reason"] == "deploy"


def _invocations(execution_id):
    return sum(e["EventType"] == "InvocationCompleted" for e in store_history(execution_id))


def store_history(execution_id):
    with SqliteStore() as store:
        return store.history(execution_id)


def test_pause_resume_and_delete_refuse_what_they_cannot_do_and_change_nothing(wf, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "done"]) == 0
    assert main(["run", f"{wf}:approval", "--id", "live", "--no-wait"]) == 3
    capsys.readouterr()
    assert main(["pause", "done"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution 'done' already ended SUCCEEDED; "
        "only a running execution can be paused\n"
    )
    assert main(["resume", "live"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution 'live' is RUNNING, not paused; "
        "only a paused execution can be resumed\n"
    )
    assert main(["delete", "live"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution 'live' is RUNNING; only an ended "
        "execution can be deleted: stop it first (or force the deletion)\n"
    )
    assert (_status("done"), _status("live")) == ("SUCCEEDED", "RUNNING")
    assert main(["pause", "nope"]) == 1
    assert "no execution with id 'nope'" in capsys.readouterr().err


def test_delete_removes_an_execution_from_list_show_and_the_file(wf, tmp_path, capsys):
    assert main(["run", f"{wf}:flow", "--input", '{"n": 1}', "--id", "gone"]) == 0
    assert main(["run", f"{wf}:approval", "--id", "forced", "--no-wait"]) == 3
    assert main(["run", f"{wf}:flow", "--input", '{"n": 2}', "--id", "kept"]) == 0
    capsys.readouterr()
    assert main(["delete", "gone"]) == 0
    assert main(["delete", "forced", "--force"]) == 0
    assert capsys.readouterr().err.count("deleted execution") == 2
    assert main(["show", "gone"]) == 1
    assert "no execution with id 'gone'" in capsys.readouterr().err
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "kept" in listed
    assert "gone" not in listed
    assert "forced" not in listed
    # its payloads are gone from the file: "in-kid"/"double" results of 'gone' were 2 and 4
    conn = sqlite3.connect(tmp_path / "cli.db")
    ids = {row[0] for row in conn.execute("SELECT id FROM executions")}
    conn.close()
    assert ids == {"kept"}


FLAKY = """
import os
from durable_gen import RetryPolicy, Step

COUNT = os.environ["DG_COUNT_FILE"]

def counted(name):
    with open(COUNT, "a") as f:
        f.write(name + "\\n")
    if os.path.exists(COUNT + "." + name + ".broken"):
        raise RuntimeError(name + " is broken")
    return name

def three(event):
    done = []
    for n in "abc":
        done.append((yield Step(counted, n, name=n, retry=RetryPolicy.none())))
    return done
"""


def _ran(tmp_path):
    p = tmp_path / "count"
    return p.read_text().split() if p.exists() else []


def test_redrive_and_fork_through_the_command(tmp_path, monkeypatch, capsys):
    (tmp_path / "flaky.py").write_text(FLAKY)
    monkeypatch.setenv("DG_COUNT_FILE", str(tmp_path / "count"))
    monkeypatch.setenv("DURABLE_GEN_DB", str(tmp_path / "cli.db"))
    broken = tmp_path / "count.b.broken"
    broken.touch()
    target = f"{tmp_path / 'flaky.py'}:three"
    assert main(["run", target, "--id", "f1"]) == 1
    assert _ran(tmp_path) == ["a", "b"]
    capsys.readouterr()
    # refusals: one line each, nothing changed
    assert main(["redrive", "nope"]) == 1
    assert capsys.readouterr().err == "durable-gen: no execution with id 'nope'\n"
    assert main(["fork", "f1", "--at", "zzz"]) == 2
    assert capsys.readouterr().err == (
        "durable-gen: cannot fork execution f1: no operation with id or name 'zzz' is "
        "recorded; durable-gen show lists the execution's operations\n"
    )
    assert _status("f1") == "FAILED"

    broken.unlink()
    assert main(["redrive", "f1"]) == 0
    assert capsys.readouterr().err.startswith("redrove execution f1: 1 operation(s) run again")
    assert main(["worker", "--once"]) == 0
    assert _status("f1") == "SUCCEEDED"
    assert _ran(tmp_path) == ["a", "b", "b", "c"]  # the kept success of a never ran again
    assert main(["redrive", "f1"]) == 1
    assert "execution 'f1' succeeded; only a FAILED" in capsys.readouterr().err

    assert main(["fork", "f1", "--at", "c", "--id", "f2", "--version", "v2"]) == 0
    out = capsys.readouterr()
    assert out.out == "f2\n"
    assert main(["worker", "--once"]) == 0
    assert _status("f2") == "SUCCEEDED"
    assert _ran(tmp_path) == ["a", "b", "b", "c", "c"]
    assert main(["fork", "f1", "--at", "c", "--id", "f2"]) == 1
    assert "'f2' exists already" in capsys.readouterr().err
    assert main(["list", "--version", "v2"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[1:]] == ["f2"]
    assert " v2 " in listed[1]


def test_list_filters_and_pages(wf, capsys):
    for i in range(5):
        assert main(["run", f"{wf}:flow", "--input", f'{{"n": {i}}}', "--id", f"job-{i}"]) == 0
    assert main(["run", f"{wf}:approval", "--id", "wait-1", "--no-wait"]) == 3
    capsys.readouterr()

    def ids(*args: str) -> tuple[list[str], str]:
        assert main(["list", *args]) == 0
        out = capsys.readouterr()
        return [line.split()[0] for line in out.out.splitlines()[1:]], out.err

    assert ids("--status", "RUNNING")[0] == ["wait-1"]
    assert ids("--name-prefix", "job-", "--limit", "10")[0] == [
        f"job-{i}" for i in range(4, -1, -1)
    ]
    assert ids("--function", f"{wf}:approval")[0] == ["wait-1"]
    assert ids("--since", "1h")[0][0] == "wait-1"
    assert ids("--until", "2000-01-01")[0] == []
    first, err = ids("--name-prefix", "job-", "--limit", "2")
    assert first == ["job-4", "job-3"]
    token = err.split("--next-token ")[1].strip()
    second, err = ids("--name-prefix", "job-", "--limit", "2", "--next-token", token)
    assert second == ["job-2", "job-1"]
    token = err.split("--next-token ")[1].strip()
    assert ids("--name-prefix", "job-", "--limit", "2", "--next-token", token) == (["job-0"], "")
    with pytest.raises(SystemExit):
        main(["list", "--status", "DONE"])
    assert "invalid choice: 'DONE'" in capsys.readouterr().err
    assert main(["list", "--next-token", "garbage"]) == 1
    assert "is not a page marker of this database" in capsys.readouterr().err


def test_a_worker_pinned_to_a_version_leaves_other_versions_alone(wf, capsys):
    assert (
        main(["start", f"{wf}:flow", "--input", '{"n": 1}', "--id", "old", "--version", "v1"]) == 0
    )
    assert (
        main(["start", f"{wf}:flow", "--input", '{"n": 2}', "--id", "new", "--version", "v2"]) == 0
    )
    capsys.readouterr()
    assert main(["worker", "--once", "--version", "v2"]) == 0
    assert capsys.readouterr().err == "durable-gen worker: execution new SUCCEEDED\n"
    assert (_status("old"), _status("new")) == ("RUNNING", "SUCCEEDED")
    assert main(["run", f"{wf}:flow", "--id", "old", "--input", '{"n": 1}', "--version", "v2"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution old resumed\n"
        "durable-gen: execution 'old' started on code version 'v1'; this worker runs version "
        "'v2' and leaves it alone: advance it with a worker started with --version v1, or "
        "without --version to replay it on this code (durable-gen check tells whether that "
        "is safe)\n"
    )
    assert main(["worker", "--once", "--version", "v1"]) == 0
    assert _status("old") == "SUCCEEDED"
