"""Pause, resume and delete (Lambda's Pause/Resume/DeleteDurableExecution) on every durable
store, driven by the durable engine."""

from __future__ import annotations

import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    CreateCallback,
    DurableEngine,
    ExecutionConflictError,
    ExecutionNotFoundError,
    Step,
    VirtualClock,
)

T0 = 1_767_225_600_000


def test_a_pause_during_a_step_keeps_its_result_and_nothing_advances_until_resumed(durable):
    calls: list[str] = []
    outside = durable.view()

    def first() -> str:
        calls.append("first")
        # asked while the worker runs this step: PAUSING until its next checkpoint
        assert outside.pause("p", T0, reason="maintenance") == "PAUSING"
        return "one"

    def second() -> str:
        calls.append("second")
        return "two"

    def wf(_):
        a = yield Step(first, name="first", semantics=AT_MOST_ONCE_PER_RETRY)
        b = yield Step(second, name="second")
        return [a, b]

    with DurableEngine(durable.view(), clock=VirtualClock(start=T0)) as engine:
        engine.start(wf, execution_id="p")
        result = engine.resume(wf, "p")
        assert result.status == "PAUSED"
        assert calls == ["first"]
        first_op = next(op for op in result.operations if op.name == "first")
        assert first_op.status.value == "SUCCEEDED"  # its checkpoint was recorded
        assert engine.store.due(2**62) == []  # a paused execution is not due
        assert engine.resume(wf, "p").status == "PAUSED"  # and nothing advances it
        assert calls == ["first"]
        assert outside.pause("p", T0) == "PAUSED"  # again: no change
        outside.resume_paused("p", engine.clock.now(), reason="done")
        assert engine.store.due(engine.clock.now()) == ["p"]
        assert engine.resume(wf, "p").status == "SUCCEEDED"
    assert calls == ["first", "second"]  # nothing ran twice
    assert outside.status("p")[0] == "SUCCEEDED"
    events = [e["EventType"] for e in outside.history("p")]
    assert events.count("ExecutionPaused") == 1
    assert events.count("ExecutionResumed") == 1
    paused = next(e for e in outside.history("p") if e["EventType"] == "ExecutionPaused")
    assert paused["ExecutionPausedDetails"] == {
        "PauseRequestTimestamp": T0,
        "Reason": "maintenance",
    }
    completed = [e for e in outside.history("p") if e["EventType"] == "InvocationCompleted"]
    assert all("Error" not in e["InvocationCompletedDetails"] for e in completed)


def test_a_callback_completed_while_paused_is_applied_on_resume(durable):

    def wf(_):
        cb = yield CreateCallback(name="approve", timeout=3600)
        return (yield cb.result())

    with DurableEngine(durable.view(), clock=VirtualClock(start=T0)) as engine:
        engine.start(wf, execution_id="c")
        assert engine.resume(wf, "c", wait=False).status == "RUNNING"
        store = engine.store
        assert store.pause("c", T0) == "PAUSED"  # nobody advances it: paused at once
        callback_id = next(op.callback_id for op in store.load("c").values() if op.callback_id)
        assert callback_id is not None
        store.complete_callback(callback_id, "succeed", T0 + 5, payload="yes")
        assert store.due(2**62) == []
        assert engine.resume(wf, "c").status == "PAUSED"
        store.resume_paused("c", engine.clock.now())
        assert engine.resume(wf, "c").status == "SUCCEEDED"
        assert store.status("c")[:2] == ("SUCCEEDED", '"yes"')


def test_management_refuses_what_the_state_does_not_allow_and_changes_nothing(durable):

    def wf(_):
        return (yield Step(str, 1, name="s"))

    with DurableEngine(durable.view(), clock=VirtualClock(start=T0)) as engine:
        store = engine.store
        engine.start(wf, execution_id="r")
        with pytest.raises(
            ExecutionConflictError,
            match=r"^execution 'r' is RUNNING, not paused; only a paused execution can be "
            r"resumed$",
        ):
            store.resume_paused("r", T0)
        with pytest.raises(
            ExecutionConflictError,
            match=r"^execution 'r' is RUNNING; only an ended execution can be deleted: stop "
            r"it first \(or force the deletion\)$",
        ):
            store.delete("r")
        engine.resume(wf, "r")
        with pytest.raises(
            ExecutionConflictError,
            match=r"^execution 'r' already ended SUCCEEDED; only a running execution can be "
            r"paused$",
        ):
            store.pause("r", T0)
        assert store.status("r")[0] == "SUCCEEDED"
        with pytest.raises(ExecutionNotFoundError, match=r"^no execution with id 'nope'$"):
            store.pause("nope", T0)


def test_delete_removes_the_execution_its_history_and_its_callbacks(durable):
    def wf(_):
        cb = yield CreateCallback(name="approve", timeout=3600)
        return (yield cb.result())

    with DurableEngine(durable.view(), clock=VirtualClock(start=T0)) as engine:
        store = engine.store
        for ex in ("keep", "gone"):
            engine.start(wf, execution_id=ex)
            engine.resume(wf, ex, wait=False)
        gone_cb = next(op.callback_id for op in store.load("gone").values() if op.callback_id)
        assert gone_cb is not None
        store.stop("gone", T0 + 1)
        store.delete("gone")
        other = durable.view()
        assert not other.exists("gone")
        with pytest.raises(ExecutionNotFoundError):
            other.history("gone")
        with pytest.raises(ExecutionNotFoundError):
            other.callback_execution(gone_cb)
        assert [i.id for i in other.executions()] == ["keep"]
        assert len(other.history("keep")) > 1  # the other execution is untouched
        store.delete("keep", force=True)  # running: only when forced
        assert other.executions() == []
