"""Local stand-ins for what the validator reads logs through (CloudWatch Logs).

The validator checks ``ExpectedLogs`` by calling CloudWatch's
``FilterLogEvents`` with the pattern
``{ ($.durableExecutionArn = "ARN") || ($.executionArn = "ARN") }`` and
matching the lines it gets back. Here the lines are what the functions wrote,
in Lambda's JSON log format: a ``logging`` record becomes
``{"timestamp", "level", "message", "logger", ...extra fields}`` (as Lambda's
Python runtime writes it with JSON logging on), anything printed to stdout is
kept as printed. :class:`LogSink` collects them; :class:`FakeLogsClient`
answers ``filter_log_events`` from it, applying that filter.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import re
import threading
import time
from typing import Any

#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("n", 0, "p", 0, "m", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class LambdaJsonFormatter(logging.Formatter):
    """A record as Lambda's JSON log format has it (extra fields at the top level)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = (
                    value if isinstance(value, str | int | float | bool | None) else repr(value)
                )
        if record.exc_info:
            out["stackTrace"] = self.formatException(record.exc_info).splitlines()
        return json.dumps(out)


class LogSink:
    """Every line written, with the time it was written (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[tuple[int, int, str]] = []  # (epoch ms, sequence, line)

    def add(self, line: str) -> None:
        line = line.rstrip("\n")
        if not line.strip():
            return
        with self._lock:
            self.lines.append((int(time.time() * 1000), len(self.lines), line))


class SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__(logging.INFO)
        self.sink = sink
        self.setFormatter(LambdaJsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.add(self.format(record))
        except Exception:  # pragma: no cover - a logging handler never raises
            self.handleError(record)


class SinkStream(io.TextIOBase):
    """A stdout replacement writing complete lines to the sink."""

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self._buf = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        buf = getattr(self._buf, "text", "") + s
        *lines, rest = buf.split("\n")
        for line in lines:
            self.sink.add(line)
        self._buf.text = rest
        return len(s)

    def flush(self) -> None:
        rest = getattr(self._buf, "text", "")
        if rest:
            self.sink.add(rest)
            self._buf.text = ""


_PATTERN = re.compile(r'\$\.(durableExecutionArn|executionArn) = "((?:[^"\\]|\\.)*)"')


class FakeLogsClient:
    """``filter_log_events`` over a :class:`LogSink` (the JSON ARN filter only)."""

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        wanted = [
            (field, value.replace('\\"', '"').replace("\\\\", "\\"))
            for field, value in _PATTERN.findall(kwargs.get("filterPattern") or "")
        ]
        start, end = kwargs.get("startTime", 0), kwargs.get("endTime") or 2**62
        events = []
        for ts, seq, line in list(self.sink.lines):
            if not start - 1000 <= ts <= end + 1000:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if wanted:
                if not isinstance(record, dict):
                    continue
                if not any(record.get(field) == value for field, value in wanted):
                    continue
            events.append({"timestamp": ts, "ingestionTime": seq, "message": line})
        return {"events": events}


class FakeCloudFormationClient:
    """The stack lookups the validator makes: logical id = physical function name."""

    def describe_stack_resource(self, StackName: str, LogicalResourceId: str) -> dict[str, Any]:
        return {"StackResourceDetail": {"PhysicalResourceId": LogicalResourceId}}

    def get_paginator(self, name: str) -> Any:
        return self

    def paginate(self, StackName: str) -> Any:
        return iter([{"StackResourceSummaries": []}])
