"""The AWS Durable Execution SDK for Python (3.0.0) and its testing kit (1.4.0).

Every harness runs the SDK's own ``@durable_execution`` handler, unmodified, on the
same workload as durable_gen's: steps whose body is ``noop(i)`` (return the
argument), at-least-once (the default of both), named ``"s"``, summed by the
handler; results serialized by each library's default serdes.

* Replay (:func:`replay_invocation`): the recorded state of an execution that ran N
  steps and is suspended at a 60-second Wait (EXECUTION + N SUCCEEDED steps + a
  STARTED wait whose end is an hour away) is handed to the handler as the
  ``DurableExecutionInvocationInputWithClient`` object the testing kit itself
  passes, with the operations already parsed (durable_gen's replay also starts
  from parsed operations in its store) and an in-process fake service client that
  answers every checkpoint at once. What is timed is one call of the handler: the
  SDK's full per-invocation path (state setup, its checkpoint thread, replaying N
  steps, finding the wait pending, suspending). The harness checks that no step
  ran and the handler returned PENDING, which proves the synthetic state has the
  SDK's operation ids and shapes. The state is built directly instead of by a
  forward run because the testing kit's runner finishes the wait (skip_time) and
  a forward run of 10,000 steps through it takes tens of seconds.
* Forward (:func:`forward_runner`): ``DurableFunctionTestRunner(handler,
  skip_time=True)`` -- the SDK's local test runner -- runs N steps start to
  finish; one ``runner.run()`` is timed (the runner is built once, outside).
* Fan-out (:func:`map_runner`): the same runner, ``context.map`` over 1,000 items
  with ``MapConfig(max_concurrency=10)``, each item one ``context.step``.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
from typing import Any

from . import PeerUnavailable, noop

NAME = "AWS SDK"

_ARN = "arn:aws:lambda:us-west-2:123456789012:function:bench:$LATEST/durable-execution/bench/inv-1"
_EXECUTION_ID = _ARN.rsplit("/", 1)[-1]


def _sdk() -> Any:
    try:
        import aws_durable_execution_sdk_python as sdk
        import aws_durable_execution_sdk_python.config as config
        import aws_durable_execution_sdk_python.execution as execution
        import aws_durable_execution_sdk_python.lambda_service as ls
    except ImportError as e:
        raise PeerUnavailable(
            f"aws-durable-execution-sdk-python is not installed ({e}); pip install -e '.[bench]'"
        ) from e
    return sdk, config, execution, ls


def _runner_cls() -> Any:
    _sdk()
    try:
        from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner
    except ImportError as e:
        raise PeerUnavailable(
            f"aws-durable-execution-sdk-python-testing is not installed ({e}); "
            "pip install -e '.[bench]'"
        ) from e
    return DurableFunctionTestRunner


def version() -> str:
    from importlib.metadata import version as v

    return f"aws-durable-execution-sdk-python {v('aws-durable-execution-sdk-python')}"


def _op_id(n: int) -> str:
    # The SDK's root-context id for the n-th operation (1-based), see AWS_PROTOCOL.md §2.
    return hashlib.blake2b(str(n).encode()).hexdigest()[:64]


def steps_then_wait_handler(calls: list[int] | None = None) -> Any:
    """The SDK twin of ``benchmarks.replay.workflow``: N steps, then a 60 s wait."""
    sdk, config, _, _ = _sdk()

    def body(i: int) -> int:
        if calls is not None:
            calls.append(i)
        return noop(i)

    @sdk.durable_execution
    def handler(event: Any, context: Any) -> int:
        total = 0
        for i in range(event["n"]):
            total += context.step(lambda _, i=i: body(i), name="s")
        context.wait(config.Duration.from_seconds(60))
        return total

    return handler


def steps_handler() -> Any:
    """N steps start to finish (the forward scenario)."""
    sdk, _, _, _ = _sdk()

    @sdk.durable_execution
    def handler(event: Any, context: Any) -> int:
        total = 0
        for i in range(event["n"]):
            total += context.step(lambda _, i=i: noop(i), name="s")
        return total

    return handler


def map_handler(max_concurrency: int) -> Any:
    """Map over ``event["n"]`` items, each item one step (the fan-out scenario)."""
    sdk, config, _, _ = _sdk()

    def item(ctx: Any, x: int, index: int, items: Any) -> int:
        return ctx.step(lambda _: noop(x), name="s")

    @sdk.durable_execution
    def handler(event: Any, context: Any) -> int:
        result = context.map(
            list(range(event["n"])), item, config=config.MapConfig(max_concurrency=max_concurrency)
        )
        return sum(result.get_results())

    return handler


class _FakeClient:
    """An in-process stand-in for the durable service that answers at once.

    On replay the SDK checkpoints nothing (the wait is already STARTED); the
    fake counts calls anyway so the harness can assert that.
    """

    def __init__(self) -> None:
        self.calls = 0
        self._tokens = itertools.count()

    def checkpoint(self, durable_execution_arn, checkpoint_token, updates, client_token):
        _, _, _, ls = _sdk()
        self.calls += 1
        return ls.CheckpointOutput(
            checkpoint_token=f"t{next(self._tokens)}",
            new_execution_state=ls.CheckpointUpdatedExecutionState(),
        )

    def get_execution_state(
        self, durable_execution_arn, checkpoint_token, next_marker, max_items=1000
    ):
        _, _, _, ls = _sdk()
        return ls.StateOutput()


def recorded_operations(n: int) -> list[Any]:
    """The SDK's recorded state after N steps and the start of a 60 s wait."""
    _, _, _, ls = _sdk()
    now = datetime.datetime.now(datetime.UTC)
    ops = [
        ls.Operation(
            operation_id=_EXECUTION_ID,
            operation_type=ls.OperationType.EXECUTION,
            status=ls.OperationStatus.STARTED,
            start_timestamp=now,
            execution_details=ls.ExecutionDetails(input_payload=json.dumps({"n": n})),
        )
    ]
    for i in range(n):
        ops.append(
            ls.Operation(
                operation_id=_op_id(i + 1),
                operation_type=ls.OperationType.STEP,
                status=ls.OperationStatus.SUCCEEDED,
                name="s",
                sub_type="Step",
                start_timestamp=now,
                end_timestamp=now,
                step_details=ls.StepDetails(attempt=1, result=json.dumps(i)),
            )
        )
    ops.append(
        ls.Operation(
            operation_id=_op_id(n + 1),
            operation_type=ls.OperationType.WAIT,
            status=ls.OperationStatus.STARTED,
            sub_type="Wait",
            start_timestamp=now,
            wait_details=ls.WaitDetails(scheduled_end_timestamp=now + datetime.timedelta(hours=1)),
        )
    )
    return ops


