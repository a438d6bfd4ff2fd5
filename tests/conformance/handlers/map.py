"""Conformance handlers for the map suite (9-x); see handlers/__init__.py."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from durable_gen import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionPolicy,
    CompletionReason,
    Map,
    Step,
    Wait,
)

Gen = Generator[Any, Any, Any]


class ItemError(Exception):
    """What a failing iteration raises."""


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


def greet(name: Any) -> str:
    return f"Hello, {name}!"


def greet_item(item: Any, index: int) -> Gen:
    return (yield Step(greet, item))


def map_9_1(event: Any) -> Any:
    """9-1: "map" over the input; each iteration runs one greeting step."""
    result = yield Map(event, greet_item, name="map", max_concurrency=1)
    return result.get_results()


def double(item: Any, index: int) -> Gen:
    yield from ()  # a generator function that yields nothing
    return item * 2


def map_9_2(event: Any) -> Any:
    """9-2: no name; each iteration returns its item doubled directly."""
    result = yield Map(event, double, max_concurrency=1)
    return result.get_results()


def map_9_4(event: Any) -> Any:
    """9-4: "empty" over no items: completes at once with no results."""
    result = yield Map(event, double, name="empty")
    return result.get_results()


def ok_unless_fail(item: Any, index: int) -> Gen:
    """Returns the item, or raises when the item is "fail"."""
    if item == "fail":
        raise ItemError(f"item {index} failed")
    yield from ()  # a generator function that yields nothing
    return item


def map_9_5(event: Any) -> Any:
    """9-5: fail-fast (tolerated failures 0); item 1 fails: item 2 never starts."""
    result = yield Map(
        ["ok", "fail", "ok"],
        ok_unless_fail,
        name="failfast",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=0),
    )
    return summary(
        result, "completionReason", "status", "successCount", "failureCount", "totalCount"
    )


def map_9_7(event: Any) -> Any:
    """9-7: min-successful 2 of 4: done after items 0 and 1."""
    result = yield Map(
        ["a", "b", "c", "d"],
        ok_unless_fail,
        name="min-successful",
        max_concurrency=1,
        completion=CompletionPolicy(min_successful=2),
    )
    return summary(result, "completionReason", "successCount", "totalCount")


def map_9_8(event: Any) -> Any:
    """9-8: 1 failure tolerated; item 1 fails; all complete."""
    result = yield Map(
        ["a", "fail", "c"],
        ok_unless_fail,
        name="tolerated",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_count=1),
    )
    return summary(
        result, "completionReason", "status", "successCount", "failureCount", "totalCount"
    )


def map_9_10(event: Any) -> Any:
    """9-10: 25 % of 4 tolerated; items 0 and 1 fail (50 %): stopped."""
    result = yield Map(
        ["fail", "fail", "c", "d"],
        ok_unless_fail,
        name="tolerated-pct",
        max_concurrency=1,
        completion=CompletionPolicy(tolerated_failure_percentage=25),
    )
    return summary(result, "completionReason", "successCount", "failureCount", "totalCount")


def indexed_constant(item: Any, index: int) -> Gen:
    yield from ()  # a generator function that yields nothing
    return f"r{index}"


def map_9_11(event: Any) -> Any:
    """9-11: "concurrent", three items two at a time; results in index order."""
    result = yield Map(["i0", "i1", "i2"], indexed_constant, name="concurrent", max_concurrency=2)
    return result.get_results()


def times_ten(item: Any, index: int) -> Gen:
    yield from ()  # a generator function that yields nothing
    return item * 10


def name_item(item: Any, index: int) -> str:
    return f"item-{item}"


def map_9_13(event: Any) -> Any:
    """9-13: iterations named by an item namer ("item-1", "item-2")."""
    result = yield Map(
        event, times_ten, name="named-items", max_concurrency=1, item_namer=name_item
    )
    return result.get_results()


def upper(item: Any, index: int) -> Gen:
    yield from ()  # a generator function that yields nothing
    return str(item).upper()


class WrappedSerdes:
    """Per-item serdes: ``"wrapped:" + text``; reading strips the prefix."""

    PREFIX = "wrapped:"

    def serialize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"WrappedSerdes stores str, got {type(value).__name__}")
        return self.PREFIX + value

    def deserialize(self, data: str) -> str:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not a WrappedSerdes payload: {data!r}")
        return data[len(self.PREFIX) :]


def map_9_14(event: Any) -> Any:
    """9-14: a custom per-item serdes; the iteration payloads are "wrapped:X", "wrapped:Y"."""
    result = yield Map(
        ["x", "y"], upper, name="serdes", max_concurrency=1, item_serdes=WrappedSerdes()
    )
    return result.get_results()


LARGE_CHARS = 70 * 1024


def large_string(item: Any, index: int) -> Gen:
    yield from ()  # a generator function that yields nothing
    return str(item) * LARGE_CHARS


def map_9_16(event: Any) -> Any:
    """9-16: four ~70 KB results: the Map's result is over 256 KB (replay children)."""
    result = yield Map(["a", "b", "c", "d"], large_string, name="large", max_concurrency=1)
    return summary(result, "successCount", "totalCount")


def map_9_17(event: Any) -> Any:
    """9-17: a map, then a 1 s wait; on replay the map is not re-run."""
    result = yield Map(["a", "b"], upper, name="then-wait", max_concurrency=1)
    yield Wait(seconds=1)
    return result.get_results()


class OpSerdes:
    """Operation-level serdes of a whole map result: ``"OPSERDE:" + ",".join(results)``.

    Reading reverses it: one SUCCEEDED item per result, in index order.
    """

    PREFIX = "OPSERDE:"

    def serialize(self, value: Any) -> str:
        if not isinstance(value, BatchResult):
            raise TypeError(f"OpSerdes stores a BatchResult, got {type(value).__name__}")
        return self.PREFIX + ",".join(str(r) for r in value.get_results())

    def deserialize(self, data: str) -> BatchResult:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not an OpSerdes payload: {data!r}")
        body = data[len(self.PREFIX) :]
        results = body.split(",") if body else []
        items = [BatchItem(i, BatchItemStatus.SUCCEEDED, r) for i, r in enumerate(results)]
        return BatchResult.build(items, CompletionReason.ALL_COMPLETED)


def map_9_19(event: Any) -> Any:
    """9-19: an operation-level serdes: the Map's payload is "OPSERDE:X,Y"."""
    result = yield Map(["x", "y"], upper, name="op-serde", max_concurrency=1, serdes=OpSerdes())
    return result.get_results()


def map_9_20(event: Any) -> Any:
    """9-20: as 9-19, then a 1 s wait: on replay the result is read through the serdes."""
    result = yield Map(
        ["x", "y"], upper, name="op-serde-replay", max_concurrency=1, serdes=OpSerdes()
    )
    yield Wait(seconds=1)
    return result.get_results()


HANDLERS: dict[str, Callable[..., Any]] = {
    "9-1": map_9_1,
    "9-2": map_9_2,
    "9-4": map_9_4,
    "9-5": map_9_5,
    "9-7": map_9_7,
    "9-8": map_9_8,
    "9-10": map_9_10,
    "9-11": map_9_11,
    "9-13": map_9_13,
    "9-14": map_9_14,
    "9-16": map_9_16,
    "9-17": map_9_17,
    "9-19": map_9_19,
    "9-20": map_9_20,
}
