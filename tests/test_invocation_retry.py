"""Invocation-level retry: InvocationError and RetryableSerDesError, as AWS's SDK has them.

A retryable InvocationError that leaves the workflow fails this invocation only:
nothing records it but the InvocationCompleted event, and the engine invokes the
workflow again after its ``invocation_retry`` policy's delay; once the policy gives
up, the execution fails with it. The same run on the in-memory and SQLite engines.
"""

from __future__ import annotations

import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    ChildContextError,
    InMemoryEngine,
    InvocationError,
    Jitter,
    Parallel,
    RetryableSerDesError,
    RetryPolicy,
    SqliteEngine,
    Step,
    StepError,
    StepInterruptedError,
    UnrecoverableError,
    VirtualClock,
    Wait,
    WaitForCondition,
    WaitStrategy,
    current_attempt,
)
from durable_gen._core.service import consecutive_failed_invocations
from durable_gen._engine.meter import MeterKind, meter_execution

AWS = "aws_durable_execution_sdk_python.exceptions"
FAST = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)


@pytest.fixture(params=["memory", "sqlite"])
def make_engine(request, tmp_path):
    def make(**kwargs):
        if request.param == "memory":
            return InMemoryEngine(**kwargs)
        return SqliteEngine(tmp_path / "x.db", clock=VirtualClock(), **kwargs)

    return make


def failures_of(engine, ex):
    """The error types of the invocations that failed, in order."""
    return [
        e["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"]
        for e in engine.store.history(ex)
        if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]
    ]


def event_types(engine, ex):
    return [e["EventType"] for e in engine.store.history(ex)]


def failing_invocations(n):
    """A workflow whose body raises InvocationError in its first ``n`` invocations."""
    seen = {"invocations": 0}

    def wf(_):
        a = yield Step(lambda: 1, name="a")
        seen["invocations"] += 1
        if seen["invocations"] <= n:
            raise InvocationError(f"not ready ({seen['invocations']})")
        return a + 1

    return wf, seen


def test_the_class_tree_is_awss():
    assert issubclass(InvocationError, UnrecoverableError)
    assert issubclass(RetryableSerDesError, InvocationError)
    assert issubclass(StepInterruptedError, InvocationError)
    assert InvocationError("x").is_retryable()
    assert not InvocationError("x", retryable=False).is_retryable()
    assert InvocationError.wire_type == f"{AWS}.InvocationError"
    assert RetryableSerDesError.wire_type == f"{AWS}.RetryableSerDesError"

    class Mine(InvocationError):
        pass

    assert Mine.wire_type is None  # a workflow's own class is recorded by its own name


def test_a_failed_invocation_is_retried_after_the_policys_delays(make_engine):
    wf, _ = failing_invocations(2)
    engine = make_engine()
    t0 = engine.clock.now()
    r = engine.run(wf)
    assert (r.status, r.result) == ("SUCCEEDED", 2)
    assert r.invocations == 3
    assert engine.clock.now() - t0 == (5 + 10) * 1000  # INVOCATION_RETRY: 5 s, doubling
    assert failures_of(engine, r.execution_id) == [f"{AWS}.InvocationError"] * 2
    # nothing but the service's InvocationCompleted events records the failures
    assert event_types(engine, r.execution_id) == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "InvocationCompleted",
        "InvocationCompleted",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    # the recorded step was replayed, not run again
    assert r.operations[0].attempt in (None, 1)


def test_the_execution_fails_once_the_policy_gives_up(make_engine):
    wf, seen = failing_invocations(100)
    engine = make_engine()
    r = engine.run(wf)
    assert r.status == "FAILED"
    assert r.invocations == 5 == seen["invocations"]
    assert r.error.type == f"{AWS}.InvocationError"
    assert r.error.message == "not ready (5)"


def test_the_policy_is_the_engines_to_choose(make_engine):
    wf, _ = failing_invocations(100)
    engine = make_engine(invocation_retry=RetryPolicy(max_attempts=2, initial_delay=3))
    t0 = engine.clock.now()
    r = engine.run(wf)
    assert (r.status, r.invocations) == ("FAILED", 2)
    assert 0 <= engine.clock.now() - t0 <= 3000  # one delay, full jitter


