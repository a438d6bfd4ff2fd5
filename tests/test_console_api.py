"""The web console of `durable-gen serve` over plain HTTP: its pages and JSON, who may
use it, cross-site refusals, escaping and the headers every answer carries (a real
server on a temporary SQLite database; the browser tests are in tests/browser)."""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from durable_gen import (
    CreateCallback,
    ErrorObject,
    Invoke,
    Jitter,
    Parallel,
    RetryPolicy,
    SqliteEngine,
    Step,
    Wait,
    get_logger,
)
from durable_gen._http.console import CSP
from durable_gen._http.serve import make_server

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
#: what a non-UTF-8 error message becomes once decoded with replacement
MANGLED = b"bad bytes \xff\xfe\xc3 end".decode("utf-8", "replace")
BIG = "B" * 200_000


def approval(event):
    cb = yield CreateCallback(name="approval", timeout=3600)
    answer = yield cb.result()
    return {"order": event["order"], "answer": answer}


def _hostile_result(text):
    return {"html": text, "big": BIG}


def _explode(text):
    raise ValueError(f"{text} {MANGLED}")


def hostile(event):
    yield Step(_hostile_result, HOSTILE, name=HOSTILE)
    yield Step(_explode, HOSTILE, name="explode", retry=RetryPolicy.none())


ATTEMPTS: dict[str, int] = {}


def _charge(key):
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    get_logger().info("charging 42.00 EUR for %s", key)
    if ATTEMPTS[key] < 2:
        get_logger().warning("the payment gateway did not answer; the step will retry")
        raise ConnectionError(f"payment gateway timed out (attempt {ATTEMPTS[key]})")
    return {"charged": 4200, "currency": "EUR"}


def _pack(item):
    return f"packed {item}"


def _branch(item):
    def branch():
        return (yield Step(_pack, item, name=f"pack {item}"))

    return branch


def order(event):
    """A retried step, a wait, parallel branches and a callback (the screenshot)."""
    sku = yield Step(lambda: {"sku": "A-100", "qty": 2}, name="reserve")
    paid = yield Step(
        _charge,
        event["key"],
        name="charge",
        retry=RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE),
    )
    yield Wait(seconds=1, name="cool-off")
    packed = (yield Parallel([_branch("box"), _branch("label")], name="pack")).get_results()
    cb = yield CreateCallback(name="ship-approval", timeout=3600, heartbeat_timeout=600)
    answer = yield cb.result()
    return {"sku": sku, "paid": paid, "packed": packed, "answer": answer}


def _one(i):
    return i


def many(event):
    for i in range(event["n"]):
        yield Step(_one, i, name=f"step {i}")
    return event["n"]


#: undecodable bytes as Python keeps them (``surrogateescape``): not UTF-8 text
LONE = b"raw \xff\xfe".decode("utf-8", "surrogateescape")


def _log_step(text):
    get_logger().info("in the step: %s", text)
    return len(text)


def chatty(event):
    """Logs (hostile lines, undecodable bytes, a traceback), then waits on a callback
    and logs again once it is completed: the live tail."""
    log = get_logger()
    log.info("starting %s", event["tag"])
    log.warning(HOSTILE)
    log.info("undecodable: %s", LONE)
    try:
        raise KeyError(HOSTILE)
    except KeyError:
        log.exception("caught it")
    yield Step(_log_step, HOSTILE, name="log-step")
    cb = yield CreateCallback(name="go", timeout=3600)
    answer = yield cb.result()
    log.error("after the callback: %s", answer)
    return answer


def _undecodable(text):
    raise ValueError(f"{text} {LONE}")


def undecodable(event):
    """Fails with lone surrogates in its error message (bytes a file name or a
    subprocess left undecoded)."""
    yield Step(_undecodable, "bytes:", name="decode", retry=RetryPolicy.none())


def caller(event):
    """Invokes the served function ``many``: its execution is linked from the page."""
    got = yield Invoke("many", {"n": 2}, name="call-many")
    return {"child": got}


FUNCTIONS = {
    "many": "tests.test_console_api:many",
    "approval": "tests.test_console_api:approval",
    "hostile": "tests.test_console_api:hostile",
    "order": "tests.test_console_api:order",
    "chatty": "tests.test_console_api:chatty",
    "undecodable": "tests.test_console_api:undecodable",
    "caller": "tests.test_console_api:caller",
}


class Console:
    """A running server and a small HTTP client for it."""

    def __init__(self, server: Any) -> None:
        self.server = server
        host, port = server.server_address[:2]
        self.host = f"{host}:{port}"
        self.url = f"http://{self.host}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        console: bool = True,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection(self.host, timeout=10)
        sent = dict(headers or {})
        if console and method == "POST":
            sent.setdefault("X-Durable-Gen-Console", "1")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.request(method, path, body, **kw)
        return status, json.loads(data)

    def start(self, function: str, event: Any, execution_id: str) -> str:
        from durable_gen._engine.targets import resolve_target

        target = self.server.functions[function]
        SqliteEngine(store=self.server.store, clock=self.server.clock).start(
            resolve_target(target), event, execution_id=execution_id, target=target
        )
        return execution_id

    def wait_for(self, what: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what.__doc__ or what}")

    def status(self, execution_id: str) -> str:
        return str(self.server.store.info(execution_id).status)

    def open_callback(self, execution_id: str) -> str | None:
        for op in self.server.store.load(execution_id).values():
            if op.callback_id and op.status.value == "STARTED":
                return str(op.callback_id)
        return None


