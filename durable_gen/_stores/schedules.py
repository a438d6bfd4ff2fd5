"""What every store with schedules shares: the stored form of a schedule and its tick maths.

A schedule (``_engine.schedules.Schedule`` declares one) starts one execution per
tick of its cron expression. The store fires due ticks (``fire_due``) in one write
transaction, so workers sharing it cannot both start one tick; the id of a tick's
execution is derived from the schedule and the tick (:func:`tick_id`), so a tick
that was started once is never started again, even by a backfill.

The maths here is pure (no clock, no I/O): ticks are computed by ``cronsim`` in the
schedule's time zone, which handles daylight saving time (a wall-clock time skipped
in spring fires at the first time after the gap; one that repeats in autumn fires
once, at its first occurrence), and reported as epoch milliseconds (UTC).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from cronsim import CronSim, CronSimError

__all__ = [
    "INPUT_KEYS",
    "MAX_FIRE",
    "MAX_SKIPPED_COUNT",
    "OVERLAP",
    "Firing",
    "ScheduleRow",
    "ScheduleStats",
    "execution_input",
    "iso_utc",
    "jitter_delay",
    "next_tick",
    "plan_firing",
    "tick_id",
    "ticks_between",
]

#: What a tick does while an execution the schedule started is still live: skip the
#: tick (and count it), remember one tick to start when the live one ends, or start.
OVERLAP = ("skip", "buffer-one", "allow")
#: The keys a schedule adds to its input: the tick's time and when it was started.
INPUT_KEYS = ("scheduled_time", "actual_time")
#: How many skipped ticks one firing counts one by one (a schedule every second that
#: was down a year counts that many, then jumps to its catch-up window).
MAX_SKIPPED_COUNT = 100_000
#: How many ticks of one schedule one firing starts (a wide catch-up window of a
#: schedule every second: the rest at the next firing).
MAX_FIRE = 10_000


@attrs.frozen(kw_only=True)
class ScheduleRow:
    """A schedule as stored: its definition (times in ms) and its state.

    ``next_tick``: epoch ms of the next tick not yet handled; ``buffered_tick``: a
    tick held back by ``overlap="buffer-one"``; ``skipped``: ticks not started (past
    the catch-up window, or by the overlap policy), ``last_skipped`` the latest."""

    name: str
    target: str
    workdir: str | None = None
    cron: str
    timezone: str = "UTC"
    input: str = "{}"
    overlap: str = "skip"
    catch_up_ms: int = 60_000
    jitter_ms: int = 0
    timeout_ms: int | None = None
    queue: str | None = None
    paused: bool = False
    next_tick: int = 0
    buffered_tick: int | None = None
    last_tick: int | None = None
    last_execution: str | None = None
    skipped: int = 0
    last_skipped: int | None = None


@attrs.frozen(kw_only=True)
class ScheduleStats:
    """A schedule with how many executions it started are live (running, paused) now."""

    schedule: ScheduleRow
    live: int


def _zone(timezone: str) -> datetime.tzinfo:
    return datetime.UTC if timezone == "UTC" else ZoneInfo(timezone)


def _cron_after(cron: str, timezone: str, after: int) -> Iterator[int]:
    """Ticks strictly after ``after`` (epoch ms), in order, each once."""
    zone = _zone(timezone)
    start = datetime.datetime.fromtimestamp(after / 1000, datetime.UTC).astimezone(zone)
    last = after
    for dt in CronSim(cron, start):
        ms = round(dt.timestamp() * 1000)
        if ms > last:  # a repeated wall-clock time must not go back in time
            last = ms
            yield ms


def next_tick(cron: str, timezone: str, after: int) -> int | None:
    """The first tick strictly after ``after`` (epoch ms), or None if there is none."""
    try:
        return next(_cron_after(cron, timezone, after))
    except (StopIteration, CronSimError):
        return None


def ticks_between(
    cron: str, timezone: str, first: int, last: int, *, limit: int = 100_000
) -> list[int]:
    """The ticks in ``[first, last]`` (epoch ms), oldest first, at most ``limit``."""
    out: list[int] = []
    if first > last:
        return out
    for tick in _cron_after(cron, timezone, first - 1):
        if tick > last or len(out) >= limit:
            break
        out.append(tick)
    return out


def iso_utc(ms: int) -> str:
    """``2026-01-01T00:00:00Z`` (with milliseconds when they are not zero)."""
    dt = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def tick_id(name: str, tick: int) -> str:
    """The id of the execution a schedule starts for a tick: ``sched:NAME:ISO-TIME``.

    The same for every worker and every retry, so the store's "an execution with
    this id exists" rule makes each tick start once (no ``/``: ids end ARNs)."""
    return f"sched:{name}:{iso_utc(tick)}"


