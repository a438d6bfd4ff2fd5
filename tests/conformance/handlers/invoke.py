"""Conformance handlers for the invoke suite (5-x); see handlers/__init__.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from durable_gen import ChildContext, Invoke, InvokeError, Step, Wait

ECHO = "invoke-echo"
ECHO_2 = "invoke-echo-2"
FAIL = "invoke-fail"
MEASURE = "invoke-measure"


# --------------------------------------------------------------- target functions

#: How long a target takes. A real Lambda function takes a while; one that ends
#: within milliseconds can end before the caller's invocation has returned, and
#: the emulator then records ChainedInvokeSucceeded before that invocation's
#: InvocationCompleted (the requirements expect the caller to suspend first).
TARGET_SECONDS = 0.5


def echo(event: Any) -> Any:
    """Returns whatever it receives."""
    time.sleep(TARGET_SECONDS)
    return event
    yield  # a durable function without operations


def always_fails(event: Any) -> Any:
    time.sleep(TARGET_SECONDS)
    raise RuntimeError("the invoked function failed")
    yield  # a durable function without operations


def measure(event: Any) -> Any:
    """Receives a large payload and returns a summary of it."""
    time.sleep(TARGET_SECONDS)
    return {"received": len(event["data"])}
    yield  # a durable function without operations


FUNCTIONS: dict[str, Callable[..., Any]] = {
    ECHO: echo,
    ECHO_2: echo,
    FAIL: always_fails,
    MEASURE: measure,
}


# ---------------------------------------------------------------------- handlers


def invoke_5_1(event: Any) -> Any:
    """5-1: invoke the echo function with the input."""
    return (yield Invoke(ECHO, event))


def invoke_5_2(event: Any) -> Any:
    """5-2: a named invoke (name from the input)."""
    return (yield Invoke(ECHO, event["payload"], name=event["name"]))


def invoke_5_4(event: Any) -> Any:
    """5-4: invoke echo with None."""
    return (yield Invoke(ECHO, None))


def invoke_5_5(event: Any) -> Any:
    """5-5: the invoked function fails; the InvokeError fails the execution."""
    return (yield Invoke(FAIL))


def invoke_5_7(event: Any) -> Any:
    """5-7: invoke with a large payload (200 KiB, under the 256 KiB async payload limit)."""
    return (yield Invoke(MEASURE, {"data": "x" * (200 * 1024)}))


def invoke_5_8(event: Any) -> Any:
    """5-8: invoke with a tenant id."""
    return (yield Invoke(ECHO, event["payload"], tenant_id=event["tenantId"]))


def invoke_5_10(event: Any) -> Any:
    """5-10: a failed invoke is caught, then a 1 s wait; replay re-throws from the log."""
    with contextlib.suppress(InvokeError):
        yield Invoke(FAIL)
    yield Wait(seconds=1)
    return None


def produce() -> str:
    return "step-result"


def invoke_5_11(event: Any) -> Any:
    """5-11: a step, then invoke echo with its result."""
    value = yield Step(produce)
    return (yield Invoke(ECHO, value))


def invoking_child() -> Any:
    return (yield Invoke(ECHO, "from-child"))


def invoke_5_13(event: Any) -> Any:
    """5-13: an invoke inside a child context."""
    return (yield ChildContext(invoking_child))


def invoke_5_14(event: Any) -> Any:
    """5-14: two invokes in sequence."""
    first = yield Invoke(ECHO, "first")
    second = yield Invoke(ECHO_2, "second")
    return [first, second]


class UpperResult:
    """Reads the invoke's result upper-cased (the raw payload text)."""

    def serialize(self, value: Any) -> str:
        return str(value)

    def deserialize(self, data: str) -> Any:
        return data.upper()


def invoke_5_16(event: Any) -> Any:
    """5-16: a custom result serdes upper-cases the result."""
    return (yield Invoke(ECHO, event, serdes=UpperResult()))


HANDLERS: dict[str, Callable[..., Any]] = {
    "5-1": invoke_5_1,
    "5-2": invoke_5_2,
    "5-4": invoke_5_4,
    "5-5": invoke_5_5,
    "5-7": invoke_5_7,
    "5-8": invoke_5_8,
    "5-10": invoke_5_10,
    "5-11": invoke_5_11,
    "5-13": invoke_5_13,
    "5-14": invoke_5_14,
    "5-16": invoke_5_16,
}
