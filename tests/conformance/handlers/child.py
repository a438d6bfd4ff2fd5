"""Conformance handlers for the child-context suite (3-x); see handlers/__init__.py."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_gen import (
    ChildContext,
    ChildContextError,
    Jitter,
    RetryPolicy,
    Step,
    Wait,
    current_attempt,
    get_logger,
)

log = get_logger("conformance.child")
#: logs during replay too ("replay logging enabled" in 3-11 / 3-17)
replay_log = get_logger("conformance.child.replay", log_replays=True)

NO_RETRY = RetryPolicy.none()


def identity(value: Any) -> Any:
    return value


def single_step(value: Any) -> Any:
    return (yield Step(identity, value))


def child_3_1(event: Any) -> Any:
    """3-1: a child context with one step returning the input."""
    return (yield ChildContext(single_step, event))


def child_3_2(event: Any) -> Any:
    """3-2: a child context named after the input's ``name``."""
    return (yield ChildContext(single_step, event["value"], name=event["name"]))


def always_fail() -> None:
    raise RuntimeError("the step inside the child context failed")


def failing_child() -> Any:
    return (yield Step(always_fail, retry=NO_RETRY))


def child_3_4(event: Any) -> Any:
    """3-4: the child's step fails (no retry); the execution fails."""
    return (yield ChildContext(failing_child))


def child_3_5(event: Any) -> Any:
    """3-5: the child's failure is caught; a recovery step returns the input."""
    with contextlib.suppress(ChildContextError):
        yield ChildContext(failing_child)
    return (yield Step(identity, event))


def fail_first_attempt(value: Any) -> Any:
    if current_attempt() < 2:
        raise RuntimeError("first attempt fails")
    return value


def retrying_child(value: Any) -> Any:
    retry = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)
    return (yield Step(fail_first_attempt, value, retry=retry))


def child_3_7(event: Any) -> Any:
    """3-7: a step in the child fails once, then succeeds on retry."""
    return (yield ChildContext(retrying_child, event))


def exhausting_child() -> Any:
    retry = RetryPolicy(max_attempts=2, initial_delay=1, jitter=Jitter.NONE)
    return (yield Step(always_fail, retry=retry))


def child_3_8(event: Any) -> Any:
    """3-8: a step in the child always fails; 2 attempts; the execution fails."""
    return (yield ChildContext(exhausting_child))


def step_then_wait(value: Any) -> Any:
    result = yield Step(identity, value)
    yield Wait(seconds=1)
    return result


def child_3_10(event: Any) -> Any:
    """3-10: a child context with a step and a wait."""
    return (yield ChildContext(step_then_wait, event))


def small_value() -> str:
    return "x"


def large_child(value: Any) -> Any:
    replay_log.info("large child context running for input: %s", value)
    piece = yield Step(small_value)
    return piece * (300 * 1024)  # > 256 KiB: recorded with ReplayChildren


def child_3_11(event: Any) -> Any:
    """3-11: the child's result exceeds 256 KiB (ReplayChildren); a wait forces replay."""
    big = yield ChildContext(large_child, event)
    yield Wait(seconds=1)
    return {"length": len(big)}


def wait_only(value: Any) -> Any:
    yield Wait(seconds=1)
    return value


def child_3_13(event: Any) -> Any:
    """3-13: a child holding only a wait, then a step outside it."""
    value = yield ChildContext(wait_only, event)
    return (yield Step(identity, value))


class UpperSerdes:
    """Serializes the child's result upper-cased (raw text, not JSON)."""

    def serialize(self, value: Any) -> str:
        return str(value).upper()

    def deserialize(self, data: str) -> Any:
        return data


def child_3_14(event: Any) -> Any:
    """3-14: a child context with a custom serdes that upper-cases its result."""
    return (yield ChildContext(single_step, event, serdes=UpperSerdes()))


def returns_none() -> Any:
    return None
    yield  # a generator function with no durable operation


def child_3_16(event: Any) -> Any:
    """3-16: a child that returns None without any durable operation."""
    return (yield ChildContext(returns_none))


def logging_child(value: Any) -> Any:
    replay_log.info("logging child context running for input: %s", value)
    return value
    yield  # no durable operation inside


def child_3_17(event: Any) -> Any:
    """3-17: a child that only logs; replay must not re-run it (one log line)."""
    value = yield ChildContext(logging_child, event)
    yield Wait(seconds=1)
    return value


def crash_first_time(value: Any) -> Any:
    """Crashes the runtime the first time it runs for ``value``, then returns it.

    "First time" is remembered in a file: a crash ends the process (embedded
    target), so nothing in memory survives it; the input is a fresh random string.
    """
    marker = Path(tempfile.gettempdir()) / f"durable-gen-conformance-3-12-{value}"
    if not marker.exists():
        marker.touch()
        # A Lambda runtime crash: in Lambda's Python runtime, SystemExit from the
        # handler ends the runtime process (Runtime.ExitError).
        sys.exit(1)
    return value


def crashing_child(value: Any) -> Any:
    return (yield Step(crash_first_time, value))


def child_3_12(event: Any) -> Any:
    """3-12: the runtime crashes inside the child's step; the next invocation resumes
    the child context and re-runs the step (no second StepStarted)."""
    return (yield ChildContext(crashing_child, event))


HANDLERS: dict[str, Callable[..., Any]] = {
    "3-1": child_3_1,
    "3-2": child_3_2,
    "3-4": child_3_4,
    "3-5": child_3_5,
    "3-7": child_3_7,
    "3-8": child_3_8,
    "3-10": child_3_10,
    "3-11": child_3_11,
    "3-12": child_3_12,
    "3-13": child_3_13,
    "3-14": child_3_14,
    "3-16": child_3_16,
    "3-17": child_3_17,
}
