"""Conformance handlers for the callback suite (4-x); see handlers/__init__.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from durable_gen import CallbackError, CreateCallback, Step, Wait


def callback_4_1(event: Any) -> Any:
    """4-1: a callback named after the input; return its result."""
    handle = yield CreateCallback(name=event)
    return (yield handle.result())


def callback_4_2(event: Any) -> Any:
    """4-2: a callback named "approval"."""
    handle = yield CreateCallback(name="approval")
    return (yield handle.result())


def callback_4_4(event: Any) -> Any:
    """4-4: 5 s heartbeat timeout, no heartbeat: times out, the execution fails."""
    handle = yield CreateCallback(name=event, heartbeat_timeout=5)
    return (yield handle.result())


def callback_4_5(event: Any) -> Any:
    """4-5: 10 s heartbeat timeout kept alive by a heartbeat, then success."""
    handle = yield CreateCallback(name=event, heartbeat_timeout=10)
    return (yield handle.result())


def prepare() -> str:
    return "prepared"


def callback_4_7(event: Any) -> Any:
    """4-7: create, a step, await; the callback fails and the error is not caught."""
    handle = yield CreateCallback(name=event)
    yield Step(prepare)
    return (yield handle.result())


def callback_4_8(event: Any) -> Any:
    """4-8: create (5 s timeout), a step, await; it times out, not caught."""
    handle = yield CreateCallback(name=event, timeout=5)
    yield Step(prepare)
    return (yield handle.result())


def callback_4_10(event: Any) -> Any:
    """4-10: create, a 5 s wait, await; the failure arrives during the wait."""
    handle = yield CreateCallback(name=event)
    yield Wait(seconds=5)
    return (yield handle.result())


def callback_4_11(event: Any) -> Any:
    """4-11: create (3 s timeout), a 6 s wait, await; it times out during the wait."""
    handle = yield CreateCallback(name=event, timeout=3)
    yield Wait(seconds=6)
    return (yield handle.result())


def callback_4_13(event: Any) -> Any:
    """4-13: the callback failure is caught; a 2 s wait; return the message."""
    handle = yield CreateCallback(name=event)
    try:
        message = yield handle.result()
    except CallbackError as e:
        message = f"callback failed: {e}"
    yield Wait(seconds=2)
    return message


def callback_4_14(event: Any) -> Any:
    """4-14: the callback timeout (3 s) is caught; a 2 s wait; return."""
    handle = yield CreateCallback(name=event, timeout=3)
    try:
        message = yield handle.result()
    except CallbackError as e:
        message = f"callback timed out: {e}"
    yield Wait(seconds=2)
    return message


class NumberSerdes:
    """Reads the callback payload as a number."""

    def serialize(self, value: Any) -> str:
        return json.dumps(value)

    def deserialize(self, data: str) -> Any:
        value = json.loads(data)
        return int(value) if isinstance(value, str) else value


def callback_4_16(event: Any) -> Any:
    """4-16: a custom deserializer turns the payload into a number."""
    handle = yield CreateCallback(name=event, serdes=NumberSerdes())
    count = yield handle.result()
    return {"count": count, "doubled": count * 2}


def callback_4_17(event: Any) -> Any:
    """4-17: create A, await A, then create B, await B."""
    a = yield CreateCallback(name=event[0])
    result_a = yield a.result()
    b = yield CreateCallback(name=event[1])
    result_b = yield b.result()
    return {"a": result_a, "b": result_b}


def callback_4_19(event: Any) -> Any:
    """4-19: create A, create B, await B, then await A."""
    a = yield CreateCallback(name=event[0])
    b = yield CreateCallback(name=event[1])
    result_b = yield b.result()
    result_a = yield a.result()
    return {"a": result_a, "b": result_b}


HANDLERS: dict[str, Callable[..., Any]] = {
    "4-1": callback_4_1,
    "4-2": callback_4_2,
    "4-4": callback_4_4,
    "4-5": callback_4_5,
    "4-7": callback_4_7,
    "4-8": callback_4_8,
    "4-10": callback_4_10,
    "4-11": callback_4_11,
    "4-13": callback_4_13,
    "4-14": callback_4_14,
    "4-16": callback_4_16,
    "4-17": callback_4_17,
    "4-19": callback_4_19,
}
