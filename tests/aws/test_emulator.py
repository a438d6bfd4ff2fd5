"""Our handlers driven by AWS's durable-service emulator (dex-local-runner).

The emulator invokes the handlers through durable_gen.aws.local's Invoke
endpoint; the handlers talk to it with a real boto3 client. Results and
histories are read back through the public API, as a user would.
"""

import contextlib
import json
import time

import boto3
import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    CallbackFailedError,
    ChildContext,
    ChildContextError,
    CreateCallback,
    InvocationError,
    Invoke,
    Jitter,
    Map,
    Parallel,
    Patched,
    RetryableSerDesError,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitStrategy,
    current_attempt,
)
from durable_gen._core.errors import AWS_SDK_EXCEPTIONS as AWS_EXCEPTIONS
from durable_gen.aws import LAMBDA_RESPONSE_LIMIT, BatchLimits, durable_handler
from durable_gen.aws._api import classify

from .conftest import DURABLE_TARGET, PLAIN_TARGET

FAST_RETRY = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)


def types(events):
    return [e["EventType"] for e in events]


def reserve(sku, qty):
    return f"hold-{sku}-{qty}"


def charge(amount):
    return {"receipt": f"r-{amount}"}


def reserve_stock(event):
    hold = yield Step(reserve, event["sku"], event["qty"], name="reserve")
    return hold


def order_flow(event):
    hold = yield ChildContext(reserve_stock, event, name="stock")
    yield Wait(seconds=2, name="cool-off")
    receipt = yield Step(charge, event["qty"] * 10, name="charge", semantics=AT_MOST_ONCE_PER_RETRY)
    return {"hold": hold, **receipt}


def test_steps_child_context_wait_and_at_most_once(emulator):
    handler = durable_handler(order_flow, client=emulator.client)
    arn, ex = emulator.run(handler, {"sku": "B-42", "qty": 2})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"hold": "hold-B-42-2", "receipt": "r-20"}
    events = emulator.history(arn)
    # the emulator may record InvocationCompleted after the skipped wait's end
    assert [t for t in types(events) if t != "InvocationCompleted"] == [
        "ExecutionStarted",
        "ContextStarted",
        "StepStarted",
        "StepSucceeded",
        "ContextSucceeded",
        "WaitStarted",
        "WaitSucceeded",
        "StepStarted",
        "StepSucceeded",
        "ExecutionSucceeded",
    ]
    assert types(events).count("InvocationCompleted") == 2
    named = [(e["EventType"], e.get("Name"), e.get("SubType")) for e in events if e.get("Name")]
    assert named[1:5] == [
        ("ContextStarted", "stock", "RunInChildContext"),
        ("StepStarted", "reserve", "Step"),
        ("StepSucceeded", "reserve", "Step"),
        ("ContextSucceeded", "stock", "RunInChildContext"),
    ]
    step = next(e for e in events if e["EventType"] == "StepSucceeded" and e["Name"] == "reserve")
    assert step["StepSucceededDetails"]["Result"]["Payload"] == '"hold-B-42-2"'
    # the replay sent only the at-most-once START of "charge" and its result
    assert handler.last_checkpoint_calls == 2


_attempts: dict[str, list[int]] = {}


def flaky(key):
    _attempts.setdefault(key, []).append(current_attempt())
    if len(_attempts[key]) < 3:
        raise TimeoutError(f"attempt {current_attempt()} timed out")
    return "paid"


def retrying(event):
    return (yield Step(flaky, event["key"], name="pay", retry=FAST_RETRY))


