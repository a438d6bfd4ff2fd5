"""Tests that kill the mutants of durable_gen/_core/service.py (issue 29, see mutation/).

The service functions are pure, so each test applies one update (or completion) to
a known log and compares the whole result -- the changed operation and the history
events, as AWS shapes them -- with the expected values, and pins every refusal's
message.
"""

from __future__ import annotations

import attrs
import pytest

from durable_gen._core.errors import ErrorObject
from durable_gen._core.log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from durable_gen._core.service import (
    InvalidUpdateError,
    apply_updates,
    chained_execution_id,
    complete_callback,
    complete_chained_invoke,
    execution_finished_event,
    fire_timers,
    invocation_completed_event,
    next_timer,
    start_execution,
)

T = OperationType
A = OperationAction
S = OperationStatus
NOW = 1_000_000
ERR = ErrorObject(type="KeyError", message="k")
ERR_DICT = {"Payload": {"ErrorType": "KeyError", "ErrorMessage": "k"}, "Truncated": False}
NO_ERR = {"Payload": {}, "Truncated": False}


def _apply(ops, *updates, now=NOW, **kw):
    return apply_updates({op.id: op for op in ops}, updates, now, **kw)


def _one(ops, update, now=NOW, **kw):
    changed, events = _apply(ops, update, now=now, **kw)
    assert list(changed) == [update.id]
    return changed[update.id], events


def _ctx(op_id="ctx"):
    return Operation(id=op_id, type=T.CONTEXT, status=S.STARTED, start_timestamp=0)


def _step(status=S.STARTED, **kw):
    return Operation(id="s", type=T.STEP, status=status, start_timestamp=0, name="n", **kw)


# -- the execution's own events ----------------------------------------------------------


def test_start_execution():
    op, event = start_execution("ex", '{"a": 1}', NOW, timeout_seconds=60)
    assert op == Operation(
        id="ex", type=T.EXECUTION, status=S.STARTED, start_timestamp=NOW, input_payload='{"a": 1}'
    )
    assert event == {
        "EventType": "ExecutionStarted",
        "EventTimestamp": NOW,
        "Id": "ex",
        "ExecutionStartedDetails": {
            "Input": {"Payload": '{"a": 1}', "Truncated": False},
            "ExecutionTimeout": 60,
        },
    }
    assert "ExecutionTimeout" not in start_execution("ex", "", NOW)[1]["ExecutionStartedDetails"]


@pytest.mark.parametrize(
    ("status", "name", "details"),
    [
        ("SUCCEEDED", "ExecutionSucceeded", {"Result": {"Payload": "r", "Truncated": False}}),
        ("FAILED", "ExecutionFailed", {"Error": ERR_DICT}),
        ("TIMED_OUT", "ExecutionTimedOut", {"Error": ERR_DICT}),
        ("STOPPED", "ExecutionStopped", {"Error": ERR_DICT}),
    ],
)
def test_execution_finished_event(status, name, details):
    event = execution_finished_event("ex", status, NOW, result="r", error=ERR)
    assert event == {
        "EventType": name,
        "EventTimestamp": NOW,
        "Id": "ex",
        f"{name}Details": details,
    }


def test_execution_finished_without_result_or_error():
    ok = execution_finished_event("ex", "SUCCEEDED", NOW, result=None, error=None)
    assert ok["ExecutionSucceededDetails"] == {"Result": {"Payload": "", "Truncated": False}}
    failed = execution_finished_event("ex", "FAILED", NOW, result=None, error=None)
    assert failed["ExecutionFailedDetails"] == {"Error": NO_ERR}


def test_execution_update_ends_the_execution():
    ex = Operation(id="ex", type=T.EXECUTION, status=S.STARTED, start_timestamp=0)
    new, events = _one([ex], OperationUpdate(id="ex", type=T.EXECUTION, action=A.FAIL, error=ERR))
    assert new == Operation(
        id="ex", type=T.EXECUTION, status=S.FAILED, start_timestamp=0, end_timestamp=NOW, error=ERR
    )
    assert events == []
    new, _ = _one([ex], OperationUpdate(id="ex", type=T.EXECUTION, action=A.SUCCEED, payload="1"))
    assert (new.status, new.result, new.end_timestamp) == (S.SUCCEEDED, "1", NOW)


