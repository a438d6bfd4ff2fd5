"""A self-contained HTML timeline of one execution (``durable-gen show ID --html F``).

One row per operation, nested by context (child contexts, Parallel and Map with
their branches: collapsible ``<details>``, indented under their parent), all on
one time axis whose ticks are picked for the span (:mod:`.axis`). A step's
attempts are separate bars (failed ones red, the error in their tooltip) with
its retry delays hatched between them; waits are striped with a mark at their
wake time; callbacks are dotted pills with their id and timeout under the label
and a mark at the timeout; a top row shows the invocations. What is drawn comes
from :mod:`.model`.

Inline CSS only: no script, no font, no image, no network resource. Every value
from the log (names, ids, errors, payloads) is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._core.contract import ExecutionInfo
from .._core.log import Operation
from .._core.present import fmt_duration, fmt_time
from .model import Mark, Row, Segment, Timeline, build_timeline

__all__ = ["MAX_ROWS", "render", "render_timeline"]

#: Rows beyond this many are left out (a note says so) to keep the file usable.
MAX_ROWS = 2000

_CSS = """
*{box-sizing:border-box}
body{font:13px/1.35 system-ui,-apple-system,Segoe UI,sans-serif;margin:20px;color:#1d2330}
h1{font-size:18px;margin:0 0 4px;overflow-wrap:anywhere}
.meta{color:#555;margin:0 0 10px;overflow-wrap:anywhere}
.meta b{color:#1d2330}
.legend{list-style:none;padding:0;margin:0 0 12px;display:flex;flex-wrap:wrap;gap:4px 16px}
.legend li{display:flex;align-items:center;gap:5px;color:#374151;font-size:12px}
.sw{display:inline-block;position:relative;width:22px;height:12px}
.sw.mk{width:2px}
.tl{border-top:1px solid #e5e8ee}
.row{display:grid;grid-template-columns:minmax(220px,30%) 1fr;min-height:20px;
border-bottom:1px solid #eef0f4;align-items:stretch}
summary.row{cursor:pointer;list-style:none}
summary.row::-webkit-details-marker{display:none}
.label{padding:2px 8px 2px 6px;min-width:0;overflow:hidden}
.ln{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
summary .name::before{content:"\\25BE\\00A0";color:#6b7280}
details:not([open])>summary .name::before{content:"\\25B8\\00A0"}
.st{font-size:11px;color:#6b7280;margin-left:6px}
[data-status=FAILED] .st,[data-status=TIMED_OUT] .st,[data-status=STOPPED] .st{color:#b91c1c}
.info{font-size:11px;color:#4b5563;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.info code{font-size:11px}
.track{position:relative;min-height:20px;border-right:1px solid #e5e8ee;
background:linear-gradient(90deg,#e5e8ee 1px,transparent 0) 0 0/calc(100% / var(--k)) 100%}
.axis{position:sticky;top:0;z-index:3;background:#fff;border-bottom:1px solid #c9ced8}
.axis .label{font-size:11px;color:#6b7280}
.axis .track{height:22px}
.tick{position:absolute;top:3px;transform:translateX(-50%);font-size:11px;color:#4b5563;
white-space:nowrap;padding:0 2px}
.tick.first{transform:none}.tick.last{transform:translateX(-100%)}
.extent{position:absolute;top:2px;bottom:2px;min-width:2px;border:1px solid #d3d8e0;
border-radius:3px;background:#f6f8fb}
.bar{position:absolute;top:50%;height:12px;margin-top:-6px;min-width:2px;border-radius:2px}
.ok{background:#3b82f6}.fail{background:#dc2626}.run{background:#f59e0b}
.delay{background:repeating-linear-gradient(45deg,#f87171 0 2px,#fff 2px 5px);
box-shadow:inset 0 0 0 1px #fca5a5}
.wait{background:repeating-linear-gradient(90deg,#6b7280 0 2px,#e5e7eb 2px 5px)}
.bar.wait{height:8px;margin-top:-4px}
.cb{background:radial-gradient(circle,#fff 1px,transparent 1.6px) 0 0/6px 6px,#8b5cf6;
border-radius:7px}
.bar.cb{height:14px;margin-top:-7px}
.cbbad{box-shadow:inset 0 0 0 2px #dc2626}
.ctx{background:#c7d2fe}.bar.ctx{height:6px;margin-top:-3px}
.invoke{background:#14b8a6}
.inv{background:#10b981}.inverr{background:#7f1d1d}
.todo{opacity:.55;outline:1px dashed #6b7280;outline-offset:-1px}
.mark{position:absolute;top:1px;bottom:1px;width:0;z-index:1}
.wake{border-left:2px solid #111827}
.deadline{border-left:2px dashed #7c3aed}
.note{color:#b45309}
"""

_LEGEND = (
    ("ok", "step attempt succeeded"),
    ("fail", "attempt failed (error on hover)"),
    ("run", "attempt running"),
    ("delay", "retry delay / next check"),
    ("wait", "wait"),
    ("mk wake", "wake time"),
    ("cb", "callback"),
    ("cb cbbad", "callback failed or timed out"),
    ("mk deadline", "callback timeout"),
    ("ctx", "context, Parallel, Map, branch"),
    ("invoke", "chained invoke"),
    ("inv", "invocation"),
    ("inverr", "invocation ended in error"),
    ("ok todo", "still to come"),
)


#: A lone surrogate (a byte that was not UTF-8, kept by ``surrogateescape``).
_SURROGATES = re.compile("[\ud800-\udfff]")


def _e(text: object) -> str:
    """``text`` as HTML text or attribute value; a lone surrogate becomes U+FFFD,
    so that the page encodes as UTF-8."""
    return html.escape(_SURROGATES.sub("\ufffd", str(text)), quote=True)


def render_timeline(
    info: ExecutionInfo,
    operations: Sequence[Operation],
    events: Sequence[Mapping[str, Any]],
    *,
    now: int | None = None,
) -> str:
    """The HTML document of one execution's timeline (see the module's docstring)."""
    return render(build_timeline(info, operations, events, now=now, max_rows=MAX_ROWS))


def render(tl: Timeline) -> str:
    """The HTML document of a laid-out timeline."""
    info = tl.info
    t0 = tl.t0
    scale = 100 / tl.axis.end

    def pos(start: int, end: int) -> str:
        return f"left:{(start - t0) * scale:.2f}%;width:{(end - start) * scale:.2f}%"

    def bar(s: Segment) -> str:
        kind = f"{s.kind} todo" if s.todo else s.kind
        attempt = f' data-attempt="{s.attempt}"' if s.attempt is not None else ""
        return (
            f'<div class="bar {kind}"{attempt} style="{pos(s.start, s.end)}" '
            f'title="{_e(s.tip)}"></div>'
        )

    def mark(m: Mark) -> str:
        if not t0 <= m.at <= t0 + tl.axis.end:
            return ""  # off the axis (a far timeout): the row's text names it
        return (
            f'<i class="mark {m.kind}" style="left:{(m.at - t0) * scale:.2f}%" '
            f'title="{_e(m.tip)}"></i>'
        )

    def row(r: Row, tag: str) -> str:
        op = r.op
        status = op.status.value
        info_line = f'<div class="info">{_info(r)}</div>' if r.info else ""
        indent = f' style="padding-left:{6 + 16 * r.depth}px"' if r.depth else ""
        return (
            f'<{tag} class="row" data-id="{_e(op.id)}" data-depth="{r.depth}" '
            f'data-type="{op.type.value}" data-status="{status}">'
            f'<div class="label"{indent} title="{_e(r.tip)}">'
            f'<div class="ln"><span class="name">{_e(r.label)}</span>'
            f'<span class="st">{status}</span></div>{info_line}</div>'
            f'<div class="track"><div class="extent" style="{pos(r.start, r.end)}"></div>'
            + "".join(bar(s) for s in r.segments)
            + "".join(mark(m) for m in r.marks)
            + f"</div></{tag}>"
        )

    out: list[str] = []
    w = out.append
    title = f"durable_gen execution {info.id}"
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width,initial-scale=1'>")
    w(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>")
    w(f"<h1>{_e(title)}</h1>")
    span = max([tl.now, *(r.end for r in tl.rows)]) - t0
    meta = [
        f"<b>{_e(info.status)}</b>",
        _e(info.target or "(no target)"),
        f"started {fmt_time(info.created_at)}",
        f"span {fmt_duration(span)}",
        f"{len(tl.rows) + tl.hidden} operations, {len(tl.invocations)} invocations",
    ]
    if info.ended_at is None:
        meta.append(f"as of {fmt_time(tl.now)}")
    w(f"<p class='meta'>{' · '.join(meta)}</p>")
    if info.error is not None:
        w(f"<p class='meta'>error: {_e(info.error.type)}: {_e(info.error.message)}</p>")
    w(
        "<ul class='legend'>"
        + "".join(f'<li><i class="sw {c}"></i>{t}</li>' for c, t in _LEGEND)
        + "</ul>"
    )
    w(f'<div class="tl" style="--k:{tl.axis.intervals}">')
    ticks = tl.axis.ticks()
    tick_html = []
    for n, (offset, label) in enumerate(ticks):
        edge = " first" if n == 0 else " last" if n == len(ticks) - 1 else ""
        tick_html.append(
            f'<span class="tick{edge}" style="left:{offset * scale:.2f}%" '
            f'title="{fmt_time(t0 + offset)}">{_e(label)}</span>'
        )
    w(
        f'<div class="row axis"><div class="label">0 = {fmt_time(t0)}</div>'
        f'<div class="track">{"".join(tick_html)}</div></div>'
    )
    w(
        '<div class="row invs"><div class="label"><b>invocations</b></div><div class="track">'
        + "".join(bar(s) for s in tl.invocations)
        + "</div></div>"
    )
    open_depths: list[int] = []
    for r in tl.rows:
        while open_depths and open_depths[-1] >= r.depth:
            open_depths.pop()
            w("</details>")
        if r.descendants:
            w(f'<details class="grp" open data-id="{_e(r.op.id)}">')
            w(row(r, "summary"))
            open_depths.append(r.depth)
        else:
            w(row(r, "div"))
    w("</details>" * len(open_depths))
    w("</div>")
    if tl.hidden:
        w(f"<p class='note'>{tl.hidden} more operations not shown.</p>")
    w("</body></html>\n")
    return "".join(out)


def _info(r: Row) -> str:
    """The line under a label; a callback's id is set as code."""
    cb = r.op.callback_id
    text = _e(r.info)
    if cb:
        text = text.replace(_e(cb), f"<code class='cbid'>{_e(cb)}</code>", 1)
    return text
