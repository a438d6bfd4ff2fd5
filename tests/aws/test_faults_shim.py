"""Faults injected into the Lambda shim's client: throttling, 5xx, read timeouts
(before and after the service applied the call), a stale checkpoint token, and
state pages that are refused, missing their operations or looping.

Each ends in a retry inside the invocation, or in a retryable error (Lambda then
re-invokes with a fresh event), or in a clear failure; afterwards the service's
log holds every step's outcome exactly once (asserted on the updates it applied
and the history it recorded).
"""

from __future__ import annotations

import collections
import json
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from durable_gen import Step, StoreError, Wait
from durable_gen._core.log import (
    OperationAction,
    OperationType,
)
from durable_gen.aws import ApiRetry, BatchLimits, durable_handler

from .fake_service import FakeDurableService, client_error

LEDGER: list[str] = []


def effect(name: str) -> str:
    LEDGER.append(name)
    return f"done-{name}"


def flow(event):
    out = []
    for i in range(event["n"]):
        out.append((yield Step(effect, f"s{i}", name=f"s{i}")))
        if i == 1:
            yield Wait(seconds=2, name="pause")
    return out


FAULTS = {
    "throttled": lambda: client_error(429, "TooManyRequestsException", "Rate exceeded", "C"),
    "throttling-400": lambda: client_error(400, "ThrottlingException", "slow down", "C"),
    "server-500": lambda: client_error(500, "ServiceException", "internal", "C"),
    "server-503": lambda: client_error(503, "ServiceUnavailable", "unavailable", "C"),
    "read-timeout": lambda: ReadTimeoutError(endpoint_url="https://lambda"),
}


class FaultyClient:
    """The fake service behind a client whose calls fail on a schedule.

    ``schedule`` is consumed one entry per API call: None (no fault), a FAULTS
    key (raised before the service sees the call), ``"lost"`` (the service
    applies the call, then the response is lost to a read timeout), or
    ``"stale"`` (another invocation moved the execution on: the token is stale).
    """

    def __init__(self, svc: FakeDurableService, schedule: list[str | None]) -> None:
        self.svc = svc
        self.schedule = list(schedule)
        self.injected: collections.Counter[str] = collections.Counter()

    def _next(self) -> str | None:
        return self.schedule.pop(0) if self.schedule else None

    def _call(self, fn: Any, kwargs: dict[str, Any], *, can_lose: bool) -> Any:
        fault = self._next()
        if fault is None or (fault == "lost" and not can_lose):
            return fn(**kwargs)
        self.injected[fault] += 1
        if fault == "lost":
            fn(**kwargs)
            raise ReadTimeoutError(endpoint_url="https://lambda")
        if fault == "stale":
            self.svc.executions[kwargs["DurableExecutionArn"]].seq += 1
            return fn(**kwargs)
        raise FAULTS[fault]()

    def checkpoint_durable_execution(self, **kwargs: Any) -> Any:
        return self._call(self.svc.checkpoint_durable_execution, kwargs, can_lose=True)

    def get_durable_execution_state(self, **kwargs: Any) -> Any:
        return self._call(self.svc.get_durable_execution_state, kwargs, can_lose=False)


def lambda_loop(
    svc: FakeDurableService, handler: Any, arn: str, max_invocations: int = 60
) -> list[StoreError]:
    """The service's loop, re-invoking (as Lambda does) when the handler raises retryably."""
    ex = svc.executions[arn]
    raised: list[StoreError] = []
    while ex.status == "RUNNING":
        assert ex.invocations < max_invocations
        ex.invocations += 1
        try:
            svc.invoke(handler, arn)
        except StoreError as e:
            raised.append(e)  # Lambda retries the invocation
            continue
        wake = svc.next_wake(arn)
        if wake is None:
            break
        svc.now = max(svc.now, wake)
        svc.fire(arn)
    return raised