def test_execution_update_needs_the_execution():
    with pytest.raises(InvalidUpdateError, match=r"^no EXECUTION operation 'ex'$"):
        _apply([], OperationUpdate(id="ex", type=T.EXECUTION, action=A.SUCCEED))


# -- steps ------------------------------------------------------------------------------


def test_step_start_in_a_context():
    upd = OperationUpdate(
        id="s", type=T.STEP, action=A.START, parent_id="ctx", name="n", sub_type="Step"
    )
    new, events = _one([_ctx()], upd)
    assert new == Operation(
        id="s",
        type=T.STEP,
        status=S.STARTED,
        start_timestamp=NOW,
        parent_id="ctx",
        name="n",
        sub_type="Step",
    )
    assert events == [
        {
            "EventType": "StepStarted",
            "EventTimestamp": NOW,
            "Id": "s",
            "Name": "n",
            "ParentId": "ctx",
            "SubType": "Step",
            "StepStartedDetails": {},
        }
    ]


def test_step_succeed_first_and_later_attempt():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r")
    new, events = _one([_step()], upd)
    assert (new.status, new.attempt, new.result, new.end_timestamp) == (S.SUCCEEDED, 1, "r", NOW)
    assert events[0]["StepSucceededDetails"] == {"Result": {"Payload": "r", "Truncated": False}}
    new, events = _one([_step(attempt=2, error=ERR, next_attempt_timestamp=5)], upd)
    assert (new.attempt, new.error, new.next_attempt_timestamp) == (3, None, None)
    assert events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": "r", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 3},
    }


def test_step_succeed_with_args_digest_takes_the_general_path():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", args_digest="d")
    new, events = _one([_step(attempt=1)], upd)
    assert (new.status, new.attempt, new.args_digest, new.result) == (S.SUCCEEDED, 2, "d", None)
    assert events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": "", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 2},
    }


def test_step_start_again_keeps_the_attempt_count():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.START, name="n")
    new, events = _one([_step(S.READY, attempt=2)], upd)
    assert (new.status, new.attempt) == (S.STARTED, 2)
    assert events[0]["EventType"] == "StepStarted"


def test_step_fail():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.FAIL, name="n", error=ERR)
    new, events = _one([_step(attempt=1)], upd)
    assert (new.status, new.attempt, new.error, new.end_timestamp) == (S.FAILED, 2, ERR, NOW)
    assert events == [
        {
            "EventType": "StepFailed",
            "EventTimestamp": NOW,
            "Id": "s",
            "Name": "n",
            "StepFailedDetails": {"Error": ERR_DICT, "RetryDetails": {"CurrentAttempt": 2}},
        }
    ]


def test_step_retry():
    upd = OperationUpdate(
        id="s", type=T.STEP, action=A.RETRY, name="n", error=ERR, next_attempt_delay_seconds=7
    )
    new, events = _one([_step()], upd)
    assert new == _step(S.PENDING, attempt=1, next_attempt_timestamp=NOW + 7000, error=ERR)
    assert events == [
        {
            "EventType": "StepFailed",
            "EventTimestamp": NOW,
            "Id": "s",
            "Name": "n",
            "StepFailedDetails": {
                "Error": ERR_DICT,
                "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 7},
            },
        }
    ]


def test_wait_for_condition_poll_is_a_retry_that_succeeded():
    wfc = Operation(
        id="s",
        type=T.STEP,
        status=S.STARTED,
        start_timestamp=0,
        name="n",
        sub_type="WaitForCondition",
    )
    upd = OperationUpdate(
        id="s",
        type=T.STEP,
        action=A.RETRY,
        name="n",
        sub_type="WaitForCondition",
        payload="state",
        next_attempt_delay_seconds=3,
    )
    new, events = _one([wfc], upd)
    assert (new.status, new.result, new.next_attempt_timestamp) == (S.PENDING, "state", NOW + 3000)
    assert events[0]["EventType"] == "StepSucceeded"
    assert events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": "state", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 3},
    }
    upd_err = OperationUpdate(
        id="s",
        type=T.STEP,
        action=A.RETRY,
        name="n",
        sub_type="WaitForCondition",
        error=ERR,
        next_attempt_delay_seconds=3,
    )
    assert _one([wfc], upd_err)[1][0]["EventType"] == "StepFailed"