def serve_console(db: str, token: str | None = None) -> Iterator[Console]:
    server = make_server("127.0.0.1", 0, db=db, functions=FUNCTIONS, token=token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Console(server)
    finally:
        server.shutdown()
        server.drain(1.0)
        server.server_close()
        thread.join(5)


@pytest.fixture
def console(tmp_path) -> Iterator[Console]:
    yield from serve_console(str(tmp_path / "console.db"))


@pytest.fixture
def guarded(tmp_path) -> Iterator[Console]:
    yield from serve_console(str(tmp_path / "guarded.db"), token="s3cret-token")


def exec_path(execution_id: str, api: bool = False) -> str:
    prefix = "/console/api/executions/" if api else "/console/executions/"
    return prefix + urllib.parse.quote(execution_id, safe="")


# ---------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/api/executions",
        "/console/static/console.js",
        "/console/static/console.css",
        "/console/executions/nope",
        "/console/api/nothing-here",
    ],
)
def test_every_answer_carries_the_csp_and_nosniff(console, path):
    status, headers, _ = console.request("GET", path)
    assert status in (200, 404)
    assert headers["Content-Security-Policy"] == CSP
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in CSP
    assert "unsafe-inline" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def test_static_files_have_their_types_and_revalidate(console):
    status, headers, body = console.request("GET", "/console/static/console.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert b"textContent" in body
    assert b"innerHTML =" not in body
    status, _, _ = console.request(
        "GET", "/console/static/console.js", headers={"If-None-Match": headers["ETag"]}
    )
    assert status == 304
    status, headers, _ = console.request("GET", "/console/static/console.css")
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    status, _, _ = console.request("GET", "/console/static/../serve.py")
    assert status == 404


def test_pages_have_no_inline_script_or_style(console):
    console.start("approval", {"order": 1}, "inline-check")
    for path in ("/console/", exec_path("inline-check")):
        status, _, body = console.request("GET", path)
        assert status == 200
        page = body.decode()
        assert re.findall(r"<script[^>]*>", page) == [
            '<script src="/console/static/console.js" defer>'
        ]
        assert "style=" not in page
        assert "<style" not in page
        assert " on" not in re.sub(r">[^<]*<", "><", page)  # no on* attribute


def test_console_redirects_to_its_slash(console):
    status, headers, _ = console.request("GET", "/console")
    assert status == 308
    assert headers["Location"] == "/console/"


# ---------------------------------------------------------------------- listing


def test_list_json_filters_and_pages(console):
    for i in range(7):
        console.start("approval", {"order": i}, f"order-{i}")
    console.wait_for(lambda: all(console.status(f"order-{i}") == "RUNNING" for i in range(7)))
    console.wait_for(lambda: console.open_callback("order-6") is not None)
    callback = console.open_callback("order-3")
    assert callback is not None
    console.server.store.complete_callback(
        callback, "succeed", console.server.clock.now(), payload="1"
    )
    console.wait_for(lambda: console.status("order-3") == "SUCCEEDED")

    status, doc = console.json("GET", "/console/api/executions?limit=3")
    assert status == 200
    first = [r["id"] for r in doc["executions"]]
    assert first == ["order-6", "order-5", "order-4"]  # newest first
    assert doc["executions"][0]["function"] == "approval"
    assert doc["next"]
    status, doc = console.json(
        "GET", "/console/api/executions?limit=3&after=" + urllib.parse.quote(doc["next"])
    )
    assert [r["id"] for r in doc["executions"]] == ["order-3", "order-2", "order-1"]

    status, doc = console.json("GET", "/console/api/executions?status=SUCCEEDED")
    assert [r["id"] for r in doc["executions"]] == ["order-3"]
    assert doc["executions"][0]["ended"] >= doc["executions"][0]["started"]
    status, doc = console.json("GET", "/console/api/executions?q=DER-5")  # any case
    assert [r["id"] for r in doc["executions"]] == ["order-5"]
    status, doc = console.json("GET", "/console/api/executions?function=hostile")
    assert doc["executions"] == []
    status, doc = console.json("GET", "/console/api/executions?function=approval&limit=2")
    assert len(doc["executions"]) == 2
    assert doc["next"]


def test_text_filter_pages_through_matches(console):
    for i in range(6):
        console.start("approval", {"order": i}, f"{'red' if i % 2 else 'blue'}-{i}")
    _, doc = console.json("GET", "/console/api/executions?q=red&limit=2")
    assert [r["id"] for r in doc["executions"]] == ["red-5", "red-3"]
    _, doc = console.json(
        "GET", "/console/api/executions?q=red&limit=2&after=" + urllib.parse.quote(doc["next"])
    )
    assert [r["id"] for r in doc["executions"]] == ["red-1"]
    assert doc["next"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=BOGUS", r"^status 'BOGUS' is not an execution status; use one of RUNNING"),
        ("function=nope", r"^no function named 'nope' is served \(served: approval, caller,"),
        ("order=fastest", r"^order 'fastest' is not one of newest, oldest, longest, shortest$"),
        ("after=1.1&before=1.1", r"^give after \(the next page\) or before \(the previous"),
        ("order=longest&after=5.1", r"^'5.1' is not a page marker of this database"),
        ("limit=0", r"^limit must be from 1 to 500, got 0$"),
        ("limit=x", r"^limit must be an integer from 0 to 500, got 'x'$"),
        ("after=garbage", r"^'garbage' is not a page marker of this database"),
    ],
)
def test_bad_list_queries_are_clear_400s(console, query, message):
    status, doc = console.json("GET", "/console/api/executions?" + query)
    assert status == 400
    assert re.search(message, doc["message"]), doc["message"]
    status, headers, body = console.request("GET", "/console/?" + query)
    assert status == 400
    assert headers["Content-Type"].startswith("text/html")
    assert b"Back to the executions" in body


