"""Invoke: chained invocation of other durable functions registered with the engine."""

import re

import pytest

from durable_gen import (
    InMemoryEngine,
    Invoke,
    InvokeError,
    NonDeterminismError,
    OperationStatus,
    OperationType,
    Step,
    Wait,
)


def double(x):
    return x * 2


def doubler(event):
    yield Wait(seconds=10)
    return (yield Step(double, event["n"]))


def failing(event):
    yield Step(double, 1)
    raise RuntimeError(f"cannot handle {event}")


def caller(event):
    r = yield Invoke("doubler", {"n": event["n"]}, name="call-doubler")
    try:
        yield Invoke("failing", "bad", name="call-failing")
    except InvokeError as e:
        return {"doubled": r, "error": [e.error_type, e.error_message]}
    return {"doubled": r}


def engine():
    return InMemoryEngine(functions={"doubler": doubler, "failing": failing})


def test_invoke_result_and_failure_come_back():
    e = engine()
    result = e.run(caller, {"n": 21})
    assert result.result == {
        "doubled": 42,
        "error": ["RuntimeError", "cannot handle bad"],
    }
    inv = [op for op in result.operations if op.type is OperationType.CHAINED_INVOKE]
    assert [(op.name, op.sub_type, op.status) for op in inv] == [
        ("call-doubler", "ChainedInvoke", OperationStatus.SUCCEEDED),
        ("call-failing", "ChainedInvoke", OperationStatus.FAILED),
    ]
    events = [ev["EventType"] for ev in e.store.history(result.execution_id)]
    assert "ChainedInvokeStarted" in events
    assert "ChainedInvokeSucceeded" in events
    assert "ChainedInvokeFailed" in events


def test_invoke_of_an_unknown_function_fails_clearly():
    def wf(_):
        try:
            yield Invoke("nope", 1)
        except InvokeError as e:
            return e.error_message

    msg = InMemoryEngine(functions={"doubler": doubler}).run(wf).result
    assert msg == (
        "no durable function named 'nope' is registered with this engine (registered: "
        "doubler); pass functions={...} or call engine.register(name, workflow)"
    )


def test_invoke_replays_without_invoking_again():
    calls = []

    def counted(event):
        calls.append(event)
        return (yield Step(double, event))

    def wf(_):
        r = yield Invoke("counted", 5)
        yield Wait(seconds=1)
        return r

    assert InMemoryEngine(functions={"counted": counted}).run(wf).result == 10
    assert calls == [5]


def test_nondeterminism_when_the_target_changes():
    def v1(_):
        yield Invoke("doubler", {"n": 1}, name="a")

    def v2(_):
        yield Step(double, 1, name="a")

    e = engine()
    ex = e.start(v1)
    e.invoke_once(v1, ex)
    with pytest.raises(
        NonDeterminismError,
        match=re.escape("the log recorded Invoke 'a', but the workflow yielded Step 'a'."),
    ):
        e.invoke_once(v2, ex)
