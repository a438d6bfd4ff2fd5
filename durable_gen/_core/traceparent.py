"""W3C Trace Context ``traceparent`` values: parse, validate and format.

An execution started under a caller's trace (an ``Invoke`` of another execution,
or ``serve``'s Invoke with a ``traceparent`` header) keeps that context as text
(``executions.trace_context``); ``durable_gen.otel`` continues the trace from it.
Pure functions: no OpenTelemetry import, so engines and ``serve`` use them at no
cost when tracing is off.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["TraceParent", "from_xray", "parse_traceparent", "to_xray"]

# version-traceid-parentid-flags; a future version may append "-..." fields
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


@attrs.frozen(kw_only=True)
class TraceParent:
    """A valid ``traceparent``: the caller's trace and span, and whether it is sampled."""

    trace_id: int
    span_id: int
    sampled: bool = True

    def __str__(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


def parse_traceparent(text: str | None) -> TraceParent | None:
    """The ``traceparent`` in ``text``, or None when it is absent or invalid.

    W3C Trace Context, section 3.2 / 4.3: an invalid header is ignored (never an
    error); version ``ff``, an all-zero trace or span id and, for version ``00``,
    trailing fields make it invalid.
    """
    if not text or len(text) > 512:
        return None
    m = _TRACEPARENT.fullmatch(text.strip())
    if m is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return TraceParent(trace_id=trace_id, span_id=span_id, sampled=bool(int(flags_hex, 16) & 1))


def from_xray(header: str | None) -> TraceParent | None:
    """An X-Ray trace header (``Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1``,
    Lambda's ``_X_AMZN_TRACE_ID``) as a ``traceparent``; None unless it names both a
    valid trace and a parent (as AWS's ``xray_context_extractor`` needs for a remote
    parent). ``Sampled=0`` is kept; a missing ``Sampled`` counts as sampled."""
    if not header:
        return None
    parts: dict[str, str] = {}
    for segment in header.split(";"):
        key, sep, value = segment.partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    root = parts.get("Root", "").split("-")
    if len(root) != 3 or root[0] != "1":
        return None
    trace_hex, parent_hex = (root[1] + root[2]).lower(), parts.get("Parent", "").lower()
    sampled = "01" if parts.get("Sampled", "1") != "0" else "00"
    return parse_traceparent(f"00-{trace_hex}-{parent_hex}-{sampled}")


def to_xray(parent: TraceParent) -> str:
    """``parent`` as an X-Ray trace header (``Root=1-<8 hex>-<24 hex>;Parent=<16
    hex>;Sampled=1``): what a chained invoke's ``XAmznTraceId`` carries, the inverse
    of :func:`from_xray`."""
    trace = f"{parent.trace_id:032x}"
    sampled = 1 if parent.sampled else 0
    return f"Root=1-{trace[:8]}-{trace[8:]};Parent={parent.span_id:016x};Sampled={sampled}"
