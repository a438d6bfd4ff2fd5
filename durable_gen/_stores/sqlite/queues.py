"""Queues on the SQLite store: its dialect for the rules of ``_stores.queue_store``
(where admission, due listing and the reasoning are): ``?`` placeholders, ``IS`` for
NULL-safe equality, and no row locks -- every write transaction (``BEGIN
IMMEDIATE``) holds the file, so admissions run one at a time."""

from __future__ import annotations

from ..queue_store import QueueStore, process_of
from .journal import _Journal

__all__ = ["_Queues", "process_of"]


class _Queues(_Journal, QueueStore):
    """Declaring, listing and deleting queues; admission; due queued executions."""

    _SAME = "IS"
    _QUEUE_SHARE = ""
    _QUEUE_LOCK = ""

    def _sql(self, text: str) -> str:
        return text
