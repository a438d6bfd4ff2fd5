"""Conformance handlers for the parallel suite (8-x); see handlers/__init__.py."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from durable_gen import BatchResult, CompletionPolicy, Parallel, Step, Wait

Branch = Callable[[], Generator[Any, Any, Any]]


class BranchError(Exception):
    """What a failing branch raises."""


def constant(value: Any) -> Branch:
    """A branch returning ``value`` directly (no operation inside)."""

    def branch() -> Generator[Any, Any, Any]:
        yield from ()  # a generator function that yields nothing
        return value

    return branch


def failing(message: str) -> Branch:
    """A branch that raises directly (no operation inside)."""

    def branch() -> Generator[Any, Any, Any]:
        yield from ()  # a generator function that yields nothing
        raise BranchError(message)

    return branch


def identity(value: Any) -> Any:
    return value


def step_returning(value: Any) -> Branch:
    """A branch running one step that returns ``value``."""

    def branch() -> Generator[Any, Any, Any]:
        return (yield Step(identity, value))

    return branch


def summary(result: BatchResult, *keys: str) -> dict[str, Any]:
    """The projection the requirements return, with the keys they ask for."""
    values = {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }
    return {key: values[key] for key in keys}


def parallel_8_1(event: Any) -> Any:
    """8-1: "parallel", two branches each running one step; results in index order."""
    result = yield Parallel(
        [step_returning("task-1"), step_returning("task-2")], name="parallel", max_concurrency=1
    )
    return result.get_results()


def parallel_8_2(event: Any) -> Any:
    """8-2: no name; branches return "alpha" and "beta" directly."""
    result = yield Parallel([constant("alpha"), constant("beta")], max_concurrency=1)
    return result.get_results()


def parallel_8_4(event: Any) -> Any:
    """8-4: "hetero", branches returning a string, a number and an object."""
    result = yield Parallel(
        [constant("hello"), constant(42), constant({"k": "v"})], name="hetero", max_concurrency=1
    )
    return result.get_results()


def parallel_8_5(event: Any) -> Any:
    """8-5: "empty", no branches: completes at once with no results."""
    result = yield Parallel([], name="empty")
    return result.get_results()


def parallel_8_7(event: Any) -> Any:
    """8-7: fail-fast (tolerated failures 0); branch 0 fails; rethrown, not caught."""
    result = yield Parallel(
        [failing("branch 0 failed"), constant("never started")],
        name="throwing",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=0),
    )
    result.throw_if_error()
    return result.get_results()


def parallel_8_8(event: Any) -> Any:
    """8-8: min-successful 2 of 4: done after branches 0 and 1."""
    result = yield Parallel(
        [constant(f"result-{i}") for i in range(4)],
        name="min-successful",
        max_concurrency=1,
        completion=CompletionPolicy(min_successful=2),
    )
    return summary(result, "completionReason", "successCount", "totalCount")


def parallel_8_10(event: Any) -> Any:
    """8-10: 1 failure tolerated; branches 0 and 1 fail: stopped before branch 2."""
    result = yield Parallel(
        [failing("branch 0 failed"), failing("branch 1 failed"), constant("never started")],
        name="tolerated-exceeded",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=1),
    )
    return summary(result, "completionReason", "successCount", "failureCount", "totalCount")


def parallel_8_11(event: Any) -> Any:
    """8-11: "concurrent", three branches two at a time; results in index order."""
    result = yield Parallel(
        [constant("r0"), constant("r1"), constant("r2")], name="concurrent", max_concurrency=2
    )
    return result.get_results()


def parallel_8_13(event: Any) -> Any:
    """8-13: 25 % of 4 tolerated; branches 0 and 1 fail (50 %): stopped."""
    result = yield Parallel(
        [failing("branch 0 failed"), failing("branch 1 failed"), constant("c"), constant("d")],
        name="tolerated-pct",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_percentage=25),
    )
    return summary(result, "completionReason", "successCount", "failureCount", "totalCount")


def wait_then_return(value: Any) -> Branch:
    def branch() -> Generator[Any, Any, Any]:
        yield Wait(seconds=2)
        return value

    return branch


def parallel_8_14(event: Any) -> Any:
    """8-14: branch 0 a step, branch 1 a 2 s wait; branch 0 is not re-run on replay."""
    result = yield Parallel(
        [step_returning("b0"), wait_then_return("b1")], name="replay", max_concurrency=1
    )
    return result.get_results()


def parallel_8_16(event: Any) -> Any:
    """8-16: every branch fails, 3 failures tolerated: ALL_COMPLETED, status FAILED."""
    result = yield Parallel(
        [failing(f"branch {i} failed") for i in range(3)],
        name="all-fail",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=3),
    )
    return summary(
        result, "completionReason", "status", "successCount", "failureCount", "totalCount"
    )


def parallel_8_17(event: Any) -> Any:
    """8-17: min-successful 3 never reached (one failure): all run, ALL_COMPLETED."""
    result = yield Parallel(
        [constant("a"), failing("branch 1 failed"), constant("c")],
        name="min-not-reached",
        max_concurrency=1,
        completion=CompletionPolicy(min_successful=3),
    )
    return summary(
        result, "completionReason", "status", "successCount", "failureCount", "totalCount"
    )


def parallel_8_19(event: Any) -> Any:
    """8-19: max-concurrency 0 is a validation error before anything runs."""
    result = yield Parallel(
        [constant("a"), constant("b")], name="bad-concurrency", max_concurrency=0
    )
    return result.get_results()


def parallel_8_20(event: Any) -> Any:
    """8-20: one failure tolerated; the batch result's accessors."""
    result = yield Parallel(
        [constant("a"), failing("branch 1 failed"), constant("c")],
        name="accessors",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=1),
    )
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


def parallel_8_22(event: Any) -> Any:
    """8-22: 25 % tolerated, exactly 25 % fail: not exceeded, all four run."""
    result = yield Parallel(
        [failing("branch 0 failed"), constant("b"), constant("c"), constant("d")],
        name="pct-boundary",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_percentage=25),
    )
    return summary(
        result, "completionReason", "status", "successCount", "failureCount", "totalCount"
    )


HANDLERS: dict[str, Callable[..., Any]] = {
    "8-1": parallel_8_1,
    "8-2": parallel_8_2,
    "8-4": parallel_8_4,
    "8-5": parallel_8_5,
    "8-7": parallel_8_7,
    "8-8": parallel_8_8,
    "8-10": parallel_8_10,
    "8-11": parallel_8_11,
    "8-13": parallel_8_13,
    "8-14": parallel_8_14,
    "8-16": parallel_8_16,
    "8-17": parallel_8_17,
    "8-19": parallel_8_19,
    "8-20": parallel_8_20,
    "8-22": parallel_8_22,
}
