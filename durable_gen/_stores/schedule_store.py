"""Schedules in a store's tables: declaring, listing, pausing, deleting, backfilling
and firing their due ticks exactly once; one implementation (:class:`ScheduleStore`)
for the SQLite and the PostgreSQL stores, each of which gives it its SQL dialect.

:meth:`ScheduleStore.fire_due` runs in one write transaction: it reads the unpaused
schedules whose ``next_tick`` has come (or that hold a buffered tick), starts one
execution per tick with the id :func:`~durable_gen._stores.schedules.tick_id` derives
from the schedule and the tick, and advances ``next_tick`` past now, before it
commits. A worker killed mid-way leaves nothing (the transaction rolls back) and the
next one fires the same ticks with the same ids. An id that exists already starts
nothing (``create``'s rule), so a backfill never runs a tick twice either.

Two workers firing at the same moment:

- SQLite: every write is ``BEGIN IMMEDIATE``; the second worker waits for the write
  lock and then finds ``next_tick`` advanced. A tick's id is looked up before its
  execution is inserted.
- PostgreSQL: ``fire_due`` locks the due schedules' rows ``FOR UPDATE SKIP LOCKED``:
  a worker on another machine firing at the same moment skips them rather than wait,
  and finds ``next_tick`` advanced at its next round. The ticks' executions are
  inserted with ``ON CONFLICT (id) DO NOTHING``, in the same transaction: each tick
  starts once whatever crashes. The other writes lock the schedule's row ``FOR
  UPDATE``, and the writes that may start work announce it (``NOTIFY``). A tick's
  execution may go onto a queue on both stores (``_stores.queue_store`` admits it).

Ticks older than ``now - catch_up_ms`` are skipped and counted (``skipped``,
``last_skipped``; ``_stores.schedules.plan_firing`` decides, the same on every store).
The overlap policy counts the schedule's live executions (``executions.schedule``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .._core.errors import ValidationError
from .._core.serdes import DEFAULT_SERDES
from .schedules import (
    ScheduleRow,
    ScheduleStats,
    execution_input,
    next_tick,
    plan_firing,
    tick_id,
    ticks_between,
)

#: How many ticks one backfill may start (split a longer interval).
MAX_BACKFILL = 10_000
#: How many due schedules one round fires (the rest at the next round).
FIRE_BATCH = 100

#: ``schedules``' columns, named as the fields of :class:`ScheduleRow`
_FIELDS = tuple(field.name for field in attrs.fields(ScheduleRow))
_COLUMNS = ", ".join(_FIELDS)
_LIVE = "('RUNNING', 'PAUSING', 'PAUSED')"


def _row(r: tuple[Any, ...]) -> ScheduleRow:
    values = dict(zip(_FIELDS, r, strict=True))
    values["paused"] = bool(values["paused"])  # SQLite: 0 or 1
    return ScheduleRow(**values)


def _first_tick(row: ScheduleRow, after: int) -> int:
    tick = next_tick(row.cron, row.timezone, after)
    if tick is None:  # Schedule refuses expressions that never fire
        raise ValidationError(f"cron expression {row.cron!r:.80} never fires")
    return tick


class ScheduleStore:
    """Declaring, listing, pausing, deleting, backfilling and firing schedules.

    A mixin placed after the store's journal class (whose ``_lock``, a reentrant
    lock, ``_tx`` and ``_query`` it uses), with the dialect the store gives it: the
    class attributes below and ``_sql``, ``_notify`` and ``_insert_start``. Its SQL
    is written with ``?`` placeholders, which ``_sql`` turns into the driver's."""

    #: the condition on ``schedules`` that selects the unpaused ones, as the store's
    #: partial index ``schedules_due`` spells it (so that reads use that index)
    _UNPAUSED: ClassVar[str]
    #: appended to the read of one schedule that a write follows ("" or " FOR UPDATE")
    _ROW_LOCK: ClassVar[str]
    #: appended to the read of the due schedules that ``fire_due`` fires
    _DUE_LOCK: ClassVar[str]

    if TYPE_CHECKING:

        @property
        def _lock(self) -> contextlib.AbstractContextManager[Any]:
            """The store's lock (reentrant) of its connection and cache."""
            raise NotImplementedError

        def _tx(self) -> contextlib.AbstractContextManager[Any]:
            """A write transaction on the store's connection."""
            raise NotImplementedError

        def _query(self, sql: str, args: Any = ()) -> list[Any]:
            """Rows of one read on the store's connection."""
            raise NotImplementedError

        def _sql(self, text: str) -> str:
            """``text`` with its ``?`` placeholders as the driver writes them."""
            raise NotImplementedError

        def _notify(self, conn: Any) -> None:
            """Tell listening workers that work may be due (or nothing)."""
            raise NotImplementedError

        def _insert_start(
            self,
            conn: Any,
            execution_id: str,
            input_payload: str,
            now: int,
            *,
            wake_at: int,
            columns: Mapping[str, Any],
        ) -> int | None:
            """Write a new execution's start (``create``'s); its pk, or None when an
            execution with that id exists (nothing written)."""
            raise NotImplementedError

    # ------------------------------------------------------------------ rows

    def _execute(self, conn: Any, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return conn.execute(self._sql(sql), args)

    def _read_schedule(self, conn: Any, name: str, *, lock: bool = False) -> ScheduleRow | None:
        row_lock = self._ROW_LOCK if lock else ""
        r = self._execute(
            conn, f"SELECT {_COLUMNS} FROM schedules WHERE name = ?{row_lock}", (name,)
        ).fetchone()
        return None if r is None else _row(r)

    def _known_schedule(self, conn: Any, name: str) -> ScheduleRow:
        """The schedule ``name``, its row locked for this transaction's write."""
        row = self._read_schedule(conn, name, lock=True)
        if row is None:
            names = [
                r[0]
                for r in self._execute(conn, "SELECT name FROM schedules ORDER BY name LIMIT 20")
            ]
            listed = ", ".join(repr(n) for n in names) or "none"
            raise ValidationError(f"no schedule named {name!r:.80} (schedules: {listed})")
        return row

    def _due_schedules(self) -> str:
        """The condition on ``schedules`` of the due ones (one placeholder: now)."""
        return (
            f"{self._UNPAUSED} AND (next_tick <= ? OR (buffered_tick IS NOT NULL AND "
            "NOT EXISTS (SELECT 1 FROM executions AS e WHERE e.schedule = schedules.name "
            f"AND e.status IN {_LIVE})))"
        )

    def _start_tick(
        self,
        conn: Any,
        row: ScheduleRow,
        tick: int,
        now: int,
        wake: int,
        code_version: str | None,
    ) -> str | None:
        """Record the execution of ``row``'s ``tick``, due at ``wake``, in ``conn``'s
        transaction; its id, or None when an execution with that id exists (started
        once: nothing is written). As ``create`` writes a start, with the schedule's
        name."""
        execution_id = tick_id(row.name, tick)
        payload = DEFAULT_SERDES.serialize(execution_input(row.input, tick, wake))
        timeout = row.timeout_ms
        columns: dict[str, Any] = {
            "target": row.target,
            "workdir": row.workdir,
            "code_version": code_version,
            "deadline": None if timeout is None else wake + timeout,
            "timeout_ms": timeout,
            "schedule": row.name,
        }
        if row.queue is not None:
            columns["queue"] = row.queue
        pk = self._insert_start(conn, execution_id, payload, now, wake_at=wake, columns=columns)
        return None if pk is None else execution_id

    def _fire_schedule(
        self, conn: Any, row: ScheduleRow, now: int, code_version: str | None
    ) -> list[str]:
        """Run ``row``'s :func:`~durable_gen._stores.schedules.plan_firing` at ``now``
        in ``conn``'s transaction; the ids of the executions started."""
        (live,) = self._execute(
            conn,
            f"SELECT COUNT(*) FROM executions WHERE schedule = ? AND status IN {_LIVE}",
            (row.name,),
        ).fetchone()
        firing = plan_firing(row, now, int(live))
        started: list[str] = []
        last_tick, last_execution = row.last_tick, row.last_execution
        for tick, wake in firing.starts:
            execution_id = self._start_tick(conn, row, tick, now, wake, code_version)
            if execution_id is not None:
                started.append(execution_id)
                if last_tick is None or tick > last_tick:
                    last_tick, last_execution = tick, execution_id
        self._execute(
            conn,
            "UPDATE schedules SET next_tick = ?, buffered_tick = ?, last_tick = ?, "
            "last_execution = ?, skipped = ?, last_skipped = ? WHERE name = ?",
            (
                firing.next_tick,
                firing.buffered_tick,
                last_tick,
                last_execution,
                firing.skipped,
                firing.last_skipped,
                row.name,
            ),
        )
        return started

    # ------------------------------------------------------------------ the store's methods

    def put_schedule(self, schedule: ScheduleRow, now: int) -> bool:
        """Record ``schedule`` (new: its first tick is the first after ``now``), or
        its new definition; True if new. A changed cron expression or time zone
        starts from the first of its ticks after ``now``; pause state and counts stay."""
        with self._lock, self._tx() as conn:
            old = self._read_schedule(conn, schedule.name, lock=True)
            same_ticks = (
                old is not None and old.cron == schedule.cron and old.timezone == schedule.timezone
            )
            tick = old.next_tick if same_ticks and old is not None else _first_tick(schedule, now)
            self._execute(
                conn,
                "INSERT INTO schedules (name, target, workdir, cron, timezone, input, overlap, "
                "catch_up_ms, jitter_ms, timeout_ms, queue, paused, next_tick, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET target = excluded.target, "
                "workdir = excluded.workdir, cron = excluded.cron, "
                "timezone = excluded.timezone, input = excluded.input, "
                "overlap = excluded.overlap, catch_up_ms = excluded.catch_up_ms, "
                "jitter_ms = excluded.jitter_ms, timeout_ms = excluded.timeout_ms, "
                "queue = excluded.queue, next_tick = excluded.next_tick, "
                "updated_at = excluded.updated_at",
                (
                    schedule.name,
                    schedule.target,
                    schedule.workdir,
                    schedule.cron,
                    schedule.timezone,
                    schedule.input,
                    schedule.overlap,
                    schedule.catch_up_ms,
                    schedule.jitter_ms,
                    schedule.timeout_ms,
                    schedule.queue,
                    False,  # paused (SQLite stores it as 0)
                    tick,
                    now,
                    now,
                ),
            )
            self._notify(conn)
        return old is None

    def schedule(self, name: str) -> ScheduleRow | None:
        """The schedule named ``name``, or None."""
        with self._lock:
            rows = self._query(
                self._sql(f"SELECT {_COLUMNS} FROM schedules WHERE name = ?"), (name,)
            )
        return _row(rows[0]) if rows else None

    def schedule_stats(self) -> list[ScheduleStats]:
        """Every schedule, by name, with how many executions it started are live."""
        with self._lock:
            rows = [_row(r) for r in self._query(f"SELECT {_COLUMNS} FROM schedules ORDER BY name")]
            live = dict(
                self._query(
                    "SELECT schedule, COUNT(*) FROM executions WHERE schedule IS NOT NULL "
                    f"AND status IN {_LIVE} GROUP BY schedule"
                )
            )
        return [ScheduleStats(schedule=r, live=int(live.get(r.name, 0))) for r in rows]

    def pause_schedule(self, name: str, paused: bool, now: int) -> bool:
        """Pause (no tick starts anything) or resume a schedule; True if that changed
        it. Resuming starts from the first tick after ``now``: the ticks while it was
        paused are neither run nor counted as skipped (a backfill runs them)."""
        with self._lock, self._tx() as conn:
            row = self._known_schedule(conn, name)
            if row.paused == paused:
                return False
            tick = row.next_tick if paused else _first_tick(row, now)
            self._execute(
                conn,
                "UPDATE schedules SET paused = ?, next_tick = ?, updated_at = ? WHERE name = ?",
                (paused, tick, now, name),
            )
        return True

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the executions it started stay (with its name)."""
        with self._lock, self._tx() as conn:
            self._known_schedule(conn, name)
            self._execute(conn, "DELETE FROM schedules WHERE name = ?", (name,))

    def backfill_schedule(
        self, name: str, start: int, end: int, now: int, *, code_version: str | None = None
    ) -> list[str]:
        """Start the ticks of ``name`` in ``[start, end]`` (epoch ms, not after ``now``)
        that have no execution yet, due now, whatever the catch-up window, overlap
        policy or pause; the ids started, oldest tick first."""
        if start > end:
            raise ValidationError("a backfill's start must not be later than its end")
        if end > now:
            raise ValidationError(
                "a backfill covers past ticks: its end is later than now (the schedule "
                "starts later ticks itself)"
            )
        with self._lock, self._tx() as conn:
            row = self._known_schedule(conn, name)
            ticks = ticks_between(row.cron, row.timezone, start, end, limit=MAX_BACKFILL + 1)
            if len(ticks) > MAX_BACKFILL:
                raise ValidationError(
                    f"a backfill starts at most {MAX_BACKFILL} ticks, this interval has "
                    "more; split it"
                )
            started = []
            last = (row.last_tick, row.last_execution)
            for tick in ticks:
                execution_id = self._start_tick(conn, row, tick, now, now, code_version)
                if execution_id is not None:
                    started.append(execution_id)
                    if last[0] is None or tick > last[0]:
                        last = (tick, execution_id)
            self._execute(
                conn,
                "UPDATE schedules SET last_tick = ?, last_execution = ? WHERE name = ?",
                (*last, name),
            )
            if started:
                self._notify(conn)
        return started

    def fire_due(self, now: int, *, code_version: str | None = None) -> list[str]:
        """Start the executions of every due tick of the unpaused schedules (see the
        module), in one write transaction; their ids. Cheap when nothing is due: one
        read, no write lock."""
        due = self._due_schedules()
        with self._lock:
            if not self._query(self._sql(f"SELECT 1 FROM schedules WHERE {due} LIMIT 1"), (now,)):
                return []
            started: list[str] = []
            with self._tx() as conn:
                rows = self._execute(
                    conn,
                    f"SELECT {_COLUMNS} FROM schedules WHERE {due} ORDER BY next_tick "
                    f"LIMIT ?{self._DUE_LOCK}",
                    (now, FIRE_BATCH),
                ).fetchall()
                for r in rows:
                    started += self._fire_schedule(conn, _row(r), now, code_version)
                if started:
                    self._notify(conn)
            return started

    def next_schedule_tick(self) -> int | None:
        """The earliest next tick of an unpaused schedule (epoch ms), or None."""
        with self._lock:
            rows = self._query(f"SELECT MIN(next_tick) FROM schedules WHERE {self._UNPAUSED}")
        return None if not rows or rows[0][0] is None else int(rows[0][0])