def _patch_fake(svc: FakeDurableService) -> None:
    from durable_gen._core import service as _service

    def next_wake(arn: str) -> int | None:
        return _service.next_timer(svc.executions[arn].ops.values())

    def fire(arn: str) -> None:
        ex = svc.executions[arn]
        changed, events = _service.fire_timers(ex.ops, svc.now)
        ex.ops.update(changed)
        ex.events.extend(events)

    svc.next_wake = next_wake  # type: ignore[attr-defined]
    svc.fire = fire  # type: ignore[attr-defined]


def setup(schedule: list[str | None], n: int = 4, **svc_kw: Any):
    LEDGER.clear()
    svc = FakeDurableService(**svc_kw)
    _patch_fake(svc)
    client = FaultyClient(svc, schedule)
    handler = durable_handler(
        flow, client=client, retry=ApiRetry(max_attempts=3, base_delay=0.01, sleep=lambda s: None)
    )
    handler.clock = svc.clock
    arn = svc.start(json.dumps({"n": n}))
    return svc, client, handler, arn


def assert_recorded_once(svc: FakeDurableService, arn: str, n: int) -> None:
    ex = svc.executions[arn]
    assert ex.status == "SUCCEEDED", (ex.status, ex.error)
    assert json.loads(ex.result or "null") == [f"done-s{i}" for i in range(n)]
    succeeds = collections.Counter(
        u.name
        for u in ex.updates
        if u.type is OperationType.STEP and u.action is OperationAction.SUCCEED
    )
    assert succeeds == {f"s{i}": 1 for i in range(n)}  # no outcome applied twice
    events = collections.Counter(e["EventType"] for e in ex.events)
    assert events["StepSucceeded"] == n
    assert events["ExecutionSucceeded"] == 1
    ops = [op for op in ex.ops.values() if op.type is OperationType.STEP]
    assert sorted(op.name or "" for op in ops) == [f"s{i}" for i in range(n)]
    assert all(op.status.value == "SUCCEEDED" for op in ops)


# ---------------------------------------------------------------- one fault at a time


@pytest.mark.parametrize("fault", [*FAULTS, "lost"])
def test_a_transient_fault_is_retried_within_the_invocation(fault):
    svc, client, handler, arn = setup([None, fault, fault])
    raised = lambda_loop(svc, handler, arn)
    assert raised == []
    assert client.injected[fault] == 2
    assert LEDGER == ["s0", "s1", "s2", "s3"]  # no step ran twice
    assert_recorded_once(svc, arn, 4)


@pytest.mark.parametrize("fault", [*FAULTS, "lost"])
def test_a_persistent_transient_fault_ends_the_invocation_for_lambda_to_retry(fault):
    svc, _, handler, arn = setup([None, fault, fault, fault])
    raised = lambda_loop(svc, handler, arn)
    [error] = raised
    assert error.retryable
    assert str(error).startswith("CheckpointDurableExecution failed 3 times with transient errors")
    assert str(error).endswith("the invocation ends so that Lambda retries it")
    assert_recorded_once(svc, arn, 4)
    # s1's result was lost once (unless the service applied it): re-run at least once
    assert LEDGER.count("s0") == 1
    assert LEDGER.count("s1") == (1 if fault == "lost" else 2)


def test_a_stale_token_ends_the_invocation_and_the_next_one_completes():
    svc, client, handler, arn = setup([None, "stale"])
    raised = lambda_loop(svc, handler, arn)
    [error] = raised
    assert error.retryable
    assert "the checkpoint token is stale" in str(error)
    assert "Lambda retries it with a fresh token" in str(error)
    assert client.injected["stale"] == 1
    assert_recorded_once(svc, arn, 4)


def test_a_lost_response_then_a_stale_token_records_nothing_twice():
    svc, _client, handler, arn = setup([None, "lost", "stale"])
    raised = lambda_loop(svc, handler, arn)
    assert len(raised) == 1
    assert_recorded_once(svc, arn, 4)


# ---------------------------------------------------------------- state pages


def _suspended_at_the_wait(schedule: list[str | None] | None = None):
    """An execution that recorded s0 and s1 and waits; replays read 1-operation pages."""
    svc, client, handler, arn = setup(schedule or [], n=4)
    assert handler(svc.event(arn), None) == {"Status": "PENDING"}
    svc.event_page_size = 1
    LEDGER.clear()
    return svc, client, handler, arn


