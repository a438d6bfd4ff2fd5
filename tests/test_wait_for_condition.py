"""WaitForCondition: polling with recorded state, exhaustion, errors in check."""

import pytest

from durable_gen import (
    InMemoryEngine,
    Jitter,
    OperationAction,
    RetryPolicy,
    ValidationError,
    WaitForCondition,
    WaitForConditionError,
    WaitStrategy,
)

STRATEGY = WaitStrategy(
    should_continue=lambda s: s["count"] < 3, initial_delay=2, max_delay=10, jitter=Jitter.NONE
)


def poll(state):
    return {"count": state["count"] + 1}


def test_polls_until_the_condition_holds_with_state_recorded():
    def wf(_):
        return (yield WaitForCondition(poll, {"count": 0}, STRATEGY, name="ready"))

    engine = InMemoryEngine()
    start = engine.clock.now()
    result = engine.run(wf)
    assert result.result == {"count": 3}
    assert result.invocations == 3
    assert engine.clock.now() - start == (2 + 3) * 1000  # 2 s, then 2*1.5 = 3 s
    ups = engine.store.updates(result.execution_id)
    retries = [
        (u.payload, u.next_attempt_delay_seconds) for u in ups if u.action is OperationAction.RETRY
    ]
    assert retries == [('{"count":1}', 2), ('{"count":2}', 3)]
    (op,) = result.operations
    assert (op.sub_type, op.attempt) == ("WaitForCondition", 3)
    events = [e["EventType"] for e in engine.store.history(result.execution_id)]
    assert events.count("StepSucceeded") == 3  # each continue shows as StepSucceeded, as AWS


def test_exhaustion_throws_a_typed_error():
    strategy = WaitStrategy(should_continue=lambda s: True, max_attempts=2, jitter=Jitter.NONE)

    def wf(_):
        try:
            yield WaitForCondition(poll, {"count": 0}, strategy)
        except WaitForConditionError as e:
            return [e.error_message, e.error_data]

    result = InMemoryEngine().run(wf)
    assert result.result == ["the condition was still unmet after 2 polls", '{"count":2}']


def test_an_exception_in_check_goes_through_the_retry_policy_keeping_state():
    calls = []

    def flaky(state):
        calls.append(state)
        if len(calls) == 2:
            raise ConnectionError("blip")
        return {"count": state["count"] + 1}

    def wf(_):
        return (
            yield WaitForCondition(
                flaky,
                {"count": 0},
                STRATEGY,
                retry=RetryPolicy(max_attempts=5, jitter=Jitter.NONE, initial_delay=1),
            )
        )

    result = InMemoryEngine().run(wf)
    assert result.result == {"count": 3}
    assert calls == [{"count": 0}, {"count": 1}, {"count": 1}, {"count": 2}]


def test_check_failing_for_good():
    def broken(state):
        raise KeyError("gone")

    def wf(_):
        try:
            yield WaitForCondition(broken, 0, STRATEGY, retry=RetryPolicy.none())
        except WaitForConditionError as e:
            return e.error_type

    assert InMemoryEngine().run(wf).result == "KeyError"


def test_check_error_is_not_retried_without_a_policy():
    """As on AWS (conformance 6-7/6-8): no retry policy given, the first error is final."""
    calls = []

    def broken(state):
        calls.append(state)
        raise KeyError("gone")

    def wf(_):
        try:
            yield WaitForCondition(broken, 0, STRATEGY)
        except WaitForConditionError as e:
            return e.error_type

    engine = InMemoryEngine()
    result = engine.run(wf)
    assert result.result == "KeyError"
    assert calls == [0]
    kinds = [e["EventType"] for e in engine.store.history(result.execution_id)]
    assert kinds.count("StepStarted") == 1
    assert "StepFailed" in kinds


def test_strategy_needs_a_predicate():
    with pytest.raises(
        ValidationError, match="wait_strategy must be a WaitStrategy with should_continue"
    ):
        WaitForCondition(poll, {}, WaitStrategy())


def test_nondeterminism_when_the_poll_is_renamed():
    import re

    from durable_gen import NonDeterminismError

    def v1(_):
        return (yield WaitForCondition(poll, {"count": 0}, STRATEGY, name="ready"))

    def v2(_):
        return (yield WaitForCondition(poll, {"count": 0}, STRATEGY, name="done"))

    engine = InMemoryEngine()
    ex = engine.start(v1)
    assert engine.invoke_once(v1, ex).status == "PENDING"  # the first poll was unmet
    with pytest.raises(
        NonDeterminismError,
        match=re.escape(
            "the log recorded WaitForCondition 'ready', but the workflow yielded "
            "WaitForCondition 'done'."
        ),
    ):
        engine.invoke_once(v2, ex)
