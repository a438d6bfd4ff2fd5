"""Conformance handlers for the wait-for-callback suite (7-x); see handlers/__init__.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_gen import (
    CallbackTimeoutError,
    ChildContext,
    Jitter,
    JsonSerdes,
    RetryPolicy,
    Step,
    Wait,
    WaitForCallback,
)


def submit(callback_id: str) -> None:
    """The submitter: hands the id over (here: nothing durable to do)."""
    return None


def wfcb_7_1(event: Any) -> Any:
    """7-1: wait for a callback named after the input; return its payload."""
    return (yield WaitForCallback(submit, event))


def wfcb_7_2(event: Any) -> Any:
    """7-2: the same with the static name "approval"."""
    return (yield WaitForCallback(submit, "approval"))


def wfcb_7_4(event: Any) -> Any:
    """7-4: the callback fails externally; not caught, the execution fails."""
    return (yield WaitForCallback(submit, event))


def wfcb_7_5(event: Any) -> Any:
    """7-5: a 3 s timeout nobody meets; not caught, the execution fails."""
    return (yield WaitForCallback(submit, event, timeout=3))


def submit_fails(callback_id: str) -> None:
    raise RuntimeError("the submitter could not deliver the callback id")


#: Up to 2 attempts (one retry) 1 s apart.
TWO_ATTEMPTS = RetryPolicy(
    max_attempts=2, initial_delay=1, max_delay=1, backoff_rate=1, jitter=Jitter.NONE
)


def wfcb_7_7(event: Any) -> Any:
    """7-7: the submitter always raises; after 2 attempts the operation fails."""
    return (yield WaitForCallback(submit_fails, event, retry=TWO_ATTEMPTS))


def wait_inside(name: str) -> Any:
    return (yield WaitForCallback(submit, name))


def wfcb_7_8(event: Any) -> Any:
    """7-8: the wait-for-callback inside a child context named "wrapper"."""
    return (yield ChildContext(wait_inside, event, name="wrapper"))


def fixed_data() -> dict[str, Any]:
    return {"prepared": True}


def wfcb_7_10(event: Any) -> Any:
    """7-10: a 1 s wait, a top-level step, then the wait-for-callback."""
    yield Wait(seconds=1)
    yield Step(fixed_data)
    return (yield WaitForCallback(submit, event))


def wfcb_7_11(event: Any) -> Any:
    """7-11: the payload read as a JSON object; return its "status"."""
    result = yield WaitForCallback(submit, event, serdes=JsonSerdes())
    return result["status"]


def wfcb_7_13(event: Any) -> Any:
    """7-13: a 10 s heartbeat timeout; a heartbeat, then success."""
    return (yield WaitForCallback(submit, event, heartbeat_timeout=10))


def wfcb_7_14(event: Any) -> Any:
    """7-14: a 3 s timeout, caught: return "timed-out-handled"."""
    try:
        return (yield WaitForCallback(submit, event, timeout=3))
    except CallbackTimeoutError:
        return "timed-out-handled"


HANDLERS: dict[str, Callable[..., Any]] = {
    "7-1": wfcb_7_1,
    "7-2": wfcb_7_2,
    "7-4": wfcb_7_4,
    "7-5": wfcb_7_5,
    "7-7": wfcb_7_7,
    "7-8": wfcb_7_8,
    "7-10": wfcb_7_10,
    "7-11": wfcb_7_11,
    "7-13": wfcb_7_13,
    "7-14": wfcb_7_14,
}
