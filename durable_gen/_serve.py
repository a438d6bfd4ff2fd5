"""``durable-gen serve``: the embedded engine over HTTP, in the Lambda API's shapes.

Enough of the Lambda REST API for boto3 (``boto3.client("lambda",
endpoint_url=...)``) and the AWS CLI (``--endpoint-url``) to work with local
executions:

- ``Invoke`` (``POST /2015-03-31/functions/{name}/invocations``) starts an
  execution of a function registered with ``--function NAME=TARGET``;
  ``InvocationType=Event`` returns 202 at once, ``RequestResponse`` waits for
  the end (or returns once it is suspended on something that needs the outside
  world, such as a callback). ``X-Amz-Durable-Execution-Name`` names the
  execution (its id); the response carries ``X-Amz-Durable-Execution-Arn``.
- ``GetDurableExecution``, ``GetDurableExecutionHistory`` (``MaxItems`` and
  ``Marker`` page), ``ListDurableExecutionsByFunction``,
  ``SendDurableExecutionCallbackSuccess/Failure/Heartbeat`` and
  ``StopDurableExecution``.

An execution's ARN is its id (an ARN whose last ``/`` segment is the id is
accepted too). Timestamps go out as epoch seconds, as the REST API has them. A
worker thread advances executions (timers, completed callbacks).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ._engine import canonical_target, resolve_target
from ._errors import DurableGenError, ErrorObject, StoreError
from ._memory import RealClock
from ._serdes import DEFAULT_SERDES
from ._sqlite import ExecutionInfo, SqliteEngine, SqliteStore

__all__ = ["make_server"]

_EXEC = re.compile(r"^/2025-12-01/durable-executions/(?P<arn>[^/]+)(?P<rest>/history|/stop)?$")
_CALLBACK = re.compile(
    r"^/2025-12-01/durable-execution-callbacks/(?P<id>[^/]+)/(?P<action>succeed|fail|heartbeat)$"
)
_LIST = re.compile(r"^/2025-12-01/functions/(?P<fn>[^/]+)/durable-executions$")
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/invocations$")


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _seconds(obj: Any) -> Any:
    """Epoch-ms ``*Timestamp`` fields (at any depth) as epoch seconds."""
    if isinstance(obj, dict):
        return {
            k: (v / 1000 if k.endswith("Timestamp") and type(v) is int else _seconds(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_seconds(v) for v in obj]
    return obj


def _execution_id(arn: str) -> str:
    return urllib.parse.unquote(arn).rsplit("/", 1)[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        db: str | None,
        functions: Mapping[str, str],
    ) -> None:
        super().__init__(address, _Handler)
        self.db = db
        self.functions = {name: canonical_target(t) for name, t in functions.items()}
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self._work, name="durable-gen-serve-worker")
        self.worker.daemon = True

    def _work(self) -> None:
        with SqliteEngine(self.db) as engine:
            engine.work(poll_seconds=0.1, stop=self.stop_event)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.worker.start()
        try:
            super().serve_forever(poll_interval)
        finally:
            self.stop_event.set()

    def server_close(self) -> None:
        self.stop_event.set()
        super().server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    _raw = b""

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    # ------------------------------------------------------------------ plumbing

    def _reply(
        self, status: int, body: Any, headers: Mapping[str, str] | None = None, raw: bool = False
    ) -> None:
        data = body if raw else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self._raw

    def _dispatch(self, method: str) -> None:
        # read the whole body first: an error reply must not leave it in a kept-alive socket
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            with SqliteStore(self.server.db) as store:
                self._route(method, url.path, query, store)
        except _ApiError as e:
            self._error(e.status, e.code, e.message)
        except StoreError as e:
            text = str(e)
            if text.startswith(("no execution", "no callback")):
                self._error(404, "ResourceNotFoundException", text)
            else:
                self._error(400, "InvalidParameterValueException", text)
        except DurableGenError as e:
            self._error(400, "InvalidParameterValueException", str(e))

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(
            status, {"__type": code, "message": message}, headers={"x-amzn-ErrorType": code}
        )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ------------------------------------------------------------------ routes

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], store: SqliteStore
    ) -> None:
        m = _EXEC.match(path)
        if m and method == "GET" and m["rest"] is None:
            return self._reply(200, self._describe(store.info(_execution_id(m["arn"]))))
        if m and method == "GET" and m["rest"] == "/history":
            return self._history(store, _execution_id(m["arn"]), query)
        if m and method == "POST" and m["rest"] == "/stop":
            body = self._body()
            error = ErrorObject.from_dict(json.loads(body)) if body.strip() else None
            now = RealClock().now()
            store.stop(_execution_id(m["arn"]), now, error=error)
            return self._reply(200, {"StopTimestamp": now / 1000})
        m = _CALLBACK.match(path)
        if m and method == "POST":
            return self._callback(store, urllib.parse.unquote(m["id"]), m["action"])
        m = _LIST.match(path)
        if m and method == "GET":
            return self._list(store, urllib.parse.unquote(m["fn"]), query)
        m = _INVOKE.match(path)
        if m and method == "POST":
            return self._invoke(store, urllib.parse.unquote(m["fn"]))
        raise _ApiError(404, "UnknownOperationException", f"no route for {method} {path}")

    def _describe(self, info: ExecutionInfo) -> dict[str, Any]:
        out: dict[str, Any] = {
            "DurableExecutionArn": info.id,
            "DurableExecutionName": info.id,
            "FunctionArn": self._function_of(info) or "",
            "InputPayload": info.input,
            "Status": info.status,
            "StartTimestamp": info.created_at / 1000,
        }
        if info.result is not None:
            out["Result"] = info.result
        if info.error is not None:
            out["Error"] = info.error.to_dict()
        if info.ended_at is not None:
            out["EndTimestamp"] = info.ended_at / 1000
        return out

    def _function_of(self, info: ExecutionInfo) -> str | None:
        for name, target in self.server.functions.items():
            if target == info.target:
                return name
        return info.target

    def _history(self, store: SqliteStore, execution_id: str, query: dict[str, list[str]]) -> None:
        events = store.history(execution_id)
        if query.get("ReverseOrder", ["false"])[0] == "true":
            events.reverse()
        start = int(query.get("Marker", ["0"])[0] or 0)
        size = int(query.get("MaxItems", ["0"])[0] or 0) or len(events) or 1
        page = events[start : start + size]
        out: dict[str, Any] = {"Events": _seconds(page)}
        if start + size < len(events):
            out["NextMarker"] = str(start + size)
        self._reply(200, out)

    def _list(self, store: SqliteStore, function: str, query: dict[str, list[str]]) -> None:
        target = self.server.functions.get(function)
        if target is None:
            raise _ApiError(
                404, "ResourceNotFoundException", f"no function named {function!r} is served"
            )
        statuses = set(query.get("Statuses", []))
        rows = [
            r
            for r in store.executions(limit=10_000)
            if r.target == target and (not statuses or r.status in statuses)
        ]
        if query.get("ReverseOrder", ["false"])[0] != "true":
            rows.reverse()  # oldest first
        self._reply(
            200,
            {
                "DurableExecutions": [
                    {
                        k: v
                        for k, v in self._describe(r).items()
                        if k
                        in (
                            "DurableExecutionArn",
                            "DurableExecutionName",
                            "FunctionArn",
                            "Status",
                            "StartTimestamp",
                            "EndTimestamp",
                        )
                    }
                    for r in rows
                ]
            },
        )

    def _callback(self, store: SqliteStore, callback_id: str, action: str) -> None:
        body = self._body()
        payload = None
        error = None
        if action == "succeed":
            payload = body.decode()
        elif action == "fail":
            error = ErrorObject.from_dict(json.loads(body)) if body.strip() else ErrorObject()
        store.complete_callback(
            callback_id, action, RealClock().now(), payload=payload, error=error
        )
        self._reply(200, {})

    def _invoke(self, store: SqliteStore, function: str) -> None:
        target = self.server.functions.get(function)
        if target is None:
            known = ", ".join(sorted(self.server.functions)) or "none"
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"no function named {function!r} is served (served: {known})",
            )
        body = self._body()
        try:
            value = json.loads(body) if body.strip() else None
        except json.JSONDecodeError as e:
            raise _ApiError(400, "InvalidRequestContentException", f"bad JSON: {e}") from None
        execution_id = self.headers.get("X-Amz-Durable-Execution-Name") or uuid.uuid4().hex
        payload = DEFAULT_SERDES.serialize(value)
        if store.exists(execution_id):
            if store.info(execution_id).input != payload:
                raise _ApiError(
                    409,
                    "DurableExecutionAlreadyStartedException",
                    f"execution {execution_id!r} was started with another payload",
                )
        else:
            workflow = resolve_target(target)
            SqliteEngine(store=store).start(
                workflow, value, execution_id=execution_id, target=target
            )
        headers = {"X-Amz-Durable-Execution-Arn": execution_id, "X-Amz-Executed-Version": "$LATEST"}
        if self.headers.get("X-Amz-Invocation-Type") == "Event":
            return self._reply(202, b"", headers=headers, raw=True)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            info = store.info(execution_id)
            if info.status != "RUNNING" or (info.wake_at is None and info.lease_owner is None):
                break
            time.sleep(0.05)
        if info.status == "FAILED":
            headers["X-Amz-Function-Error"] = "Unhandled"
            err = info.error.to_dict() if info.error else {}
            return self._reply(200, err, headers=headers)
        if info.status == "SUCCEEDED":
            return self._reply(200, (info.result or "null").encode(), headers=headers, raw=True)
        return self._reply(200, {"Status": info.status}, headers=headers)


def make_server(
    host: str, port: int, *, db: str | None, functions: Mapping[str, str]
) -> ThreadingHTTPServer:
    """An HTTP server for the Lambda API on ``host:port`` (0: any free port)."""
    for name, target in functions.items():
        resolve_target(target)  # fail now, not at the first Invoke
        if not name:
            raise StoreError(f"function target {target!r} needs a name")
    if db is not None:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    SqliteStore(db).close()  # refuse a bad database before listening
    return _Server((host, port), db, functions)
