"""A self-contained HTML timeline of one execution (``durable-gen show ID --html F``).

Operations are rows nested by context; each row's bars are placed on one time
axis: step attempts (failed ones red, each retry delay hatched), waits, child
contexts, and a top row with the invocations. Inline CSS only: no scripts, no
fonts, no network resources.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from .._core.contract import ExecutionInfo
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from .._core.present import describe_operation, fmt_time

__all__ = ["render_timeline"]

#: Rows beyond this many are left out (a note says so) to keep the file usable.
MAX_ROWS = 2000

_CSS = """
body{font:13px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330}
h1{font-size:18px;margin:0 0 4px}
.meta{color:#555;margin:0 0 16px}
.meta b{color:#1d2330}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td{padding:2px 4px;border-bottom:1px solid #eef0f4;vertical-align:middle}
td.label{width:32%;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
td.track{position:relative;height:18px}
.bar{position:absolute;top:3px;height:12px;min-width:2px;border-radius:2px}
.ok{background:#3b82f6}.fail{background:#dc2626}.run{background:#f59e0b}
.wait{background:#a3a3a3}.ctx{background:#c7d2fe;top:6px;height:6px}
.delay{background:repeating-linear-gradient(45deg,#fca5a5 0 3px,#fff 3px 6px)}
.inv{background:#10b981}.inverr{background:#7f1d1d}
.st{font-size:11px;color:#666;margin-left:6px}
.axis td.track{height:14px;font-size:11px;color:#777}
.tick{position:absolute;top:0;transform:translateX(-50%)}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
.note{color:#b45309}
"""


def _fmt_span(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.2f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def _segments(
    op: Operation, events: Sequence[Mapping[str, Any]], now: int
) -> list[tuple[int, int, str, str]]:
    """(start, end, css class, tooltip) bars of one operation, from its events."""
    out: list[tuple[int, int, str, str]] = []
    started: int | None = None
    attempt = 0
    for e in events:
        kind = e["EventType"]
        ts = e["EventTimestamp"]
        details = e.get(f"{kind}Details") or {}
        if kind == "StepStarted":
            started = ts
            attempt += 1
        elif kind in ("StepSucceeded", "StepFailed"):
            begin = started if started is not None else ts
            retry = details.get("RetryDetails") or {}
            attempt = retry.get("CurrentAttempt", attempt)
            ok = kind == "StepSucceeded"
            tip = f"attempt {attempt}: {'succeeded' if ok else 'failed'} in {_fmt_span(ts - begin)}"
            err = (details.get("Error") or {}).get("Payload") or {}
            if err:
                tip += f" — {err.get('ErrorType')}: {err.get('ErrorMessage')}"
            out.append((begin, ts, "ok" if ok else "fail", tip))
            delay = retry.get("NextAttemptDelaySeconds")
            if delay:
                out.append((ts, ts + delay * 1000, "delay", f"retry delay {delay} s"))
            started = None
        elif kind == "WaitStarted":
            end = details.get("ScheduledEndTimestamp", ts)
            out.append((ts, end, "wait", f"wait {details.get('Duration')} s"))
        elif kind == "ContextStarted":
            started = ts
        elif kind in ("ContextSucceeded", "ContextFailed"):
            begin = started if started is not None else op.start_timestamp
            out.append((begin, ts, "ctx", f"context {kind[7:].lower()} in {_fmt_span(ts - begin)}"))
            started = None
    if started is not None and op.type is OperationType.STEP:
        out.append((started, now, "run", f"attempt {attempt} running"))
    if started is not None and op.type is OperationType.CONTEXT:
        out.append((started, now, "ctx", "context running"))
    if not out:
        end = op.end_timestamp if op.end_timestamp is not None else now
        css = {
            OperationType.WAIT: "wait",
            OperationType.CONTEXT: "ctx",
        }.get(op.type, "ok" if op.status is OperationStatus.SUCCEEDED else "run")
        if op.status is OperationStatus.FAILED:
            css = "fail"
        out.append((op.start_timestamp, end, css, f"{op.status.value}"))
    return out


def render_timeline(
    info: ExecutionInfo,
    operations: Sequence[Operation],
    events: Sequence[Mapping[str, Any]],
) -> str:
    """The HTML document of one execution's timeline."""
    now = info.ended_at or max(
        [info.updated_at, *(e["EventTimestamp"] for e in events)], default=info.updated_at
    )
    by_op: dict[str, list[Mapping[str, Any]]] = {}
    invocations: list[tuple[int, int, str, str]] = []
    for e in events:
        if e["EventType"] == "InvocationCompleted":
            d = e.get("InvocationCompletedDetails") or {}
            start = d.get("StartTimestamp", e["EventTimestamp"])
            end = d.get("EndTimestamp", e["EventTimestamp"])
            err = (d.get("Error") or {}).get("Payload")
            tip = f"invocation {d.get('RequestId', '')} ({_fmt_span(end - start)})"
            if err:
                tip += f" — {err.get('ErrorType')}: {err.get('ErrorMessage')}"
            invocations.append((start, end, "inverr" if err else "inv", tip))
        elif "Id" in e:
            by_op.setdefault(e["Id"], []).append(e)

    ops = [op for op in operations if op.type is not OperationType.EXECUTION]
    children: dict[str | None, list[Operation]] = {}
    for op in ops:
        children.setdefault(op.parent_id, []).append(op)
    ordered: list[tuple[int, Operation]] = []

    def walk(parent: str | None, depth: int) -> None:
        for op in children.get(parent, []):
            ordered.append((depth, op))
            walk(op.id, depth + 1)

    walk(None, 0)
    rows: list[tuple[int, str, str, list[tuple[int, int, str, str]]]] = []
    for depth, op in ordered[:MAX_ROWS]:
        rows.append(
            (
                depth,
                describe_operation(op.sub_type, op.type.value, op.name),
                op.status.value,
                _segments(op, by_op.get(op.id, []), now),
            )
        )

    t0 = info.created_at
    t1 = max(
        [now, *(end for _, _, _, segs in rows for _, end, _, _ in segs)]
        + [end for _, end, _, _ in invocations]
    )
    span = max(t1 - t0, 1)

    def bar(seg: tuple[int, int, str, str]) -> str:
        start, end, css, tip = seg
        left = (start - t0) / span * 100
        width = max((end - start) / span * 100, 0.15)
        return (
            f'<div class="bar {css}" style="left:{left:.3f}%;width:{width:.3f}%" '
            f'title="{html.escape(tip)}"></div>'
        )

    out: list[str] = []
    w = out.append
    title = f"durable_gen execution {info.id}"
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w(f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>")
    w(f"<h1>{html.escape(title)}</h1>")
    meta = [
        f"<b>{html.escape(info.status)}</b>",
        html.escape(info.target or "(no target)"),
        f"started {fmt_time(info.created_at)}",
        f"span {_fmt_span(t1 - t0)}",
        f"{len(ops)} operations, {len(invocations)} invocations",
    ]
    w(f"<p class='meta'>{' · '.join(meta)}</p>")
    if info.error is not None:
        w(
            f"<p class='meta'>error: {html.escape(str(info.error.type))}: "
            f"{html.escape(str(info.error.message))}</p>"
        )
    w(
        "<p class='legend'>"
        + "".join(
            f"<span><i class='{c}'></i>{t}</span>"
            for c, t in [
                ("ok", "step attempt succeeded"),
                ("fail", "attempt failed"),
                ("delay", "retry delay"),
                ("run", "running"),
                ("wait", "wait"),
                ("ctx", "context"),
                ("inv", "invocation"),
                ("inverr", "invocation ended in error"),
            ]
        )
        + "</p>"
    )
    w("<table>")
    ticks = "".join(
        f"<span class='tick' style='left:{p}%'>+{_fmt_span(round(span * p / 100))}</span>"
        for p in (0, 25, 50, 75, 100)
    )
    w(f"<tr class='axis'><td class='label'></td><td class='track'>{ticks}</td></tr>")
    w(
        "<tr><td class='label'><b>invocations</b></td><td class='track'>"
        + "".join(bar(s) for s in invocations)
        + "</td></tr>"
    )
    for depth, label, status, segs in rows:
        pad = depth * 16
        w(
            f"<tr><td class='label' style='padding-left:{pad + 4}px'>{html.escape(label)}"
            f"<span class='st'>{html.escape(status)}</span></td><td class='track'>"
            + "".join(bar(s) for s in segs)
            + "</td></tr>"
        )
    w("</table>")
    if len(ordered) > MAX_ROWS:
        w(f"<p class='note'>{len(ordered) - MAX_ROWS} more operations not shown.</p>")
    w("</body></html>\n")
    return "".join(out)
