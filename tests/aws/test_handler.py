"""The Lambda handler shim against an in-process fake of the durable service."""

import datetime
import json
import re
import threading
import time

import pytest
from botocore.exceptions import EndpointConnectionError

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    CorruptLogError,
    CreateCallback,
    Jitter,
    NonDeterminismError,
    OperationStatus,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    StoreError,
    Wait,
    current_attempt,
)
from durable_gen.aws import (
    LAMBDA_RESPONSE_LIMIT,
    ApiRetry,
    BatchLimits,
    InvalidEventError,
    durable_handler,
)

from .fake_service import FakeDurableService, client_error

NO_SLEEP = ApiRetry(max_attempts=3, base_delay=0.5, sleep=lambda s: None)
FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=2, jitter=Jitter.NONE)


def double(x):
    return x * 2


def three_steps(event):
    a = yield Step(double, event["n"], name="a")
    b = yield Step(double, a, name="b")
    c = yield Step(double, b, name="c")
    return {"c": c}


def make(workflow, svc=None, **kw):
    svc = svc or FakeDurableService()
    kw.setdefault("retry", NO_SLEEP)
    handler = durable_handler(workflow, client=svc, **kw)
    handler.clock = svc.clock
    return svc, handler


def run(workflow, input_value=None, svc=None, **kw):
    svc, handler = make(workflow, svc, **kw)
    arn = svc.start(json.dumps(input_value if input_value is not None else {}))
    ex = svc.run(handler, arn)
    return svc, ex


# ---------------------------------------------------------------- results


def test_straight_line_steps_succeed_in_one_invocation_one_call_per_step():
    svc, ex = run(three_steps, {"n": 1})
    assert ex.status == "SUCCEEDED"
    assert json.loads(ex.result) == {"c": 8}
    assert ex.invocations == 1
    # each at-least-once START rides with its SUCCEED: one call per step result
    assert svc.checkpoint_calls == 3
    assert [[(u["Action"], u["Name"]) for u in b] for b in svc.batches] == [
        [("START", "a"), ("SUCCEED", "a")],
        [("START", "b"), ("SUCCEED", "b")],
        [("START", "c"), ("SUCCEED", "c")],
    ]
    assert [
        e["EventType"]
        for e in svc.get_durable_execution_history(DurableExecutionArn=ex.arn)["Events"]
    ] == [
        "ExecutionStarted",
        *["StepStarted", "StepSucceeded"] * 3,
        "ExecutionSucceeded",
    ]


def test_result_is_compact_json_of_the_return_value():
    def wf(event):
        yield Step(double, 1, name="x")
        return {"k": [1, "a", None], "t": (1, 2)}

    svc, handler = make(wf)
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert out == {"Status": "SUCCEEDED", "Result": '{"k":[1,"a",null],"t":[1,2]}'}


def test_input_comes_from_the_execution_operation_and_blank_means_empty_object():
    seen = []

    def wf(event):
        seen.append(event)
        yield Step(double, 1, name="x")
        return None

    run(wf, {"a": 1})
    svc, handler = make(wf)
    arn = svc.start("")
    svc.run(handler, arn)
    assert seen == [{"a": 1}, {}]


def test_input_that_is_not_json_raises_corrupt_log():
    svc, handler = make(three_steps)
    arn = svc.start("{nope")
    with pytest.raises(CorruptLogError, match=r"the input of execution operation .* is not JSON"):
        handler(svc.event(arn), None)


def test_workflow_failure_returns_failed_with_error_object():
    def wf(event):
        yield Step(double, 1, name="x")
        raise ValueError("out of stock")

    svc, handler = make(wf)
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert out["Status"] == "FAILED"
    err = out["Error"]
    assert err["ErrorType"] == "ValueError"
    assert err["ErrorMessage"] == "out of stock"
    assert isinstance(err["StackTrace"], list)
    assert any("raise ValueError" in line for line in err["StackTrace"])
    assert set(out) == {"Status", "Error"}


