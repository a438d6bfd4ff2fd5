"""Tests that kill the mutants of durable_gen/_core/retry.py (issue 29, see mutation/).

Each pins a documented rule that the older tests did not decide: the presets' exact
values, the determinism and range of jitter, and the overflow branch of growth.
"""

from __future__ import annotations

import math

import pytest

from durable_gen._core.errors import ValidationError
from durable_gen._core.retry import (
    Backoff,
    Jitter,
    RetryPolicy,
    WaitStrategy,
    _unit,
)


def _fields(policy: RetryPolicy) -> tuple[object, ...]:
    return (
        policy.max_attempts,
        policy.initial_delay,
        policy.max_delay,
        policy.backoff_rate,
        policy.backoff,
        policy.jitter,
    )


EXP, LIN = Backoff.EXPONENTIAL, Backoff.LINEAR


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (RetryPolicy.default, (6, 5.0, 60.0, 2.0, EXP, Jitter.FULL)),
        (RetryPolicy.transient, (3, 5.0, 300.0, 2.0, EXP, Jitter.HALF)),
        (RetryPolicy.resource_availability, (5, 5.0, 300.0, 2.0, EXP, Jitter.FULL)),
        (RetryPolicy.critical, (10, 1.0, 60.0, 1.5, EXP, Jitter.NONE)),
        (RetryPolicy.linear, (6, 1.0, 300.0, 1.0, LIN, Jitter.NONE)),
        (RetryPolicy.fixed, (5, 5.0, 5.0, 1.0, EXP, Jitter.NONE)),
    ],
)
def test_presets_have_their_documented_values(preset, expected):
    assert _fields(preset()) == expected


def test_fixed_uses_the_given_delay_for_every_bound():
    assert _fields(RetryPolicy.fixed(7)) == (5, 7.0, 7.0, 1.0, EXP, Jitter.NONE)
    err = RuntimeError("boom")
    delays = [RetryPolicy.fixed(7).decide(err, n, jitter_key="k").delay_seconds for n in (1, 4)]
    assert delays == [7, 7]


def test_unit_is_a_pinned_function_of_key_and_attempt():
    # Replays depend on these exact values: the hash, its personalisation and the
    # byte order are part of the recorded behaviour.
    assert _unit("k", 1) == 0.5648594074934523
    assert _unit("exec-1/op-2", 3) == 0.24956531219554168


def test_jitter_key_with_a_lone_surrogate_is_accepted():
    key = "op-\ud800"
    u = _unit(key, 1)
    assert 0 <= u < 1
    assert RetryPolicy().decide(RuntimeError("x"), 1, jitter_key=key).retry


@pytest.mark.parametrize("key", [f"exec/op-{i}" for i in range(8)])
@pytest.mark.parametrize("attempt", [1, 2, 5])
def test_half_jitter_is_base_half_plus_unit_times_base_half(key, attempt):
    policy = RetryPolicy(
        max_attempts=10, initial_delay=1000, max_delay=1000, backoff_rate=1.0, jitter=Jitter.HALF
    )
    got = policy.decide(RuntimeError("x"), attempt, jitter_key=key).delay_seconds
    assert got == math.ceil(500 + _unit(key, attempt) * 500)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(1.0, 7), (0.5, 1)],  # rate 1 stays at the initial delay; rate < 1 decays to the floor
)
def test_growth_overflow_with_a_huge_attempt_number(rate, expected):
    # rate ** (10**400) cannot be computed as a float: the overflow branch decides.
    policy = RetryPolicy(
        max_attempts=10**500,
        initial_delay=7,
        max_delay=100,
        backoff_rate=rate,
        jitter=Jitter.NONE,
    )
    assert policy.decide(RuntimeError("x"), 10**400, jitter_key="k").delay_seconds == expected


def test_wait_strategy_rejects_zero_rate_for_exponential_backoff():
    with pytest.raises(ValidationError, match="backoff_rate must be > 0 for exponential"):
        WaitStrategy(backoff_rate=0)
    assert WaitStrategy(backoff_rate=0, backoff=Backoff.LINEAR).backoff_rate == 0


def test_wait_strategy_next_delay_follows_its_backoff():
    linear = WaitStrategy(
        initial_delay=10, max_delay=300, backoff_rate=10, backoff=Backoff.LINEAR, jitter=Jitter.NONE
    )
    assert [linear.next_delay(n, jitter_key="k") for n in (1, 2, 3, 4)] == [10, 20, 30, 40]
