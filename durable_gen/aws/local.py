"""A local Lambda Invoke endpoint: run handlers in this process over HTTP.

AWS's emulator of the durable service (``dex-local-runner start-server
--lambda-endpoint URL``) drives an execution by calling Lambda ``Invoke``
(``POST /2015-03-31/functions/{name}/invocations``) at ``URL``. This module serves
that one route from the standard library's HTTP server, calling the handler
registered under the function's name, so durable_gen handlers run locally without
SAM or Docker::

    with LocalLambda({"order": durable_handler(order_flow)}) as lam:
        ...  # dex-local-runner start-server --lambda-endpoint {lam.url}

Behaviour follows Lambda's for ``RequestResponse`` invocations: the handler's JSON
return value is the 200 response body; a raised exception gives 200 with header
``X-Amz-Function-Error: Unhandled`` and ``{errorMessage, errorType, stackTrace}``;
an unknown function gives 404 ``ResourceNotFoundException``. The function name may
be a name, ``name:qualifier`` or an ARN. Requests are served concurrently.

Run ``python -m durable_gen.aws.local --port 3001 name=module:attr ...`` to serve
handlers from the command line. :class:`Emulator` starts the emulator itself as a
subprocess (tests and benchmarks use it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import Request, urlopen

__all__ = ["Emulator", "LambdaContext", "LocalLambda", "main", "start_execution"]

_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The ``context`` handed to a handler: the attributes Lambda's Python runtime has."""

    def __init__(self, function_name: str, timeout_seconds: float = 900.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-west-2:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = "128"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_name_of(path_name: str) -> str:
    """``name``, ``name:qualifier`` or a function ARN -> ``name``."""
    name = unquote(path_name)
    if name.startswith("arn:"):
        parts = name.split(":")
        return parts[6] if len(parts) > 6 else name
    return name.split(":", 1)[0]


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY a kept-alive
    # connection waits ~40 ms (Nagle + delayed ACK) before the body
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            self._send(404, {"Type": "User", "message": f"unknown route POST {path}"})
            return
        name = function_name_of(path[len(_PREFIX) : -len(_SUFFIX)])
        handler = self.server.owner.handlers.get(name)
        if handler is None:
            self._send(
                404,
                {"Type": "User", "message": f"Function not found: {name}"},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
            return
        try:
            event = json.loads(body) if body else {}
        except ValueError as e:
            self._send(
                400,
                {"Type": "User", "message": f"Could not parse request body into json: {e}"},
                {"x-amzn-ErrorType": "InvalidRequestContentException"},
            )
            return
        context = LambdaContext(name)
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": context.aws_request_id}
        try:
            result = handler(event, context)
            payload = json.dumps(result).encode()
        except SystemExit as e:
            # As in Lambda's Python runtime: a handler that exits the process (sys.exit,
            # a step that crashes the runtime) ends the invocation with Runtime.ExitError.
            headers["X-Amz-Function-Error"] = "Unhandled"
            code = e.code if isinstance(e.code, int) else 1
            self._send(
                200,
                {
                    "errorMessage": f"RequestId: {context.aws_request_id} Error: "
                    f"Runtime exited with error: exit status {code}",
                    "errorType": "Runtime.ExitError",
                },
                headers,
            )
            return
        except Exception as e:
            self.server.owner.errors.append(e)
            headers["X-Amz-Function-Error"] = "Unhandled"
            self._send(
                200,
                {
                    "errorMessage": str(e),
                    "errorType": type(e).__name__,
                    "stackTrace": traceback.format_tb(e.__traceback__),
                },
                headers,
            )
            return
        self._send_bytes(200, payload, headers)

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), headers)

    def _send_bytes(self, status: int, data: bytes, headers: Mapping[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the emulator logs every invocation already


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalLambda


class LocalLambda:
    """A Lambda Invoke endpoint on ``host:port`` (0: a free port) serving ``handlers``.

    ``start()`` serves from a background thread, ``stop()`` shuts it down; or use
    it as a context manager. ``errors`` collects exceptions handlers raised.
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.errors: list[BaseException] = []
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def register(self, name: str, handler: Handler) -> None:
        """Serve ``handler`` as function ``name``."""
        self.handlers[name] = handler

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalLambda:
        if self._server is not None:
            raise RuntimeError("the endpoint is already started")
        server = _Server((self._host, self._port), _RequestHandler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="durable_gen-local-lambda", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalLambda:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: how to run ``dex-local-runner`` (AWS's emulator) with its lost wake-up closed;
#: see :mod:`durable_gen.aws._dex_runner`
EMULATOR_COMMAND = (sys.executable, "-m", "durable_gen.aws._dex_runner")


class Emulator:
    """AWS's durable-service emulator (``dex-local-runner start-server``) in a subprocess.

    Needs ``aws-durable-execution-sdk-python-testing`` installed. It listens on
    ``host:port`` (0: a free port) and invokes functions at ``lambda_endpoint``
    (e.g. a :class:`LocalLambda`'s ``url``); ``skip_time`` fires waits and retry
    timers at once. ``function_configs`` names the functions workflows may
    ``Invoke`` (``{"name": {"DurableConfig": {...}}}`` for a durable one, ``{}`` for
    a plain one). ``start()`` returns once ``/health`` answers; ``stop()`` ends
    the process. Dummy AWS credentials are set for it unless the environment has some.
    """

    def __init__(
        self,
        lambda_endpoint: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        skip_time: bool = True,
        function_configs: Mapping[str, Any] | None = None,
        log: str = os.devnull,
    ) -> None:
        self.lambda_endpoint = lambda_endpoint
        self.function_configs = dict(function_configs or {})
        self.host = host
        self.port = port or _free_port(host)
        self.skip_time = skip_time
        self._log_path = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Emulator:
        args = [
            *EMULATOR_COMMAND,
            "start-server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--lambda-endpoint",
            self.lambda_endpoint,
        ]
        if self.skip_time:
            args.append("--skip-time")
        if self.function_configs:
            args += ["--function-configs", json.dumps(self.function_configs)]
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
            **os.environ,
        }
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise RuntimeError(
                    f"dex-local-runner exited with status {code}; is "
                    "aws-durable-execution-sdk-python-testing installed?"
                )
            try:
                with urlopen(f"{self.url}/health", timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_execution(
    url: str,
    function_name: str,
    payload: Any = None,
    *,
    name: str | None = None,
    timeout_seconds: int = 300,
    request_timeout: float = 30.0,
) -> str:
    """Start a durable execution of ``function_name`` on the emulator at ``url``.

    The emulator's own ``start-durable-execution`` route (what its test runners
    use); ``payload`` is sent as JSON input (``{}`` when None). Returns the
    execution's ARN.
    """
    body = {
        "AccountId": "123456789012",
        "FunctionName": function_name,
        "FunctionQualifier": "$LATEST",
        "ExecutionName": name or f"ex-{uuid.uuid4().hex[:16]}",
        "ExecutionTimeoutSeconds": timeout_seconds,
        "ExecutionRetentionPeriodDays": 1,
        "Input": json.dumps(payload if payload is not None else {}),
    }
    req = Request(
        f"{url}/start-durable-execution",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(req, timeout=request_timeout) as resp:
        return str(json.loads(resp.read())["ExecutionArn"])


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _load(target: str) -> Handler:
    module, _, attr = target.partition(":")
    if not attr:
        raise SystemExit(f"expected name=module:attribute, got {target!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise SystemExit(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m durable_gen.aws.local",
        description="Serve Lambda handlers over the Lambda Invoke HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("functions", nargs="+", metavar="NAME=MODULE:HANDLER")
    args = parser.parse_args(argv)
    handlers: dict[str, Handler] = {}
    for spec in args.functions:
        name, sep, target = spec.partition("=")
        if not sep:
            parser.error(f"expected NAME=MODULE:HANDLER, got {spec!r}")
        handlers[name] = _load(target)
    lam = LocalLambda(handlers, host=args.host, port=args.port).start()
    print(f"serving {', '.join(handlers)} at {lam.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        lam.stop()


if __name__ == "__main__":
    main()
