"""Hostile input: malformed Lambda events, updates, logs, oversized and deeply
nested values, non-UTF-8 bytes and raw HTTP requests to ``durable-gen serve``.

Each is refused with a typed durable_gen error (or a 4xx JSON body); nothing
crashes (no uncaught exception in the server's threads; it still answers), and
stored state is unchanged by a refused input (the database dumped before and
after).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from durable_gen import (
    CreateCallback,
    DurableGenError,
    InMemoryEngine,
    Step,
    Wait,
)
from durable_gen._core.log import (
    Operation,
    OperationUpdate,
)
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._http.serve import (
    MAX_BODY_BYTES,
    make_server,
)
from durable_gen._stores.sqlite import SqliteStore
from durable_gen.aws import LAMBDA_RESPONSE_LIMIT, InvalidEventError, durable_handler

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, kind: str) -> Any:
    v: Any = 1
    for _ in range(depth):
        v = [v] if kind == "list" else {"k": v}
    return v


def double(x):
    return x * 2


def flow(event):
    a = yield Step(double, 2, name="a")
    yield Wait(seconds=5, name="pause")
    handle = yield CreateCallback("cb", timeout=60)
    b = yield Step(double, a, name="b")
    return {"b": b, "cb": (yield handle)}


# ---------------------------------------------------------------- Lambda events

_FIELDS = ["DurableExecutionArn", "CheckpointToken", "InitialExecutionState"]
_OP_KEYS = [
    "Id",
    "Type",
    "Status",
    "StartTimestamp",
    "EndTimestamp",
    "ParentId",
    "Name",
    "SubType",
    "StepDetails",
    "ExecutionDetails",
    "CallbackDetails",
    "ContextDetails",
    "WaitDetails",
    "X-DurableGen-Callback",
]
_OP_VALUES = st.one_of(
    json_values,
    st.sampled_from(["STEP", "EXECUTION", "CONTEXT", "WAIT", "CALLBACK", "SUCCEEDED"]),
    st.sampled_from(["STARTED", "PENDING", "READY", "FAILED", "TIMED_OUT"]),
    st.fixed_dictionaries(
        {},
        optional={
            "Result": json_values,
            "Error": json_values,
            "Attempt": json_values,
            "InputPayload": json_values,
            "CallbackId": json_values,
            "ReplayChildren": json_values,
            "NextAttemptTimestamp": json_values,
        },
    ),
)
raw_operations = st.dictionaries(st.sampled_from(_OP_KEYS), _OP_VALUES, max_size=8)


class _Acknowledging:
    """A Lambda client for a handler fed hand-made events: it records the calls and
    acknowledges each checkpoint with a fresh token and no new state. No service
    logic: what these tests judge is how the shim treats what it is given."""

    def __init__(self) -> None:
        self.checkpoint_calls = 0
        self.updates: list[dict[str, Any]] = []

    def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        self.checkpoint_calls += 1
        self.updates.extend(kw.get("Updates", []))
        token = f"t{self.checkpoint_calls}"
        return {"CheckpointToken": token, "NewExecutionState": {"Operations": []}}

    def get_durable_execution_state(self, **kw: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "400", "Message": "Invalid marker"}, "ResponseMetadata": {}},
            "GetDurableExecutionState",
        )


_ARN = "arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/x/e1"


def _event() -> dict[str, Any]:
    """A first invocation's event, as the service sends it: the EXECUTION operation."""
    execution = {
        "Id": "e1",
        "Type": "EXECUTION",
        "Status": "STARTED",
        "StartTimestamp": 1_767_225_600_000,
        "ExecutionDetails": {"InputPayload": "{}"},
    }
    return {
        "DurableExecutionArn": _ARN,
        "CheckpointToken": "t0",
        "InitialExecutionState": {"Operations": [execution], "NextMarker": ""},
    }


def _handler_and_event() -> tuple[Any, _Acknowledging, dict[str, Any]]:
    client = _Acknowledging()
    return durable_handler(flow, client=client), client, _event()


@FAST
@given(
    event=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from(_FIELDS), json_values, max_size=3),
    )
)
def test_malformed_events_are_invalid_event_errors(event):
    handler, svc, _ = _handler_and_event()
    with pytest.raises(DurableGenError):
        handler(event, None)
    assert svc.checkpoint_calls == 0


