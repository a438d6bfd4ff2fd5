"""Tests that kill the mutants of durable_gen/_core/interpreter/steps.py (issue 29).

The interpreter is pure, so most tests hand it a log, let it run, and compare the
commands and updates it produces; the rest run a workflow in a child context with
the testing runner and compare every recorded operation.
"""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    CompletionPolicy,
    Parallel,
    RetryPolicy,
    Step,
    Wait,
    WaitForCondition,
    WaitStrategy,
)
from durable_gen._core.commands import Checkpoint, Complete, RunStep, Suspend
from durable_gen._core.errors import (
    CorruptLogError,
    ErrorObject,
    StepError,
    WaitForConditionError,
    qualified_name,
)
from durable_gen._core.interpreter import Interpreter
from durable_gen._core.log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    operation_id,
)
from durable_gen._core.retry import Jitter
from durable_gen._core.serdes import JsonSerdes
from durable_gen.testing import WorkflowRunner

S = OperationStatus
A = OperationAction
OP1 = operation_id(None, 1)
NOW = 50_000


def drive(wf, ops, now=NOW, **kw) -> list[Any]:
    """Run one invocation: run steps for real, acknowledge checkpoints; all commands."""
    interp = Interpreter(wf, None, ops, now=now, execution_id="e", **kw)
    out: list[Any] = []
    while True:
        cmd = interp.next_command()
        out.append(cmd)
        if isinstance(cmd, RunStep):
            try:
                interp.step_returned(cmd.op_id, cmd.fn(*cmd.args))
            except Exception as e:
                interp.step_raised(cmd.op_id, e)
        elif isinstance(cmd, Checkpoint):
            interp.checkpointed({})
        else:
            return out


def updates(cmds) -> list[Any]:
    return [u for c in cmds for u in c.updates]


def _op(status, sub_type="Step", **kw):
    return {
        OP1: Operation(
            id=OP1,
            type=OperationType.STEP,
            status=status,
            start_timestamp=0,
            sub_type=sub_type,
            **kw,
        )
    }


def catching(desc_factory):
    def wf(_):
        try:
            return ("ok", (yield desc_factory()))
        except (StepError, WaitForConditionError) as e:
            return (
                type(e).__name__,
                e.error_type,
                e.error_message,
                e.operation_name,
                e.operation_id,
            )

    return wf


def never(*_):
    raise AssertionError("user code ran during replay")


# -- steps ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.CANCELLED, S.TIMED_OUT, S.STOPPED])
def test_a_step_that_ended_without_a_result_raises_step_error(status):
    cmds = drive(catching(lambda: Step(never, name="s")), _op(status, name="s"))
    assert isinstance(cmds[-1], Complete)
    assert cmds[-1].value == (
        "StepError",
        qualified_name(StepError),
        f"the operation ended {status.value}",
        "s",
        OP1,
    )


def test_a_step_that_ended_with_a_recorded_error_raises_it():
    ops = _op(S.TIMED_OUT, name="s", error=ErrorObject(type="T", message="m"))
    cmds = drive(catching(lambda: Step(never, name="s")), ops)
    assert cmds[-1].value == ("StepError", "T", "m", "s", OP1)


@pytest.mark.parametrize(("name", "shown"), [("s", "s")])
def test_an_interrupted_at_most_once_attempt_is_not_run_again(name, shown):
    ops = _op(S.STARTED, name=name, attempt=1)
    wf = catching(
        lambda: Step(never, name=name, semantics=AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.none())
    )
    cmds = drive(wf, ops)
    # AWS's SDK's words and class, so that the history reads the same on both
    message = f"Step operation_id={OP1} name={shown} was previously interrupted"
    wire = "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    (fail,) = [u for u in updates(cmds) if u.action is A.FAIL]
    assert fail.error == ErrorObject(type=wire, message=message)
    assert cmds[-1].value == ("StepError", wire, message, name, OP1)


def test_an_interrupted_at_most_once_attempt_is_retried_by_its_policy():
    ops = _op(S.STARTED, name="s")
    wf = catching(
        lambda: Step(never, name="s", semantics=AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.fixed(3))
    )
    cmds = drive(wf, ops)
    assert isinstance(cmds[-1], Suspend)
    assert cmds[-1].wake_at == NOW + 3000
    (retry,) = updates(cmds)
    assert (retry.action, retry.next_attempt_delay_seconds) == (A.RETRY, 3)


