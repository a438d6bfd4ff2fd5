"""Tests of durable_gen._core.retry: presets, matching, validation, deterministic jitter."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_gen._core.errors import (
    StepInterruptedError,
    ValidationError,
)
from durable_gen._core.retry import (
    MAX_DELAY_SECONDS,
    MIN_DELAY_SECONDS,
    Backoff,
    Jitter,
    RetryDecision,
    RetryPolicy,
    WaitStrategy,
)

KEY = "exec-1/op-1"


def delays(policy: RetryPolicy) -> list[int | None]:
    """Unjittered delays after failed attempts 1..max_attempts (None: no retry)."""
    unjittered = attrs.evolve(policy, jitter=Jitter.NONE)
    out: list[int | None] = []
    for attempt in range(1, policy.max_attempts + 1):
        decision = unjittered.decide(RuntimeError("boom"), attempt, jitter_key=KEY)
        out.append(decision.delay_seconds if decision.retry else None)
    return out


# -- presets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "fields", "expected"),
    [
        (
            RetryPolicy.default(),
            (6, 5.0, 60.0, 2.0, Backoff.EXPONENTIAL, Jitter.FULL),
            [5, 10, 20, 40, 60, None],
        ),
        (
            RetryPolicy.none(),
            (1, 5.0, 60.0, 2.0, Backoff.EXPONENTIAL, Jitter.FULL),
            [None],
        ),
        (
            RetryPolicy.transient(),
            (3, 5.0, 300.0, 2.0, Backoff.EXPONENTIAL, Jitter.HALF),
            [5, 10, None],
        ),
        (
            RetryPolicy.resource_availability(),
            (5, 5.0, 300.0, 2.0, Backoff.EXPONENTIAL, Jitter.FULL),
            [5, 10, 20, 40, None],
        ),
        (
            RetryPolicy.critical(),
            (10, 1.0, 60.0, 1.5, Backoff.EXPONENTIAL, Jitter.NONE),
            [1, 2, 3, 4, 6, 8, 12, 18, 26, None],
        ),
        (
            RetryPolicy.linear(),
            (6, 1.0, 300.0, 1.0, Backoff.LINEAR, Jitter.NONE),
            [1, 2, 3, 4, 5, None],
        ),
        (
            RetryPolicy.fixed(),
            (5, 5.0, 5.0, 1.0, Backoff.EXPONENTIAL, Jitter.NONE),
            [5, 5, 5, 5, None],
        ),
        (
            RetryPolicy.fixed(timedelta(minutes=2)),
            (5, 120.0, 120.0, 1.0, Backoff.EXPONENTIAL, Jitter.NONE),
            [120, 120, 120, 120, None],
        ),
        (
            RetryPolicy.fixed(0.2),
            (5, 0.2, 0.2, 1.0, Backoff.EXPONENTIAL, Jitter.NONE),
            [1, 1, 1, 1, None],
        ),
    ],
    ids=[
        "default",
        "none",
        "transient",
        "resource_availability",
        "critical",
        "linear",
        "fixed",
        "fixed-2min",
        "fixed-subsecond",
    ],
)
def test_preset_values_and_delays(
    preset: RetryPolicy, fields: tuple[object, ...], expected: list[int | None]
) -> None:
    actual = (
        preset.max_attempts,
        preset.initial_delay,
        preset.max_delay,
        preset.backoff_rate,
        preset.backoff,
        preset.jitter,
    )
    assert actual == fields
    assert preset.retryable_errors == ()
    assert preset.retryable_error_types == ()
    assert delays(preset) == expected


def test_default_constructor_is_default_preset() -> None:
    assert RetryPolicy() == RetryPolicy.default()


def test_presets_without_jitter_ignore_the_key() -> None:
    for preset in (RetryPolicy.critical(), RetryPolicy.linear(), RetryPolicy.fixed()):
        decisions = {preset.decide(OSError(), 2, jitter_key=f"k{i}") for i in range(20)}
        assert len(decisions) == 1


def test_linear_cap_and_increment() -> None:
    policy = RetryPolicy(
        max_attempts=10,
        initial_delay=2,
        max_delay=9,
        backoff_rate=3,
        backoff=Backoff.LINEAR,
        jitter=Jitter.NONE,
    )
    assert delays(policy) == [2, 5, 8, 9, 9, 9, 9, 9, 9, None]


def test_exponential_fractional_delays_round_up() -> None:
    policy = RetryPolicy(
        max_attempts=4, initial_delay=0.3, max_delay=10, backoff_rate=3, jitter=Jitter.NONE
    )
    # 0.3 -> 1 (minimum), 0.9 -> 1, 2.7 -> 3
    assert delays(policy) == [1, 1, 3, None]


def test_zero_delays_become_the_minimum() -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0, max_delay=0, jitter=Jitter.NONE)
    assert delays(policy) == [1, 1, None]


def test_delay_is_clamped_to_the_service_maximum() -> None:
    policy = RetryPolicy(
        max_attempts=3,
        initial_delay=timedelta(days=400),
        max_delay=timedelta(days=500),
        jitter=Jitter.NONE,
    )
    assert delays(policy) == [MAX_DELAY_SECONDS, MAX_DELAY_SECONDS, None]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    huge = 10**400
    err = RuntimeError()
    grow = RetryPolicy(max_attempts=huge + 1, max_delay=1e300, jitter=Jitter.NONE)
    assert grow.decide(err, huge, jitter_key=KEY).delay_seconds == MAX_DELAY_SECONDS
    shrink = attrs.evolve(grow, backoff_rate=0.5)
    assert shrink.decide(err, huge, jitter_key=KEY).delay_seconds == 1
    flat = attrs.evolve(grow, backoff_rate=1)
    assert flat.decide(err, huge, jitter_key=KEY).delay_seconds == 5
    linear0 = attrs.evolve(grow, backoff=Backoff.LINEAR, backoff_rate=0)
    assert linear0.decide(err, huge, jitter_key=KEY).delay_seconds == 5
    linear1 = attrs.evolve(grow, backoff=Backoff.LINEAR, backoff_rate=1)
    assert linear1.decide(err, huge, jitter_key=KEY).delay_seconds == MAX_DELAY_SECONDS


def test_timedelta_and_numbers_normalise_to_float_seconds() -> None:
    policy = RetryPolicy(initial_delay=timedelta(milliseconds=1500), max_delay=timedelta(hours=1))
    assert policy.initial_delay == 1.5
    assert policy.max_delay == 3600.0
    assert type(RetryPolicy(initial_delay=3).initial_delay) is float


def test_lists_are_converted_to_tuples() -> None:
    policy = RetryPolicy(retryable_errors=["a", re.compile("b")], retryable_error_types=[OSError])
    assert policy.retryable_errors == ("a", re.compile("b"))
    assert policy.retryable_error_types == (OSError,)
    hash(policy)  # frozen values are hashable


def test_no_retry_decision_has_zero_delay() -> None:
    decision = RetryPolicy.none().decide(RuntimeError(), 1, jitter_key=KEY)
    assert decision == RetryDecision(retry=False, delay_seconds=0)


# -- retryable matching ------------------------------------------------------------------


class Busy(Exception):
    pass


class VeryBusy(Busy):
    pass


class Outer:
    class Inner(Exception):
        pass


def retryable(policy: RetryPolicy, error: BaseException) -> bool:
    decision = policy.decide(error, 1, jitter_key=KEY)
    assert decision.retry == policy.is_retryable(error)
    return decision.retry


@pytest.mark.parametrize(
    ("options", "error", "expected"),
    [
        # no lists: everything is retryable
        ({}, ValueError("x"), True),
        ({}, KeyboardInterrupt(), True),
        ({}, StepInterruptedError("attempt 2 was interrupted"), True),
        # substrings
        ({"retryable_errors": ["timed out"]}, OSError("read timed out"), True),
        ({"retryable_errors": ["timed out"]}, OSError("Timed Out"), False),
        ({"retryable_errors": ["timed out"]}, TimeoutError(), False),
        ({"retryable_errors": ("x", "throttl")}, RuntimeError("throttled"), True),
        # regexes use search, not match
        ({"retryable_errors": [re.compile(r"HTTP 5\d\d")]}, OSError("got HTTP 503 !"), True),
        ({"retryable_errors": [re.compile(r"HTTP 5\d\d")]}, OSError("got HTTP 404"), False),
        ({"retryable_errors": [re.compile("timed out", re.I)]}, OSError("TIMED OUT"), True),
        ({"retryable_errors": [re.compile("^busy$")]}, Busy("busy"), True),
        ({"retryable_errors": [re.compile("^busy$")]}, Busy("not busy"), False),
        # exception classes: isinstance, so subclasses match
        ({"retryable_error_types": [Busy]}, Busy(), True),
        ({"retryable_error_types": [Busy]}, VeryBusy(), True),
        ({"retryable_error_types": [VeryBusy]}, Busy(), False),
        ({"retryable_error_types": [OSError]}, TimeoutError(), True),
        ({"retryable_error_types": [OSError]}, ValueError(), False),
        # qualified-name strings, along the MRO
        ({"retryable_error_types": ["ValueError"]}, ValueError(), True),
        ({"retryable_error_types": ["builtins.ValueError"]}, ValueError(), True),
        ({"retryable_error_types": ["ValueError"]}, ValidationError("bad"), True),
        ({"retryable_error_types": ["OSError"]}, ConnectionResetError(), True),
        ({"retryable_error_types": ["Busy"]}, VeryBusy(), True),
        ({"retryable_error_types": [f"{__name__}.Busy"]}, VeryBusy(), True),
        ({"retryable_error_types": [f"{__name__}.VeryBusy"]}, Busy(), False),
        ({"retryable_error_types": ["other.module.Busy"]}, Busy(), False),
        ({"retryable_error_types": ["Outer.Inner"]}, Outer.Inner(), True),
        ({"retryable_error_types": [f"{__name__}.Outer.Inner"]}, Outer.Inner(), True),
        ({"retryable_error_types": ["Inner"]}, Outer.Inner(), False),
        ({"retryable_error_types": ["Value"]}, ValueError(), False),
        # StepInterruptedError is judged like any exception
        ({"retryable_error_types": [StepInterruptedError]}, StepInterruptedError(), True),
        ({"retryable_error_types": ["StepInterruptedError"]}, StepInterruptedError(), True),
        (
            {"retryable_error_types": ["durable_gen.DurableGenError"]},
            StepInterruptedError(),
            True,
        ),
        ({"retryable_error_types": [OSError]}, StepInterruptedError(), False),
        ({"retryable_errors": ["interrupted"]}, StepInterruptedError("interrupted"), True),
        # either list may match
        (
            {"retryable_errors": ["nope"], "retryable_error_types": [Busy]},
            Busy("whatever"),
            True,
        ),
        (
            {"retryable_errors": ["whatever"], "retryable_error_types": [OSError]},
            Busy("whatever"),
            True,
        ),
        (
            {"retryable_errors": ["nope"], "retryable_error_types": [OSError]},
            Busy("whatever"),
            False,
        ),
    ],
)
def test_retryable_matching(
    options: dict[str, object], error: BaseException, expected: bool
) -> None:
    assert retryable(RetryPolicy(**options), error) is expected  # type: ignore[arg-type]


def test_non_retryable_error_is_not_retried_even_with_attempts_left() -> None:
    policy = RetryPolicy(max_attempts=100, retryable_error_types=[OSError])
    assert policy.decide(ValueError(), 1, jitter_key=KEY) == RetryDecision(
        retry=False, delay_seconds=0
    )


def test_broken_str_matches_no_message_pattern() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert not retryable(RetryPolicy(retryable_errors=[""]), Broken())
    both = RetryPolicy(retryable_errors=[""], retryable_error_types=[Broken])
    assert retryable(both, Broken())


# -- validation --------------------------------------------------------------------------

DELAY_MSG = "must be a finite number of seconds >= 0 or a datetime.timedelta"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an int >= 1, got 0 (int)"),
        ({"max_attempts": -3}, "max_attempts must be an int >= 1, got -3 (int)"),
        ({"max_attempts": 2.0}, "max_attempts must be an int >= 1, got 2.0 (float)"),
        ({"max_attempts": True}, "max_attempts must be an int >= 1, got True (bool)"),
        ({"max_attempts": "3"}, "max_attempts must be an int >= 1, got '3' (str)"),
        ({"initial_delay": -1}, f"initial_delay {DELAY_MSG}, got -1 (int)"),
        ({"initial_delay": -0.5}, f"initial_delay {DELAY_MSG}, got -0.5 (float)"),
        (
            {"initial_delay": timedelta(seconds=-1)},
            f"initial_delay {DELAY_MSG}, got datetime.timedelta(days=-1, seconds=86399) "
            "(timedelta)",
        ),
        ({"initial_delay": math.nan}, f"initial_delay {DELAY_MSG}, got nan (float)"),
        ({"max_delay": math.inf}, f"max_delay {DELAY_MSG}, got inf (float)"),
        ({"max_delay": "60"}, f"max_delay {DELAY_MSG}, got '60' (str)"),
        ({"max_delay": None}, f"max_delay {DELAY_MSG}, got None (NoneType)"),
        ({"initial_delay": False}, f"initial_delay {DELAY_MSG}, got False (bool)"),
        (
            {"initial_delay": 10, "max_delay": 5},
            "max_delay must be >= initial_delay (10.0 s), got 5.0 (float)",
        ),
        ({"max_delay": 1}, "max_delay must be >= initial_delay (5.0 s), got 1.0 (float)"),
        ({"backoff_rate": -1}, "backoff_rate must be a finite number >= 0, got -1 (int)"),
        ({"backoff_rate": math.inf}, "backoff_rate must be a finite number >= 0, got inf (float)"),
        ({"backoff_rate": "2"}, "backoff_rate must be a finite number >= 0, got '2' (str)"),
        ({"backoff_rate": 0}, "backoff_rate must be > 0 for exponential backoff, got 0 (int)"),
        ({"backoff": "LINEAR"}, "backoff must be a Backoff, got 'LINEAR' (str)"),
        (
            {"jitter": Backoff.LINEAR},
            "jitter must be a Jitter, got <Backoff.LINEAR: 'LINEAR'> (Backoff)",
        ),
        ({"jitter": None}, "jitter must be a Jitter, got None (NoneType)"),
        (
            {"retryable_errors": "timeout"},
            "retryable_errors must be a list or tuple of str or re.Pattern[str], "
            "got 'timeout' (str)",
        ),
        (
            {"retryable_errors": ["ok", 3]},
            "retryable_errors[1] must be a str or re.Pattern[str], got 3 (int)",
        ),
        (
            {"retryable_errors": [re.compile(b"x")]},
            "retryable_errors[0] must be a str or re.Pattern[str], got re.compile(b'x') (Pattern)",
        ),
        (
            {"retryable_error_types": OSError},
            "retryable_error_types must be a list or tuple of exception classes or class "
            "names, got <class 'OSError'> (type)",
        ),
        (
            {"retryable_error_types": [OSError, int]},
            "retryable_error_types[1] must be an exception class or a non-empty class name, "
            "got <class 'int'> (type)",
        ),
        (
            {"retryable_error_types": [""]},
            "retryable_error_types[0] must be an exception class or a non-empty class name, "
            "got '' (str)",
        ),
        (
            {"retryable_error_types": [OSError()]},
            "retryable_error_types[0] must be an exception class or a non-empty class name, "
            "got OSError() (OSError)",
        ),
    ],
)
def test_validation_messages(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_validation_applies_to_evolve() -> None:
    with pytest.raises(ValidationError, match=r"^max_attempts must be an int >= 1, got 0 \(int\)$"):
        attrs.evolve(RetryPolicy.default(), max_attempts=0)


def test_linear_backoff_accepts_a_zero_increment() -> None:
    policy = RetryPolicy(
        max_attempts=4, initial_delay=7, backoff_rate=0, backoff=Backoff.LINEAR, jitter=Jitter.NONE
    )
    assert delays(policy) == [7, 7, 7, None]


def test_max_delay_equal_to_initial_delay_is_allowed() -> None:
    assert delays(
        RetryPolicy(max_attempts=3, initial_delay=8, max_delay=8, jitter=Jitter.NONE)
    ) == [
        8,
        8,
        None,
    ]


def test_fixed_rejects_a_bad_delay() -> None:
    with pytest.raises(ValidationError, match=rf"^delay {DELAY_MSG}, got -5 \(int\)$"):
        RetryPolicy.fixed(-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ValueError(), 0, KEY), "attempt must be an int >= 1, got 0 (int)"),
        ((ValueError(), 1.0, KEY), "attempt must be an int >= 1, got 1.0 (float)"),
        ((ValueError(), 1, 7), "jitter_key must be a str, got 7 (int)"),
        (("boom", 1, KEY), "error must be an exception, got 'boom' (str)"),
        ((ValueError, 1, KEY), "error must be an exception, got <class 'ValueError'> (type)"),
    ],
)
def test_decide_validates_its_arguments(args: tuple[object, object, object], message: str) -> None:
    error, attempt, key = args
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
        RetryPolicy().decide(error, attempt, jitter_key=key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry": 1, "delay_seconds": 5}, "retry must be a bool, got 1 (int)"),
        ({"retry": True, "delay_seconds": 5.0}, "delay_seconds must be an int, got 5.0 (float)"),
        (
            {"retry": True, "delay_seconds": 0},
            "delay_seconds must be between 1 and 31622400 when retrying, got 0 (int)",
        ),
        (
            {"retry": True, "delay_seconds": 31_622_401},
            "delay_seconds must be between 1 and 31622400 when retrying, got 31622401 (int)",
        ),
        (
            {"retry": False, "delay_seconds": 3},
            "delay_seconds must be 0 when not retrying, got 3 (int)",
        ),
    ],
)
def test_retry_decision_validation(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
        RetryDecision(**options)  # type: ignore[arg-type]


# -- wait strategy -----------------------------------------------------------------------


def test_wait_strategy_defaults_match_aws() -> None:
    ws = WaitStrategy()
    assert (ws.max_attempts, ws.initial_delay, ws.max_delay, ws.backoff_rate) == (60, 5, 300, 1.5)
    assert (ws.backoff, ws.jitter) == (Backoff.EXPONENTIAL, Jitter.FULL)


def test_wait_strategy_delays_and_exhaustion() -> None:
    ws = attrs.evolve(WaitStrategy(), jitter=Jitter.NONE)
    got = [ws.next_delay(a, jitter_key=KEY) for a in range(1, 61)]
    # 5 * 1.5 ** (n - 1), rounded up, capped at 300
    assert got[:11] == [5, 8, 12, 17, 26, 38, 57, 86, 129, 193, 289]
    assert got[11:59] == [300] * 48
    assert got[59] is None
    assert ws.next_delay(61, jitter_key=KEY) is None


def test_wait_strategy_shares_the_retry_formula() -> None:
    ws = WaitStrategy(max_attempts=8, initial_delay=3, max_delay=100, backoff_rate=2.5)
    rp = RetryPolicy(max_attempts=8, initial_delay=3, max_delay=100, backoff_rate=2.5)
    for attempt in range(1, 8):
        for key in ("a", "b", "c"):
            assert ws.next_delay(attempt, jitter_key=key) == (
                rp.decide(OSError(), attempt, jitter_key=key).delay_seconds
            )


def test_wait_strategy_validation() -> None:
    with pytest.raises(ValidationError, match=r"^max_attempts must be an int >= 1, got 0 \(int\)$"):
        WaitStrategy(max_attempts=0)
    with pytest.raises(
        ValidationError,
        match=r"^max_delay must be >= initial_delay \(5\.0 s\), got 2\.0 \(float\)$",
    ):
        WaitStrategy(max_delay=2)
    with pytest.raises(ValidationError, match=r"^attempt must be an int >= 1, got 0 \(int\)$"):
        WaitStrategy().next_delay(0, jitter_key=KEY)


# -- properties --------------------------------------------------------------------------

delay_seconds = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    initial = draw(delay_seconds)
    extra = draw(delay_seconds)
    backoff = draw(st.sampled_from(Backoff))
    low = 0.0 if backoff is Backoff.LINEAR else 0.01
    return RetryPolicy(
        max_attempts=draw(st.integers(min_value=1, max_value=50)),
        initial_delay=initial,
        max_delay=initial + extra,
        backoff_rate=draw(st.floats(min_value=low, max_value=100)),
        backoff=backoff,
        jitter=draw(st.sampled_from(Jitter)),
    )


attempts = st.integers(min_value=1, max_value=60)
keys = st.text(max_size=40)


def unjittered(policy: RetryPolicy, attempt: int) -> float:
    """The base delay, computed independently of the module."""
    n = attempt - 1
    if policy.backoff is Backoff.LINEAR:
        base = policy.initial_delay + policy.backoff_rate * n
    else:
        try:
            base = policy.initial_delay * policy.backoff_rate**n
        except OverflowError:
            base = math.inf
    return min(base, policy.max_delay)


@given(policies(), attempts, keys)
def test_decide_is_deterministic(policy: RetryPolicy, attempt: int, key: str) -> None:
    first = policy.decide(RuntimeError("x"), attempt, jitter_key=key)
    copy = attrs.evolve(policy)
    assert copy.decide(RuntimeError("x"), attempt, jitter_key=key) == first
    assert policy.decide(RuntimeError("x"), attempt, jitter_key=key) == first


@given(policies(), attempts, keys)
def test_delay_bounds(policy: RetryPolicy, attempt: int, key: str) -> None:
    decision = policy.decide(RuntimeError(), attempt, jitter_key=key)
    if attempt >= policy.max_attempts:
        assert decision == RetryDecision(retry=False, delay_seconds=0)
        return
    assert decision.retry
    delay = decision.delay_seconds
    assert MIN_DELAY_SECONDS <= delay <= MAX_DELAY_SECONDS
    base = unjittered(policy, attempt)

    def clamp(x: int) -> int:
        return min(max(x, MIN_DELAY_SECONDS), MAX_DELAY_SECONDS)

    if policy.jitter is Jitter.NONE:
        assert delay == clamp(math.ceil(base))
    elif policy.jitter is Jitter.FULL:
        assert delay <= clamp(math.ceil(base))
    else:
        assert delay >= clamp(math.floor(base / 2))
        assert delay <= clamp(math.ceil(base))


@given(policies(), st.integers(min_value=0, max_value=100), keys)
def test_never_retries_once_attempts_are_exhausted(
    policy: RetryPolicy, beyond: int, key: str
) -> None:
    attempt = policy.max_attempts + beyond
    assert policy.decide(RuntimeError(), attempt, jitter_key=key) == RetryDecision(
        retry=False, delay_seconds=0
    )


@given(st.sampled_from([Jitter.FULL, Jitter.HALF]), attempts, st.text(min_size=1, max_size=10))
def test_jitter_keys_spread(jitter: Jitter, attempt: int, prefix: str) -> None:
    policy = RetryPolicy(
        max_attempts=1000, initial_delay=100, max_delay=100, backoff_rate=1, jitter=jitter
    )
    got = [
        policy.decide(RuntimeError(), attempt, jitter_key=f"{prefix}-{i}").delay_seconds
        for i in range(200)
    ]
    assert len(set(got)) >= 20
    if jitter is Jitter.FULL:
        assert min(got) <= 25
        assert max(got) >= 75
    else:
        assert all(50 <= d <= 100 for d in got)


def test_jitter_depends_on_the_attempt_too() -> None:
    policy = RetryPolicy(
        max_attempts=1000, initial_delay=100, max_delay=100, backoff_rate=1, jitter=Jitter.FULL
    )
    got = {policy.decide(RuntimeError(), a, jitter_key=KEY).delay_seconds for a in range(1, 201)}
    assert len(got) >= 20


@given(st.integers(min_value=1, max_value=100), keys)
def test_wait_strategy_properties(attempt: int, key: str) -> None:
    ws = WaitStrategy()
    delay = ws.next_delay(attempt, jitter_key=key)
    assert delay == ws.next_delay(attempt, jitter_key=key)
    if attempt >= ws.max_attempts:
        assert delay is None
    else:
        assert delay is not None
        assert 1 <= delay <= 300
