"""The log records a store keeps for each execution (``durable-gen logs`` reads them).

The replay-aware logger (``durable_gen.get_logger``) hands every record a workflow
body or step function emits in an execution to that execution's :class:`LogBuffer`,
which the engine takes from the store (``store.log_sink(execution_id)``) when an
invocation starts and puts in the log context. Step functions running on worker
threads reach it the same way: the engine sets the context in each attempt's thread.

What is kept, and how much
    Records at the store's level (``log_level``, default INFO) and above, logged
    while the code runs for the first time: a line a workflow body logs again while
    it is being replayed is dropped by the logger (even with ``log_replays``: shown
    then, never kept twice). At most ``keep_logs`` records per execution (default
    :data:`DEFAULT_KEEP_LOGS`; ``$DURABLE_GEN_KEEP_LOGS`` sets the default, ``0``
    keeps none): past that, the *oldest* are dropped -- the end of a long execution
    (where it failed) is what logs are read for; how it started is in its history.
    Records are numbered from 1 in each execution, so ``dropped`` is simply the
    number of the oldest one kept, less one. A message over :data:`MAX_MESSAGE`
    characters keeps its start and a marker; an exception's traceback over it keeps
    its end (the exception itself) and a marker.

When they are written (SQLite)
    Not one transaction per line: records wait in the buffer and are written in the
    transaction of the execution's next durable checkpoint (a step's result, a
    wait, the invocation's end). So a step's lines are recorded together with its
    result, or not at all: a step whose result was recorded never runs again and its
    lines are never stored twice; one whose result was lost to a crash runs again
    and logs again, and only that run's lines are kept. (Lines of a step still
    running on another thread when a sibling's result is written go with that
    write: if the process then dies, that step runs again and its lines appear once
    per run, as they did.)
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from typing import Any

import attrs

from .._core.errors import ValidationError

__all__ = [
    "DEFAULT_KEEP_LOGS",
    "LEVELS",
    "MAX_MESSAGE",
    "KeptLogs",
    "LogBuffer",
    "LogEntry",
    "LogPage",
    "keep_logs_option",
    "level_number",
]

#: How many log records a store keeps per execution unless told otherwise.
DEFAULT_KEEP_LOGS = 1_000
#: The longest message (or exception text) kept, in characters; longer ones are cut.
MAX_MESSAGE = 8_192

#: One buffered record: (time ms, level, logger, message, operation id, operation
#: name, attempt, exception text) -- a tuple: the logger builds one per line.
Pending = tuple[int, int, str, str, str | None, str | None, int | None, str | None]


def clip(text: str) -> str:
    """``text``, or its first :data:`MAX_MESSAGE` characters and a marker."""
    if len(text) <= MAX_MESSAGE:
        return text
    return f"{text[:MAX_MESSAGE]}... [{len(text) - MAX_MESSAGE} more characters not kept]"


def clip_tail(text: str) -> str:
    """``text``, or a marker and its last :data:`MAX_MESSAGE` characters (a traceback's
    end names the exception)."""
    if len(text) <= MAX_MESSAGE:
        return text
    return f"[{len(text) - MAX_MESSAGE} earlier characters not kept] ...{text[-MAX_MESSAGE:]}"


class LogBuffer:
    """Records logged in one execution's running invocation, not written yet.

    ``level``: records below it are not handed over; ``seq``: the number of the
    execution's last record written (the store's to keep). Thread-safe: step
    functions log from worker threads while the engine's thread writes.
    """

    __slots__ = ("_lock", "_records", "level", "seq")

    def __init__(self, level: int, seq: int = 0) -> None:
        self.level = level
        self.seq = seq
        self._records: list[Pending] = []
        self._lock = threading.Lock()

    def add(self, record: Pending) -> None:
        """Hand over one record (its message and exception are cut to size here)."""
        message, exception = record[3], record[7]
        if len(message) > MAX_MESSAGE or (exception is not None and len(exception) > MAX_MESSAGE):
            record = (
                *record[:3],
                clip(message),
                *record[4:7],
                None if exception is None else clip_tail(exception),
            )
        with self._lock:
            self._records.append(record)

    def take(self) -> list[Pending]:
        """The records handed over so far, in order; the buffer is empty after."""
        with self._lock:
            records, self._records = self._records, []
        return records

    def __bool__(self) -> bool:
        return bool(self._records)


@attrs.frozen(kw_only=True)
class LogEntry:
    """One kept log record: ``seq`` numbers an execution's records from 1."""

    seq: int
    time: int  # epoch milliseconds (the wall clock when it was logged)
    level: int
    logger: str
    message: str
    operation_id: str | None = None
    operation_name: str | None = None
    attempt: int | None = None
    exception: str | None = None

    @property
    def level_name(self) -> str:
        return logging.getLevelName(self.level)

    @classmethod
    def from_pending(cls, seq: int, r: Pending) -> LogEntry:
        return cls(
            seq=seq,
            time=r[0],
            level=r[1],
            logger=r[2],
            message=r[3],
            operation_id=r[4],
            operation_name=r[5],
            attempt=r[6],
            exception=r[7],
        )


