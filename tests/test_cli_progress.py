"""What `durable-gen run` tells while it runs, under a pseudo-terminal and without one:
the execution id, each failed attempt with its error and next attempt, the callback
to complete and how; and what `show` adds (callback ids, stack traces)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable_gen._cli.main import main
from tests._procs import cli_env

FLOW = """
from pathlib import Path

import pytest

from durable_gen import CreateCallback, RetryPolicy, Step

TRIES = Path(__file__).with_name("tries")


def flaky():
    n = int(TRIES.read_text()) + 1 if TRIES.exists() else 1
    TRIES.write_text(str(n))
    if n < 3:
        raise ConnectionError(f"refused on try {n}")
    return "ok"


def order(event):
    charged = yield Step(flaky, name="charge", retry=RetryPolicy(max_attempts=5, initial_delay=1))
    handle = yield CreateCallback("approval", timeout=600)
    return [charged, (yield handle.result())]


def broken(event):
    yield Step(flaky, name="charge", retry=RetryPolicy.none())
"""


def _read_until(fd: int, pattern: str, timeout: float) -> str:
    """What the terminal showed, up to the first match of ``pattern`` (or the timeout)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if re.search(pattern, seen.decode(errors="replace")):
                break
    return seen.decode(errors="replace")


def test_run_on_a_terminal_shows_the_id_the_retries_and_the_callback_to_complete(tmp_path):
    (tmp_path / "flows.py").write_text(FLOW)
    db = tmp_path / "p.db"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable_gen", "run", "flows.py:order", "--db", str(db)],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    try:
        screen = _read_until(leader, r"complete it with: durable-gen callback succeed \S+", 30)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        os.close(leader)
    # the live status line is redrawn in place ("\r" + erase line); the notes stay
    text = screen.replace("\r\x1b[K", "\n")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[")
    ]
    ex = re.fullmatch(r"durable-gen: execution ([0-9a-f]{32}) started", lines[0])
    assert ex, lines
    assert re.fullmatch(
        r"durable-gen: Step 'charge' failed attempt 1: ConnectionError: refused on try 1; "
        r"next attempt at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z",
        lines[1],
    ), lines
    assert lines[2].startswith("durable-gen: Step 'charge' failed attempt 2: ConnectionError: ")
    callback = re.fullmatch(
        r"durable-gen: waiting for callback (\S+) \(times out after 10\.0 min\); complete it "
        rf"with: durable-gen callback succeed (\S+) '<json>' --db {re.escape(str(db))}",
        lines[3],
    )
    assert callback, lines
    assert callback[1] == callback[2]
    assert f"[{ex[1][:12]}]" in screen  # the live line was drawn on the terminal
    # the instruction works as printed
    env = cli_env()
    answer = ["callback", "succeed", callback[1], '"yes"', "--db", str(db)]
    done = subprocess.run(
        [sys.executable, "-m", "durable_gen", *answer],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    again = ["run", "flows.py:order", "--id", ex[1], "--db", str(db), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "durable_gen", *again],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, '["ok", "\\"yes\\""]\n', "")