def test_retry_needs_a_delay():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.RETRY, name="n")
    with pytest.raises(
        InvalidUpdateError, match=r"^RETRY of step 's' needs StepOptions.NextAttemptDelaySeconds$"
    ):
        _apply([_step()], upd)


# -- refusals ---------------------------------------------------------------------------


def test_refuses_an_action_the_type_has_not():
    upd = OperationUpdate(id="w", type=T.WAIT, action=A.SUCCEED)
    with pytest.raises(InvalidUpdateError, match=r"^invalid action SUCCEED for a WAIT operation$"):
        _apply([], upd)


def test_refuses_an_update_that_does_not_match_the_record():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="other", sub_type="Step")
    with pytest.raises(
        InvalidUpdateError,
        match=(
            r"^update for operation 's' does not match the recorded operation "
            r"\(recorded STEP/None/'n', update STEP/Step/'other'\)$"
        ),
    ):
        _apply([_step()], upd)
    for mismatch in (
        OperationUpdate(id="s", type=T.CONTEXT, action=A.SUCCEED, name="n"),
        OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", sub_type="Step"),
    ):
        with pytest.raises(InvalidUpdateError, match="does not match the recorded operation"):
            _apply([_step()], mismatch)


def test_refuses_to_change_an_ended_operation():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.FAIL, name="n")
    with pytest.raises(
        InvalidUpdateError, match=r"^operation 's' already ended SUCCEEDED; it cannot FAIL$"
    ):
        _apply([_step(S.SUCCEEDED)], upd)


@pytest.mark.parametrize("parent", ["missing", "step"])
def test_refuses_a_parent_that_is_not_a_context(parent):
    step = Operation(id="step", type=T.STEP, status=S.STARTED, start_timestamp=0)
    upd = OperationUpdate(id="s", type=T.STEP, action=A.START, parent_id=parent)
    with pytest.raises(
        InvalidUpdateError,
        match=(
            rf"^update for operation 's' names parent '{parent}', "
            r"which is not a recorded CONTEXT operation$"
        ),
    ):
        _apply([step], upd)


def test_a_parent_context_created_in_the_same_batch_is_accepted():
    changed, _ = _apply(
        [],
        OperationUpdate(id="c", type=T.CONTEXT, action=A.START),
        OperationUpdate(id="s", type=T.STEP, action=A.START, parent_id="c"),
    )
    assert changed["s"].parent_id == "c"


def test_a_bad_update_applies_nothing_and_updates_chain_within_a_batch():
    changed, events = _apply(
        [],
        OperationUpdate(id="s", type=T.STEP, action=A.START, name="n"),
        OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r"),
    )
    assert (changed["s"].status, changed["s"].attempt) == (S.SUCCEEDED, 1)
    assert [e["EventType"] for e in events] == ["StepStarted", "StepSucceeded"]


# -- waits, contexts, callbacks, chained invokes ----------------------------------------


def test_wait_start_and_cancel():
    upd = OperationUpdate(id="w", type=T.WAIT, action=A.START, name="nap", wait_seconds=5)
    new, events = _one([], upd)
    assert new == Operation(
        id="w",
        type=T.WAIT,
        status=S.STARTED,
        start_timestamp=NOW,
        name="nap",
        scheduled_end_timestamp=NOW + 5000,
    )
    assert events[0]["WaitStartedDetails"] == {
        "Duration": 5,
        "ScheduledEndTimestamp": NOW + 5000,
    }
    new, events = _one([new], OperationUpdate(id="w", type=T.WAIT, action=A.CANCEL, name="nap"))
    assert (new.status, new.end_timestamp) == (S.CANCELLED, NOW)
    assert events[0]["EventType"] == "WaitCancelled"
    assert events[0]["WaitCancelledDetails"] == {}


