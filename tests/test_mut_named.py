"""The two named mutants of issue 29: a retry that runs early, a callback that times out late.

Each test drives the virtual clock to one millisecond before the deadline and then to
the deadline itself, so a due-time comparison flipped, a delay or timeout computed
off by a factor, or a deadline moved by one interval all fail it.
``python -m mutation named`` applies each such mutation to a copy of the tree and
shows that these tests fail on it (mutation/README.md).
"""

from __future__ import annotations

from durable_gen import CreateCallback, RetryPolicy, Step
from durable_gen._core.errors import CallbackTimeoutError
from durable_gen._core.log import OperationStatus
from durable_gen.testing import WorkflowRunner

DELAY = 10  # seconds
TIMEOUT = 30  # seconds
ONE_MS = 0.001


def test_a_retry_runs_at_its_recorded_delay_and_not_one_ms_before():
    runner = WorkflowRunner(auto_advance=False)
    attempts_at: list[int] = []

    def flaky() -> str:
        attempts_at.append(runner.clock.now())
        if len(attempts_at) == 1:
            raise RuntimeError("fails once")
        return "ok"

    def flow(_):
        return (yield Step(flaky, name="flaky", retry=RetryPolicy.fixed(DELAY)))

    assert runner.run(flow).status == "RUNNING"
    assert len(attempts_at) == 1
    op = runner.operation("flaky")
    assert op.status is OperationStatus.PENDING
    assert op.next_attempt_timestamp == attempts_at[0] + DELAY * 1000

    assert runner.advance(DELAY - ONE_MS).status == "RUNNING"
    assert len(attempts_at) == 1, "the second attempt ran before its delay"
    assert runner.operation("flaky").status is OperationStatus.PENDING

    result = runner.advance(ONE_MS)
    assert len(attempts_at) == 2, "the second attempt did not run at its delay"
    assert attempts_at[1] - attempts_at[0] == DELAY * 1000
    assert result.status == "SUCCEEDED"
    assert result.result == "ok"


def test_a_callback_times_out_at_its_timeout_and_not_one_ms_before():
    def flow(_):
        handle = yield CreateCallback("approval", timeout=TIMEOUT)
        try:
            return (yield handle)
        except CallbackTimeoutError as e:
            return f"timed out: {e.error_type}"

    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(flow).status == "RUNNING"
    started = runner.clock.now()

    assert runner.advance(TIMEOUT - ONE_MS).status == "RUNNING"
    assert runner.clock.now() - started == TIMEOUT * 1000 - 1
    assert [op.name for op in runner.pending_callbacks()] == ["approval"]
    assert runner.operation("approval").status is OperationStatus.STARTED

    result = runner.advance(ONE_MS)
    assert runner.pending_callbacks() == []
    assert runner.operation("approval").status is OperationStatus.TIMED_OUT
    assert result.status == "SUCCEEDED"
    # the error a workflow catches is AWS's kind; the service's own type stays on the op
    assert (
        result.result
        == "timed out: aws_durable_execution_sdk_python.exceptions.CallbackTimeoutError"
    )
    assert runner.operation("approval").error.type == "Callback.Timeout"


def test_auto_advance_wakes_a_retry_exactly_at_its_delay():
    # With auto_advance the engine sleeps until the store's next timer: a wake-up
    # deadline computed late moves the second attempt off its recorded delay.
    runner = WorkflowRunner()
    attempts_at: list[int] = []

    def flaky() -> str:
        attempts_at.append(runner.clock.now())
        if len(attempts_at) == 1:
            raise RuntimeError("fails once")
        return "ok"

    def flow(_):
        return (yield Step(flaky, name="flaky", retry=RetryPolicy.fixed(DELAY)))

    assert runner.run(flow).result == "ok"
    assert [t - attempts_at[0] for t in attempts_at] == [0, DELAY * 1000]


def test_the_store_wakes_a_pending_callback_exactly_at_its_timeout():
    # On a virtual clock the engines never sleep through a pending callback, but a
    # durable engine on the real clock sleeps until the store's next timer: a deadline
    # computed late would time the callback out late.
    def flow(_):
        handle = yield CreateCallback("approval", timeout=TIMEOUT, heartbeat_timeout=2 * TIMEOUT)
        return (yield handle)

    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(flow).status == "RUNNING"
    op = runner.operation("approval")
    assert runner.store.next_timer(runner.execution_id) == op.start_timestamp + TIMEOUT * 1000


def test_the_store_makes_a_retry_ready_exactly_at_its_due_time():
    # The interpreter also runs a PENDING step whose due time has passed, so the
    # service's own comparison is pinned here, at the store.
    runner = WorkflowRunner(auto_advance=False)

    def flaky() -> str:
        raise RuntimeError("always")

    def flow(_):
        return (yield Step(flaky, name="flaky", retry=RetryPolicy.fixed(DELAY)))

    assert runner.run(flow).status == "RUNNING"
    runner.clock.advance(DELAY - ONE_MS)
    runner.store.fire_timers(runner.execution_id, runner.clock.now())
    assert runner.operation("flaky").status is OperationStatus.PENDING
    runner.clock.advance(ONE_MS)
    runner.store.fire_timers(runner.execution_id, runner.clock.now())
    assert runner.operation("flaky").status is OperationStatus.READY
