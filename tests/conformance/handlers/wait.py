"""Conformance handlers for the wait suite (2-x); see handlers/__init__.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable_gen import Wait


def wait_2_1(event: Any) -> Any:
    """2-1: a single 2 s wait."""
    yield Wait(seconds=2)
    return None


def wait_2_2(event: Any) -> Any:
    """2-2: a named 2 s wait."""
    yield Wait(seconds=2, name="custom_wait_name")
    return None


def wait_2_4(event: Any) -> Any:
    """2-4: a wait given in minutes (1 minute = 60 s)."""
    yield Wait(minutes=1)
    return None


def wait_2_5(event: Any) -> Any:
    """2-5: a wait given in hours (1 hour = 3600 s)."""
    yield Wait(hours=1)
    return None


HANDLERS: dict[str, Callable[..., Any]] = {
    "2-1": wait_2_1,
    "2-2": wait_2_2,
    "2-4": wait_2_4,
    "2-5": wait_2_5,
}
