"""Schedules on the PostgreSQL store: its dialect for the rules of
``_stores.schedule_store`` (where the exactly-once reasoning is): ``%s``
placeholders, rows locked ``FOR UPDATE`` (the due ones ``FOR UPDATE SKIP LOCKED``),
a NOTIFY after the writes that may start work, starts inserted ``ON CONFLICT (id) DO
NOTHING`` (``insert_start``); a tick's execution may go onto a queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..schedule_store import ScheduleStore
from .journal import _Journal, insert_start


class _Schedules(_Journal, ScheduleStore):
    """Declaring, listing, pausing, deleting, backfilling and firing schedules."""

    _UNPAUSED = "NOT paused"
    _ROW_LOCK = " FOR UPDATE"
    _DUE_LOCK = " FOR UPDATE SKIP LOCKED"

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")

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
        # None when the id exists (ON CONFLICT DO NOTHING)
        return insert_start(
            conn, execution_id, input_payload, now, wake_at=wake_at, columns=columns
        )
