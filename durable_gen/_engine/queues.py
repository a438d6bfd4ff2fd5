"""Queues: named, durable admission rules for executions.

``Queue("emails", concurrency=4, rate_limit=(50, 60.0))`` declares one;
``engine.add_queue(queue)`` records it in the store (again: new limits), and
``engine.start(workflow, input, queue="emails")`` starts an execution onto it. The
store admits a queued execution when a worker takes its lease, if the queue (each
partition of a partitioned queue, which has the queue's limits for itself) has room:

- ``concurrency``: at most N of its executions advancing at once, across every
  worker sharing the store;
- ``worker_concurrency``: at most N in one worker process;
- ``rate_limit=(N, SECONDS)``: first admissions (starts) spaced evenly, at least
  SECONDS / N apart, so any window of SECONDS holds at most N of them (20 per second:
  one every 50 ms, and 100 starts take 4.95 s at least);
- a start's ``priority`` (an integer, default 0): higher starts first; equal
  priorities start oldest first;
- a start's ``dedup_id``: a second start with the same id while the first is queued
  or running is refused (``DuplicateExecutionError``), or returns the first's id
  with ``on_duplicate="existing"``.

A queue counts an execution while it advances (holds its lease), not while it sleeps
in a Wait, waits for a callback or for a step's retry: a queue with
``concurrency=3`` may have many more executions started and sleeping.

A function ``Invoke``d by name (``engine.register(name, workflow, queue=...)``) or
served (``durable-gen serve --function-configs``, durable_gen's keys ``"Queue"`` and
``"Priority"`` beside Lambda's ``DurableConfig``) may be bound to a queue
(:class:`QueueBinding`): each execution of it starts on that queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from .._core.errors import ValidationError
from .._stores.queues import QueueRow, QueueStats

__all__ = [
    "BINDING_KEYS",
    "ON_DUPLICATE",
    "Queue",
    "QueueBinding",
    "QueueStats",
    "check_binding",
    "check_start_options",
    "queue_binding",
]

#: What a start with a dedup id held by a live execution does: raise, or return its id.
ON_DUPLICATE = ("error", "existing")
_NAME_MAX = 200
#: durable_gen's keys of a function's configuration, beside Lambda's ``DurableConfig``
BINDING_KEYS = ("Queue", "Priority")


def _positive_int(what: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{what} must be an integer of 1 or more (or None), got {value!r}")


def _name(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_MAX:
        raise ValidationError(
            f"a queue name must be a non-empty string of at most {_NAME_MAX} characters, "
            f"got {value!r:.80}"
        )


def _limit(instance: Any, attribute: Any, value: Any) -> None:
    _positive_int(attribute.name, value)


def _rate(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    ok = isinstance(value, tuple) and len(value) == 2
    if ok:
        n, seconds = value
        ok = (
            not isinstance(n, bool)
            and isinstance(n, int)
            and n >= 1
            and not isinstance(seconds, bool)
            and isinstance(seconds, (int, float))
            and math.isfinite(seconds)
            and seconds >= 0.001
        )
    if not ok:
        raise ValidationError(
            "rate_limit must be (starts, seconds): an integer of 1 or more and a period "
            f"of at least 0.001 s, got {value!r:.80}"
        )


@attrs.frozen
class Queue:
    """A named admission rule for executions (see the module); limits None: none."""

    name: str = attrs.field(validator=_name)
    concurrency: int | None = attrs.field(default=None, kw_only=True, validator=_limit)
    worker_concurrency: int | None = attrs.field(default=None, kw_only=True, validator=_limit)
    rate_limit: tuple[int, float] | None = attrs.field(default=None, kw_only=True, validator=_rate)
    partitioned: bool = attrs.field(default=False, kw_only=True)

    def to_row(self) -> QueueRow:
        rate = self.rate_limit
        return QueueRow(
            name=self.name,
            concurrency=self.concurrency,
            worker_concurrency=self.worker_concurrency,
            rate_limit=None if rate is None else rate[0],
            rate_period_ms=None if rate is None else max(1, round(rate[1] * 1000)),
            partitioned=bool(self.partitioned),
        )

    @classmethod
    def from_row(cls, row: QueueRow) -> Queue:
        rate = None
        if row.rate_limit is not None and row.rate_period_ms is not None:
            rate = (row.rate_limit, row.rate_period_ms / 1000)
        return cls(
            row.name,
            concurrency=row.concurrency,
            worker_concurrency=row.worker_concurrency,
            rate_limit=rate,
            partitioned=row.partitioned,
        )

    def describe(self) -> str:
        """Its limits in words: ``concurrency 4, 50 per 60 s``."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        if self.worker_concurrency is not None:
            parts.append(f"{self.worker_concurrency} per worker")
        if self.rate_limit is not None:
            parts.append(f"{self.rate_limit[0]} per {self.rate_limit[1]:g} s")
        if self.partitioned:
            parts.append("per partition")
        return ", ".join(parts) or "no limits"


