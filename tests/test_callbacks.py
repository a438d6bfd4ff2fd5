"""Callbacks: create, await, complete from outside, timeouts, heartbeats, WaitForCallback."""

import re

import pytest

from durable_gen import (
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    CreateCallback,
    ErrorObject,
    InMemoryEngine,
    NonDeterminismError,
    OperationStatus,
    OperationType,
    RetryPolicy,
    Step,
    StepError,
    StoreError,
    Wait,
    WaitForCallback,
)


def callback_op(engine, ex, name=None):
    ops = [op for op in engine.store.load(ex).values() if op.type is OperationType.CALLBACK]
    return next(op for op in ops if name is None or op.name == name)


def approval(_):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(lambda cid: f"mailed {cid[:4]}", handle.callback_id, name="notify")
    try:
        answer = yield handle.result()
    except CallbackFailedError as e:
        return {"rejected": e.error_message}
    except CallbackTimeoutError as e:
        cause = e.__cause__
        return {"timed_out": [e.error_type, getattr(cause, "error_type", None)]}
    return {"approved": answer}


def started(workflow=approval):
    engine = InMemoryEngine()
    result = engine.run(workflow, {})
    assert result.status == "RUNNING"
    return engine, result.execution_id


def test_create_and_complete_callback():
    engine, ex = started()
    op = callback_op(engine, ex)
    assert op.status is OperationStatus.STARTED
    assert len(op.callback_id) >= 40  # 32 random bytes, url-safe
    engine.store.complete_callback(
        op.callback_id, "succeed", engine.clock.now(), payload='{"ok":1}'
    )
    result = engine.resume(approval, ex)
    assert result.result == {"approved": '{"ok":1}'}  # the raw payload, as AWS
    events = [e["EventType"] for e in engine.store.history(ex)]
    assert "CallbackStarted" in events
    assert "CallbackSucceeded" in events


def test_callback_failure_is_thrown_and_caught():
    engine, ex = started()
    cid = callback_op(engine, ex).callback_id
    engine.store.complete_callback(
        cid, "fail", engine.clock.now(), error=ErrorObject(type="Rejected", message="no budget")
    )
    assert engine.resume(approval, ex).result == {"rejected": "no budget"}


def test_callback_timeout():
    engine, ex = started()
    engine.clock.advance(3601)
    # as AWS's SDK: the error is its CallbackTimeoutError; what the service recorded
    # is on the callback operation and the error's cause
    assert engine.resume(approval, ex).result == {
        "timed_out": [
            "aws_durable_execution_sdk_python.exceptions.CallbackTimeoutError",
            "Callback.Timeout",
        ]
    }
    op = callback_op(engine, ex)
    assert op.status is OperationStatus.TIMED_OUT


def test_heartbeats_keep_a_callback_alive_and_their_absence_times_it_out():
    def wf(_):
        h = yield CreateCallback("hb", heartbeat_timeout=60)
        try:
            return (yield h)
        except CallbackTimeoutError as e:
            return getattr(e.__cause__, "error_type", None)

    engine, ex = started(wf)
    cid = callback_op(engine, ex).callback_id
    for _ in range(3):
        engine.clock.advance(50)
        engine.store.complete_callback(cid, "heartbeat", engine.clock.now())
        assert engine.resume(wf, ex).status == "RUNNING"
    engine.clock.advance(61)
    assert engine.resume(wf, ex).result == "Callback.Heartbeat"


def test_the_engine_sleeps_until_a_callback_timeout():
    def wf(_):
        h = yield CreateCallback(timeout=30)
        try:
            yield h
        except CallbackTimeoutError:
            return "gave up"

    engine, ex = started(wf)
    # the timer of the timeout is an engine timer: resuming moves the virtual clock to it
    assert engine.store.next_timer(ex) is not None


def test_completing_twice_or_an_unknown_id_is_refused():
    engine, ex = started()
    cid = callback_op(engine, ex).callback_id
    engine.store.complete_callback(cid, "succeed", engine.clock.now(), payload="yes")
    with pytest.raises(StoreError, match=r"already ended SUCCEEDED; it cannot be completed again"):
        engine.store.complete_callback(cid, "succeed", engine.clock.now(), payload="again")
    with pytest.raises(StoreError, match=r"^no callback with id 'guess'$"):
        engine.store.complete_callback("guess", "succeed", engine.clock.now())


def test_callback_ids_are_unguessable_and_bound_to_their_execution():
    engine = InMemoryEngine()
    ids = set()
    owners = {}
    for _ in range(20):
        r = engine.run(approval, {})
        cid = callback_op(engine, r.execution_id).callback_id
        ids.add(cid)
        owners[cid] = r.execution_id
    assert len(ids) == 20
    for cid, ex in owners.items():
        assert engine.store.callback_execution(cid) == ex