def test_uncaught_step_error_is_recorded_as_aws_records_it():
    def boom():
        raise KeyError("sku")

    def wf(event):
        yield Step(boom, name="boom", retry=RetryPolicy.none())

    svc, ex = run(wf)
    assert ex.status == "FAILED"
    # AWS's ErrorObject.from_exception(StepError): the class name, the step's message
    assert ex.error["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert ex.error["ErrorMessage"] == "'sku'"
    assert [
        e["EventType"]
        for e in svc.get_durable_execution_history(DurableExecutionArn=ex.arn)["Events"]
    ][-2:] == [
        "StepFailed",
        "ExecutionFailed",
    ]


def test_result_json_cannot_carry_fails_clearly():
    def wf(event):
        yield Step(double, 1, name="x")
        return datetime.date(2026, 1, 1)

    svc, handler = make(wf)
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.SerializationError"
    assert "a Lambda durable function's result must be JSON" in out["Error"]["ErrorMessage"]


def test_large_result_is_checkpointed_on_the_execution_operation():
    big = "x" * (LAMBDA_RESPONSE_LIMIT + 10)

    def wf(event):
        yield Step(double, 1, name="x")
        return big

    svc, handler = make(wf)
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert out == {"Status": "SUCCEEDED", "Result": ""}
    last = svc.batches[-1]
    assert last[-1]["Type"] == "EXECUTION"
    assert last[-1]["Action"] == "SUCCEED"
    assert last[-1]["Id"] == svc.executions[arn].exec_id
    ex = svc.executions[arn]
    assert ex.status == "SUCCEEDED"
    assert json.loads(ex.result) == big


def test_result_just_under_the_limit_is_returned_inline():
    text = "y" * (LAMBDA_RESPONSE_LIMIT - 2)  # plus two quotes: exactly the limit

    def wf(event):
        yield Step(double, 1, name="x")
        return text

    svc, handler = make(wf)
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert len(out["Result"]) == LAMBDA_RESPONSE_LIMIT
    assert all(u["Type"] != "EXECUTION" for b in svc.batches for u in b)


# ---------------------------------------------------------------- semantics


def test_wait_returns_pending_then_resumes():
    calls = []

    def wf(event):
        a = yield Step(lambda: calls.append("a") or 1, name="a")
        yield Wait(seconds=30)
        b = yield Step(lambda: calls.append("b") or 2, name="b")
        return a + b

    svc, handler = make(wf)
    arn = svc.start()
    assert svc.invoke(handler, arn) == {"Status": "PENDING"}
    ex = svc.run(handler, arn)
    assert ex.status == "SUCCEEDED"
    assert ex.result == "3"
    assert calls == ["a", "b"]
    wait = next(op for op in svc.operations(arn) if op.type.value == "WAIT")
    assert wait.status is OperationStatus.SUCCEEDED


def test_retry_suspends_and_the_next_attempt_sees_its_number():
    attempts = []

    def flaky():
        attempts.append(current_attempt())
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return "ok"

    def wf(event):
        return (yield Step(flaky, name="flaky", retry=FAST_RETRY))

    svc, ex = run(wf)
    assert ex.status == "SUCCEEDED"
    assert ex.result == '"ok"'
    assert attempts == [1, 2, 3]
    assert ex.invocations == 3
    events = [
        e["EventType"]
        for e in svc.get_durable_execution_history(DurableExecutionArn=ex.arn)["Events"]
    ]
    assert events.count("StepFailed") == 2


def test_at_most_once_start_is_durable_before_the_function_runs():
    svc = FakeDurableService()
    seen = []

    def charge():
        arn = next(iter(svc.executions))
        ops = svc.executions[arn].ops.values()
        seen.append([(op.name, op.status.value) for op in ops if op.name == "charge"])
        return "receipt"

    def wf(event):
        return (yield Step(charge, name="charge", semantics=AT_MOST_ONCE_PER_RETRY))

    svc, ex = run(wf, svc=svc)
    assert ex.status == "SUCCEEDED"
    assert seen == [[("charge", "STARTED")]]
    assert [[u["Action"] for u in b] for b in svc.batches] == [["START"], ["SUCCEED"]]


def test_at_least_once_start_rides_with_the_result():
    svc = FakeDurableService()
    seen = []

    def step():
        seen.append(len(svc.batches))
        return 1

    def wf(event):
        return (yield Step(step, name="s"))

    run(wf, svc=svc)
    assert seen == [0]  # nothing was sent before the function ran


def test_child_context_start_rides_along():
    def child(n):
        v = yield Step(double, n, name="inner")
        return v + 1

    def wf(event):
        v = yield ChildContext(child, 2, name="kid")
        return v

    svc, ex = run(wf)
    assert ex.result == "5"
    assert [[(u["Type"], u["Action"]) for u in b] for b in svc.batches] == [
        [("CONTEXT", "START"), ("STEP", "START"), ("STEP", "SUCCEED")],
        [("CONTEXT", "SUCCEED")],
    ]


def test_replay_does_not_rerun_steps_and_sends_nothing_for_them():
    calls = []

    def wf(event):
        yield Step(lambda: calls.append(1), name="once")
        yield Wait(seconds=5)
        return "done"

    svc, ex = run(wf)
    assert calls == [1]
    assert ex.invocations == 2
    assert svc.checkpoint_calls == 2  # step result + wait START; the replay sends nothing


# ---------------------------------------------------------------- paging and batching


def many_steps(event):
    total = 0
    for i in range(event["n"]):
        total += yield Step(double, i, name=f"s{i}")
        if i % 7 == 3:
            yield Wait(seconds=1)
    return total


@pytest.mark.parametrize("page", [1, 2, 5])
def test_initial_state_pages_are_fetched(page):
    svc, ex = run(many_steps, {"n": 12}, svc=FakeDurableService(event_page_size=page))
    assert ex.status == "SUCCEEDED"
    assert json.loads(ex.result) == sum(2 * i for i in range(12))
    assert svc.state_calls > 0


def test_state_page_size_is_sent_as_max_items():
    svc = FakeDurableService(event_page_size=1)
    svc, ex = run(many_steps, {"n": 10}, svc=svc, limits=BatchLimits(state_page_size=2))
    assert ex.status == "SUCCEEDED"
    base = FakeDurableService(event_page_size=1)
    run(many_steps, {"n": 10}, svc=base)
    assert svc.state_calls > base.state_calls


def test_delta_pages_are_followed_and_merged():
    def child(n):
        return (yield Step(double, n, name="inner"))

    def wf(event):
        a = yield ChildContext(child, 1, name="k1")
        b = yield ChildContext(child, a, name="k2")
        return b

    svc = FakeDurableService(delta_page_size=1)
    svc, ex = run(wf, svc=svc)
    assert ex.result == "4"
    assert svc.state_calls > 0


def test_batches_respect_the_update_limit():
    def wf(event):
        v = yield ChildContext(lambda: (yield Step(double, 1, name="a")), name="kid")
        return v

    svc, ex = run(wf, limits=BatchLimits(max_updates=1))
    assert ex.status == "SUCCEEDED"
    assert all(len(b) == 1 for b in svc.batches)
    assert svc.checkpoint_calls == 4


def test_batches_respect_the_byte_limit():
    def wf(event):
        a = yield Step(lambda: "x" * 3000, name="a")
        return len(a)

    svc, ex = run(wf, limits=BatchLimits(max_bytes=1000))
    assert ex.result == "3000"
    # the START fits; the 3 KB SUCCEED exceeds the limit alone and travels alone
    assert [[u["Action"] for u in b] for b in svc.batches] == [["START"], ["SUCCEED"]]


def test_payload_over_the_per_update_limit_fails_clearly():
    def wf(event):
        yield Step(lambda: "x" * 5000, name="blob")

    svc, handler = make(wf, limits=BatchLimits(max_payload_bytes=4096))
    arn = svc.start()
    out = svc.invoke(handler, arn)
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.aws._api.PayloadTooLargeError"
    assert re.search(
        r"the SUCCEED update of STEP 'blob' \(id '[0-9a-f]+'\) carries a 5,002-byte payload; "
        r"the checkpoint API accepts at most 4,096 bytes",
        out["Error"]["ErrorMessage"],
    )


# ---------------------------------------------------------------- API errors


def test_transient_errors_are_retried_with_the_same_client_token():
    sleeps = []
    tokens = []
    svc = FakeDurableService()
    real = svc.checkpoint_durable_execution

    def spy(**kw):
        tokens.append((kw["ClientToken"], kw["CheckpointToken"]))
        return real(**kw)

    svc.checkpoint_durable_execution = spy
    svc.inject = [
        client_error(429, "TooManyRequestsException", "slow down", "Checkpoint"),
        EndpointConnectionError(endpoint_url="http://x"),
    ]
    retry = ApiRetry(max_attempts=3, base_delay=0.5, sleep=sleeps.append)
    svc, ex = run(three_steps, {"n": 1}, svc=svc, retry=retry)
    assert ex.status == "SUCCEEDED"
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    assert len({t for t in tokens[:3]}) == 1  # one logical call, three attempts


def test_a_lost_response_is_answered_idempotently():
    svc = FakeDurableService()
    real = svc.checkpoint_durable_execution
    lost = []

    def lose_first_response(**kw):
        resp = real(**kw)
        if not lost:
            lost.append(resp)
            raise EndpointConnectionError(endpoint_url="http://x")
        return resp

    svc.checkpoint_durable_execution = lose_first_response
    svc, ex = run(three_steps, {"n": 1}, svc=svc)
    assert ex.status == "SUCCEEDED"
    assert svc.checkpoint_calls == 3  # the retried call was not applied twice


def test_persistent_server_errors_raise_so_lambda_retries():
    svc, handler = make(three_steps)
    arn = svc.start('{"n": 1}')
    svc.inject = [client_error(500, "ServiceException", "boom", "Checkpoint")] * 3
    with pytest.raises(StoreError, match=r"^CheckpointDurableExecution failed 3 times") as ei:
        handler(svc.event(arn), None)
    assert ei.value.retryable
    assert svc.checkpoint_calls == 0


def test_stale_token_raises_at_once():
    svc, handler = make(three_steps)
    arn = svc.start('{"n": 1}')
    event = svc.event(arn)
    svc.executions[arn].seq += 1  # another invocation moved on
    with pytest.raises(StoreError, match=r"the checkpoint token is stale") as ei:
        handler(event, None)
    assert ei.value.retryable


def test_other_client_errors_fail_the_execution():
    svc, handler = make(three_steps)
    arn = svc.start('{"n": 1}')
    svc.inject = [client_error(400, "400", "Name must be printable", "Checkpoint")]
    out = handler(svc.event(arn), None)
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.StoreError"
    assert out["Error"]["ErrorMessage"] == (
        "CheckpointDurableExecution failed: 400 (HTTP 400): Name must be printable"
    )


def test_revoked_token_ends_the_invocation_pending():
    svc, handler = make(three_steps)
    arn = svc.start('{"n": 1}')
    svc.revoke_next_token = True
    assert handler(svc.event(arn), None) == {"Status": "PENDING"}
    assert svc.checkpoint_calls == 1


def test_errors_that_are_not_from_botocore_propagate():
    svc, handler = make(three_steps)
    arn = svc.start('{"n": 1}')
    svc.inject = [RuntimeError("bug")]
    with pytest.raises(RuntimeError, match=r"^bug$"):
        handler(svc.event(arn), None)


# ---------------------------------------------------------------- non-determinism


def _versions():
    state = {"v": 1}

    def wf(event):
        yield Step(double, 1, name="a" if state["v"] == 1 else "b")
        yield Wait(seconds=10)
        return "done"

    return state, wf


def test_nondeterminism_raises_by_default_and_records_nothing():
    state, wf = _versions()
    svc, handler = make(wf)
    arn = svc.start()
    assert svc.invoke(handler, arn)["Status"] == "PENDING"
    state["v"] = 2
    calls = svc.checkpoint_calls
    with pytest.raises(
        NonDeterminismError, match=r"the log recorded Step 'a', but the workflow yielded Step 'b'"
    ):
        handler(svc.event(arn), None)
    assert svc.checkpoint_calls == calls
    state["v"] = 1  # the old code path back: the execution resumes
    assert svc.run(handler, arn).status == "SUCCEEDED"


def test_nondeterminism_can_fail_the_execution_like_the_aws_sdk():
    state, wf = _versions()
    svc, handler = make(wf, on_nondeterminism="fail")
    arn = svc.start()
    svc.invoke(handler, arn)
    state["v"] = 2
    out = handler(svc.event(arn), None)
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.NonDeterminismError"


def test_on_nondeterminism_is_validated():
    with pytest.raises(ValueError, match=r"^on_nondeterminism must be 'raise' or 'fail', got 'x'$"):
        durable_handler(three_steps, on_nondeterminism="x")


# ---------------------------------------------------------------- events and decorator

GOOD = {
    "DurableExecutionArn": "arn:x/abc",
    "CheckpointToken": "t",
    "InitialExecutionState": {"Operations": [], "NextMarker": ""},
}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("not a dict", "the event"),
        ({**GOOD, "DurableExecutionArn": None}, "DurableExecutionArn"),
        ({k: v for k, v in GOOD.items() if k != "CheckpointToken"}, "CheckpointToken"),
        ({**GOOD, "CheckpointToken": ""}, "CheckpointToken"),
        ({**GOOD, "InitialExecutionState": None}, "InitialExecutionState"),
        ({**GOOD, "InitialExecutionState": {"Operations": {}}}, "InitialExecutionState.Operations"),
        (
            {**GOOD, "InitialExecutionState": {"Operations": [], "NextMarker": 3}},
            "InitialExecutionState.NextMarker",
        ),
        (
            {**GOOD, "InitialExecutionState": {"Operations": [{"Id": "x", "Type": "NOPE"}]}},
            "InitialExecutionState.Operations",
        ),
    ],
)
def test_malformed_events_name_the_field(event, field):
    handler = durable_handler(three_steps, client=FakeDurableService())
    with pytest.raises(
        InvalidEventError, match=rf"^invalid durable invocation event: {re.escape(field)} "
    ) as ei:
        handler(event, None)
    assert ei.value.field == field