def test_an_interrupted_at_least_once_attempt_runs_again_lazily():
    cmds = drive(catching(lambda: Step(lambda: 7, name="s")), _op(S.STARTED, name="s", attempt=2))
    run = cmds[0]
    assert isinstance(run, RunStep)
    assert (run.attempt, run.durable_first, run.updates) == (3, False, [])
    assert cmds[-1].value == ("ok", 7)


@pytest.mark.parametrize(
    ("status", "due", "runs"),
    [
        (S.PENDING, NOW, True),  # due now: runs
        (S.PENDING, NOW + 1, False),  # 1 ms early: parks until due
        (S.PENDING, None, True),  # no due time recorded: runs
        (S.READY, NOW + 1, True),  # the service fired the timer: runs
    ],
)
@pytest.mark.parametrize("semantics", ["least", "most"])
def test_a_retry_runs_when_due_and_parks_until_then(status, due, runs, semantics):
    kw = {"semantics": AT_MOST_ONCE_PER_RETRY} if semantics == "most" else {}
    ops = _op(status, name="s", attempt=1, next_attempt_timestamp=due)
    cmds = drive(catching(lambda: Step(lambda: 7, name="s", **kw)), ops)
    if not runs:
        assert [type(c) for c in cmds] == [Suspend]
        assert cmds[0].wake_at == due
        assert cmds[0].updates == []
        return
    run = cmds[0]
    assert isinstance(run, RunStep)
    assert run.attempt == 2
    assert run.durable_first is (semantics == "most")
    assert [(u.action, u.name, u.sub_type, u.parent_id) for u in run.updates] == [
        (A.START, "s", "Step", None)
    ]
    assert cmds[-1].value == ("ok", 7)


def test_check_args_off_records_no_digest():
    def wf(_):
        return (yield Step(lambda x: x, 1, name="s"))

    (start,) = [u for u in updates(drive(wf, {}, check_args=False)) if u.action is A.START]
    assert start.args_digest is None
    (start,) = [u for u in updates(drive(wf, {}, check_args=True)) if u.action is A.START]
    assert start.args_digest is not None


# -- wait for condition -----------------------------------------------------------------


def _wfc(check=never, strategy=None, serdes=None):
    strategy = strategy or WaitStrategy(
        should_continue=lambda s: s < 3,
        max_attempts=5,
        initial_delay=2,
        max_delay=2,
        backoff_rate=1,
    )
    return WaitForCondition(check, 0, strategy, name="poll", serdes=serdes)


def test_a_finished_wait_for_condition_replays_its_state():
    cmds = drive(catching(_wfc), _op(S.SUCCEEDED, "WaitForCondition", name="poll", result="3"))
    assert (type(cmds[-1]), cmds[-1].value) == (Complete, ("ok", 3))


@pytest.mark.parametrize("status", [S.FAILED, S.TIMED_OUT])
def test_a_wait_for_condition_that_ended_raises(status):
    cmds = drive(catching(_wfc), _op(status, "WaitForCondition", name="poll"))
    assert cmds[-1].value == (
        "WaitForConditionError",
        qualified_name(WaitForConditionError),
        f"the operation ended {status.value}",
        "poll",
        OP1,
    )


@pytest.mark.parametrize(
    ("status", "due", "runs"),
    [
        (S.PENDING, NOW, True),
        (S.PENDING, NOW + 1, False),
        (S.PENDING, None, True),
        (S.READY, NOW + 1, True),
        (S.STARTED, NOW + 1, True),
    ],
)
def test_a_wait_for_condition_polls_again_with_its_recorded_state(status, due, runs):
    seen = []

    def check(state):
        seen.append(state)
        return state + 1

    ops = _op(
        status, "WaitForCondition", name="poll", attempt=1, result="2", next_attempt_timestamp=due
    )
    cmds = drive(catching(lambda: _wfc(check)), ops)
    if not runs:
        assert [type(c) for c in cmds] == [Suspend]
        assert cmds[0].wake_at == due
        assert seen == []
        return
    run = cmds[0]
    assert (type(run), run.attempt, run.durable_first, run.args) == (RunStep, 2, False, (2,))
    starts = [(u.action, u.name, u.sub_type) for u in run.updates]
    assert starts == ([] if status is S.STARTED else [(A.START, "poll", "WaitForCondition")])
    assert seen == [2]
    assert cmds[-1].value == ("ok", 3)
    (succeed,) = [u for u in updates(cmds) if u.action is A.SUCCEED]
    assert (succeed.payload, succeed.sub_type, succeed.name) == ("3", "WaitForCondition", "poll")