def test_a_policy_that_does_not_retry_the_error_fails_at_once(make_engine):
    wf, _ = failing_invocations(100)
    engine = make_engine(invocation_retry=RetryPolicy(retryable_error_types=[TimeoutError]))
    r = engine.run(wf)
    assert (r.status, r.invocations) == ("FAILED", 1)


def test_failures_count_from_the_last_clean_invocation():
    ok = {"EventType": "InvocationCompleted", "InvocationCompletedDetails": {}}
    bad = {"EventType": "InvocationCompleted", "InvocationCompletedDetails": {"Error": {}}}
    other = {"EventType": "StepSucceeded"}
    assert consecutive_failed_invocations([]) == 0
    assert consecutive_failed_invocations([bad, bad, ok, bad, other, bad]) == 2
    assert consecutive_failed_invocations([bad, ok]) == 0
    assert consecutive_failed_invocations([bad, bad, bad]) == 3


def test_a_not_retryable_invocation_error_fails_the_execution(make_engine):
    def wf(_):
        yield Step(lambda: 1, name="a")
        raise InvocationError("bad configuration", retryable=False)

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.invocations) == ("FAILED", 1)
    assert r.error.type == f"{AWS}.InvocationError"
    assert failures_of(engine, r.execution_id) == []


def test_it_leaves_a_child_context_unrecorded_and_the_parent_may_catch_it(make_engine):
    def child(_):
        yield Step(lambda: "in", name="inner")
        raise InvocationError("child not ready")

    def wf(_):
        try:
            yield ChildContext(child, None, name="c")
        except ChildContextError:
            return "wrapped"  # AWS does not wrap it: neither may we
        except InvocationError as e:
            return f"caught: {e}"

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", "caught: child not ready", 1)
    ctx = next(op for op in r.operations if op.name == "c")
    assert ctx.status.value == "STARTED"  # no ContextFailed, as on AWS
    assert "ContextFailed" not in event_types(engine, r.execution_id)


def test_uncaught_out_of_a_child_context_it_retries_the_invocation(make_engine):
    seen = {"n": 0}

    def child(_):
        seen["n"] += 1
        if seen["n"] == 1:
            raise InvocationError("child not ready")
        return (yield Step(lambda: "in", name="inner"))

    def wf(_):
        return (yield ChildContext(child, None, name="c"))

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", "in", 2)
    types = event_types(engine, r.execution_id)
    assert types.count("ContextStarted") == 1
    assert "ContextFailed" not in types


def test_out_of_a_parallel_branch_it_escapes_the_batch(make_engine):
    seen = {"n": 0}

    def flaky(_ctx=None):
        seen["n"] += 1
        if seen["n"] == 1:
            raise InvocationError("branch not ready")
        return (yield Step(lambda: "b", name="b"))

    def steady(_ctx=None):
        return (yield Step(lambda: "a", name="a"))

    def wf(_):
        r = yield Parallel([steady, flaky], name="p", max_concurrency=1)
        return r.get_results()

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", ["a", "b"], 2)
    # no branch was recorded failed, and the batch did not complete with a failure
    assert "ContextFailed" not in event_types(engine, r.execution_id)


def test_raised_by_a_steps_function_it_is_an_ordinary_step_failure(make_engine):
    def boom():
        raise InvocationError("in the step")

    def wf(_):
        try:
            yield Step(boom, name="s", retry=FAST)
        except StepError as e:
            return e.error_type

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", f"{AWS}.InvocationError", 3)
    assert failures_of(engine, r.execution_id) == []  # the step's retries, not invocations


def storing_fails_once():
    """A step function whose first call raises RetryableSerDesError; the attempts it saw."""
    runs: list[int] = []

    def fn():
        runs.append(current_attempt())
        if len(runs) == 1:
            raise RetryableSerDesError("the store timed out")
        return "ok"

    return fn, runs


def test_retryable_serdes_error_from_a_step_bypasses_its_retry_policy(make_engine):
    fn, runs = storing_fails_once()

    def wf(_):
        return (yield Step(fn, name="s", retry=RetryPolicy.none()))

    engine = make_engine()
    r = engine.run(wf)
    # at least once: the attempt had recorded nothing, so it runs again, as attempt 1
    assert (r.status, r.result, runs) == ("SUCCEEDED", "ok", [1, 1])
    assert failures_of(engine, r.execution_id) == [f"{AWS}.RetryableSerDesError"]
    assert "StepFailed" not in event_types(engine, r.execution_id)


