"""The Lambda handler shim against AWS's durable-service emulator.

Every test drives the shim with a real boto3 client against AWS's emulator
(dex-local-runner, the ``emulator`` fixture); :mod:`.proxy` records what the shim
sends and injects the faults the emulator cannot (a call failing before it
arrives, a lost response, a response without its token, a paged delta). Results
and histories are the emulator's.
"""

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

from .proxy import NO_SLEEP, ProxyClient, client_error, paged, run, start

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=2, jitter=Jitter.NONE)


def double(x):
    return x * 2


def three_steps(event):
    a = yield Step(double, event["n"], name="a")
    b = yield Step(double, a, name="b")
    c = yield Step(double, b, name="c")
    return {"c": c}


def counts(r, event_type):
    """How many ``event_type`` events each operation name has in the history."""
    out: dict[str, int] = {}
    for e in r.events_named(event_type):
        out[e.get("Name")] = out.get(e.get("Name"), 0) + 1
    return out


# ---------------------------------------------------------------- results


def test_straight_line_steps_succeed_in_one_invocation_one_call_per_step(emulator):
    r = run(emulator, three_steps, {"n": 1})
    assert r.status == "SUCCEEDED"
    assert json.loads(r.result) == {"c": 8}
    assert len(r.invocations.events) == 1
    # each at-least-once START rides with its SUCCEED: one call per step result
    assert r.proxy.checkpoint_calls == 3
    assert [[(u["Action"], u["Name"]) for u in b] for b in r.proxy.batches] == [
        [("START", "a"), ("SUCCEED", "a")],
        [("START", "b"), ("SUCCEED", "b")],
        [("START", "c"), ("SUCCEED", "c")],
    ]
    assert r.types() == [
        "ExecutionStarted",
        *["StepStarted", "StepSucceeded"] * 3,
        "ExecutionSucceeded",
    ]


def test_result_is_compact_json_of_the_return_value(emulator):
    def wf(event):
        yield Step(double, 1, name="x")
        return {"k": [1, "a", None], "t": (1, 2)}

    r = run(emulator, wf)
    assert r.invocations.outputs == [
        {"Status": "SUCCEEDED", "Result": '{"k":[1,"a",null],"t":[1,2]}'}
    ]
    assert r.result == '{"k":[1,"a",null],"t":[1,2]}'


def _with_input(payload):
    """An event whose EXECUTION operation carries ``payload`` as its input."""

    def before(n, event, handler):
        for op in event["InitialExecutionState"]["Operations"]:
            if op["Type"] == "EXECUTION":
                op.setdefault("ExecutionDetails", {})["InputPayload"] = payload
        return event

    return before


def test_input_comes_from_the_execution_operation_and_blank_means_empty_object(emulator):
    seen = []

    def wf(event):
        seen.append(event)
        yield Step(double, 1, name="x")
        return None

    assert run(emulator, wf, {"a": 1}).status == "SUCCEEDED"
    assert run(emulator, wf, before=_with_input("")).status == "SUCCEEDED"
    assert seen == [{"a": 1}, {}]


def test_input_that_is_not_json_raises_corrupt_log(emulator):
    r = run(emulator, three_steps, before=_with_input("{nope"))
    (n, err), *_ = r.invocations.errors
    assert n == 1
    assert isinstance(err, CorruptLogError)
    assert re.search(r"the input of execution operation .* is not JSON", str(err))
    assert r.proxy.checkpoint_calls == 0  # nothing was recorded from a log it cannot read


def test_workflow_failure_returns_failed_with_error_object(emulator):
    def wf(event):
        yield Step(double, 1, name="x")
        raise ValueError("out of stock")

    r = run(emulator, wf)
    (out,) = r.invocations.outputs
    assert out["Status"] == "FAILED"
    err = out["Error"]
    assert err["ErrorType"] == "ValueError"
    assert err["ErrorMessage"] == "out of stock"
    assert isinstance(err["StackTrace"], list)
    assert any("raise ValueError" in line for line in err["StackTrace"])
    assert set(out) == {"Status", "Error"}
    assert r.status == "FAILED"
    assert (r.error["ErrorType"], r.error["ErrorMessage"]) == ("ValueError", "out of stock")