@FAST
@given(
    field=st.sampled_from([*_FIELDS, "Operations", "NextMarker"]),
    value=json_values,
)
def test_an_event_with_one_field_replaced_is_refused_or_valid(field, value):
    handler, _svc, event = _handler_and_event()
    if field in ("Operations", "NextMarker"):
        event["InitialExecutionState"][field] = value
    else:
        event[field] = value
    try:
        out = handler(event, None)
    except DurableGenError:
        return
    assert out["Status"] in ("SUCCEEDED", "FAILED", "PENDING")
    json.dumps(out)


@FAST
@given(ops=st.lists(raw_operations, max_size=5), ids=st.data())
def test_malformed_operations_in_the_log_are_refused_not_crashed_on(ops, ids):
    """Operations with random fields, under ids the workflow really uses."""
    from durable_gen._core.log import operation_id

    handler, _svc, event = _handler_and_event()
    real_ids = [operation_id(None, n) for n in range(1, 5)]
    for op in ops:
        if ids.draw(st.booleans()):
            op["Id"] = ids.draw(st.sampled_from(real_ids))
    event["InitialExecutionState"]["Operations"] += ops
    try:
        out = handler(event, None)
    except DurableGenError:
        return
    assert out["Status"] in ("SUCCEEDED", "FAILED", "PENDING")
    json.dumps(out)


@FAST
@given(d=st.one_of(json_values, raw_operations))
def test_operation_and_update_parsers_raise_only_typed_errors(d):
    for parse in (Operation.from_dict, OperationUpdate.from_dict):
        with contextlib.suppress(DurableGenError):
            parse(d)


# ---------------------------------------------------------------- updates to the store

_UPDATE = st.fixed_dictionaries(
    {
        "Id": st.one_of(st.sampled_from(["s1", "s2", "w1", "c1", "x"]), st.text(max_size=70)),
        "Type": st.sampled_from(["STEP", "WAIT", "CALLBACK", "CONTEXT", "EXECUTION", "BAD"]),
        "Action": st.sampled_from(["START", "SUCCEED", "FAIL", "RETRY", "CANCEL", "BAD"]),
    },
    optional={
        "Payload": st.text(max_size=20),
        "Name": st.text(max_size=10),
        "ParentId": st.sampled_from(["s1", "c1", "nope"]),
        "SubType": st.text(max_size=10),
        "Error": json_values,
        "StepOptions": st.one_of(
            json_values, st.fixed_dictionaries({"NextAttemptDelaySeconds": json_values})
        ),
        "WaitOptions": st.one_of(json_values, st.fixed_dictionaries({"WaitSeconds": json_values})),
        "CallbackOptions": json_values,
        "ContextOptions": json_values,
    },
)


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _settled_dump(path: Path) -> list[str]:
    """The database once nothing writes to it any more.

    An earlier example may have sent a valid Invoke (accepted, not a refusal): the
    execution it started runs on until it suspends, and its writes must not be
    taken for damage done by the next request.
    """
    dump = _dump(path)
    for _ in range(100):
        time.sleep(0.05)
        again = _dump(path)
        if again == dump:
            return dump
        dump = again
    raise AssertionError("the database kept changing for 5 s with no request in flight")


@pytest.fixture(scope="module")
def leased_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "x.db"
    store = SqliteStore(path)
    store.create("ex", "{}", 1_000)
    store.acquire("ex", 1_000)
    yield path, store
    store.close()


@FAST
@given(updates=st.lists(_UPDATE, min_size=1, max_size=4))
def test_malformed_updates_change_nothing_in_the_store(leased_store, updates):
    path, store = leased_store
    before = _dump(path)
    cached = dict(store.load("ex"))
    try:
        parsed = [OperationUpdate.from_dict(u) for u in updates]
        store.checkpoint("ex", parsed, 2_000, durable=True)
    except DurableGenError:
        assert _dump(path) == before
        assert dict(store.load("ex")) == cached
        return
    # accepted: the store and the file agree
    with SqliteStore(path) as fresh:
        assert dict(fresh.load("ex")) == dict(store.load("ex"))


# ---------------------------------------------------------------- values


