"""Microsoft durabletask (durabletask-python): its orchestration executor on a synthetic history.

The orchestrator is the generator twin of durable_gen's workflow: N activity calls
(``noop``, input ``i``) whose results are summed, then a 60-second durable timer.

The history is the one durabletask's backend would hand a worker whose N
activities completed and whose timer was created but has not fired: per episode
``orchestratorStarted``, the previous ``taskCompleted``, the next
``taskScheduled`` (ids 1..N), ``orchestratorCompleted``; then the last
completion, ``timerCreated`` (id N+1) and ``orchestratorCompleted``. The new
events are a single ``orchestratorStarted`` (a wake-up before the timer fires),
so -- like durable_gen's resumed invocation -- the executor replays N recorded
operations, finds the wait pending and returns no new actions.

What is timed: ``_OrchestrationExecutor(...).execute(instance_id, old_events,
new_events)``, exactly what ``TaskHubGrpcWorker`` calls per work item, with the
worker's default ``JsonDataConverter`` and a logger at level INFO (see below);
the protobuf history is built
once outside the timing (durabletask receives it parsed from gRPC). The gRPC
round trip and the worker's tracing wrappers are not timed, which favours
durabletask. ``_OrchestrationExecutor`` is private API: the only in-process
entry point to its replay (durabletask's own tests drive it the same way).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from . import PeerUnavailable, noop

NAME = "durabletask"
_INSTANCE = "bench-instance"


def _dt() -> Any:
    try:
        from durabletask import task, worker
        from durabletask.internal import helpers, shared
        from durabletask.serialization import JsonDataConverter
    except ImportError as e:
        raise PeerUnavailable(
            f"durabletask is not installed ({e}); pip install -e '.[bench]'"
        ) from e
    return task, worker, helpers, shared, JsonDataConverter


def version() -> str:
    from importlib.metadata import version as v

    return f"durabletask {v('durabletask')}"


def noop_activity(ctx: Any, i: int) -> int:
    return noop(i)


def orchestrator(ctx: Any, n: int) -> Any:
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(noop_activity, input=i)
    yield ctx.create_timer(datetime.timedelta(seconds=60))
    return total


def history(n: int) -> tuple[list[Any], list[Any]]:
    task, _, helpers, _, _ = _dt()
    name = task.get_name(orchestrator)
    activity = task.get_name(noop_activity)
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    old = [
        helpers.new_orchestrator_started_event(t0),
        helpers.new_execution_started_event(name, _INSTANCE, encoded_input=json.dumps(n)),
    ]
    for i in range(n):
        if i:
            old.append(helpers.new_orchestrator_started_event(t0))
            old.append(helpers.new_task_completed_event(i, json.dumps(i - 1)))
        old.append(helpers.new_task_scheduled_event(i + 1, activity, json.dumps(i)))
        old.append(helpers.new_orchestrator_completed_event())
    old.append(helpers.new_orchestrator_started_event(t0))
    if n:
        old.append(helpers.new_task_completed_event(n, json.dumps(n - 1)))
    fire_at = t0 + datetime.timedelta(seconds=60)
    old.append(helpers.new_timer_created_event(n + 1, fire_at))
    old.append(helpers.new_orchestrator_completed_event())
    new = [helpers.new_orchestrator_started_event(t0 + datetime.timedelta(seconds=1))]
    return old, new


def replay_invocation(n: int) -> Any:
    """Return a zero-argument callable: one replay of N completed activities + a timer."""
    _, worker, _, _, converter_cls = _dt()
    registry = worker._Registry()
    registry.add_orchestrator(orchestrator)
    registry.add_activity(noop_activity)
    # The worker's default logger (``shared.get_logger("worker")``) is a standalone
    # Logger at level NOTSET: every ``logger.debug`` in the executor then builds a
    # LogRecord that its INFO handler drops, which made replay ~30% slower here.
    # We give durabletask the better configuration a production user would have:
    # level INFO (its one INFO line per execute is still produced), output discarded.
    logger = logging.Logger("durabletask-worker", logging.INFO)
    logger.addHandler(logging.NullHandler())
    converter = converter_cls()
    old, new = history(n)

    def run() -> None:
        executor = worker._OrchestrationExecutor(registry, logger, data_converter=converter)
        result = executor.execute(_INSTANCE, old, new)
        if result.actions:
            raise AssertionError(f"durabletask replay emitted new actions: {result.actions!r}")

    return run
