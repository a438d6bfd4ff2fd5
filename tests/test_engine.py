"""The in-memory engine: steps, retries, step semantics, waits, child contexts."""

import datetime
import decimal
import re
import uuid

import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    ChildContextError,
    InMemoryEngine,
    Jitter,
    MemoryStore,
    OperationAction,
    OperationStatus,
    OperationType,
    RetryPolicy,
    Step,
    StepError,
    VirtualClock,
    Wait,
    WorkflowFailedError,
    current_attempt,
)

NO_JITTER = RetryPolicy(max_attempts=4, initial_delay=2, max_delay=60, jitter=Jitter.NONE)


class Counter:
    def __init__(self):
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        return len(self.calls)


def test_straight_line_steps_run_in_one_invocation():
    calls = Counter()

    def wf(event):
        a = yield Step(calls, event["x"], name="a")
        b = yield Step(calls, a, name="b")
        return a + b

    result = InMemoryEngine().run(wf, {"x": 1})
    assert result.status == "SUCCEEDED"
    assert result.result == 3
    assert result.invocations == 1
    assert calls.calls == [(1,), (1,)]
    assert [op.name for op in result.operations] == ["a", "b"]
    assert all(op.status is OperationStatus.SUCCEEDED for op in result.operations)


def test_wait_suspends_and_resumes_without_rerunning_steps():
    calls = Counter()
    clock = VirtualClock()
    start = clock.now()

    def wf(_):
        first = yield Step(calls, name="first")
        yield Wait(seconds=3600, name="an-hour")
        second = yield Step(calls, name="second")
        return [first, second]

    engine = InMemoryEngine(clock=clock)
    result = engine.run(wf)
    assert result.result == [1, 2]
    assert result.invocations == 2
    assert len(calls.calls) == 2
    assert clock.now() - start == 3_600_000
    wait = next(op for op in result.operations if op.type is OperationType.WAIT)
    assert wait.status is OperationStatus.SUCCEEDED
    assert wait.scheduled_end_timestamp == start + 3_600_000


def test_wait_accepts_timedelta_and_units():
    assert Wait(datetime.timedelta(minutes=2)).seconds == 120
    assert Wait(minutes=1, seconds=5).seconds == 65
    assert Wait(hours=1).seconds == 3600


def test_failing_step_is_retried_with_recorded_delays_then_succeeds():
    def flaky():
        if current_attempt() < 3:
            raise ConnectionError(f"down on attempt {current_attempt()}")
        return current_attempt()

    def wf(_):
        return (yield Step(flaky, retry=NO_JITTER))

    engine = InMemoryEngine()
    start = engine.clock.now()
    result = engine.run(wf)
    assert result.result == 3
    assert result.invocations == 3  # each retry is a new invocation, as on AWS
    (op,) = result.operations
    assert op.attempt == 3
    assert engine.clock.now() - start == (2 + 4) * 1000
    ups = engine.store.updates(result.execution_id)
    assert [(u.action, u.next_attempt_delay_seconds) for u in ups] == [
        (OperationAction.START, None),
        (OperationAction.RETRY, 2),
        (OperationAction.START, None),
        (OperationAction.RETRY, 4),
        (OperationAction.START, None),
        (OperationAction.SUCCEED, None),
    ]
    assert ups[1].error.type == "ConnectionError"
    assert ups[1].error.message == "down on attempt 1"


def test_exhausted_retries_throw_step_error_into_the_workflow():
    class Declined(Exception):
        pass

    def pay():
        raise Declined("card declined")

    def wf(_):
        try:
            yield Step(pay, name="pay", retry=NO_JITTER)
        except StepError as e:
            return {"type": e.error_type, "message": e.error_message, "name": e.operation_name}
        return "unreachable"

    result = InMemoryEngine().run(wf)
    assert result.result == {
        "type": "tests.test_engine.test_exhausted_retries_throw_step_error_into_the_workflow"
        ".<locals>.Declined",
        "message": "card declined",
        "name": "pay",
    }
    assert result.invocations == 4
    assert result.operations[0].status is OperationStatus.FAILED
    assert result.operations[0].attempt == 4


def test_non_retryable_error_fails_at_once():
    def pay():
        raise KeyError("nope")

    policy = RetryPolicy(retryable_error_types=[ConnectionError])

    def wf(_):
        yield Step(pay, retry=policy)

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    # recorded as AWS's SDK records an escaping step failure: its StepError, the message kept
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert result.error.message == "'nope'"
    step = next(op for op in result.operations if op.type is OperationType.STEP)
    assert step.error is not None
    assert step.error.type == "KeyError"  # the step's own failure
    assert result.invocations == 1
    with pytest.raises(WorkflowFailedError, match=r"StepError: 'nope'"):
        result.get()