@pytest.mark.parametrize("secs", [None, 0])
def test_wait_needs_a_duration(secs):
    upd = OperationUpdate(id="w", type=T.WAIT, action=A.START, wait_seconds=secs)
    with pytest.raises(
        InvalidUpdateError, match=r"^WAIT START 'w' needs WaitOptions.WaitSeconds >= 1$"
    ):
        _apply([], upd)


def test_wait_of_one_second_is_accepted():
    upd = OperationUpdate(id="w", type=T.WAIT, action=A.START, wait_seconds=1)
    assert _one([], upd)[0].scheduled_end_timestamp == NOW + 1000


def test_context_succeed_and_fail():
    upd = OperationUpdate(
        id="ctx", type=T.CONTEXT, action=A.SUCCEED, payload="r", replay_children=True
    )
    new, events = _one([_ctx()], upd)
    assert (new.status, new.result, new.replay_children) == (S.SUCCEEDED, "r", True)
    assert events[0]["ContextSucceededDetails"] == {"Result": {"Payload": "r", "Truncated": False}}
    new, _ = _one([_ctx()], OperationUpdate(id="ctx", type=T.CONTEXT, action=A.SUCCEED))
    assert new.replay_children is None
    new, events = _one(
        [_ctx()], OperationUpdate(id="ctx", type=T.CONTEXT, action=A.FAIL, error=ERR)
    )
    assert (new.status, new.error) == (S.FAILED, ERR)
    assert events[0]["ContextFailedDetails"] == {"Error": ERR_DICT}


def test_callback_start():
    upd = OperationUpdate(
        id="cb",
        type=T.CALLBACK,
        action=A.START,
        name="approval",
        callback_timeout_seconds=30,
        callback_heartbeat_timeout_seconds=0,
    )
    new, events = _one([], upd, new_callback_id=lambda op_id: f"id-{op_id}")
    assert new == Operation(
        id="cb",
        type=T.CALLBACK,
        status=S.STARTED,
        start_timestamp=NOW,
        name="approval",
        callback_id="id-cb",
        callback_timeout=30,
        callback_heartbeat_timeout=None,
    )
    assert events[0]["CallbackStartedDetails"] == {
        "CallbackId": "id-cb",
        "Timeout": 30,
        "HeartbeatTimeout": 0,
    }
    plain = OperationUpdate(id="cb", type=T.CALLBACK, action=A.START, callback_timeout_seconds=0)
    new, events = _one([], plain, new_callback_id=str)
    assert (new.callback_timeout, events[0]["CallbackStartedDetails"]["Timeout"]) == (None, 0)


def test_callback_start_needs_a_store_that_can_create_callbacks():
    upd = OperationUpdate(id="cb", type=T.CALLBACK, action=A.START)
    with pytest.raises(InvalidUpdateError, match=r"^this store cannot create callbacks$"):
        _apply([], upd)


def test_chained_invoke_start():
    upd = OperationUpdate(
        id="0123456789abcdef-tail",
        type=T.CHAINED_INVOKE,
        action=A.START,
        name="call",
        payload="in",
        function_name="fn",
        tenant_id="t",
    )
    new, events = _one([], upd, execution_id="ex")
    assert (new.function_name, new.input_payload, new.status) == ("fn", "in", S.STARTED)
    assert events[0]["ChainedInvokeStartedDetails"] == {
        "Input": {"Payload": "in", "Truncated": False},
        "FunctionName": "fn",
        "TenantId": "t",
        "ExecutedVersion": "$LATEST",
        "DurableExecutionArn": "ex.0123456789abcdef",
    }
    assert chained_execution_id("ex", "0123456789abcdef-tail") == "ex.0123456789abcdef"
    plain = OperationUpdate(id="c", type=T.CHAINED_INVOKE, action=A.START, function_name="fn")
    _, events = _one([], plain)
    assert events[0]["ChainedInvokeStartedDetails"] == {
        "Input": {"Payload": "", "Truncated": False},
        "FunctionName": "fn",
    }