def test_without_a_terminal_the_same_moments_are_lines(tmp_path, monkeypatch, capsys):
    (tmp_path / "flows.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "flows.py:order", "--db", "p.db", "--no-wait"]) == 3
    out = capsys.readouterr()
    ex = out.out.strip()
    lines = out.err.splitlines()
    assert lines[0] == f"durable-gen: execution {ex} started"
    assert lines[1].startswith("durable-gen: Step 'charge' failed attempt 1: ConnectionError: ")
    assert lines[2].startswith(f"durable-gen: execution {ex} is suspended until ")
    assert "\x1b[K" not in out.err  # no live line when stderr is not a terminal
    assert main(["run", "flows.py:order", "--db", "p.db", "--id", ex, "--no-wait", "--quiet"]) == 3
    assert capsys.readouterr().err.startswith(f"durable-gen: execution {ex} is suspended")


def test_show_lists_open_callbacks_and_the_stack_traces_of_failures(tmp_path, monkeypatch, capsys):
    (tmp_path / "flows.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "flows.py:broken", "--db", "p.db", "--id", "b1", "--quiet"]) == 1
    assert capsys.readouterr().err == (
        "durable-gen: execution b1 failed: StepError: refused on try 1 "
        "(durable-gen show b1 has the stack trace)\n"
    )
    assert main(["show", "b1", "--db", "p.db"]) == 0
    shown = capsys.readouterr().out
    assert "failures (--no-trace hides them)" in shown
    assert "  Step 'charge' (FAILED, attempt 1): ConnectionError: refused on try 1" in shown
    assert re.search(r'File ".*flows\.py", line \d+, in flaky', shown), shown
    assert 'raise ConnectionError(f"refused on try {n}")' in shown
    assert main(["show", "b1", "--db", "p.db", "--no-trace"]) == 0
    assert "failures" not in capsys.readouterr().out

    (tmp_path / "tries").write_text("5")  # the next try succeeds at once
    assert main(["run", "flows.py:order", "--db", "p.db", "--id", "o1", "--no-wait"]) == 3
    capsys.readouterr()
    assert main(["show", "o1", "--db", "p.db"]) == 0
    shown = capsys.readouterr().out
    cb = re.search(r"CreateCallback 'approval'  STARTED  callback (\S+)  times out at ", shown)
    assert cb, shown
    assert (
        f"  CreateCallback 'approval': durable-gen callback succeed {cb[1]} '<json>' --db p.db"
        in shown
    )
    assert Path("p.db").exists()


LOGGED = """
from durable_gen import Step, Wait, get_logger

log = get_logger(__name__)


def flow(event):
    log.info("starting with %s", event)
    x = yield Step(lambda: log.info("in the step") or 1, name="one")
    yield Wait(seconds=1)
    log.info("after the wait, x=%s", x)
    return x
"""


def test_log_records_show_with_their_execution_and_operation_once_each(tmp_path):
    (tmp_path / "logged.py").write_text(LOGGED)
    env = cli_env(DURABLE_GEN_LOG="info")
    args = ["--db", "l.db", "run", "logged.py:flow", "--input", "5", "--id", "L1", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "durable_gen", *args],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    records = [line.split(" ", 3)[3] for line in done.stderr.splitlines()]
    # the body ran twice (before and after the Wait); its first line was replayed once
    assert records == [
        "durable_gen_target_logged [L1 the root context] starting with 5",
        "durable_gen_target_logged [L1 one] in the step",
        "durable_gen_target_logged [L1 the root context] after the wait, x=1",
    ], done.stderr
    assert all(line.split(" ")[2] == "INFO" for line in done.stderr.splitlines())


def test_global_options_before_or_after_the_subcommand_and_the_version(tmp_path, capsys):
    from durable_gen import __version__

    db = str(tmp_path / "g.db")
    (tmp_path / "logged.py").write_text(LOGGED)
    assert main(["--db", db, "run", f"{tmp_path / 'logged.py'}:flow", "--id", "a", "--quiet"]) == 0
    capsys.readouterr()
    for args in (["--db", db, "list"], ["list", "--db", db]):
        assert main(args) == 0
        assert capsys.readouterr().out.splitlines()[1].startswith("a ")
    # given in both places, the one after the subcommand wins
    assert main(["--db", str(tmp_path / "none.db"), "show", "a", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("execution a\n")
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"durable-gen {__version__}\n"
    with pytest.raises(SystemExit):
        main(["list", "--log-level", "loud"])
    assert "invalid choice: 'LOUD' (choose from 'DEBUG', 'INFO', 'WARNING', 'ERROR')" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit status: 0 done" in capsys.readouterr().out


def test_json_output_of_run_list_and_show(tmp_path, monkeypatch, capsys):
    import json

    (tmp_path / "flows.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tries").write_text("5")
    assert main(["run", "flows.py:order", "--db", "j.db", "--id", "j1", "--no-wait", "--json"]) == 3
    assert json.loads(capsys.readouterr().out) == {
        "id": "j1",
        "status": "RUNNING",
        "result": None,
        "error": None,
    }
    (tmp_path / "tries").write_text("0")  # the next try fails
    assert main(["run", "flows.py:broken", "--db", "j.db", "--id", "j2", "--json", "--quiet"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["status"], doc["error"]["ErrorMessage"]) == ("FAILED", "refused on try 1")
    assert doc["error"]["StackTrace"]
    assert main(["list", "--db", "j.db", "--json", "--limit", "1"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed["executions"]] == ["j2"]
    assert set(listed["executions"][0]) == {
        "id",
        "status",
        "target",
        "code_version",
        "started",
        "ended",
        "wakes",
        "input",
        "result",
        "error",
        "deadline",
        "timeout_seconds",
        "retention_days",
    }
    assert main(["list", "--db", "j.db", "--json", "--next-token", listed["next_token"]]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)["executions"]] == ["j1"]
    # --json is a global option too: before the subcommand it means the same
    assert main(["--json", "--db", "j.db", "list", "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == listed
    with pytest.raises(SystemExit) as e:
        main(["--json", "--db", "j.db", "stop", "j1"])
    assert e.value.code == 2
    assert "--json is an output of run, list, show, history, logs; stop has none" in (
        capsys.readouterr().err
    )
    assert main(["show", "j1", "--db", "j.db", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "RUNNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", shown["started"])
    assert [(op["Name"], op["Status"]) for op in shown["operations"]] == [
        ("charge", "SUCCEEDED"),
        ("approval", "STARTED"),
    ]
