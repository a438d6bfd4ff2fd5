"""The comparison's own rules (no services needed: in the default run)."""

from __future__ import annotations

from aws_durable_execution_sdk_python.concurrency.models import BatchItem as AwsBatchItem
from aws_durable_execution_sdk_python.concurrency.models import BatchResult as AwsBatchResult
from aws_durable_execution_sdk_python.concurrency.models import CompletionReason as AwsReason
from aws_durable_execution_sdk_python.config import BatchItemStatus as AwsStatus
from aws_durable_execution_sdk_python.serdes import ExtendedTypeSerDes

from durable_gen._core.batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionReason,
)
from durable_gen._core.serdes import (
    BATCH_SERDES,
    DEFAULT_SERDES,
)

from ._normalize import decode, emulator_fixes, normalize
from ._programs import timeout_seconds

AWS: ExtendedTypeSerDes[object] = ExtendedTypeSerDes()  # type: ignore[no-untyped-call]


def test_values_decode_alike_whichever_sdk_wrote_them() -> None:
    for value in ["x", 1, None, {"a": [1, {"b": 2}]}, [1, "a"], (1, 2)]:
        assert decode(AWS.serialize(value)) == decode(DEFAULT_SERDES.serialize(value))
    ours = BatchResult.build(
        [BatchItem(0, BatchItemStatus.SUCCEEDED, {"k": 1})], CompletionReason.ALL_COMPLETED
    )
    theirs = AwsBatchResult(
        [AwsBatchItem(0, AwsStatus.SUCCEEDED, {"k": 1})], AwsReason.ALL_COMPLETED
    )
    assert decode(AWS.serialize(theirs)) == decode(BATCH_SERDES.serialize(ours))
    assert decode(AWS.serialize(theirs)) != decode(AWS.serialize({"k": 1}))


def test_normalize_keeps_what_is_compared_and_drops_the_rest() -> None:
    events = [
        {"EventType": "ExecutionStarted", "EventId": 1, "Id": "x", "Name": "n1"},
        {
            "EventType": "StepFailed",
            "EventId": 2,
            "Id": "s",
            "Name": "a",
            "EventTimestamp": 5,
            "StepFailedDetails": {
                "Error": {"Payload": {"ErrorType": "E", "ErrorMessage": "m", "StackTrace": ["l"]}},
                "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2},
            },
        },
        {"EventType": "InvocationCompleted", "EventId": 3},
    ]
    assert normalize(events, "FAILED", None) == {
        "status": "FAILED",
        "result": None,
        "execution": [{"EventType": "ExecutionStarted"}],
        "operations": {
            "s": [
                {
                    "EventType": "StepFailed",
                    "Name": "a",
                    "Details": {
                        "Error": {"ErrorType": "E", "ErrorMessage": "m"},
                        "RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2},
                    },
                }
            ]
        },
    }


def test_emulator_fixes_touch_only_the_documented_gaps() -> None:
    final = {
        "EventType": "StepFailed",
        "StepFailedDetails": {"RetryDetails": {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 0}},
    }
    retried = {
        "EventType": "StepFailed",
        "StepFailedDetails": {"RetryDetails": {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 3}},
    }
    first = {
        "EventType": "StepSucceeded",
        "StepSucceededDetails": {"RetryDetails": {"CurrentAttempt": 1}},
    }
    later = {
        "EventType": "StepSucceeded",
        "StepSucceededDetails": {"RetryDetails": {"CurrentAttempt": 2}},
    }
    fixed = emulator_fixes([final, retried, first, later])
    assert fixed[0]["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 2}
    assert fixed[1] == retried
    assert "RetryDetails" not in fixed[2]["StepSucceededDetails"]
    assert fixed[3] == later


def test_timeout_seconds_counts_branches_in_turn() -> None:
    assert timeout_seconds([["cbtimeout", 1], ["map", 3, [["cbtimeout", 1]], "first", 1]]) == 4
    assert timeout_seconds([["try", ["child", [["cbtimeout", 1]], False]]]) == 1