def test_uncaught_step_error_is_recorded_as_aws_records_it(emulator):
    def boom():
        raise KeyError("sku")

    def wf(event):
        yield Step(boom, name="boom", retry=RetryPolicy.none())

    r = run(emulator, wf)
    assert r.status == "FAILED"
    # AWS's ErrorObject.from_exception(StepError): the class name, the step's message
    assert r.error["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert r.error["ErrorMessage"] == "'sku'"
    assert r.types()[-2:] == ["StepFailed", "ExecutionFailed"]


def test_result_json_cannot_carry_fails_clearly(emulator):
    def wf(event):
        yield Step(double, 1, name="x")
        return datetime.date(2026, 1, 1)

    r = run(emulator, wf)
    (out,) = r.invocations.outputs
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.SerializationError"
    assert "a Lambda durable function's result must be JSON" in out["Error"]["ErrorMessage"]
    assert r.status == "FAILED"


def test_large_result_is_checkpointed_on_the_execution_operation(emulator):
    big = "x" * (LAMBDA_RESPONSE_LIMIT + 10)

    def wf(event):
        yield Step(double, 1, name="x")
        return big

    r = run(emulator, wf)
    assert r.invocations.outputs == [{"Status": "SUCCEEDED", "Result": ""}]
    last = r.proxy.batches[-1]
    assert last[-1]["Type"] == "EXECUTION"
    assert last[-1]["Action"] == "SUCCEED"
    assert last[-1]["Id"] == r.invocations.execution_id()
    assert r.status == "SUCCEEDED"
    assert json.loads(r.result) == big


def test_result_just_under_the_limit_is_returned_inline(emulator):
    text = "y" * (LAMBDA_RESPONSE_LIMIT - 2)  # plus two quotes: exactly the limit

    def wf(event):
        yield Step(double, 1, name="x")
        return text

    r = run(emulator, wf)
    (out,) = r.invocations.outputs
    assert len(out["Result"]) == LAMBDA_RESPONSE_LIMIT
    assert all(u["Type"] != "EXECUTION" for b in r.proxy.batches for u in b)
    assert json.loads(r.result) == text


# ---------------------------------------------------------------- semantics


def test_wait_returns_pending_then_resumes(emulator):
    calls = []

    def wf(event):
        a = yield Step(lambda: calls.append("a") or 1, name="a")
        yield Wait(seconds=30)
        b = yield Step(lambda: calls.append("b") or 2, name="b")
        return a + b

    r = run(emulator, wf)
    assert r.invocations.outputs[0] == {"Status": "PENDING"}
    assert r.status == "SUCCEEDED"
    assert r.result == "3"
    assert calls == ["a", "b"]
    assert len(r.events_named("WaitSucceeded")) == 1


def test_retry_suspends_and_the_next_attempt_sees_its_number(emulator):
    attempts = []

    def flaky():
        attempts.append(current_attempt())
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return "ok"

    def wf(event):
        return (yield Step(flaky, name="flaky", retry=FAST_RETRY))

    r = run(emulator, wf)
    assert r.status == "SUCCEEDED"
    assert r.result == '"ok"'
    assert attempts == [1, 2, 3]
    assert len(r.invocations.events) == 3
    assert r.types().count("StepFailed") == 2


def test_at_most_once_start_is_durable_before_the_function_runs(emulator):
    seen = []
    runs = []

    def charge():
        # what the service recorded when the function runs: read through its API
        started = [e for e in emulator.history(runs[0].arn) if e["EventType"] == "StepStarted"]
        seen.append([e["Name"] for e in started])
        return "receipt"

    def wf(event):
        return (yield Step(charge, name="charge", semantics=AT_MOST_ONCE_PER_RETRY))

    runs.append(start(emulator, wf))
    r = runs[0].wait()
    assert r.status == "SUCCEEDED"
    assert seen == [["charge"]]
    assert [[u["Action"] for u in b] for b in r.proxy.batches] == [["START"], ["SUCCEED"]]


def test_at_least_once_start_rides_with_the_result(emulator):
    proxy = ProxyClient(emulator.client)
    seen = []

    def step():
        seen.append(len(proxy.batches))
        return 1

    def wf(event):
        return (yield Step(step, name="s"))

    r = run(emulator, wf, proxy=proxy)
    assert r.status == "SUCCEEDED"
    assert seen == [0]  # nothing was sent before the function ran
    assert [[u["Action"] for u in b] for b in proxy.batches] == [["START", "SUCCEED"]]


def test_child_context_start_rides_along(emulator):
    def child(n):
        v = yield Step(double, n, name="inner")
        return v + 1

    def wf(event):
        v = yield ChildContext(child, 2, name="kid")
        return v

    r = run(emulator, wf)
    assert r.result == "5"
    assert [[(u["Type"], u["Action"]) for u in b] for b in r.proxy.batches] == [
        [("CONTEXT", "START"), ("STEP", "START"), ("STEP", "SUCCEED")],
        [("CONTEXT", "SUCCEED")],
    ]


def test_replay_does_not_rerun_steps_and_sends_nothing_for_them(emulator):
    calls = []

    def wf(event):
        yield Step(lambda: calls.append(1), name="once")
        yield Wait(seconds=5)
        return "done"

    r = run(emulator, wf)
    assert calls == [1]
    assert len(r.invocations.events) == 2
    assert r.proxy.checkpoint_calls == 2  # step result + wait START; the replay sends nothing


# ---------------------------------------------------------------- paging and batching


def many_steps(event):
    total = 0
    for i in range(event["n"]):
        total += yield Step(double, i, name=f"s{i}")
        if i % 7 == 3:
            yield Wait(seconds=1)
    return total


@pytest.mark.parametrize("page", [1, 2, 5])
def test_initial_state_pages_are_fetched(emulator, page):
    r = run(emulator, many_steps, {"n": 12}, before=paged(emulator.client, page))
    assert r.status == "SUCCEEDED"
    assert json.loads(r.result) == sum(2 * i for i in range(12))
    assert r.proxy.state_calls > 0
    assert r.proxy.checkpoint_calls == 12 + 2  # 12 step results, 2 waits: nothing twice


def test_state_page_size_is_sent_as_max_items(emulator):
    cut = paged(emulator.client, 1)
    r = run(emulator, many_steps, {"n": 10}, before=cut, limits=BatchLimits(state_page_size=2))
    assert r.status == "SUCCEEDED"
    sizes = {kw.get("MaxItems") for name, kw in r.proxy.calls if name == "GetDurableExecutionState"}
    assert sizes == {2}
    base = run(emulator, many_steps, {"n": 10}, before=cut)
    assert r.proxy.state_calls > base.proxy.state_calls


def test_delta_pages_are_followed_and_merged(emulator):
    def child(n):
        return (yield Step(double, n, name="inner"))

    def wf(event):
        a = yield ChildContext(child, 1, name="k1")
        b = yield ChildContext(child, a, name="k2")
        return b

    r = run(emulator, wf, proxy=ProxyClient(emulator.client, delta_page_size=1))
    assert r.result == "4"
    assert r.proxy.state_calls > 0


def test_batches_respect_the_update_limit(emulator):
    def wf(event):
        v = yield ChildContext(lambda: (yield Step(double, 1, name="a")), name="kid")
        return v

    r = run(emulator, wf, limits=BatchLimits(max_updates=1))
    assert r.status == "SUCCEEDED"
    assert all(len(b) == 1 for b in r.proxy.batches)
    assert r.proxy.checkpoint_calls == 4


def test_batches_respect_the_byte_limit(emulator):
    def wf(event):
        a = yield Step(lambda: "x" * 3000, name="a")
        return len(a)

    r = run(emulator, wf, limits=BatchLimits(max_bytes=1000))
    assert r.result == "3000"
    # the START fits; the 3 KB SUCCEED exceeds the limit alone and travels alone
    assert [[u["Action"] for u in b] for b in r.proxy.batches] == [["START"], ["SUCCEED"]]


def test_payload_over_the_per_update_limit_fails_clearly(emulator):
    def wf(event):
        yield Step(lambda: "x" * 5000, name="blob")

    r = run(emulator, wf, limits=BatchLimits(max_payload_bytes=4096))
    (out,) = r.invocations.outputs
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.aws._api.PayloadTooLargeError"
    assert re.search(
        r"the SUCCEED update of STEP 'blob' \(id '[0-9a-f]+'\) carries a 5,002-byte payload; "
        r"the checkpoint API accepts at most 4,096 bytes",
        out["Error"]["ErrorMessage"],
    )
    assert r.status == "FAILED"


# ---------------------------------------------------------------- API errors


def test_transient_errors_are_retried_with_the_same_client_token(emulator):
    sleeps = []
    proxy = ProxyClient(emulator.client)
    proxy.inject = [
        client_error(429, "TooManyRequestsException", "slow down", "Checkpoint"),
        EndpointConnectionError(endpoint_url="http://x"),
    ]
    retry = ApiRetry(max_attempts=3, base_delay=0.5, sleep=sleeps.append)
    r = run(emulator, three_steps, {"n": 1}, proxy=proxy, retry=retry)
    assert r.status == "SUCCEEDED"
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0
    tokens = [(kw["ClientToken"], kw["CheckpointToken"]) for _, kw in proxy.calls[:3]]
    assert len(set(tokens)) == 1  # one logical call, three attempts
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1, "c": 1}