def _invoke():
    return Operation(id="c", type=T.CHAINED_INVOKE, status=S.STARTED, start_timestamp=0, name="i")


@pytest.mark.parametrize(
    ("status", "name"),
    [
        ("FAILED", "ChainedInvokeFailed"),
        ("TIMED_OUT", "ChainedInvokeTimedOut"),
        ("STOPPED", "ChainedInvokeStopped"),
    ],
)
def test_complete_chained_invoke_with_a_failure(status, name):
    new, events = complete_chained_invoke(_invoke(), status, NOW, result="ignored", error=ERR)
    assert new == Operation(
        id="c",
        type=T.CHAINED_INVOKE,
        status=S(status),
        start_timestamp=0,
        name="i",
        end_timestamp=NOW,
        error=ERR,
    )
    assert events == [
        {
            "EventType": name,
            "EventTimestamp": NOW,
            "Id": "c",
            "Name": "i",
            f"{name}Details": {"Error": ERR_DICT},
        }
    ]


def test_complete_chained_invoke_with_success():
    new, events = complete_chained_invoke(_invoke(), "SUCCEEDED", NOW, result="r", error=ERR)
    assert (new.status, new.result, new.error, new.end_timestamp) == (S.SUCCEEDED, "r", None, NOW)
    assert events == [
        {
            "EventType": "ChainedInvokeSucceeded",
            "EventTimestamp": NOW,
            "Id": "c",
            "Name": "i",
            "ChainedInvokeSucceededDetails": {"Result": {"Payload": "r", "Truncated": False}},
        }
    ]


@pytest.mark.parametrize(
    "op",
    [
        Operation(id="c", type=T.CHAINED_INVOKE, status=S.SUCCEEDED, start_timestamp=0),
        Operation(id="c", type=T.STEP, status=S.STARTED, start_timestamp=0),
    ],
)
def test_complete_chained_invoke_refuses_what_is_not_running(op):
    with pytest.raises(
        InvalidUpdateError, match=r"^operation 'c' is not a running chained invoke$"
    ):
        complete_chained_invoke(op, "SUCCEEDED", NOW)


def _callback(**kw):
    return Operation(
        id="cb", type=T.CALLBACK, status=S.STARTED, start_timestamp=0, callback_id="x", **kw
    )


def test_complete_callback_succeed_fail_heartbeat():
    new, events = complete_callback(_callback(), "succeed", NOW, payload="p")
    assert new == Operation(
        id="cb",
        type=T.CALLBACK,
        status=S.SUCCEEDED,
        start_timestamp=0,
        callback_id="x",
        end_timestamp=NOW,
        result="p",
    )
    assert events == [
        {
            "EventType": "CallbackSucceeded",
            "EventTimestamp": NOW,
            "Id": "cb",
            "CallbackSucceededDetails": {"Result": {"Payload": "p", "Truncated": False}},
        }
    ]
    new, _ = complete_callback(_callback(), "succeed", NOW)
    assert new.result == ""
    new, events = complete_callback(_callback(), "fail", NOW, error=ERR)
    assert (new.status, new.error, new.end_timestamp) == (S.FAILED, ERR, NOW)
    assert events == [
        {
            "EventType": "CallbackFailed",
            "EventTimestamp": NOW,
            "Id": "cb",
            "CallbackFailedDetails": {"Error": ERR_DICT},
        }
    ]
    new, events = complete_callback(_callback(), "fail", NOW)
    assert (new.error, events[0]["CallbackFailedDetails"]) == (ErrorObject(), {"Error": NO_ERR})
    new, events = complete_callback(_callback(), "heartbeat", NOW)
    assert (new, events) == (_callback(last_heartbeat=NOW), [])