def check_start_options(
    queue: str | None,
    priority: int,
    dedup_id: str | None,
    partition: str | None,
    on_duplicate: str,
) -> None:
    """Refuse queue options of a start that cannot be right whatever the store holds."""
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise ValidationError(f"queue must be a queue's name, got {queue!r:.80}")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError(f"priority must be an integer (higher first), got {priority!r:.80}")
    if not -(2**62) <= priority <= 2**62:
        raise ValidationError(f"priority must be within +-2**62, got {priority}")
    for what, value in (("dedup_id", dedup_id), ("partition", partition)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{what} must be a non-empty string, got {value!r:.80}")
    if on_duplicate not in ON_DUPLICATE:
        raise ValidationError(
            f"on_duplicate must be 'error' or 'existing', got {on_duplicate!r:.80}"
        )
    if queue is None:
        for what, value in (("dedup_id", dedup_id), ("partition", partition)):
            if value is not None:
                raise ValidationError(
                    f"{what} {value!r:.80} needs a queue: start it with queue=NAME (--queue NAME)"
                )
        if priority != 0:
            raise ValidationError(
                f"priority {priority} needs a queue: start it with queue=NAME (--queue NAME)"
            )


@attrs.frozen
class QueueBinding:
    """The queue (and priority) every execution of one function starts on."""

    queue: str
    priority: int = attrs.field(default=0, kw_only=True)

    def __attrs_post_init__(self) -> None:
        check_start_options(self.queue, self.priority, None, None, "error")

    def start_options(self) -> dict[str, Any]:
        """As keywords of ``start`` (and of a store's ``create``)."""
        return {"queue": self.queue, "priority": self.priority}


def queue_binding(name: str, config: Any) -> QueueBinding | None:
    """The queue binding in function ``name``'s configuration, ``{"Queue": "emails",
    "Priority": 5, "DurableConfig": {...}}`` (Priority optional), or None."""
    if not isinstance(config, Mapping) or not any(k in config for k in BINDING_KEYS):
        return None
    queue, priority = config.get("Queue"), config.get("Priority", 0)
    if queue is None:
        raise ValidationError(
            f'the configuration of function {name!r} has a Priority but no Queue; add "Queue": NAME'
        )
    try:
        return QueueBinding(queue, priority=priority)
    except ValidationError as e:
        raise ValidationError(f"the Queue or Priority of function {name!r}: {e}") from None


def check_binding(store: Any, name: str, binding: QueueBinding) -> None:
    """Refuse a binding of function ``name`` to a queue ``store`` does not have."""
    if not hasattr(store, "queue"):
        raise ValidationError(
            f"function {name!r} is bound to queue {binding.queue!r}, but "
            f"{type(store).__name__} has no queues (the SQLite and PostgreSQL stores have them)"
        )
    if store.queue(binding.queue) is None:
        known = ", ".join(repr(s.queue.name) for s in store.queue_stats()[:20]) or "none"
        raise ValidationError(
            f"function {name!r} is bound to queue {binding.queue!r:.80}, which does not "
            f"exist (queues: {known}); declare it first (durable-gen queue add "
            f"{binding.queue:.80})"
        )
