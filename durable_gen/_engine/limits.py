"""Execution timeouts and retention: Lambda's ``DurableConfig``, checked once at the edge.

``ExecutionTimeout`` (seconds) bounds how long an execution may run: one still
running at its deadline ends TIMED_OUT (``SqliteStore.time_out``). ``RetentionPeriodInDays``
bounds how long an ended execution is kept: workers delete it with its log, history
and log records once that long has passed since it ended (``SqliteStore.purge``).
Both are set per function (``serve --function-configs``, an engine's
``function_configs``), per engine (the default of the executions it starts) and per
start; a caller may also give an absolute deadline. Bad values are refused here, in
one line naming the value, before anything is recorded.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

import attrs

from .._core.errors import ValidationError

__all__ = [
    "MAX_RETENTION_DAYS",
    "MAX_TIMEOUT_SECONDS",
    "Limits",
    "deadline_ms",
    "parse_durable_config",
    "retention_ms",
    "timeout_ms",
]

#: The longest ExecutionTimeout, as Lambda has it (366 days).
MAX_TIMEOUT_SECONDS = 31_622_400
#: The longest retention accepted (100 years: beyond it, keep forever instead). Lambda
#: allows 1 to 90 days; the embedded engine keeps ended executions forever by default.
MAX_RETENTION_DAYS = 36_500
_DAY_MS = 86_400_000


def _number_in(value: Any, what: str, unit: str, lowest: float, highest: float) -> float:
    """``value`` if it is a finite number with ``lowest < value <= highest`` (``lowest``
    0) or ``lowest <= value <= highest``; else a one-line ValidationError."""
    valid = (
        f"more than 0 and at most {highest:.0f} {unit}"
        if lowest == 0
        else f"from {lowest:g} to {highest:.0f} {unit}"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{what} must be a number of {unit}, {valid}; got {value!r:.40}")
    low_ok = value > 0 if lowest == 0 else value >= lowest
    if not math.isfinite(value) or not low_ok or value > highest:
        raise ValidationError(f"{what} must be {valid}, got {value!r:.40}")
    return float(value)


def timeout_ms(value: Any, what: str = "timeout") -> int:
    """An execution timeout in seconds (Lambda's ExecutionTimeout: 1 s to 366 days) as
    milliseconds."""
    return round(_number_in(value, what, "seconds", 1, MAX_TIMEOUT_SECONDS) * 1000)


def retention_ms(value: Any, what: str = "retention_days") -> int:
    """A retention period in days (more than 0, at most 100 years) as milliseconds."""
    return max(1, round(_number_in(value, what, "days", 0, MAX_RETENTION_DAYS) * _DAY_MS))


def deadline_ms(value: Any, now: int, what: str = "deadline") -> int:
    """An absolute deadline (a timezone-aware :class:`datetime.datetime`) as epoch ms;
    it must be later than ``now``."""
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{what} must be a timezone-aware datetime (e.g. "
            f"datetime.now(timezone.utc) + timedelta(hours=1)), got {value!r:.60}"
        )
    ms = round(value.timestamp() * 1000)
    if ms <= now:
        raise ValidationError(
            f"{what} {value.isoformat()} has already passed: give a time in the future"
        )
    return ms


@attrs.frozen(kw_only=True)
class Limits:
    """What an execution starts with: its timeout and its retention, in ms (None: none)."""

    timeout_ms: int | None = None
    retention_ms: int | None = None

    def or_else(self, other: Limits) -> Limits:
        """These limits, each one not set taken from ``other``."""
        return Limits(
            timeout_ms=self.timeout_ms if self.timeout_ms is not None else other.timeout_ms,
            retention_ms=self.retention_ms if self.retention_ms is not None else other.retention_ms,
        )

    @classmethod
    def of(cls, *, timeout: Any = None, retention_days: Any = None) -> Limits:
        """From a timeout in seconds and a retention in days (None: not set)."""
        return cls(
            timeout_ms=None if timeout is None else timeout_ms(timeout),
            retention_ms=None if retention_days is None else retention_ms(retention_days),
        )


def parse_durable_config(name: str, config: Any) -> Limits:
    """A function's configuration in Lambda's shape, ``{"DurableConfig": {"ExecutionTimeout":
    seconds, "RetentionPeriodInDays": days}}`` (or the ``DurableConfig`` object itself)."""
    if not isinstance(config, Mapping):
        raise ValidationError(
            f"the configuration of function {name!r} must be a JSON object such as "
            f'{{"DurableConfig": {{"ExecutionTimeout": 3600}}}}, got {config!r:.60}'
        )
    # durable_gen's queue binding ("Queue", "Priority": _engine.queues) sits beside it
    config = {k: v for k, v in config.items() if k not in ("Queue", "Priority")}
    durable = config.get("DurableConfig", config)
    if not isinstance(durable, Mapping):
        raise ValidationError(
            f"the DurableConfig of function {name!r} must be a JSON object, got {durable!r:.60}"
        )
    unknown = sorted(set(durable) - {"ExecutionTimeout", "RetentionPeriodInDays", "KMSKeyArn"})
    if unknown:
        raise ValidationError(
            f"the DurableConfig of function {name!r} has unknown field(s) {', '.join(unknown)}; "
            "valid: ExecutionTimeout, RetentionPeriodInDays"
        )
    timeout = durable.get("ExecutionTimeout")
    retention = durable.get("RetentionPeriodInDays")
    return Limits(
        timeout_ms=None
        if timeout is None
        else timeout_ms(timeout, f"ExecutionTimeout of function {name!r}"),
        retention_ms=None
        if retention is None
        else retention_ms(retention, f"RetentionPeriodInDays of function {name!r}"),
    )


def durable_config(info_timeout_ms: int | None, info_retention_ms: int | None) -> dict[str, Any]:
    """An execution's DurableConfig as GetDurableExecution returns it (fields set only)."""
    out: dict[str, Any] = {}
    if info_timeout_ms is not None:
        out["ExecutionTimeout"] = _number(info_timeout_ms / 1000)
    if info_retention_ms is not None:
        out["RetentionPeriodInDays"] = _number(info_retention_ms / _DAY_MS)
    return out


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else round(value, 3)