def test_complete_callback_refusals():
    with pytest.raises(InvalidUpdateError, match=r"^operation 's' is not a callback$"):
        complete_callback(_step(), "succeed", NOW)
    done = Operation(
        id="cb", type=T.CALLBACK, status=S.SUCCEEDED, start_timestamp=0, callback_id="x"
    )
    with pytest.raises(
        InvalidUpdateError,
        match=r"^callback 'x' already ended SUCCEEDED; it cannot be completed again$",
    ):
        complete_callback(done, "succeed", NOW)
    with pytest.raises(
        InvalidUpdateError,
        match=r"^unknown callback action 'poke'; use succeed, fail or heartbeat$",
    ):
        complete_callback(_callback(), "poke", NOW)


# -- timers -----------------------------------------------------------------------------


def test_callback_timeouts_and_heartbeats():
    cb = _callback(callback_timeout=30, callback_heartbeat_timeout=10)
    assert next_timer([cb]) == 10_000
    changed, events = fire_timers({"cb": cb}, 10_000)
    new = changed["cb"]
    assert new.error == ErrorObject(
        type="Callback.Heartbeat", message="Callback timed out on heartbeat"
    )
    assert (new.status, new.end_timestamp) == (S.TIMED_OUT, 10_000)
    assert events == [
        {
            "EventType": "CallbackTimedOut",
            "EventTimestamp": 10_000,
            "Id": "cb",
            "CallbackTimedOutDetails": {
                "Error": {
                    "Payload": {
                        "ErrorType": "Callback.Heartbeat",
                        "ErrorMessage": "Callback timed out on heartbeat",
                    },
                    "Truncated": False,
                }
            },
        }
    ]
    assert fire_timers({"cb": cb}, 9_999) == ({}, [])
    beat = _callback(callback_timeout=30, callback_heartbeat_timeout=10, last_heartbeat=25_000)
    assert next_timer([beat]) == 30_000
    assert fire_timers({"cb": beat}, 34_999)[0]["cb"].error == ErrorObject(
        type="Callback.Timeout", message="Callback timed out"
    )
    assert next_timer([_callback(callback_heartbeat_timeout=10, last_heartbeat=5_000)]) == 15_000
    assert fire_timers(
        {"cb": _callback(callback_heartbeat_timeout=10, last_heartbeat=5_000)}, 14_999
    ) == ({}, [])
    assert next_timer([_callback()]) is None


def test_wait_timer_fires_with_its_duration():
    wait = Operation(
        id="w", type=T.WAIT, status=S.STARTED, start_timestamp=1_000, scheduled_end_timestamp=6_000
    )
    assert next_timer([wait]) == 6_000
    assert fire_timers({"w": wait}, 5_999) == ({}, [])
    changed, events = fire_timers({"w": wait}, 6_400)
    assert (changed["w"].status, changed["w"].end_timestamp) == (S.SUCCEEDED, 6_400)
    assert events == [
        {
            "EventType": "WaitSucceeded",
            "EventTimestamp": 6_400,
            "Id": "w",
            "WaitSucceededDetails": {"Duration": 5},
        }
    ]


def test_next_timer_is_the_earliest():
    a = _step(S.PENDING, next_attempt_timestamp=9_000)
    b = Operation(
        id="w", type=T.WAIT, status=S.STARTED, start_timestamp=0, scheduled_end_timestamp=4_000
    )
    c = _callback(callback_timeout=7)
    assert next_timer([a, b, c]) == 4_000
    assert next_timer([c, a]) == 7_000
    assert next_timer([a]) == 9_000
    assert next_timer([_step(S.SUCCEEDED, next_attempt_timestamp=1)]) is None
    assert next_timer([]) is None


# -- paths the first tests left open (mutation survivors) --------------------------------


def test_step_succeed_without_a_start_records_attempt_one():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r")
    new, events = _one([], upd)
    assert new == Operation(
        id="s",
        type=T.STEP,
        status=S.SUCCEEDED,
        start_timestamp=NOW,
        name="n",
        end_timestamp=NOW,
        attempt=1,
        result="r",
    )
    assert events == [
        {
            "EventType": "StepSucceeded",
            "EventTimestamp": NOW,
            "Id": "s",
            "Name": "n",
            "StepSucceededDetails": {"Result": {"Payload": "r", "Truncated": False}},
        }
    ]


