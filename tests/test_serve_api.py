"""`durable-gen serve`'s Lambda routes through boto3: names, ARNs, state, pause, resume,
delete, the execution-name rule and where faults land (in-process server, real HTTP)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from durable_gen import CreateCallback, RetryPolicy, Step
from durable_gen._http.serve import make_server
from tests._procs import read_payloads

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:{fn}:$LATEST/durable-execution/{n}/{n}"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:{fn}"


def double(event):
    return (yield Step(lambda n: n * 2, event["n"], name="double"))


def approval(event):
    cb = yield CreateCallback(name="approval", timeout=3600)
    answer = yield cb.result()
    return {"order": event["order"], "answer": answer}


FLAKY_RUNS: list[str] = []
FLAKY_BROKEN: set[str] = set()


def _flaky_step(name):
    FLAKY_RUNS.append(name)
    if name in FLAKY_BROKEN:
        raise RuntimeError(f"{name} broke")
    return name


def flaky(event):
    done = []
    for name in ("a", "b", "c"):
        done.append((yield Step(_flaky_step, name, name=name, retry=RetryPolicy.none())))
    return done


def slow(event):
    yield Step(time.sleep, event.get("seconds", 0.5), name="nap")
    return event


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[object, object]]:
    server = make_server(
        "127.0.0.1",
        0,
        db=str(tmp_path / "api.db"),
        functions={
            "double": "tests.test_serve_api:double",
            "approval": "tests.test_serve_api:approval",
            "slow": "tests.test_serve_api:slow",
            "flaky": "tests.test_serve_api:flaky",
        },
        region="eu-west-1",
        account="123456789012",
        concurrency=3,  # the worker pool, as `serve --concurrency 3`
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    client = read_payloads(
        boto3.client(
            "lambda",
            endpoint_url=f"http://{host!s}:{port}",
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1}, read_timeout=30),
        )
    )
    yield client, server
    client.close()
    server.shutdown()
    server.drain(1.0)
    server.server_close()
    thread.join(5)


def _code(e: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = e.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _wait_status(client, arn: str, *statuses: str) -> dict:
    for _ in range(400):
        desc = client.get_durable_execution(DurableExecutionArn=arn)
        if desc["Status"] in statuses:
            return desc
        time.sleep(0.025)
    raise AssertionError(f"{arn} never reached {statuses}: {desc['Status']}")


def test_function_names_arns_and_qualifiers(served):
    client, _ = served
    for name in (
        "double",
        "double:$LATEST",
        FUNCTION_ARN.format(fn="double"),
        FUNCTION_ARN.format(fn="double") + ":$LATEST",
        "123456789012:function:double",
    ):
        out = client.invoke(FunctionName=name, Payload=json.dumps({"n": 4}))
        assert json.loads(out["Payload"].read()) == 8
        assert out["ExecutedVersion"] == "$LATEST"
    out = client.invoke(FunctionName="double", Payload=b'{"n": 1}', DurableExecutionName="d")
    assert out["DurableExecutionArn"] == ARN.format(fn="double", n="d")
    desc = client.get_durable_execution(DurableExecutionArn=out["DurableExecutionArn"])
    assert desc["DurableExecutionName"] == "d"
    assert desc["FunctionArn"] == FUNCTION_ARN.format(fn="double") + ":$LATEST"
    assert desc["Version"] == "$LATEST"
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName="double:7", Payload=b"{}")
    assert _code(e) == (404, "ResourceNotFoundException")
    assert "durable-gen serve runs $LATEST only" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName="double", Qualifier="3", Payload=b"{}")
    assert _code(e) == (404, "ResourceNotFoundException")


def test_state_pages_through_the_operations(served):
    client, _ = served
    out = client.invoke(FunctionName="double", Payload=b'{"n": 2}', DurableExecutionName="s")
    arn = out["DurableExecutionArn"]
    whole = client.get_durable_execution_state(DurableExecutionArn=arn, CheckpointToken="any")
    assert [(o["Type"], o["Status"]) for o in whole["Operations"]] == [
        ("EXECUTION", "STARTED"),
        ("STEP", "SUCCEEDED"),
    ]
    assert whole["Operations"][1]["StepDetails"]["Result"] == "4"
    assert whole["Operations"][1]["StartTimestamp"].year >= 2026  # epoch seconds, parsed
    first = client.get_durable_execution_state(
        DurableExecutionArn=arn, CheckpointToken="any", MaxItems=1
    )
    assert first["NextMarker"]  # opaque (tests/test_paging.py)
    rest = client.get_durable_execution_state(
        DurableExecutionArn=arn, CheckpointToken="any", Marker=first["NextMarker"]
    )
    assert first["Operations"] + rest["Operations"] == whole["Operations"]
    assert "NextMarker" not in rest


def test_pause_resume_and_delete(served):
    client, _ = served
    out = client.invoke(
        FunctionName="approval",
        InvocationType="Event",
        Payload=b'{"order": "o-1"}',
        DurableExecutionName="p",
    )
    arn = out["DurableExecutionArn"]
    for _ in range(400):
        events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        if any(e["EventType"] == "CallbackStarted" for e in events):
            break
        time.sleep(0.025)
    callback_id = next(
        e["CallbackStartedDetails"]["CallbackId"]
        for e in events
        if e["EventType"] == "CallbackStarted"
    )
    with pytest.raises(ClientError) as e:
        client.delete_durable_execution(DurableExecutionArn=arn)
    assert _code(e) == (409, "ResourceConflictException")

    client.pause_durable_execution(DurableExecutionArn=arn)
    assert _wait_status(client, arn, "PAUSED", "PAUSING")["Status"] in ("PAUSED", "PAUSING")
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"ok"')
    time.sleep(0.3)  # a worker that ignored the pause would finish it in this time
    assert _wait_status(client, arn, "PAUSED")["Status"] == "PAUSED"
    with pytest.raises(ClientError) as e:
        client.resume_durable_execution(DurableExecutionArn=ARN.format(fn="double", n="nope"))
    assert _code(e) == (404, "ResourceNotFoundException")
    client.resume_durable_execution(DurableExecutionArn=arn)
    desc = _wait_status(client, arn, "SUCCEEDED")
    assert json.loads(desc["Result"]) == {"order": "o-1", "answer": '"ok"'}
    kinds = [
        e["EventType"]
        for e in client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    ]
    assert kinds.index("ExecutionPaused") < kinds.index("ExecutionResumed")
    with pytest.raises(ClientError) as e:
        client.pause_durable_execution(DurableExecutionArn=arn)
    assert _code(e) == (409, "ResourceConflictException")

    deleted = client.delete_durable_execution(DurableExecutionArn=arn)
    assert deleted["DeletionRequestTimestamp"].year >= 2026
    with pytest.raises(ClientError) as e:
        client.get_durable_execution(DurableExecutionArn=arn)
    assert _code(e) == (404, "ResourceNotFoundException")
    listed = client.list_durable_executions_by_function(FunctionName="approval")
    assert listed["DurableExecutions"] == []


def test_one_name_one_execution(served):
    client, server = served
    payload = json.dumps({"seconds": 0.5, "k": 1})

    def call() -> tuple[int, bytes]:
        out = client.invoke(FunctionName="slow", Payload=payload, DurableExecutionName="same")
        return out["StatusCode"], out["Payload"].read()

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: call(), range(6)))
    assert answers == [(200, json.dumps(json.loads(payload), separators=(",", ":")).encode())] * 6
    assert [i.id for i in server.store.executions()] == ["same"]
    history = server.store.history("same")
    assert [e["EventType"] for e in history].count("StepStarted") == 1

    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName="slow", Payload=b'{"k": 2}', DurableExecutionName="same")
    assert _code(e) == (409, "DurableExecutionAlreadyStartedException")
    assert "already started with another input" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        client.invoke(FunctionName="double", Payload=payload, DurableExecutionName="same")
    assert _code(e) == (409, "DurableExecutionAlreadyStartedException")
    assert e.value.response["Error"]["Message"] == (
        "execution name 'same' is taken by an execution of tests.test_serve_api:slow, not of "
        "tests.test_serve_api:double; an execution name belongs to one function: choose "
        "another name"
    )
    assert [i.id for i in server.store.executions()] == ["same"]


def test_a_broken_database_is_the_servers_fault(served, capsys):
    client, server = served
    client.invoke(FunctionName="double", Payload=b'{"n": 1}', DurableExecutionName="ok")
    server.store._conn.execute("DROP VIEW events")  # a fault the caller did not cause
    server.store._conn.execute("DROP TABLE journal")
    with pytest.raises(ClientError) as e:
        client.get_durable_execution_history(DurableExecutionArn="ok")
    assert _code(e) == (500, "ServiceException")
    assert "GET /2025-12-01/durable-executions/ok/history" in capsys.readouterr().err


def test_an_unnamed_synchronous_invoke_that_runs_long_is_logged(served, capsys, monkeypatch):
    from durable_gen._http import serve as _serve

    client, _ = served
    monkeypatch.setattr(_serve, "UNNAMED_INVOKE_WARNING_SECONDS", 0.2)  # 60 s in real life
    out = client.invoke(FunctionName="slow", Payload=b'{"seconds": 0.6}')
    assert out["StatusCode"] == 200
    err = capsys.readouterr().err
    assert "was started by a synchronous Invoke without a DurableExecutionName" in err
    assert err.count("warning:") == 1
    client.invoke(FunctionName="slow", Payload=b'{"seconds": 0.6}', DurableExecutionName="n")
    assert "warning:" not in capsys.readouterr().err  # a named one is safe to retry


def _post(server, arn: str, action: str, body: dict | None = None) -> tuple[int, dict]:
    """durable_gen's own routes (redrive, fork): Lambda's API, and so boto3, has none."""
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/2025-12-01/durable-executions/{urllib.parse.quote(arn, safe='')}"
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"{url}/{action}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_redrive_and_fork_through_serve(served):
    client, server = served
    FLAKY_RUNS.clear()
    FLAKY_BROKEN.clear()
    FLAKY_BROKEN.add("b")
    out = client.invoke(FunctionName="flaky", Payload=b"{}", DurableExecutionName="fl")
    assert out["FunctionError"] == "Unhandled"
    arn = ARN.format(fn="flaky", n="fl")
    assert FLAKY_RUNS == ["a", "b"]
    # refused while nothing failed... and for an unknown execution
    assert _post(server, ARN.format(fn="flaky", n="nope"), "redrive")[0] == 404
    FLAKY_BROKEN.clear()
    status, body = _post(server, arn, "redrive")
    assert status == 200
    assert len(body["Rerun"]) == 1
    desc = _wait_status(client, arn, "SUCCEEDED")
    assert json.loads(desc["Result"]) == ["a", "b", "c"]
    assert FLAKY_RUNS == ["a", "b", "b", "c"]
    status, body = _post(server, arn, "redrive")
    assert (status, body["__type"]) == (409, "ResourceConflictException")
    assert "'fl' succeeded; only a FAILED, STOPPED or TIMED_OUT" in body["message"]
    kinds = [
        e["EventType"]
        for e in client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    ]
    assert (
        kinds.index("ExecutionFailed")
        < kinds.index("ExecutionRedriven")
        < kinds.index("ExecutionSucceeded")
    )

    status, body = _post(server, arn, "fork", {"FromOperation": "c", "DurableExecutionName": "fl2"})
    assert status == 200
    assert body["DurableExecutionName"] == "fl2"
    fork = _wait_status(client, body["DurableExecutionArn"], "SUCCEEDED")
    assert json.loads(fork["Result"]) == ["a", "b", "c"]
    assert FLAKY_RUNS == ["a", "b", "b", "c", "c"]
    assert _post(server, arn, "fork", {"FromOperation": "zzz"})[0] == 400
    assert _post(server, arn, "fork", {})[0] == 400
    listed = client.list_durable_executions_by_function(FunctionName="flaky")["DurableExecutions"]
    assert [e["DurableExecutionName"] for e in listed] == ["fl", "fl2"]


def test_serve_pinned_to_a_version_starts_and_advances_only_that_version(tmp_path):
    from durable_gen import SqliteEngine, SqliteStore

    db = str(tmp_path / "pinned.db")
    with SqliteEngine(db, version="v1") as old:
        old.start(double, {"n": 1}, execution_id="old", target="tests.test_serve_api:double")
    server = make_server(
        "127.0.0.1", 0, db=db, functions={"double": "tests.test_serve_api:double"}, version="v2"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://{host!s}:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    try:
        out = client.invoke(FunctionName="double", Payload=b'{"n": 21}', DurableExecutionName="new")
        assert out["Payload"].read() == b"42"
        time.sleep(0.3)  # a worker that ignored the pin would finish "old" in this time
        with SqliteStore(db) as store:
            assert (store.info("new").code_version, store.info("new").status) == ("v2", "SUCCEEDED")
            assert (store.info("old").code_version, store.info("old").status) == ("v1", "RUNNING")
    finally:
        client.close()
        server.shutdown()
        server.drain(1.0)
        server.server_close()
        thread.join(5)
