"""Schedules: cron expressions that start executions, exactly once per tick.

``Schedule("nightly", "reports.flows:nightly", cron="0 3 * * *", timezone="Europe/Berlin")``
declares one; ``engine.add_schedule(schedule)`` records it in the store (again: its
new definition), and every worker sharing the store (``durable-gen worker``,
``serve``) fires its ticks. The cron expression has 5 fields (minute hour day month
weekday) or 6 with a seconds field first (``*/10 * * * * *``: every ten seconds); it
is read by ``cronsim`` in the schedule's IANA ``timezone``, daylight saving time
included (a time skipped in spring fires just after the gap, one repeated in autumn
fires once).

Each tick starts one execution, id ``sched:NAME:2026-01-01T03:00:00Z``, however many
workers fire at once and however often they restart: the store starts it in one
write transaction, and an id that exists is never started again. Its input is the
schedule's ``input`` object plus ``scheduled_time`` (the tick) and ``actual_time``
(when it was started to run), ISO 8601 UTC strings.

- ``catch_up`` (seconds, default 60): ticks missed while no worker ran are started
  late if they are at most this old; older ones are skipped and counted.
- ``overlap``: while an execution the schedule started is still live, a tick is
  skipped (``"skip"``, default, counted), held until it ends (``"buffer-one"``: at
  most one held, further ones skipped) or started anyway (``"allow"``).
- ``jitter`` (seconds, default 0): each tick's execution waits a delay from 0 to this,
  the same for every worker (a hash of the name and the tick), so many schedules on
  one minute do not all start in its first millisecond. Its id keeps the tick.
- ``timeout`` (seconds; Lambda's ExecutionTimeout) and ``queue``: as on ``start``.

Pausing stops its ticks (ticks while paused are not caught up on resume);
:meth:`~durable_gen.DurableEngine.backfill_schedule` starts the ticks of a past
interval that did not run (the ids make a tick that did run start nothing).
"""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from .._core.errors import ValidationError
from .._stores.schedules import INPUT_KEYS, OVERLAP, ScheduleRow, ScheduleStats, next_tick
from .limits import MAX_TIMEOUT_SECONDS, timeout_ms

__all__ = ["OVERLAP", "Schedule", "ScheduleStats", "instant_ms"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: The longest catch-up window and jitter (a year): beyond it, the numbers are a typo.
_MAX_SECONDS = MAX_TIMEOUT_SECONDS
_NOW_FOR_CHECKS = 1_767_225_600_000  # 2026-01-01: "does this expression ever fire"


def _name(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            "a schedule name must be 1 to 64 letters, digits, '-', '_' or '.' (starting "
            f"with a letter or digit), got {value!r:.80}"
        )


def _target(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or ":" not in value.strip(":"):
        raise ValidationError(
            "a schedule's target must be 'package.module:function' or "
            f"'path/to/file.py:function', got {value!r:.80}"
        )


def _cron(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"cron must be a cron expression string, got {value!r:.80}")
    try:
        CronSim(value, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    except CronSimError as e:
        raise ValidationError(
            f"malformed cron expression {value!r:.80} ({e}): give 5 fields (minute hour "
            "day month weekday) or 6 with seconds first, e.g. '*/5 * * * *'"
        ) from None
    if next_tick(value, "UTC", _NOW_FOR_CHECKS) is None:
        raise ValidationError(f"cron expression {value!r:.80} never fires")


def _timezone(instance: Any, attribute: Any, value: Any) -> None:
    try:
        if not isinstance(value, str) or not value:
            raise ValueError
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown time zone {value!r:.80}: give an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def _input(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            f"a schedule's input must be a JSON object (a dict), got {type(value).__name__}: "
            f"{value!r:.80}"
        )
    taken = [k for k in INPUT_KEYS if k in value]
    if taken:
        raise ValidationError(
            f"a schedule's input may not have the key {taken[0]!r}: each execution gets "
            "scheduled_time and actual_time from the schedule"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"a schedule's input must be JSON: {e}") from None


def _overlap(instance: Any, attribute: Any, value: Any) -> None:
    if value not in OVERLAP:
        raise ValidationError(
            f"overlap must be one of {', '.join(repr(o) for o in OVERLAP)}, got {value!r:.80}"
        )


def _seconds(what: str, value: Any, *, zero: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and math.isfinite(value) and (value >= 0 if zero else value > 0)
    if not ok or value > _MAX_SECONDS:
        low = "0 or more" if zero else "more than 0"
        raise ValidationError(
            f"{what} must be a number of seconds, {low} and at most {_MAX_SECONDS}, "
            f"got {value!r:.40}"
        )


def _catch_up(instance: Any, attribute: Any, value: Any) -> None:
    _seconds("catch_up", value, zero=False)


def _jitter(instance: Any, attribute: Any, value: Any) -> None:
    _seconds("jitter", value, zero=True)


def _timeout(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        timeout_ms(value)


def _queue(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationError(f"queue must be a queue's name or None, got {value!r:.80}")


@attrs.frozen
class Schedule:
    """A cron schedule that starts ``target`` once per tick (see the module)."""

    name: str = attrs.field(validator=_name)
    target: str = attrs.field(validator=_target)
    cron: str = attrs.field(kw_only=True, validator=_cron)
    input: dict[str, Any] = attrs.field(factory=dict, kw_only=True, validator=_input)
    timezone: str = attrs.field(default="UTC", kw_only=True, validator=_timezone)
    overlap: str = attrs.field(default="skip", kw_only=True, validator=_overlap)
    catch_up: float = attrs.field(default=60.0, kw_only=True, validator=_catch_up)
    jitter: float = attrs.field(default=0.0, kw_only=True, validator=_jitter)
    timeout: float | None = attrs.field(default=None, kw_only=True, validator=_timeout)
    queue: str | None = attrs.field(default=None, kw_only=True, validator=_queue)
    #: put on ``sys.path`` when a worker loads a ``module:function`` target; a relative
    #: file target is taken from here
    workdir: str | None = attrs.field(default=None, kw_only=True)

    def to_row(self) -> ScheduleRow:
        """Its stored form (``next_tick`` is the store's to set)."""
        return ScheduleRow(
            name=self.name,
            target=self.target,
            workdir=self.workdir,
            cron=self.cron,
            timezone=self.timezone,
            input=json.dumps(self.input, separators=(",", ":"), sort_keys=True),
            overlap=self.overlap,
            catch_up_ms=max(1, round(self.catch_up * 1000)),
            jitter_ms=round(self.jitter * 1000),
            timeout_ms=None if self.timeout is None else timeout_ms(self.timeout),
            queue=self.queue,
        )

    @classmethod
    def from_row(cls, row: ScheduleRow) -> Schedule:
        return cls(
            row.name,
            row.target,
            cron=row.cron,
            input=json.loads(row.input),
            timezone=row.timezone,
            overlap=row.overlap,
            catch_up=row.catch_up_ms / 1000,
            jitter=row.jitter_ms / 1000,
            timeout=None if row.timeout_ms is None else row.timeout_ms / 1000,
            queue=row.queue,
            workdir=row.workdir,
        )


def instant_ms(value: Any, what: str) -> int:
    """A timezone-aware :class:`datetime.datetime` as epoch ms (a backfill's bounds)."""
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{what} must be a timezone-aware datetime (e.g. 2026-01-01T00:00:00+00:00), "
            f"got {value!r:.80}"
        )
    return round(value.timestamp() * 1000)
