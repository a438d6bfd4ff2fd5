"""Tests that kill the mutants of durable_gen/_core/interpreter/callbacks.py (issue 29)."""

from __future__ import annotations

import pytest

from durable_gen import CreateCallback, WaitForCallback
from durable_gen._core.commands import Checkpoint
from durable_gen._core.descriptors import CallbackHandle
from durable_gen._core.errors import (
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    CorruptLogError,
    ErrorObject,
    SerializationError,
    StepError,
    StoreError,
    WorkflowDefinitionError,
    qualified_name,
)
from durable_gen._core.interpreter import Interpreter
from durable_gen._core.log import OperationAction, operation_id
from tests.test_mut_interpreter import OP1, S, T, op, run

A = OperationAction


def err_of(e):
    return (type(e).__name__, e.error_type, e.error_message, e.operation_name, e.operation_id)


def awaiting(name="cb", **kw):
    def wf(_):
        handle = yield CreateCallback(name, **kw)
        try:
            return ("ok", (yield handle))
        except Exception as e:
            cause = e.__cause__
            return (
                err_of(e),
                e.error_data,
                e.stack_trace,
                None if cause is None else err_of(cause),
            )

    return wf


def _cb(status, **kw):
    return {OP1: op(OP1, T.CALLBACK, status, None, "cb", "Callback", **kw)}


class _Upper:
    def serialize(self, v):
        return v

    def deserialize(self, d):
        if d == "bad":
            raise SerializationError("unreadable")
        return d.upper()


def test_a_callback_payload_goes_through_the_handle_serdes():
    ops = _cb(S.SUCCEEDED, callback_id="cid", result="hi")
    assert run(awaiting(serdes=_Upper()), ops)[-1].value == ("ok", "HI")
    assert run(awaiting(), ops)[-1].value == ("ok", "hi")


def test_a_callback_without_a_payload_gives_an_empty_string():
    ops = _cb(S.SUCCEEDED, callback_id="cid")
    assert run(awaiting(), ops)[-1].value == ("ok", "")


def test_an_unreadable_callback_payload_fails_the_await():
    ops = _cb(S.SUCCEEDED, callback_id="cid", result="bad")
    err, _data, _trace, _cause = run(awaiting(serdes=_Upper()), ops)[-1].value
    assert err == (
        "CallbackFailedError",
        qualified_name(SerializationError),
        "the callback's payload cannot be read: unreadable",
        "cb",
        OP1,
    )


@pytest.mark.parametrize(
    ("status", "cls", "default"),
    [
        (S.TIMED_OUT, CallbackTimeoutError, "Callback timed out"),
        (S.FAILED, CallbackFailedError, "Callback failed"),
    ],
)
def test_a_callback_that_did_not_succeed(status, cls, default):
    recorded = ErrorObject(type="Ext", message="m", data="d", stack_trace=("a", "b"))
    ops = _cb(status, callback_id="cid", error=recorded)
    assert run(awaiting(), ops)[-1].value == (
        (cls.__name__, cls.wire_type, "m", "cb", OP1),
        "d",
        ("a", "b"),
        (cls.__name__, "Ext", "m", "cb", OP1),
    )
    ops = _cb(status, callback_id="cid")
    err, data, trace, cause = run(awaiting(), ops)[-1].value
    assert err == (cls.__name__, cls.wire_type, default, "cb", OP1)
    assert (data, trace) == (None, None)
    assert cause == (cls.__name__, None, None, "cb", OP1)


def test_a_recorded_callback_without_an_id_is_a_corrupt_log():
    with pytest.raises(CorruptLogError) as info:
        run(awaiting(), _cb(S.STARTED))
    assert str(info.value) == (
        f"the recorded CreateCallback 'cb' (the 1st operation of the root context, id "
        f"{OP1!r}) cannot be replayed: a recorded callback has no CallbackId"
    )