def test_a_wait_for_condition_without_recorded_state_starts_from_the_initial_state():
    seen = []

    def check(state):
        seen.append(state)
        return 5

    ops = _op(S.READY, "WaitForCondition", name="poll", attempt=1)
    drive(catching(lambda: _wfc(check)), ops)
    assert seen == [0]


def test_an_unmet_condition_records_its_state_and_parks_for_the_delay():
    cmds = drive(catching(lambda: _wfc(lambda s: s + 1)), {})
    assert isinstance(cmds[-1], Suspend)
    assert cmds[-1].wake_at == NOW + 2000
    retry = [u for u in updates(cmds) if u.action is A.RETRY]
    assert [
        (u.payload, u.next_attempt_delay_seconds, u.sub_type, u.name, u.error) for u in retry
    ] == [("1", 2, "WaitForCondition", "poll", None)]


@pytest.mark.parametrize(("attempts", "polls"), [(1, "1 poll"), (2, "2 polls")])
def test_an_exhausted_condition_fails_with_its_last_state(attempts, polls):
    strategy = WaitStrategy(should_continue=lambda s: True, max_attempts=attempts)
    ops = (
        {}
        if attempts == 1
        else _op(S.READY, "WaitForCondition", name="poll", attempt=1, result="1")
    )
    cmds = drive(catching(lambda: _wfc(lambda s: s + 1, strategy)), ops)
    (fail,) = [u for u in updates(cmds) if u.action is A.FAIL]
    assert fail.error == ErrorObject(
        type=qualified_name(WaitForConditionError),
        message=f"the condition was still unmet after {polls}",
        data=str(attempts),
    )
    assert cmds[-1].value[0] == "WaitForConditionError"


def test_should_continue_raising_reaches_the_workflow():
    def boom(_):
        raise KeyError("predicate")

    def wf(_):
        try:
            yield _wfc(lambda s: s + 1, WaitStrategy(should_continue=boom))
        except KeyError as e:
            return f"caught {e}"

    assert drive(wf, {})[-1].value == "caught 'predicate'"


class Tagged(JsonSerdes):
    """JSON on the wire, a tagged dict in the workflow."""

    def serialize(self, value):
        return (
            super().serialize(value["v"]) if isinstance(value, dict) else super().serialize(value)
        )

    def deserialize(self, payload):
        return {"v": super().deserialize(payload)}


def test_custom_serdes_round_trips_step_and_condition_values():
    def wf(_):
        a = yield Step(lambda: {"v": 1}, name="s", serdes=Tagged())
        b = yield WaitForCondition(
            lambda s: {"v": 9},
            {"v": 0},
            WaitStrategy(should_continue=lambda s: False),
            name="poll",
            serdes=Tagged(),
        )
        return [a, b]

    cmds = drive(wf, {})
    assert cmds[-1].value == [{"v": 1}, {"v": 9}]
    assert [u.payload for u in updates(cmds) if u.action is A.SUCCEED] == ["1", "9"]


class NotAString(JsonSerdes):
    def serialize(self, value):
        return b"bytes"


def test_a_step_whose_serdes_returns_bytes_fails_the_step():
    def wf(_):
        return (yield Step(lambda: 1, name="s", serdes=NotAString(), retry=RetryPolicy.none()))

    cmds = drive(
        catching(lambda: Step(lambda: 1, name="s", serdes=NotAString(), retry=RetryPolicy.none())),
        {},
    )
    (fail,) = [u for u in updates(cmds) if u.action is A.FAIL]
    assert fail.error.message == (
        "step 's' returned a value that cannot be stored: serdes NotAString.serialize "
        "returned bytes, not str"
    )
    assert fail.error.type.endswith("SerializationError")


def test_a_condition_state_that_cannot_be_stored_fails_the_operation():
    stop = WaitStrategy(should_continue=lambda s: False)
    cmds = drive(catching(lambda: _wfc(lambda s: object(), stop)), {})
    (fail,) = [u for u in updates(cmds) if u.action is A.FAIL]
    assert fail.error.type.endswith("SerializationError")
    assert fail.error.message.startswith("the state of WaitForCondition 'poll' cannot be stored: ")
    assert (fail.sub_type, fail.name) == ("WaitForCondition", "poll")
    assert cmds[-1].value[0] == "WaitForConditionError"