def test_event_without_execution_operation_is_a_corrupt_log():
    handler = durable_handler(three_steps, client=FakeDurableService())
    with pytest.raises(
        CorruptLogError, match=r"holds 0 EXECUTION operations; expected exactly one"
    ):
        handler(GOOD, None)


def test_decorator_forms():
    svc = FakeDurableService()

    @durable_handler
    def bare(event):
        yield Step(double, 1, name="x")

    @durable_handler(client=svc, retry=NO_SLEEP)
    def configured(event):
        return (yield Step(double, 2, name="x"))

    assert bare.__name__ == "bare"
    assert configured.client is svc
    configured.clock = svc.clock
    assert svc.run(configured, svc.start()).result == "4"


def test_a_plain_function_is_refused():
    def not_a_generator(event):
        return 1

    with pytest.raises(TypeError, match="generator function"):
        durable_handler(not_a_generator)


def test_step_error_caught_by_the_workflow():
    def boom():
        raise ValueError("no")

    def wf(event):
        try:
            yield Step(boom, name="boom", retry=RetryPolicy.none())
        except StepError as e:
            return {"caught": e.error_message}

    _, ex = run(wf)
    assert json.loads(ex.result) == {"caught": "no"}


# ---------------------------------------------------------------- callbacks and batches


def test_callback_id_assigned_by_the_service_reaches_the_workflow():
    def approval(event):
        handle = yield CreateCallback("approval", timeout=600)
        yield Step(double, handle.callback_id, name="notify")
        return json.loads((yield handle.result()))

    svc, handler = make(approval)
    arn = svc.start()
    assert svc.invoke(handler, arn) == {"Status": "PENDING"}
    cb = next(op for op in svc.operations(arn) if op.type.value == "CALLBACK")
    notify = next(op for op in svc.operations(arn) if op.name == "notify")
    assert json.loads(notify.result) == cb.callback_id * 2
    svc.send_durable_execution_callback_success(CallbackId=cb.callback_id, Result=b'{"ok":1}')
    ex = svc.run(handler, arn)
    assert json.loads(ex.result) == {"ok": 1}


