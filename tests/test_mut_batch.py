"""Tests that kill the mutants of durable_gen/_core/batch.py (issue 29, see mutation/).

They pin the validation messages, the presets, the percentage arithmetic of the
failure tolerance and the exact record of a BatchResult.
"""

from __future__ import annotations

import pytest

from durable_gen._core.batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
)
from durable_gen._core.errors import ChildContextError, ErrorObject, ValidationError

S, F, R = BatchItemStatus.SUCCEEDED, BatchItemStatus.FAILED, BatchItemStatus.STARTED


@pytest.mark.parametrize("field", ["min_successful", "tolerated_failure_count"])
@pytest.mark.parametrize(
    ("value", "shown"), [(-1, "-1 (int)"), (1.5, "1.5 (float)"), (True, "True (bool)")]
)
def test_counts_must_be_non_negative_ints(field, value, shown):
    message = f"^{field} must be an int >= 0 or None, got {shown}$".replace("(", r"\(")
    message = message.replace(")", r"\)")
    with pytest.raises(ValidationError, match=message):
        CompletionPolicy(**{field: value})


@pytest.mark.parametrize("p", [-0.5, 100.5, 150, True, "50"])
def test_percentage_must_be_a_number_from_0_to_100(p):
    with pytest.raises(
        ValidationError,
        match=r"^tolerated_failure_percentage must be a number from 0 to 100 or None, got ",
    ):
        CompletionPolicy(tolerated_failure_percentage=p)


@pytest.mark.parametrize("p", [0, 0.0, 50, 100, 100.0])
def test_percentage_bounds_are_inclusive(p):
    assert CompletionPolicy(tolerated_failure_percentage=p).tolerated_failure_percentage == p


def test_min_successful_zero_is_rejected_with_its_message():
    with pytest.raises(ValidationError, match=r"^min_successful must be at least 1 \(or None\)$"):
        CompletionPolicy(min_successful=0)


def test_presets_have_their_values():
    def fields(p: CompletionPolicy) -> tuple[object, ...]:
        return (p.min_successful, p.tolerated_failure_count, p.tolerated_failure_percentage)

    assert fields(CompletionPolicy.all_successful()) == (None, 0, 0)
    assert fields(CompletionPolicy.all_completed()) == (None, None, 100)
    assert fields(CompletionPolicy.first_successful()) == (1, None, None)


def test_all_completed_goes_on_whatever_fails():
    policy = CompletionPolicy.all_completed()
    assert policy.decide(succeeded=0, failed=4, total=5) is None
    assert policy.decide(succeeded=0, failed=5, total=5) is CompletionReason.ALL_COMPLETED


@pytest.mark.parametrize(
    ("pct", "failed", "total", "exceeded"),
    [
        (50, 3, 4, True),  # 75 % > 50 %
        (40, 1, 2, True),  # 50 % > 40 %
        (50, 1, 2, False),  # 50 % is tolerated at 50 %
        (0, 1, 1, True),  # a single branch failing exceeds 0 %
        (0, 0, 0, False),  # an empty batch exceeds nothing (and divides by nothing)
        (10, 0, 3, False),
    ],
)
def test_percentage_tolerance_arithmetic(pct, failed, total, exceeded):
    policy = CompletionPolicy(tolerated_failure_percentage=pct)
    assert policy.tolerance_exceeded(failed, total) is exceeded


def _mixed() -> BatchResult:
    return BatchResult.build(
        [
            BatchItem(3, R),
            BatchItem(1, F, error=ErrorObject(type="KeyError", message="k")),
            BatchItem(0, S, "zero"),
            BatchItem(2, F),
        ],
        CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
    )


def test_result_views_select_by_status():
    result = _mixed()
    assert [i.index for i in result.succeeded()] == [0]
    assert [i.index for i in result.failed()] == [1, 2]
    assert [i.index for i in result.started()] == [3]
    assert (result.success_count, result.failure_count, result.started_count) == (1, 2, 1)
    assert result.get_results() == ["zero"]
    assert result.get_errors() == [ErrorObject(type="KeyError", message="k"), None]