# -- waits ------------------------------------------------------------------------------


def test_a_started_wait_parks_until_its_recorded_end():
    ops = {
        OP1: Operation(
            id=OP1,
            type=OperationType.WAIT,
            status=S.STARTED,
            start_timestamp=0,
            sub_type="Wait",
            scheduled_end_timestamp=NOW + 5,
        )
    }

    def wf(_):
        yield Wait(seconds=10)
        return "done"

    cmds = drive(wf, ops)
    assert [type(c) for c in cmds] == [Suspend]
    assert (cmds[0].wake_at, cmds[0].updates) == (NOW + 5, [])
    done = {
        OP1: Operation(
            id=OP1, type=OperationType.WAIT, status=S.SUCCEEDED, start_timestamp=0, sub_type="Wait"
        )
    }
    assert drive(wf, done)[-1].value == "done"


def test_a_started_wait_without_an_end_is_a_corrupt_log():
    ops = {
        OP1: Operation(
            id=OP1, type=OperationType.WAIT, status=S.STARTED, start_timestamp=0, sub_type="Wait"
        )
    }

    def wf(_):
        yield Wait(seconds=10)

    with pytest.raises(CorruptLogError, match=r"a started wait has no ScheduledEndTimestamp$"):
        drive(wf, ops)


# -- everything under a child context, through the runner -----------------------------


def test_every_operation_in_a_child_context_records_its_parent():
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 2:
            raise RuntimeError("once")
        return "ok"

    def inner(_):
        a = yield Step(flaky, name="flaky", retry=RetryPolicy.fixed(1))
        b = yield WaitForCondition(
            lambda s: s + 1,
            0,
            WaitStrategy(
                should_continue=lambda s: s < 2, initial_delay=1, max_delay=1, backoff_rate=1
            ),
            name="poll",
        )
        yield Wait(seconds=1, name="nap")
        failed = yield Step(lambda: 1 / 0, name="bad", retry=RetryPolicy.none())
        return [a, b, failed]

    def flow(_):
        try:
            return (yield ChildContext(inner, None, name="child"))
        except Exception as e:
            return type(e).__name__

    runner = WorkflowRunner()
    runner.run(flow)
    ops = runner.operations
    (child,) = [op for op in ops if op.name == "child"]
    inside = [op for op in ops if op is not child]
    assert [(op.name, op.status.value, op.attempt) for op in inside] == [
        ("flaky", "SUCCEEDED", 2),
        ("poll", "SUCCEEDED", 2),
        ("nap", "SUCCEEDED", None),
        ("bad", "FAILED", 1),
    ]
    assert {op.parent_id for op in inside} == {child.id}
    events = [e for e in runner.history() if e.get("Name") in ("flaky", "poll", "nap", "bad")]
    assert all(e["ParentId"] == child.id for e in events)
    assert [e["EventType"] for e in events if e["Name"] == "flaky"] == [
        "StepStarted",
        "StepFailed",
        "StepStarted",
        "StepSucceeded",
    ]
    assert [e["EventType"] for e in events if e["Name"] == "poll"] == [
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepSucceeded",
    ]


# -- second round: the survivors of the first ------------------------------------------


def test_every_update_inside_a_child_context_names_its_parent():
    # The service records ParentId when an operation starts; AWS expects it on every
    # update of the operation, so the interpreter must send it each time.
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 2:
            raise RuntimeError("once")
        return "ok"

    def inner(_):
        a = yield Step(flaky, name="flaky", retry=RetryPolicy.fixed(1))
        b = yield WaitForCondition(
            lambda s: s + 1,
            0,
            WaitStrategy(
                should_continue=lambda s: s < 2, initial_delay=1, max_delay=1, backoff_rate=1
            ),
            name="poll",
        )
        yield Wait(seconds=1, name="nap")
        with contextlib.suppress(StepError):
            yield Step(lambda: 1 / 0, name="bad", retry=RetryPolicy.none())
        with contextlib.suppress(WaitForConditionError):
            yield WaitForCondition(
                lambda s: s,
                0,
                WaitStrategy(should_continue=lambda s: True, max_attempts=1),
                name="never",
            )
        return [a, b]

    def flow(_):
        return (yield ChildContext(inner, None, name="child"))

    runner = WorkflowRunner()
    sent = []
    checkpoint = runner.store.checkpoint

    def recording(execution_id, updates, now, **kw):
        sent.extend(updates)
        return checkpoint(execution_id, updates, now, **kw)

    runner.store.checkpoint = recording
    assert runner.run(flow).result == ["ok", 2]
    (child,) = [op for op in runner.operations if op.name == "child"]
    inside = [u for u in sent if u.id != child.id and u.type is not OperationType.EXECUTION]
    assert {(u.name, u.action.value) for u in inside} >= {
        ("flaky", "START"),
        ("flaky", "RETRY"),
        ("flaky", "SUCCEED"),
        ("poll", "START"),
        ("poll", "RETRY"),
        ("poll", "SUCCEED"),
        ("nap", "START"),
        ("bad", "FAIL"),
        ("never", "FAIL"),
    }
    assert [u for u in inside if u.parent_id != child.id] == []
    (retry,) = [u for u in inside if (u.name, u.action.value) == ("flaky", "RETRY")]
    assert retry.payload is None