def test_a_lost_response_is_answered_idempotently(emulator):
    proxy = ProxyClient(emulator.client)
    proxy.lose = 1  # the emulator applies the first checkpoint; its answer is lost
    r = run(emulator, three_steps, {"n": 1}, proxy=proxy)
    assert r.status == "SUCCEEDED"
    assert proxy.checkpoint_calls == 4  # the first call was sent twice ...
    first, again = proxy.calls[0][1], proxy.calls[1][1]
    assert first["ClientToken"] == again["ClientToken"]
    # ... and the emulator applied it once
    assert counts(r, "StepStarted") == {"a": 1, "b": 1, "c": 1}
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1, "c": 1}


def test_persistent_server_errors_raise_so_lambda_retries(emulator):
    proxy = ProxyClient(emulator.client)
    proxy.inject = [client_error(500, "ServiceException", "boom", "Checkpoint")] * 3
    r = run(emulator, three_steps, {"n": 1}, proxy=proxy)
    (n, err), *_ = r.invocations.errors
    assert n == 1
    assert isinstance(err, StoreError)
    assert str(err).startswith("CheckpointDurableExecution failed 3 times")
    assert err.retryable
    # the service invoked the function again, which recorded every step once
    assert r.status == "SUCCEEDED"
    assert len(r.invocations.events) == 2
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1, "c": 1}


