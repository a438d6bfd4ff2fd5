"""Execution timeouts on the in-memory engine (issue 26, item 3), on a virtual clock: the
same TIMED_OUT end, events and closed operations as the SQLite engine
(tests/test_timeouts.py)."""

from __future__ import annotations

import datetime

import pytest

from durable_gen import CreateCallback, Step, Wait
from durable_gen._core.errors import ValidationError
from durable_gen._core.service import InvalidUpdateError
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.memory import InMemoryEngine

HOUR = 3_600_000


def waits_a_month(_):  # type: ignore[no-untyped-def]
    yield Step(lambda: 1, name="before")
    yield Wait(seconds=30 * 24 * 3600)
    return "late"


def awaits_a_callback(_):  # type: ignore[no-untyped-def]
    cb = yield CreateCallback(name="approval")
    return (yield cb.result())


def test_a_waiting_execution_times_out_at_its_deadline_with_lambdas_event():
    clock = VirtualClock()
    engine = InMemoryEngine(clock=clock)
    began = clock.now()
    result = engine.run(waits_a_month, None, timeout=3600, execution_id="w")
    assert result.status == "TIMED_OUT"
    assert clock.now() == began + HOUR  # slept to the deadline, not 30 days
    assert result.error is not None
    assert result.error.message == "Execution timed out after 3600 seconds."
    history = engine.store.history("w")
    assert history[0]["ExecutionStartedDetails"]["ExecutionTimeout"] == 3600
    assert [e["EventType"] for e in history][-2:] == ["WaitCancelled", "ExecutionTimedOut"]
    assert history[-1]["EventTimestamp"] == began + HOUR
    ops = engine.store.load("w")
    assert ops["w"].status.value == "TIMED_OUT"
    (wait,) = [op for op in ops.values() if op.type.value == "WAIT"]
    assert wait.status.value == "CANCELLED"
    assert engine.resume(waits_a_month, "w").status == "TIMED_OUT"  # ended once
    assert engine.store.history("w") == history


def test_without_a_timeout_the_wait_ends_and_so_does_the_execution():
    engine = InMemoryEngine()
    assert engine.run(waits_a_month, None).result == "late"
    assert engine.run(waits_a_month, None, timeout=31 * 24 * 3600).result == "late"


def test_a_deadline_closes_a_pending_callback():
    clock = VirtualClock()
    engine = InMemoryEngine(clock=clock)
    deadline = datetime.datetime.fromtimestamp(clock.now() / 1000 + 60, datetime.UTC)
    result = engine.run(awaits_a_callback, None, deadline=deadline, execution_id="c")
    assert result.status == "RUNNING"  # time is not skipped while a callback is open
    (cb,) = [op for op in engine.store.load("c").values() if op.type.value == "CALLBACK"]
    clock.advance(60)
    result = engine.resume(awaits_a_callback, "c")
    assert result.status == "TIMED_OUT"
    assert result.error is not None
    assert result.error.message == "Execution timed out after 60 seconds."
    assert engine.store.load("c")[cb.id].status.value == "TIMED_OUT"
    assert [e["EventType"] for e in engine.store.history("c")][-2:] == [
        "CallbackTimedOut",
        "ExecutionTimedOut",
    ]
    with pytest.raises(InvalidUpdateError, match=r"already ended TIMED_OUT"):
        engine.store.complete_callback(cb.callback_id, "succeed", clock.now(), payload='"ok"')


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"timeout": -1}, r"^timeout must be"),
        (
            {"deadline": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)},
            r"^deadline 2020-01-01T00:00:00\+00:00 has already passed",
        ),
    ],
)
def test_bad_timeouts_are_refused_and_record_nothing(kw, message):
    engine = InMemoryEngine()
    with pytest.raises(ValidationError, match=message):
        engine.start(waits_a_month, None, execution_id="x", **kw)
    assert not engine.store.exists("x")
