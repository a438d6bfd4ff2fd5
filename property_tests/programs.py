"""The project's generated programs: the public strategies of ``durable_gen.testing``.

Programs, their builder and the durable functions they invoke live in
``durable_gen.testing`` (users fuzz their engines and stores with them too); this
module adds what only the project's properties need.
"""

from __future__ import annotations

import random

from durable_gen import InMemoryEngine, MemoryStore, OperationStatus, OperationType
from durable_gen.testing import (
    PROGRAM_FUNCTIONS,
    CallbackAnswer,
    PendingCallback,
    build_workflow,
    programs,
    succeed,
)

__all__ = [
    "PROGRAM_FUNCTIONS",
    "Crash",
    "CrashingStore",
    "build_workflow",
    "chooser",
    "drive",
    "new_engine",
    "ops_strategy",
    "programs",
]


def chooser(seed: int):
    """A callback policy answering a random subset of the pending callbacks each round.

    The choice depends on the seed, the round (how many times the execution has
    waited on callbacks) and the callback's name -- logical points that crashes do
    not move -- so a crashed run sees the outside world act where the uninterrupted
    one did. The first pending callback of each round is always answered.
    """

    def policy(cb: PendingCallback) -> CallbackAnswer | None:
        rnd = random.Random(f"{seed}-{cb.round}-{cb.index}")
        if cb.index and rnd.random() < 0.5:
            return None
        return succeed(f"answer:{cb.name}")

    return policy


# -- the helpers older properties use (test_meter_property.py) -------------------


def ops_strategy(*, callbacks: bool = True, batches: bool = True):
    """Programs without Invoke (the engines of older properties register no functions)."""
    return programs(callbacks=callbacks, batches=batches, invokes=False)


class Crash(BaseException):
    """The process died (a BaseException: no workflow or step code catches it)."""


class CrashingStore(MemoryStore):
    """A memory store whose process "dies" right after the checkpoints numbered in
    ``crash_after`` (counting checkpoints that carried updates, from 1)."""

    def __init__(self, crash_after: set[int]):
        super().__init__()
        self.crash_after = crash_after
        self.checkpoints = 0

    def checkpoint(self, execution_id, updates, now, *, durable):
        delta = super().checkpoint(execution_id, updates, now, durable=durable)
        if updates:
            self.checkpoints += 1
            if self.checkpoints in self.crash_after:
                raise Crash
        return delta


def new_engine(store):
    return InMemoryEngine(store=store, functions=PROGRAM_FUNCTIONS)


def drive(engine, workflow, execution_id, choose=None, crash=BaseException):
    """Resume until done, succeeding pending callbacks whenever the execution waits on them.

    ``choose(pending)`` picks which of the pending callback operations to complete;
    a ``crash`` raised by the store is followed by a resume.
    """
    for _ in range(500):
        try:
            result = engine.resume(workflow, execution_id)
        except crash:
            continue
        if result.status != "RUNNING":
            return result
        pending = sorted(
            (
                op
                for op in engine.store.load(execution_id).values()
                if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
            ),
            key=lambda op: op.id,
        )
        if choose is not None and pending:
            pending = choose(pending)
        for op in pending:
            engine.store.complete_callback(
                op.callback_id, "succeed", engine.clock.now(), payload=f"answer:{op.name}"
            )
        if not pending:
            nxt = engine.store.next_timer(execution_id)
            assert nxt is not None, "blocked with nothing to complete"
            engine.clock.sleep_until(nxt)
    raise AssertionError("did not finish")
