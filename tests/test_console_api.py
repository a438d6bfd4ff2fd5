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
    Jitter,
    Parallel,
    RetryPolicy,
    SqliteEngine,
    Step,
    Wait,
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
    if ATTEMPTS[key] < 2:
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


FUNCTIONS = {
    "many": "tests.test_console_api:many",
    "approval": "tests.test_console_api:approval",
    "hostile": "tests.test_console_api:hostile",
    "order": "tests.test_console_api:order",
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
        ("function=nope", r"^no function named 'nope' is served \(served: approval, hostile"),
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