def test_list_page_renders_rows_and_filters(console):
    console.start("approval", {"order": 1}, "alpha")
    console.start("approval", {"order": 2}, "beta")
    status, _, body = console.request("GET", "/console/?q=alp&status=RUNNING")
    page = body.decode()
    assert status == 200
    assert 'data-id="alpha"' in page
    assert 'data-id="beta"' not in page
    assert '<option value="RUNNING" selected>' in page
    assert 'value="alp"' in page


# ---------------------------------------------------------------------- execution


def test_execution_json_tree_callbacks_and_history(console):
    console.start("order", {"key": "tree"}, "tree")
    console.wait_for(lambda: console.open_callback("tree") is not None)
    status, doc = console.json("GET", exec_path("tree", api=True))
    assert status == 200
    assert doc["execution"]["status"] == "RUNNING"
    assert doc["execution"]["live"] is True
    ops = {(op["kind"], op["name"]): op for op in doc["operations"]}
    charge = ops[("Step", "charge")]
    assert charge["attempt"] == 2
    assert charge["status"] == "SUCCEEDED"
    assert json.loads(charge["result"]["text"]) == {"charged": 4200, "currency": "EUR"}
    parallel = ops[("Parallel", "pack")]
    branches = [op for op in doc["operations"] if op["parent"] == parallel["id"]]
    assert len(branches) == 2
    assert all(b["depth"] == parallel["depth"] + 1 for b in branches)
    packs = [op for op in doc["operations"] if (op["name"] or "").startswith("pack ")]
    assert {op["depth"] for op in packs} == {parallel["depth"] + 2}
    assert ops[("Wait", "cool-off")]["status"] == "SUCCEEDED"
    (cb,) = doc["callbacks"]
    assert cb["callback_id"] == console.open_callback("tree")
    assert cb["timeout_s"] == 3600
    assert cb["heartbeat_timeout_s"] == 600
    assert cb["deadline"] == cb["start"] + 3_600_000
    history = doc["history"]
    assert history["total"] == len(console.server.store.history("tree"))
    types = [e["type"] for e in history["events"]]
    assert "StepFailed" in types or "StepRetryScheduled" in types or "StepStarted" in types
    assert history["events"][0]["n"] == 1


def test_history_pages_of_200(console):
    console.start("many", {"n": 130}, "events")
    console.wait_for(lambda: console.status("events") == "SUCCEEDED")
    total = len(console.server.store.history("events"))
    assert total > 260
    _, doc = console.json("GET", exec_path("events", api=True))
    assert len(doc["history"]["events"]) == 200
    assert doc["history"]["next"] == 200
    _, page = console.json("GET", exec_path("events", api=True) + "/events?start=200")
    assert [e["n"] for e in page["events"]] == list(range(201, total + 1))
    assert page["next"] is None
    assert page["total"] == total


def test_unknown_execution_is_404(console):
    status, doc = console.json("GET", exec_path("ghost", api=True))
    assert status == 404
    assert doc["message"] == "no execution with id 'ghost'"
    status, _, body = console.request("GET", exec_path("ghost"))
    assert status == 404
    assert b"no execution with id &#x27;ghost&#x27;" in body


# ---------------------------------------------------------------------- actions


def test_complete_a_callback_with_a_json_payload(console):
    console.start("approval", {"order": 7}, "approve-me")
    console.wait_for(lambda: console.open_callback("approve-me") is not None)
    callback = console.open_callback("approve-me")
    path = f"/console/api/callbacks/{callback}/succeed"
    status, doc = console.json("POST", path, {"execution": "approve-me", "payload": "{nope"})
    assert status == 400
    assert doc["message"].startswith("the payload is not valid JSON: Expecting property name")
    status, doc = console.json("POST", path, {"execution": "other", "payload": "1"})
    assert status == 404
    status, doc = console.json("POST", path, {"execution": "approve-me", "payload": '{"ok": true}'})
    assert status == 200, doc
    console.wait_for(lambda: console.status("approve-me") == "SUCCEEDED")
    # the payload text is the callback's result, as the Lambda API's body is
    assert json.loads(console.server.store.info("approve-me").result or "") == {
        "order": 7,
        "answer": '{"ok": true}',
    }
    status, doc = console.json("POST", path, {"execution": "approve-me", "payload": "2"})
    assert status == 409
    assert "already ended SUCCEEDED" in doc["message"]


def test_fail_and_heartbeat_a_callback(console):
    console.start("approval", {"order": 8}, "reject-me")
    console.wait_for(lambda: console.open_callback("reject-me") is not None)
    callback = console.open_callback("reject-me")
    base = f"/console/api/callbacks/{callback}/"
    status, _ = console.json("POST", base + "heartbeat", {"execution": "reject-me"})
    assert status == 200
    status, doc = console.json("POST", base + "fail", {"execution": "reject-me", "payload": "[1]"})
    assert status == 400
    assert doc["message"].startswith("a failure is a JSON object")
    failure = json.dumps({"ErrorType": "Rejected", "ErrorMessage": "no stock"})
    status, _ = console.json("POST", base + "fail", {"execution": "reject-me", "payload": failure})
    assert status == 200
    console.wait_for(lambda: console.status("reject-me") == "FAILED")
    assert "no stock" in (console.server.store.info("reject-me").error.message or "")


