"""The console's HTML, rendered on the server: every value through ``html.escape``.

The pages carry no inline script or style (the Content-Security-Policy forbids
both): behaviour comes from ``static/console.js``, looks from ``static/console.css``.
The list page is complete as served (its rows included: the first render needs no
request of the script); the execution page is served with its summary, and the
script fills in the operations, callbacks and history from the JSON API and keeps
all of it current.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from ..._core.present import fmt_duration, fmt_time
from . import _model

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    '<link rel="icon" href="data:,">'
    '<link rel="stylesheet" href="/console/static/console.css">'
    '<script src="/console/static/console.js" defer></script>'
)


def e(value: object) -> str:
    """Text (or an attribute value) for HTML: ``& < > " '`` escaped."""
    return escape(str(value), quote=True)


def execution_url(execution_id: str) -> str:
    return "/console/executions/" + urllib.parse.quote(execution_id, safe="")


def _page(title: str, body_attrs: Mapping[str, str], main: str) -> str:
    attrs = "".join(f" {k}={_q(v)}" for k, v in body_attrs.items())
    return (
        f"{_HEAD}<title>{e(title)} · durable_gen</title></head><body{attrs}>"
        '<header><a class="brand" href="/console/">durable_gen</a>'
        '<span id="live" class="live" aria-live="polite"></span></header>'
        f"<main>{main}</main></body></html>"
    )


def _q(value: str) -> str:
    return f'"{e(value)}"'


def _status(status: str) -> str:
    return f'<span class="status s-{e(status)}">{e(status)}</span>'


def _duration(start: int, end: int | None) -> str:
    return fmt_duration(end - start) if end is not None else ""


def _row(r: Mapping[str, Any]) -> str:
    function = r["function"] or r["target"] or "-"
    version = e("-")
    if r["version"]:
        version = (
            f'<a class="version" href={_q(_list_url({"version": r["version"]}))} '
            f'title="only this version">{e(r["version"])}</a>'
        )
    return (
        f"<tr data-id={_q(r['id'])}><td>{_status(r['status'])}</td>"
        f'<td class="name"><a href={_q(execution_url(r["id"]))}>{e(r["id"])}</a></td>'
        f"<td>{e(function)}</td><td>{version}</td>"
        f'<td class="time">{e(fmt_time(r["started"]))}</td>'
        f'<td class="time">{e(fmt_time(r["ended"]) if r["ended"] else "")}</td>'
        f'<td class="num">{e(_duration(r["started"], r["ended"]))}</td></tr>'
    )


def _options(
    selected: str | None, values: Iterable[str] | Mapping[str, str], any_label: str | None
) -> str:
    labels = values if isinstance(values, Mapping) else {v: v for v in values}
    out = [] if any_label is None else [f'<option value="">{e(any_label)}</option>']
    for v, label in labels.items():
        mark = " selected" if v == selected else ""
        out.append(f"<option value={_q(v)}{mark}>{e(label)}</option>")
    return "".join(out)


#: The arrow on the sorted column's heading, by order.
_ARROWS = {"newest": ("↓", ""), "oldest": ("↑", ""), "longest": ("", "↓"), "shortest": ("", "↑")}


def list_page(
    page: Mapping[str, Any],
    *,
    functions: Iterable[str],
    status: str | None,
    function: str | None,
    text: str | None,
    version: str | None = None,
    order: str = "newest",
    paged: bool = False,
    limit: int = _model.LIST_PAGE,
) -> str:
    """The executions list with its filters, its sort order and its first page of rows."""
    filters = {
        k: v
        for k, v in (
            ("status", status),
            ("function", function),
            ("q", text),
            ("version", version),
            ("order", order if order != "newest" else None),
            ("limit", str(limit) if limit != _model.LIST_PAGE else None),
        )
        if v
    }
    rows = "".join(_row(r) for r in page["executions"]) or (
        '<tr class="empty"><td colspan="7">No executions match.</td></tr>'
    )
    pager = []
    if paged:
        pager.append(f'<a id="first" href={_q(_list_url(filters))}>First page</a>')
    if page["previous"]:
        url = _list_url({**filters, "before": page["previous"]})
        pager.append(f'<a id="previous" href={_q(url)}>Previous page</a>')
    if page["next"]:
        pager.append(
            f'<a id="next" href={_q(_list_url({**filters, "after": page["next"]}))}>Next page</a>'
        )
    fn_values = sorted(set(functions) | ({function} if function else set()))
    started, took = _ARROWS[order]
    note = ""
    if order in ("longest", "shortest"):
        note = '<p class="note" id="order-note">Sorted by duration: ended executions only.</p>'
    main = (
        '<form id="filters" method="get" action="/console/">'
        f'<label>Status <select name="status">{_options(status, _model.EXECUTION_STATUSES, "any")}'
        "</select></label>"
        f'<label>Function <select name="function">{_options(function, fn_values, "any")}'
        "</select></label>"
        f'<label>Name or id <input name="q" type="search" value={_q(text or "")}'
        ' placeholder="contains…"></label>'
        f'<label>Version <input name="version" type="search" value={_q(version or "")}'
        ' placeholder="exactly…"></label>'
        f'<label>Sort <select name="order">{_options(order, _model.ORDERS, None)}</select></label>'
        '<button type="submit">Filter</button></form>'
        f"{note}"
        '<table id="executions"><thead><tr><th>Status</th><th>Name / id</th><th>Function</th>'
        f"<th>Version</th><th>Started {started}</th><th>Ended</th><th>Duration {took}</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<nav id="pager">{" ".join(pager)}</nav>'
    )
    return _page("Executions", {"data-page": "list"}, main)


