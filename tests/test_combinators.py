"""All / Any / Race / AllSettled over descriptors."""

import pytest

from durable_gen import (
    All,
    AllSettled,
    Any,
    CombinatorError,
    CreateCallback,
    InMemoryEngine,
    OperationType,
    Race,
    RetryPolicy,
    Step,
    Wait,
    WorkflowDefinitionError,
    operation_id,
)

NO = RetryPolicy.none()


def echo(x):
    return x


def boom(x):
    raise ValueError(x)


def test_all_collects_results_in_order_as_one_context():
    def wf(_):
        return (
            yield All(
                [Step(echo, 1, name="a"), Step(echo, 2, name="b"), Wait(seconds=3)], name="both"
            )
        )

    result = InMemoryEngine().run(wf)
    assert result.result == [1, 2, None]
    ctx = next(op for op in result.operations if op.type is OperationType.CONTEXT)
    assert (ctx.sub_type, ctx.name) == ("All", "both")
    steps = sorted((op.id, op.name) for op in result.operations if op.type is OperationType.STEP)
    assert steps == sorted([(operation_id(ctx.id, 1), "a"), (operation_id(ctx.id, 2), "b")])


def test_all_fails_with_the_first_failure():
    def wf(_):
        try:
            yield All([Step(echo, 1), Step(boom, "x", retry=NO)])
        except CombinatorError as e:
            return [e.error_type, e.error_message]

    assert InMemoryEngine().run(wf).result == ["ValueError", "x"]


def test_any_first_success_and_all_failed():
    def wf(_):
        first = yield Any([Step(boom, "a", retry=NO), Step(echo, "b"), Step(echo, "c")])
        try:
            yield Any([Step(boom, "p", retry=NO), Step(boom, "q", retry=NO)])
        except CombinatorError as e:
            return [first, e.error_message]

    assert InMemoryEngine().run(wf).result == [
        "b",
        "all 2 operations of Any failed: ValueError: p; ValueError: q",
    ]


def test_race_timeout_pattern_with_a_callback():
    def wf(_):
        h = yield CreateCallback("answer")
        winner = yield Race([h.result(), Wait(seconds=60, name="deadline")])
        return "timed out" if winner is None else winner

    engine = InMemoryEngine()
    r = engine.run(wf)
    assert r.status == "RUNNING"
    engine.clock.advance(60)
    assert engine.resume(wf, r.execution_id).result == "timed out"  # nobody answered

    r = engine.run(wf)
    cb = next(op for op in r.operations if op.type is OperationType.CALLBACK)
    engine.store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload="yes")
    assert engine.resume(wf, r.execution_id).result == "yes"


def test_all_settled():
    def wf(_):
        return (yield AllSettled([Step(echo, 1), Step(boom, "no", retry=NO)]))

    result = InMemoryEngine().run(wf).result
    assert result[0] == {"status": "fulfilled", "value": 1}
    assert result[1]["status"] == "rejected"
    assert result[1]["reason"]["ErrorType"] == "ValueError"


def test_all_of_nothing_resolves_at_once():
    def wf(_):
        return (yield All([]))

    assert InMemoryEngine().run(wf).result == []


def test_combinators_take_descriptors_only():
    with pytest.raises(
        WorkflowDefinitionError, match=r"All\(\) takes operation descriptors, got 3"
    ):
        All([3])


def test_combinator_replays_from_its_record():
    calls = []

    def counted(x):
        calls.append(x)
        return x

    def wf(_):
        r = yield All([Step(counted, 1), Step(counted, 2)])
        yield Wait(seconds=1)
        return r

    assert InMemoryEngine().run(wf).result == [1, 2]
    assert sorted(calls) == [1, 2]


def test_nondeterminism_when_the_combinator_changes():
    import re

    from durable_gen import NonDeterminismError

    def v1(_):
        yield All([Step(echo, 1), Wait(seconds=5)], name="both")

    def v2(_):
        yield Race([Step(echo, 1), Wait(seconds=5)], name="both")

    engine = InMemoryEngine()
    ex = engine.start(v1)
    assert engine.invoke_once(v1, ex).status == "PENDING"
    with pytest.raises(
        NonDeterminismError,
        match=re.escape("the log recorded All 'both', but the workflow yielded Race 'both'."),
    ):
        engine.invoke_once(v2, ex)


def test_combinator_failure_on_replay_is_the_same():
    seen = []

    def wf(_):
        try:
            yield All([Step(boom, "x", retry=NO)], name="a")
        except CombinatorError as e:
            seen.append((e.error_type, e.error_message))
        yield Wait(seconds=1)
        return "ok"

    assert InMemoryEngine().run(wf).result == "ok"
    assert seen == [("ValueError", "x"), ("ValueError", "x")]


def test_race_of_no_operations_is_refused_at_construction():
    with pytest.raises(WorkflowDefinitionError, match=r"Race\(\) of no operations would never"):
        Race([])
