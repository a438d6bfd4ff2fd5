"""WorkflowRunner: callbacks by name or id, virtual time, invoke targets, tree, history."""

import pytest

from durable_gen import (
    CallbackFailedError,
    CreateCallback,
    Invoke,
    Parallel,
    RetryPolicy,
    Step,
    ValidationError,
    Wait,
    WaitForCallback,
)
from durable_gen.testing import WorkflowRunner
from examples.human_approval import expense_flow


def test_a_callback_completed_by_name(durable_runner):
    result = durable_runner.run(expense_flow, {"amount": 120})
    assert result.status == "RUNNING"
    assert [op.name for op in durable_runner.pending_callbacks()] == [
        "manager-approval create callback id"
    ]
    result = durable_runner.succeed_callback("manager-approval", '{"approved": true}')
    assert result.status == "SUCCEEDED"
    assert result.result == {"status": "paid", "receipt": "paid 120"}
    assert durable_runner.format_tree() == (
        "WaitForCallback 'manager-approval' SUCCEEDED\n"
        "  CreateCallback 'manager-approval create callback id' SUCCEEDED\n"
        "  Step 'manager-approval submitter' SUCCEEDED\n"
        "Step 'pay' SUCCEEDED"
    )
    assert [(c.name, c.attempt) for c in durable_runner.step_calls] == [
        ("manager-approval submitter", 1),
        ("pay", 1),
    ]


def test_a_callback_failed_by_id():
    runner = WorkflowRunner()
    runner.run(expense_flow, {"amount": 7})
    callback_id = runner.callback_id("manager-approval create callback id")
    result = runner.fail_callback(callback_id, "over budget")
    assert result.result == {"status": "rejected", "reason": "over budget"}
    assert runner.event_types()[-4:] == [
        "CallbackFailed",
        "ContextFailed",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]


def approval_with_heartbeat(_):
    handle = yield CreateCallback("approval", heartbeat_timeout=60)
    try:
        return (yield handle)
    except CallbackFailedError as e:
        return f"failed: {e.error_message}"


def test_heartbeats_keep_a_callback_alive_while_time_passes():
    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(approval_with_heartbeat).status == "RUNNING"
    runner.clock.advance(50)
    runner.heartbeat_callback("approval")
    assert runner.advance(50).status == "RUNNING"  # 100 s in, 50 s after the heartbeat
    assert runner.succeed_callback("approval", "yes").result == "yes"


def test_time_moves_only_when_told_without_auto_advance():
    def flow(_):
        yield Wait(seconds=30, name="cool-off")
        return "done"

    runner = WorkflowRunner(auto_advance=False)
    assert runner.run(flow).status == "RUNNING"
    assert runner.advance(29).status == "RUNNING"
    assert runner.operation("cool-off").status.value == "STARTED"
    result = runner.advance(1)
    assert result.status == "SUCCEEDED"
    assert runner.event_types() == [
        "ExecutionStarted",
        "WaitStarted",
        "InvocationCompleted",
        "InvocationCompleted",
        "WaitSucceeded",
        "InvocationCompleted",
        "ExecutionSucceeded",
    ]


def child(payload):
    return (yield Step(str.upper, payload, name="shout"))


def test_invoke_targets_and_the_operation_tree():
    def parent(_):
        a = yield Invoke("child", "hi", name="call-child")

        def left():
            return (yield Step(lambda: 1, name="one", retry=RetryPolicy.none()))

        batch = yield Parallel([left], name="fan")
        return [a, batch.get_results()]

    runner = WorkflowRunner()
    runner.register("child", child)
    result = runner.run(parent)
    assert result.result == ["HI", [1]]
    roots = runner.tree()
    assert [n.label for n in roots] == ["Invoke 'call-child' SUCCEEDED", "Parallel 'fan' SUCCEEDED"]
    fan = roots[1]
    assert fan.find("one").label == "Step 'one' SUCCEEDED"
    assert [n.label for n in fan.walk()] == [
        "Parallel 'fan' SUCCEEDED",
        "ParallelBranch 'parallel-branch-0' SUCCEEDED",
        "Step 'one' SUCCEEDED",
    ]
    assert runner.history()[0]["EventType"] == "ExecutionStarted"


def test_mistakes_are_explained():
    runner = WorkflowRunner()
    with pytest.raises(ValidationError, match=r"^no execution yet: call runner.run"):
        runner.result  # noqa: B018

    def flow(_):
        return (yield WaitForCallback(lambda cid: None, "approval"))

    runner.run(flow)
    with pytest.raises(
        ValidationError,
        match=r"^no callback named 'nope' \(callbacks: 'approval create callback id'\)$",
    ):
        runner.succeed_callback("nope")
    with pytest.raises(ValidationError, match=r"^no operation named 'x' \(named operations: "):
        runner.operation("x")


def test_the_runner_meters_the_execution():
    from durable_gen import RetryPolicy, Step

    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("once")
        return "ok"

    def flow(event):
        return (yield Step(flaky, name="flaky", retry=RetryPolicy(max_attempts=3)))

    runner = WorkflowRunner()
    assert runner.run(flow, None).status == "SUCCEEDED"
    meter = runner.meter(retention_days=2)
    # Step: one failed (retried) attempt + one success; Execution: 1
    assert meter.operations_of("Step") == 2
    assert meter.operations == 3
    assert meter.bytes_of("Execution") == len("null") + len('"ok"')
    assert meter.retained_byte_days == meter.bytes_persisted * 2
