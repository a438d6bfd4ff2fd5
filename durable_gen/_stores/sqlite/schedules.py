"""Schedules on the SQLite store: its dialect for the rules of ``_stores.schedule_store``
(where the exactly-once reasoning is): ``?`` placeholders, no row locks (every write
is ``BEGIN IMMEDIATE``, which holds the database's write lock), no notifications,
and a tick's id looked up before its start is inserted (``insert_start`` always
inserts)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from ..schedule_store import ScheduleStore
from .journal import _Journal, insert_start


class _Schedules(_Journal, ScheduleStore):
    """Declaring, listing, pausing, deleting, backfilling and firing schedules."""

    _UNPAUSED = "paused = 0"  # the partial index's term: SQLite matches it as written
    _ROW_LOCK = ""
    _DUE_LOCK = ""

    def _sql(self, text: str) -> str:
        return text

    def _notify(self, conn: Any) -> None:
        pass  # workers poll the database file

    def _insert_start(
        self,
        conn: sqlite3.Connection,
        execution_id: str,
        input_payload: str,
        now: int,
        *,
        wake_at: int,
        columns: Mapping[str, Any],
    ) -> int | None:
        if conn.execute("SELECT 1 FROM executions WHERE id = ?", (execution_id,)).fetchone():
            return None
        return insert_start(
            conn, execution_id, input_payload, now, wake_at=wake_at, columns=columns
        )
