"""``durable-gen check`` and ``check_replay_compatible``: recorded executions replayed
against changed code, nothing run.

The acceptance test of issue 21 (part 1): 50 executions of v1 wait on callbacks;
the code changes incompatibly (a step inserted before the wait): ``check --status
RUNNING`` names every one and its first divergence, exit 1; a compatible change
(a step after the wait): exit 0. ``check`` runs in a child process, as a deploy
script would run it, so each version of the file is imported afresh.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore.parsers
import botocore.session
import pytest

from durable_gen import InMemoryEngine, SqliteEngine, Step, Wait
from durable_gen._cli.main import main
from durable_gen._engine.targets import canonical_target, resolve_target
from durable_gen.testing import CheckResult, check_replay_compatible, read_history_file

from ._procs import cli_env, run_cli

V1 = """
import os
from durable_gen import CreateCallback, Step

def notify(order):
    with open(os.environ["DG_COUNT_FILE"], "a") as f:
        f.write(order + "\\n")
    return "sent " + order

def order_flow(event):
    yield Step(notify, event["order"], name="notify")
    handle = yield CreateCallback("approval", timeout=86400)
    answer = yield handle
    return {"order": event["order"], "answer": answer}
"""

# incompatible: a step inserted before the callback
V2 = V1.replace(
    """    handle = yield CreateCallback("approval", timeout=86400)""",
    """    yield Step(notify, event["order"], name="audit")
    handle = yield CreateCallback("approval", timeout=86400)""",
)

# compatible: a step added after the callback
V3 = V1.replace(
    """    answer = yield handle""",
    """    answer = yield handle
    yield Step(notify, event["order"], name="ship")""",
)

RUNNING = 50
FINISHED = 5


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DG_COUNT_FILE", str(tmp_path / "count"))
    path = tmp_path / "orders.py"
    path.write_text(V1)
    return path


def step_calls(tmp_path: Path) -> int:
    p = tmp_path / "count"
    return len(p.read_text().splitlines()) if p.exists() else 0


def start_orders(db: Path, path: Path, ids: list[str]) -> None:
    """Executions of ``path``'s order_flow, each suspended on its callback."""
    target = f"{path}:order_flow"
    workflow = resolve_target(target)
    with SqliteEngine(db) as engine:
        for execution_id in ids:
            engine.start(
                workflow,
                {"order": execution_id},
                execution_id=execution_id,
                target=canonical_target(target),
            )
            assert engine.resume(workflow, execution_id, wait=False).status == "RUNNING"


def finish_order(db: Path, path: Path, execution_id: str) -> None:
    workflow = resolve_target(f"{path}:order_flow")
    with SqliteEngine(db) as engine:
        callback = next(op for op in engine.store.load(execution_id).values() if op.callback_id)
        assert callback.callback_id is not None
        engine.store.complete_callback(
            callback.callback_id, "succeed", engine.clock.now(), payload='"yes"'
        )
        assert engine.resume(workflow, execution_id).status == "SUCCEEDED"


