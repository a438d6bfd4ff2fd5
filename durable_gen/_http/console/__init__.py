"""The local web console of ``durable-gen serve`` (``durable-gen ui``), under ``/console/``.

Pages
    ``GET /console/`` lists executions (status, function, version, text in the name;
    newest or oldest first by start, or longest/shortest first by duration -- ended
    executions only; keyset pages through the store's page markers, forwards with
    ``after`` and backwards with ``before``); ``GET /console/executions/{id}`` shows
    one: its summary, operation tree (an invoke links to the execution it started),
    open callbacks with a JSON payload editor, its timeline (``_html.timeline``) in a
    sandboxed frame, its kept log records (``durable-gen logs``; new ones appear while
    it runs), its meter (``durable-gen show --meter``: durable operations, bytes, and
    a cost estimate from prices the user types, kept in the browser) and its history.
    The pages poll the JSON routes under ``/console/api/`` about once a second while
    the tab is visible; actions are POSTs there and make the store calls the CLI and
    the Lambda-shaped API make: complete, fail or heartbeat a callback; stop, pause,
    resume, redrive, fork from an operation, delete. Stop and delete ask inline (never
    ``window.confirm``).

Callback payloads
    Succeed sends the editor's text exactly as written (an empty box sends ``null``):
    it must be JSON, and it reaches the workflow as the string it is, as the HTTP
    API's ``SendDurableExecutionCallbackSuccess`` body does (unless the callback has a
    serdes); at most 1 MiB of UTF-8. Fail sends it as an ErrorObject
    (``{"ErrorType", "ErrorMessage", ...}``).

Who may use it
    As the HTTP API: without a token, whoever can connect (the server binds to
    127.0.0.1 by default); the console also refuses a ``Host`` that is neither a
    ``localhost`` name nor an IP address, so a site that rebinds its own name to
    127.0.0.1 cannot read it. With a token, a page asks for it once and the server,
    having checked it, sets a session cookie (HttpOnly, SameSite=Strict, Path
    /console) derived from the token and a key drawn when the server started, so a
    restart signs everyone out; scripts may instead send the API's own credentials
    (``Authorization: Bearer``, or SigV4). The token never reaches the page's script.

Cross-site requests and injection
    Every POST must carry ``X-Durable-Gen-Console: 1`` (a form of another site
    cannot send it; its script could only after a CORS preflight this server never
    grants) and, when the browser sends them, ``Origin`` equal to the server's own
    and ``Sec-Fetch-Site: same-origin``; anything else is a 403. Every value from a
    workflow is escaped by ``html.escape`` on the server and set as ``textContent``
    by the script; undecodable text is shown with U+FFFD. Each answer carries a
    Content-Security-Policy that allows scripts and styles only from
    ``/console/static/`` (no inline script or style at all), plus ``nosniff``,
    ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

from ._app import CSP, CSRF_HEADER, handle

__all__ = ["CSP", "CSRF_HEADER", "handle"]