def test_step_start_records_the_args_digest():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.START, name="n", args_digest="d")
    assert _one([], upd)[0].args_digest == "d"


def test_step_succeed_event_is_exact():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r")
    _, events = _one([_step()], upd)
    assert events == [
        {
            "EventType": "StepSucceeded",
            "EventTimestamp": NOW,
            "Id": "s",
            "Name": "n",
            "StepSucceededDetails": {"Result": {"Payload": "r", "Truncated": False}},
        }
    ]


def test_general_path_succeed_after_a_retry_clears_the_retry_fields():
    retried = _step(attempt=1, error=ERR, next_attempt_timestamp=5)
    upd = OperationUpdate(
        id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r", args_digest="d"
    )
    new, events = _one([retried], upd)
    assert new == _step(S.SUCCEEDED, attempt=2, result="r", end_timestamp=NOW, args_digest="d")
    assert events[0]["StepSucceededDetails"] == {
        "Result": {"Payload": "r", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 2},
    }
    first = OperationUpdate(
        id="s", type=T.STEP, action=A.SUCCEED, name="n", payload="r", args_digest="d"
    )
    _, events = _one([_step()], first)
    assert events[0]["StepSucceededDetails"] == {"Result": {"Payload": "r", "Truncated": False}}


def test_step_fail_after_a_retry_clears_the_due_time():
    upd = OperationUpdate(id="s", type=T.STEP, action=A.FAIL, name="n", error=ERR)
    new, _ = _one([_step(attempt=1, next_attempt_timestamp=5)], upd)
    assert new == _step(S.FAILED, attempt=2, error=ERR, end_timestamp=NOW)


def test_succeed_refusals_on_the_fast_path():
    succeed = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n")
    with pytest.raises(InvalidUpdateError, match=r"^operation 's' already ended SUCCEEDED; it"):
        _apply([_step(S.SUCCEEDED)], succeed)
    ctx = Operation(id="s", type=T.CONTEXT, status=S.STARTED, start_timestamp=0, name="n")
    with pytest.raises(InvalidUpdateError, match="does not match the recorded operation"):
        _apply([ctx], succeed)
    renamed = OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="other")
    with pytest.raises(InvalidUpdateError, match="does not match the recorded operation"):
        _apply([_step()], renamed)


def test_a_later_update_in_a_batch_sees_the_earlier_one():
    with pytest.raises(InvalidUpdateError, match=r"^operation 's' already ended FAILED"):
        _apply(
            [_step()],
            OperationUpdate(id="s", type=T.STEP, action=A.FAIL, name="n"),
            OperationUpdate(id="s", type=T.STEP, action=A.SUCCEED, name="n"),
        )


def test_context_start_event_has_empty_details():
    _, events = _one([], OperationUpdate(id="c", type=T.CONTEXT, action=A.START, name="c"))
    assert events == [
        {
            "EventType": "ContextStarted",
            "EventTimestamp": NOW,
            "Id": "c",
            "Name": "c",
            "ContextStartedDetails": {},
        }
    ]


def test_callback_start_records_the_heartbeat_timeout():
    upd = OperationUpdate(
        id="cb", type=T.CALLBACK, action=A.START, callback_heartbeat_timeout_seconds=15
    )
    new, events = _one([], upd, new_callback_id=str)
    assert new.callback_heartbeat_timeout == 15
    assert events[0]["CallbackStartedDetails"]["HeartbeatTimeout"] == 15


def test_fire_timers_leaves_a_started_step_alone():
    # START after a retry keeps the old due time; only a PENDING step is fired.
    started = _step(S.STARTED, attempt=1, next_attempt_timestamp=5)
    assert fire_timers({"s": started}, NOW) == ({}, [])


