"""Queues on the PostgreSQL store: its dialect for the rules of
``_stores.queue_store`` (where admission, due listing and the reasoning are):
``%s`` placeholders, ``IS NOT DISTINCT FROM`` for NULL-safe equality, the server's
clock, and locks -- transactions run side by side here, so a partition's admissions
are serialized by a transaction-scoped advisory lock (:meth:`_Queues._lock_partition`),
a start reads its queue's row ``FOR SHARE`` and a change or deletion of the queue
locks it ``FOR UPDATE`` (a queue deleted while a start onto it commits would leave
that execution with no rule)."""

from __future__ import annotations

from typing import Any

from ..queue_store import QueueStore, partition_key
from .journal import _Journal
from .schema import SERVER_NOW

#: The first key of the advisory locks of queue partitions and dedup ids ("dgqu"); the
#: second is :func:`~durable_gen._stores.queue_store.partition_key`. The two-key form
#: keeps them apart from the one-key locks of owners and of schema setup.
QUEUE_LOCK_CLASS = 0x64677175


class _Queues(_Journal, QueueStore):
    """Declaring, listing and deleting queues; admission; due queued executions."""

    _SAME = "IS NOT DISTINCT FROM"
    _QUEUE_SHARE = " FOR SHARE"
    _QUEUE_LOCK = " FOR UPDATE"

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def _lock_partition(self, conn: Any, parts: tuple[str | None, ...], real: int) -> int:
        # held until the transaction ends (its commit makes what it wrote visible to
        # the next holder, whose READ COMMITTED statements then count it)
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s::integer, %s::integer)",
            (QUEUE_LOCK_CLASS, partition_key(*parts)),
        )
        (now,) = conn.execute(f"SELECT {SERVER_NOW}").fetchone()
        return int(now)

    def _clock_now(self) -> int:
        return int(self._query(f"SELECT {SERVER_NOW}")[0][0])