def test_a_state_page_that_is_refused_raises_for_lambda_to_retry():
    svc, _client, handler, arn = _suspended_at_the_wait()
    before = list(svc.executions[arn].updates)
    svc.inject = [client_error(400, "400", "invalid marker 'm'", "GetDurableExecutionState")]
    with pytest.raises(StoreError) as ei:
        handler(svc.event(arn), None)
    assert ei.value.retryable
    assert str(ei.value).startswith("GetDurableExecutionState failed: 400 (HTTP 400)")
    assert "a page of the execution's state could not be read" in str(ei.value)
    assert svc.executions[arn].updates == before  # nothing ran on a partial log
    assert LEDGER == []


def test_a_state_page_without_operations_raises_instead_of_replaying_a_partial_log():
    svc, _client, handler, arn = _suspended_at_the_wait()
    real = svc.get_durable_execution_state

    def without_operations(**kw: Any) -> dict[str, Any]:
        resp = real(**kw)
        resp.pop("Operations")
        return resp

    svc.get_durable_execution_state = without_operations  # type: ignore[method-assign]
    before = list(svc.executions[arn].updates)
    with pytest.raises(StoreError, match=r"without Operations; replaying without it") as ei:
        handler(svc.event(arn), None)
    assert ei.value.retryable
    assert LEDGER == []  # no recorded step ran again
    assert svc.executions[arn].updates == before


def test_state_pages_that_loop_raise_instead_of_spinning():
    svc, _client, handler, arn = _suspended_at_the_wait()
    event = svc.event(arn)
    event["InitialExecutionState"]["NextMarker"] = "again"

    def looping(**kw: Any) -> dict[str, Any]:
        return {"Operations": [], "NextMarker": "again"}

    svc.get_durable_execution_state = looping  # type: ignore[method-assign]
    with pytest.raises(StoreError, match=r"returned marker 'again' twice; the state pages loop"):
        handler(event, None)


def test_transient_faults_on_state_pages_are_retried():
    svc, client, handler, arn = _suspended_at_the_wait()
    client.schedule = ["throttled", None, "server-500", "read-timeout"]
    svc.now += 2_000
    svc.fire(arn)
    raised = lambda_loop(svc, handler, arn)
    assert raised == []
    assert LEDGER == ["s2", "s3"]  # the replay saw every recorded step
    assert_recorded_once(svc, arn, 4)


# ---------------------------------------------------------------- any schedule of faults

_ANY_FAULT = st.one_of(st.none(), st.sampled_from([*FAULTS, "lost", "stale"]))


@given(schedule=st.lists(_ANY_FAULT, max_size=16), page=st.sampled_from([None, 1, 2]))
def test_any_schedule_of_faults_ends_with_each_outcome_recorded_once(schedule, page):
    svc, _client, handler, arn = setup(schedule, n=5, event_page_size=page)
    raised = lambda_loop(svc, handler, arn)
    assert all(e.retryable for e in raised), raised
    assert_recorded_once(svc, arn, 5)
    assert set(LEDGER) == {f"s{i}" for i in range(5)}


def test_a_payload_over_the_limit_fails_clearly_and_sends_nothing():
    def big(event):
        yield Step(effect, "s0", name="s0")
        return (yield Step(lambda: "x" * 2_000, name="big"))

    svc = FakeDurableService()
    handler = durable_handler(
        big,
        client=svc,
        limits=BatchLimits(max_payload_bytes=1_000),
        retry=ApiRetry(max_attempts=1),
    )
    handler.clock = svc.clock
    arn = svc.start("{}")
    out = handler(svc.event(arn), None)
    assert out["Status"] == "FAILED"
    assert (
        "carries a 2,002-byte payload; the checkpoint API accepts at most 1,000"
        in (out["Error"]["ErrorMessage"])
    )
    assert svc.checkpoint_calls == 1  # s0's outcome; the oversized one was never sent
