"""The non-determinism error: exact messages for each way a workflow can change."""

import re

import pytest

from durable_gen import (
    ChildContext,
    InMemoryEngine,
    NonDeterminismError,
    Step,
    Wait,
    WorkflowDefinitionError,
)

HINT = (
    "A running execution must yield the operations its log recorded, in the same order. "
    "Keep the old code path for executions started before the change behind a patch "
    "marker (if (yield Patched('my-change')): new code, else: old code), or let them "
    "finish before deploying it; `durable-gen check` finds the executions a change "
    "would break."
)


def reserve():
    return "hold-1"


def charge():
    return "paid"


def charge_card():
    return "paid"


def ship():
    return "shipped"


def audit():
    return "audited"


def v1(_):
    yield Step(reserve)
    yield Step(charge)
    yield Wait(seconds=60)
    yield Step(ship)
    return "done"


def started(workflow=v1):
    """An execution of ``workflow`` suspended at its first wait."""
    engine = InMemoryEngine()
    ex = engine.start(workflow, {})
    outcome = engine.invoke_once(workflow, ex)
    assert outcome.status == "PENDING"
    return engine, ex


def resume_with(engine, ex, workflow):
    engine.clock.advance(120)
    return engine.invoke_once(workflow, ex)


def expect(message):
    return pytest.raises(NonDeterminismError, match="^" + re.escape(f"{message} {HINT}") + "$")


def test_renamed_step():
    def v2(_):
        yield Step(reserve)
        yield Step(charge_card)
        yield Wait(seconds=60)

    engine, ex = started()
    with expect(
        "non-deterministic replay at the 2nd operation of the root context: the log recorded "
        "Step 'charge', but the workflow yielded Step 'charge_card'."
    ) as info:
        resume_with(engine, ex, v2)
    err = info.value
    assert err.position == "2nd operation of the root context"
    assert err.recorded == "Step 'charge'"
    assert err.yielded == "yielded Step 'charge_card'"
    assert err.operation_id is not None


def test_step_replaced_by_wait():
    def v2(_):
        yield Step(reserve)
        yield Wait(seconds=5)
        yield Wait(seconds=60)

    engine, ex = started()
    with expect(
        "non-deterministic replay at the 2nd operation of the root context: the log recorded "
        "Step 'charge', but the workflow yielded Wait."
    ):
        resume_with(engine, ex, v2)


def test_extra_operation_inserted():
    def v2(_):
        yield Step(reserve)
        yield Step(audit)
        yield Step(charge)
        yield Wait(seconds=60)

    engine, ex = started()
    with expect(
        "non-deterministic replay at the 2nd operation of the root context: the log recorded "
        "Step 'charge', but the workflow yielded Step 'audit'."
    ):
        resume_with(engine, ex, v2)


def test_operation_removed():
    def v2(_):
        yield Step(reserve)
        yield Wait(seconds=60)
        yield Step(ship)

    engine, ex = started()
    with expect(
        "non-deterministic replay at the 2nd operation of the root context: the log recorded "
        "Step 'charge', but the workflow yielded Wait."
    ):
        resume_with(engine, ex, v2)


def test_workflow_returns_before_recorded_operations():
    def v2(_):
        yield Step(reserve)
        return "early"

    engine, ex = started()
    with expect(
        "non-deterministic replay at the 2nd operation of the root context: the log recorded "
        "Step 'charge', but the workflow returned after 1 operation."
    ):
        resume_with(engine, ex, v2)


def test_workflow_raises_instead_of_reaching_recorded_operations_fails_normally():
    # Raising is the workflow's own outcome, not a replay mismatch: the execution fails.
    def v2(_):
        yield Step(reserve)
        raise RuntimeError("changed my mind")

    engine, ex = started()
    outcome = resume_with(engine, ex, v2)
    assert outcome.status == "FAILED"
    assert outcome.error.type == "RuntimeError"


def test_named_wait_renamed():
    def w1(_):
        yield Wait(seconds=60, name="cool-off")

    def w2(_):
        yield Wait(seconds=60, name="cooling")

    engine, ex = started(w1)
    with expect(
        "non-deterministic replay at the 1st operation of the root context: the log recorded "
        "Wait 'cool-off', but the workflow yielded Wait 'cooling'."
    ):
        resume_with(engine, ex, w2)


def inner_v1():
    yield Step(reserve)
    yield Wait(seconds=60)


def inner_v2():
    yield Step(charge)
    yield Wait(seconds=60)


def test_mismatch_inside_child_context_names_the_context():
    def p1(_):
        yield ChildContext(inner_v1, name="checkout")

    def p2(_):
        yield ChildContext(inner_v2, name="checkout")

    engine, ex = started(p1)
    with expect(
        "non-deterministic replay at the 1st operation of child context 'checkout': the log "
        "recorded Step 'reserve', but the workflow yielded Step 'charge'."
    ):
        resume_with(engine, ex, p2)


def test_step_arguments_changed():
    def s(x):
        return x

    def a1(_):
        yield Step(s, 1)
        yield Wait(seconds=60)

    def a2(_):
        yield Step(s, 2)
        yield Wait(seconds=60)

    engine, ex = started(a1)
    with expect(
        "non-deterministic replay at the 1st operation of the root context: the log recorded "
        "Step 's' called with other arguments, but the workflow yielded Step 's' with "
        "arguments (2,)."
    ):
        resume_with(engine, ex, a2)


def test_nondeterminism_leaves_the_execution_resumable_with_the_right_code():
    def v2(_):
        yield Step(charge_card)

    engine, ex = started()
    with pytest.raises(NonDeterminismError):
        resume_with(engine, ex, v2)
    # nothing was recorded as terminal: the original code finishes the execution
    result = engine.resume(v1, ex)
    assert result.status == "SUCCEEDED"
    assert result.result == "done"


@pytest.mark.parametrize(
    ("yielded", "message"),
    [
        (
            42,
            "the workflow yielded 42 (int) at the 1st operation of the root context; a "
            "workflow may only yield operation descriptors such as Step(fn, ...), "
            "Wait(seconds=...) or ChildContext(fn, ...)",
        ),
        (
            reserve,
            "the workflow yielded the function 'reserve' at the 1st operation of the root "
            "context; to run it as a step, yield Step(reserve, *args)",
        ),
        (
            inner_v1(),
            "the workflow yielded a generator object at the 1st operation of the root "
            "context; to run a generator function as a sub-workflow, yield "
            "ChildContext(fn, *args)",
        ),
    ],
    ids=["int", "function", "generator"],
)
def test_yielding_a_non_descriptor(yielded, message):
    def wf(_):
        yield yielded

    engine = InMemoryEngine()
    with pytest.raises(WorkflowDefinitionError, match="^" + re.escape(message) + "$"):
        engine.run(wf)


def test_generator_object_instead_of_function():
    engine = InMemoryEngine()
    with pytest.raises(
        WorkflowDefinitionError,
        match=re.escape(
            "a workflow must be a generator function, got a generator object; pass v1, not v1()"
        ),
    ):
        engine.run(v1({}))


def test_async_generator_is_refused():
    async def agen(_):
        yield 1

    with pytest.raises(WorkflowDefinitionError, match="async generator"):
        InMemoryEngine().run(agen)


def test_plain_function_is_refused():
    def plain(_):
        return 1

    with pytest.raises(
        WorkflowDefinitionError,
        match=re.escape(
            "a workflow must be a generator function (a def whose body yields operations), "
            "got 'test_plain_function_is_refused.<locals>.plain', which does not yield; "
            "add a yield, or run it as a Step"
        ),
    ):
        InMemoryEngine().run(plain)
