"""The time axis of a timeline: tick spacing and labels for any span, ms to years.

:func:`choose_axis` picks the smallest "nice" spacing (250 ms, 5 s, 10 min, 6 h,
7 d, ...) that covers a span in at most ``max_intervals`` intervals, and ends the
axis on a tick a little past the span, so the last bar never touches the edge.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

__all__ = ["NICE_STEPS", "Axis", "choose_axis", "fmt_offset"]

_S = 1000
_MIN = 60 * _S
_H = 60 * _MIN
_D = 24 * _H

#: Tick spacings, in ms, smallest first; past the last one, multiples of a year of days.
NICE_STEPS: tuple[int, ...] = (
    *(1, 2, 5, 10, 20, 50, 100, 250, 500),
    *(_S, 2 * _S, 5 * _S, 10 * _S, 15 * _S, 30 * _S),
    *(_MIN, 2 * _MIN, 5 * _MIN, 10 * _MIN, 15 * _MIN, 30 * _MIN),
    *(_H, 2 * _H, 3 * _H, 6 * _H, 12 * _H),
    *(_D, 2 * _D, 7 * _D, 14 * _D, 30 * _D, 60 * _D, 90 * _D, 180 * _D, 365 * _D),
)

_UNITS = (("d", _D), ("h", _H), ("min", _MIN), ("s", _S))


def fmt_offset(ms: int) -> str:
    """An offset from the start as a tick label: ``0``, ``250 ms``, ``1.25 s``,
    ``1 min 30 s``, ``1 d 6 h``."""
    if ms == 0:
        return "0"
    if ms < _S:
        return f"{ms} ms"
    if ms % _S:
        return f"{ms / _S:.3f}".rstrip("0") + " s"
    parts: list[str] = []
    rest = ms
    for unit, size in _UNITS:
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n} {unit}")
    return " ".join(parts)


@attrs.frozen
class Axis:
    """Ticks every ``step`` ms from 0 to ``end`` (a multiple of ``step``)."""

    step: int
    end: int

    @property
    def intervals(self) -> int:
        """How many steps the axis is long."""
        return self.end // self.step

    def ticks(self) -> list[tuple[int, str]]:
        """(offset ms, label) of every tick, 0 and ``end`` included."""
        return [(k * self.step, fmt_offset(k * self.step)) for k in range(self.intervals + 1)]


def choose_axis(span_ms: int, *, max_intervals: int = 10) -> Axis:
    """The axis for a timeline ``span_ms`` long (an int, >= 0).

    The axis ends a little (2% of the span, at least 1 ms) past ``span_ms``, so
    that the last bar, even one drawn 2 px wide, ends inside it.
    """
    if isinstance(span_ms, bool) or not isinstance(span_ms, int):
        raise TypeError(f"span_ms must be an int (milliseconds), got {type(span_ms).__name__}")
    if span_ms < 0:
        raise ValueError(f"span_ms must be >= 0, got {span_ms}; pass end - start, not start - end")
    if isinstance(max_intervals, bool) or not isinstance(max_intervals, int) or max_intervals < 2:
        raise ValueError(f"max_intervals must be an int >= 2, got {max_intervals!r}")
    need = span_ms + span_ms // 50 + 1  # the end must lie past this
    for step in _steps():
        intervals = -(-need // step)  # ceil
        if intervals <= max_intervals:
            return Axis(step=step, end=intervals * step)
    raise AssertionError("unreachable: _steps() is endless")  # pragma: no cover


def _steps() -> Iterator[int]:
    yield from NICE_STEPS
    year = 365 * _D
    scale = 1
    while True:
        for k in (2, 5, 10):
            yield k * scale * year
        scale *= 10
