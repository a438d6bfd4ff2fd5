"""check_replay and fuzz_replay: what they accept, and the exact counterexamples they report."""

import re

import pytest
from hypothesis import settings
from hypothesis import strategies as st

import examples.nondeterministic_promo as promo
from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    CreateCallback,
    OperationAction,
    OperationType,
    OperationUpdate,
    Parallel,
    RetryPolicy,
    Step,
    Wait,
    WorkflowDefinitionError,
)
from durable_gen.testing import (
    CrashPlan,
    ReplayCheckFailed,
    check_replay,
    fail,
    fuzz_replay,
    leave_pending,
)
from durable_gen.testing._harness import RecordingStore, StepTracker


class FlipClock:
    """A clock that crosses the promotion's end at every reading."""

    def __init__(self):
        self.calls = 0

    def time(self):
        self.calls += 1
        return promo.PROMO_ENDS - 1 if self.calls % 2 else promo.PROMO_ENDS + 1


ORDER = {"sku": "B-42", "price": 100}


def double(x):
    return 2 * x


def flow(event):
    a = yield Step(double, event["n"], name="double")
    yield Wait(seconds=5, name="pause")

    def left():
        return (yield Step(double, 1, name="left"))

    def right():
        return (yield Step(double, 2, name="right"))

    batch = yield Parallel([left, right], name="both")
    handle = yield CreateCallback("approval")
    answer = yield handle
    return [a, batch.get_results(), answer]


def test_a_replay_safe_workflow_passes_every_crash_point():
    report = check_replay(flow, {"n": 3})
    assert report.result.result == [6, [2, 4], "ok"]
    assert (report.checkpoints, report.attempts) == (11, 3)
    assert report.crash_runs == 11 + 3
    assert report.logs_checked == 12  # the empty log and the log after each checkpoint
    assert report.compared == "values"


def test_the_body_reading_the_clock_is_caught_by_the_determinism_check(monkeypatch):
    monkeypatch.setattr(promo, "time", FlipClock())
    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(promo.promo_flow, ORDER)
    assert str(info.value) == (
        "replay check failed for input {'sku': 'B-42', 'price': 100}\n"
        "  crash point: after checkpoint 2 of 6: SUCCEED of Step 'quote'\n"
        "  problem: the workflow body is not deterministic: interpreted twice against the log "
        "recorded up to the crash point, it asked for different things\n"
        "  first difference: command 1: the first time it asked to run attempt 1 of Step "
        "'discount', the second time to run attempt 1 of Step 'charge'"
    )
    e = info.value
    assert e.input == ORDER
    assert e.crash_point == "after checkpoint 2 of 6: SUCCEED of Step 'quote'"


def test_the_body_reading_the_clock_is_caught_by_a_crash_and_resume(monkeypatch):
    monkeypatch.setattr(promo, "time", FlipClock())
    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(promo.promo_flow, ORDER, determinism=False)
    assert str(info.value) == (
        "replay check failed for input {'sku': 'B-42', 'price': 100}\n"
        "  crash point: after checkpoint 3 of 6: START of Step 'discount'\n"
        "  problem: the resumed run raised NonDeterminismError\n"
        "  first difference: at the 2nd operation of the root context, the log recorded "
        "Step 'discount'; the workflow yielded Step 'charge'"
    )


def test_reading_the_clock_in_a_step_is_replay_safe(monkeypatch):
    monkeypatch.setattr(promo, "time", FlipClock())
    report = check_replay(promo.promo_flow_fixed, ORDER)
    # two uninterrupted runs took different branches (the step read another time):
    # crashed runs are checked for errors, re-runs and determinism only
    assert report.compared == "nothing"
    assert report.crash_runs == report.checkpoints + report.attempts


def test_fuzz_replay_shrinks_to_a_minimal_input(monkeypatch):
    monkeypatch.setattr(promo, "time", FlipClock())
    orders = st.fixed_dictionaries({"sku": st.text(), "price": st.integers(0, 1000)})
    with pytest.raises(ReplayCheckFailed) as info:
        fuzz_replay(promo.promo_flow, orders, settings=settings(database=None, max_examples=20))
    assert info.value.input == {"sku": "", "price": 0}
    assert info.value.problem.startswith("the workflow body is not deterministic")


SEEN: dict[str, bool] = {}


def remember(name):
    SEEN[name] = True  # a side channel from a step to the body: not in the log
    return name


def side_channel(_):
    """Replays differently: on replay the step does not run, so the flag is not set."""
    a = yield Step(remember, "a", name="a")
    if SEEN.pop("a", False):
        b = yield Step(remember, "b", name="b")
        return [a, b]
    return [a]


