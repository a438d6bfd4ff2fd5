"""The console's routes, who may use them, and the headers every answer carries."""

from __future__ import annotations

import hashlib
import hmac
import importlib.resources
import json
import re
import secrets
import time
import traceback
import urllib.parse
import uuid
import weakref
from collections.abc import Mapping
from email.message import Message
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

from ..._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionConflictError,
    ExecutionNotFoundError,
    StoreError,
)
from ..._stores.sqlite import SqliteStore
from ..auth import AuthError, check_request
from . import _model, _pages


class _Clock(Protocol):
    def now(self) -> int: ...


class _Server(Protocol):
    """What the console needs of ``serve``'s server (named here, not imported: the
    server imports the console)."""

    @property
    def store(self) -> SqliteStore: ...
    @property
    def functions(self) -> Mapping[str, str]: ...
    @property
    def token(self) -> str | None: ...
    @property
    def clock(self) -> _Clock: ...
    @property
    def version(self) -> str | None: ...
    def log(self, message: str) -> None: ...


class _Handler(Protocol):
    """What the console needs of ``serve``'s request handler."""

    close_connection: bool

    @property
    def server(self) -> _Server: ...
    @property
    def path(self) -> str: ...
    @property
    def command(self) -> str: ...
    @property
    def headers(self) -> Message: ...
    @property
    def rfile(self) -> Any: ...
    @property
    def wfile(self) -> Any: ...
    @property
    def connection(self) -> Any: ...
    def send_response(self, code: int, message: str | None = None) -> None: ...
    def send_header(self, keyword: str, value: str) -> None: ...
    def end_headers(self) -> None: ...


#: Every console page and JSON answer: no inline script or style, nothing from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
#: The timeline (``_html.timeline``) styles itself inline; it runs nothing and is
#: shown in a sandboxed frame of the execution page.
TIMELINE_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
#: The header every console POST must carry (a cross-site form cannot send it, and a
#: cross-site script cannot without a CORS preflight this server never grants).
CSRF_HEADER = "X-Durable-Gen-Console"
#: The session cookie set after the token was checked.
COOKIE = "durable_gen_console"
#: Largest request body of a console action (a callback payload and its envelope).
MAX_BODY_BYTES = 1024 * 1024 + 4096
#: Largest callback payload (the HTTP API's limit, the Lambda API model's).
MAX_PAYLOAD_BYTES = 1024 * 1024

_STATIC = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
_static_cache: dict[str, tuple[bytes, str]] = {}
_EXECUTION = re.compile(r"^/console/executions/(?P<id>[^/]+)(?P<rest>/timeline)?$")
_API_EXECUTION = re.compile(
    r"^/console/api/executions/(?P<id>[^/]+)"
    r"(?P<rest>/events|/logs|/meter|/stop|/pause|/resume|/redrive|/fork|/delete)?$"
)
_API_CALLBACK = re.compile(
    r"^/console/api/callbacks/(?P<id>[^/]+)/(?P<action>succeed|fail|heartbeat)$"
)
_LOOPBACK_NAMES = re.compile(r"^(localhost|[a-z0-9-]+\.localhost)$")
_IP_LITERAL = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[0-9]{1,3}(\.[0-9]{1,3}){3})$")
#: A random key per server: session cookies are valid for that server's life only.
_secrets: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


