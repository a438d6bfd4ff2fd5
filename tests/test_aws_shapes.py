"""Payloads and error types as AWS's Python SDK records them (issue 19).

Batch results are checkpointed as AWS's JSON record of a BatchResult; an error
that escapes a context is recorded as AWS's SDK records it (``...StepError``,
``...ChildContextError``), and the exception a workflow catches keeps the original
failure reachable through ``__cause__``, identical on the first run and on replay.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_durable_execution_sdk_python.concurrency.models import BatchResult as AwsBatchResult
from aws_durable_execution_sdk_python.lambda_service import ErrorObject as AwsErrorObject

from durable_gen import (
    BatchResult,
    ChildContext,
    ChildContextError,
    CompletionPolicy,
    CreateCallback,
    ErrorObject,
    InMemoryEngine,
    Map,
    OperationType,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    WaitForCallback,
)
from durable_gen._core.batch import (
    BatchItem,
    BatchItemStatus,
    CompletionReason,
)
from durable_gen._core.errors import (
    AWS_SDK_EXCEPTIONS,
    error_from_exception,
)
from durable_gen._core.serdes import (
    BATCH_SERDES,
    CBOR_PREFIX,
)
from durable_gen._engine.clock import VirtualClock

NO_RETRY = RetryPolicy.none()
STEP_ERROR = f"{AWS_SDK_EXCEPTIONS}.StepError"
CHILD_ERROR = f"{AWS_SDK_EXCEPTIONS}.ChildContextError"


def boom(message: str) -> None:
    raise RuntimeError(message)


def echo(value: Any) -> Any:
    return value


def item_fn(item: Any, index: int) -> Any:
    if index == 1:
        yield Step(boom, "item 1 failed", retry=NO_RETRY)
    return (yield Step(echo, item))


def op_of(result: Any, sub_type: str) -> Any:
    return next(op for op in result.operations if op.sub_type == sub_type)


# ---------------------------------------------------------------- batch payloads


def test_map_payload_is_awss_json_record_of_the_batch() -> None:
    def wf(_: Any) -> Any:
        r = yield Map(["a", "b", "c"], item_fn, completion=CompletionPolicy.all_completed())
        return r.get_results()

    result = InMemoryEngine().run(wf)
    assert result.result == ["a", "c"]
    payload = op_of(result, "Map").result
    assert not payload.startswith(CBOR_PREFIX)
    record = json.loads(payload)
    # durable_gen keeps where the step failed (AWS's SDK records no StackTrace for a
    # plain exception); everything else is AWS's record, key for key
    assert record["all"][1]["error"].pop("StackTrace")
    assert record == {
        "all": [
            {"index": 0, "status": "SUCCEEDED", "result": "a", "error": None},
            {
                "index": 1,
                "status": "FAILED",
                "result": None,
                "error": {"ErrorMessage": "item 1 failed", "ErrorType": STEP_ERROR},
            },
            {"index": 2, "status": "SUCCEEDED", "result": "c", "error": None},
        ],
        "completionReason": "ALL_COMPLETED",
    }


def test_awss_batch_result_reads_our_record_and_writes_it_back_unchanged() -> None:
    def wf(_: Any) -> Any:
        yield Parallel(
            [lambda: item_fn("x", 0), lambda: item_fn("y", 1)],
            completion=CompletionPolicy.all_completed(),
        )

    result = InMemoryEngine().run(wf)
    record = json.loads(op_of(result, "Parallel").result)
    theirs: AwsBatchResult[Any] = AwsBatchResult.from_dict(record)
    assert theirs.to_dict() == record
    assert theirs.get_results() == ["x"]
    assert [e.type for e in theirs.get_errors()] == [STEP_ERROR]  # type: ignore[union-attr]


def test_batch_replays_from_its_json_record() -> None:
    def wf(_: Any) -> Any:
        r = yield Map([1, 2, 3], item_fn, completion=CompletionPolicy.all_completed())
        yield Wait(seconds=5)  # the map is replayed from its record after the wait
        return [r.get_results(), [e.type if e else None for e in r.get_errors()]]

    engine = InMemoryEngine()
    result = engine.run(wf)
    assert result.invocations == 2
    assert result.result == [[1, 3], [STEP_ERROR]]


def test_a_returned_batch_result_is_stored_and_returned_as_its_json_record() -> None:
    def wf(_: Any) -> Any:
        return (yield Map(["a", "b"], item_fn, completion=CompletionPolicy.all_completed()))

    result = InMemoryEngine().run(wf)
    map_payload = op_of(result, "Map").result
    assert result.result == json.loads(map_payload)
    assert result.result["all"][1]["error"]["ErrorType"] == STEP_ERROR


def test_batch_items_json_cannot_carry_fall_back_to_cbor_and_read_back_exactly() -> None:
    item = BatchItem(0, BatchItemStatus.SUCCEEDED, (1, 2))  # a tuple: not JSON-native
    batch = BatchResult.build([item], CompletionReason.ALL_COMPLETED)
    payload = BATCH_SERDES.serialize(batch)
    assert payload.startswith(CBOR_PREFIX)
    assert BATCH_SERDES.deserialize(payload) == batch


def test_batch_serdes_reads_records_without_null_keys_and_refuses_other_dicts() -> None:
    old = '{"all":[{"index":0,"status":"SUCCEEDED","result":1}],"completionReason":"ALL_COMPLETED"}'
    assert BATCH_SERDES.deserialize(old).get_results() == [1]
    with pytest.raises(Exception, match=r"not a batch result \(KeyError: 'all'\)"):
        BATCH_SERDES.deserialize('{"x":1}')


def test_a_nested_batch_result_stays_a_batch_result_through_a_child_context() -> None:
    def child() -> Any:
        return (yield Map([1], item_fn))

    def wf(_: Any) -> Any:
        r = yield ChildContext(child)
        yield Wait(seconds=1)
        return type(r).__name__

    assert InMemoryEngine().run(wf).result == "BatchResult"


# ---------------------------------------------------------------- error types


def nested(message: str) -> Any:
    def inner() -> Any:
        yield Step(boom, message, name="s", retry=NO_RETRY)

    def outer() -> Any:
        yield ChildContext(inner, name="in")

    return outer


def test_errors_escaping_contexts_are_recorded_as_aws_records_them() -> None:
    def wf(_: Any) -> Any:
        yield ChildContext(nested("deep failure"), name="out")

    result = InMemoryEngine().run(wf)
    errors = {op.name: op.error for op in result.operations if op.error is not None}
    assert (errors["s"].type, errors["s"].message) == ("RuntimeError", "deep failure")
    assert (errors["in"].type, errors["in"].message) == (STEP_ERROR, "deep failure")
    assert (errors["out"].type, errors["out"].message) == (CHILD_ERROR, "deep failure")
    assert result.error is not None
    assert (result.error.type, result.error.message) == (CHILD_ERROR, "deep failure")


def cause_chain(exc: BaseException | None) -> list[tuple[str, str | None, str | None]]:
    out = []
    while exc is not None:
        assert isinstance(exc, StepError | ChildContextError)
        out.append((type(exc).__name__, exc.error_type, exc.error_message))
        exc = exc.__cause__
    return out


EXPECTED_CHAIN = [
    ("ChildContextError", CHILD_ERROR, "why"),
    ("ChildContextError", STEP_ERROR, "why"),
    ("StepError", "RuntimeError", "why"),
]


@pytest.mark.parametrize("replayed", [False, True])
def test_a_caught_context_error_keeps_the_original_failure_as_its_cause(replayed: bool) -> None:
    def wf(_: Any) -> Any:
        if replayed:
            yield Wait(seconds=1)  # ... the chain below is rebuilt from the log
        try:
            yield ChildContext(nested("why"), name="out")
        except ChildContextError as e:
            first = cause_chain(e)
        yield Wait(seconds=1)
        try:
            yield ChildContext(nested("why"), name="again")
        except ChildContextError as e:
            return [first, cause_chain(e)]
        return None

    result = InMemoryEngine().run(wf)
    assert result.result == [EXPECTED_CHAIN, EXPECTED_CHAIN]


def test_error_from_exception_uses_awss_class_names_for_operation_errors() -> None:
    err = StepError(ErrorObject(type="KeyError", message="'k'", stack_trace=("a",)))
    assert error_from_exception(err) == ErrorObject(
        type=STEP_ERROR, message="'k'", stack_trace=("a",)
    )
    # the same ErrorObject AWS's SDK records for its own StepError
    from aws_durable_execution_sdk_python.exceptions import StepError as AwsStepError

    theirs = AwsErrorObject.from_exception(AwsStepError("'k'", "KeyError", None, ["a"]))
    assert theirs.to_dict() == error_from_exception(err).to_dict()


def test_step_failure_at_the_root_records_step_error_with_the_steps_own_error_kept() -> None:
    def wf(_: Any) -> Any:
        yield Step(boom, "at the root", name="s", retry=NO_RETRY)

    result = InMemoryEngine().run(wf)
    assert result.error is not None
    assert (result.error.type, result.error.message) == (STEP_ERROR, "at the root")
    step = next(op for op in result.operations if op.type is OperationType.STEP)
    assert step.error is not None
    assert step.error.type == "RuntimeError"


def test_show_names_step_error_where_aws_does_and_keeps_the_original_below() -> None:
    from durable_gen._cli.main import _op_line

    def wf(_: Any) -> Any:
        r = yield Map(["a", "b"], item_fn, completion=CompletionPolicy.all_completed())
        r.throw_if_error()

    result = InMemoryEngine().run(wf)
    lines = [_op_line(op) for op in result.operations if op.error is not None]
    assert [line.split("  ✗ ")[1] for line in lines] == [
        "StepError: item 1 failed",  # the MapIteration context, as AWS records it
        "RuntimeError: item 1 failed",  # the step inside it: the original failure
    ]


def test_min_successful_above_the_number_of_branches_is_refused_as_aws_refuses_it() -> None:
    def wf(_: Any) -> Any:
        yield Parallel([], completion=CompletionPolicy.first_successful())

    result = InMemoryEngine().run(wf)
    assert result.error is not None
    assert (result.error.type, result.error.message) == (
        f"{AWS_SDK_EXCEPTIONS}.ValidationError",
        "min_successful cannot be greater than total items: 1 > 0",
    )


def test_a_wait_for_callback_context_stores_its_result_as_json() -> None:
    def wf(_: Any) -> Any:
        return (yield WaitForCallback(lambda cid: None, "approve", timeout=60))

    engine = InMemoryEngine()
    started = engine.run(wf)
    cb = next(op for op in started.operations if op.type is OperationType.CALLBACK)
    assert cb.callback_id is not None
    engine.store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload="yes")
    result = engine.resume(wf, started.execution_id)
    assert result.result == "yes"  # the raw payload (pass-through), as AWS's SDK
    ctx = op_of(result, "WaitForCallback")
    assert ctx.result == '"yes"'  # the context's result with the default serdes, as AWS's


def test_awaiting_a_timed_out_callback_throws_awss_callback_timeout_error() -> None:
    def wf(_: Any) -> Any:
        handle = yield CreateCallback("approval", timeout=5)
        yield handle.result()

    clock = VirtualClock()
    engine = InMemoryEngine(clock=clock)
    started = engine.run(wf)
    clock.advance(6)
    result = engine.resume(wf, started.execution_id)
    assert result.error is not None
    assert (result.error.type, result.error.message) == (
        f"{AWS_SDK_EXCEPTIONS}.CallbackTimeoutError",
        "Callback timed out",  # what the service recorded on the callback
    )
    cb = next(op for op in result.operations if op.type is OperationType.CALLBACK)
    assert cb.error is not None
    assert (cb.error.type, cb.error.message) == ("Callback.Timeout", "Callback timed out")


def test_a_batch_recorded_by_awss_custom_completion_reads_back() -> None:
    record = '{"all":[],"completionReason":"CUSTOM_COMPLETION_FAILED"}'
    batch = BATCH_SERDES.deserialize(record)
    assert batch.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED
    assert batch.status.value == "FAILED"