@attrs.frozen(kw_only=True)
class LogPage:
    """Records of an execution in order; ``dropped``: how many of its oldest records
    were not kept (the bound); ``more``: records after the last one exist."""

    records: tuple[LogEntry, ...]
    dropped: int = 0
    more: bool = False


class KeptLogs:
    """An execution's kept records in memory (the in-memory store's): each record is
    kept as it is handed over, the oldest dropped past ``keep``."""

    __slots__ = ("_lock", "_records", "keep", "level", "seq")

    def __init__(self, keep: int, level: int) -> None:
        self.keep = keep
        self.level = level
        self.seq = 0  # the number of the last record kept
        self._records: collections.deque[LogEntry] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, record: Pending) -> None:
        with self._lock:
            self.seq += 1
            entry = LogEntry.from_pending(self.seq, record)
            if len(entry.message) > MAX_MESSAGE or len(entry.exception or "") > MAX_MESSAGE:
                entry = attrs.evolve(
                    entry,
                    message=clip(entry.message),
                    exception=None if entry.exception is None else clip_tail(entry.exception),
                )
            self._records.append(entry)

    def page(self, after: int, limit: int | None, level: int) -> LogPage:
        with self._lock:
            records = list(self._records)
        found = [r for r in records if r.seq > after and r.level >= level]
        more = limit is not None and len(found) > limit
        return LogPage(
            records=tuple(found[:limit] if more else found),
            dropped=records[0].seq - 1 if records else 0,
            more=more,
        )


def keep_logs_option(keep_logs: Any) -> int:
    """The number of records to keep per execution: ``keep_logs``, or when it is None
    ``$DURABLE_GEN_KEEP_LOGS``, else :data:`DEFAULT_KEEP_LOGS`; 0 keeps none."""
    if keep_logs is None:
        text = os.environ.get("DURABLE_GEN_KEEP_LOGS", "").strip()
        if not text:
            return DEFAULT_KEEP_LOGS
        if not text.isascii() or not text.isdigit():
            raise ValidationError(
                f"DURABLE_GEN_KEEP_LOGS must be how many log records to keep per execution "
                f"(an integer, 0 to keep none), got {text!r:.40}"
            )
        return int(text)
    if isinstance(keep_logs, bool) or not isinstance(keep_logs, int) or keep_logs < 0:
        raise ValidationError(
            f"keep_logs must be how many log records to keep per execution (an integer, "
            f"0 to keep none), got {keep_logs!r:.40} ({type(keep_logs).__name__})"
        )
    return keep_logs


#: Level names ``logs --level`` and the stores' ``log_level`` accept.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def level_number(level: Any, what: str = "log_level") -> int:
    """A logging level given as a number or a name (``"info"`` too), checked."""
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    if isinstance(level, str) and level.upper() in LEVELS:
        return LEVELS[level.upper()]
    raise ValidationError(
        f"{what} must be a logging level ({', '.join(LEVELS)} or a number), got {level!r:.40}"
    )
