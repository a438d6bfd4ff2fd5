"""Completion policies and results of Parallel and Map (pure values).

A batch admits branches in index order (at most ``max_concurrency`` running at
once) and evaluates its :class:`CompletionPolicy` each time a branch finishes.
Branch outcomes are consumed in a deterministic order (the interpreter retires
outcomes in the order work was issued), so the decision and the recorded
:class:`BatchResult` never depend on thread timing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import attrs

from .errors import (
    BatchCompletionError,
    ChildContextError,
    ErrorObject,
    ValidationError,
)

__all__ = [
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionPolicy",
    "CompletionReason",
    "CompletionStatus",
    "complete_batch",
    "continue_batch",
]


class BatchItemStatus(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class CompletionReason(enum.StrEnum):
    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"
    # a custom ``should_complete`` predicate decided
    CUSTOM_COMPLETION_SUCCEEDED = "CUSTOM_COMPLETION_SUCCEEDED"
    CUSTOM_COMPLETION_FAILED = "CUSTOM_COMPLETION_FAILED"


class CompletionOutcome(enum.StrEnum):
    """Whether a batch that a ``should_complete`` predicate ends has succeeded."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@attrs.frozen
class CompletionDecision:
    """What a ``should_complete`` predicate returns: :func:`continue_batch` or
    :func:`complete_batch`."""

    complete: bool
    outcome: CompletionOutcome | None = None

    def __attrs_post_init__(self) -> None:
        if self.complete and not isinstance(self.outcome, CompletionOutcome):
            raise ValidationError(
                "a decision to complete the batch needs its outcome: "
                "complete_batch(CompletionOutcome.SUCCEEDED) or ...FAILED"
            )
        if not self.complete and self.outcome is not None:
            raise ValidationError("a decision to continue has no outcome: use continue_batch()")


def continue_batch() -> CompletionDecision:
    """Go on: the batch is not complete yet."""
    return CompletionDecision(False)


def complete_batch(outcome: CompletionOutcome = CompletionOutcome.SUCCEEDED) -> CompletionDecision:
    """Complete the batch now; a FAILED outcome fails it even when no branch failed."""
    return CompletionDecision(True, outcome)


@attrs.frozen
class CompletionItemStatus:
    """One branch as a ``should_complete`` predicate sees it.

    ``status`` is None while the branch has not started (``max_concurrency``),
    STARTED while it runs or waits, then SUCCEEDED or FAILED. ``name`` is the
    name the branch was given (:class:`ParallelBranch`, ``Map(item_namer=...)``),
    None when it has the default one.
    """

    index: int
    name: str | None = None
    status: BatchItemStatus | None = None


@attrs.frozen
class CompletionStatus:
    """The progress of a batch, given to a ``should_complete`` predicate.

    ``items[i]`` is always branch ``i``, whatever order branches finished in.
    """

    success_count: int
    failure_count: int
    completed_count: int
    total_count: int
    items: tuple[CompletionItemStatus, ...] = ()


def _opt_nonneg_int(name: str, v: object) -> None:
    if v is not None and (type(v) is not int or v < 0):
        raise ValidationError(f"{name} must be an int >= 0 or None, got {v!r} ({type(v).__name__})")