def test_stale_token_raises_at_once(emulator):
    stale = []

    def before(n, event, handler):
        if n == 2:  # hand the first invocation's token to the second: it moved on
            try:
                handler(stale[0], None)
            except StoreError as e:
                stale.append(e)
        else:
            stale.append(event)
        return event

    def wf(event):
        yield Step(double, 1, name="a")
        yield Wait(seconds=5)
        return (yield Step(double, 2, name="b"))

    r = run(emulator, wf, before=before)
    err = stale[1]
    assert isinstance(err, StoreError)
    assert "the checkpoint token is stale" in str(err)
    assert err.retryable
    assert r.status == "SUCCEEDED"
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1}


def test_other_client_errors_fail_the_execution(emulator):
    proxy = ProxyClient(emulator.client)
    proxy.inject = [client_error(400, "400", "Name must be printable", "Checkpoint")]
    r = run(emulator, three_steps, {"n": 1}, proxy=proxy)
    (out,) = r.invocations.outputs
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.StoreError"
    assert out["Error"]["ErrorMessage"] == (
        "CheckpointDurableExecution failed: 400 (HTTP 400): Name must be printable"
    )
    assert r.status == "FAILED"


def test_revoked_token_ends_the_invocation_pending(emulator):
    proxy = ProxyClient(emulator.client)
    proxy.strip_token = 1  # the first answer carries no token, as for a paused execution

    def wf(event):
        a = yield Step(double, 1, name="a")
        yield Wait(seconds=5)
        return (yield Step(double, a, name="b"))

    sent = []
    r = run(emulator, wf, proxy=proxy, before=lambda n, e, h: sent.append(proxy.checkpoint_calls))
    # the first invocation stopped at the answer without a token: one call, step a's
    assert r.invocations.outputs[0] == {"Status": "PENDING"}
    assert sent[1] == 1
    assert [(u["Action"], u["Name"]) for u in proxy.batches[0]] == [
        ("START", "a"),
        ("SUCCEED", "a"),
    ]
    assert r.status == "SUCCEEDED"
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1}


