"""Faults between the Lambda shim and AWS's emulator: throttling, 5xx, read timeouts,
responses lost after the emulator applied the call, a stale checkpoint token, and
state pages that are refused, missing their operations or looping.

Each ends in a retry inside the invocation, or in a retryable error (the emulator
then re-invokes with a fresh event, as Lambda does), or in a clear failure;
afterwards the emulator's history holds every step's outcome exactly once.

Every call that is not failed on purpose reaches the emulator (dex-local-runner,
see ``conftest.py``); what the tests read back is the emulator's. The faults are
injected by :class:`FaultyProxy`, a :class:`~tests.aws.proxy.ProxyClient` whose
calls fail on a schedule; it holds no service state of its own.
"""

from __future__ import annotations

import collections
import json
from typing import Any

import hypothesis
import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable_gen import Step, StoreError, Wait
from durable_gen.aws import ApiRetry, BatchLimits

from .proxy import ProxyClient, Run, client_error, first_page, run

LEDGER: list[str] = []

#: transient failures are retried 3 times inside an invocation, without sleeping
RETRY = ApiRetry(max_attempts=3, sleep=lambda s: None)


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


class _TokenTrail:
    """The emulator's client, noting the token each checkpoint answer issued
    (also for answers the proxy then loses), so the proxy knows the current one."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.issued: dict[str, str] = {}  # token sent -> token the emulator answered with

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        resp: dict[str, Any] = self.client.checkpoint_durable_execution(**kw)
        if resp.get("CheckpointToken"):
            self.issued[kw["CheckpointToken"]] = resp["CheckpointToken"]
        return resp

    def latest(self, token: str) -> str:
        while token in self.issued:
            token = self.issued[token]
        return token


class FaultyProxy(ProxyClient):
    """The emulator's client, its calls failing on a schedule.

    ``schedule`` is consumed one entry per API call of the shim:

    - None: no fault;
    - a FAULTS key: raised before the call reaches the emulator;
    - ``"lost"``: the emulator applies the checkpoint, then its response is lost
      (on a state read, which changes nothing, no fault);
    - ``"stale"``: another caller moves the execution on first (an empty checkpoint
      with the execution's current token), so the shim's token is stale;
    - ``"no-operations"`` (state reads): the emulator's page comes back without its
      ``Operations``;
    - ``"loop"`` (state reads): the emulator's page comes back pointing at itself.
    """

    def __init__(self, client: Any, schedule: list[str | None] | None = None) -> None:
        self.trail = _TokenTrail(client)
        super().__init__(self.trail)
        self.schedule: list[str | None] = list(schedule or [])
        self.injected: collections.Counter[str] = collections.Counter()

    def _arm(self, kw: dict[str, Any], *, checkpoint: bool) -> str | None:
        fault = self.schedule.pop(0) if self.schedule else None
        if fault is None or (fault == "lost" and not checkpoint):
            return None
        self.injected[fault] += 1
        if fault == "lost":
            self.lose += 1
        elif fault == "stale":
            self.trail.checkpoint_durable_execution(
                DurableExecutionArn=kw["DurableExecutionArn"],
                CheckpointToken=self.trail.latest(kw["CheckpointToken"]),
                Updates=[],
            )
        elif fault in FAULTS:
            self.inject.append(FAULTS[fault]())
        return fault

    def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        self._arm(kw, checkpoint=True)
        return super().checkpoint_durable_execution(**kw)

    def get_durable_execution_state(self, **kw: Any) -> dict[str, Any]:
        fault = self._arm(kw, checkpoint=False)
        resp = dict(super().get_durable_execution_state(**kw))
        if fault == "no-operations":
            del resp["Operations"]
        elif fault == "loop":
            resp["NextMarker"] = kw["Marker"]
        return resp


class Replays:
    """``before`` of :func:`run`: notes where each invocation starts (in the ledger
    and in the proxy's calls) and, from the replay after the wait on, cuts the
    event to the emulator's first page of ``page`` operations; ``on_replay`` may
    then change the proxy or the event of the first replay: ``on_replay(proxy, event)``."""

    def __init__(self, emulator: Any, proxy: FaultyProxy, page: int | None = None) -> None:
        self.emulator = emulator
        self.proxy = proxy
        self.page = page
        self.ledger_at: dict[int, int] = {}
        self.calls_at: dict[int, int] = {}
        self.operations: dict[int, int] = {}  # operations in each invocation's event
        self.on_replay: Any = None

    def __call__(self, n: int, event: dict[str, Any], handler: Any) -> dict[str, Any]:
        self.ledger_at[n] = len(LEDGER)
        self.calls_at[n] = len(self.proxy.calls)
        self.operations[n] = len(event["InitialExecutionState"]["Operations"])
        if n > 1 and self.page is not None:
            event = first_page(self.emulator.client, event, self.page)
        if n == 2 and self.on_replay is not None:
            event = self.on_replay(self.proxy, event) or event
        return event

    def ledger_of(self, n: int) -> list[str]:
        end = self.ledger_at.get(n + 1, len(LEDGER))
        return LEDGER[self.ledger_at[n] : end]

    def calls_of(self, n: int) -> list[str]:
        end = self.calls_at.get(n + 1, len(self.proxy.calls))
        return [name for name, _ in self.proxy.calls[self.calls_at[n] : end]]


def execute(
    emulator: Any,
    schedule: list[str | None] | None = None,
    n: int = 4,
    *,
    page: int | None = None,
    on_replay: Any = None,
    **handler_kw: Any,
) -> tuple[Run, FaultyProxy, Replays]:
    LEDGER.clear()
    proxy = FaultyProxy(emulator.client, schedule)
    replays = Replays(emulator, proxy, page)
    replays.on_replay = on_replay
    handler_kw.setdefault("retry", RETRY)
    result = run(emulator, flow, {"n": n}, proxy=proxy, before=replays, **handler_kw)
    return result, proxy, replays


def raised(result: Run) -> list[BaseException]:
    """What the invocations raised (the emulator re-invoked after each)."""
    return [e for _, e in result.invocations.errors]


def assert_recorded_once(result: Run, n: int) -> None:
    """The emulator's execution succeeded and its history holds each step's
    START and SUCCEED exactly once."""
    assert result.status == "SUCCEEDED", (result.status, result.error)
    assert json.loads(result.result or "null") == [f"done-s{i}" for i in range(n)]
    history = result.history()
    steps = collections.Counter(
        (e["EventType"], e.get("Name")) for e in history if e["EventType"].startswith("Step")
    )
    assert steps == {
        **{("StepStarted", f"s{i}"): 1 for i in range(n)},
        **{("StepSucceeded", f"s{i}"): 1 for i in range(n)},
    }  # no outcome applied twice, none failed
    results = {
        e["Name"]: json.loads(e["StepSucceededDetails"]["Result"]["Payload"])
        for e in history
        if e["EventType"] == "StepSucceeded"
    }
    assert results == {f"s{i}": f"done-s{i}" for i in range(n)}
    types = collections.Counter(e["EventType"] for e in history)
    assert types["WaitSucceeded"] == 1
    assert types["ExecutionSucceeded"] == 1


# ---------------------------------------------------------------- one fault at a time


@pytest.mark.parametrize("fault", [*FAULTS, "lost"])
def test_a_transient_fault_is_retried_within_the_invocation(emulator, fault):
    result, proxy, _ = execute(emulator, [None, fault, fault])
    assert raised(result) == []
    assert proxy.injected[fault] == 2
    assert LEDGER == ["s0", "s1", "s2", "s3"]  # no step ran twice
    assert len(result.invocations.events) == 2  # the first ran until the wait
    assert_recorded_once(result, 4)


@pytest.mark.parametrize("fault", [*FAULTS, "lost"])
def test_a_persistent_transient_fault_ends_the_invocation_for_lambda_to_retry(emulator, fault):
    result, proxy, _ = execute(emulator, [None, fault, fault, fault])
    [error] = raised(result)
    assert isinstance(error, StoreError)
    assert error.retryable
    assert str(error).startswith("CheckpointDurableExecution failed 3 times with transient errors")
    assert str(error).endswith("the invocation ends so that Lambda retries it")
    assert proxy.injected[fault] == 3
    assert_recorded_once(result, 4)
    # s1's result was lost (unless the emulator applied it): s1 ran again
    assert LEDGER.count("s0") == 1
    assert LEDGER.count("s1") == (1 if fault == "lost" else 2)


def test_a_stale_token_ends_the_invocation_and_the_next_one_completes(emulator):
    result, proxy, _ = execute(emulator, [None, "stale"])
    [error] = raised(result)
    assert isinstance(error, StoreError)
    assert error.retryable
    assert "Invalid checkpoint token" in str(error)  # the emulator's refusal
    assert "the checkpoint token is stale" in str(error)
    assert "Lambda retries it with a fresh token" in str(error)
    assert proxy.injected["stale"] == 1
    assert LEDGER.count("s1") == 2  # its outcome was refused, so it ran again
    assert_recorded_once(result, 4)


def test_a_lost_response_then_a_stale_token_records_nothing_twice(emulator):
    result, proxy, _ = execute(emulator, [None, "lost", "stale"])
    [error] = raised(result)
    assert "the checkpoint token is stale" in str(error)
    assert proxy.injected == {"lost": 1, "stale": 1}
    assert LEDGER.count("s1") == 1  # the emulator had applied its outcome
    assert_recorded_once(result, 4)


# ---------------------------------------------------------------- state pages
#
# The replay after the wait (the second invocation, its event holding the
# EXECUTION, s0, s1 and the wait) gets the emulator's first state page of one
# operation and reads the rest from the emulator one operation a page.

ONE_A_PAGE = BatchLimits(state_page_size=1)


def test_a_state_page_that_is_refused_raises_for_lambda_to_retry(emulator):
    def bad_marker(proxy: FaultyProxy, event: dict[str, Any]) -> dict[str, Any]:
        state = event["InitialExecutionState"]
        assert state["NextMarker"]
        return {**event, "InitialExecutionState": {**state, "NextMarker": "not-a-marker"}}

    result, _, replays = execute(emulator, page=1, on_replay=bad_marker, limits=ONE_A_PAGE)
    assert replays.operations[2] == 4  # the replay after the wait
    [(n, error)] = result.invocations.errors
    assert n == 2
    assert isinstance(error, StoreError)
    assert error.retryable
    # the emulator's own refusal of the marker
    assert str(error).startswith("GetDurableExecutionState failed: 400 (HTTP 400): Invalid marker")
    assert "a page of the execution's state could not be read" in str(error)
    # nothing ran or was sent on a partial log
    assert replays.calls_of(2) == ["GetDurableExecutionState"]
    assert replays.ledger_of(2) == []
    assert replays.ledger_of(3) == ["s2", "s3"]
    assert LEDGER == ["s0", "s1", "s2", "s3"]
    assert_recorded_once(result, 4)


def test_a_state_page_without_operations_raises_instead_of_replaying_a_partial_log(emulator):
    def faulty_page(proxy: FaultyProxy, event: dict[str, Any]) -> None:
        proxy.schedule = ["no-operations"]

    result, proxy, replays = execute(emulator, page=1, on_replay=faulty_page, limits=ONE_A_PAGE)
    [(n, error)] = result.invocations.errors
    assert n == 2
    assert isinstance(error, StoreError)
    assert error.retryable
    assert "without Operations; replaying without it would run recorded operations" in str(error)
    assert proxy.injected["no-operations"] == 1
    assert replays.calls_of(2) == ["GetDurableExecutionState"]
    assert replays.ledger_of(2) == []  # no recorded step ran again
    assert LEDGER == ["s0", "s1", "s2", "s3"]
    assert_recorded_once(result, 4)


def test_state_pages_that_loop_raise_instead_of_spinning(emulator):
    markers: list[str] = []

    def looping_page(proxy: FaultyProxy, event: dict[str, Any]) -> None:
        markers.append(event["InitialExecutionState"]["NextMarker"])
        proxy.schedule = ["loop"]

    result, proxy, replays = execute(emulator, page=1, on_replay=looping_page, limits=ONE_A_PAGE)
    [(n, error)] = result.invocations.errors
    assert n == 2
    assert isinstance(error, StoreError)
    assert error.retryable
    assert proxy.injected["loop"] == 1
    assert f"returned marker {markers[0]!r:.80} twice; the state pages loop" in str(error)
    assert replays.calls_of(2) == ["GetDurableExecutionState"]  # read once, not again
    assert replays.ledger_of(2) == []
    assert_recorded_once(result, 4)


def test_transient_faults_on_state_pages_are_retried(emulator):
    def faulty_pages(proxy: FaultyProxy, event: dict[str, Any]) -> None:
        proxy.schedule = ["throttled", None, "server-500", "read-timeout"]

    result, proxy, replays = execute(emulator, page=1, on_replay=faulty_pages, limits=ONE_A_PAGE)
    assert raised(result) == []
    assert proxy.injected == {"throttled": 1, "server-500": 1, "read-timeout": 1}
    # three pages of one operation, each read from the emulator after its faults
    assert (
        replays.calls_of(2) == ["GetDurableExecutionState"] * 6 + ["CheckpointDurableExecution"] * 2
    )  # then s2's and s3's outcomes
    assert replays.ledger_of(2) == ["s2", "s3"]  # the replay saw every recorded step
    assert LEDGER == ["s0", "s1", "s2", "s3"]
    assert_recorded_once(result, 4)


# ---------------------------------------------------------------- any schedule of faults

_TRANSIENT = frozenset([*FAULTS, "lost"])
_ANY_FAULT = st.one_of(st.none(), st.sampled_from([*FAULTS, "lost", "stale"]))


def failures_at_most(schedule: list[str | None]) -> int:
    """How many invocations ``schedule`` can fail at most: one per stale token,
    one per three transient faults in a row (one call's three attempts)."""
    failures, run_length = 0, 0
    for fault in [*schedule, None]:
        if fault in _TRANSIENT:
            run_length += 1
            continue
        failures += run_length // 3 + (fault == "stale")
        run_length = 0
    return failures


# The emulator fails an execution after 5 invocations in a row failed (as Lambda
# gives up after its retries): schedules that could fail 5 are left out.
_SCHEDULES = st.lists(_ANY_FAULT, max_size=16).filter(lambda s: failures_at_most(s) <= 4)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=_SCHEDULES, page=st.sampled_from([None, 1, 2]))
def test_any_schedule_of_faults_ends_with_each_outcome_recorded_once(emulator, schedule, page):
    result, _, replays = execute(emulator, schedule, n=5, page=page)
    hypothesis.event(f"invocations that failed: {len(raised(result))}")
    assert all(isinstance(e, StoreError) and e.retryable for e in raised(result)), raised(result)
    assert_recorded_once(result, 5)
    assert set(LEDGER) == {f"s{i}" for i in range(5)}
    if page is not None:  # every replay read its state from the emulator's pages
        assert all(
            "GetDurableExecutionState" in replays.calls_of(n)
            for n, ops in replays.operations.items()
            if n > 1 and ops > page
        )


def test_a_payload_over_the_limit_fails_clearly_and_sends_nothing(emulator):
    def big(event):
        yield Step(effect, "s0", name="s0")
        return (yield Step(lambda: "x" * 2_000, name="big"))

    LEDGER.clear()
    result = run(
        emulator,
        big,
        limits=BatchLimits(max_payload_bytes=1_000),
        retry=ApiRetry(max_attempts=1),
    )
    assert result.status == "FAILED", result.execution
    assert result.invocations.outputs[0] is not None
    assert result.invocations.outputs[0]["Status"] == "FAILED"
    assert result.error is not None
    assert (
        "carries a 2,002-byte payload; the checkpoint API accepts at most 1,000"
        in result.error["ErrorMessage"]
    )
    # s0's outcome only; the oversized one (and its START) was never sent
    assert result.proxy.checkpoint_calls == 1
    assert [u["Name"] for u in result.proxy.batches[0]] == ["s0", "s0"]
    assert [e for e in result.history() if e.get("Name") == "big"] == []
    assert result.types() == ["ExecutionStarted", "StepStarted", "StepSucceeded", "ExecutionFailed"]