@pytest.mark.parametrize(("name", "shown"), [("cb", "'cb'"), (None, repr(OP1))])
def test_the_service_must_return_a_callback_id(name, shown):
    interp = Interpreter(awaiting(name), None, {}, now=0, execution_id="e")
    cmd = interp.next_command()
    assert isinstance(cmd, Checkpoint)
    (start,) = cmd.updates
    assert (start.action, start.name, start.parent_id) == (A.START, name, None)
    with pytest.raises(StoreError) as info:
        interp.checkpointed({})
    assert str(info.value) == f"the service did not return a CallbackId for callback {shown}"
    interp = Interpreter(awaiting(name), None, {}, now=0, execution_id="e")
    interp.next_command()
    with pytest.raises(StoreError):
        interp.checkpointed({OP1: _cb(S.STARTED)[OP1]})


@pytest.mark.parametrize(("name", "shown"), [("cb", "'cb'"), (None, "'cid'")])
def test_awaiting_a_callback_never_created(name, shown):
    handle = CallbackHandle(callback_id="cid", operation_id="nowhere", name=name)

    def wf(_):
        yield handle

    with pytest.raises(WorkflowDefinitionError) as info:
        run(wf, {})
    assert str(info.value) == (
        f"the workflow awaited callback {shown}, which this execution never created; "
        "yield CreateCallback(...) first and await the handle it yields"
    )


# -- WaitForCallback -------------------------------------------------------------------------


def _wfc(**kw):
    def wf(_):
        try:
            return ("ok", (yield WaitForCallback(lambda cid: None, **kw)))
        except Exception as e:
            return err_of(e)

    return wf


@pytest.mark.parametrize(
    ("error_type", "cls", "shown_type"),
    [
        ("Callback.Timeout", CallbackTimeoutError, "Callback.Timeout"),
        ("Callback.Heartbeat", CallbackTimeoutError, "Callback.Heartbeat"),
        (StepError.wire_type, CallbackSubmitterError, CallbackSubmitterError.wire_type),
        ("Other", CallbackFailedError, "Other"),
    ],
)
def test_a_recorded_failed_wait_for_callback(error_type, cls, shown_type):
    ops = {
        OP1: op(
            OP1,
            T.CONTEXT,
            S.FAILED,
            None,
            "w",
            "WaitForCallback",
            error=ErrorObject(type=error_type, message="m"),
        )
    }
    assert run(_wfc(name="w"), ops)[-1].value == (cls.__name__, shown_type, "m", "w", OP1)


@pytest.mark.parametrize(
    ("name", "cb_name", "step_name"),
    [("w", "w create callback id", "w submitter"), (None, "create callback id", "submitter")],
)
def test_a_wait_for_callback_records_as_aws(name, cb_name, step_name):
    cid = OP1
    ops = {
        cid: op(cid, T.CONTEXT, S.STARTED, None, name, "WaitForCallback"),
        operation_id(cid, 1): op(
            operation_id(cid, 1),
            T.CALLBACK,
            S.SUCCEEDED,
            cid,
            cb_name,
            "Callback",
            callback_id="x",
            result="hi",
        ),
        operation_id(cid, 2): op(operation_id(cid, 2), T.STEP, S.SUCCEEDED, cid, step_name, "Step"),
    }
    cmds = run(_wfc(name=name, serdes=_Upper()), ops)
    assert cmds[-1].value == ("ok", "HI")


def test_a_new_wait_for_callback_passes_its_timeouts():
    interp = Interpreter(
        _wfc(name="w", timeout=30, heartbeat_timeout=10), None, {}, now=0, execution_id="e"
    )
    cmd = interp.next_command()
    assert isinstance(cmd, Checkpoint)
    cb = [u for u in cmd.updates if u.type is T.CALLBACK]
    assert [
        (u.name, u.callback_timeout_seconds, u.callback_heartbeat_timeout_seconds) for u in cb
    ] == [("w create callback id", 30, 10)]
