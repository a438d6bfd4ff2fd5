"""The replay-aware logger and lifecycle hooks."""

import logging

import pytest

from durable_gen import (
    Hooks,
    InMemoryEngine,
    MemoryStore,
    Parallel,
    RetryPolicy,
    Step,
    VirtualClock,
    Wait,
    current_attempt,
    get_logger,
)
from durable_gen._core.serdes import DEFAULT_SERDES
from durable_gen._engine.driver import run_invocation

log = get_logger("tests.durable")


@pytest.fixture
def records():
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Collect()
    logger = logging.getLogger("tests.durable")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield seen
    logger.removeHandler(handler)


def flaky(x):
    log.info("attempt %s", current_attempt())
    if current_attempt() == 1:
        raise ConnectionError("blip")
    return x


def flow(_):
    log.info("start")
    a = yield Step(flaky, 1, name="flaky", retry=RetryPolicy(initial_delay=1, max_delay=1))
    log.info("after flaky %s", a)
    yield Wait(seconds=5)
    log.info("after wait")
    return a


def test_each_workflow_line_is_logged_once_despite_replays(records):
    result = InMemoryEngine().run(flow)
    assert result.invocations == 3
    messages = [r.getMessage() for r in records]
    assert messages == ["start", "attempt 1", "attempt 2", "after flaky 1", "after wait"]


def test_records_carry_durable_context(records):
    result = InMemoryEngine().run(flow)
    step_lines = [r for r in records if r.getMessage().startswith("attempt")]
    assert [r.attempt for r in step_lines] == [1, 2]
    assert {r.operation_name for r in step_lines} == {"flaky"}
    assert all(r.execution_id == result.execution_id for r in records)
    body_line = next(r for r in records if r.getMessage() == "start")
    assert body_line.operation_name == "the root context"
    assert body_line.attempt is None


def test_logging_outside_any_execution_works(records):
    log.info("plain")
    assert records[0].execution_id is None


class Recorder(Hooks):
    def __init__(self):
        self.calls = []

    def on_invocation_start(self, execution_id, *, first):
        self.calls.append(("invocation_start", first))

    def on_invocation_end(self, execution_id, *, status, error):
        self.calls.append(("invocation_end", status))

    def on_operation_start(self, execution_id, update):
        self.calls.append(("op_start", update.name))

    def on_operation_end(self, execution_id, update):
        self.calls.append(("op_end", update.name, update.action.value))

    def on_step_attempt_start(self, execution_id, *, operation_id, name, attempt):
        self.calls.append(("attempt_start", name, attempt))

    def on_step_attempt_end(self, execution_id, *, operation_id, name, attempt, succeeded, error):
        self.calls.append(("attempt_end", name, attempt, succeeded))


class Broken(Hooks):
    def on_invocation_start(self, execution_id, *, first):
        raise RuntimeError("hook bug")

    def on_step_attempt_end(self, execution_id, **kwargs):
        raise RuntimeError("hook bug")


def drive_with_hooks(workflow, hooks):
    store = MemoryStore()
    clock = VirtualClock()
    store.create("ex", DEFAULT_SERDES.serialize(None), clock.now())
    outcomes = []
    for _ in range(10):
        store.fire_timers("ex", clock.now())
        outcome = run_invocation(workflow, "ex", store, clock.now, hooks=hooks)
        outcomes.append(outcome)
        if outcome.status != "PENDING":
            return outcomes
        clock.sleep_until(store.next_timer("ex"))
    raise AssertionError("did not finish")


def test_hooks_see_invocations_operations_and_attempts():
    rec = Recorder()
    outcomes = drive_with_hooks(flow, [rec])
    assert outcomes[-1].value == 1
    assert rec.calls == [
        ("invocation_start", True),
        ("op_start", "flaky"),
        ("attempt_start", "flaky", 1),
        ("attempt_end", "flaky", 1, False),
        ("invocation_end", "PENDING"),
        ("invocation_start", False),
        ("op_start", "flaky"),
        ("attempt_start", "flaky", 2),
        ("attempt_end", "flaky", 2, True),
        ("op_end", "flaky", "SUCCEED"),
        ("op_start", None),  # the wait
        ("invocation_end", "PENDING"),
        ("invocation_start", False),
        ("invocation_end", "SUCCEEDED"),
    ]


def test_a_raising_hook_never_changes_the_outcome(caplog):
    def wf(_):
        r = yield Parallel([lambda: (yield Step(flaky, 2, retry=RetryPolicy.none()))])
        return r.failure_count

    with caplog.at_level(logging.ERROR, logger="durable_gen.hooks"):
        outcomes = drive_with_hooks(wf, [Broken()])
    assert outcomes[-1].status == "SUCCEEDED"
    assert outcomes[-1].value == 1
    assert any("hook bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)
