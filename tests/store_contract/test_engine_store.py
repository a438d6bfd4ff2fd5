"""The resume loop's store contract (``_contract.EngineStore``), on every store."""

from __future__ import annotations

import pytest

from durable_gen import (
    ErrorObject,
    ExecutionAlreadyStartedError,
    ExecutionNotFoundError,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StoreError,
)

T0 = 1_767_225_600_000


def step(op_id: str, action: OperationAction, **kw) -> OperationUpdate:
    return OperationUpdate(
        id=op_id, type=OperationType.STEP, action=action, sub_type="Step", name=op_id, **kw
    )


def callback_start(op_id: str = "cb", timeout: int = 0) -> OperationUpdate:
    return OperationUpdate(
        id=op_id,
        type=OperationType.CALLBACK,
        action=OperationAction.START,
        sub_type="Callback",
        name=op_id,
        callback_timeout_seconds=timeout,
    )


def started(kind, ex: str = "ex1"):
    """A store holding a new execution ``ex``, ready to be written (lease taken)."""
    store = kind.view()
    assert store.create(ex, '{"n":1}', T0) is True
    if kind.durable:
        store.acquire(ex, T0)
    return store


def test_a_checkpoint_is_applied_as_the_service_applies_it(kind):
    store = started(kind)
    store.checkpoint("ex1", [step("a", OperationAction.START)], T0 + 1, durable=False)
    delta = store.checkpoint(
        "ex1", [step("a", OperationAction.SUCCEED, payload='"x"')], T0 + 2, durable=True
    )
    assert list(delta) == ["a"]
    assert delta["a"].status is OperationStatus.SUCCEEDED
    store.checkpoint(
        "ex1",
        [
            step("b", OperationAction.START),
            step(
                "b",
                OperationAction.RETRY,
                error=ErrorObject(type="E", message="m"),
                next_attempt_delay_seconds=3,
            ),
        ],
        T0 + 3,
        durable=True,
    )
    other = kind.view()  # another process's view, where there can be one
    ops = other.load("ex1")
    assert list(ops) == ["ex1", "a", "b"]  # the order operations were first recorded
    assert (ops["a"].status, ops["a"].result) == (OperationStatus.SUCCEEDED, '"x"')
    assert ops["b"].status is OperationStatus.PENDING
    assert ops["b"].next_attempt_timestamp == T0 + 3003
    assert other.next_timer("ex1") == T0 + 3003
    assert other.status("ex1") == ("RUNNING", None, None)
    history = other.history("ex1")
    assert [e["EventType"] for e in history] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepFailed",
    ]
    assert [e["EventId"] for e in history] == [1, 2, 3, 4, 5]


def test_timers_fire_when_due_and_not_before(kind):
    store = started(kind)
    store.checkpoint(
        "ex1",
        [
            step("b", OperationAction.START),
            step("b", OperationAction.RETRY, error=ErrorObject(), next_attempt_delay_seconds=2),
        ],
        T0,
        durable=True,
    )
    store.begin_invocation("ex1", "r1", T0 + 1999)
    assert kind.view().load("ex1")["b"].status is OperationStatus.PENDING
    store.end_invocation(
        "ex1",
        {"EventType": "InvocationCompleted", "EventTimestamp": T0 + 1999, "Id": "ex1"},
    )
    store.begin_invocation("ex1", "r2", T0 + 2000)
    assert kind.view().load("ex1")["b"].status is OperationStatus.READY


def test_one_name_one_execution(kind):
    store = started(kind)
    history = store.history("ex1")
    assert store.create("ex1", '{"n":1}', T0 + 5) is False  # the existing execution
    assert kind.view().history("ex1") == history  # nothing written
    with pytest.raises(ExecutionAlreadyStartedError) as e:
        store.create("ex1", '{"n":2}', T0 + 5)
    assert (e.value.execution_id, e.value.conflict) == ("ex1", "input")
    assert kind.view().load("ex1")["ex1"].input_payload == '{"n":1}'
    assert store.exists("ex1")
    assert not store.exists("nope")


def test_unknown_ids_are_not_found(kind):
    store = kind.view()
    for call in (store.load, store.status, store.history):
        with pytest.raises(ExecutionNotFoundError, match=r"^no execution with id 'nope'$"):
            call("nope")
    with pytest.raises(ExecutionNotFoundError, match=r"^no callback with id 'nope'"):
        store.complete_callback("nope", "succeed", T0, payload="1")
    with pytest.raises(ExecutionNotFoundError):
        store.callback_execution("nope")


def test_finish_records_the_end(kind):
    store = started(kind)
    store.finish("ex1", "SUCCEEDED", T0 + 5, result='"done"')
    other = kind.view()
    assert other.status("ex1") == ("SUCCEEDED", '"done"', None)
    assert other.history("ex1")[-1]["ExecutionSucceededDetails"] == {
        "Result": {"Payload": '"done"', "Truncated": False}
    }


def test_a_callback_is_completed_from_outside_once(kind):
    store = started(kind)
    store.checkpoint("ex1", [callback_start()], T0, durable=True)
    callback_id = store.load("ex1")["cb"].callback_id
    assert callback_id
    outside = kind.view()
    assert outside.callback_execution(callback_id) == "ex1"
    with pytest.raises(ExecutionNotFoundError):  # bound to its own execution
        outside.complete_callback(callback_id, "succeed", T0 + 1, payload="x", execution_id="ex2")
    assert outside.complete_callback(callback_id, "heartbeat", T0 + 1) == "ex1"
    assert outside.complete_callback(callback_id, "succeed", T0 + 2, payload="yes") == "ex1"
    op = kind.view().load("ex1")["cb"]
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, "yes")
    with pytest.raises(StoreError):  # completed: not again
        outside.complete_callback(callback_id, "fail", T0 + 3, error=ErrorObject())
    kinds = [e["EventType"] for e in kind.view().history("ex1")]
    assert kinds[-2:] == ["CallbackStarted", "CallbackSucceeded"]


def test_a_chained_invoke_is_completed_with_the_invoked_executions_outcome(kind):
    store = started(kind)
    start = OperationUpdate(
        id="inv",
        type=OperationType.CHAINED_INVOKE,
        action=OperationAction.START,
        sub_type="ChainedInvoke",
        name="inv",
        function_name="other",
        payload="1",
    )
    store.checkpoint("ex1", [start], T0, durable=True)
    assert [op.id for op in store.running_invokes("ex1")] == ["inv"]
    kind.view().complete_invoke("ex1", "inv", "SUCCEEDED", T0 + 1, result="2")
    assert store.running_invokes("ex1") == []
    op = kind.view().load("ex1")["inv"]
    assert (op.status, op.result) == (OperationStatus.SUCCEEDED, "2")