def _parallel_then(abandoned, then):
    """A Parallel whose first branch parks and is abandoned, then ``then``."""

    def fast():
        return (yield Step(lambda: "a", name="fast"))

    def wf(_):
        yield Parallel([abandoned, fast], completion=CompletionPolicy.first_successful())
        yield then()
        return "done"

    return wf


def _failing_step(delay):
    def fail():
        raise RuntimeError("no")

    return Step(fail, name="retried", retry=RetryPolicy.fixed(delay))


def _slow(kind):
    def slow():
        if kind == "wait":
            yield Wait(seconds=5, name="slow")
        elif kind == "retry":
            yield _failing_step(5)
        else:
            strategy = WaitStrategy(
                should_continue=lambda s: True, initial_delay=5, max_delay=5, jitter=Jitter.NONE
            )
            yield WaitForCondition(lambda s: s, 0, strategy, name="slow")

    return slow


@pytest.mark.parametrize("kind", ["wait", "retry", "poll"])
def test_an_abandoned_branch_does_not_keep_its_timer(kind):
    then = (lambda: _failing_step(100)) if kind == "wait" else (lambda: Wait(seconds=100))
    cmds = drive(_parallel_then(_slow(kind), then), {})
    assert isinstance(cmds[-1], Suspend)
    assert cmds[-1].wake_at == NOW + 100_000


@pytest.mark.parametrize("kind", ["retry", "poll"])
def test_a_replayed_branch_waiting_for_its_retry_is_abandoned_with_its_timer(kind):
    # Invocation 1 records the slow branch's retry (due in 5 s) and the fast branch's
    # 1 s wait; invocation 2, 1 s later, replays the slow branch parked on its due
    # time, completes the batch with the fast branch and abandons the slow one.
    def fast():
        yield Wait(seconds=1, name="nap")
        return (yield Step(lambda: "a", name="fast"))

    def wf(_):
        yield Parallel([_slow(kind), fast], completion=CompletionPolicy.first_successful())
        yield Wait(seconds=100, name="long")
        return "done"

    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(wf).status == "RUNNING"
    runner.clock.advance(1)
    runner.store.fire_timers(runner.execution_id, runner.clock.now())
    ops = dict(runner.store.load(runner.execution_id))
    cmds = drive(wf, ops, now=runner.clock.now())
    assert isinstance(cmds[-1], Suspend)
    assert cmds[-1].wake_at == runner.clock.now() + 100_000


def test_a_first_poll_runs_lazily_and_a_failed_poll_retries_with_its_state():
    def check(state):
        raise KeyError("flaky check")

    def wfc():
        strategy = WaitStrategy(should_continue=lambda s: True)
        return WaitForCondition(check, 7, strategy, name="poll", retry=RetryPolicy.fixed(4))

    cmds = drive(catching(wfc), {})
    assert (cmds[0].attempt, cmds[0].durable_first, cmds[0].op_id) == (1, False, OP1)
    (retry,) = [u for u in updates(cmds) if u.action is A.RETRY]
    assert (retry.payload, retry.next_attempt_delay_seconds) == ("7", 4)
    assert retry.error.type == "KeyError"
    again = _op(S.READY, "WaitForCondition", name="poll", attempt=1, result="9")
    cmds = drive(catching(wfc), again)
    assert (cmds[0].attempt, cmds[0].op_id) == (2, OP1)
    (retry,) = [u for u in updates(cmds) if u.action is A.RETRY]
    assert retry.payload == "9"