def test_errors_that_are_not_from_botocore_propagate(emulator):
    proxy = ProxyClient(emulator.client)
    proxy.inject = [RuntimeError("bug")]
    r = run(emulator, three_steps, {"n": 1}, proxy=proxy)
    (n, err), *_ = r.invocations.errors
    assert (n, type(err), str(err)) == (1, RuntimeError, "bug")
    assert r.status == "SUCCEEDED"  # the service's retry got through


# ---------------------------------------------------------------- non-determinism


def _versions():
    state = {"v": 1}

    def wf(event):
        yield Step(double, 1, name="a" if state["v"] == 1 else "b")
        yield Wait(seconds=10)
        return "done"

    return state, wf


def test_nondeterminism_raises_by_default_and_records_nothing(emulator):
    state, wf = _versions()
    proxy = ProxyClient(emulator.client)
    seen = {}

    def before(n, event, handler):
        if n == 2:  # a deploy changed the code: this invocation must fail, recording nothing
            state["v"] = 2
            calls = proxy.checkpoint_calls
            try:
                handler(event, None)
            except NonDeterminismError as e:
                seen["error"] = str(e)
            seen["sent"] = proxy.checkpoint_calls - calls
            state["v"] = 1  # the old code path back: the execution resumes
        return event

    r = run(emulator, wf, proxy=proxy, before=before)
    assert "the log recorded Step 'a', but the workflow yielded Step 'b'" in seen["error"]
    assert seen["sent"] == 0
    assert r.status == "SUCCEEDED"


def test_nondeterminism_can_fail_the_execution_like_the_aws_sdk(emulator):
    state, wf = _versions()

    def before(n, event, handler):
        if n == 2:
            state["v"] = 2
        return event

    r = run(emulator, wf, before=before, on_nondeterminism="fail")
    out = r.invocations.outputs[1]
    assert out["Status"] == "FAILED"
    assert out["Error"]["ErrorType"] == "durable_gen.NonDeterminismError"
    assert r.status == "FAILED"
    assert r.error["ErrorType"] == "durable_gen.NonDeterminismError"


def test_on_nondeterminism_is_validated():
    with pytest.raises(ValueError, match=r"^on_nondeterminism must be 'raise' or 'fail', got 'x'$"):
        durable_handler(three_steps, on_nondeterminism="x")


# ---------------------------------------------------------------- events and decorator

GOOD = {
    "DurableExecutionArn": "arn:x/abc",
    "CheckpointToken": "t",
    "InitialExecutionState": {"Operations": [], "NextMarker": ""},
}


class NoService:
    """A client for events the shim must refuse before it calls anything."""

    def __getattr__(self, name):
        raise AssertionError(f"the shim called {name} for an event it should refuse")


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
    handler = durable_handler(three_steps, client=NoService())
    with pytest.raises(
        InvalidEventError, match=rf"^invalid durable invocation event: {re.escape(field)} "
    ) as ei:
        handler(event, None)
    assert ei.value.field == field


def test_event_without_execution_operation_is_a_corrupt_log():
    handler = durable_handler(three_steps, client=NoService())
    with pytest.raises(
        CorruptLogError, match=r"holds 0 EXECUTION operations; expected exactly one"
    ):
        handler(GOOD, None)


def test_decorator_forms(emulator):
    proxy = ProxyClient(emulator.client)

    @durable_handler
    def bare(event):
        yield Step(double, 1, name="x")

    @durable_handler(client=proxy, retry=NO_SLEEP)
    def configured(event):
        return (yield Step(double, 2, name="x"))

    assert bare.__name__ == "bare"
    assert configured.client is proxy
    _, ex = emulator.run(configured)
    assert ex["Status"] == "SUCCEEDED"
    assert ex["Result"] == "4"
    assert proxy.checkpoint_calls == 1


