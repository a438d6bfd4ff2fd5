"""azure-functions-durable: its generator orchestrator over a synthetic JSON history.

The orchestrator is the generator twin of durable_gen's workflow: N activity calls
(``"noop"``, input ``i``) whose results are summed, then a 60-second durable timer.

The history is the JSON the Functions host sends after the N activities completed
and the timer was created but has not fired: ``OrchestratorStarted``,
``ExecutionStarted``; per episode ``TaskScheduled`` (EventId i),
``OrchestratorCompleted``, ``OrchestratorStarted``, ``TaskCompleted``
(``TaskScheduledId`` i, result ``json.dumps(i)``); then ``TimerCreated``,
``OrchestratorCompleted`` and a final, new ``OrchestratorStarted`` (the wake-up).
Every recorded event is marked ``IsPlayed`` as the host does. The orchestrator
replays N recorded operations and ends not done, waiting on the timer.

What is timed: the function ``Orchestrator.create(fn)`` returns -- what the
Functions worker calls per orchestration invocation -- on the JSON context body:
``DurableOrchestrationContext.from_json`` (JSON decode and one ``HistoryEvent``
per event, timestamps parsed by dateutil), the replay, and the JSON state string it
returns (which lists every action so far). Unlike the other harnesses this
includes decoding the wire payload, because azure-functions-durable has no
in-process form of its history: JSON is its only input.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from . import PeerUnavailable, noop

NAME = "azure-functions-durable"
_T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _df() -> Any:
    try:
        import azure.durable_functions as df
    except ImportError as e:
        raise PeerUnavailable(
            f"azure-functions-durable is not installed ({e}); pip install -e '.[bench]'"
        ) from e
    return df


def version() -> str:
    from importlib.metadata import version as v

    return f"azure-functions-durable {v('azure-functions-durable')}"


def noop_activity(i: int) -> int:
    return noop(i)


def orchestrator(context: Any) -> Any:
    n = context.get_input(expected_type=int)
    total = 0
    for i in range(n):
        total += yield context.call_activity("noop", i, expected_type=int)
    yield context.create_timer(context.current_utc_datetime + datetime.timedelta(seconds=60))
    return total


def _event(kind: int, t: datetime.datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {
        "EventType": kind,
        "EventId": event_id,
        "IsPlayed": True,
        "Timestamp": t.isoformat(),
        **fields,
    }


def context_body(n: int) -> str:
    """The JSON orchestration-trigger body after N completed activities and a created timer."""
    from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E

    t = _T0
    history = [
        _event(E.ORCHESTRATOR_STARTED, t),
        _event(E.EXECUTION_STARTED, t, Name="orchestrator", Input=json.dumps(n), Version=""),
    ]
    for i in range(n):
        history.append(_event(E.TASK_SCHEDULED, t, i, Name="noop", Input=json.dumps(i)))
        history.append(_event(E.ORCHESTRATOR_COMPLETED, t))
        t += datetime.timedelta(milliseconds=1)
        history.append(_event(E.ORCHESTRATOR_STARTED, t))
        history.append(_event(E.TASK_COMPLETED, t, TaskScheduledId=i, Result=json.dumps(i)))
    fire_at = t + datetime.timedelta(seconds=60)
    history.append(_event(E.TIMER_CREATED, t, n, FireAt=fire_at.isoformat()))
    history.append(_event(E.ORCHESTRATOR_COMPLETED, t))
    new = _event(E.ORCHESTRATOR_STARTED, t + datetime.timedelta(seconds=1))
    new["IsPlayed"] = False
    history.append(new)
    return json.dumps(
        {
            "history": history,
            "instanceId": "bench-instance",
            "isReplaying": True,
            "parentInstanceId": None,
            "input": json.dumps(n),
            "upperSchemaVersion": 0,
        }
    )


def replay_invocation(n: int) -> Any:
    """Return a zero-argument callable: one orchestrator invocation replaying N activities."""
    df = _df()
    handle = df.Orchestrator.create(orchestrator)
    body = context_body(n)

    # Checked once, outside the timed calls: the orchestrator replayed all N
    # activities and is waiting on the timer (N + 1 actions, not done, no error).
    state = json.loads(handle(body))
    if state.get("isDone") or state.get("error") or len(state.get("actions", [])) != n + 1:
        raise AssertionError(f"azure-functions-durable replay ended {str(state)[:300]}")

    def run() -> None:
        handle(body)

    return run