def test_callback_handle_is_the_same_on_replay():
    seen = []

    def wf(_):
        h = yield CreateCallback("c")
        seen.append(h.callback_id)
        yield Wait(seconds=1)
        return "ok"

    engine = InMemoryEngine()
    r = engine.run(wf)
    assert r.status == "RUNNING"  # a pending callback: time is not skipped
    engine.clock.advance(1)
    assert engine.resume(wf, r.execution_id).result == "ok"
    assert len(seen) == 2
    assert seen[0] == seen[1]


def test_wait_for_callback_records_as_aws_and_passes_the_id_to_the_submitter():
    submitted = []

    def wf(_):
        return (yield WaitForCallback(submitted.append, "approve", timeout=600))

    engine, ex = started(wf)
    cid = callback_op(engine, ex).callback_id
    assert submitted == [cid]
    engine.store.complete_callback(cid, "succeed", engine.clock.now(), payload="granted")
    result = engine.resume(wf, ex)
    assert result.result == "granted"
    assert submitted == [cid]  # not re-run on replay
    shapes = sorted((op.type.value, op.sub_type, op.name) for op in result.operations)
    assert shapes == [
        ("CALLBACK", "Callback", "approve create callback id"),
        ("CONTEXT", "WaitForCallback", "approve"),
        ("STEP", "Step", "approve submitter"),
    ]
    ctx = next(op for op in result.operations if op.type is OperationType.CONTEXT)
    assert all(op.parent_id == ctx.id for op in result.operations if op is not ctx)


def test_failing_submitter_throws_callback_submitter_error():
    def submit(cid):
        raise ConnectionError("mail server down")

    def wf(_):
        try:
            yield WaitForCallback(submit, "approve", retry=RetryPolicy.none())
        except CallbackSubmitterError as e:
            cause = e.__cause__
            assert isinstance(cause, StepError)
            return [e.error_type, e.error_message, cause.error_type]

    result = InMemoryEngine().run(wf)
    # as AWS's wait_for_callback: the submitter's message, its StepError as the cause
    assert result.result == [
        "aws_durable_execution_sdk_python.exceptions.CallbackSubmitterError",
        "mail server down",
        "ConnectionError",
    ]
    ctx = next(op for op in result.operations if op.sub_type == "WaitForCallback")
    assert ctx.error is not None
    assert ctx.error.type == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert ctx.error.message == "mail server down"


def test_wait_for_callback_timeout_is_typed_in_the_parent():
    def wf(_):
        try:
            yield WaitForCallback(lambda cid: None, "slow", timeout=5)
        except CallbackTimeoutError as e:
            return e.error_type

    engine, ex = started(wf)
    engine.clock.advance(6)
    # the CallbackTimeoutError passes through the WaitForCallback context, which
    # recorded it as AWS does (its own class name)
    assert (
        engine.resume(wf, ex).result
        == "aws_durable_execution_sdk_python.exceptions.CallbackTimeoutError"
    )


def test_nondeterminism_when_the_callback_is_renamed():
    def v2(_):
        yield CreateCallback("permission", timeout=3600)

    engine, ex = started()
    with pytest.raises(
        NonDeterminismError,
        match=re.escape(
            "the log recorded CreateCallback 'approval', but the workflow yielded "
            "CreateCallback 'permission'."
        ),
    ):
        engine.resume(v2, ex)


def test_awaiting_a_foreign_handle_is_refused():
    from durable_gen import CallbackHandle, WorkflowDefinitionError

    def wf(_):
        yield CallbackHandle(callback_id="x", operation_id="nope")

    with pytest.raises(WorkflowDefinitionError, match="which this execution never created"):
        InMemoryEngine().run(wf)


def test_nondeterminism_when_wait_for_callback_changes():
    def v1(_):
        return (yield WaitForCallback(lambda cid: None, "approve"))

    def v2(_):
        return (yield WaitForCallback(lambda cid: None, "sign-off"))

    engine, ex = started(v1)
    with pytest.raises(
        NonDeterminismError,
        match=re.escape(
            "at the 1st operation of the root context: the log recorded WaitForCallback "
            "'approve', but the workflow yielded WaitForCallback 'sign-off'."
        ),
    ):
        engine.resume(v2, ex)


def test_callback_ids_never_start_with_a_dash(monkeypatch):
    # `durable-gen callback succeed -Xy...` would read such an id as an option
    from durable_gen._stores import ids as _engine

    tokens = iter(["-starts-with-dash", "--two", "fine-id"])
    monkeypatch.setattr(_engine.secrets, "token_urlsafe", lambda n: next(tokens))
    assert _engine.new_callback_id("op") == "fine-id"