def test_at_most_once_the_retried_invocation_finds_the_attempt_interrupted(make_engine):
    fn, runs = storing_fails_once()

    def wf(_):
        return (yield Step(fn, name="s", retry=FAST, semantics=AT_MOST_ONCE_PER_RETRY))

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, runs) == ("SUCCEEDED", "ok", [1, 2])
    (failed,) = [e for e in engine.store.history(r.execution_id) if e["EventType"] == "StepFailed"]
    err = failed["StepFailedDetails"]["Error"]["Payload"]
    assert err["ErrorType"] == f"{AWS}.StepInterruptedError"
    assert err["ErrorMessage"].endswith("name=s was previously interrupted")


class FlakySerdes:
    """Fails to serialize (or deserialize) the first ``times`` times."""

    def __init__(self, *, serialize: int = 0, deserialize: int = 0) -> None:
        self.left = {"serialize": serialize, "deserialize": deserialize}

    def _maybe_fail(self, what: str) -> None:
        if self.left[what] > 0:
            self.left[what] -= 1
            raise RetryableSerDesError(f"{what} timed out")

    def serialize(self, value):
        self._maybe_fail("serialize")
        return str(value)

    def deserialize(self, data):
        self._maybe_fail("deserialize")
        return int(data)


def test_a_serdes_failing_to_store_a_result_retries_the_invocation(make_engine):
    serdes = FlakySerdes(serialize=1)

    def wf(_):
        return (yield Step(lambda: 7, name="s", serdes=serdes))

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", 7, 2)
    assert failures_of(engine, r.execution_id) == [f"{AWS}.RetryableSerDesError"]


def test_a_serdes_failing_to_read_the_log_retries_the_invocation(make_engine):
    serdes = FlakySerdes()

    def wf(_):
        a = yield Step(lambda: 7, name="s", serdes=serdes)
        yield Wait(seconds=1)
        return a

    engine = make_engine()
    ex = engine.start(wf)
    assert engine.invoke_once(wf, ex).status == "PENDING"  # the step ran; the wait suspends
    serdes.left["deserialize"] = 1  # the replay reads "s" through the serdes: it fails once
    r = engine.resume(wf, ex)
    assert (r.status, r.result, r.invocations) == ("SUCCEEDED", 7, 2)
    assert failures_of(engine, ex) == [f"{AWS}.RetryableSerDesError"]


def test_a_wait_for_condition_check_raising_it_retries_the_invocation(make_engine):
    seen = {"n": 0}

    def check(state):
        seen["n"] += 1
        if seen["n"] == 1:
            raise InvocationError("sensor offline")
        return state + 1

    strategy = WaitStrategy(should_continue=lambda s: s < 2, initial_delay=1, jitter=Jitter.NONE)

    def wf(_):
        return (yield WaitForCondition(check, 0, strategy, name="ready"))

    engine = make_engine()
    r = engine.run(wf)
    assert (r.status, r.result) == ("SUCCEEDED", 2)
    assert failures_of(engine, r.execution_id) == [f"{AWS}.InvocationError"]
    assert "StepFailed" not in event_types(engine, r.execution_id)


def test_each_failed_invocation_is_metered_as_an_invocation_level_retry(make_engine):
    wf, _ = failing_invocations(2)
    engine = make_engine()
    r = engine.run(wf)
    meter = meter_execution(engine.store, r.execution_id)
    assert meter.operations_of(MeterKind.INVOCATION_RETRY) == 2


def test_a_worker_leaves_the_execution_due_when_its_retry_is(tmp_path):
    wf, _ = failing_invocations(1)
    engine = SqliteEngine(tmp_path / "x.db", clock=VirtualClock())
    ex = engine.start(wf)
    r = engine.resume(wf, ex, wait=False)
    assert (r.status, r.invocations) == ("RUNNING", 1)
    now = engine.clock.now()
    assert ex not in engine.store.due(now + 4_999)
    assert ex in engine.store.due(now + 5_000)
    engine.clock.advance(5)
    assert engine.resume(wf, ex).status == "SUCCEEDED"
