"""AWS's telemetry requirements' workflows, ported to durable_gen generators.

Each requirement's ``Input.scenario`` names what its handler does (the suites share
scenarios); the operation names are the ones the requirements select spans by.
``TARGETS`` are the functions the chained-invoke scenarios call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from typing import Any

from durable_gen import (
    ChildContext,
    Invoke,
    Jitter,
    Map,
    Parallel,
    ParallelBranch,
    RetryPolicy,
    Step,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitStrategy,
)
from durable_gen import current_attempt as _current_attempt

Gen = Generator[Any, Any, Any]
NO_RETRY = RetryPolicy.none()
ONE_RETRY = RetryPolicy(max_attempts=2, initial_delay=1, jitter=Jitter.NONE)
LONG_WAIT_SECONDS = 3600  # "interrupted": the execution times out first


class Intentional(Exception):
    """The failure a scenario raises on purpose."""


def ok(value: Any = "ok") -> Any:
    return value


def boom() -> Any:
    raise Intentional("intentional failure")


def fail_first_attempt() -> str:
    if _current_attempt() == 1:
        raise Intentional("first attempt fails")
    return "recovered"


def success(event: Any) -> Gen:
    return (yield Step(ok, name="otel-success"))


def wait_resume(event: Any) -> Gen:
    yield Wait(seconds=1, name="otel-wait")
    return (yield Step(ok, name="otel-after-resume"))


def retry(event: Any) -> Gen:
    return (yield Step(fail_first_attempt, name="otel-retry", retry=ONE_RETRY))


def terminal_failure(event: Any) -> Gen:
    return (yield Step(boom, name="otel-terminal-failure", retry=NO_RETRY))


def _child_step() -> Gen:
    return (yield Step(ok, name="otel-child-step"))


def child_context(event: Any) -> Gen:
    return (yield ChildContext(_child_step, name="otel-child-context"))


def _branch(step_name: str) -> Callable[[], Gen]:
    def branch() -> Gen:
        return (yield Step(ok, step_name, name=step_name))

    return branch


def parallel_hierarchy(event: Any) -> Gen:
    result = yield Parallel(
        [
            ParallelBranch(_branch("otel-parallel-step-a"), name="otel-parallel-branch-a"),
            ParallelBranch(_branch("otel-parallel-step-b"), name="otel-parallel-branch-b"),
        ],
        name="otel-parallel",
        max_concurrency=1,
    )
    return result.get_results()


def _map_item(item: Any, index: int) -> Gen:
    return (yield Step(ok, item, name=f"otel-map-step-{index}"))


def map_hierarchy(event: Any) -> Gen:
    result = yield Map(
        ["a", "b"],
        _map_item,
        name="otel-map",
        max_concurrency=1,
        item_namer=lambda _item, index: f"otel-map-iteration-{index}",
    )
    return result.get_results()


def handled_failure(event: Any) -> Gen:
    with contextlib.suppress(Exception):
        yield Step(boom, name="otel-handled-failure", retry=NO_RETRY)
    return (yield Step(ok, "recovered", name="otel-recovery-step"))


def _increment(state: int) -> int:
    return state + 1


def wait_for_condition(event: Any) -> Gen:
    strategy = WaitStrategy(should_continue=lambda state: state < 2, initial_delay=1)
    return (yield WaitForCondition(_increment, 0, strategy, name="otel-condition"))


def _submit(callback_id: str) -> None:
    return None


def wait_for_callback(event: Any) -> Gen:
    return (yield WaitForCallback(_submit, name="otel-callback"))


def _echo_target(event: Any) -> Gen:
    return event
    yield  # a generator function: the target runs no operation


def _failing_target(event: Any) -> Gen:
    if event is not None:
        raise Intentional("the invoked function fails")
    yield Step(ok)  # never reached


def _slow_target(event: Any) -> Gen:
    yield Wait(seconds=int(event["delay_seconds"]), name="otel-target-wait")
    return "target-complete"


def chained_invoke(event: Any) -> Gen:
    return (yield Invoke("otel-target", "payload", name="otel-invoke"))


def _failing_child() -> Gen:
    raise Intentional("the child context fails")
    yield  # a generator function


def child_context_failure(event: Any) -> Gen:
    return (yield ChildContext(_failing_child, name="otel-failed-child-context"))


def _failing_branch() -> Gen:
    raise Intentional("the branch fails")
    yield


def parallel_failure(event: Any) -> Gen:
    result = yield Parallel(
        [ParallelBranch(_failing_branch, name="otel-failed-parallel-branch")],
        name="otel-failed-parallel",
    )
    result.throw_if_error()
    return result.get_results()


def _failing_item(item: Any, index: int) -> Gen:
    raise Intentional("the iteration fails")
    yield


def map_failure(event: Any) -> Gen:
    result = yield Map(
        ["x"],
        _failing_item,
        name="otel-failed-map",
        item_namer=lambda _item, index: f"otel-failed-map-iteration-{index}",
    )
    result.throw_if_error()
    return result.get_results()


def wait_interrupted(event: Any) -> Gen:
    yield Wait(seconds=LONG_WAIT_SECONDS, name="otel-interrupted-wait")
    return "never"


def _failing_check(state: int) -> int:
    raise Intentional("the condition check fails")


def wait_for_condition_failure(event: Any) -> Gen:
    strategy = WaitStrategy(should_continue=lambda state: state < 2, initial_delay=1)
    return (
        yield WaitForCondition(
            _failing_check, 0, strategy, name="otel-failed-condition", retry=NO_RETRY
        )
    )


def wait_for_callback_failure(event: Any) -> Gen:
    return (yield WaitForCallback(_submit, name="otel-failed-callback", retry=NO_RETRY))


def chained_invoke_failure(event: Any) -> Gen:
    return (yield Invoke("otel-failing-target", "payload", name="otel-failed-invoke"))


def execution_failure(event: Any) -> Gen:
    raise Intentional("the handler fails before any operation")
    yield


def _virtual_body() -> Gen:
    return "virtual-complete"
    yield


def virtual_context(event: Any) -> Gen:
    return (yield ChildContext(_virtual_body, name="otel-virtual-context", virtual=True))


def long_wait(event: Any) -> Gen:
    yield Wait(seconds=int(event["delay_seconds"]), name="otel-long-wait")
    return (yield Step(ok, name="otel-after-long-wait"))


def long_retry(event: Any) -> Gen:
    policy = RetryPolicy(
        max_attempts=2, initial_delay=max(1, int(event["delay_seconds"])), jitter=Jitter.NONE
    )
    return (yield Step(fail_first_attempt, name="otel-long-retry", retry=policy))


def long_callback(event: Any) -> Gen:
    return (yield WaitForCallback(_submit, name="otel-long-callback"))


def long_chained_invoke(event: Any) -> Gen:
    return (
        yield Invoke(
            "otel-slow-target", {"delay_seconds": event["delay_seconds"]}, name="otel-long-invoke"
        )
    )


SCENARIOS: dict[str, Callable[[Any], Gen]] = {
    "success": success,
    "wait-resume": wait_resume,
    "retry": retry,
    "terminal-failure": terminal_failure,
    "child-context": child_context,
    "parallel-hierarchy": parallel_hierarchy,
    "map-hierarchy": map_hierarchy,
    "handled-failure": handled_failure,
    "wait-for-condition": wait_for_condition,
    "wait-for-callback": wait_for_callback,
    "chained-invoke": chained_invoke,
    "child-context-failure": child_context_failure,
    "parallel-failure": parallel_failure,
    "map-failure": map_failure,
    "wait-interrupted": wait_interrupted,
    "wait-for-condition-failure": wait_for_condition_failure,
    "wait-for-callback-failure": wait_for_callback_failure,
    "chained-invoke-failure": chained_invoke_failure,
    "execution-failure": execution_failure,
    "virtual-context": virtual_context,
    "long-wait": long_wait,
    "long-retry": long_retry,
    "long-callback": long_callback,
    "long-chained-invoke": long_chained_invoke,
}

TARGETS: dict[str, Callable[[Any], Gen]] = {
    "otel-target": _echo_target,
    "otel-failing-target": _failing_target,
    "otel-slow-target": _slow_target,
}