def test_a_plain_function_is_refused():
    def not_a_generator(event):
        return 1

    with pytest.raises(TypeError, match="generator function"):
        durable_handler(not_a_generator)


def test_step_error_caught_by_the_workflow(emulator):
    def boom():
        raise ValueError("no")

    def wf(event):
        try:
            yield Step(boom, name="boom", retry=RetryPolicy.none())
        except StepError as e:
            return {"caught": e.error_message}

    r = run(emulator, wf)
    assert json.loads(r.result) == {"caught": "no"}


# ---------------------------------------------------------------- callbacks and batches


def test_callback_id_assigned_by_the_service_reaches_the_workflow(emulator):
    def approval(event):
        handle = yield CreateCallback("approval", timeout=600)
        yield Step(double, handle.callback_id, name="notify")
        return json.loads((yield handle.result()))

    r = start(emulator, approval)
    deadline = time.monotonic() + 10
    while not r.events_named("StepSucceeded", "notify"):
        assert time.monotonic() < deadline, "the notify step never succeeded"
        time.sleep(0.02)
    (cb,) = r.events_named("CallbackStarted")
    callback_id = cb["CallbackStartedDetails"]["CallbackId"]
    (notify,) = r.events_named("StepSucceeded", "notify")
    assert json.loads(notify["StepSucceededDetails"]["Result"]["Payload"]) == callback_id * 2
    assert r.invocations.outputs[0] == {"Status": "PENDING"}
    emulator.client.send_durable_execution_callback_success(
        CallbackId=callback_id, Result=b'{"ok":1}'
    )
    assert json.loads(r.wait().result) == {"ok": 1}


def test_parallel_steps_run_concurrently_on_the_pool(emulator):
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

    r = run(emulator, wf)
    assert json.loads(r.result) == [1, 2, 3]


def test_parallel_runs_one_at_a_time_with_one_worker(emulator):
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

    r = run(emulator, wf, max_workers=1)
    assert json.loads(r.result) == [1, 2, 3]
    assert peak[0] == 1


def test_default_client_is_created_once_without_botocore_retries(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    handler = durable_handler(three_steps)
    client = handler.client
    assert handler.client is client
    assert client.meta.service_model.service_name == "lambda"
    assert client.meta.config.retries["total_max_attempts"] == 1


# ---------------------------------------------------------------- metering


def test_meter_log_logs_what_each_invocation_checkpointed(emulator, caplog):
    meters = []

    def wf(event):
        a = yield Step(double, 2, name="a")
        yield Wait(seconds=30, name="pause")
        return (yield Step(double, a, name="b"))

    def keep_meter(n, event, handler):
        if n > 1:
            meters.append(handler.last_meter)  # what invocation n - 1 logged
        return event

    with caplog.at_level("INFO", logger="durable_gen.meter"):
        r = run(emulator, wf, before=keep_meter, meter_log=True)
    assert r.status == "SUCCEEDED"
    assert r.invocations.outputs[0] == {"Status": "PENDING"}
    (first,) = meters
    # first invocation: step a (1 op, "4") and the wait (1 op)
    assert first.operations_of("Step") == 1
    assert first.bytes_of("Step") == 1
    assert first.operations_of("Wait") == 1
    # last invocation: only step b was checkpointed ("8"); a and the wait replayed
    last = r.handler.last_meter
    assert last.operations_of("Step") == 1
    assert last.operations_of("Wait") == 0
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "durable_gen.meter"]
    assert len(lines) == len(r.invocations.events) == 2
    assert all(r.arn in line for line in lines)


def test_meter_log_is_off_by_default(emulator, caplog):
    with caplog.at_level("INFO", logger="durable_gen.meter"):
        r = run(emulator, three_steps, {"n": 1})
    assert r.status == "SUCCEEDED"
    assert not [rec for rec in caplog.records if rec.name == "durable_gen.meter"]


# ---------------------------------------------------------------- encryption


def _cipher(active="k1", keys=None):
    import base64

    from durable_gen import KeyRing, PayloadCipher

    keys = keys or {active: base64.b64decode(KeyRing.generate_key())}
    return PayloadCipher(KeyRing(active, keys))