def test_uncaught_step_failure_fails_the_execution_with_step_error_and_the_message():
    def boom():
        raise ValueError("bad input")

    def wf(_):
        yield Step(boom, retry=RetryPolicy.none())

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    assert (result.error.type, result.error.message) == (
        "aws_durable_execution_sdk_python.exceptions.StepError",
        "bad input",
    )
    assert result.error.stack_trace  # where it was raised, for the person debugging


def test_step_error_is_identical_on_replay():
    seen = []

    def boom():
        raise ValueError("bad input")

    def wf(_):
        try:
            yield Step(boom, retry=RetryPolicy.none())
        except StepError as e:
            seen.append((e.error_type, e.error_message, e.operation_name, e.operation_id))
        yield Wait(seconds=1)
        return "ok"

    result = InMemoryEngine().run(wf)
    assert result.invocations == 2
    assert len(seen) == 2
    assert seen[0] == seen[1]


def test_at_most_once_persists_start_before_running():
    store = MemoryStore()
    engine = InMemoryEngine(store=store)
    observed = []

    def side_effect():
        ex_id = next(iter(store._executions))
        observed.append(
            [op.status for op in store.load(ex_id).values() if op.type is OperationType.STEP]
        )
        return "done"

    def wf(_):
        return (yield Step(side_effect, semantics=AT_MOST_ONCE_PER_RETRY))

    assert engine.run(wf).result == "done"
    assert observed == [[OperationStatus.STARTED]]


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing catches it)."""


def test_interrupted_at_most_once_attempt_goes_to_retry_policy_not_rerun():
    runs = []

    def once():
        runs.append(current_attempt())
        if len(runs) == 1:
            raise Crash  # the process dies in the middle of attempt 1
        return "second attempt"

    def wf(_):
        return (yield Step(once, semantics=AT_MOST_ONCE_PER_RETRY, retry=NO_JITTER))

    engine = InMemoryEngine()
    ex = engine.start(wf)
    with pytest.raises(Crash):
        engine.invoke_once(wf, ex)
    result = engine.resume(wf, ex)
    assert result.result == "second attempt"
    assert runs == [1, 2]  # attempt 1 was never run again
    ups = engine.store.updates(ex)
    retry = next(u for u in ups if u.action is OperationAction.RETRY)
    # recorded in AWS's words, as AWS's SDK records an interrupted attempt
    assert retry.error.type == "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    assert (
        retry.error.message == f"Step operation_id={retry.id} name=once was previously interrupted"
    )


def test_interrupted_at_most_once_without_retries_fails_the_step():
    runs = []

    def once():
        runs.append(1)
        raise Crash

    def wf(_):
        try:
            yield Step(once, semantics=AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.none())
        except StepError as e:
            return e.error_type

    engine = InMemoryEngine()
    ex = engine.start(wf)
    with pytest.raises(Crash):
        engine.invoke_once(wf, ex)
    assert engine.resume(wf, ex).result == (
        "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    )
    assert runs == [1]


def test_interrupted_at_least_once_attempt_runs_again():
    runs = []

    def again():
        runs.append(current_attempt())
        if len(runs) == 1:
            raise Crash
        return "ok"

    def wf(_):
        return (yield Step(again))

    engine = InMemoryEngine()
    ex = engine.start(wf)
    with pytest.raises(Crash):
        engine.invoke_once(wf, ex)
    assert engine.resume(wf, ex).result == "ok"
    assert runs == [1, 1]  # the same attempt, run again


def test_child_context_result_and_replay():
    calls = Counter()

    def child(x):
        a = yield Step(calls, x, name="in-child")
        return {"a": a, "x": x}

    def wf(_):
        r = yield ChildContext(child, 7, name="kid")
        yield Wait(seconds=5)
        return r

    result = InMemoryEngine().run(wf)
    assert result.result == {"a": 1, "x": 7}
    assert len(calls.calls) == 1  # the succeeded context was not re-run on replay
    ctx = next(op for op in result.operations if op.type is OperationType.CONTEXT)
    step = next(op for op in result.operations if op.type is OperationType.STEP)
    assert (ctx.name, ctx.sub_type, ctx.status) == (
        "kid",
        "RunInChildContext",
        OperationStatus.SUCCEEDED,
    )
    assert step.parent_id == ctx.id
    assert ctx.result == '{"a":1,"x":7}'


def test_child_context_default_name_is_the_function_name():
    def reservation():
        yield Wait(seconds=1)
        return 1

    def wf(_):
        return (yield ChildContext(reservation))

    result = InMemoryEngine().run(wf)
    assert result.operations[0].name == "reservation"


def test_wait_inside_child_context_suspends_and_resumes_the_child():
    calls = Counter()

    def child():
        yield Step(calls, name="before")
        yield Wait(seconds=10)
        yield Step(calls, name="after")
        return "child-done"

    def wf(_):
        return (yield ChildContext(child, name="c"))

    result = InMemoryEngine().run(wf)
    assert result.result == "child-done"
    assert len(calls.calls) == 2
    assert result.invocations == 2


def test_child_context_failure_is_thrown_into_parent():
    def child():
        yield Wait(seconds=1)
        raise LookupError("no stock")

    def wf(_):
        try:
            yield ChildContext(child, name="reserve")
        except ChildContextError as e:
            return [e.error_type, e.error_message, e.operation_name]

    result = InMemoryEngine().run(wf)
    assert result.result == ["LookupError", "no stock", "reserve"]
    ctx = result.operations[0]
    assert ctx.status is OperationStatus.FAILED


def test_large_child_result_is_rebuilt_from_children():
    calls = Counter()
    big = "x" * (300 * 1024)

    def child():
        n = yield Step(calls)
        return big + str(n)

    def wf(_):
        r = yield ChildContext(child, name="big")
        yield Wait(seconds=1)
        return len(r)

    result = InMemoryEngine().run(wf)
    assert result.result == 300 * 1024 + 1
    ctx = result.operations[0]
    assert ctx.replay_children is True
    assert ctx.result == ""
    assert len(calls.calls) == 1  # the rebuild replayed the step, it did not re-run it


def test_exact_round_trip_of_rich_step_results_on_replay():
    values = {
        "tuple": (1, "a"),
        "bytes": b"\x00\xff",
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
        "amount": decimal.Decimal("10.50"),
        "id": uuid.UUID(int=7),
        "set": frozenset({1, 2}),
        "keys": {1: "one", (2, 3): "pair"},
        "big": 2**100,
    }
    seen = []

    def produce():
        return values

    def wf(_):
        v = yield Step(produce)
        seen.append(v)
        yield Wait(seconds=1)
        return "ok"

    InMemoryEngine().run(wf)
    assert len(seen) == 2
    assert seen[0] == seen[1] == values
    assert {k: type(v) for k, v in seen[1].items()} == {k: type(v) for k, v in values.items()}


def test_unserializable_step_result_fails_the_step_naming_operation_and_type():
    class Handle:
        pass

    def open_handle():
        return Handle()

    def wf(_):
        try:
            yield Step(open_handle, name="open")
        except StepError as e:
            return [e.error_type, e.error_message]

    result = InMemoryEngine().run(wf)
    err_type, message = result.result
    assert err_type == "durable_gen.SerializationError"
    assert message.startswith("step 'open' returned a value that cannot be stored: ")
    assert "Handle" in message
    assert result.invocations == 1  # not retried: the same value would fail again


def test_unserializable_workflow_result_fails_the_execution():
    def wf(_):
        yield Wait(seconds=1)
        return object()

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    assert result.error.type == "durable_gen.SerializationError"
    assert result.error.message.startswith("the workflow returned a value that cannot be stored")


def test_finally_blocks_run_at_every_suspension():
    closed = []

    def wf(_):
        try:
            yield Wait(seconds=1)
            yield Wait(seconds=1)
        finally:
            closed.append(1)
        return "ok"

    result = InMemoryEngine().run(wf)
    assert result.result == "ok"
    assert len(closed) == 3  # two suspensions and the real end


def test_ten_thousand_steps_run_forward_in_one_invocation():
    def one(i):
        return i

    def wf(n):
        total = 0
        for i in range(n):
            total += yield Step(one, i, name="s")
        return total

    result = InMemoryEngine().run(wf, 10_000)
    assert result.result == sum(range(10_000))
    assert result.invocations == 1
    assert len(result.operations) == 10_000


def test_ten_thousand_operation_log_replays_after_a_wait():
    calls = Counter()

    def wf(n):
        for _ in range(n):
            yield Step(calls, name="s")
        yield Wait(seconds=1)
        return "replayed"

    result = InMemoryEngine().run(wf, 10_000)
    assert result.result == "replayed"
    assert result.invocations == 2
    assert len(calls.calls) == 10_000  # the replay ran none of them again


def test_history_records_lambda_events():
    def flaky():
        if current_attempt() == 1:
            raise ConnectionError("x")
        return 1

    def wf(_):
        yield Step(flaky, name="f", retry=NO_JITTER)
        yield Wait(seconds=2, name="w")
        return "ok"

    engine = InMemoryEngine()
    result = engine.run(wf)
    events = engine.store.history(result.execution_id)
    assert [e["EventType"] for e in events] == [
        "ExecutionStarted",
        "StepStarted",
        "StepFailed",
        "InvocationCompleted",
        "StepStarted",
        "StepSucceeded",
        "WaitStarted",
        "InvocationCompleted",
        "WaitSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]
    assert [e["EventId"] for e in events] == list(range(1, 12))
    failed = events[2]["StepFailedDetails"]
    assert failed["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2}
    assert failed["Error"]["Payload"]["ErrorType"] == "ConnectionError"
    invocation = events[3]["InvocationCompletedDetails"]
    assert set(invocation) == {"StartTimestamp", "EndTimestamp", "RequestId"}
    assert events[5]["StepSucceededDetails"] == {
        "Result": {"Payload": "1", "Truncated": False},
        "RetryDetails": {"CurrentAttempt": 2},
    }
    assert events[-1]["ExecutionSucceededDetails"]["Result"]["Payload"] == '"ok"'


def test_step_validation_messages():
    def gen():
        yield 1

    with pytest.raises(
        TypeError, match=re.escape("Step runs a plain function, got the generator function")
    ):
        Step(gen)
    with pytest.raises(
        TypeError, match=r"^Step needs a callable as its first argument, got 3 \(int\)$"
    ):
        Step(3)
    with pytest.raises(ValueError, match=r"^retry must be a RetryPolicy or None, got 3 \(int\)$"):
        Step(print, retry=3)
    with pytest.raises(
        ValueError,
        match=r"^semantics must be AT_LEAST_ONCE_PER_RETRY or AT_MOST_ONCE_PER_RETRY, "
        r"got 'once' \(str\)$",
    ):
        Step(print, semantics="once")
    with pytest.raises(
        ValueError,
        match=r"^a wait must last from 1 second to 31622400 seconds \(366 days\), got 0$",
    ):
        Wait(seconds=0)
    with pytest.raises(
        ValueError,
        match=r"^a wait is recorded in whole seconds, got 1.5; round it, e.g. Wait\(seconds=2\)$",
    ):
        Wait(seconds=1.5)
    with pytest.raises(ValueError, match=r"^name must be 1 to 256 printable ASCII characters"):
        Step(print, name="")
    with pytest.raises(
        TypeError, match=re.escape("ChildContext's function must be a generator function")
    ):
        ChildContext(print)


def _double(x):
    return 2 * x


def test_a_step_is_an_immutable_step_that_copies_and_pickles():
    import copy
    import pickle

    import attrs

    step = Step(_double, 21, name="double", semantics=AT_MOST_ONCE_PER_RETRY)
    assert type(step) is Step  # built on a twin and switched: nothing else escapes
    assert (step.fn, step.args, step.name) == (_double, (21,), "double")
    assert step.semantics is AT_MOST_ONCE_PER_RETRY
    assert (step.retry, step.serdes) == (None, None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        step.name = "other"  # type: ignore[misc]
    assert copy.copy(step) == copy.deepcopy(step) == step
    assert pickle.loads(pickle.dumps(step)) == step
    assert Step(fn=_double) == Step(_double)
    with pytest.raises(TypeError, match="fn"):
        Step()  # type: ignore[call-arg]

    class Labelled(Step):  # a subclass is built slot by slot, still validated
        pass

    sub = Labelled(_double, 1)
    assert type(sub) is Labelled
    assert (sub.fn, sub.args, sub.name) == (_double, (1,), "_double")
    with pytest.raises(ValueError, match="retry must be a RetryPolicy"):
        Labelled(_double, retry=3)


def test_default_names():
    def reserve():
        return 1

    assert Step(reserve).name == "reserve"
    assert Step(lambda: 1).name is None
    assert Step(reserve, name="custom").name == "custom"
    assert Wait(seconds=1).name is None


def test_oversized_step_result_fails_the_step_with_a_clear_error():
    def big():
        return "x" * (300 * 1024)

    def wf(_):
        try:
            yield Step(big, name="big")
        except StepError as e:
            return [e.error_type, e.error_message]

    engine = InMemoryEngine()
    result = engine.run(wf)
    err_type, message = result.result
    assert err_type == "durable_gen.PayloadTooLargeError"
    assert message == (
        "step 'big' returned a value that cannot be stored: the result of step 'big' is "
        "307202 bytes once serialized, over the 262144-byte limit of one checkpoint; keep "
        "large data elsewhere (a file, a bucket) and return a reference to it"
    )
    assert result.invocations == 1  # not retried: the same value would fail again
    # nothing oversized reached the store
    assert all(len(u.payload or "") < 262144 for u in engine.store.updates(result.execution_id))


def test_the_replay_children_limit_counts_utf8_bytes_not_characters():
    wide = "€" * 100_000  # 100,000 characters, 300,000 UTF-8 bytes: over 256 KiB

    def child():
        yield Wait(seconds=1)
        return wide

    def wf(_):
        r = yield ChildContext(child, name="wide")
        return len(r)

    result = InMemoryEngine().run(wf)
    assert result.result == 100_000
    ctx = next(op for op in result.operations if op.name == "wide")
    assert ctx.replay_children is True
    assert ctx.result == ""