def jitter_delay(name: str, tick: int, jitter_ms: int) -> int:
    """How long (ms, 0 to ``jitter_ms``) a tick's execution waits before it starts:
    a hash of the schedule and the tick, so every worker computes the same delay and
    many schedules on one cron expression do not all start in the same millisecond."""
    if jitter_ms <= 0:
        return 0
    digest = hashlib.blake2b(f"{name}\0{tick}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (jitter_ms + 1)


def execution_input(schedule_input: str, scheduled: int, actual: int) -> dict[str, Any]:
    """A tick's execution input: the schedule's input object with ``scheduled_time``
    (the tick) and ``actual_time`` (when it starts), ISO 8601 UTC strings."""
    value = json.loads(schedule_input)
    if not isinstance(value, dict):  # refused when the schedule was added
        value = {}
    return {**value, "scheduled_time": iso_utc(scheduled), "actual_time": iso_utc(actual)}


@attrs.frozen(kw_only=True)
class Firing:
    """What a store does for one due schedule now (:func:`plan_firing`): start
    ``starts`` (tick, wake time) in order, then store the other fields on its row."""

    starts: tuple[tuple[int, int], ...]
    buffered_tick: int | None
    skipped: int
    last_skipped: int | None
    next_tick: int


def plan_firing(row: ScheduleRow, now: int, live: int) -> Firing:
    """The firing of a due schedule at ``now`` with ``live`` of its executions live.

    Its buffered tick starts first if none is live. Then each tick from ``next_tick``
    to ``now``: older than ``now - catch_up_ms``, skipped (counted); else started
    (woken after its jitter) when ``overlap`` is ``"allow"`` or none is live, held
    when ``"buffer-one"`` holds none yet, else skipped. Every start counts as live for
    the ticks after it. The same on every store: the store only runs it, in the
    transaction that reads the row."""
    starts: list[tuple[int, int]] = []
    buffered = row.buffered_tick
    skipped, last_skipped = row.skipped, row.last_skipped
    if buffered is not None and live == 0:
        starts.append((buffered, now))
        live += 1
        buffered = None
    following = row.next_tick
    if row.next_tick <= now:
        oldest = now - row.catch_up_ms  # ticks before it are past the catch-up window
        late = ticks_between(
            row.cron, row.timezone, row.next_tick, oldest - 1, limit=MAX_SKIPPED_COUNT
        )
        if late:
            skipped += len(late)
            last_skipped = late[-1]
        ticks = ticks_between(
            row.cron, row.timezone, max(row.next_tick, oldest), now, limit=MAX_FIRE
        )
        for tick in ticks:
            if row.overlap == "allow" or live == 0:
                starts.append((tick, max(now, tick + jitter_delay(row.name, tick, row.jitter_ms))))
                live += 1
            elif row.overlap == "buffer-one" and buffered is None:
                buffered = tick
            else:
                skipped += 1
                last_skipped = tick
        # more than MAX_FIRE ticks in the window: the rest at the next firing
        after = ticks[-1] if len(ticks) == MAX_FIRE else now
        found = next_tick(row.cron, row.timezone, after)
        following = found if found is not None else now + 366 * 86_400_000
    return Firing(
        starts=tuple(starts),
        buffered_tick=buffered,
        skipped=skipped,
        last_skipped=last_skipped,
        next_tick=following,
    )