def test_step_retries_across_invocations(emulator):
    arn, ex = emulator.run(durable_handler(retrying, client=emulator.client), {"key": "k1"})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == "paid"
    assert _attempts["k1"] == [1, 2, 3]
    events = emulator.history(arn)
    step_events = [e for e in events if e["EventType"].startswith("Step")]
    assert types(step_events) == ["StepStarted", "StepFailed"] * 2 + [
        "StepStarted",
        "StepSucceeded",
    ]
    failed = step_events[1]["StepFailedDetails"]
    assert failed["Error"]["Payload"]["ErrorType"] == "TimeoutError"
    assert failed["Error"]["Payload"]["ErrorMessage"] == "attempt 1 timed out"
    assert failed["RetryDetails"]["NextAttemptDelaySeconds"] == 1
    assert types(events).count("InvocationCompleted") == 3


def refuse():
    raise PermissionError("card declined")


def failing(event):
    with contextlib.suppress(StepError):
        yield Step(refuse, name="charge", retry=RetryPolicy.none())
    yield ChildContext(broken_child, name="broken")


def broken_child():
    yield Step(reserve, "x", 1, name="reserve")
    raise LookupError("no such warehouse")


def test_failures_reach_history_and_the_execution_error(emulator):
    arn, ex = emulator.run(durable_handler(failing, client=emulator.client))
    assert ex["Status"] == "FAILED", ex
    # the child context recorded the LookupError; the execution its ChildContextError
    assert ex["Error"]["ErrorType"] == f"{AWS_EXCEPTIONS}.ChildContextError"
    assert ex["Error"]["ErrorMessage"] == "no such warehouse"
    assert ex["Error"]["StackTrace"]
    events = emulator.history(arn)
    assert types(events) == [
        "ExecutionStarted",
        "StepStarted",
        "StepFailed",
        "ContextStarted",
        "StepStarted",
        "StepSucceeded",
        "ContextFailed",
        "InvocationCompleted",
        "ExecutionFailed",
    ]
    step_failed = events[2]["StepFailedDetails"]["Error"]["Payload"]
    assert step_failed["ErrorType"] == "PermissionError"
    ctx_failed = events[6]["ContextFailedDetails"]["Error"]["Payload"]
    assert ctx_failed["ErrorMessage"] == "no such warehouse"
    assert ChildContextError  # the workflow could have caught it as ChildContextError


_version = {"v": 1}


def deploy_v2():
    _version["v"] = 2  # as if a new version were deployed while the wait runs


def versioned(event):
    yield Step(deploy_v2, name="reserve" if _version["v"] == 1 else "reserve-v2")
    yield Wait(seconds=1)
    return "done"


def test_nondeterminism_fails_when_configured_like_the_aws_sdk(emulator):
    handler = durable_handler(versioned, client=emulator.client, on_nondeterminism="fail")
    _version["v"] = 1
    _, ex = emulator.run(handler)
    assert ex["Status"] == "FAILED", ex
    assert ex["Error"]["ErrorType"] == "durable_gen.NonDeterminismError"
    assert (
        "the log recorded Step 'reserve', but the workflow yielded Step 'reserve-v2'"
        in (ex["Error"]["ErrorMessage"])
    )


def big_result(event):
    yield Step(reserve, "a", 1, name="reserve")
    return "x" * (LAMBDA_RESPONSE_LIMIT + 1)


def test_result_over_the_response_limit_is_checkpointed(emulator):
    _, ex = emulator.run(durable_handler(big_result, client=emulator.client))
    assert ex["Status"] == "SUCCEEDED", ex
    assert len(json.loads(ex["Result"])) == LAMBDA_RESPONSE_LIMIT + 1


def many_steps(event):
    total = 0
    for i in range(event["n"]):
        total += yield Step(reserve_count, i, name=f"s{i}")
    yield Wait(seconds=1)
    return total


def reserve_count(i):
    return i


def test_replay_of_many_operations(emulator):
    handler = durable_handler(many_steps, client=emulator.client)
    _, ex = emulator.run(handler, {"n": 300})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == sum(range(300))
    assert handler.last_checkpoint_calls == 0  # the replay after the wait sent nothing