def test_a_side_channel_from_a_step_to_the_body_is_caught():
    SEEN.clear()
    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(side_channel, None)
    assert str(info.value) == (
        "replay check failed for input None\n"
        "  crash point: after checkpoint 3 of 4: START of Step 'b'\n"
        "  problem: the resumed run raised NonDeterminismError\n"
        "  first difference: at the 2nd operation of the root context, the log recorded "
        "Step 'b'; the workflow returned after 1 operation"
    )


CALLS: list[str] = []


def record(name):
    CALLS.append(name)
    return name


def counts_calls(_):
    CALLS.clear()
    a = yield Step(record, "a", name="a")
    return [a, len(CALLS)]  # 1 when the step ran in this invocation, 0 on replay


def test_a_result_that_differs_after_a_crash_is_reported():
    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(counts_calls, None)
    assert str(info.value) == (
        "replay check failed for input None\n"
        "  crash point: after checkpoint 2 of 2: SUCCEED of Step 'a'\n"
        "  problem: the resumed run ended SUCCEEDED with ['a', 0], the uninterrupted run "
        "SUCCEEDED with ['a', 1]"
    )


def flaky(_):
    return (
        yield Step(
            double, 4, name="charge", retry=RetryPolicy.none(), semantics=AT_MOST_ONCE_PER_RETRY
        )
    )


def test_an_interrupted_at_most_once_attempt_is_a_failed_attempt_not_a_counterexample():
    report = check_replay(flaky, None)
    assert report.result.result == 8
    assert (report.checkpoints, report.attempts) == (2, 1)


def test_callbacks_answered_by_the_policy():
    def approval(_):
        handle = yield CreateCallback("approval")
        try:
            return (yield handle)
        except Exception as e:
            return f"rejected: {e}"

    report = check_replay(approval, None, callbacks=lambda cb: fail("no", error_type="Nope"))
    # AWS's CallbackExternalError; the external system's "Nope" is on the operation
    assert report.result.result == "rejected: callback 'approval' failed: CallbackExternalError: no"


def test_a_workflow_left_waiting_is_reported():
    def approval(_):
        handle = yield CreateCallback("approval")
        return (yield handle)

    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(approval, None, callbacks=leave_pending)
    assert str(info.value) == (
        "replay check failed for input None\n"
        "  problem: the uninterrupted run raised StuckError: the execution waits on "
        "CreateCallback 'approval' and the callback policy completes none of them; give "
        "check_replay a policy that answers them (callbacks=...)"
    )


def test_a_step_whose_success_is_recorded_running_again_is_a_violation():
    store = RecordingStore()
    store.create("ex", "null", 0)

    update = OperationUpdate(
        id="s1",
        type=OperationType.STEP,
        action=OperationAction.SUCCEED,
        name="charge",
        sub_type="Step",
        payload="1",
    )
    store.checkpoint("ex", [update], 0, durable=True)
    tracker = StepTracker(store)
    tracker.on_step_attempt_start("ex", operation_id="s1", name="charge", attempt=2)
    assert tracker.violations == [
        "Step 'charge' ran again (attempt 2) although its success was recorded"
    ]


def test_check_replay_wants_a_generator_function():
    with pytest.raises(
        WorkflowDefinitionError,
        match=r"^check_replay's workflow must be a generator function",
    ):
        check_replay(double, 1)


def test_an_input_that_cannot_be_stored_is_reported():
    with pytest.raises(ReplayCheckFailed, match=re.escape("the input cannot be stored")):
        check_replay(flow, object())


def test_several_crashes_in_one_run_are_reported_in_order():
    SEEN.clear()
    plan = CrashPlan(after_checkpoints=frozenset({1, 4}), during_attempts=frozenset({2}))
    with pytest.raises(ReplayCheckFailed) as info:
        check_replay(side_channel, None, crash_plans=[plan], determinism=False)
    assert info.value.crash_point == (
        "after checkpoint 1 of 4: START of Step 'a'; "
        "then during step attempt 2: attempt 1 of Step 'b'"
    )


def test_crash_plans_of_several_crashes_pass_on_a_safe_workflow():
    plans = [CrashPlan(after_checkpoints=frozenset({1, 3, 5}), during_attempts=frozenset({2, 4}))]
    report = check_replay(flow, {"n": 1}, crash_plans=plans)
    assert report.crash_runs == 1
    assert report.result.result == [2, [2, 4], "ok"]
