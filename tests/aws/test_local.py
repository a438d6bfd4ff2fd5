"""The local Lambda Invoke endpoint, called with boto3 as the emulator calls it."""

import json
import urllib.error
import urllib.request

import boto3
import pytest

from durable_gen.aws.local import LocalLambda, function_name_of
from tests._procs import read_payloads


def echo(event, context):
    return {
        "event": event,
        "name": context.function_name,
        "left": context.get_remaining_time_in_millis() > 0,
    }


def crash(event, context):
    raise KeyError("missing")


@pytest.fixture(scope="module")
def lam():
    with LocalLambda({"echo": echo, "crash": crash}) as server:
        yield server


@pytest.fixture(scope="module")
def client(lam):
    client = read_payloads(
        boto3.client(
            "lambda",
            endpoint_url=lam.url,
            region_name="us-west-2",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
    )
    yield client
    client.close()


def test_invoke_returns_the_handler_result(client):
    resp = client.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"event": {"a": 1}, "name": "echo", "left": True}


@pytest.mark.parametrize(
    "name", ["echo:$LATEST", "echo:prod", "arn:aws:lambda:us-west-2:123456789012:function:echo:1"]
)
def test_qualified_names_and_arns_resolve(client, name):
    resp = client.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(resp["Payload"].read())["name"] == "echo"


def test_a_raising_handler_is_a_function_error(client, lam):
    resp = client.invoke(FunctionName="crash", Payload=b"{}")
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "KeyError"
    assert body["errorMessage"] == "'missing'"
    assert isinstance(lam.errors[-1], KeyError)


def test_unknown_function_is_resource_not_found(client):
    with pytest.raises(
        client.exceptions.ResourceNotFoundException, match="Function not found: nope"
    ):
        client.invoke(FunctionName="nope", Payload=b"{}")


def test_registering_after_start(lam, client):
    lam.register("late", lambda event, context: "hi")
    assert json.loads(client.invoke(FunctionName="late")["Payload"].read()) == "hi"


def test_other_routes_are_404(lam):
    req = urllib.request.Request(f"{lam.url}/elsewhere", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 404
    ei.value.close()


def test_bad_json_is_invalid_request_content(lam):
    req = urllib.request.Request(
        f"{lam.url}/2015-03-31/functions/echo/invocations", data=b"{nope", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 400
    assert ei.value.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    ei.value.close()


def test_function_name_of():
    assert function_name_of("my-fn") == "my-fn"
    assert function_name_of("my-fn%3Alive") == "my-fn"
    assert function_name_of("arn:aws:lambda:us-east-1:1:function:f:3") == "f"


def test_url_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="not started"):
        _ = LocalLambda().url


def test_stop_is_idempotent():
    server = LocalLambda().start()
    server.stop()
    server.stop()


def test_command_line_serves_handlers(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable_gen.aws.local",
            "--port",
            str(port),
            "e=tests.aws.test_local:echo",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        line = proc.stdout.readline().decode()
        assert line == f"serving e at http://127.0.0.1:{port}\n"
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/e/invocations"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, data=b'{"x": 1}'), timeout=5
                ) as r:
                    assert json.loads(r.read())["event"] == {"x": 1}
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_command_line_rejects_a_bad_spec():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "durable_gen.aws.local", "no-equals-sign"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "expected NAME=MODULE:HANDLER, got 'no-equals-sign'" in proc.stderr
