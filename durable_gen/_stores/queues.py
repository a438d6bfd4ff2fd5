"""What every store with queues shares: the stored form of a queue and the two refusals.

A queue is a durable admission rule (``_engine.queues.Queue`` declares one): an
execution started onto it is due only while its partition has room. The store
decides admission in the transaction that takes the lease (``acquire``), so two
workers cannot both take the last slot; ``due`` only proposes what has room."""

from __future__ import annotations

import attrs

from .._core.contract import LeaseHeldError
from .._core.errors import ExecutionConflictError, StoreError

__all__ = ["DuplicateExecutionError", "QueueFullError", "QueueRow", "QueueStats"]


@attrs.frozen(kw_only=True)
class QueueRow:
    """A queue's limits as stored (None: no limit); limits hold per partition."""

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period_ms: int | None = None
    partitioned: bool = False


@attrs.frozen(kw_only=True)
class QueueStats:
    """A queue's load now: executions not yet admitted (``depth``), advancing
    (``running``: holding a lease), admitted and waiting (``sleeping``: a Wait, a
    callback, a retry), and first admissions in the last rate period (``started``)."""

    queue: QueueRow
    depth: int
    running: int
    sleeping: int
    started: int


class QueueFullError(LeaseHeldError):
    """The execution's queue (or partition) has no room for it now; it stays due."""

    def __init__(self, execution_id: str, queue: str, why: str) -> None:
        self.execution_id = execution_id
        self.queue = queue
        self.why = why
        self.owner = ""
        self.expires = 0
        StoreError.__init__(
            self,
            f"execution {execution_id!r} waits for room on queue {queue!r}: {why}",
            retryable=True,
        )


class DuplicateExecutionError(ExecutionConflictError):
    """A start with a dedup id that a queued or running execution of the queue holds."""

    def __init__(self, queue: str, dedup_id: str, existing_id: str) -> None:
        self.queue = queue
        self.dedup_id = dedup_id
        self.existing_id = existing_id
        super().__init__(
            f"dedup id {dedup_id!r:.80} is held by execution {existing_id!r} on queue "
            f"{queue!r}, which is queued or running; nothing was started (pass "
            "on_duplicate='existing' / --on-duplicate existing to get its id instead)"
        )