def _list_url(params: Mapping[str, str]) -> str:
    return "/console/" + ("?" + urllib.parse.urlencode(params) if params else "")


def _payload(label: str, shown: Mapping[str, Any] | None, cls: str) -> str:
    if shown is None:
        return ""
    cut = ""
    if shown["truncated"]:
        cut = f'<p class="note">showing {len(shown["text"]):,} of {shown["chars"]:,} characters</p>'
    return f'<div class="payload {cls}"><h3>{e(label)}</h3><pre>{e(shown["text"])}</pre>{cut}</div>'


def error_block(err: Mapping[str, Any] | None) -> str:
    if err is None:
        return ""
    stack = "\n".join(err["stack"])
    return (
        '<div class="payload error"><h3>Error</h3>'
        f'<p class="err"><b>{e(err["type"])}</b>: {e(err["message"]["text"])}</p>'
        + (f'<pre class="stack">{e(stack)}</pre>' if stack else "")
        + "</div>"
    )


def execution_page(ex: Mapping[str, Any]) -> str:
    """The execution page: its summary; the script fills in the rest."""
    started, ended = ex["started"], ex["ended"]
    facts = [
        ("Function", ex["function"] or ex["target"] or "-"),
        ("Version", ex["version"] or "-"),
        ("Started", fmt_time(started)),
        ("Ended", fmt_time(ended) if ended else "-"),
        ("Duration", _duration(started, ended) or "-"),
    ]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    summary = (
        f'<section id="summary"><h1><span id="exec-name">{e(ex["id"])}</span> '
        f'<span id="exec-status">{_status(ex["status"])}</span></h1><dl>{dl}</dl>'
        + _payload("Input", ex["input"], "input")
        + _payload("Result", ex["result"], "result")
        + error_block(ex["error"])
        + "</section>"
    )
    timeline = execution_url(ex["id"]) + "/timeline"
    levels = _options("DEBUG", _model.LOG_LEVELS, None)
    main = (
        summary
        + '<section id="actions"></section>'
        + '<details id="fork"><summary>Fork from an operation</summary>'
        '<p class="note">A new execution with this one\'s input and the operations it recorded '
        "before the one you pick (they never run again); it runs from there on the code "
        "as it is now (<code>durable-gen fork</code>).</p>"
        '<form id="fork-form"><label>From operation <select name="at" required></select></label>'
        '<label>New name <input name="name" placeholder="optional: a new uuid"></label>'
        '<button type="submit" class="primary">Fork</button>'
        '<span class="note" id="fork-message" role="status"></span></form></details>'
        + '<section id="callbacks"></section>'
        + '<section id="operations"><h2>Operations</h2><p class="note">Loading…</p></section>'
        + '<details id="timeline"><summary>Timeline</summary>'
        f'<p><a href={_q(timeline)} target="_blank" rel="noopener">Open in a new tab</a></p>'
        f'<iframe title="timeline" data-src={_q(timeline)} sandbox></iframe></details>'
        + '<section id="logs"><h2>Logs</h2>'
        f'<label class="note">At level <select name="level">{levels}</select> and above</label>'
        '<p class="note" id="logs-note">Loading…</p><div id="log-records"></div></section>'
        + '<details id="meter"><summary>Meter: durable operations, bytes, cost</summary>'
        '<form id="prices" class="prices">'
        '<label>Per million operations <input name="per_million_operations" inputmode="decimal"'
        ' placeholder="price"></label>'
        '<label>Per GB persisted <input name="per_gb_persisted" inputmode="decimal"'
        ' placeholder="price"></label>'
        '<label>Per GB-month retained <input name="per_gb_month_retained" inputmode="decimal"'
        ' placeholder="price"></label>'
        '<label>Retention days <input name="retention_days" inputmode="decimal"'
        ' placeholder="optional"></label>'
        '<label>Executions a month <input name="executions_per_month" inputmode="numeric"'
        ' placeholder="1000000"></label>'
        '<label>Currency <input name="currency" maxlength="12" placeholder="label"></label>'
        '<button type="submit">Estimate</button></form>'
        '<p class="note">durable_gen knows no prices: give your own (they stay in this '
        "browser). Counted as Lambda meters durable functions "
        "(<code>durable-gen show --meter</code>).</p>"
        '<div id="meter-body"></div></details>' + '<section id="history"><h2>History</h2></section>'
    )
    return _page(ex["id"], {"data-page": "execution", "data-execution": ex["id"]}, main)


def login_page() -> str:
    """Asks for the token the server was started with."""
    main = (
        '<form id="login" class="login"><h1>durable_gen console</h1>'
        "<p>This server was started with a token (<code>--token</code> or "
        "<code>DURABLE_GEN_TOKEN</code>). Enter it to open the console.</p>"
        '<label>Token <input name="token" type="password" autocomplete="current-password" '
        'required></label><button type="submit">Open</button>'
        '<p id="login-error" class="problem" role="alert"></p></form>'
    )
    return _page("Sign in", {"data-page": "login"}, main)


def problem_page(status: int, message: str) -> str:
    """An error as a page (a bad filter, an unknown execution)."""
    main = (
        f'<section class="problem-page"><h1>{status}</h1><p class="problem">{e(message)}</p>'
        '<p><a href="/console/">Back to the executions</a></p></section>'
    )
    return _page(f"Error {status}", {"data-page": "problem"}, main)