def test_throw_if_error_without_a_recorded_error_names_the_branch():
    result = BatchResult.build(
        [BatchItem(0, S, 1), BatchItem(2, F)], CompletionReason.ALL_COMPLETED
    )
    with pytest.raises(ChildContextError) as info:
        result.throw_if_error()
    assert info.value.operation_name == "branch 2"
    assert (info.value.error_type, info.value.error_message) == ("Error", "branch failed")
    assert str(info.value) == "child context 'branch 2' failed: Error: branch failed"


def test_record_is_exact_and_round_trips():
    result = _mixed()
    record = result.to_record()
    assert record == {
        "all": [  # AWS's shape: every item has all four keys
            {"index": 0, "status": "SUCCEEDED", "result": "zero", "error": None},
            {
                "index": 1,
                "status": "FAILED",
                "result": None,
                "error": {"ErrorType": "KeyError", "ErrorMessage": "k"},
            },
            {"index": 2, "status": "FAILED", "result": None, "error": None},
            {"index": 3, "status": "STARTED", "result": None, "error": None},
        ],
        "completionReason": "FAILURE_TOLERANCE_EXCEEDED",
    }
    assert BatchResult.from_record(record) == result


def test_only_a_succeeded_item_records_its_result():
    # a failed or started item keeps no result in the record, whatever it holds
    result = BatchResult.build(
        [BatchItem(0, F, "stale"), BatchItem(1, BatchItemStatus.STARTED, "partial")],
        CompletionReason.ALL_COMPLETED,
    )
    assert [item["result"] for item in result.to_record()["all"]] == [None, None]


# -- the custom completion predicate (issue 28) -----------------------------------------


def test_continue_batch_is_a_decision_not_to_complete() -> None:
    from durable_gen._core.batch import CompletionDecision, continue_batch

    decision = continue_batch()
    assert decision.complete is False
    assert decision.outcome is None
    assert decision == CompletionDecision(False)


def test_a_decision_is_refused_with_what_to_write_instead() -> None:
    from durable_gen._core.batch import CompletionDecision, CompletionOutcome

    with pytest.raises(ValidationError) as e:
        CompletionDecision(True)
    assert str(e.value) == (
        "a decision to complete the batch needs its outcome: "
        "complete_batch(CompletionOutcome.SUCCEEDED) or ...FAILED"
    )
    with pytest.raises(ValidationError) as e:
        CompletionDecision(False, CompletionOutcome.SUCCEEDED)
    assert str(e.value) == "a decision to continue has no outcome: use continue_batch()"


def test_a_predicate_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError) as e:
        CompletionPolicy(should_complete=5)  # type: ignore[arg-type]
    assert str(e.value) == "should_complete must be a function of a CompletionStatus, got 5"
    with pytest.raises(ValidationError) as e:
        CompletionPolicy(tolerated_failure_count=1, should_complete=lambda s: None)  # type: ignore[arg-type,return-value]
    assert str(e.value) == (
        "should_complete cannot be combined with min_successful, "
        "tolerated_failure_count or tolerated_failure_percentage: the "
        "predicate decides alone"
    )


def test_a_predicate_sees_the_completed_count_and_decides_alone() -> None:
    from durable_gen._core.batch import CompletionStatus, continue_batch

    seen: list[CompletionStatus] = []

    def undecided(status: CompletionStatus):  # type: ignore[no-untyped-def]
        seen.append(status)
        return continue_batch()

    policy = CompletionPolicy(should_complete=undecided)
    assert policy.decide(2, 1, 4) is None
    assert (seen[-1].success_count, seen[-1].failure_count) == (2, 1)
    assert (seen[-1].completed_count, seen[-1].total_count) == (3, 4)
    # without a decision, done when every branch is: 1 + 1 of 2
    assert policy.decide(1, 1, 2) is CompletionReason.ALL_COMPLETED
    # failures never stop a batch a predicate decides
    assert policy.tolerance_exceeded(5, 5) is False
