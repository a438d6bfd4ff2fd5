"""State isolation: callback ids bound to their execution, and ``durable-gen serve``
on loopback with an optional bearer token, refusing ids it did not issue."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import threading
import time
from typing import Any

import pytest

from durable_gen import CreateCallback, InMemoryEngine, Step, StoreError
from durable_gen._cli.main import build_parser
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._http.serve import make_server
from durable_gen._stores.sqlite import SqliteStore

WF = """
from durable_gen import CreateCallback, Step

def approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(str, event["order"], name="notify")
    return (yield handle.result())
"""


def approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(str, event["order"], name="notify")
    return (yield handle.result())


def _callback_id(store: Any, execution_id: str) -> str:
    [cb] = [op.callback_id for op in store.load(execution_id).values() if op.callback_id]
    return str(cb)


# ---------------------------------------------------------------- callback ids


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_callback_ids_are_unguessable_and_bound_to_their_execution(tmp_path, kind):
    if kind == "memory":
        engine: Any = InMemoryEngine()
    else:
        engine = SqliteEngine(tmp_path / "x.db", clock=VirtualClock())
    a = engine.start(approval, {"order": "a"})
    b = engine.start(approval, {"order": "b"})
    for execution_id in (a, b):
        assert engine.resume(approval, execution_id, wait=False).status == "RUNNING"
    store = engine.store
    cb_a, cb_b = _callback_id(store, a), _callback_id(store, b)
    for cb in (cb_a, cb_b):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cb)  # 32 random bytes, base64url
    assert cb_a != cb_b
    now = engine.clock.now()

    # a forged id, and a real id of another execution, are both unknown
    forged = secrets.token_urlsafe(32)
    with pytest.raises(StoreError, match=r"^no callback with id '.+'$"):
        store.complete_callback(forged, "succeed", now, payload='"x"')
    with pytest.raises(StoreError, match=rf"^no callback with id '{cb_b}' in execution '{a}'$"):
        store.complete_callback(cb_b, "succeed", now, payload='"x"', execution_id=a)
    assert store.load(b)[_op_of(store, b)].status.value == "STARTED"  # untouched

    assert store.complete_callback(cb_a, "succeed", now, payload='"ok"', execution_id=a) == a
    assert engine.resume(approval, a, wait=False).result == '"ok"'
    assert store.load(b)[_op_of(store, b)].status.value == "STARTED"
    if kind == "sqlite":
        engine.close()


def _op_of(store: Any, execution_id: str) -> str:
    return next(op.id for op in store.load(execution_id).values() if op.callback_id)


def test_every_store_call_names_the_execution():
    """Reads and writes take the execution id; only a callback id leads to its own execution."""
    import inspect

    skip = {
        "executions",
        "due",
        "next_wake",
        "close",
        "release_all",
        "clone",
        "owner_is_dead",
        "callback_execution",
        "complete_callback",
        "page_marker",  # takes an ExecutionInfo
        "shared_group",  # the group commit of its clones
        "overdue",  # lists executions past their deadline, like due
        "purge",  # deletes ended executions past their retention, none by id
        "put_queue",  # queues: named admission rules, not executions
        "queue",
        "queue_stats",
        "delete_queue",
        "put_schedule",  # schedules: named cron rules; their executions carry ids of their own
        "schedule",
        "schedule_stats",
        "pause_schedule",
        "delete_schedule",
        "backfill_schedule",
        "fire_due",  # starts the due ticks of every schedule, none by id
        "next_schedule_tick",
    }
    for cls in (SqliteStore,):
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_") or name in skip:
                continue
            params = list(inspect.signature(fn).parameters)
            assert params[1] == "execution_id", (name, params)
    params = inspect.signature(SqliteStore.complete_callback).parameters
    assert "execution_id" in params


# ---------------------------------------------------------------- durable-gen serve


@pytest.fixture
def served(tmp_path):
    """``durable-gen serve`` in this process, with a token."""
    wf = tmp_path / "served.py"
    wf.write_text(WF)
    token = secrets.token_urlsafe(24)
    server = make_server(
        "127.0.0.1",
        0,
        db=str(tmp_path / "serve.db"),
        functions={"approval": f"{wf}:approval"},
        token=token,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, token
    server.shutdown()
    server.server_close()


def request(
    server: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _start(server: Any, token: str, name: str) -> str:
    status, _ = request(
        server,
        "POST",
        "/2015-03-31/functions/approval/invocations",
        b'{"order": "o"}',
        {**_auth(token), "X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": name},
    )
    assert status == 202
    return name


def _wait_for_callback(server: Any, token: str, name: str) -> str:
    for _ in range(200):
        status, out = request(
            server, "GET", f"/2025-12-01/durable-executions/{name}/history", headers=_auth(token)
        )
        assert status == 200
        for e in out["Events"]:
            if e["EventType"] == "CallbackStarted":
                return str(e["CallbackStartedDetails"]["CallbackId"])
        time.sleep(0.02)
    raise AssertionError("no callback started")


#: The end of every refusal of a request without valid credentials: how to fix it.
HOW_TO_AUTHENTICATE = (
    "send 'Authorization: Bearer <token>', or sign the request with AWS Signature Version "
    "4 (as boto3 and the AWS CLI do) with AWS_SECRET_ACCESS_KEY set to the token "
    "`durable-gen serve` was started with (--token or DURABLE_GEN_TOKEN; any access key id "
    "and region)"
)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer \u00e9t\u00e9"},
    ],
)
def test_a_token_is_required_when_configured(served, headers):
    server, token = served
    paths = [
        ("GET", "/2025-12-01/durable-executions/x"),
        ("POST", "/2015-03-31/functions/approval/invocations"),
        ("POST", "/2025-12-01/durable-execution-callbacks/x/succeed"),
        ("GET", "/2025-12-01/functions/approval/durable-executions"),
    ]
    for method, path in paths:
        status, out = request(server, method, path, b"{}", headers)
        assert (status, out["__type"]) == (401, "UnauthorizedException")
        assert out["message"].endswith(HOW_TO_AUTHENTICATE), out["message"]
        assert token not in out["message"]
    assert request(server, "GET", paths[3][1], headers=_auth(token))[0] == 200
    assert (
        request(server, "GET", paths[3][1], headers={"authorization": f"bearer {token}"})[0] == 200
    )


def test_ids_the_server_did_not_issue_are_404(served):
    server, token = served
    name = _start(server, token, "ex-1")
    callback_id = _wait_for_callback(server, token, name)
    assert request(
        server, "GET", "/2025-12-01/durable-executions/forged", headers=_auth(token)
    ) == (
        404,
        {"__type": "ResourceNotFoundException", "message": "no execution with id 'forged'"},
    )
    forged = secrets.token_urlsafe(32)
    status, out = request(
        server,
        "POST",
        f"/2025-12-01/durable-execution-callbacks/{forged}/succeed",
        b'"x"',
        _auth(token),
    )
    assert (status, out) == (
        404,
        {"__type": "ResourceNotFoundException", "message": f"no callback with id '{forged}'"},
    )
    # a wrong id changed nothing; the right one completes the right execution
    status, _ = request(
        server,
        "POST",
        f"/2025-12-01/durable-execution-callbacks/{callback_id}/succeed",
        b'"yes"',
        _auth(token),
    )
    assert status == 200
    for _ in range(200):
        status, out = request(
            server, "GET", f"/2025-12-01/durable-executions/{name}", headers=_auth(token)
        )
        if out["Status"] != "RUNNING":
            break
        time.sleep(0.02)
    assert out["Status"] == "SUCCEEDED"
    assert out["Result"] == '"\\"yes\\""'


def test_boto3_can_send_the_token(served):
    import boto3
    from botocore.config import Config

    from tests._procs import keep

    server, token = served
    host, port = server.server_address[:2]
    client = keep(
        boto3.client(
            "lambda",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-west-2",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1}),
        )
    )

    def bearer(request: Any, **kwargs: Any) -> None:
        request.headers["Authorization"] = f"Bearer {token}"

    client.meta.events.register("before-send.lambda.*", bearer)
    listed = client.list_durable_executions_by_function(FunctionName="approval")
    assert listed["DurableExecutions"] == []


def test_serve_binds_to_loopback_and_reads_the_token_from_the_environment(monkeypatch):
    args = build_parser().parse_args(["serve", "--function", "f=m:f"])
    assert args.host == "127.0.0.1"
    assert args.token is None
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_make_server(host: str, port: int, **kw: Any) -> Any:
        seen.update(host=host, port=port, **kw)
        raise Stop

    monkeypatch.setattr("durable_gen._http.serve.make_server", fake_make_server)
    monkeypatch.setenv("DURABLE_GEN_TOKEN", "s3cret")
    with pytest.raises(Stop):
        args.func(args)
    assert seen["host"] == "127.0.0.1"
    assert seen["token"] == "s3cret"
    args = build_parser().parse_args(["serve", "--token", "other", "--function", "f=m:f"])
    with pytest.raises(Stop):
        args.func(args)
    assert seen["token"] == "other"


def test_an_empty_token_is_refused(tmp_path):
    with pytest.raises(StoreError, match=r"^the bearer token must not be empty$"):
        make_server("127.0.0.1", 0, db=str(tmp_path / "x.db"), functions={}, token=" ")
