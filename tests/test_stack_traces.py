"""A failed step's stack trace shows the user's frames, not durable_gen's own plumbing."""

from __future__ import annotations

from durable_gen import InMemoryEngine, RetryPolicy, Step


def charge(amount: int) -> None:
    raise ValueError(f"card declined for {amount}")


def flow(_):
    return (yield Step(charge, 42, name="charge", retry=RetryPolicy.none()))


def test_durable_gens_frames_are_left_out_of_a_step_error():
    result = InMemoryEngine().run(flow)
    assert result.status == "FAILED"
    trace = result.operations[0].error.stack_trace
    assert trace is not None
    assert any("in charge" in line for line in trace)
    assert not [line for line in trace if "durable_gen/" in line.replace("\\", "/")]