def test_emulator_errors_are_classified(emulator):
    arn, _ = emulator.run(durable_handler(retrying, client=emulator.client), {"key": "k2"})
    with pytest.raises(Exception) as ei:
        emulator.client.checkpoint_durable_execution(
            DurableExecutionArn=arn, CheckpointToken="bogus", Updates=[]
        )
    assert classify(ei.value) in ("stale-token", "fatal")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# ---------------------------------------------------------------- batches and callbacks


def echo(x):
    return x


def branch(x):
    def body():
        return (yield Step(echo, x, name=f"echo-{x}"))

    return body


def parallel_flow(event):
    result = yield Parallel([branch("a"), branch("b"), branch("c")], name="fan")
    return result.get_results()


def test_parallel_branches(emulator):
    arn, ex = emulator.run(durable_handler(parallel_flow, client=emulator.client))
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == ["a", "b", "c"]
    events = emulator.history(arn)
    contexts = [
        (e["EventType"], e.get("SubType")) for e in events if e["EventType"].startswith("Context")
    ]
    assert contexts[0] == ("ContextStarted", "Parallel")
    assert contexts[-1] == ("ContextSucceeded", "Parallel")
    assert [c for c in contexts if c[1] == "ParallelBranch"].count(
        ("ContextSucceeded", "ParallelBranch")
    ) == 3
    assert types(events).count("StepSucceeded") == 3


def doubled(item, index):
    return (yield Step(echo, item * 2 + index, name="double"))


def map_flow(event):
    r = yield Map(event["items"], doubled, name="doubles")
    return r.get_results()


def test_map_items(emulator):
    arn, ex = emulator.run(
        durable_handler(map_flow, client=emulator.client), {"items": [10, 20, 30]}
    )
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == [20, 41, 62]
    subtypes = [
        e.get("SubType") for e in emulator.history(arn) if e["EventType"] == "ContextStarted"
    ]
    assert subtypes == ["Map", "MapIteration", "MapIteration", "MapIteration"]