def test_stop_redrive_and_delete(console):
    console.start("approval", {"order": 9}, "lifecycle")
    console.wait_for(lambda: console.open_callback("lifecycle") is not None)
    base = exec_path("lifecycle", api=True)
    status, doc = console.json("POST", base + "/delete")
    assert status == 409
    assert "stop it first" in doc["message"]
    status, _ = console.json("POST", base + "/stop")
    assert status == 200
    assert console.status("lifecycle") == "STOPPED"
    status, doc = console.json("POST", base + "/redrive")
    assert status == 200
    assert doc["message"].startswith("redrove execution lifecycle")
    console.wait_for(lambda: console.open_callback("lifecycle") is not None)
    console.json("POST", base + "/stop")
    status, _ = console.json("POST", base + "/delete")
    assert status == 200
    assert not console.server.store.exists("lifecycle")


# ---------------------------------------------------------------------- cross-site


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "console actions need the header X-Durable-Gen-Console: 1"),
        ({"X-Durable-Gen-Console": "0"}, "console actions need the header"),
        (
            {"X-Durable-Gen-Console": "1", "Origin": "http://evil.example"},
            "a request from 'http://evil.example' may not act on this console",
        ),
        (
            {"X-Durable-Gen-Console": "1", "Sec-Fetch-Site": "cross-site"},
            "a cross-site request may not act on this console",
        ),
    ],
)
def test_cross_site_posts_are_refused(console, headers, why):
    console.start("approval", {"order": 1}, "target")
    console.wait_for(lambda: console.open_callback("target") is not None)
    status, _, body = console.request(
        "POST", exec_path("target", api=True) + "/stop", headers=headers, console=False
    )
    assert status == 403
    assert json.loads(body)["message"].startswith(why)
    assert console.status("target") == "RUNNING"  # nothing happened


def test_a_same_origin_post_is_accepted(console):
    console.start("approval", {"order": 1}, "same")
    console.wait_for(lambda: console.open_callback("same") is not None)
    headers = {"Origin": console.url, "Sec-Fetch-Site": "same-origin"}
    status, _, _ = console.request("POST", exec_path("same", api=True) + "/stop", headers=headers)
    assert status == 200
    assert console.status("same") == "STOPPED"


def test_a_rebound_host_name_is_refused(console):
    status, _, body = console.request("GET", "/console/", headers={"Host": "evil.example:80"})
    assert status == 403
    assert b"not &#x27;evil.example:80&#x27;" in body
    status, _, _ = console.request("GET", "/console/", headers={"Host": "localhost:1"})
    assert status == 200


# ---------------------------------------------------------------------- auth


def test_with_a_token_the_console_asks_for_it(guarded):
    status, headers, body = guarded.request("GET", "/console/")
    assert status == 401
    assert b'id="login"' in body
    assert headers["Content-Security-Policy"] == CSP
    status, doc = guarded.json("GET", "/console/api/executions")
    assert status == 401
    status, _, _ = guarded.request("GET", "/console/static/console.js")
    assert status == 200  # the code is not a secret
    status, doc = guarded.json("POST", "/console/api/login", {"token": "wrong"})
    assert status == 401
    assert doc["message"] == "that is not the token this server was started with"
    status, _, _ = guarded.request(
        "POST", "/console/api/login", {"token": "s3cret-token"}, console=False
    )
    assert status == 403  # the login is an action like the others

    status, headers, _ = guarded.request("POST", "/console/api/login", {"token": "s3cret-token"})
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert "s3cret-token" not in cookie
    session = cookie.split(";", 1)[0]
    status, _, body = guarded.request("GET", "/console/", headers={"Cookie": session})
    assert status == 200
    assert b'data-page="list"' in body
    status, _, _ = guarded.request("GET", "/console/", headers={"Cookie": session + "x"})
    assert status == 401


def test_with_a_token_the_api_credentials_work_too(guarded):
    status, _, _ = guarded.request(
        "GET", "/console/api/executions", headers={"Authorization": "Bearer s3cret-token"}
    )
    assert status == 200
    status, doc = guarded.json(
        "GET", "/console/api/executions", headers={"Authorization": "Bearer nope"}
    )
    assert status == 401
    assert "bearer token is not the one" in doc["message"]


def test_the_lambda_api_still_needs_its_token(guarded):
    status, _, _ = guarded.request("GET", "/2025-12-01/functions/approval/durable-executions")
    assert status == 401


# ---------------------------------------------------------------------- escaping


def test_hostile_values_are_escaped_on_the_server(console):
    console.start("hostile", {"note": HOSTILE}, HOSTILE)
    console.wait_for(lambda: console.status(HOSTILE) == "FAILED")
    status, _, body = console.request("GET", "/console/")
    page = body.decode()
    assert status == 200
    assert "<script>alert" not in page
    assert "<img" not in page
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    )

    status, _, body = console.request("GET", exec_path(HOSTILE))
    page = body.decode("utf-8")  # valid UTF-8, whatever the error held
    assert status == 200
    assert "<script>alert" not in page
    assert "<img" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # name, input, error
    assert MANGLED.replace(" ", "") in page.replace(" ", "") or "\ufffd" in page

    status, doc = console.json("GET", exec_path(HOSTILE, api=True))
    step = next(op for op in doc["operations"] if op["name"] == HOSTILE)
    result = step["result"]
    assert result["truncated"]
    assert result["chars"] > 200_000
    assert len(result["text"]) == 50_000
    assert HOSTILE in doc["execution"]["error"]["message"]["text"]
    assert "\ufffd" in doc["execution"]["error"]["message"]["text"]


