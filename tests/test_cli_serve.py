"""boto3's lambda client against ``durable-gen serve``: invoke, history, callbacks, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests._procs import free_port, lambda_client, wait_for_port


def arn(function: str, name: str) -> str:
    """The ARN ``durable-gen serve`` hands out (Lambda's shape)."""
    return (
        f"arn:aws:lambda:us-east-1:000000000000:function:{function}:$LATEST"
        f"/durable-execution/{name}/{name}"
    )


WF = """
from durable_gen import CreateCallback, Step, Wait

def approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(str, event["order"], name="notify")
    answer = yield handle.result()
    return {"order": event["order"], "answer": answer}

def double(event):
    return (yield Step(lambda n: n * 2, event["n"], name="double"))

def sleepy(event):
    yield Wait(seconds=3600)
    return "never"
"""


@pytest.fixture
def lam(tmp_path):
    wf = tmp_path / "served.py"
    wf.write_text(WF)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])
    args = [sys.executable, "-m", "durable_gen", "serve", "--port", str(port)]
    args += ["--db", str(tmp_path / "serve.db")]
    for name in ("approval", "double", "sleepy"):
        args += ["--function", f"{name}={wf}:{name}"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = lambda_client(port)
    wait_for_port(port, proc)
    yield client
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)


def test_invoke_read_history_and_complete_a_callback(lam):
    out = lam.invoke(
        FunctionName="double", Payload=json.dumps({"n": 21}), DurableExecutionName="d1"
    )
    assert out["StatusCode"] == 200
    assert out["DurableExecutionArn"] == arn("double", "d1")
    assert json.loads(out["Payload"].read()) == 42

    started = lam.invoke(
        FunctionName="approval",
        InvocationType="Event",
        Payload=json.dumps({"order": "o-7"}),
        DurableExecutionName="a1",
    )
    assert started["StatusCode"] == 202
    for _ in range(100):
        events = lam.get_durable_execution_history(DurableExecutionArn="a1")["Events"]
        if any(e["EventType"] == "InvocationCompleted" for e in events):
            break
        time.sleep(0.05)
    cb = next(e for e in events if e["EventType"] == "CallbackStarted")
    assert cb["Name"] == "approval"
    assert cb["CallbackStartedDetails"]["Timeout"] == 3600
    assert lam.get_durable_execution(DurableExecutionArn="a1")["Status"] == "RUNNING"

    lam.send_durable_execution_callback_success(
        CallbackId=cb["CallbackStartedDetails"]["CallbackId"], Result=b'{"approved": true}'
    )
    for _ in range(100):
        desc = lam.get_durable_execution(DurableExecutionArn="a1")
        if desc["Status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert desc["Status"] == "SUCCEEDED"
    assert json.loads(desc["Result"]) == {"order": "o-7", "answer": '{"approved": true}'}
    history = lam.get_durable_execution_history(DurableExecutionArn="a1")["Events"]
    kinds = [e["EventType"] for e in history]
    assert kinds[0] == "ExecutionStarted"
    assert "CallbackSucceeded" in kinds
    assert kinds[-1] == "ExecutionSucceeded"
    assert [e["EventId"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["EventTimestamp"].year >= 2026  # parsed by botocore as a timestamp

    page = lam.get_durable_execution_history(DurableExecutionArn="a1", MaxItems=2)
    assert len(page["Events"]) == 2
    assert page["NextMarker"]  # opaque (tests/test_paging.py)

    listed = lam.list_durable_executions_by_function(FunctionName="approval")
    assert [(e["DurableExecutionArn"], e["Status"]) for e in listed["DurableExecutions"]] == [
        (arn("approval", "a1"), "SUCCEEDED")
    ]
    # the function by its ARN, or qualified with $LATEST, is the same function
    for name in (
        "arn:aws:lambda:us-east-1:000000000000:function:approval",
        "approval:$LATEST",
        "000000000000:function:approval",
    ):
        again = lam.list_durable_executions_by_function(FunctionName=name)
        assert again["DurableExecutions"] == listed["DurableExecutions"]
    desc = lam.get_durable_execution(DurableExecutionArn=arn("approval", "a1"))
    assert desc["DurableExecutionArn"] == arn("approval", "a1")
    assert desc["DurableExecutionName"] == "a1"
    assert desc["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:approval:$LATEST"

    with pytest.raises(ClientError) as e:
        lam.send_durable_execution_callback_success(
            CallbackId=cb["CallbackStartedDetails"]["CallbackId"], Result=b"again"
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_stop_and_errors(lam):
    lam.invoke(FunctionName="sleepy", InvocationType="Event", DurableExecutionName="s1")
    stopped = lam.stop_durable_execution(
        DurableExecutionArn="s1", Error={"ErrorType": "Cancelled", "ErrorMessage": "by test"}
    )
    assert stopped["StopTimestamp"].year >= 2026
    desc = lam.get_durable_execution(DurableExecutionArn="s1")
    assert desc["Status"] == "STOPPED"
    assert desc["Error"] == {"ErrorType": "Cancelled", "ErrorMessage": "by test"}

    with pytest.raises(ClientError) as e:
        lam.get_durable_execution(DurableExecutionArn="nope")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"] == "no execution with id 'nope'"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="unknown", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.send_durable_execution_callback_heartbeat(CallbackId="nope")
    assert e.value.response["Error"]["Message"] == "no callback with id 'nope'"