@FAST
@given(depth=st.integers(min_value=1, max_value=5000), kind=st.sampled_from(["list", "dict"]))
def test_deeply_nested_step_results_round_trip_or_fail_the_step_clearly(depth, kind):
    value = nested(depth, kind)

    def deep(event):
        got = yield Step(lambda: value, name="deep")
        yield Wait(seconds=1, name="then-replay")
        return got == value

    result = InMemoryEngine().run(deep, None)
    if result.status == "SUCCEEDED":
        assert result.result is True  # read back exactly after a replay
        return
    assert result.status == "FAILED"
    assert result.error is not None
    # the step failed (its own error: SerializationError); the execution records the
    # escaping StepError as AWS's SDK does, the message kept
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.StepError"
    step = next(op for op in result.operations if op.name == "deep")
    assert step.error is not None
    assert step.error.type == "durable_gen.SerializationError"
    assert step.error.message == result.error.message
    assert (result.error.message or "").startswith(
        "step 'deep' returned a value that cannot be stored: cannot serialize value: it is "
        "nested more than"
    )


@FAST
@given(
    text=st.text(
        alphabet=st.one_of(
            st.characters(), st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
        ),
        max_size=30,
    )
)
def test_strings_with_undecodable_bytes_round_trip_or_fail_clearly(tmp_path_factory, text):
    def echo(event):
        return (yield Step(lambda: text, name="echo"))

    db = tmp_path_factory.mktemp("surrogates") / "x.db"
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        result = engine.run(echo, None)
    if result.status == "SUCCEEDED":
        assert result.result == text
    else:
        assert result.error is not None
        assert result.error.type == "durable_gen.SerializationError"


def test_payloads_over_the_limits_are_refused_clearly():
    big = "x" * (256 * 1024 + 1)
    result = InMemoryEngine().run(lambda_flow(big), None)
    assert result.status == "FAILED"
    assert result.error is not None
    assert "over the 262144-byte limit of one checkpoint" in (result.error.message or "")

    # a result over Lambda's 6 MB response limit is checkpointed; one over the
    # checkpoint API's 6 MiB payload limit fails the execution, naming the limit
    for size, status in [(LAMBDA_RESPONSE_LIMIT + 10, "SUCCEEDED"), (6_291_456 + 10, "FAILED")]:
        client = _Acknowledging()
        out = durable_handler(returns(size), client=client)(_event(), None)
        assert out["Status"] == status, out.get("Error")
        if status == "FAILED":
            assert (
                "the checkpoint API accepts at most 6,291,456 bytes"
                in (out["Error"]["ErrorMessage"])
            )
        else:
            assert out == {"Status": "SUCCEEDED", "Result": ""}
            (final,) = client.updates  # the result went to the EXECUTION operation
            assert (final["Type"], final["Action"]) == ("EXECUTION", "SUCCEED")
            assert json.loads(final["Payload"]) == "y" * size


def lambda_flow(value: Any):
    def f(event):
        return (yield Step(lambda: value, name="big"))

    return f


def returns(size: int):
    def f(event):
        if False:
            yield
        return "y" * size

    return f


def test_deeply_nested_lambda_input_is_a_clear_error():
    handler, _svc, event = _handler_and_event()
    ex_op = event["InitialExecutionState"]["Operations"][0]
    ex_op["ExecutionDetails"] = {"InputPayload": "[" * 100_000 + "]" * 100_000}
    with pytest.raises(DurableGenError, match=r"input of execution operation"):
        handler(event, None)
    with pytest.raises(InvalidEventError):
        handler({"DurableExecutionArn": nested(5000, "list")}, None)


# ---------------------------------------------------------------- raw HTTP to durable-gen serve