class Problem(Exception):
    """A request the console refuses: the HTTP status and why, in words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def handle(handler: _Handler, method: str) -> None:
    """Answer one request whose path starts with ``/console`` (auth included)."""
    url = urllib.parse.urlsplit(handler.path)
    path = url.path
    api = path.startswith("/console/api/")
    try:
        try:
            query = urllib.parse.parse_qs(url.query, max_num_fields=32)
        except ValueError as e:
            raise Problem(400, str(e)) from None
        _check_host(handler)
        if method == "GET" and path.startswith("/console/static/"):
            return _static(handler, path.removeprefix("/console/static/"))
        if path == "/console":
            return _send(handler, 308, b"", "text/plain", {"Location": "/console/"})
        body = _read_body(handler)
        if method == "POST":
            _check_same_origin(handler)
        elif method != "GET":
            raise Problem(405, f"the console answers GET and POST, not {method}")
        if path == "/console/api/login" and method == "POST":
            return _login(handler, body)
        if not _authenticated(handler, method, body):
            if api:
                raise Problem(401, "sign in: this server was started with a token")
            return _html(handler, 401, _pages.login_page())
        _route(handler, method, path, query, body)
    except Problem as p:
        _refuse(handler, api, p.status, p.message)
    except ExecutionNotFoundError as x:
        _refuse(handler, api, 404, str(x))
    except ExecutionConflictError as x:
        _refuse(handler, api, 409, str(x))
    except (StoreError, CorruptLogError) as x:  # the server's fault
        handler.server.log(f"console {method} {path:.200}: {type(x).__name__}: {x}")
        _refuse(handler, api, 500, str(x))
    except DurableGenError as x:  # the caller's input
        _refuse(handler, api, 400, str(x))
    except OSError:
        handler.close_connection = True  # the browser went away
    except Exception as x:  # a bug: answer it, and keep serving
        handler.close_connection = True
        handler.server.log(
            f"console {method} {path:.200}: internal error: {traceback.format_exc()}"
        )
        _refuse(
            handler,
            api,
            500,
            f"internal error ({type(x).__name__}: {x}); this is a bug in durable_gen",
        )


def _route(
    handler: _Handler, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> None:
    server = handler.server
    store = server.store
    if method == "GET" and path == "/console/":
        args = _list_args(query)
        page = _model.list_page(store, server.functions, **args)
        html = _pages.list_page(
            page,
            functions=server.functions,
            status=args["status"],
            function=args["function"],
            text=args["text"],
            version=args["version"],
            order=args["order"],
            paged=args["after"] is not None or args["before"] is not None,
            limit=args["limit"],
        )
        return _html(handler, 200, html)
    if method == "GET" and path == "/console/api/executions":
        return _json(handler, 200, _model.list_page(store, server.functions, **_list_args(query)))
    m = _EXECUTION.match(path)
    if m and method == "GET":
        execution_id = urllib.parse.unquote(m["id"])
        info = store.info(execution_id)
        if m["rest"] == "/timeline":
            return _timeline(handler, execution_id)
        return _html(handler, 200, _pages.execution_page(_model.execution(info, server.functions)))
    m = _API_EXECUTION.match(path)
    if m:
        execution_id = urllib.parse.unquote(m["id"])
        rest = m["rest"]
        if method == "GET" and rest is None:
            return _json(handler, 200, _model.detail(store, execution_id, server.functions))
        if method == "GET" and rest == "/events":
            start = _int(query, "start", 0, 2**31)
            return _json(handler, 200, _model.events_page(store, execution_id, start))
        if method == "GET" and rest == "/logs":
            after = _int(query, "after", 0, 2**62)
            level = (_one(query, "level") or "DEBUG").upper()
            return _json(
                handler, 200, _model.logs_page(store, execution_id, after=after, level=level)
            )
        if method == "GET" and rest == "/meter":
            return _json(handler, 200, _meter(store, execution_id, query))
        if method == "POST" and rest == "/stop":
            store.stop(execution_id, server.clock.now())
            return _json(handler, 200, {"message": f"stopped execution {execution_id}"})
        if method == "POST" and rest == "/pause":
            status = store.pause(execution_id, server.clock.now())
            message = f"paused execution {execution_id}"
            if status == "PAUSING":
                message = (
                    f"pausing execution {execution_id}: the worker advancing it stops at "
                    "its next checkpoint"
                )
            return _json(handler, 200, {"message": message, "status": status})
        if method == "POST" and rest == "/resume":
            store.resume_paused(execution_id, server.clock.now())
            return _json(
                handler, 200, {"message": f"resumed execution {execution_id}: due at once"}
            )
        if method == "POST" and rest == "/fork":
            return _fork(handler, execution_id, body)
        if method == "POST" and rest == "/redrive":
            rerun = store.redrive(execution_id, server.clock.now())
            return _json(
                handler,
                200,
                {
                    "message": f"redrove execution {execution_id}: {len(rerun)} operation(s) "
                    "run again",
                    "rerun": rerun,
                },
            )
        if method == "POST" and rest == "/delete":
            store.delete(execution_id)
            return _json(handler, 200, {"message": f"deleted execution {execution_id}"})
    m = _API_CALLBACK.match(path)
    if m and method == "POST":
        return _callback(handler, urllib.parse.unquote(m["id"]), m["action"], body)
    if path == "/console/api/logout" and method == "POST":
        cookie = f"{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"
        return _json(handler, 200, {"message": "signed out"}, {"Set-Cookie": cookie})
    raise Problem(404, f"the console has no page {method} {path!r:.200}")


def _list_args(query: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": _one(query, "status"),
        "function": _one(query, "function"),
        "text": _one(query, "q"),
        "version": _one(query, "version"),
        "order": _one(query, "order") or "newest",
        "after": _one(query, "after"),
        "before": _one(query, "before"),
        "limit": _int(query, "limit", _model.LIST_PAGE, _model.MAX_LIST_PAGE),
    }


def _meter(store: SqliteStore, execution_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """``GET .../meter``: the meter; with the three unit prices (``per_million_operations``,
    ``per_gb_persisted``, ``per_gb_month_retained``) a cost estimate too, for
    ``executions_per_month`` (default 1,000,000) and ``retention_days`` (optional)."""
    prices = {k: v for k in _model.PRICE_PARAMS if (v := _one(query, k)) is not None}
    days_text = _one(query, "retention_days")
    days = None
    if days_text is not None:
        try:
            days = float(days_text)
        except ValueError:
            days = -1.0
        if not 0 <= days <= 36_500:  # NaN fails too
            raise Problem(
                400,
                f"retention_days must be a number of days from 0 to 36500, got {days_text!r:.40}",
            )
    per_month = _int(query, "executions_per_month", 1_000_000, 10**12)
    currency = _one(query, "currency")
    if currency is not None and len(currency) > 12:
        raise Problem(400, f"currency is a short label such as USD, got {currency!r:.40}")
    return _model.meter(
        store,
        execution_id,
        prices=prices,
        retention_days=days,
        executions_per_month=per_month,
        currency=currency,
    )


def _fork(handler: _Handler, source_id: str, body: bytes) -> None:
    """``{"at": operation id or unique name, "name"?: new execution's name}``: the store's
    fork, as ``durable-gen fork`` and the HTTP API's ``POST .../fork`` make it (on the
    server's ``--version``, else the source's code as it is now)."""
    from ..._engine.targets import code_version_of, resolve_target

    doc = _json_body(body)
    at = doc.get("at")
    if not isinstance(at, str) or not at.strip():
        raise Problem(400, 'give the operation to fork from: {"at": OPERATION_ID, ...}')
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise Problem(400, "name must be a string: the new execution's name")
    new_id = _model.fork_name(name.strip() or None if name else None) or uuid.uuid4().hex
    server = handler.server
    store = server.store
    version = server.version
    if version is None:
        source = store.info(source_id)
        if source.target is not None:
            version = code_version_of(resolve_target(source.target, workdir=source.workdir))
    point = store.fork(source_id, new_id, at.strip(), server.clock.now(), code_version=version)
    _json(
        handler,
        200,
        {
            "message": f"forked execution {source_id} from operation {point[:12]}… as {new_id}",
            "execution": new_id,
            "url": _pages.execution_url(new_id),
            "operation": point,
        },
    )


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    value = values[-1].strip() if values else ""
    return value or None


def _int(query: dict[str, list[str]], name: str, default: int, highest: int) -> int:
    text = _one(query, name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or int(text) > highest:
        raise Problem(400, f"{name} must be an integer from 0 to {highest}, got {text!r:.40}")
    return int(text)


def _callback(handler: _Handler, callback_id: str, action: str, body: bytes) -> None:
    """``{"execution": ID, "payload": "JSON text"}``: succeed with the payload, fail with
    it as an ErrorObject (``{"ErrorMessage", "ErrorType", ...}``), or heartbeat."""
    doc = _json_body(body)
    execution_id = doc.get("execution")
    if not isinstance(execution_id, str) or not execution_id:
        raise Problem(400, 'give the callback\'s execution: {"execution": ID, ...}')
    text = doc.get("payload")
    if text is not None and not isinstance(text, str):
        raise Problem(400, 'payload must be JSON text (a string), e.g. "{\\"ok\\": true}"')
    payload: str | None = None
    error: ErrorObject | None = None
    if action != "heartbeat":
        # the text as sent is what the workflow receives (as the HTTP API's body);
        # an empty box sends null
        text = text if text and text.strip() else "null"
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise Problem(
                400, "the payload must be UTF-8 text: it holds lone surrogate code points"
            ) from None
        if size > MAX_PAYLOAD_BYTES:
            raise Problem(
                413, f"the payload is {size:,} bytes; at most {MAX_PAYLOAD_BYTES:,} are accepted"
            )
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise Problem(400, f"the payload is not valid JSON: {e}") from None
        if action == "succeed":
            payload = text
        else:
            if not isinstance(value, dict):
                raise Problem(
                    400,
                    'a failure is a JSON object such as {"ErrorType": "Rejected", '
                    '"ErrorMessage": "why"}',
                )
            try:
                error = ErrorObject.from_dict(value)
            except CorruptLogError as e:
                raise Problem(400, str(e)) from None
    server = handler.server
    server.store.complete_callback(
        callback_id,
        action,
        server.clock.now(),
        payload=payload,
        error=error,
        execution_id=execution_id,
    )
    done = {"succeed": "succeeded", "fail": "failed", "heartbeat": "heartbeat sent to"}[action]
    _json(handler, 200, {"message": f"{done} callback {callback_id[:16]}…"})


def _timeline(handler: _Handler, execution_id: str) -> None:
    from ..._html.timeline import render_timeline

    store = handler.server.store
    info = store.info(execution_id)
    ops = list(store.load(execution_id).values())
    page = render_timeline(info, ops, store.history(execution_id))
    _send(
        handler,
        200,
        _model.clean(page).encode(),
        "text/html; charset=utf-8",
        {"X-Frame-Options": "SAMEORIGIN"},
        csp=TIMELINE_CSP,
    )


# ---------------------------------------------------------------------- who may


def _check_host(handler: _Handler) -> None:
    """Without a token, only a loopback name or an IP address may name this server:
    a page of another site that rebinds its own name to 127.0.0.1 gets a 403."""
    if handler.server.token is not None:
        return
    host = (handler.headers.get("Host") or "").strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not (_LOOPBACK_NAMES.match(name) or _IP_LITERAL.match(name)):
        raise Problem(
            403,
            f"the console answers requests for localhost or an IP address, not {host!r:.80} "
            "(start the server with --token to serve it under another name)",
        )


def _check_same_origin(handler: _Handler) -> None:
    """A POST must come from the console's own pages: its custom header, and (when the
    browser says) the same origin."""
    if handler.headers.get(CSRF_HEADER) != "1":
        raise Problem(
            403,
            f"console actions need the header {CSRF_HEADER}: 1 (sent by the console's "
            "own pages); cross-site requests are refused",
        )
    site = handler.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise Problem(403, f"a {site} request may not act on this console")
    origin = handler.headers.get("Origin")
    if origin is not None:
        host = handler.headers.get("Host") or ""
        if origin not in (f"http://{host}", f"https://{host}"):
            raise Problem(403, f"a request from {origin!r:.80} may not act on this console")


def _session(server: _Server) -> str:
    key = _secrets.get(server)
    if key is None:
        key = _secrets.setdefault(server, secrets.token_bytes(32))
    return hmac.new(key, (server.token or "").encode(), hashlib.sha256).hexdigest()


def _authenticated(handler: _Handler, method: str, body: bytes) -> bool:
    """No token: everyone (the server listens on loopback by default). With one: the
    session cookie, or the API's own credentials (a bearer token or SigV4)."""
    server = handler.server
    if server.token is None:
        return True
    if handler.headers.get("Authorization") is not None:
        try:
            check_request(
                method=method,
                target=handler.path,
                headers=handler.headers,
                body=body,
                token=server.token,
                now=time.time(),
            )
        except AuthError as e:
            raise Problem(e.status, e.message) from None
        return True
    try:
        jar = SimpleCookie(handler.headers.get("Cookie") or "")
    except CookieError:
        return False
    sent = jar.get(COOKIE)
    return sent is not None and hmac.compare_digest(sent.value.encode(), _session(server).encode())