def test_undecodable_text_is_shown_with_replacement_characters():
    from durable_gen._http.console import _model

    lone = b"raw \xff\xfe".decode("utf-8", "surrogateescape")
    shown = _model.payload(json.dumps(lone, ensure_ascii=True))
    assert shown is not None
    assert shown["text"] == '"raw \ufffd\ufffd"'
    shown = _model.payload("not json " + lone)
    assert shown == {
        "text": "not json raw \ufffd\ufffd",
        "kind": "text",
        "chars": 15,
        "truncated": False,
    }
    err = _model.error(ErrorObject(type="T" + lone, message=lone, stack_trace=("a\nb" + lone,)))
    assert err is not None
    assert err["type"] == "Traw \ufffd\ufffd"
    assert err["stack"] == ["a", "braw \ufffd\ufffd"]


def test_values_json_cannot_carry_are_decoded():
    import datetime

    from durable_gen import DEFAULT_SERDES
    from durable_gen._http.console import _model

    data = DEFAULT_SERDES.serialize({"when": datetime.date(2026, 1, 2), "raw": b"\x00"})
    shown = _model.payload(data)
    assert shown is not None
    assert shown["kind"] == "python"
    assert shown["text"] == "{'when': datetime.date(2026, 1, 2), 'raw': b'\\x00'}"


# ---------------------------------------------------------------------- durable-gen ui


def test_ui_serves_the_console_and_prints_its_address(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "DURABLE_GEN_DB": str(tmp_path / "default.db")}
    env.pop("DURABLE_GEN_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "durable_gen", "ui", "--port", "0", "--no-open"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+/console/", url), url
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.netloc, timeout=10)
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 200
        assert b'data-page="list"' in body
        assert (tmp_path / "default.db").exists()  # the default database ($DURABLE_GEN_DB)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"the web console is on {url}" in err


# ---------------------------------------------------------------------- list: order, pages


def _ids(doc: Any) -> list[str]:
    return [r["id"] for r in doc["executions"]]


def _list(console: Console, **params: Any) -> Any:
    status, doc = console.json("GET", "/console/api/executions?" + urllib.parse.urlencode(params))
    assert status == 200, doc
    return doc


def _recorded(console: Console, spans: dict[str, tuple[int, int | None]], **kw: Any) -> None:
    """Executions recorded with the given start and (stopped) end times, epoch ms."""
    store = console.server.store
    for execution_id, (start, _) in spans.items():
        store.create(execution_id, "{}", start, target=FUNCTIONS["approval"], **kw)
    for execution_id, (_, end) in spans.items():
        if end is not None:
            store.stop(execution_id, end)


def test_list_oldest_first_and_previous_pages(console):
    _recorded(console, {f"e{i}": (1_000_000 + i * 1000, None) for i in range(7)})
    doc = _list(console, order="oldest", limit=3)
    assert _ids(doc) == ["e0", "e1", "e2"]
    assert doc["previous"] is None
    assert doc["order"] == "oldest"
    second = _list(console, order="oldest", limit=3, after=doc["next"])
    assert _ids(second) == ["e3", "e4", "e5"]
    back = _list(console, order="oldest", limit=3, before=second["previous"])
    assert _ids(back) == ["e0", "e1", "e2"]
    assert back["previous"] is None  # nothing before the first page
    assert _ids(_list(console, order="oldest", limit=3, after=back["next"])) == ["e3", "e4", "e5"]
    third = _list(console, order="oldest", limit=3, after=second["next"])
    assert _ids(third) == ["e6"]
    assert third["next"] is None
    assert _ids(_list(console, order="oldest", limit=3, before=third["previous"])) == [
        "e3",
        "e4",
        "e5",
    ]
    # newest first, backwards from the second page
    newest = _list(console, limit=2)
    assert _ids(newest) == ["e6", "e5"]
    page2 = _list(console, limit=2, after=newest["next"])
    assert _ids(page2) == ["e4", "e3"]
    page1 = _list(console, limit=2, before=page2["previous"])
    assert _ids(page1) == ["e6", "e5"]
    assert page1["previous"] is None


def test_list_by_duration_lists_ended_executions(console):
    spans = {"quick": (10_000, 10_500), "slow": (11_000, 20_000), "mid": (12_000, 14_000)}
    _recorded(console, {**spans, "running": (13_000, None)})
    assert _ids(_list(console, order="longest")) == ["slow", "mid", "quick"]
    doc = _list(console, order="shortest", limit=1)
    assert _ids(doc) == ["quick"]
    doc = _list(console, order="shortest", limit=1, after=doc["next"])
    assert _ids(doc) == ["mid"]
    assert _ids(_list(console, order="shortest", limit=1, before=doc["previous"])) == ["quick"]
    assert _ids(_list(console, order="longest", status="STOPPED", limit=2)) == ["slow", "mid"]
    status, _, body = console.request("GET", "/console/?order=longest")
    assert status == 200
    assert b"ended executions only" in body
    assert b'<option value="longest" selected>Longest first</option>' in body


