"""Conformance handlers for the step suite (1-x); see handlers/__init__.py."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    Jitter,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    current_attempt,
    get_logger,
)

log = get_logger("conformance.step")

NO_RETRY = RetryPolicy.none()


def greet(name: Any) -> str:
    return f"Hello, {name}!"


def step_1_1(event: Any) -> Any:
    """1-1: a single step returning a greeting."""
    return (yield Step(greet, event))


def step_1_2(event: Any) -> Any:
    """1-2: a step with an explicit name."""
    return (yield Step(greet, event, name="custom_step_name"))


def build_response(event: Any) -> dict[str, Any]:
    return {
        "user": {"name": event["name"], "tags": list(event["tags"])},
        "count": len(event["tags"]),
    }


def step_1_4(event: Any) -> Any:
    """1-4: a step returning a nested object."""
    return (yield Step(build_response, event))


def do_nothing() -> None:
    return None


def step_1_5(event: Any) -> Any:
    """1-5: a step returning None."""
    return (yield Step(do_nothing))


def greet_logged(name: Any) -> str:
    log.info("Greeting step started for: %s", name)
    result = greet(name)
    log.info("Greeting step completed with: %s", result)
    return result


def step_1_7(event: Any) -> Any:
    """1-7: the step logs through the durable (step context) logger."""
    return (yield Step(greet_logged, event))


def compute() -> str:
    return "computed"


def step_1_8(event: Any) -> Any:
    """1-8: a step, then a 2 s wait; replay skips the completed step."""
    value = yield Step(compute)
    yield Wait(seconds=2)
    return value


def fail_once_logged() -> None:
    log.info("step executed")
    raise RuntimeError("step failed permanently")


def step_1_10(event: Any) -> Any:
    """1-10: a failed step (no retry) caught, then a 1 s wait; replay re-throws."""
    with contextlib.suppress(StepError):
        yield Step(fail_once_logged, retry=NO_RETRY)
    yield Wait(seconds=1)
    return None


def unreliable_once() -> str:
    if current_attempt() < 2:
        raise RuntimeError("transient failure")
    return "Operation succeeded"


def step_1_11(event: Any) -> Any:
    """1-11: fails on attempt 1, succeeds on attempt 2 (1 s retry delay)."""
    retry = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)
    return (yield Step(unreliable_once, retry=retry))


def unreliable_twice() -> str:
    if current_attempt() < 3:
        raise RuntimeError(f"failure on attempt {current_attempt()}")
    return "Operation succeeded"


def step_1_13(event: Any) -> Any:
    """1-13: fails twice, succeeds on attempt 3, with the default retry policy."""
    return (yield Step(unreliable_twice))


def step_1_14(event: Any) -> Any:
    """1-14: fails twice, succeeds on attempt 3; 5 attempts, 2 s initial, rate 3, no jitter."""
    retry = RetryPolicy(
        max_attempts=5, initial_delay=2, max_delay=60, backoff_rate=3, jitter=Jitter.NONE
    )
    return (yield Step(unreliable_twice, retry=retry))


class TransientError(Exception):
    """The error the 1-16 retry strategy refuses to retry."""


class OtherError(Exception):
    """An error the 1-16 strategy would retry (never raised)."""


def raise_transient() -> None:
    raise TransientError("transient error, not retried")


def step_1_16(event: Any) -> Any:
    """1-16: the strategy retries only OtherError, so TransientError fails at once."""
    retry = RetryPolicy(retryable_error_types=(OtherError,))
    return (yield Step(raise_transient, retry=retry))


def crash(value: Any) -> None:
    log.info("at-most-once step running for input: %s", value)
    # A Lambda runtime crash: in Lambda's Python runtime, SystemExit from the
    # handler ends the runtime process (Runtime.ExitError).
    sys.exit(1)


def step_1_17(event: Any) -> Any:
    """1-17: at-most-once step, no retry, the runtime crashes inside it."""
    return (
        yield Step(
            crash,
            event,
            name="at_most_once_flaky_step",
            semantics=AT_MOST_ONCE_PER_RETRY,
            retry=NO_RETRY,
        )
    )


def always_fail() -> None:
    raise RuntimeError("this step always fails")


def step_1_19(event: Any) -> Any:
    """1-19: a step that always fails, no retry; the execution fails."""
    return (yield Step(always_fail, retry=NO_RETRY))


def fallback_value() -> str:
    return "fallback_result"


def step_1_20(event: Any) -> Any:
    """1-20: a failing step caught, then a second step returns the fallback."""
    with contextlib.suppress(StepError):
        yield Step(always_fail, retry=NO_RETRY)
    return (yield Step(fallback_value))


HANDLERS: dict[str, Callable[..., Any]] = {
    "1-1": step_1_1,
    "1-2": step_1_2,
    "1-4": step_1_4,
    "1-5": step_1_5,
    "1-7": step_1_7,
    "1-8": step_1_8,
    "1-10": step_1_10,
    "1-11": step_1_11,
    "1-13": step_1_13,
    "1-14": step_1_14,
    "1-16": step_1_16,
    "1-17": step_1_17,
    "1-19": step_1_19,
    "1-20": step_1_20,
}