def _login(handler: _Handler, body: bytes) -> None:
    """``{"token": T}``: with the server's token, a session cookie (HttpOnly,
    SameSite=Strict, for /console only, valid while this server runs)."""
    server = handler.server
    if server.token is None:
        return _json(handler, 200, {"message": "this server needs no token"})
    token = _json_body(body).get("token")
    if not isinstance(token, str) or not hmac.compare_digest(
        token.strip().encode(), server.token.encode()
    ):
        raise Problem(401, "that is not the token this server was started with")
    cookie = f"{COOKIE}={_session(server)}; Path=/console; HttpOnly; SameSite=Strict"
    _json(handler, 200, {"message": "signed in"}, {"Set-Cookie": cookie})


# ---------------------------------------------------------------------- answers


def _read_body(handler: _Handler) -> bytes:
    if handler.headers.get("Transfer-Encoding"):
        handler.close_connection = True
        raise Problem(411, "send the body with a Content-Length header")
    text = (handler.headers.get("Content-Length") or "0").strip()
    if not text.isascii() or not text.isdigit():
        handler.close_connection = True
        raise Problem(400, "the Content-Length header must be a non-negative integer")
    length = int(text)
    if length > MAX_BODY_BYTES:
        handler.close_connection = True
        raise Problem(413, f"the request body is {length:,} bytes; at most {MAX_BODY_BYTES:,}")
    data = handler.rfile.read(length) if length else b""
    if len(data) != length:
        handler.close_connection = True
        raise Problem(400, f"the request body ended after {len(data):,} of {length:,} bytes")
    return data


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except (ValueError, RecursionError) as e:
        raise Problem(400, f"the request is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Problem(400, "the request must be a JSON object")
    return doc


def _static(handler: _Handler, name: str) -> None:
    content_type = _STATIC.get(name)
    if content_type is None:
        raise Problem(404, f"no static file {name!r:.80}")
    cached = _static_cache.get(name)
    if cached is None:
        static = importlib.resources.files("durable_gen._http.console") / "static"
        data = (static / name).read_bytes()
        cached = _static_cache[name] = (data, f'"{hashlib.sha256(data).hexdigest()[:20]}"')
    data, etag = cached
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if handler.headers.get("If-None-Match") == etag:
        return _send(handler, 304, b"", content_type, headers)
    _send(handler, 200, data, content_type, headers)


def _html(handler: _Handler, status: int, page: str) -> None:
    _send(handler, status, _model.clean(page).encode(), "text/html; charset=utf-8")


def _json(handler: _Handler, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    _send(handler, status, _model.clean(data).encode(), "application/json", headers)


def _refuse(handler: _Handler, api: bool, status: int, message: str) -> None:
    message = _model.clean(message)
    if api or handler.command != "GET":
        _json(handler, status, {"error": status, "message": message})
    else:
        _html(handler, status, _pages.problem_page(status, message))


def _send(
    handler: _Handler,
    status: int,
    data: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    *,
    csp: str = CSP,
) -> None:
    # (TCP_NODELAY is set once per connection by serve's handler class:
    # ``disable_nagle_algorithm``)
    handler.send_response(status)
    sent = {
        "Content-Type": content_type,
        "Content-Length": str(len(data)),
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "no-store",
        **(headers or {}),
    }
    for k, v in sent.items():
        handler.send_header(k, v)
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command != "HEAD" and status != 304:
        handler.wfile.write(data)