def replay_invocation(n: int, operations: list[Any] | None = None) -> Any:
    """Return a zero-argument callable: one replaying invocation of N steps + a wait.

    ``operations`` (as :func:`recorded_operations` makes them) defaults to N's.
    """
    _, _, execution, _ = _sdk()
    calls: list[int] = []
    handler = steps_then_wait_handler(calls)
    if operations is None:
        operations = recorded_operations(n)
    state = execution.InitialExecutionState(operations=operations, next_marker="")

    def run() -> None:
        client = _FakeClient()
        event = execution.DurableExecutionInvocationInputWithClient(
            durable_execution_arn=_ARN,
            checkpoint_token="t",
            initial_execution_state=state,
            service_client=client,
        )
        out = handler(event, None)
        if out.get("Status") != "PENDING" or calls or client.calls:
            raise AssertionError(
                f"AWS SDK replay did not replay: {out!r}, steps run {len(calls)}, "
                f"checkpoints {client.calls}"
            )

    return run


def forward_runner(n: int) -> tuple[Any, Any]:
    """(run, close): ``run()`` executes N steps start to finish on the test runner."""
    runner = _runner_cls()(steps_handler(), skip_time=True)
    payload = json.dumps({"n": n})
    expected = str(n * (n - 1) // 2)

    def run() -> None:
        result = runner.run(input=payload, execution_timeout=3600)
        if result.result != expected:
            raise AssertionError(f"AWS SDK forward run ended {result.status}: {result.error}")

    return run, runner.close


def map_runner(n: int, max_concurrency: int) -> tuple[Any, Any]:
    """(run, close): ``run()`` maps over N items (one step each) on the test runner."""
    runner = _runner_cls()(map_handler(max_concurrency), skip_time=True)
    payload = json.dumps({"n": n})
    expected = str(n * (n - 1) // 2)

    def run() -> None:
        result = runner.run(input=payload, execution_timeout=3600)
        if result.result != expected:
            raise AssertionError(f"AWS SDK map run ended {result.status}: {result.error}")

    return run, runner.close
