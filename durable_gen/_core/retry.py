"""Retry policies for steps and wait strategies for condition polling.

A step that raises is judged by its :class:`RetryPolicy`. ``decide(error, attempt,
jitter_key=...)`` is called with the exception and the 1-based number of the attempt
that just failed, and returns a :class:`RetryDecision`:

- no retry when ``attempt >= max_attempts`` (``max_attempts`` counts every attempt,
  the first included), or when the error is not retryable;
- otherwise a retry after ``delay_seconds``, a whole number of seconds.

An error is retryable when both ``retryable_errors`` and ``retryable_error_types``
are empty (the default: everything is retried), or when it matches any entry of
either: a ``str`` entry of ``retryable_errors`` is searched for as a substring of
``str(error)``, an ``re.Pattern`` entry with ``pattern.search(str(error))``; a class
entry of ``retryable_error_types`` matches with ``isinstance``, a ``str`` entry matches
when it equals the ``__qualname__`` or the ``module.qualname`` of any class in the
error's MRO (``"ValueError"``, ``"builtins.ValueError"``, ``"mypkg.errors.Busy"``; for
durable_gen's own classes also their public name, ``"durable_gen.StepError"``).
An interrupted at-most-once attempt is judged as a
:class:`~durable_gen._core.errors.StepInterruptedError`, like any other exception.

The delay is computed from the failed attempt's number ``n``::

    EXPONENTIAL: base = min(initial_delay * backoff_rate ** (n - 1), max_delay)
    LINEAR:      base = min(initial_delay + backoff_rate * (n - 1), max_delay)

    Jitter.NONE: d = base
    Jitter.FULL: d = u * base                   (0 <= d < base)
    Jitter.HALF: d = base / 2 + u * base / 2    (base / 2 <= d < base)

    delay_seconds = clamp(ceil(d), 1, 31_622_400)

1 second is the durable service's shortest wait and 31 622 400 seconds (366 days) its
longest. With ``LINEAR`` backoff, ``backoff_rate`` is the increment in seconds.

Deterministic jitter: ``u`` in ``[0, 1)`` is *not* drawn from a random generator. It is
derived from the caller-supplied ``jitter_key`` (unique per step, e.g. execution and
operation id) and the attempt number through BLAKE2b: the first 53 bits of the digest
divided by ``2**53``. This module reads no clock and no random state, so a replay that
decides again decides identically, while distinct keys still spread their retries
uniformly (no thundering herd). The recorded delay remains the source of truth; the
determinism is a second line of defence.

:class:`WaitStrategy` paces ``wait_for_condition`` polling with the same delay
computation (the defaults are those of the AWS Lambda durable functions SDK: 60
attempts, 5 s growing 1.5x per attempt up to 300 s, full jitter). ``next_delay`` returns ``None``
once ``attempt >= max_attempts``; a condition that is met on the last attempt still
succeeds, because the caller checks the condition before asking for a delay.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs

from .errors import ValidationError, qualified_name

__all__ = [
    "MAX_DELAY_SECONDS",
    "MIN_DELAY_SECONDS",
    "Backoff",
    "Jitter",
    "RetryDecision",
    "RetryPolicy",
    "WaitStrategy",
]

MIN_DELAY_SECONDS = 1
"""The shortest delay the durable service accepts, in seconds."""

MAX_DELAY_SECONDS = 31_622_400
"""The longest delay the durable service accepts, in seconds (366 days)."""


class Jitter(enum.Enum):
    """How a computed delay is randomised (deterministically, see the module docstring)."""

    NONE = "NONE"
    """The delay as computed."""
    FULL = "FULL"
    """Uniform in ``[0, delay)``."""
    HALF = "HALF"
    """Uniform in ``[delay / 2, delay)``."""


class Backoff(enum.Enum):
    """How the delay grows from one attempt to the next."""

    EXPONENTIAL = "EXPONENTIAL"
    """``initial_delay * backoff_rate ** (attempt - 1)``."""
    LINEAR = "LINEAR"
    """``initial_delay + backoff_rate * (attempt - 1)``: the rate is an increment in seconds."""


# -- validation helpers ------------------------------------------------------------------


def _got(value: object) -> str:
    return f"got {value!r} ({type(value).__name__})"


def _as_finite_float(value: object) -> float | None:
    """``value`` as a finite float if it is a real int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return result if math.isfinite(result) else None


def _check_int_ge_1(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"{name} must be an int >= 1, {_got(value)}")