def test_list_filters_by_version(console):
    _recorded(console, {"v1-a": (1_000, None), "v1-b": (2_000, None)}, code_version="v1")
    _recorded(console, {"v2-a": (3_000, None)}, code_version="v2")
    assert _ids(_list(console, version="v1")) == ["v1-b", "v1-a"]
    assert _ids(_list(console, version="v2", order="oldest")) == ["v2-a"]
    assert _ids(_list(console, version="v3")) == []
    status, _, body = console.request("GET", "/console/?version=v1")
    page = body.decode()
    assert status == 200
    assert 'data-id="v1-a"' in page
    assert 'data-id="v2-a"' not in page
    assert 'name="version" type="search" value="v1"' in page
    assert 'href="/console/?version=v1"' in page  # each version links to its filter


def test_list_page_links_previous_and_next(console):
    _recorded(console, {f"p{i}": (5_000 + i, None) for i in range(5)})
    doc = _list(console, limit=2)
    status, _, body = console.request(
        "GET", "/console/?limit=2&after=" + urllib.parse.quote(doc["next"])
    )
    page = body.decode()
    assert status == 200
    assert 'id="first"' in page
    previous = re.search(r'<a id="previous" href="([^"]+)"', page)
    assert previous is not None
    status, _, body = console.request("GET", previous[1].replace("&amp;", "&"))
    assert status == 200
    rows = re.findall(r'<tr data-id="([^"]+)"', body.decode())
    assert rows == ["p4", "p3"]


def test_text_filter_pages_backwards(console):
    _recorded(console, {f"{'red' if i % 2 else 'blue'}-{i}": (7_000 + i, None) for i in range(8)})
    doc = _list(console, q="red", limit=2)
    assert _ids(doc) == ["red-7", "red-5"]
    doc = _list(console, q="red", limit=2, after=doc["next"])
    assert _ids(doc) == ["red-3", "red-1"]
    assert _ids(_list(console, q="red", limit=2, before=doc["previous"])) == ["red-7", "red-5"]


# ---------------------------------------------------------------------- logs


def test_logs_are_served_and_tailed_while_running(console):
    console.start("chatty", {"tag": "t1"}, "chatty")
    console.wait_for(lambda: console.open_callback("chatty") is not None)
    base = exec_path("chatty", api=True) + "/logs"
    status, doc = console.json("GET", base)
    assert status == 200
    assert doc["live"] is True
    assert doc["dropped"] == 0
    records = doc["records"]
    messages = [r["message"] for r in records]
    assert messages[:2] == ["starting t1", HOSTILE]
    assert messages[2] == "undecodable: raw \ufffd\ufffd"  # stored with U+FFFD
    caught = records[3]
    assert caught["message"] == "caught it"
    assert caught["level"] == "ERROR"
    assert "KeyError" in caught["exception"]
    assert HOSTILE in caught["exception"]
    step = next(r for r in records if r["message"].startswith("in the step"))
    assert step["op_name"] == "log-step"
    assert step["attempt"] == 1
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert doc["last"] == len(records)

    status, doc = console.json("GET", f"{base}?after={len(records)}")
    assert doc["records"] == []
    assert doc["last"] == len(records)
    callback = console.open_callback("chatty")
    assert callback is not None
    console.server.store.complete_callback(
        callback, "succeed", console.server.clock.now(), payload='"yes"'
    )
    console.wait_for(lambda: console.status("chatty") == "SUCCEEDED")
    status, doc = console.json("GET", f"{base}?after={len(records)}")
    assert [r["message"] for r in doc["records"]] == ['after the callback: "yes"']
    assert doc["live"] is False
    status, doc = console.json("GET", f"{base}?level=error")
    assert [r["message"] for r in doc["records"]] == ["caught it", 'after the callback: "yes"']


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("level=LOUD", r"^level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"),
        ("after=-1", r"^after must be an integer from 0 to"),
    ],
)
def test_bad_log_queries_are_400s(console, query, message):
    console.start("approval", {"order": 1}, "quiet")
    status, doc = console.json("GET", exec_path("quiet", api=True) + "/logs?" + query)
    assert status == 400
    assert re.search(message, doc["message"]), doc["message"]


# ---------------------------------------------------------------------- meter


def test_meter_is_the_cli_meter(console):
    from durable_gen._engine.meter import meter_execution

    console.start("order", {"key": "meter"}, "metered")
    console.wait_for(lambda: console.open_callback("metered") is not None)
    status, doc = console.json("GET", exec_path("metered", api=True) + "/meter")
    assert status == 200
    expected = meter_execution(console.server.store, "metered", largest=10).to_dict()
    assert doc["meter"]["operations"] == expected["operations"]
    assert doc["meter"]["bytes_persisted"] == expected["bytes_persisted"]
    assert doc["meter"]["by_kind"] == expected["by_kind"]
    assert {r["kind"]: r["operations"] for r in doc["meter"]["rows"]}["Step"] == (
        expected["by_kind"]["Step"]["operations"]
    )
    assert doc["meter"]["operations"] > 5
    assert doc["estimate"] is None