def test_check_names_every_running_execution_the_change_breaks(flow: Path, tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    ids = [f"order-{i:02d}" for i in range(RUNNING + FINISHED)]
    start_orders(db, flow, ids)
    for execution_id in ids[RUNNING:]:
        finish_order(db, flow, execution_id)
    calls = step_calls(tmp_path)
    env = cli_env(DG_COUNT_FILE=str(tmp_path / "count"))
    check = ["check", f"{flow}:order_flow", "--status", "RUNNING", "--db", str(db)]

    flow.write_text(V2)  # a step inserted before the wait
    done = run_cli(*check, env=env)
    assert done.returncode == 1, done.stderr
    blocks = re.findall(r"^(order-\d\d): DIVERGES at the (.*)$", done.stdout, re.M)
    assert blocks == [(i, "2nd operation of the root context") for i in ids[:RUNNING]]
    first = done.stdout.split("order-01:")[0]
    assert first == (
        "order-00: DIVERGES at the 2nd operation of the root context\n"
        "    recorded:  CreateCallback 'approval'\n"
        "    now:       yields Step 'audit'\n"
        f"    at:        {flow}:12 (order_flow)\n"
        '               yield Step(notify, event["order"], name="audit")\n'
    )
    assert done.stdout.endswith(f"{RUNNING} executions checked: 0 compatible, {RUNNING} diverge\n")
    assert done.stderr == ""

    flow.write_text(V3)  # a step added after the wait
    done = run_cli(*check, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:-1] == [f"{i}: compatible: replays its 2 recorded operations" for i in ids[:50]]
    assert lines[-1] == f"{RUNNING} executions checked: {RUNNING} compatible, 0 diverge"

    assert step_calls(tmp_path) == calls  # nothing ran
    with SqliteEngine(db) as engine:  # nothing changed
        assert [r.status for r in engine.store.executions(limit=100)].count("RUNNING") == RUNNING


def test_a_history_file_from_durable_gen_history_json(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "orders.db"
    start_orders(db, flow, ["h1"])
    assert main(["history", "h1", "--json", "--db", str(db)]) == 0
    history = tmp_path / "h1.json"
    history.write_text(capsys.readouterr().out)
    env = cli_env(DG_COUNT_FILE=str(tmp_path / "count"))

    flow.write_text(V2)
    done = run_cli("check", f"{flow}:order_flow", "--history-file", str(history), env=env)
    assert done.returncode == 1
    assert done.stdout.startswith(
        f"{history}: DIVERGES at the 2nd operation of the root context\n"
        "    recorded:  CreateCallback 'approval'\n"
        "    now:       yields Step 'audit'\n"
    )
    assert done.stdout.endswith("1 execution checked: 0 compatible, 1 diverges\n")

    flow.write_text(V3)
    done = run_cli("check", f"{flow}:order_flow", "--history-file", str(history), env=env)
    assert (done.returncode, done.stdout) == (
        0,
        f"{history}: compatible: replays its 2 recorded operations\n"
        "1 execution checked: 1 compatible, 0 diverge\n",
    )


def boto3_history(events: list[dict[str, Any]]) -> dict[str, Any]:
    """``GetDurableExecutionHistory`` as boto3 returns it: the REST wire body (epoch
    seconds) parsed by botocore (datetimes)."""
    wire = json.loads(json.dumps(events))
    for e in wire:
        e["EventTimestamp"] = e["EventTimestamp"] / 1000
        for details in e.values():
            if isinstance(details, dict):
                for key in ("ScheduledEndTimestamp", "StartTimestamp", "EndTimestamp"):
                    if key in details:
                        details[key] = details[key] / 1000
    model = botocore.session.get_session().get_service_model("lambda")
    shape = model.operation_model("GetDurableExecutionHistory").output_shape
    body = json.dumps({"Events": wire}).encode()
    parsed: dict[str, Any] = botocore.parsers.create_parser("rest-json").parse(
        {"body": body, "headers": {}, "status_code": 200}, shape
    )
    return parsed


def waits_then_steps(event: Any) -> Any:
    yield Step(str, 1, name="first")
    yield Wait(seconds=3600, name="an-hour")
    yield Step(str, 2, name="second")


def waits_then_steps_renamed(event: Any) -> Any:
    yield Step(str, 1, name="first-renamed")
    yield Wait(seconds=3600, name="an-hour")


def test_a_boto3_history_with_iso_timestamps(tmp_path: Path) -> None:
    engine = InMemoryEngine()
    result = engine.run(waits_then_steps, {"n": 1})  # the virtual clock skips the hour
    response = boto3_history(engine.store.history(result.execution_id))
    assert type(response["Events"][0]["EventTimestamp"]).__name__ == "datetime"
    path = tmp_path / "from-lambda.json"
    path.write_text(json.dumps(response, default=str))  # "2026-01-01 00:00:00.123000+00:00"
    assert "+00:00" in path.read_text()

    assert check_replay_compatible(waits_then_steps, path).compatible
    assert read_history_file(path) == read_history_file(path)
    diverged = check_replay_compatible(waits_then_steps_renamed, path)
    assert not diverged
    assert diverged.message == (
        "diverges at the 1st operation of the root context: the log recorded Step 'first', "
        f"but the code now yields Step 'first-renamed' ({__file__}:"
        f"{waits_then_steps_renamed.__code__.co_firstlineno + 1} (waits_then_steps_renamed))"
    )
    assert diverged.source_line == 'yield Step(str, 1, name="first-renamed")'


def test_the_library_call_takes_a_store_log_and_reports_early_returns() -> None:
    engine = InMemoryEngine()
    result = engine.run(waits_then_steps, None)
    log = engine.store.load(result.execution_id)
    ok = check_replay_compatible(waits_then_steps, log)
    assert ok == CheckResult(
        execution_id=result.execution_id,
        compatible=True,
        message="compatible: replays its 3 recorded operations",
        replayed=3,
    )

    def shorter(event: Any) -> Any:
        yield Step(str, 1, name="first")

    short = check_replay_compatible(shorter, log)
    assert (short.compatible, short.position, short.source) == (
        False,
        "2nd operation of the root context",
        None,
    )
    assert short.message == (
        "diverges at the 2nd operation of the root context: the log recorded Wait 'an-hour', "
        "but the code now returns after 1 operation"
    )


def test_step_arguments_are_compared_when_the_log_has_them() -> None:
    engine = InMemoryEngine()
    result = engine.run(waits_then_steps, None)

    def other_args(event: Any) -> Any:
        yield Step(str, 99, name="first")

    got = check_replay_compatible(other_args, engine.store.load(result.execution_id))
    assert got.recorded == "Step 'first' called with other arguments"


def test_bad_input_is_one_line_and_exit_2(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "orders.db"
    start_orders(db, flow, ["b1"])
    target = f"{flow}:order_flow"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Events": [{"EventType": "StepExploded", "EventId": 1, "Id": "x"}]}))
    cases = [
        (
            ["--id", "nope", "--db", str(db)],
            f"no execution with id 'nope' in {db}; `durable-gen list` shows the executions",
        ),
        (
            ["--history-file", str(tmp_path / "missing.json")],
            f"cannot read --history-file {tmp_path / 'missing.json'}: No such file or directory",
        ),
        (
            ["--history-file", str(bad)],
            f"--history-file {bad}: event 1 ('StepExploded'): unknown event type 'StepExploded'; "
            "a history holds ExecutionStarted, ExecutionSucceeded, ExecutionFailed, "
            "ExecutionTimedOut, ExecutionStopped, StepStarted, StepSucceeded, StepFailed, "
            "WaitStarted, WaitSucceeded, WaitCancelled, CallbackStarted, CallbackSucceeded, "
            "CallbackFailed, CallbackTimedOut, ContextStarted, ContextSucceeded, ContextFailed, "
            "ChainedInvokeStarted, ChainedInvokeSucceeded, ChainedInvokeFailed, "
            "ChainedInvokeTimedOut, ChainedInvokeStopped, ExecutionPaused, ExecutionResumed, "
            "InvocationCompleted",
        ),
        (["--db", str(tmp_path / "none.db")], f"no durable_gen database at {tmp_path / 'none.db'}"),
    ]
    for args, message in cases:
        assert main(["check", target, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"durable-gen: {message}"), err
        assert err.count("\n") == 1
    assert main(["check", f"{tmp_path / 'nothere.py'}:flow", "--db", str(db)]) == 2
    assert capsys.readouterr().err == f"durable-gen: no such file: {tmp_path / 'nothere.py'}\n"