def test_an_interrupted_poll_runs_again_with_its_recorded_state():
    def check(state):
        raise KeyError("flaky check")

    def wfc():
        strategy = WaitStrategy(should_continue=lambda s: True)
        return WaitForCondition(check, 7, strategy, name="poll", retry=RetryPolicy.fixed(4))

    ops = _op(S.STARTED, "WaitForCondition", name="poll", attempt=1, result="9")
    cmds = drive(catching(wfc), ops)
    assert (cmds[0].attempt, cmds[0].op_id, cmds[0].args) == (2, OP1, (9,))
    (retry,) = [u for u in updates(cmds) if u.action is A.RETRY]
    assert retry.payload == "9"


def test_a_poll_without_a_recorded_attempt_is_attempt_one():
    ops = _op(S.READY, "WaitForCondition", name="poll")
    cmds = drive(catching(lambda: _wfc(lambda s: 5)), ops)
    assert cmds[0].attempt == 1


def test_a_replayed_condition_state_goes_through_its_serdes():
    wf = catching(lambda: _wfc(never, serdes=Tagged()))
    done = _op(S.SUCCEEDED, "WaitForCondition", name="poll", result="3")
    assert drive(wf, done)[-1].value == ("ok", {"v": 3})
    seen = []

    def check(state):
        seen.append(state)
        return 9

    ready = _op(S.READY, "WaitForCondition", name="poll", attempt=1, result="3")
    drive(
        catching(lambda: _wfc(check, WaitStrategy(should_continue=lambda s: False), Tagged())),
        ready,
    )
    assert seen == [{"v": 3}]


class Broken(JsonSerdes):
    def deserialize(self, payload):
        from durable_gen._core.errors import SerializationError

        raise SerializationError("unreadable")


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.READY])
def test_an_unreadable_condition_state_is_a_corrupt_log(status):
    ops = _op(status, "WaitForCondition", name="poll", attempt=1, result="3")
    with pytest.raises(CorruptLogError, match="unreadable"):
        drive(catching(lambda: _wfc(never, serdes=Broken())), ops)


def test_values_come_back_through_the_serdes_once_done():
    def wf(_):
        a = yield Step(lambda: {"v": 1, "dropped": True}, name="s", serdes=Tagged())
        b = yield WaitForCondition(
            lambda s: {"v": 9, "dropped": True},
            {"v": 0},
            WaitStrategy(should_continue=lambda s: False),
            name="poll",
            serdes=Tagged(),
        )
        return [a, b]

    assert drive(wf, {})[-1].value == [{"v": 1}, {"v": 9}]


def test_a_condition_state_over_the_size_limit_fails_the_operation():
    stop = WaitStrategy(should_continue=lambda s: False)
    cmds = drive(catching(lambda: _wfc(lambda s: "x" * 200, stop)), {}, max_payload_bytes=100)
    (fail,) = [u for u in updates(cmds) if u.action is A.FAIL]
    assert fail.error.message.startswith(
        "the state of WaitForCondition 'poll' cannot be stored: the state of WaitForCondition "
        "'poll' is 202 bytes once serialized, over the 100-byte limit"
    )


def test_a_step_that_ended_without_a_result_is_raised_in_order_when_work_is_queued():
    # Invocation 2 runs branch 0's new step (queued) before it replays branch 1's step,
    # which the log says TIMED_OUT: the error must wait its turn and reach branch 1.
    def fail():
        raise RuntimeError("no")

    def first():
        yield Wait(seconds=1, name="nap")
        return (yield Step(lambda: "a", name="a"))

    def second():
        try:
            value = yield Step(fail, name="b", retry=RetryPolicy.none())
            return f"value {value}"
        except StepError as e:
            yield Wait(seconds=1, name="nap2")
            return e.error_message

    def wf(_):
        batch = yield Parallel([first, second], completion=CompletionPolicy.all_completed())
        return batch.get_results()

    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(wf).status == "RUNNING"
    runner.clock.advance(1)
    runner.store.fire_timers(runner.execution_id, runner.clock.now())
    ops = dict(runner.store.load(runner.execution_id))
    (b,) = [op for op in ops.values() if op.name == "b"]
    assert b.status is S.FAILED
    ops[b.id] = attrs.evolve(b, status=S.TIMED_OUT, error=None)
    cmds = drive(wf, ops, now=runner.clock.now())
    assert isinstance(cmds[-1], Complete)
    assert cmds[-1].value == ["a", "the operation ended TIMED_OUT"]
