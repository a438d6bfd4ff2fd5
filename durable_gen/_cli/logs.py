"""``durable-gen logs ID [--json] [--level LEVEL] [--follow]``: an execution's kept log records.

The SQLite store keeps what workflows log through ``durable_gen.get_logger``
(``_stores.logs``: INFO and above, the newest 1,000 records of each execution,
``$DURABLE_GEN_KEEP_LOGS`` to change or, with 0, stop that). This command prints
them in order: time (UTC), level, where (the operation's name, else its id; the
attempt of a step), message; an exception's traceback indented below it. When the
oldest records of the execution were dropped to keep the bound, a first line says
how many. ``--follow`` prints new records as they are written, until the execution
ends (records are written with each checkpoint, not line by line).

``--json``: one JSON object per line (stdout), in order::

    {"execution_id": str, "seq": int, "time": "2026-01-01T12:00:00.123Z",
     "level": "INFO", "levelno": 20, "logger": str, "message": str,
     "operation_id": str | null, "operation_name": str | null,
     "attempt": int | null, "exception": str | null}

``seq`` numbers an execution's records from 1; ``attempt`` is set in step
functions; ``exception`` is the formatted traceback. The note on dropped records
goes to stderr then.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from typing import Any, TextIO

from .._core.contract import LIVE_STATUSES
from .._core.present import fmt_time
from .._stores.logs import LEVELS, LogEntry, LogPage

__all__ = ["JSON_SCHEMA", "add_arguments", "command"]

#: The ``--json`` record, for ``--help`` (the module docstring has it too).
JSON_SCHEMA = """\
--json prints one JSON object per line:
  {"execution_id": str, "seq": int, "time": "2026-01-01T12:00:00.123Z",
   "level": "INFO", "levelno": 20, "logger": str, "message": str,
   "operation_id": str|null, "operation_name": str|null,
   "attempt": int|null, "exception": str|null}
seq numbers an execution's records from 1; attempt: in step functions.

Records come from durable_gen.get_logger, INFO and above, the newest 1,000 of
each execution ($DURABLE_GEN_KEEP_LOGS=N keeps N; 0 keeps none). Not kept on
AWS Lambda (CloudWatch Logs has them) nor with an encrypted database."""

#: How often ``--follow`` looks for new records, in seconds.
FOLLOW_SECONDS = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id")
    parser.add_argument("--json", action="store_true", help="one JSON object per record")
    parser.add_argument(
        "--level",
        type=str.upper,
        choices=list(LEVELS),
        default=None,
        help="only records at this level and above",
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new records until the execution ends",
    )


def _iso(ms: int) -> str:
    return (
        datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def record_json(execution_id: str, r: LogEntry) -> dict[str, Any]:
    """One record as ``--json`` prints it."""
    return {
        "execution_id": execution_id,
        "seq": r.seq,
        "time": _iso(r.time),
        "level": r.level_name,
        "levelno": r.level,
        "logger": r.logger,
        "message": r.message,
        "operation_id": r.operation_id,
        "operation_name": r.operation_name,
        "attempt": r.attempt,
        "exception": r.exception,
    }


def record_text(r: LogEntry) -> str:
    """One record as ``logs`` prints it: a line, continued lines and traceback indented."""
    where = r.operation_name or (r.operation_id[:12] if r.operation_id else "-")
    if r.attempt is not None:
        where += f" #{r.attempt}"
    head = f"{fmt_time(r.time)}  {r.level_name:<8} {where}: "
    lines = r.message.splitlines() or [""]
    out = [head + lines[0], *("    " + line for line in lines[1:])]
    if r.exception:
        out.extend("    " + line for line in r.exception.splitlines())
    return "\n".join(out)


def command(store: Any, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the records of ``args.id`` kept in ``store`` (following them with ``--follow``)."""
    stream: TextIO = out or sys.stdout
    level = LEVELS[args.level] if args.level else 0
    after = 0
    told = 0  # dropped records already reported
    printed = 0
    while True:
        status = store.status(args.id)[0]  # before reading: what was written by then is read
        page: LogPage = store.log_records(args.id, after=after, level=level)
        if page.dropped > max(after, told):
            missed = page.dropped - max(after, told)
            note = (
                f"({missed} earlier log records dropped: the store keeps each execution's newest)"
            )
            print(note, file=sys.stderr if args.json else stream, flush=True)
            told = page.dropped
        for r in page.records:
            if args.json:
                print(json.dumps(record_json(args.id, r)), file=stream)
            else:
                print(record_text(r), file=stream)
            after = r.seq
            printed += 1
        stream.flush()
        if not args.follow or status not in LIVE_STATUSES:
            break
        time.sleep(FOLLOW_SECONDS)
    if not printed and not told and not args.json:
        print(
            f"durable-gen: no log records kept for execution {args.id}"
            + (f" at {args.level} or above" if args.level else ""),
            file=sys.stderr,
        )
    return 0