def approval_flow(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(echo, handle.callback_id, name="notify")
    try:
        answer = yield handle.result()
    except CallbackFailedError as e:
        return {"rejected": e.error_message}
    return {"approved": json.loads(answer)}


def event_of(emulator, arn, event_type, name=None, timeout=10.0):
    """The first ``event_type`` event (named ``name``) of ``arn``'s history, once
    the execution has recorded it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in emulator.history(arn):
            if e["EventType"] == event_type and name in (None, e.get("Name")):
                return e
        time.sleep(0.02)
    raise AssertionError(f"no {event_type} event named {name!r} in {timeout}s")


def callback_id_of(emulator, arn):
    return event_of(emulator, arn, "CallbackStarted")["CallbackStartedDetails"]["CallbackId"]


def test_callback_completed_from_outside(emulator):
    handler = durable_handler(approval_flow, client=emulator.client)
    arn = emulator.start(emulator.register(handler))
    cid = callback_id_of(emulator, arn)
    # the service-assigned id reached the workflow (through the checkpoint delta)
    notify = event_of(emulator, arn, "StepSucceeded", "notify")
    assert json.loads(notify["StepSucceededDetails"]["Result"]["Payload"]) == cid
    emulator.client.send_durable_execution_callback_success(CallbackId=cid, Result=b'{"ok": 1}')
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"approved": {"ok": 1}}
    assert "CallbackSucceeded" in types(emulator.history(arn))


def test_callback_failed_from_outside(emulator):
    handler = durable_handler(approval_flow, client=emulator.client)
    arn = emulator.start(emulator.register(handler))
    cid = callback_id_of(emulator, arn)
    emulator.client.send_durable_execution_callback_failure(
        CallbackId=cid, Error={"ErrorType": "Rejected", "ErrorMessage": "no budget"}
    )
    ex = emulator.wait(arn)
    assert json.loads(ex["Result"]) == {"rejected": "no budget"}


def submit(callback_id):
    _submitted.append(callback_id)


_submitted: list[str] = []


def wait_for_callback_flow(event):
    return (yield WaitForCallback(submit, name="review", timeout=600))


def test_wait_for_callback(emulator):
    handler = durable_handler(wait_for_callback_flow, client=emulator.client)
    arn = emulator.start(emulator.register(handler))
    cid = callback_id_of(emulator, arn)
    deadline = time.monotonic() + 10
    while cid not in _submitted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cid in _submitted
    emulator.client.send_durable_execution_callback_success(CallbackId=cid, Result=b"yes")
    ex = emulator.wait(arn)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == "yes"
    started = [
        (e["EventType"], e.get("SubType"))
        for e in emulator.history(arn)
        if e["EventType"].endswith("Started")
    ]
    assert ("ContextStarted", "WaitForCallback") in started
    assert ("CallbackStarted", "Callback") in started


def poll(state):
    return {"count": state["count"] + 1}


POLLING = WaitStrategy(
    should_continue=lambda s: s["count"] < 3, initial_delay=1, max_delay=5, jitter=Jitter.NONE
)


def condition_flow(event):
    return (yield WaitForCondition(poll, {"count": 0}, POLLING, name="ready"))


def test_wait_for_condition(emulator):
    arn, ex = emulator.run(durable_handler(condition_flow, client=emulator.client))
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"count": 3}
    steps = [e for e in emulator.history(arn) if e["EventType"].startswith("Step")]
    assert {e.get("SubType") for e in steps} == {"WaitForCondition"}
    assert types(emulator.history(arn)).count("InvocationCompleted") == 3


# ---------------------------------------------------------------- chained invokes


def price(event):
    total = yield Step(echo, event["qty"] * 7, name="price")
    return {"total": total}


def plain_price(event, context):
    return {"total": event["qty"] * 7}


def invoking_flow(event):
    durable = yield Invoke(DURABLE_TARGET, {"qty": 3}, name="durable-quote")
    plain = yield Invoke(PLAIN_TARGET, {"qty": 4}, name="plain-quote")
    return [durable, plain]


def test_invoke_durable_and_plain_functions(emulator):
    emulator.lam.register(DURABLE_TARGET, durable_handler(price, client=emulator.client))
    emulator.lam.register(PLAIN_TARGET, plain_price)
    arn, ex = emulator.run(durable_handler(invoking_flow, client=emulator.client))
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == [{"total": 21}, {"total": 28}]
    events = emulator.history(arn)
    assert types(events).count("ChainedInvokeStarted") == 2
    assert types(events).count("ChainedInvokeSucceeded") == 2


def test_initial_state_fetched_in_pages_from_the_emulator(emulator):
    """The event is cut to the emulator's first state page of one operation; the
    handler fetches the rest with GetDurableExecutionState, two at a time."""
    client = boto3.client(
        "lambda",
        endpoint_url=emulator.url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    markers = []
    client.meta.events.register(
        "before-call.lambda.GetDurableExecutionState",
        lambda params, **_: markers.append(params["query_string"]["Marker"]),
    )
    inner = durable_handler(many_steps, client=client, limits=BatchLimits(state_page_size=2))
    fetched = []
    real = emulator.client.get_durable_execution_state

    def paged(event, context):
        first = real(
            DurableExecutionArn=event["DurableExecutionArn"],
            CheckpointToken=event["CheckpointToken"],
            MaxItems=1,
        )
        cut = {
            "Operations": event["InitialExecutionState"]["Operations"][:1],
            "NextMarker": first.get("NextMarker", ""),
        }
        fetched.append(len(event["InitialExecutionState"]["Operations"]))
        return inner({**event, "InitialExecutionState": cut}, context)

    _, ex = emulator.run(paged, {"n": 7})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == sum(range(7))
    assert fetched == [1, 9]  # the replay saw the EXECUTION, 7 steps and the wait
    assert len(markers) == 4  # 8 operations after the first page, 2 a page
    assert len(set(markers)) == 4
    assert inner.last_checkpoint_calls == 0


# ---------------------------------------------------------------- invocation-level retry

_flaky_reads: list[int] = []


def not_ready_yet(event):
    a = yield Step(reserve_count, 1, name="a")
    _flaky_reads.append(a)
    if len(_flaky_reads) == 1:
        raise InvocationError("the secret is not there yet")
    b = yield Step(current_attempt, name="b", semantics=AT_MOST_ONCE_PER_RETRY, retry=FAST_RETRY)
    return [a, b]


def test_an_invocation_error_makes_the_service_retry_the_invocation(emulator):
    _flaky_reads.clear()
    handler = durable_handler(not_ready_yet, client=emulator.client)
    arn, ex = emulator.run(handler)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == [1, 1]
    assert _flaky_reads == [1, 1]  # two invocations; "a" replayed in the second
    # the handler raised: nothing recorded the failure (the emulator, unlike the
    # service, writes no InvocationCompleted for an invocation that raised)
    assert [t for t in types(emulator.history(arn)) if t != "InvocationCompleted"] == [
        "ExecutionStarted",
        "StepStarted",
        "StepSucceeded",
        "StepStarted",
        "StepSucceeded",
        "ExecutionSucceeded",
    ]


def serdes_times_out(event):
    def store():
        if current_attempt() == 1:
            raise RetryableSerDesError("the result store timed out")
        return "stored"

    return (yield Step(store, name="s", semantics=AT_MOST_ONCE_PER_RETRY, retry=FAST_RETRY))


def test_a_retryable_serdes_error_interrupts_an_at_most_once_step(emulator):
    handler = durable_handler(serdes_times_out, client=emulator.client)
    arn, ex = emulator.run(handler)
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == "stored"
    events = emulator.history(arn)
    (failed,) = [e for e in events if e["EventType"] == "StepFailed"]
    err = failed["StepFailedDetails"]["Error"]["Payload"]
    assert err["ErrorType"] == "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    assert (
        err["ErrorMessage"] == f"Step operation_id={failed['Id']} name=s was previously interrupted"
    )


# ---------------------------------------------------------------- a history AWS's SDK wrote


def priced(event):
    hold = yield ChildContext(reserve_stock, event, name="stock")
    yield Wait(seconds=2, name="cool-off")
    receipt = yield Step(charge, event["qty"] * 10, name="charge", retry=FAST_RETRY)
    return {"hold": hold, **receipt}


def priced_v2(event):  # a step inserted before the child context: old executions diverge
    yield Step(charge, 0, name="quote")
    return (yield from priced(event))


def test_a_history_awss_sdk_recorded_checks_against_our_workflow(emulator):
    from durable_gen.testing import check_replay_compatible
    from tests.differential._aws import make_aws_handler

    arn, ex = emulator.run(make_aws_handler(priced, emulator.client), {"sku": "B-1", "qty": 3})
    assert ex["Status"] == "SUCCEEDED", ex
    history = {"Events": emulator.history(arn)}  # boto3's shape, as `aws lambda` writes it
    same = check_replay_compatible(priced, history)
    assert same.compatible, same.message
    changed = check_replay_compatible(priced_v2, history)
    assert not changed.compatible
    assert "Step 'quote'" in changed.message
    assert "stock" in changed.message  # what the log recorded there


# ---------------------------------------------------------------- patch markers


def patched_flow(event):
    yield Wait(seconds=2, name="pause")
    if (yield Patched("tax")):
        return (yield Step(charge, event["qty"] * 11, name="charge-tax"))
    return (yield Step(charge, event["qty"] * 10, name="charge"))


def test_a_patch_marker_is_a_step_awss_service_records(emulator):
    arn, ex = emulator.run(durable_handler(patched_flow, client=emulator.client), {"qty": 2})
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"receipt": "r-22"}  # the new branch
    marker = [e for e in emulator.history(arn) if e.get("SubType") == "Patch"]
    assert [(e["EventType"], e["Name"]) for e in marker] == [
        ("StepStarted", "tax"),
        ("StepSucceeded", "tax"),
    ]
