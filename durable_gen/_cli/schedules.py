"""``durable-gen schedule add|list|pause|resume|delete|backfill``: cron schedules.

``schedule add NAME TARGET --cron EXPR [--input JSON] [--timezone TZ] [--overlap
skip|buffer-one|allow] [--catch-up SECONDS] [--jitter SECONDS] [--timeout SECONDS]
[--queue Q]`` records a schedule or its new definition (``_engine.schedules``);
every ``durable-gen worker`` and ``serve`` on the database fires its ticks.
``schedule list [--json]`` shows each one's cron expression, zone, pause state,
next and last tick, last execution, skipped ticks and live executions; ``--json``:
one object per schedule per line::

    {"name": str, "target": str, "cron": str, "timezone": str, "input": object,
     "overlap": str, "catch_up": float, "jitter": float, "timeout": float | null,
     "queue": str | null, "paused": bool, "next_tick": str | null,
     "last_tick": str | null, "last_execution": str | null, "skipped": int,
     "last_skipped": str | null, "live": int}

(times as ISO 8601 UTC strings). ``backfill NAME --from T --to T`` starts the past
ticks from T to T (ISO 8601; without a zone: UTC) that have no execution yet, and
prints the ids it started.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from typing import Any

from .._core.errors import ValidationError
from .._engine.durable import DurableEngine
from .._engine.schedules import OVERLAP, Schedule
from .._engine.targets import canonical_target
from .._stores.schedules import iso_utc

__all__ = ["add_arguments", "command"]


def add_arguments(schedule: argparse.ArgumentParser, db: argparse.ArgumentParser) -> None:
    """The ``add``, ``list``, ``pause``, ``resume``, ``delete`` and ``backfill``
    subcommands of ``schedule``."""
    sub = schedule.add_subparsers(dest="schedule_command", required=True)
    add = sub.add_parser("add", parents=[db], help="declare a schedule, or change it")
    add.add_argument("name", help="1 to 64 letters, digits, '-', '_' or '.'")
    add.add_argument("target", help="package.module:function or path/to/file.py:function")
    add.add_argument(
        "--cron",
        required=True,
        metavar="EXPR",
        help="5 fields (minute hour day month weekday), or 6 with seconds first",
    )
    add.add_argument(
        "--input",
        metavar="JSON",
        help="a JSON object; each execution gets it plus scheduled_time and actual_time",
    )
    add.add_argument(
        "--timezone", default="UTC", metavar="TZ", help="the cron's IANA time zone (default UTC)"
    )
    add.add_argument(
        "--overlap",
        default="skip",
        metavar="|".join(OVERLAP),
        help="while its last execution still runs: skip the tick (default), hold one "
        "until it ends, or start anyway",
    )
    add.add_argument(
        "--catch-up",
        default="60",
        metavar="SECONDS",
        help="start ticks missed while no worker ran if at most this old (default 60)",
    )
    add.add_argument(
        "--jitter",
        default="0",
        metavar="SECONDS",
        help="delay each tick's execution by up to this (the same for every worker)",
    )
    add.add_argument(
        "--timeout",
        metavar="SECONDS",
        help="end each execution TIMED_OUT if it still runs this long after it started",
    )
    add.add_argument("--queue", metavar="Q", help="start its executions onto queue Q")
    lst = sub.add_parser(
        "list", parents=[db], help="each schedule's next and last tick, skipped ticks"
    )
    lst.add_argument("--json", action="store_true", help="one JSON object per schedule per line")
    for name, text in (
        ("pause", "stop starting executions for its ticks"),
        ("resume", "start executions again, from the next tick on"),
        ("delete", "delete a schedule (its executions are kept)"),
    ):
        one = sub.add_parser(name, parents=[db], help=text)
        one.add_argument("name")
    backfill = sub.add_parser(
        "backfill", parents=[db], help="start the past ticks of an interval that did not run"
    )
    backfill.add_argument("name")
    backfill.add_argument(
        "--from", dest="start", required=True, metavar="T", help="ISO 8601 (no zone: UTC)"
    )
    backfill.add_argument(
        "--to", dest="end", required=True, metavar="T", help="ISO 8601 (no zone: UTC)"
    )


def _seconds(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{option} must be a number of seconds, got {text!r:.40}") from None


def _instant(text: str, option: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{option} must be an ISO 8601 time such as 2026-01-01T03:00:00Z, got {text!r:.60}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def _schedule(args: argparse.Namespace) -> Schedule:
    value: Any = {}
    if args.input is not None:
        try:
            value = json.loads(args.input)
        except ValueError as e:
            raise ValidationError(f"--input is not JSON: {e}") from None
    return Schedule(
        args.name,
        canonical_target(args.target),
        cron=args.cron,
        input=value,
        timezone=args.timezone,
        overlap=args.overlap,
        catch_up=_seconds(args.catch_up, "--catch-up"),
        jitter=_seconds(args.jitter, "--jitter"),
        timeout=None if args.timeout is None else _seconds(args.timeout, "--timeout"),
        queue=args.queue,
        workdir=os.getcwd(),
    )


def command(engine: DurableEngine, args: argparse.Namespace) -> int:
    """Run a ``schedule`` subcommand; bad input raises ``ValidationError``."""
    what = args.schedule_command
    if what == "add":
        schedule = _schedule(args)
        new = engine.add_schedule(schedule)
        ((_, stats),) = [(s, st) for s, st in engine.schedules() if s.name == schedule.name]
        print(
            f"{'added' if new else 'updated'} schedule {schedule.name}: {schedule.cron} "
            f"({schedule.timezone}), next tick {iso_utc(stats.schedule.next_tick)}",
            file=sys.stderr,
        )
        return 0
    if what in ("pause", "resume"):
        changed = (engine.pause_schedule if what == "pause" else engine.resume_schedule)(args.name)
        state = "paused" if what == "pause" else "resumed"
        print(f"{state} schedule {args.name}" + ("" if changed else " (it was)"), file=sys.stderr)
        return 0
    if what == "delete":
        engine.delete_schedule(args.name)
        print(f"deleted schedule {args.name} (its executions are kept)", file=sys.stderr)
        return 0
    if what == "backfill":
        started = engine.backfill_schedule(
            args.name, _instant(args.start, "--from"), _instant(args.end, "--to")
        )
        for execution_id in started:
            print(execution_id)
        print(f"started {len(started)} executions of schedule {args.name}", file=sys.stderr)
        return 0
    return _list(engine, bool(getattr(args, "json", False)))


def _time(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms)


def _list(engine: DurableEngine, as_json: bool) -> int:
    rows = engine.schedules()
    if as_json:
        for s, st in rows:
            row = st.schedule
            print(
                json.dumps(
                    {
                        "name": s.name,
                        "target": s.target,
                        "cron": s.cron,
                        "timezone": s.timezone,
                        "input": s.input,
                        "overlap": s.overlap,
                        "catch_up": s.catch_up,
                        "jitter": s.jitter,
                        "timeout": s.timeout,
                        "queue": s.queue,
                        "paused": row.paused,
                        "next_tick": None if row.paused else _time(row.next_tick),
                        "last_tick": _time(row.last_tick),
                        "last_execution": row.last_execution,
                        "skipped": row.skipped,
                        "last_skipped": _time(row.last_skipped),
                        "live": st.live,
                    }
                )
            )
        return 0
    if not rows:
        print(
            "no schedules (durable-gen schedule add NAME TARGET --cron EXPR adds one)",
            file=sys.stderr,
        )
        return 0
    table = [
        ("SCHEDULE", "CRON", "ZONE", "PAUSED", "NEXT", "LAST", "LAST EXECUTION", "SKIPPED", "LIVE")
    ]
    for s, st in rows:
        row = st.schedule
        table.append(
            (
                s.name,
                s.cron,
                s.timezone,
                "yes" if row.paused else "no",
                "-" if row.paused else iso_utc(row.next_tick),
                _time(row.last_tick) or "-",
                row.last_execution or "-",
                str(row.skipped),
                str(st.live),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