def test_cipher_encrypts_what_the_workflow_checkpoints_and_replays_it(emulator):
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

    r = start(emulator, wf, {"n": 7}, cipher=_cipher())  # the input: plain text, the caller's
    deadline = time.monotonic() + 10
    while not r.events_named("CallbackStarted"):
        assert time.monotonic() < deadline, "no callback was created"
        time.sleep(0.02)
    (cb,) = r.events_named("CallbackStarted")
    # the callback outcome comes from outside, in plain text
    emulator.client.send_durable_execution_callback_success(
        CallbackId=cb["CallbackStartedDetails"]["CallbackId"], Result=b"true"
    )
    r.wait()
    assert r.status == "SUCCEEDED"
    assert json.loads(r.result) == {
        "a": {"card": "4111-1111", "n": 7},
        "msg": "card 4111-1111 declined",
        "approved": True,
    }
    (a,) = r.events_named("StepSucceeded", "a")
    assert a["StepSucceededDetails"]["Result"]["Payload"].startswith("enc1:k1:")
    (charge,) = r.events_named("StepFailed", "charge")
    error = charge["StepFailedDetails"]["Error"]["Payload"]
    assert "4111" not in error["ErrorMessage"]
    assert error["ErrorType"].endswith("ValueError")  # the type stays legible
    # nothing the workflow checkpointed shows the secret; only the execution's
    # result (returned to the caller in plain text) does
    leaks = [e["EventType"] for e in r.history() if "4111" in json.dumps(e, default=str)]
    assert leaks == ["ExecutionSucceeded"]


def test_cipher_with_the_wrong_key_fails_clearly_and_records_nothing(emulator):
    from durable_gen import DecryptionError

    def wf(event):
        a = yield Step(double, 2, name="a")
        yield Wait(seconds=5)
        return a

    wrong = durable_handler(wf, client=emulator.client, cipher=_cipher(), retry=NO_SLEEP)
    seen = {}

    def before(n, event, handler):
        if n == 2:  # a worker with another key ring replays first
            try:
                wrong(event, None)
            except DecryptionError as e:
                seen["error"] = str(e)
        return event

    r = run(emulator, wf, before=before, cipher=_cipher())
    assert "does not authenticate with key 'k1'" in seen["error"]
    assert r.status == "SUCCEEDED"
    assert r.result == "4"
    assert counts(r, "StepSucceeded") == {"a": 1}  # the wrong key recorded nothing


# ---------------------------------------------------------------- a timer due in the answer


class LateAnswer(ProxyClient):
    """Answers a checkpoint that starts a wait only once AWS's emulator has completed
    the wait, with the operations as they then stand: the answer the service gives
    when the wait is already due as its START is checkpointed."""

    def checkpoint_durable_execution(self, **kw):
        resp = super().checkpoint_durable_execution(**kw)
        if not any(u["Type"] == "WAIT" and u["Action"] == "START" for u in kw["Updates"]):
            return resp
        arn = kw["DurableExecutionArn"]
        deadline = time.monotonic() + 10
        history = self.client.get_durable_execution_history
        while not any(
            e["EventType"] == "WaitSucceeded" for e in history(DurableExecutionArn=arn)["Events"]
        ):
            assert time.monotonic() < deadline, "the emulator never completed the wait"
            time.sleep(0.02)
        state = self.client.get_durable_execution_state(
            DurableExecutionArn=arn, CheckpointToken=resp["CheckpointToken"]
        )
        return {**resp, "NewExecutionState": {"Operations": state["Operations"], "NextMarker": ""}}


def test_a_wait_completed_in_the_checkpoints_answer_goes_on_in_the_same_invocation(emulator):
    ran = []

    def wf(event):
        a = yield Step(lambda: ran.append("a") or 1, name="a")
        yield Wait(seconds=3, name="pause")
        b = yield Step(lambda: ran.append("b") or 2, name="b")
        return a + b

    r = run(emulator, wf, proxy=LateAnswer(emulator.client))
    assert r.status == "SUCCEEDED"
    assert r.result == "3"
    # one invocation: the suspension found the wait done and the workflow went on
    assert r.invocations.outputs == [{"Status": "SUCCEEDED", "Result": "3"}]
    assert ran == ["a", "b"]
    assert counts(r, "StepSucceeded") == {"a": 1, "b": 1}
