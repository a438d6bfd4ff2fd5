"""Time for engines, in epoch milliseconds: virtual in tests, real in production.

The interpreter never reads a clock: time enters it as a value the engine passes.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock(Protocol):
    """Time for an engine, in epoch milliseconds."""

    def now(self) -> int: ...

    def sleep_until(self, when: int) -> None: ...


class VirtualClock:
    """A clock that only moves when told to: sleeping jumps straight to the deadline."""

    def __init__(self, start: int = 1_767_225_600_000) -> None:  # 2026-01-01T00:00:00Z
        self._now = start

    def now(self) -> int:
        return self._now

    def sleep_until(self, when: int) -> None:
        self._now = max(self._now, when)

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1000)


class RealClock:
    """Wall-clock time; sleeping really sleeps."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep_until(self, when: int) -> None:
        delay = (when - self.now()) / 1000
        if delay > 0:
            time.sleep(delay)