WF = """
from durable_gen import CreateCallback, Step

def approval(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(str, "notify", name="notify")
    return (yield handle.result())
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "served.py").write_text(WF)
    db = tmp / "serve.db"
    srv = make_server(
        "127.0.0.1", 0, db=str(db), functions={"approval": f"{tmp / 'served.py'}:approval"}
    )
    errors: list[Any] = []
    srv.handle_error = lambda request, address: errors.append(sys.exc_info())  # type: ignore[method-assign]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    status, _ = _http(
        srv,
        "POST",
        "/2015-03-31/functions/approval/invocations",
        b"{}",
        {"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": "ex1"},
    )
    assert status == 202
    for _ in range(200):
        with SqliteStore(db) as store:
            rows = store._query("SELECT callback_id FROM callbacks")
            if rows and store.info("ex1").lease_owner is None:
                break
        time.sleep(0.02)
    yield srv, db, errors, rows[0][0]
    srv.shutdown()
    srv.server_close()


def _http(srv: Any, method: str, path: str, body: bytes = b"", headers: Any = None) -> Any:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


_PENDING = 0  # the server holds the request: an accepted RequestResponse invoke waiting


def _raw(srv: Any, data: bytes) -> tuple[int | None, bytes]:
    """Send raw bytes; the status (None if the reply had no status line, ``_PENDING``
    if no reply came in time) and the body."""
    host, port = srv.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if not chunks:
                    return _PENDING, b""
                break
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)
    if not reply.startswith(b"HTTP/"):
        return None, reply
    head, _, body = reply.partition(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    # the first reply only (a body the server could not frame is answered as a next request)
    return int(head.split(b" ", 2)[1]), body[: lengths[0]] if lengths else body


def _assert_alive_and_unchanged(srv: Any, db: Path, errors: list[Any], before: list[str]) -> None:
    assert errors == []
    status, body = _http(srv, "GET", "/2025-12-01/durable-executions/ex1")
    assert status == 200
    assert json.loads(body)["DurableExecutionArn"].endswith("/durable-execution/ex1/ex1")
    assert _dump(db) == before


_PATHS = st.one_of(
    st.sampled_from(
        [
            "/2025-12-01/durable-executions/ex1",
            "/2025-12-01/durable-executions/ex1/history",
            "/2025-12-01/durable-executions/ex1/stop",
            "/2025-12-01/durable-executions/nope",
            "/2025-12-01/durable-execution-callbacks/CB/succeed",
            "/2025-12-01/durable-execution-callbacks/CB/fail",
            "/2025-12-01/durable-execution-callbacks/CB/heartbeat",
            "/2025-12-01/durable-execution-callbacks/forged/succeed",
            "/2025-12-01/functions/approval/durable-executions",
            "/2015-03-31/functions/approval/invocations",
            "/2015-03-31/functions/nope/invocations",
            "/",
            "",
            "*",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(
        lambda s: "/" + s
    ),
)
_QUERIES = st.one_of(
    st.just(""),
    st.sampled_from(
        [
            "?MaxItems=-1",
            "?MaxItems=x",
            "?Marker=99999999999",
            "?MaxItems=%ff",
            "?ReverseOrder=true&Marker=1",
            "?" + "a=1&" * 100,
        ]
    ),
)
_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"{",
            b"null",
            b"[]",
            b'{"ErrorType": 5}',
            b'{"StackTrace": 7}',
            b"\xff\xfe\x00",
            b"[" * 50_000 + b"]" * 50_000,
            b'"' + b"\xc3\x28" + b'"',
        ]
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
)
_HEADERS = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"Content-Length: -5",
                b"Content-Length: abc",
                b"Content-Length: 99999999999",
                b"Content-Length: 3\r\nContent-Length: 4",
                b"Transfer-Encoding: chunked",
                b"X-Amz-Invocation-Type: Bogus",
                b"X-Amz-Invocation-Type: Event",
                b"X-Amz-Durable-Execution-Name: ../../etc",
                b"X-Amz-Durable-Execution-Name: " + b"n" * 100,
                b"X-Amz-Durable-Execution-Name: \xff\xfe",
                b"Authorization: Bearer x",
                b"Content-Type: \x00\x01",
                b"NoColonHeader",
                b": empty-name",
                b"X-Long: " + b"h" * 70_000,
            ]
        ),
        st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b),
    ),
    max_size=3,
)
_METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]),
    st.text(alphabet=st.characters(min_codepoint=65, max_codepoint=90), min_size=1, max_size=8),
)


@FAST
@given(method=_METHODS, path=_PATHS, query=_QUERIES, headers=_HEADERS, body=_BODIES)
def test_raw_http_requests_are_refused_cleanly(server, method, path, query, headers, body):
    srv, db, errors, callback_id = server
    path = path.replace("CB", callback_id)
    before = _settled_dump(db)
    has_length = any(h.lower().startswith(b"content-length") for h in headers)
    lines = [f"{method} {path}{query} HTTP/1.1".encode("utf-8", "surrogateescape"), b"Host: x"]
    lines += headers
    if not has_length:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    status, reply = _raw(srv, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    # a valid RequestResponse Invoke (possible: the paths include the served
    # function's) starts an execution and waits for its end: accepted, not refused
    assume(status != _PENDING)
    if status is None or status >= 400:
        assert status is None or status < 500, reply
        if method != "HEAD" and reply:
            err = json.loads(reply)
            assert set(err) == {"__type", "message"}
            assert err["message"]
        _assert_alive_and_unchanged(srv, db, errors, before)
    else:
        assume(False)  # an accepted request may change state; the property is about refusals


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"G\xffT / HTTP/1.1\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"POST /2015-03-31/functions/approval/invocations HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        b"POST /2015-03-31/functions/approval/invocations HTTP/1.1\r\n"
        + b"Content-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
        b"",
    ],
)
def test_garbage_and_truncated_requests(server, data):
    srv, db, errors, _ = server
    before = _settled_dump(db)
    status, reply = _raw(srv, data)
    assert status is None or 400 <= status < 500, (status, reply)
    if reply and status is not None:
        assert set(json.loads(reply)) == {"__type", "message"}
    _assert_alive_and_unchanged(srv, db, errors, before)


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        (
            "/2025-12-01/durable-execution-callbacks/CB/succeed",
            b"\xff\xfe",
            400,
            r"^the callback result must be UTF-8 text \('utf-8' codec can't decode",
        ),
        (
            "/2025-12-01/durable-execution-callbacks/CB/succeed",
            b"x" * (1024 * 1024 + 1),
            413,
            r"^the callback result is 1,048,577 bytes; at most 1,048,576 are accepted$",
        ),
        (
            "/2025-12-01/durable-execution-callbacks/CB/fail",
            b"[" * 100_000,
            400,
            r"^the error is not valid JSON",
        ),
        (
            "/2025-12-01/durable-execution-callbacks/CB/fail",
            b'{"StackTrace": 1}',
            400,
            r"^ErrorObject field StackTrace must be a list of strings, got 1$",
        ),
        (
            "/2015-03-31/functions/approval/invocations",
            b"[" * 100_000 + b"]" * 100_000,
            400,
            r"^the payload is not valid JSON: maximum recursion depth exceeded",
        ),
        (
            "/2015-03-31/functions/approval/invocations",
            b"\xff{",
            400,
            r"^the payload is not valid JSON",
        ),
        ("/2025-12-01/durable-executions/ex1/stop", b"{", 400, r"^the error is not valid JSON"),
        (
            "/2025-12-01/durable-executions/ex1/history?MaxItems=1001",
            b"",
            400,
            r"^MaxItems must be an integer from 0 to 1000, got '1001'$",
        ),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_each_refusal_names_the_problem(server, path, body, code, message):
    import re

    srv, db, errors, callback_id = server
    before = _settled_dump(db)
    method = "GET" if "history" in path or path.endswith("ex1") else "POST"
    status, reply = _http(srv, method, path.replace("CB", callback_id), body)
    assert status == code, reply
    assert re.search(message, json.loads(reply)["message"]), json.loads(reply)
    _assert_alive_and_unchanged(srv, db, errors, before)


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    srv, db, errors, _ = server
    before = _settled_dump(db)
    head = b"GET /2025-12-01/durable-executions/ex1 HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
    status, reply = _raw(srv, head % (MAX_BODY_BYTES + 1))
    assert status == 413
    assert json.loads(reply) == {
        "__type": "RequestEntityTooLargeException",
        "message": "the request body is 6,291,457 bytes; this server accepts at most 6,291,456",
    }
    _assert_alive_and_unchanged(srv, db, errors, before)


def test_unsupported_methods_are_405_json(server):
    srv, _db, errors, _ = server
    for method in ("PUT", "PATCH", "BREW"):
        status, reply = _http(srv, method, "/2025-12-01/durable-executions/ex1")
        assert status == 405
        assert json.loads(reply) == {
            "__type": "MethodNotAllowedException",
            "message": f"method {method!r} is not supported; use GET, POST or DELETE",
        }
    # DELETE is DeleteDurableExecution (of an execution this server does not have here:
    # the fixture's execution is shared by the module's tests)
    status, reply = _http(srv, "DELETE", "/2025-12-01/durable-executions/nope")
    assert status == 404
    assert json.loads(reply)["__type"] == "ResourceNotFoundException"
    status, reply = _http(srv, "HEAD", "/2025-12-01/durable-executions/ex1")
    assert (status, reply) == (405, b"")
    assert errors == []


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_parsers_name_a_deeply_nested_value_without_recursing(kind):
    from durable_gen import CorruptLogError
    from durable_gen._core.errors import ErrorObject

    deep = nested(50_000, kind)
    for parse, shape in [
        (Operation.from_dict, {"Id": "a", "Type": "STEP", "Status": "STARTED", "Name": deep}),
        (OperationUpdate.from_dict, {"Id": "a", "Type": "STEP", "Action": "START", "Name": deep}),
        (ErrorObject.from_dict, {"ErrorType": deep}),
        (Operation.from_dict, deep),
    ]:
        with pytest.raises(CorruptLogError) as ei:
            parse(shape)
        assert len(str(ei.value)) < 300
