"""Conformance handlers for the wait-for-condition suite (6-x); see handlers/__init__.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_gen import Jitter, WaitForCondition, WaitForConditionError, WaitStrategy


def increment(state: int) -> int:
    return state + 1


def unchanged(state: Any) -> Any:
    return state


def below(threshold: int) -> WaitStrategy:
    """Keep polling while the state is below ``threshold`` (the SDK's default pacing)."""
    return WaitStrategy(should_continue=lambda state: state < threshold)


def wfc_6_1(event: Any) -> Any:
    """6-1: count up from 0 until the input threshold (3) is reached."""
    return (yield WaitForCondition(increment, 0, below(event)))


def wfc_6_2(event: Any) -> Any:
    """6-2: initial state 5, unchanged by the check; state >= 5 stops at once."""
    strategy = WaitStrategy(should_continue=lambda state: not state >= 5)
    return (yield WaitForCondition(unchanged, 5, strategy))


def wfc_6_4(event: Any) -> Any:
    """6-4: initial state 5, +1 per check, until the input threshold (8)."""
    return (yield WaitForCondition(increment, 5, below(event)))


def wfc_6_5(event: Any) -> Any:
    """6-5: a fixed 2 s delay between polls (no jitter, no backoff)."""
    fixed = WaitStrategy(
        should_continue=lambda state: state < event,
        initial_delay=2,
        max_delay=2,
        backoff_rate=1,
        jitter=Jitter.NONE,
    )
    return (yield WaitForCondition(increment, 0, fixed))


def check_raises(state: Any) -> Any:
    raise RuntimeError("the condition check failed")


def wfc_6_7(event: Any) -> Any:
    """6-7: the check raises on its first call; not caught, the execution fails."""
    strategy = WaitStrategy(should_continue=lambda state: True)
    return (yield WaitForCondition(check_raises, 0, strategy))


def wfc_6_8(event: Any) -> Any:
    """6-8: the check raises; the handler catches it and returns "recovered"."""
    strategy = WaitStrategy(should_continue=lambda state: True)
    try:
        return (yield WaitForCondition(check_raises, 0, strategy))
    except WaitForConditionError:
        return "recovered"


def returns_none(state: Any) -> None:
    return None


def wfc_6_10(event: Any) -> Any:
    """6-10: the check returns None; polling stops on the first attempt."""
    strategy = WaitStrategy(should_continue=lambda state: False)
    return (yield WaitForCondition(returns_none, 0, strategy))


class PrefixedStringSerdes:
    """The state as ``"state:" + text``; reading strips the prefix (a real, non-identity codec)."""

    PREFIX = "state:"

    def serialize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"PrefixedStringSerdes stores str, got {type(value).__name__}")
        return self.PREFIX + value

    def deserialize(self, data: str) -> str:
        if not data.startswith(self.PREFIX):
            raise ValueError(f"not a PrefixedStringSerdes payload: {data!r}")
        return data[len(self.PREFIX) :]


def append_x(state: str) -> str:
    return state + "x"


def wfc_6_11(event: Any) -> Any:
    """6-11: a string state through a custom serdes; "x" appended until its length is 2."""
    strategy = WaitStrategy(should_continue=lambda state: len(state) < 2)
    return (yield WaitForCondition(append_x, "", strategy, serdes=PrefixedStringSerdes()))


def wfc_6_13(event: Any) -> Any:
    """6-13: two polls in sequence: 0 -> 2, then 2 -> 4 seeded with the first result."""
    first = yield WaitForCondition(increment, 0, below(2))
    return (yield WaitForCondition(increment, first, below(4)))


HANDLERS: dict[str, Callable[..., Any]] = {
    "6-1": wfc_6_1,
    "6-2": wfc_6_2,
    "6-4": wfc_6_4,
    "6-5": wfc_6_5,
    "6-7": wfc_6_7,
    "6-8": wfc_6_8,
    "6-10": wfc_6_10,
    "6-11": wfc_6_11,
    "6-13": wfc_6_13,
}