def _validate_max_attempts(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_int_ge_1(attribute.name, value)


def _to_seconds(name: str, value: object) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else _as_finite_float(value)
    if seconds is None or seconds < 0:
        raise ValidationError(
            f"{name} must be a finite number of seconds >= 0 or a datetime.timedelta, {_got(value)}"
        )
    return seconds


def _initial_delay(value: float | timedelta) -> float:
    return _to_seconds("initial_delay", value)


def _max_delay(value: float | timedelta) -> float:
    return _to_seconds("max_delay", value)


def _validate_backoff_rate(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    rate = _as_finite_float(value)
    if rate is None or rate < 0:
        raise ValidationError(f"{attribute.name} must be a finite number >= 0, {_got(value)}")


def _validate_backoff(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Backoff):
        raise ValidationError(f"{attribute.name} must be a Backoff, {_got(value)}")


def _validate_jitter(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Jitter):
        raise ValidationError(f"{attribute.name} must be a Jitter, {_got(value)}")


def _check_schedule(
    *, initial_delay: float, max_delay: float, backoff_rate: float, backoff: Backoff
) -> None:
    """Checks that span several fields (run after the per-field validators)."""
    if max_delay < initial_delay:
        raise ValidationError(
            f"max_delay must be >= initial_delay ({initial_delay!r} s), {_got(max_delay)}"
        )
    if backoff is Backoff.EXPONENTIAL and backoff_rate == 0:
        raise ValidationError(
            f"backoff_rate must be > 0 for exponential backoff, {_got(backoff_rate)}"
        )


def _error_patterns(
    value: list[str | re.Pattern[str]] | tuple[str | re.Pattern[str], ...],
) -> tuple[str | re.Pattern[str], ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            f"retryable_errors must be a list or tuple of str or re.Pattern[str], {_got(value)}"
        )
    for i, item in enumerate(value):
        if not (
            isinstance(item, str)
            or (isinstance(item, re.Pattern) and isinstance(item.pattern, str))
        ):
            raise ValidationError(
                f"retryable_errors[{i}] must be a str or re.Pattern[str], {_got(item)}"
            )
    return tuple(value)


def _error_types(
    value: list[type[BaseException] | str] | tuple[type[BaseException] | str, ...],
) -> tuple[type[BaseException] | str, ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            "retryable_error_types must be a list or tuple of exception classes or "
            f"class names, {_got(value)}"
        )
    for i, item in enumerate(value):
        is_class = isinstance(item, type) and issubclass(item, BaseException)
        if not (is_class or (isinstance(item, str) and item)):
            raise ValidationError(
                f"retryable_error_types[{i}] must be an exception class or a non-empty "
                f"class name, {_got(item)}"
            )
    return tuple(value)


# -- the delay computation, shared by RetryPolicy and WaitStrategy -----------------------

_JITTER_PERSON = b"durable_gen.jit"


def _unit(jitter_key: str, attempt: int) -> float:
    """A value in ``[0, 1)``, a pure function of ``jitter_key`` and ``attempt``."""
    data = f"{attempt}:".encode() + jitter_key.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8, person=_JITTER_PERSON).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def _grow(initial: float, rate: float, steps: int, backoff: Backoff) -> float:
    """The unclamped base delay after ``steps`` growth steps (``inf`` when it overflows)."""
    if backoff is Backoff.LINEAR:
        if rate == 0:
            return initial
        try:
            return initial + rate * steps
        except OverflowError:  # steps too large for a float
            return math.inf
    if initial == 0:
        return 0.0
    try:
        factor = rate**steps
    except OverflowError:  # the result, or steps, too large for a float
        factor = math.inf if rate > 1 else (1.0 if rate == 1 else 0.0)
    return initial * factor


def _compute_delay(
    *,
    attempt: int,
    jitter_key: str,
    initial_delay: float,
    max_delay: float,
    backoff_rate: float,
    backoff: Backoff,
    jitter: Jitter,
) -> int:
    """The delay after failed attempt ``attempt``, in whole seconds within the service's range."""
    base = min(_grow(initial_delay, backoff_rate, attempt - 1, backoff), max_delay)
    if jitter is Jitter.FULL:
        delay = _unit(jitter_key, attempt) * base
    elif jitter is Jitter.HALF:
        delay = base / 2 + _unit(jitter_key, attempt) * (base / 2)
    else:
        delay = base
    return min(max(math.ceil(delay), MIN_DELAY_SECONDS), MAX_DELAY_SECONDS)


def _check_call(attempt: object, jitter_key: object) -> None:
    _check_int_ge_1("attempt", attempt)
    if not isinstance(jitter_key, str):
        raise ValidationError(f"jitter_key must be a str, {_got(jitter_key)}")


# -- public values -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RetryDecision:
    """Whether to retry a failed attempt, and after how many seconds (0 when not)."""

    retry: bool
    delay_seconds: int

    def __attrs_post_init__(self) -> None:
        retry, delay = self.retry, self.delay_seconds
        if not isinstance(retry, bool):
            raise ValidationError(f"retry must be a bool, {_got(retry)}")
        if not isinstance(delay, int) or isinstance(delay, bool):
            raise ValidationError(f"delay_seconds must be an int, {_got(delay)}")
        if retry and not MIN_DELAY_SECONDS <= delay <= MAX_DELAY_SECONDS:
            raise ValidationError(
                f"delay_seconds must be between {MIN_DELAY_SECONDS} and {MAX_DELAY_SECONDS} "
                f"when retrying, {_got(delay)}"
            )
        if not retry and delay != 0:
            raise ValidationError(f"delay_seconds must be 0 when not retrying, {_got(delay)}")


_NO_RETRY = RetryDecision(retry=False, delay_seconds=0)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often, after which delays, and on which errors a failed step is retried.

    The defaults are :meth:`default`'s: 6 attempts, exponential backoff from 5 s
    doubling up to 60 s, full jitter, every error retryable. Build variations with
    ``attrs.evolve(policy, ...)``. See the module docstring for the exact formula.
    """

    max_attempts: int = attrs.field(default=6, validator=_validate_max_attempts)
    """Total attempts, the first included; 1 means never retry."""
    initial_delay: float = attrs.field(default=5.0, converter=_initial_delay)
    """Base delay after the first failed attempt, in seconds (a timedelta is accepted)."""
    max_delay: float = attrs.field(default=60.0, converter=_max_delay)
    """Cap on the base delay (before jitter), in seconds; must be >= initial_delay."""
    backoff_rate: float = attrs.field(default=2.0, validator=_validate_backoff_rate)
    """Growth factor (EXPONENTIAL, > 0) or increment in seconds (LINEAR, >= 0)."""
    backoff: Backoff = attrs.field(default=Backoff.EXPONENTIAL, validator=_validate_backoff)
    jitter: Jitter = attrs.field(default=Jitter.FULL, validator=_validate_jitter)
    retryable_errors: tuple[str | re.Pattern[str], ...] = attrs.field(
        default=(), converter=_error_patterns
    )
    """Message substrings or compiled regexes (``search``) that make an error retryable."""
    retryable_error_types: tuple[type[BaseException] | str, ...] = attrs.field(
        default=(), converter=_error_types
    )
    """Exception classes (``isinstance``) or qualified class names (matched along the MRO)."""

    def __attrs_post_init__(self) -> None:
        _check_schedule(
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            backoff_rate=self.backoff_rate,
            backoff=self.backoff,
        )

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is retryable by this policy, attempts aside."""
        if not isinstance(error, BaseException):
            raise ValidationError(f"error must be an exception, {_got(error)}")
        if not self.retryable_errors and not self.retryable_error_types:
            return True
        if self.retryable_errors:
            try:
                message = str(error)
            except Exception:  # a broken __str__ matches no message pattern
                message = None
            if message is not None:
                for pattern in self.retryable_errors:
                    if isinstance(pattern, str):
                        if pattern in message:
                            return True
                    elif pattern.search(message):
                        return True
        names: set[str] | None = None
        for entry in self.retryable_error_types:
            if isinstance(entry, str):
                if names is None:
                    names = set()
                    for cls in type(error).__mro__:
                        names.add(cls.__qualname__)
                        names.add(f"{cls.__module__}.{cls.__qualname__}")
                        names.add(qualified_name(cls))  # durable_gen.X for durable_gen's own
                if entry in names:
                    return True
            elif isinstance(error, entry):
                return True
        return False

    def decide(self, error: BaseException, attempt: int, *, jitter_key: str) -> RetryDecision:
        """Decide on the failure of attempt number ``attempt`` (1-based) with ``error``.

        ``jitter_key`` identifies the step (it seeds the deterministic jitter); the
        result is a pure function of the policy and the arguments.
        """
        _check_call(attempt, jitter_key)
        if not self.is_retryable(error) or attempt >= self.max_attempts:
            return _NO_RETRY
        delay = _compute_delay(
            attempt=attempt,
            jitter_key=jitter_key,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            backoff_rate=self.backoff_rate,
            backoff=self.backoff,
            jitter=self.jitter,
        )
        return RetryDecision(retry=True, delay_seconds=delay)

    # -- presets (the AWS Lambda durable functions SDK's RetryPresets) -------------------

    @classmethod
    def default(cls) -> RetryPolicy:
        """The policy used when none is given.

        6 attempts; exponential from 5 s, rate 2, capped at 60 s; full jitter.
        Unjittered delays: 5, 10, 20, 40, 60 s; the 6th failure is final.
        """
        return cls(
            max_attempts=6,
            initial_delay=5,
            max_delay=60,
            backoff_rate=2.0,
            backoff=Backoff.EXPONENTIAL,
            jitter=Jitter.FULL,
        )

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry: 1 attempt (the other values are the defaults and never used)."""
        return cls(max_attempts=1)

    @classmethod
    def transient(cls) -> RetryPolicy:
        """Quick retries for transient errors.

        3 attempts; exponential from 5 s, rate 2, capped at 300 s; half jitter.
        Unjittered delays: 5, 10 s; the 3rd failure is final.
        """
        return cls(
            max_attempts=3,
            initial_delay=5,
            max_delay=300,
            backoff_rate=2.0,
            backoff=Backoff.EXPONENTIAL,
            jitter=Jitter.HALF,
        )

    @classmethod
    def resource_availability(cls) -> RetryPolicy:
        """Longer retries while a resource becomes available.

        5 attempts; exponential from 5 s, rate 2, capped at 300 s; full jitter.
        Unjittered delays: 5, 10, 20, 40 s; the 5th failure is final.
        """
        return cls(
            max_attempts=5,
            initial_delay=5,
            max_delay=300,
            backoff_rate=2.0,
            backoff=Backoff.EXPONENTIAL,
            jitter=Jitter.FULL,
        )

    @classmethod
    def critical(cls) -> RetryPolicy:
        """Many quick retries for critical operations.

        10 attempts; exponential from 1 s, rate 1.5, capped at 60 s; no jitter.
        Delays: 1, 2, 3, 4, 6, 8, 12, 18, 26 s (1.5**n rounded up); the 10th failure
        is final.
        """
        return cls(
            max_attempts=10,
            initial_delay=1,
            max_delay=60,
            backoff_rate=1.5,
            backoff=Backoff.EXPONENTIAL,
            jitter=Jitter.NONE,
        )

    @classmethod
    def linear(cls) -> RetryPolicy:
        """Linearly growing delays.

        6 attempts; linear from 1 s, +1 s per attempt, capped at 300 s; no jitter.
        Delays: 1, 2, 3, 4, 5 s; the 6th failure is final.
        """
        return cls(
            max_attempts=6,
            initial_delay=1,
            max_delay=300,
            backoff_rate=1.0,
            backoff=Backoff.LINEAR,
            jitter=Jitter.NONE,
        )

    @classmethod
    def fixed(cls, delay: float | timedelta = 5) -> RetryPolicy:
        """A constant delay (5 s by default) between retries.

        5 attempts; ``delay`` every time (exponential, rate 1, capped at ``delay``);
        no jitter. Delays: 4 x ``delay`` (rounded up, at least 1 s); the 5th failure is
        final.
        """
        seconds = _to_seconds("delay", delay)
        return cls(
            max_attempts=5,
            initial_delay=seconds,
            max_delay=seconds,
            backoff_rate=1.0,
            backoff=Backoff.EXPONENTIAL,
            jitter=Jitter.NONE,
        )


@attrs.frozen(kw_only=True)
class WaitStrategy:
    """Pacing of ``wait_for_condition`` polls (AWS SDK defaults).

    60 polls; exponential from 5 s, rate 1.5, capped at 300 s; full jitter.
    """

    should_continue: Callable[[Any], bool] | None = None
    """``should_continue(state) -> bool``: keep polling while it returns True.

    Required by :class:`~durable_gen.WaitForCondition`; it runs in the workflow
    on each new state, so it must be deterministic (a pure function of the state).
    """
    max_attempts: int = attrs.field(default=60, validator=_validate_max_attempts)
    """Total polls, the first included."""
    initial_delay: float = attrs.field(default=5.0, converter=_initial_delay)
    max_delay: float = attrs.field(default=300.0, converter=_max_delay)
    backoff_rate: float = attrs.field(default=1.5, validator=_validate_backoff_rate)
    backoff: Backoff = attrs.field(default=Backoff.EXPONENTIAL, validator=_validate_backoff)
    jitter: Jitter = attrs.field(default=Jitter.FULL, validator=_validate_jitter)

    def __attrs_post_init__(self) -> None:
        _check_schedule(
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            backoff_rate=self.backoff_rate,
            backoff=self.backoff,
        )

    def next_delay(self, attempt: int, *, jitter_key: str) -> int | None:
        """Seconds to wait after poll number ``attempt`` (1-based) found the condition unmet.

        ``None`` when ``attempt >= max_attempts``: polling is exhausted (the caller
        fails the operation).
        """
        _check_call(attempt, jitter_key)
        if attempt >= self.max_attempts:
            return None
        return _compute_delay(
            attempt=attempt,
            jitter_key=jitter_key,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            backoff_rate=self.backoff_rate,
            backoff=self.backoff,
            jitter=self.jitter,
        )
