"""An invocation ended by ``sys.exit`` (Lambda's Runtime.ExitError) keeps what it
handed over: an interrupted child context is resumed, not started over (AWS's
conformance requirement 3-12)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from durable_gen import ChildContext, OperationStatus, OperationType, Step
from durable_gen._core.log import (
    Operation,
    OperationUpdate,
)
from durable_gen._engine.driver import run_invocation
from durable_gen._stores.memory import MemoryStore

EX = "ex-1"


class BufferingStore:
    """A store that, like the SQLite one, keeps ``durable=False`` updates in memory
    until the next durable checkpoint; ``lose_buffer`` is the process dying."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.inner.create(EX, '"v"', 0)
        self.buffer: list[OperationUpdate] = []

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        return self.inner.load(execution_id)

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        self.buffer.extend(updates)
        if not durable:
            return {}
        batch, self.buffer = self.buffer, []
        return self.inner.checkpoint(execution_id, batch, now, durable=True)

    def lose_buffer(self) -> None:
        self.buffer.clear()


crashes = {"left": 1}
runs: list[str] = []


def crash_once(value: str) -> str:
    runs.append(value)
    if crashes["left"]:
        crashes["left"] -= 1
        raise SystemExit(1)
    return value


class Killed(BaseException):
    """The process is killed outright (nothing unwinds through the handler)."""


def kill(value: str) -> str:
    raise Killed


def child(value: str) -> Any:
    return (yield Step(crash_once, value, name="inner"))


def workflow(event: str) -> Any:
    return (yield ChildContext(child, event, name="ctx"))


def statuses(store: BufferingStore) -> dict[str | None, OperationStatus]:
    return {
        op.name: op.status
        for op in store.load(EX).values()
        if op.type is not OperationType.EXECUTION
    }


def test_sys_exit_makes_buffered_starts_durable_and_the_next_invocation_resumes() -> None:
    crashes["left"] = 1
    runs.clear()
    store = BufferingStore()
    with pytest.raises(SystemExit):
        run_invocation(workflow, EX, store, lambda: 1000)
    store.lose_buffer()  # the process is gone
    assert statuses(store) == {"ctx": OperationStatus.STARTED, "inner": OperationStatus.STARTED}
    outcome = run_invocation(workflow, EX, store, lambda: 2000)
    assert (outcome.status, outcome.value) == ("SUCCEEDED", "v")
    assert runs == ["v", "v"]  # at least once: the interrupted attempt ran again
    assert statuses(store) == {
        "ctx": OperationStatus.SUCCEEDED,
        "inner": OperationStatus.SUCCEEDED,
    }
    starts = [
        u for u in store.inner._executions[EX].updates if u.action.value == "START"
    ]  # one START each: the resumed context replays, it does not start again
    assert sorted(u.name or "" for u in starts) == ["ctx", "inner"]


def test_a_process_killed_outright_loses_what_was_not_durable() -> None:
    store = BufferingStore()

    def wf(event: str) -> Any:
        return (yield ChildContext(lambda v: (yield Step(kill, v)), event))

    with pytest.raises(Killed):
        run_invocation(wf, EX, store, lambda: 1000)
    store.lose_buffer()
    assert statuses(store) == {}
