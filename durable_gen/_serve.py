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

Isolation and hostile input
    The command binds to 127.0.0.1 unless told otherwise. With a token
    (``--token`` or ``$DURABLE_GEN_TOKEN``) every request must carry
    ``Authorization: Bearer <token>`` (compared in constant time), else 401. An
    execution or callback id the server did not issue is a 404; callback ids are
    256-bit random values bound to their execution. Every malformed request (bad
    JSON, a body over :data:`MAX_BODY_BYTES`, a wrong method, a bad header) is
    answered with a 4xx JSON error (``{"__type", "message"}``) and changes
    nothing; an unexpected failure is a 500 with the same shape, and the server
    keeps serving.
"""

from __future__ import annotations

import contextlib
import hmac
import importlib
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ._engine import TargetError, canonical_target, resolve_target
from ._errors import DurableGenError, ErrorObject, StoreError
from ._hooks import Hooks
from ._log import OperationStatus, OperationType
from ._memory import RealClock
from ._serdes import DEFAULT_SERDES
from ._sqlite import ExecutionInfo, SqliteEngine, SqliteStore

__all__ = ["MAX_BODY_BYTES", "MAX_CALLBACK_RESULT_BYTES", "make_server"]

#: Largest request body accepted (Lambda's synchronous Invoke payload limit, 6 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024
#: Largest callback result (the API model's limit for SendDurableExecutionCallbackSuccess).
MAX_CALLBACK_RESULT_BYTES = 1024 * 1024
#: Execution names as the API model has them (``DurableExecutionName``).
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,15}")
_STATUS_CODES = {
    400: "InvalidRequestContentException",
    401: "UnauthorizedException",
    404: "ResourceNotFoundException",
    405: "MethodNotAllowedException",
    408: "RequestTimeoutException",
    411: "LengthRequiredException",
    413: "RequestEntityTooLargeException",
    414: "RequestURITooLongException",
    431: "RequestHeaderFieldsTooLargeException",
}

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


class _SkipClock:
    """``--skip-time``: real time plus every wait skipped so far (epoch ms)."""

    def __init__(self) -> None:
        self._skipped = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return RealClock().now() + self._skipped

    def sleep_until(self, when: int) -> None:
        with self._lock:
            self._skipped += max(0, when - (RealClock().now() + self._skipped))


def load_hooks(target: str) -> list[Hooks]:
    """``module:attr``: a Hooks instance, a sequence of them, or a factory of either."""
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr:
        raise TargetError(f"hooks target {target!r} must look like package.module:attribute")
    try:
        obj: Any = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise TargetError(f"cannot load hooks {target!r}: {e}") from None
    if callable(obj) and not isinstance(obj, Hooks):
        obj = obj()
    hooks = [obj] if isinstance(obj, Hooks) else list(obj)
    if not all(isinstance(h, Hooks) for h in hooks):
        raise TargetError(f"hooks target {target!r} is not durable_gen.Hooks")
    return hooks


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        db: str | None,
        functions: Mapping[str, str],
        token: str | None = None,
        skip_time: bool = False,
        hooks: Sequence[Hooks] = (),
    ) -> None:
        super().__init__(address, _Handler)
        self.db = db
        self.token = token
        self.functions = {name: canonical_target(t) for name, t in functions.items()}
        self.skip_time = skip_time
        self.clock: RealClock | _SkipClock = _SkipClock() if skip_time else RealClock()
        self.hooks = tuple(hooks)
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self._work, name="durable-gen-serve-worker")
        self.worker.daemon = True

    def _work(self) -> None:
        # served functions are also what workflows Invoke by name
        functions = {name: resolve_target(t) for name, t in self.functions.items()}
        while not self.stop_event.is_set():
            try:
                with SqliteEngine(
                    self.db, clock=self.clock, functions=functions, hooks=self.hooks
                ) as engine:
                    self._drive(engine)
                return
            except SystemExit:
                # A workflow or step exited the process (a runtime crash, e.g. sys.exit
                # in a step). As Lambda does, that ends the invocation, not the service:
                # a fresh engine takes the abandoned execution over, which records the
                # invocation as ended with Runtime.ExitError, and invokes it again.
                continue

    def _drive(self, engine: SqliteEngine) -> None:
        if not self.skip_time:
            engine.work(poll_seconds=0.1, stop=self.stop_event)
            return
        while not self.stop_event.is_set():
            engine.work(once=True)
            wake = engine.store.next_wake()
            if wake is None or wake <= self.clock.now():
                self.stop_event.wait(0.02)
            elif _awaits_callback(engine.store):
                # callbacks come from the outside world in real time; their timeouts
                # run in real time too (as in AWS's emulator)
                self.stop_event.wait(0.05)
            else:
                self.clock.sleep_until(wake)  # skip to the next wait / retry

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
    timeout = 60  # seconds a client may take to send a request
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
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self._raw

    def _read_body(self) -> bytes:
        """The whole body, or an _ApiError (the connection then closes: the body is unread)."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise _ApiError(
                411,
                "LengthRequiredException",
                "send the body with a Content-Length header (Transfer-Encoding is not supported)",
            )
        lengths = set(self.headers.get_all("Content-Length") or ())
        if not lengths:
            return b""
        text = lengths.pop().strip()
        if lengths or not _CONTENT_LENGTH.fullmatch(text):
            self.close_connection = True
            raise _ApiError(
                400,
                "InvalidRequestContentException",
                "the Content-Length header must be one non-negative integer",
            )
        length = int(text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise _ApiError(
                413,
                "RequestEntityTooLargeException",
                f"the request body is {length:,} bytes; this server accepts at most "
                f"{MAX_BODY_BYTES:,}",
            )
        try:
            data = self.rfile.read(length) if length else b""
        except OSError:
            data = b""
        if len(data) != length:
            self.close_connection = True
            raise _ApiError(
                400,
                "InvalidRequestContentException",
                f"the request body ended after {len(data):,} of {length:,} bytes",
            )
        return data

    def _authorize(self) -> None:
        token = self.server.token
        if token is None:
            return
        scheme, _, given = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), token.encode("utf-8")
        ):
            self.close_connection = True  # the body (if any) was not read
            raise _ApiError(
                401,
                "UnauthorizedException",
                "this server requires 'Authorization: Bearer <token>' with the token it was "
                "started with (--token or DURABLE_GEN_TOKEN)",
            )

    def _json_body(self, what: str) -> Any:
        try:
            return json.loads(self._body())
        except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, nested too deep
            raise _ApiError(
                400, "InvalidRequestContentException", f"{what} is not valid JSON: {e}"
            ) from None

    def _dispatch(self, method: str) -> None:
        try:
            self._authorize()
            # read the whole body first: an error reply must not leave it in a kept-alive socket
            self._raw = self._read_body()
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, max_num_fields=64)
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
        except ValueError as e:  # e.g. too many query fields
            self._error(400, "InvalidParameterValueException", str(e))
        except OSError:
            self.close_connection = True  # the client went away
        except Exception as e:  # a bug: answer it, and keep serving
            self.close_connection = True
            self._error(
                500,
                "ServiceException",
                f"internal error ({type(e).__name__}: {e}); this is a bug in durable_gen",
            )

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(
            status, {"__type": code, "message": message}, headers={"x-amzn-ErrorType": code}
        )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, headers, methods) as JSON."""
        if code == 501:  # no do_<METHOD>
            code, message = 405, f"method {self.command!r:.40} is not supported; use GET or POST"
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._error(code, _STATUS_CODES.get(code, "BadRequestException"), message or "")

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
            error = ErrorObject.from_dict(self._json_body("the error")) if body.strip() else None
            now = self.server.clock.now()
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
        raise _ApiError(404, "UnknownOperationException", f"no route for {method} {path!r:.200}")

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
        start = _int_param(query, "Marker", 0, 2**31)
        size = _int_param(query, "MaxItems", 0, 1000)
        events = store.history(execution_id)
        if query.get("ReverseOrder", ["false"])[0] == "true":
            events.reverse()
        size = size or len(events) or 1
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
            if len(body) > MAX_CALLBACK_RESULT_BYTES:
                raise _ApiError(
                    413,
                    "RequestEntityTooLargeException",
                    f"the callback result is {len(body):,} bytes; at most "
                    f"{MAX_CALLBACK_RESULT_BYTES:,} are accepted",
                )
            try:
                payload = body.decode()
            except UnicodeDecodeError as e:
                raise _ApiError(
                    400,
                    "InvalidRequestContentException",
                    f"the callback result must be UTF-8 text ({e}); encode binary data, "
                    "e.g. as base64",
                ) from None
        elif action == "fail":
            error = (
                ErrorObject.from_dict(self._json_body("the error"))
                if body.strip()
                else ErrorObject()
            )
        store.complete_callback(
            callback_id, action, self.server.clock.now(), payload=payload, error=error
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
        value = self._json_body("the payload") if body.strip() else None
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type not in ("RequestResponse", "Event"):
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                f"InvocationType must be RequestResponse or Event, got {invocation_type!r:.40}",
            )
        execution_id = self.headers.get("X-Amz-Durable-Execution-Name") or uuid.uuid4().hex
        if not _NAME.fullmatch(execution_id):
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                f"DurableExecutionName must be 1 to 64 letters, digits, '-' or '_', got "
                f"{execution_id!r:.80}",
            )
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
            SqliteEngine(store=store, clock=self.server.clock).start(
                workflow, value, execution_id=execution_id, target=target
            )
        headers = {"X-Amz-Durable-Execution-Arn": execution_id, "X-Amz-Executed-Version": "$LATEST"}
        if invocation_type == "Event":
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


def _int_param(query: dict[str, list[str]], name: str, default: int, highest: int) -> int:
    text = (query.get(name) or [""])[0]
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or int(text) > highest:
        raise _ApiError(
            400,
            "InvalidParameterValueException",
            f"{name} must be an integer from 0 to {highest}, got {text!r:.40}",
        )
    return int(text)


def make_server(
    host: str,
    port: int,
    *,
    db: str | None,
    functions: Mapping[str, str],
    token: str | None = None,
    skip_time: bool = False,
    hooks: Sequence[Hooks] = (),
) -> ThreadingHTTPServer:
    """An HTTP server for the Lambda API on ``host:port`` (0: any free port).

    With ``token``, every request needs ``Authorization: Bearer <token>``. Served
    functions can also be ``Invoke``d by name. ``skip_time`` skips through waits and
    retry delays (callback timeouts still run in real time); ``hooks`` are installed
    on the engine.
    """
    if token is not None and not token.strip():
        raise StoreError("the bearer token must not be empty")
    for name, target in functions.items():
        resolve_target(target)  # fail now, not at the first Invoke
        if not name:
            raise StoreError(f"function target {target!r} needs a name")
    if db is not None:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    SqliteStore(db).close()  # refuse a bad database before listening
    return _Server((host, port), db, functions, token, skip_time, hooks)


def _awaits_callback(store: SqliteStore) -> bool:
    """Whether a running execution waits on a callback (``--skip-time`` won't skip then)."""
    return any(
        op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        for info in store.executions(status="RUNNING", limit=1000)
        for op in store.load(info.id).values()
    )