def test_meter_estimates_with_the_prices_given(console):
    from durable_gen._engine.meter import meter_execution
    from durable_gen._engine.pricing import Prices, estimate

    console.start("many", {"n": 4}, "priced")
    console.wait_for(lambda: console.status("priced") == "SUCCEEDED")
    query = urllib.parse.urlencode(
        {
            "per_million_operations": "8",
            "per_gb_persisted": "0.25",
            "per_gb_month_retained": "0.15",
            "retention_days": "14",
            "executions_per_month": "2000",
            "currency": "EUR",
        }
    )
    status, doc = console.json("GET", exec_path("priced", api=True) + "/meter?" + query)
    assert status == 200, doc
    m = meter_execution(console.server.store, "priced", retention_days=14)
    prices = Prices(
        per_million_operations=8, per_gb_persisted=0.25, per_gb_month_retained=0.15, currency="EUR"
    )
    assert doc["estimate"] == estimate(m, prices, 2000).to_dict()
    assert doc["meter"]["retention_days"] == 14


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("per_million_operations=8", r"missing price\(s\) per_gb_persisted, per_gb_month_retained"),
        (
            "per_million_operations=x&per_gb_persisted=1&per_gb_month_retained=1",
            r"price per_million_operations must be a number, got 'x'",
        ),
        ("retention_days=-3", r"^retention_days must be a number of days from 0 to 36500"),
        ("retention_days=nan", r"^retention_days must be a number of days"),
        ("executions_per_month=lots", r"^executions_per_month must be an integer"),
    ],
)
def test_bad_prices_are_400s(console, query, message):
    console.start("many", {"n": 1}, "cheap")
    console.wait_for(lambda: console.status("cheap") == "SUCCEEDED")
    status, doc = console.json("GET", exec_path("cheap", api=True) + "/meter?" + query)
    assert status == 400
    assert re.search(message, doc["message"]), doc["message"]


def test_meter_names_hostile_operations_as_data(console):
    console.start("hostile", {"note": "meter"}, "hostile-meter")
    console.wait_for(lambda: console.status("hostile-meter") == "FAILED")
    status, headers, body = console.request("GET", exec_path("hostile-meter", api=True) + "/meter")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Security-Policy"] == CSP
    doc = json.loads(body)
    largest = doc["meter"]["largest_payloads"]
    assert largest[0]["name"] == HOSTILE  # the 200 kB result, named as written
    assert HOSTILE in largest[0]["operation"]


# ---------------------------------------------------------------------- invokes


def test_an_invoke_names_the_execution_it_started(console):
    console.start("caller", {}, "caller")
    console.wait_for(lambda: console.status("caller") == "SUCCEEDED")
    _, doc = console.json("GET", exec_path("caller", api=True))
    (invoke,) = [op for op in doc["operations"] if op["type"] == "CHAINED_INVOKE"]
    assert invoke["function_name"] == "many"
    child = invoke["invoked"]
    assert child != "caller"
    assert console.server.store.info(child).status == "SUCCEEDED"
    assert json.loads(console.server.store.info("caller").result or "") == {"child": 2}


# ---------------------------------------------------------------------- pause, resume, fork


def test_pause_and_resume(console):
    console.start("approval", {"order": 5}, "pausable")
    console.wait_for(lambda: console.open_callback("pausable") is not None)
    base = exec_path("pausable", api=True)
    status, doc = console.json("POST", base + "/pause")
    assert status == 200, doc
    assert doc["status"] in ("PAUSED", "PAUSING")
    console.wait_for(lambda: console.status("pausable") == "PAUSED")
    status, doc = console.json("POST", base + "/pause")  # pausing a paused one: no change
    assert status == 200
    assert doc["status"] == "PAUSED"
    callback = console.open_callback("pausable")
    status, _ = console.json(
        "POST",
        f"/console/api/callbacks/{callback}/succeed",
        {"execution": "pausable", "payload": "1"},
    )
    assert status == 200  # applied when it resumes
    time.sleep(0.5)
    assert console.status("pausable") == "PAUSED"
    status, doc = console.json("POST", base + "/resume")
    assert status == 200
    assert doc["message"].startswith("resumed execution pausable")
    console.wait_for(lambda: console.status("pausable") == "SUCCEEDED")
    status, doc = console.json("POST", base + "/resume")
    assert status == 409
    assert "not paused" in doc["message"]
    status, doc = console.json("POST", base + "/pause")
    assert status == 409
    assert "only a running execution can be paused" in doc["message"]
    types = [e["EventType"] for e in console.server.store.history("pausable")]
    assert "ExecutionPaused" in types
    assert "ExecutionResumed" in types


def test_fork_from_an_operation(console):
    console.start("many", {"n": 4}, "source")
    console.wait_for(lambda: console.status("source") == "SUCCEEDED")
    ops = {op.name: op for op in console.server.store.load("source").values() if op.name}
    base = exec_path("source", api=True) + "/fork"
    status, doc = console.json("POST", base, {"at": ops["step 2"].id, "name": "forked"})
    assert status == 200, doc
    assert doc["execution"] == "forked"
    assert doc["url"] == "/console/executions/forked"
    assert doc["operation"] == ops["step 2"].id
    console.wait_for(lambda: console.status("forked") == "SUCCEEDED")
    copied = console.server.store.load("forked")
    # the steps before the fork point were copied, not run again: same start times
    for name in ("step 0", "step 1"):
        (op,) = [o for o in copied.values() if o.name == name]
        assert op.start_timestamp == ops[name].start_timestamp
    (again,) = [o for o in copied.values() if o.name == "step 2"]
    assert again.start_timestamp > ops["step 2"].start_timestamp
    assert console.server.store.info("forked").result == "4"

    status, doc = console.json("POST", base, {"at": "step 1"})  # by name, a uuid name
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", doc["execution"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, r"^give the operation to fork from"),
        ({"at": "nothing-here"}, 400, r"^no operation with id or name 'nothing-here'"),
        ({"at": "step 0", "name": HOSTILE}, 400, r"^a fork's name must be 1 to 64 letters"),
        ({"at": "step 0", "name": 7}, 400, r"^name must be a string"),
        ({"at": "step 0", "name": "source"}, 409, r"^an execution with id 'source' exists"),
    ],
)
def test_bad_forks_are_refused(console, body, status, message):
    console.start("many", {"n": 1}, "source")
    console.wait_for(lambda: console.status("source") == "SUCCEEDED")
    got, doc = console.json("POST", exec_path("source", api=True) + "/fork", body)
    assert got == status
    assert re.search(message, doc["message"]), doc["message"]
    assert [r["id"] for r in _list(console)["executions"]] == ["source"]