@attrs.frozen(kw_only=True)
class CompletionPolicy:
    """When a batch is done, before every branch has finished.

    - ``min_successful``: done as soon as this many branches succeeded.
    - ``tolerated_failure_count`` / ``tolerated_failure_percentage``: done (reason
      FAILURE_TOLERANCE_EXCEEDED) as soon as failures exceed the tolerance.
    - All three None (the default, "fail fast"): done at the first failure.
    - ``should_complete(status) -> CompletionDecision``: a custom predicate instead
      of the three (not with them). It sees a :class:`CompletionStatus` before any
      branch starts, after branches start and after each one ends, and returns
      :func:`continue_batch` or :func:`complete_batch` (reason
      CUSTOM_COMPLETION_SUCCEEDED or CUSTOM_COMPLETION_FAILED); without a decision
      the batch ends when every branch has (ALL_COMPLETED). It must be
      deterministic and monotonic (once complete, more progress keeps it complete):
      replay may show it the same progress again.

    Presets: :meth:`all_successful` (Parallel's default; stop at the first
    failure), :meth:`all_completed` (run everything), :meth:`first_successful`.
    """

    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None
    should_complete: Callable[[CompletionStatus], CompletionDecision] | None = None

    def __attrs_post_init__(self) -> None:
        if self.should_complete is not None:
            if not callable(self.should_complete):
                raise ValidationError(
                    f"should_complete must be a function of a CompletionStatus, "
                    f"got {self.should_complete!r:.60}"
                )
            if self._has_criteria():
                raise ValidationError(
                    "should_complete cannot be combined with min_successful, "
                    "tolerated_failure_count or tolerated_failure_percentage: the "
                    "predicate decides alone"
                )
        _opt_nonneg_int("min_successful", self.min_successful)
        _opt_nonneg_int("tolerated_failure_count", self.tolerated_failure_count)
        p = self.tolerated_failure_percentage
        if p is not None and (
            isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100
        ):
            raise ValidationError(
                f"tolerated_failure_percentage must be a number from 0 to 100 or None, got {p!r}"
            )
        if self.min_successful == 0:
            raise ValidationError("min_successful must be at least 1 (or None)")

    @classmethod
    def all_successful(cls) -> CompletionPolicy:
        """Every branch must succeed: stop at the first failure."""
        return cls(tolerated_failure_count=0, tolerated_failure_percentage=0)

    @classmethod
    def all_completed(cls) -> CompletionPolicy:
        """Run every branch whatever fails."""
        return cls(tolerated_failure_percentage=100)

    @classmethod
    def first_successful(cls) -> CompletionPolicy:
        """Done at the first success."""
        return cls(min_successful=1)

    def _has_criteria(self) -> bool:
        return (
            self.min_successful is not None
            or self.tolerated_failure_count is not None
            or self.tolerated_failure_percentage is not None
        )

    def tolerance_exceeded(self, failed: int, total: int) -> bool:
        if self.should_complete is not None:
            return False  # the predicate decides
        if not self._has_criteria():
            return failed > 0
        if self.tolerated_failure_count is not None and failed > self.tolerated_failure_count:
            return True
        pct = self.tolerated_failure_percentage
        return pct is not None and total > 0 and failed / total * 100 > pct

    def decide(
        self,
        succeeded: int,
        failed: int,
        total: int,
        items: Callable[[], tuple[CompletionItemStatus, ...]] = tuple,
    ) -> CompletionReason | None:
        """The reason the batch is complete now, or None while it must go on.

        ``items`` builds the per-branch snapshot, asked for only when a
        ``should_complete`` predicate needs it.
        """
        if self.should_complete is not None:
            status = CompletionStatus(succeeded, failed, succeeded + failed, total, items())
            decision = self.should_complete(status)
            if not isinstance(decision, CompletionDecision):
                raise ValidationError(
                    f"should_complete must return continue_batch() or complete_batch(...), "
                    f"got {decision!r:.60}"
                )
            if decision.complete:
                if decision.outcome is CompletionOutcome.FAILED:
                    return CompletionReason.CUSTOM_COMPLETION_FAILED
                return CompletionReason.CUSTOM_COMPLETION_SUCCEEDED
            return CompletionReason.ALL_COMPLETED if succeeded + failed >= total else None
        if self.tolerance_exceeded(failed, total):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if succeeded + failed >= total:
            return CompletionReason.ALL_COMPLETED
        if self.min_successful is not None and succeeded >= self.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return None


#: What a branch (or a Map item's function) returns: ``BatchResult[T]``'s ``T``.
_R = TypeVar("_R")


@attrs.frozen
class BatchItem(Generic[_R]):
    """One branch's outcome: ``result`` when SUCCEEDED, ``error`` when FAILED."""

    index: int
    status: BatchItemStatus
    result: _R | None = None
    error: ErrorObject | None = None