def test_wait_duration_in_the_event_is_whole_seconds():
    wait = Operation(
        id="w", type=T.WAIT, status=S.STARTED, start_timestamp=0, scheduled_end_timestamp=1_000_000
    )
    _, events = fire_timers({"w": wait}, 1_000_000)
    assert events[0]["WaitSucceededDetails"] == {"Duration": 1000}


def test_invocation_completed_event():
    assert invocation_completed_event("ex", 1, 2, "req", ERR) == {
        "EventType": "InvocationCompleted",
        "EventTimestamp": 2,
        "Id": "ex",
        "InvocationCompletedDetails": {
            "StartTimestamp": 1,
            "EndTimestamp": 2,
            "RequestId": "req",
            "Error": ERR_DICT,
        },
    }
    assert (
        "Error" not in invocation_completed_event("ex", 1, 2, "req")["InvocationCompletedDetails"]
    )


# ------------------------------------------------------------ an execution timing out


def test_time_out_ends_the_execution_cancels_waits_and_times_out_callbacks_only():
    from durable_gen._core.service import time_out_execution

    started = {
        "ex": Operation(id="ex", type=T.EXECUTION, status=S.STARTED, start_timestamp=0),
        "w": Operation(id="w", type=T.WAIT, status=S.STARTED, start_timestamp=5, name="pause"),
        "cb": Operation(
            id="cb", type=T.CALLBACK, status=S.STARTED, start_timestamp=6, name="approval"
        ),
        # a step in flight stays as it is; an ended wait too
        "s": Operation(id="s", type=T.STEP, status=S.STARTED, start_timestamp=7, name="busy"),
        "done": Operation(
            id="done", type=T.WAIT, status=S.SUCCEEDED, start_timestamp=1, end_timestamp=2
        ),
    }
    changed, events, error = time_out_execution(started, "exec-1", 3_600_500, 3_600_000)
    assert error == ErrorObject(message="Execution timed out after 3600 seconds.")
    assert changed == {
        "ex": attrs.evolve(started["ex"], status=S.TIMED_OUT, end_timestamp=3_600_500),
        "w": attrs.evolve(started["w"], status=S.CANCELLED, end_timestamp=3_600_500),
        "cb": attrs.evolve(started["cb"], status=S.TIMED_OUT, end_timestamp=3_600_500, error=error),
    }
    message = {"Payload": {"ErrorMessage": "Execution timed out after 3600 seconds."}}
    assert events == [
        {
            "EventType": "WaitCancelled",
            "EventTimestamp": 3_600_500,
            "Id": "w",
            "Name": "pause",
            "WaitCancelledDetails": {},
        },
        {
            "EventType": "CallbackTimedOut",
            "EventTimestamp": 3_600_500,
            "Id": "cb",
            "Name": "approval",
            "CallbackTimedOutDetails": {"Error": {**message, "Truncated": False}},
        },
        {
            "EventType": "ExecutionTimedOut",
            "EventTimestamp": 3_600_500,
            "Id": "exec-1",
            "ExecutionTimedOutDetails": {"Error": {**message, "Truncated": False}},
        },
    ]
    # nothing open but the execution: only it ends, and its event is the only one
    changed, events, _ = time_out_execution({"ex": started["ex"]}, "exec-1", 9, 1_500)
    assert list(changed) == ["ex"]
    assert [e["EventType"] for e in events] == ["ExecutionTimedOut"]
    assert events[0]["ExecutionTimedOutDetails"]["Error"]["Payload"] == {
        "ErrorMessage": "Execution timed out after 1.5 seconds."
    }


def test_a_timed_out_chained_invoke_carries_the_services_error():
    from durable_gen._core.service import CHAINED_INVOKE_TIMEOUT, chained_invoke_timeout_error

    assert CHAINED_INVOKE_TIMEOUT == "ChainedInvoke.Timeout"
    assert chained_invoke_timeout_error(1_500) == ErrorObject(
        type="ChainedInvoke.Timeout", message="CHAINED_INVOKE timed out after 1.5 seconds."
    )
    assert chained_invoke_timeout_error(60_000).message == (
        "CHAINED_INVOKE timed out after 60 seconds."
    )