def test_parallel_steps_run_concurrently_on_the_pool():
    barrier = threading.Barrier(3, timeout=5)

    def meet(x):
        barrier.wait()  # only passes if the three steps run at the same time
        return x

    def branch(x):
        def body():
            return (yield Step(meet, x, name=f"meet-{x}"))

        return body

    def wf(event):
        r = yield Parallel([branch(1), branch(2), branch(3)], name="fan")
        return r.get_results()

    _, ex = run(wf)
    assert json.loads(ex.result) == [1, 2, 3]


def test_parallel_runs_one_at_a_time_with_one_worker():
    lock = threading.Lock()
    active = [0]
    peak = [0]

    def step(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return x

    def branch(x):
        def body():
            return (yield Step(step, x, name=f"s{x}"))

        return body

    def wf(event):
        r = yield Parallel([branch(1), branch(2), branch(3)], name="fan")
        return r.get_results()

    _, ex = run(wf, max_workers=1)
    assert json.loads(ex.result) == [1, 2, 3]
    assert peak[0] == 1


def test_default_client_is_created_once_without_botocore_retries(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    handler = durable_handler(three_steps)
    client = handler.client
    assert handler.client is client
    assert client.meta.service_model.service_name == "lambda"
    assert client.meta.config.retries["total_max_attempts"] == 1


# ---------------------------------------------------------------- metering


def test_meter_log_logs_what_each_invocation_checkpointed(caplog):
    def wf(event):
        a = yield Step(double, 2, name="a")
        yield Wait(seconds=30, name="pause")
        return (yield Step(double, a, name="b"))

    svc, handler = make(wf, meter_log=True)
    arn = svc.start()
    with caplog.at_level("INFO", logger="durable_gen.meter"):
        assert svc.invoke(handler, arn) == {"Status": "PENDING"}
        first = handler.last_meter
        ex = svc.run(handler, arn)
    assert ex.status == "SUCCEEDED"
    # first invocation: step a (1 op, "4") and the wait (1 op)
    assert first.operations_of("Step") == 1
    assert first.bytes_of("Step") == 1
    assert first.operations_of("Wait") == 1
    # last invocation: only step b was checkpointed ("8"); a and the wait replayed
    last = handler.last_meter
    assert last.operations_of("Step") == 1
    assert last.operations_of("Wait") == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "durable_gen.meter"]
    assert len(lines) == ex.invocations + 1
    assert all(arn in line for line in lines)


def test_meter_log_is_off_by_default(caplog):
    with caplog.at_level("INFO", logger="durable_gen.meter"):
        _svc, ex = run(three_steps, {"n": 1})
    assert ex.status == "SUCCEEDED"
    assert not [r for r in caplog.records if r.name == "durable_gen.meter"]


# ---------------------------------------------------------------- encryption


def _cipher(active="k1", keys=None):
    import base64

    from durable_gen import KeyRing, PayloadCipher

    keys = keys or {active: base64.b64decode(KeyRing.generate_key())}
    return PayloadCipher(KeyRing(active, keys))


def test_cipher_encrypts_what_the_workflow_checkpoints_and_replays_it():
    def secret(x):
        return {"card": "4111-1111", "n": x}

    def failing():
        raise ValueError("card 4111-1111 declined")

    def wf(event):
        a = yield Step(secret, event["n"], name="a")
        try:
            yield Step(failing, name="charge", retry=RetryPolicy.none())
        except StepError as e:
            msg = e.error_message
        handle = yield CreateCallback("approval", timeout=600)
        yield Wait(seconds=5)
        return {"a": a, "msg": msg, "approved": json.loads((yield handle.result()))}

    cipher = _cipher()
    svc, handler = make(wf, cipher=cipher)
    arn = svc.start('{"n": 7}')  # written by the caller: plain text
    assert svc.invoke(handler, arn) == {"Status": "PENDING"}
    cb = next(op for op in svc.operations(arn) if op.type.value == "CALLBACK")
    # the callback outcome comes from outside, in plain text
    svc.send_durable_execution_callback_success(CallbackId=cb.callback_id, Result=b"true")
    ex = svc.run(handler, arn)
    assert ex.status == "SUCCEEDED"
    assert json.loads(ex.result) == {
        "a": {"card": "4111-1111", "n": 7},
        "msg": "card 4111-1111 declined",
        "approved": True,
    }
    stored = {op.name: op for op in svc.operations(arn)}
    assert stored["a"].result.startswith("enc1:k1:")
    assert "4111" not in stored["charge"].error.message
    assert stored["charge"].error.type.endswith("ValueError")  # the type stays legible
    # nothing the workflow checkpointed shows the secret; only the execution's
    # result (returned to the caller in plain text) does
    events = svc.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    leaks = [e["EventType"] for e in events if "4111" in json.dumps(e)]
    assert leaks == ["ExecutionSucceeded"]


def test_cipher_with_the_wrong_key_fails_clearly_and_records_nothing():
    from durable_gen import DecryptionError

    def wf(event):
        a = yield Step(double, 2, name="a")
        yield Wait(seconds=5)
        return a

    svc, handler = make(wf, cipher=_cipher())
    arn = svc.start()
    assert svc.invoke(handler, arn) == {"Status": "PENDING"}
    before = [op.to_dict() for op in svc.operations(arn)]
    _, wrong = make(wf, svc, cipher=_cipher())
    with pytest.raises(DecryptionError, match="does not authenticate with key 'k1'"):
        svc.invoke(wrong, arn)
    assert [op.to_dict() for op in svc.operations(arn)] == before