@attrs.frozen
class BatchResult(Generic[_R]):
    """What a Parallel or Map yields back: one item per started branch, in index order.

    Branches never started (the batch completed first) are omitted; branches
    still running when it completed are STARTED.
    """

    all: tuple[BatchItem[_R], ...]
    completion_reason: CompletionReason

    def succeeded(self) -> list[BatchItem[_R]]:
        return [i for i in self.all if i.status is BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem[_R]]:
        return [i for i in self.all if i.status is BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem[_R]]:
        return [i for i in self.all if i.status is BatchItemStatus.STARTED]

    @property
    def success_count(self) -> int:
        return len(self.succeeded())

    @property
    def failure_count(self) -> int:
        return len(self.failed())

    @property
    def started_count(self) -> int:
        return len(self.started())

    @property
    def total_count(self) -> int:
        return len(self.all)

    @property
    def has_failure(self) -> bool:
        return any(i.status is BatchItemStatus.FAILED for i in self.all)

    @property
    def status(self) -> BatchItemStatus:
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            return BatchItemStatus.FAILED  # (a batch AWS's SDK recorded)
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_SUCCEEDED:
            return BatchItemStatus.SUCCEEDED
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    def get_results(self) -> list[_R]:
        """Results of the succeeded branches, in index order."""
        return [i.result for i in self.all if i.status is BatchItemStatus.SUCCEEDED]  # type: ignore[misc]

    def get_errors(self) -> list[ErrorObject | None]:
        """Errors of the failed branches, in index order."""
        return [i.error for i in self.all if i.status is BatchItemStatus.FAILED]

    def throw_if_error(self) -> None:
        """Raise the first failed branch's error as a :class:`ChildContextError`;
        a batch a ``should_complete`` predicate failed with no failed branch raises
        :class:`BatchCompletionError`."""
        for item in self.all:
            if item.status is BatchItemStatus.FAILED:
                raise ChildContextError(
                    item.error or ErrorObject(type="Error", message="branch failed"),
                    operation_name=f"branch {item.index}",
                )
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            raise BatchCompletionError(
                ErrorObject(
                    type=BatchCompletionError.wire_type,
                    message="Batch completed as failed by should_complete "
                    f"({self.completion_reason.value})",
                )
            )

    # -- recording ---------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """The record AWS's SDK writes for a batch (``BatchResult.to_dict()``).

        ``{"all": [{"index", "status", "result", "error"}...], "completionReason"}``:
        every item has all four keys, ``result`` and ``error`` null when absent, the
        error an ErrorObject (``ErrorMessage``, ``ErrorType``, ...). This is what a
        Parallel or Map checkpoints as its result, in JSON, and what a workflow that
        returns a BatchResult returns.
        """
        return {
            "all": [
                {
                    "index": i.index,
                    "status": i.status.value,
                    "result": i.result if i.status is BatchItemStatus.SUCCEEDED else None,
                    "error": i.error.to_dict() if i.error is not None else None,
                }
                for i in self.all
            ],
            "completionReason": self.completion_reason.value,
        }

    def to_dict(self) -> dict[str, Any]:
        """Alias of :meth:`to_record`, under the name AWS's SDK gives it."""
        return self.to_record()

    @classmethod
    def from_record(cls, rec: Any) -> BatchResult[Any]:
        """Read :meth:`to_record`'s shape (keys with null values may be left out)."""
        items = [
            BatchItem(
                d["index"],
                BatchItemStatus(d["status"]),
                d.get("result"),
                ErrorObject.from_dict(d["error"]) if d.get("error") is not None else None,
            )
            for d in rec["all"]
        ]
        return cls(tuple(items), CompletionReason(rec["completionReason"]))

    @classmethod
    def build(cls, items: Iterable[BatchItem[Any]], reason: CompletionReason) -> BatchResult[Any]:
        return cls(tuple(sorted(items, key=lambda i: i.index)), reason)
