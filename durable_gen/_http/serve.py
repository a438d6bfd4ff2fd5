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
- ``GetDurableExecution``, ``GetDurableExecutionHistory`` (``MaxItems``, 1 to
  1,000, default 1,000 where AWS has 100, and opaque ``Marker``s page; a page
  costs O(page) however long the history), ``GetDurableExecutionState`` (the
  operations, paged the same way; any checkpoint token is accepted: this server
  hands out none),
  ``ListDurableExecutionsByFunction``,
  ``SendDurableExecutionCallbackSuccess/Failure/Heartbeat``,
  ``StopDurableExecution``, ``PauseDurableExecution``,
  ``ResumeDurableExecution`` and ``DeleteDurableExecution``.

Names and ARNs are Lambda's: a function is named by its name, ``name:$LATEST``,
or its ARN (``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:$LATEST]``, or the
partial ``ACCOUNT:function:NAME``); this server serves ``$LATEST`` only. An
execution's ARN is
``arn:aws:lambda:REGION:ACCOUNT:function:NAME:$LATEST/durable-execution/EXEC_NAME/ID``
(the ID is the name: the database's key); any text whose last ``/`` segment is
the id is accepted too. Timestamps go out as epoch seconds, as the REST API has
them. A worker thread advances executions (timers, completed callbacks).

One name, one execution (Lambda's rule)
    ``X-Amz-Durable-Execution-Name`` is the idempotency key: Invoke with a name
    that exists and the same payload is that execution (a synchronous Invoke
    waits for its result, however often the client retries after a read
    timeout); another payload, or another function, is a 409
    ``DurableExecutionAlreadyStartedException``. Concurrent Invokes of one name
    create one execution. An unnamed synchronous Invoke that runs past 60 s is
    logged with a warning: a client that times out and retries it (boto3 does,
    after 60 s by default) starts a second execution.

Sharing the database, and faults
    One store serves every request thread and one the worker, for the life of
    the process (see ``_stores.sqlite``: only SQLite opens the database file). A fault of
    the server or its database is a 500 ``ServiceException``, logged on stderr,
    never blamed on the caller; a caller's mistake is a 4xx. SIGTERM (or SIGINT)
    stops taking requests, lets the running invocation end at its next
    checkpoint (at most a few seconds), lets go of every execution it held and
    exits 0; a restarted server (or any worker) picks them up at once.

Isolation and hostile input
    The command binds to 127.0.0.1 unless told otherwise. With a token (``--token``
    or ``$DURABLE_GEN_TOKEN``) every request must carry ``Authorization: Bearer
    <token>`` (compared in constant time) or an AWS Signature Version 4 made with
    the token as the secret access key (any access key id and region: what boto3 and
    the AWS CLI send), verified in full by :mod:`durable_gen._http.auth`, timestamp
    within 5 minutes included. Without credentials or with a wrong bearer token the
    answer is 401 ``UnauthorizedException``, and the body is not read; a bad
    signature is 403 ``InvalidSignatureException`` (``IncompleteSignatureException``
    when malformed). Presigned URLs are not accepted. An execution or callback id
    the server did not issue is a 404; callback ids are 256-bit random values bound
    to their execution. Every malformed request (bad JSON, a body over
    :data:`MAX_BODY_BYTES`, a wrong method, a bad header) is answered with a 4xx
    JSON error (``{"__type", "message"}``) and changes nothing; an unexpected
    failure is a 500 with the same shape, and the server keeps serving.

(Why one module of ~820 lines: the server and its request handler share the
Lambda API's error shapes and names; who may call it is ``auth``.)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from .._core.contract import ExecutionInfo
from .._core.errors import (
    CallbackClosedError,
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionAlreadyStartedError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    StoreError,
    ValidationError,
)
from .._core.log import (
    OperationStatus,
    OperationType,
)
from .._core.traceparent import parse_traceparent
from .._engine import logger as _logging
from .._engine.clock import RealClock
from .._engine.hooks import Hooks
from .._engine.limits import Limits, durable_config, parse_durable_config
from .._engine.queues import check_binding, queue_binding
from .._engine.sqlite import SqliteEngine
from .._engine.targets import (
    TargetError,
    canonical_target,
    code_version_of,
    resolve_target,
)
from .._stores.factory import open_store
from .._stores.sqlite import SqliteStore
from .._stores.sqlite.paging import MAX_PAGE
from .auth import (
    AuthError,
    check_request,
    signed_with_sigv4,
)

__all__ = ["MAX_BODY_BYTES", "MAX_CALLBACK_RESULT_BYTES", "make_server"]

#: Largest request body accepted (Lambda's synchronous Invoke payload limit, 6 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024
#: Largest callback result (the API model's limit for SendDurableExecutionCallbackSuccess).
MAX_CALLBACK_RESULT_BYTES = 1024 * 1024
#: An unnamed synchronous Invoke running this long is logged: boto3's default read
#: timeout is 60 s, and a retry of an unnamed Invoke starts another execution.
UNNAMED_INVOKE_WARNING_SECONDS = 60.0
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

_EXEC = re.compile(
    r"^/2025-12-01/durable-executions/(?P<arn>[^/]+)"
    r"(?P<rest>/history|/stop|/state|/pause|/resume|/redrive|/fork|/logs)?$"
)
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


#: A function as Lambda's API names it: ``NAME``, ``NAME:QUALIFIER``, the partial ARN
#: ``ACCOUNT:function:NAME[:QUALIFIER]`` or the ARN.
_FUNCTION = re.compile(
    r"^(?:(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?[0-9]{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)
#: The function versions this server runs.
LATEST = "$LATEST"


def _function_name(text: str, qualifier: str | None = None) -> str:
    """The function name in ``text`` (any of Lambda's spellings); only ``$LATEST`` runs."""
    m = _FUNCTION.match(text)
    if m is None:
        raise _ApiError(
            400,
            "InvalidParameterValueException",
            f"{text!r:.120} is not a function name: give NAME, NAME:$LATEST or the function's ARN",
        )
    given = m["qualifier"] or qualifier
    if m["qualifier"] and qualifier and m["qualifier"] != qualifier:
        raise _ApiError(
            400,
            "InvalidParameterValueException",
            f"the function {text!r:.120} names version {m['qualifier']!r} and the Qualifier "
            f"{qualifier!r:.40} another; give one",
        )
    if given not in (None, LATEST):
        raise _ApiError(
            404,
            "ResourceNotFoundException",
            f"function {m['name']!r} has no version {given!r:.40} here: durable-gen serve runs "
            "$LATEST only (leave the qualifier out, or use $LATEST)",
        )
    return m["name"]


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
        store: SqliteStore,
        functions: Mapping[str, str],
        token: str | None = None,
        skip_time: bool = False,
        hooks: Sequence[Hooks] = (),
        region: str = "us-east-1",
        account: str = "000000000000",
    ) -> None:
        super().__init__(address, _Handler)
        #: the store every request thread uses (one per process: see ``_stores.sqlite``)
        self.store = store
        self.db = store.path
        self.region = region
        self.account = account
        self.token = token
        self.functions = {name: canonical_target(t) for name, t in functions.items()}
        self.skip_time = skip_time
        self.clock: RealClock | _SkipClock = _SkipClock() if skip_time else RealClock()
        self.hooks = tuple(hooks)
        self.stop_event = threading.Event()
        self.worker = threading.Thread(target=self._work, name="durable-gen-serve-worker")
        self.worker.daemon = True
        self.engine: SqliteEngine | None = None
        #: executions the worker advances at once (``--concurrency``)
        self.concurrency = 1
        #: the code version executions start on and the worker advances (``--version``)
        self.version: str | None = None
        #: each function's DurableConfig (``--function-configs``), in Lambda's shape,
        #: and the retention of executions that have none (``--retention-days``)
        self.function_configs: dict[str, Any] = {}
        self.limits = Limits()
        self._arns: dict[str, str] = {}
        _logging.set_execution_arns(self.arn_of)  # logs and hooks name executions by ARN

    def log(self, message: str) -> None:
        """A line on stderr (the server's log)."""
        print(f"durable-gen serve: {message}", file=sys.stderr, flush=True)

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def execution_arn(self, info: ExecutionInfo) -> str:
        function = self.function_of(info) or "unknown"
        return f"{self.function_arn(function)}:{LATEST}/durable-execution/{info.id}/{info.id}"

    def arn_of(self, execution_id: str) -> str:
        """The ARN of a stored execution (its id when it is not found)."""
        arn = self._arns.get(execution_id)
        if arn is None:
            try:
                arn = self.execution_arn(self.store.info(execution_id))
            except DurableGenError:
                return execution_id
            self._arns[execution_id] = arn
        return arn

    def function_limits(self, name: str) -> Limits:
        """The timeout and retention of executions of function ``name``."""
        config = self.function_configs.get(name)
        own = Limits() if config is None else parse_durable_config(name, config)
        return own.or_else(self.limits)

    def queue_options(self, name: str) -> dict[str, Any]:
        """``start``'s queue and priority for function ``name`` (none: not bound)."""
        binding = queue_binding(name, self.function_configs.get(name))
        return {} if binding is None else binding.start_options()

    def function_of(self, info: ExecutionInfo) -> str | None:
        """The served function an execution runs, by its target."""
        for name, target in self.functions.items():
            if target == info.target:
                return name
        return None

    def _work(self) -> None:
        # served functions are also what workflows Invoke by name
        functions = {name: resolve_target(t) for name, t in self.functions.items()}
        while not self.stop_event.is_set():
            try:
                with SqliteEngine(
                    store=self.store.clone(),
                    clock=self.clock,
                    functions=functions,
                    hooks=self.hooks,
                    version=self.version,
                    function_configs=self.function_configs,
                ) as engine:
                    engine.limits = self.limits
                    self.engine = engine
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
            engine.work(
                poll_seconds=0.1, stop=self.stop_event, log=self.log, concurrency=self.concurrency
            )
            return
        while not self.stop_event.is_set():
            engine.work(once=True)
            wake = engine.store.next_wake(code_version=self.version)
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

    def drain(self, grace_seconds: float = 3.0) -> None:
        """Stop advancing executions: the running invocation ends at its next
        checkpoint (waited for up to ``grace_seconds``); every lease is let go."""
        self.stop_event.set()
        engine = self.engine
        if engine is not None:
            engine.drain()
        if self.worker.is_alive():
            self.worker.join(grace_seconds)
        if engine is not None and self.worker.is_alive():
            # a step still runs (a thread cannot be stopped): let go of its execution
            # now; the step's outcome, if it ever comes, is fenced off
            engine.store.release_all()

    def server_close(self) -> None:
        self.stop_event.set()
        super().server_close()
        _logging.set_execution_arns(None)
        self.store.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY a kept-alive
    # connection waits ~40 ms (Nagle + delayed ACK) before the body
    disable_nagle_algorithm = True
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

    def _authorize(self, body: bytes | None) -> None:
        """Refuse a request without the token: a bearer token or a SigV4 signature.

        Called before the body is read (``body`` None), to check a bearer token or its
        absence, so that a refused request's body is never read (its connection then
        closes); and with the body, to check a SigV4 signature, which covers the body.
        """
        token = self.server.token
        if token is None or signed_with_sigv4(self.headers) == (body is None):
            return  # no token; or a SigV4 request without its body, or another one with it
        try:
            check_request(
                method=self.command,
                target=self.path,
                headers=self.headers,
                body=body or b"",
                token=token,
                now=time.time(),
            )
        except AuthError as e:
            if body is None:
                self.close_connection = True  # the body (if any) was not read
            raise _ApiError(e.status, e.code, e.message) from None

    def _json_body(self, what: str) -> Any:
        try:
            return json.loads(self._body())
        except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, nested too deep
            raise _ApiError(
                400, "InvalidRequestContentException", f"{what} is not valid JSON: {e}"
            ) from None

    def _dispatch(self, method: str) -> None:
        if self.path.split("?", 1)[0].rstrip("/") == "/console" or self.path.startswith(
            "/console/"
        ):
            from .console import handle  # the web console (its own auth, CSRF and CSP)

            return handle(self, method)
        try:
            self._authorize(None)  # a bearer token (or none), before the body is read
            # read the whole body first: an error reply must not leave it in a kept-alive socket
            self._raw = self._read_body()
            self._authorize(self._raw)  # a SigV4 signature, which covers the body
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query, max_num_fields=64)
            self._route(method, url.path, query, self.server.store)
        except _ApiError as e:
            self._error(e.status, e.code, e.message)
        except ExecutionNotFoundError as e:
            self._error(404, "ResourceNotFoundException", str(e))
        except ExecutionAlreadyStartedError as e:
            self._error(409, "DurableExecutionAlreadyStartedException", str(e))
        except ExecutionConflictError as e:
            self._error(409, "ResourceConflictException", str(e))
        except (StoreError, CorruptLogError) as e:  # the server's fault, not the caller's
            self.server.log(f"{method} {self.path:.200}: {type(e).__name__}: {e}")
            self._error(500, "ServiceException", str(e))
        except DurableGenError as e:  # validation: the caller's input
            self._error(400, "InvalidParameterValueException", str(e))
        except ValueError as e:  # e.g. too many query fields
            self._error(400, "InvalidParameterValueException", str(e))
        except OSError:
            self.close_connection = True  # the client went away
        except Exception as e:  # a bug: answer it, and keep serving
            self.close_connection = True
            self.server.log(f"{method} {self.path:.200}: internal error: {traceback.format_exc()}")
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
            code, message = (
                405,
                f"method {self.command!r:.40} is not supported; use GET, POST or DELETE",
            )
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._error(code, _STATUS_CODES.get(code, "BadRequestException"), message or "")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ routes

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], store: SqliteStore
    ) -> None:
        m = _EXEC.match(path)
        if m:
            execution_id = _execution_id(m["arn"])
            rest = m["rest"]
            if method == "GET" and rest is None:
                return self._reply(200, self._describe(store.info(execution_id)))
            if method == "GET" and rest == "/history":
                return self._history(store, execution_id, query)
            if method == "GET" and rest == "/state":
                return self._state(store, execution_id, query)
            if method == "GET" and rest == "/logs":  # durable_gen's own (_logs)
                return self._logs(store, execution_id, query)
            if method == "POST" and rest == "/stop":
                error = self._error_body() if self._body().strip() else None
                now = self.server.clock.now()
                store.stop(execution_id, now, error=error)
                return self._reply(200, {"StopTimestamp": now / 1000})
            if method == "POST" and rest in ("/pause", "/resume"):
                reason = self._reason()
                now = self.server.clock.now()
                if rest == "/pause":
                    store.pause(execution_id, now, reason=reason)
                else:
                    store.resume_paused(execution_id, now, reason=reason)
                return self._reply(202, b"", raw=True)
            if method == "DELETE" and rest is None:
                store.delete(execution_id, force=_query_one(query, "Force") == "true")
                return self._reply(202, {"DeletionRequestTimestamp": time.time()})
            # durable_gen's own operations (Lambda has none of these names)
            if method == "POST" and rest == "/redrive":
                now = self.server.clock.now()
                rerun = store.redrive(execution_id, now)
                return self._reply(200, {"RedriveTimestamp": now / 1000, "Rerun": rerun})
            if method == "POST" and rest == "/fork":
                return self._fork(store, execution_id)
        m = _CALLBACK.match(path)
        if m and method == "POST":
            return self._callback(store, urllib.parse.unquote(m["id"]), m["action"])
        m = _LIST.match(path)
        if m and method == "GET":
            return self._list(store, urllib.parse.unquote(m["fn"]), query)
        m = _INVOKE.match(path)
        if m and method == "POST":
            qualifier = _query_one(query, "Qualifier")
            return self._invoke(store, urllib.parse.unquote(m["fn"]), qualifier)
        raise _ApiError(404, "UnknownOperationException", f"no route for {method} {path!r:.200}")

    def _fork(self, store: SqliteStore, source_id: str) -> None:
        """``POST .../fork`` with ``{"FromOperation": id or name, "DurableExecutionName"?}``."""
        body = self._json_body("the request")
        at = body.get("FromOperation") if isinstance(body, dict) else None
        if not isinstance(at, str) or not at:
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                "FromOperation (the id or unique name of the operation to fork from) is required",
            )
        new_id = body.get("DurableExecutionName") or uuid.uuid4().hex
        if not isinstance(new_id, str) or not _NAME.fullmatch(new_id):
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                f"DurableExecutionName must be 1 to 64 letters, digits, '-' or '_', got "
                f"{new_id!r:.80}",
            )
        version = self.server.version
        if version is None:
            source = store.info(source_id)
            if source.target is not None:
                version = code_version_of(resolve_target(source.target, workdir=source.workdir))
        try:
            point = store.fork(source_id, new_id, at, self.server.clock.now(), code_version=version)
        except ValidationError as e:
            raise _ApiError(400, "InvalidParameterValueException", str(e)) from None
        info = store.info(new_id)
        self._reply(
            200,
            {
                "DurableExecutionArn": self.server.execution_arn(info),
                "DurableExecutionName": new_id,
                "ForkedFromOperation": point,
            },
        )

    def _error_body(self) -> ErrorObject:
        """The request body as an ErrorObject; a malformed one is the caller's mistake."""
        try:
            return ErrorObject.from_dict(self._json_body("the error"))
        except CorruptLogError as e:
            raise _ApiError(400, "InvalidParameterValueException", str(e)) from None

    def _reason(self) -> str | None:
        body = self._body()
        if not body.strip():
            return None
        value = self._json_body("the request").get("Reason")
        if value is not None and not isinstance(value, str):
            raise _ApiError(400, "InvalidParameterValueException", "Reason must be a string")
        return value

    def _describe(self, info: ExecutionInfo) -> dict[str, Any]:
        function = self.server.function_of(info)
        out: dict[str, Any] = {
            "DurableExecutionArn": self.server.execution_arn(info),
            "DurableExecutionName": info.id,
            "FunctionArn": f"{self.server.function_arn(function)}:{LATEST}"
            if function
            else info.target or "",
            "InputPayload": info.input,
            "Status": info.status,
            "StartTimestamp": info.created_at / 1000,
            "Version": LATEST,
        }
        if info.result is not None:
            out["Result"] = info.result
        if info.error is not None:
            out["Error"] = info.error.to_dict()
        if info.ended_at is not None:
            out["EndTimestamp"] = info.ended_at / 1000
        config = durable_config(info.timeout_ms, info.retention_ms)
        if config:
            out["DurableConfig"] = config
        if info.deadline is not None:
            out["ExpectedExecutionTimeoutTimestamp"] = info.deadline / 1000
        return out

    def _history(self, store: SqliteStore, execution_id: str, query: dict[str, list[str]]) -> None:
        """A page of events read by key from the marker on: O(page), not O(history)."""
        size = _int_param(query, "MaxItems", 0, MAX_PAGE) or MAX_PAGE
        reverse = query.get("ReverseOrder", ["false"])[0] == "true"
        events, marker = store.history_page(
            execution_id, _query_one(query, "Marker") or None, size, reverse=reverse
        )
        self._reply(200, _marked({"Events": _seconds(events)}, marker))

    def _state(self, store: SqliteStore, execution_id: str, query: dict[str, list[str]]) -> None:
        if not _query_one(query, "CheckpointToken"):
            raise _ApiError(400, "InvalidParameterValueException", "CheckpointToken is required")
        size = _int_param(query, "MaxItems", 0, MAX_PAGE) or MAX_PAGE
        ops, marker = store.operations_page(execution_id, _query_one(query, "Marker") or None, size)
        self._reply(200, _marked({"Operations": [_seconds(op.to_dict()) for op in ops]}, marker))

    def _logs(self, store: SqliteStore, execution_id: str, query: dict[str, list[str]]) -> None:
        """``GET .../logs``: the execution's kept log records (``durable-gen logs``), in
        order, ``{"Records": [...], "DroppedRecords": n, "NextToken"?}``; a page of at
        most ``MaxItems`` (1 to 1,000; default 1,000) from ``NextToken`` (the ``Seq`` of
        the last record seen; also the way to poll for new ones), at ``Level`` and
        above. A record: ``Seq, Timestamp`` (epoch seconds) ``, Level, Logger, Message``
        and, when set, ``OperationId, OperationName, Attempt, Exception``."""
        from .._stores.logs import LEVELS

        after = _int_param(query, "NextToken", 0, 2**62)
        size = _int_param(query, "MaxItems", 0, 1000) or 1000
        level = (_query_one(query, "Level") or "DEBUG").upper()
        if level not in LEVELS:
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                f"Level must be one of {', '.join(LEVELS)}, got {level!r:.40}",
            )
        page = store.log_records(execution_id, after=after, limit=size, level=LEVELS[level])
        records = []
        for r in page.records:
            record: dict[str, Any] = {
                "Seq": r.seq,
                "Timestamp": r.time / 1000,
                "Level": r.level_name,
                "Logger": r.logger,
                "Message": r.message,
            }
            for key, value in (
                ("OperationId", r.operation_id),
                ("OperationName", r.operation_name),
                ("Attempt", r.attempt),
                ("Exception", r.exception),
            ):
                if value is not None:
                    record[key] = value
            records.append(record)
        out: dict[str, Any] = {"Records": records, "DroppedRecords": page.dropped}
        if page.more:
            out["NextToken"] = str(page.records[-1].seq)
        self._reply(200, out)

    def _list(self, store: SqliteStore, function: str, query: dict[str, list[str]]) -> None:
        name = _function_name(function, _query_one(query, "Qualifier"))
        target = self.server.functions.get(name)
        if target is None:
            raise _ApiError(
                404, "ResourceNotFoundException", f"no function named {name!r} is served"
            )
        statuses = set(query.get("Statuses", []))
        wanted = _query_one(query, "DurableExecutionName")
        rows = [
            r
            for r in store.executions(limit=10_000, target=target, statuses=statuses)
            if wanted is None or r.id == wanted
        ]
        if query.get("ReverseOrder", ["false"])[0] != "true":
            rows.reverse()  # oldest first
        keys = (
            "DurableExecutionArn",
            "DurableExecutionName",
            "FunctionArn",
            "Status",
            "StartTimestamp",
            "EndTimestamp",
        )
        listed = [{k: v for k, v in self._describe(r).items() if k in keys} for r in rows]
        self._reply(200, _page(listed, "DurableExecutions", query))

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
            error = self._error_body() if body.strip() else ErrorObject()
        try:
            store.complete_callback(
                callback_id, action, self.server.clock.now(), payload=payload, error=error
            )
        except CallbackClosedError as e:  # its execution timed out and closed it
            raise _ApiError(400, "CallbackTimeoutException", str(e)) from None
        except ExecutionConflictError as e:  # as AWS's service answers it
            raise _ApiError(400, "InvalidParameterValueException", str(e)) from None
        self._reply(200, {})

    def _invoke(self, store: SqliteStore, function: str, qualifier: str | None) -> None:
        name = _function_name(function, qualifier)
        target = self.server.functions.get(name)
        if target is None:
            known = ", ".join(sorted(self.server.functions)) or "none"
            raise _ApiError(
                404,
                "ResourceNotFoundException",
                f"no function named {name!r} is served (served: {known})",
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
        named = self.headers.get("X-Amz-Durable-Execution-Name")
        execution_id = named or uuid.uuid4().hex
        if not _NAME.fullmatch(execution_id):
            raise _ApiError(
                400,
                "InvalidParameterValueException",
                f"DurableExecutionName must be 1 to 64 letters, digits, '-' or '_', got "
                f"{execution_id!r:.80}",
            )
        workflow = resolve_target(target)
        # Lambda's name rule, atomically: the existing execution, or a 409
        engine = SqliteEngine(store=store, clock=self.server.clock, version=self.server.version)
        # the function's DurableConfig (ExecutionTimeout, RetentionPeriodInDays)
        engine.limits = self.server.function_limits(name)
        # W3C Trace Context: the execution's trace continues the caller's; an invalid
        # traceparent is ignored, as the recommendation says (never a 400)
        caller = parse_traceparent(self.headers.get("traceparent"))
        engine.start(
            workflow,
            value,
            execution_id=execution_id,
            target=target,
            trace_context=None if caller is None else str(caller),
            # a function bound to a queue ("Queue" in --function-configs) starts on it
            **self.server.queue_options(name),
        )
        info = store.info(execution_id)
        headers = {
            "X-Amz-Durable-Execution-Arn": self.server.execution_arn(info),
            "X-Amz-Executed-Version": LATEST,
        }
        if invocation_type == "Event":
            return self._reply(202, b"", headers=headers, raw=True)
        started = time.monotonic()
        warned = named is not None
        while time.monotonic() - started < 900 and not self.server.stop_event.is_set():
            info = store.info(execution_id)
            if info.status != "RUNNING" or (info.wake_at is None and info.lease_owner is None):
                break
            if not warned and time.monotonic() - started > UNNAMED_INVOKE_WARNING_SECONDS:
                warned = True
                self.server.log(
                    f"warning: execution {execution_id} was started by a synchronous Invoke "
                    f"without a DurableExecutionName and has run "
                    f"{UNNAMED_INVOKE_WARNING_SECONDS:.0f} s: a client that times out and "
                    "retries (boto3 does after 60 s by default) starts a second execution. "
                    "Name executions (DurableExecutionName) to make retries safe"
                )
            time.sleep(0.05)
        if info.status == "FAILED":
            headers["X-Amz-Function-Error"] = "Unhandled"
            err = info.error.to_dict() if info.error else {}
            return self._reply(200, err, headers=headers)
        if info.status == "SUCCEEDED":
            return self._reply(200, (info.result or "null").encode(), headers=headers, raw=True)
        return self._reply(200, {"Status": info.status}, headers=headers)


def _query_one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _marked(body: dict[str, Any], marker: str | None) -> dict[str, Any]:
    """``body`` with ``NextMarker`` when there is a next page (none on the last)."""
    if marker is not None:
        body["NextMarker"] = marker
    return body


def _page(items: list[Any], key: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of ``items`` (a listing held whole) as ``{key: [...], "NextMarker"?}``
    (timestamps in seconds); history and state page in the store instead.

    The marker is the offset of the next item; ``MaxItems`` 0 or absent: all (at
    most 1,000 for ``Operations``, as the API model has it)."""
    start = _int_param(query, "Marker", 0, 2**31)
    size = _int_param(query, "MaxItems", 0, 1000) or (1000 if key == "Operations" else 0)
    size = size or len(items) or 1
    out: dict[str, Any] = {key: _seconds(items[start : start + size])}
    if start + size < len(items):
        out["NextMarker"] = str(start + size)
    return out


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
    region: str = "us-east-1",
    account: str = "000000000000",
    concurrency: int = 1,
    version: str | None = None,
    function_configs: Mapping[str, Any] | None = None,
    retention_days: float | None = None,
) -> _Server:
    """An HTTP server for the Lambda API on ``host:port`` (0: any free port).

    With ``token``, every request needs ``Authorization: Bearer <token>`` or a SigV4
    signature made with the token as the secret access key (``_http.auth``). Served
    functions can also be ``Invoke``d by name. ``skip_time`` skips through waits and
    retry delays (callback timeouts still run in real time); ``hooks`` are installed
    on the engine. ``region`` and ``account`` go into the ARNs it hands out.
    ``function_configs``: each served function's configuration in Lambda's shape,
    ``{"NAME": {"DurableConfig": {"ExecutionTimeout": 3600, "RetentionPeriodInDays":
    7}}}``; ``retention_days``: how long ended executions without one are kept (None:
    forever). Call ``drain()`` before ``shutdown()`` to let go of executions gently.
    """
    if token is not None and not token.strip():
        raise StoreError("the bearer token must not be empty")
    for name, target in functions.items():
        resolve_target(target)  # fail now, not at the first Invoke
        if not name:
            raise StoreError(f"function target {target!r} needs a name")
    limits = Limits.of(retention_days=retention_days)  # bad values: refused here
    for name, config in (function_configs or {}).items():
        if name not in functions:
            raise ValidationError(
                f"--function-configs names function {name!r}, which is not served "
                f"(served: {', '.join(sorted(functions)) or 'none'})"
            )
        parse_durable_config(name, config)
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region):
        raise StoreError(f"region {region!r} is not an AWS region name (e.g. us-east-1)")
    if not re.fullmatch(r"[0-9]{12}", account):
        raise StoreError(f"account {account!r} is not a 12-digit AWS account id")
    # a SQLite file or a PostgreSQL URL; both stores have the surface serve uses (the
    # store contract's management operations), typed here by the SQLite one's
    store = cast(SqliteStore, open_store(db))  # refuse a bad database before listening
    try:
        for name, config in (function_configs or {}).items():
            binding = queue_binding(name, config)
            if binding is not None:  # a function bound to a queue the store lacks: now
                check_binding(store, name, binding)
        server = _Server((host, port), store, functions, token, skip_time, hooks, region, account)
    except BaseException:
        store.close()
        raise
    server.concurrency = concurrency
    server.version = version
    server.function_configs = dict(function_configs or {})
    server.limits = limits
    return server


def _awaits_callback(store: SqliteStore) -> bool:
    """Whether a running execution waits on a callback (``--skip-time`` won't skip then)."""
    return any(
        op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        for info in store.executions(status="RUNNING", limit=1000)
        for op in store.load(info.id).values()
    )