def test_fork_needs_the_console_header(console):
    console.start("many", {"n": 1}, "source")
    console.wait_for(lambda: console.status("source") == "SUCCEEDED")
    status, _, _ = console.request(
        "POST", exec_path("source", api=True) + "/fork", {"at": "step 0"}, console=False
    )
    assert status == 403
    assert [r["id"] for r in _list(console)["executions"]] == ["source"]


# ---------------------------------------------------------------------- callback payloads


def test_a_callback_payload_is_sent_as_written(console):
    console.start("approval", {"order": 11}, "verbatim")
    console.wait_for(lambda: console.open_callback("verbatim") is not None)
    callback = console.open_callback("verbatim")
    text = '  {\n  "b": 2, "a": 1.50\n}\n'
    status, _ = console.json(
        "POST",
        f"/console/api/callbacks/{callback}/succeed",
        {"execution": "verbatim", "payload": text},
    )
    assert status == 200
    console.wait_for(lambda: console.status("verbatim") == "SUCCEEDED")
    assert json.loads(console.server.store.info("verbatim").result or "")["answer"] == text


def test_callback_payloads_that_are_not_text_or_too_big_are_refused(console):
    console.start("approval", {"order": 12}, "picky")
    console.wait_for(lambda: console.open_callback("picky") is not None)
    path = f"/console/api/callbacks/{console.open_callback('picky')}/succeed"
    status, doc = console.json("POST", path, {"execution": "picky", "payload": '"\udcff"'})
    assert status == 400
    assert doc["message"] == "the payload must be UTF-8 text: it holds lone surrogate code points"
    big = json.dumps("x" * (1024 * 1024))
    status, doc = console.json("POST", path, {"execution": "picky", "payload": big})
    assert status == 413
    assert doc["message"] == "the payload is 1,048,578 bytes; at most 1,048,576 are accepted"
    assert console.status("picky") == "RUNNING"


# ---------------------------------------------------------------------- undecodable text


def test_the_http_stop_api_stores_undecodable_text_safely(console):
    """A lone surrogate in the stop request's JSON error was a 500 (UnicodeEncodeError
    in the store): it is stored as U+FFFD."""
    console.start("approval", {"order": 13}, "stop-me")
    console.wait_for(lambda: console.open_callback("stop-me") is not None)
    body = b'{"ErrorType": "Halt\\udcff", "ErrorMessage": "bad \\udcff bytes"}'
    status, _, data = console.request(
        "POST", "/2025-12-01/durable-executions/stop-me/stop", body, console=False
    )
    assert status == 200, data
    error = console.server.store.info("stop-me").error
    assert error is not None
    assert (error.type, error.message) == ("Halt\ufffd", "bad \ufffd bytes")
    events = console.server.store.history("stop-me")
    stopped = events[-1]["ExecutionStoppedDetails"]["Error"]["Payload"]
    assert stopped["ErrorMessage"] == "bad \ufffd bytes"


def test_a_step_error_with_undecodable_bytes_is_recorded(console):
    console.start("undecodable", {}, "undecodable")
    console.wait_for(lambda: console.status("undecodable") == "FAILED")
    error = console.server.store.info("undecodable").error
    assert error is not None
    assert error.message == "bytes: raw \ufffd\ufffd"
    status, _, body = console.request("GET", exec_path("undecodable"))
    assert status == 200
    assert "bytes: raw \ufffd\ufffd" in body.decode("utf-8")


def test_pause_reasons_with_undecodable_text_are_stored(tmp_path):
    from durable_gen import SqliteStore

    store = SqliteStore(str(tmp_path / "reasons.db"))
    try:
        store.create("paused", "{}", 1_000)
        assert store.pause("paused", 2_000, reason="why \udcff") == "PAUSED"
        (event,) = [e for e in store.history("paused") if e["EventType"] == "ExecutionPaused"]
        assert event["ExecutionPausedDetails"]["Reason"] == "why \ufffd"
    finally:
        store.close()


def test_the_execution_page_has_the_new_panels_and_no_inline_code(console):
    console.start("approval", {"order": 1}, "panels")
    status, _, body = console.request("GET", exec_path("panels"))
    page = body.decode()
    assert status == 200
    for marker in ('id="fork-form"', 'id="logs"', 'id="meter"', 'id="prices"', 'name="level"'):
        assert marker in page
    assert "style=" not in page
    assert " on" not in re.sub(r">[^<]*<", "><", page)
