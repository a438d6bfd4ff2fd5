"""History events back to the operations log: the inverse of what the service records.

Each workflow runs on the in-memory engine; the operations rebuilt from its
history (``operations_from_history``) must equal the operations its store keeps,
on every field replay reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from typing import Any

import pytest

from durable_gen import (
    All,
    ChildContext,
    CreateCallback,
    InMemoryEngine,
    Invoke,
    Map,
    Operation,
    OperationStatus,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitStrategy,
)
from durable_gen._core.errors import CorruptLogError
from durable_gen._core.history import events_of, operations_from_history, parse_timestamp

Flow = Generator[Any, Any, Any]


ATTEMPTS: dict[str, int] = {}


def flaky(key: str, fail_times: int) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= fail_times:
        raise TimeoutError(f"attempt {ATTEMPTS[key]} timed out")
    return "ok"


def always_fails() -> str:
    raise ValueError("nope")


def double(x: int) -> int:
    return x * 2


def kid(x: int) -> Flow:
    a = yield Step(double, x, name="in-kid")
    yield Wait(seconds=5, name="kid-wait")
    return a


def big_kid() -> Flow:
    yield Step(double, 1, name="tiny")
    return "x" * (300 * 1024)  # over 256 KiB: not stored, rebuilt by replay


def branch(i: int) -> Callable[[], Flow]:
    def run() -> Flow:
        return (yield Step(double, i, name=f"b{i}"))

    return run


def item(x: int, index: int) -> Flow:
    return (yield Step(double, x, name="item"))


def big_item(x: int, index: int) -> Flow:
    yield Step(double, x, name="item")
    return "y" * (100 * 1024)


def callee(event: Any) -> Flow:
    return (yield Step(double, event["n"], name="callee-step"))


RETRY = RetryPolicy(max_attempts=3, initial_delay=2)


def steps_and_failures(event: Any) -> Flow:
    ok = yield Step(flaky, str(event), 2, name="flaky", retry=RETRY)
    try:
        yield Step(always_fails, name="fails", retry=RetryPolicy(max_attempts=2, initial_delay=1))
    except StepError as e:
        ok += e.error_type or ""
    yield Wait(seconds=30, name="pause")
    return ok


def contexts_and_batches(event: Any) -> Flow:
    a = yield ChildContext(kid, 3, name="kid")
    big = yield ChildContext(big_kid, name="big")
    par = yield Parallel([branch(0), branch(1)], name="par")
    mapped = yield Map([1, 2, 3], item, name="map", max_concurrency=2)
    bigmap = yield Map(list(range(4)), big_item, name="bigmap")
    both = yield All([Step(double, 5, name="x"), Step(double, 6, name="y")])
    return [a, len(big), par.get_results(), mapped.get_results(), bigmap.success_count, both]


def callbacks_conditions_invoke(event: Any) -> Flow:
    handle = yield CreateCallback("approval", timeout=3600, heartbeat_timeout=600)
    answer = yield handle
    sent = yield WaitForCallback(lambda callback_id: None, "second", timeout=60)
    state = yield WaitForCondition(
        lambda s: {"n": s["n"] + 1},
        {"n": 0},
        WaitStrategy(should_continue=lambda s: s["n"] < 3, initial_delay=2, max_delay=10),
        name="poll",
    )
    got = yield Invoke("callee", {"n": 4}, name="call")
    return [answer, sent, state, got]


def timed_out_callback(event: Any) -> Flow:
    handle = yield CreateCallback("late", timeout=10)
    try:
        yield handle
    except Exception as e:
        return type(e).__name__
    return "on time"


def _run_to_end(workflow: Callable[[Any], Flow], engine: InMemoryEngine) -> str:
    result = engine.run(workflow, {"n": 1})
    execution_id = result.execution_id
    while result.status == "RUNNING":
        pending = [
            op
            for op in engine.store.load(execution_id).values()
            if op.callback_id and op.status is OperationStatus.STARTED
        ]
        if not pending:
            engine.clock.advance(60_000)
        for op in pending:
            assert op.callback_id is not None
            engine.store.complete_callback(
                op.callback_id, "succeed", engine.clock.now(), payload=f'"{op.name}"'
            )
        result = engine.resume(workflow, execution_id)
    return execution_id


def replay_fields(op: Operation) -> tuple[Any, ...]:
    """What replay reads of an operation (READY is a PENDING retry whose time came)."""
    status = OperationStatus.PENDING if op.status is OperationStatus.READY else op.status
    return (
        op.id,
        op.parent_id,
        op.type,
        op.sub_type,
        op.name,
        status,
        op.start_timestamp,
        op.end_timestamp,
        op.attempt,
        op.next_attempt_timestamp,
        op.scheduled_end_timestamp,
        op.result,
        op.error,
        op.callback_id,
        bool(op.replay_children),
        op.input_payload,
        op.function_name,
        op.callback_timeout,
        op.callback_heartbeat_timeout,
    )


@pytest.mark.parametrize(
    "workflow",
    [steps_and_failures, contexts_and_batches, callbacks_conditions_invoke, timed_out_callback],
)
def test_history_converts_back_to_the_recorded_operations(workflow: Callable[[Any], Flow]) -> None:
    engine = InMemoryEngine(functions={"callee": callee})
    execution_id = _run_to_end(workflow, engine)
    recorded = engine.store.load(execution_id)
    history = json.loads(json.dumps({"Events": engine.store.history(execution_id)}))
    rebuilt = operations_from_history(events_of(history))
    assert list(rebuilt) == list(recorded)
    if workflow is contexts_and_batches:  # results over 256 KiB were left out
        assert sum(bool(op.replay_children) for op in rebuilt.values()) == 2
    for op_id, op in recorded.items():
        if op.type.value == "EXECUTION":
            got = rebuilt[op_id]
            assert got.input_payload == op.input_payload
            continue
        assert replay_fields(rebuilt[op_id]) == replay_fields(op), op_id


def test_a_running_execution_converts_too() -> None:
    engine = InMemoryEngine()
    result = engine.run(callbacks_conditions_invoke, None)
    assert result.status == "RUNNING"  # waits for the callback
    recorded = engine.store.load(result.execution_id)
    rebuilt = operations_from_history(engine.store.history(result.execution_id))
    assert {k: replay_fields(v) for k, v in rebuilt.items() if v.type.value != "EXECUTION"} == {
        k: replay_fields(v) for k, v in recorded.items() if v.type.value != "EXECUTION"
    }


def test_events_are_read_in_event_id_order() -> None:
    engine = InMemoryEngine()
    execution_id = _run_to_end(steps_and_failures, engine)
    events = engine.store.history(execution_id)
    assert operations_from_history(reversed(events)) == operations_from_history(events)


def test_an_unknown_event_type_is_a_corrupt_log_naming_the_event() -> None:
    events = [
        {"EventType": "ExecutionStarted", "EventId": 1, "Id": "e", "EventTimestamp": 1},
        {"EventType": "StepExploded", "EventId": 2, "Id": "s", "EventTimestamp": 2},
    ]
    with pytest.raises(CorruptLogError, match=r"^event 2 \('StepExploded'\): unknown event type"):
        operations_from_history(events)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (
            [{"EventType": "StepStarted", "EventId": 1}],
            r"^event 1 \('StepStarted'\): the event names no operation \(Id\)$",
        ),
        (
            [
                {"EventType": "StepStarted", "EventId": 1, "Id": "a"},
                {"EventType": "WaitSucceeded", "EventId": 2, "Id": "a"},
            ],
            r"^event 2 \('WaitSucceeded'\): operation 'a' is a STEP in the events before, "
            r"not a WAIT$",
        ),
        (
            [{"EventType": "StepStarted", "Id": "a", "EventTimestamp": "yesterday"}],
            r"^event 1 \('StepStarted'\): EventTimestamp: expected a timestamp",
        ),
    ],
)
def test_malformed_events_are_corrupt_logs(events: list[Mapping[str, Any]], message: str) -> None:
    with pytest.raises(CorruptLogError, match=message):
        operations_from_history(events)


def test_a_history_document_must_hold_events() -> None:
    with pytest.raises(CorruptLogError, match=r'^a history must be \{"Events": \[...\]\}'):
        events_of({"Operations": []})


@pytest.mark.parametrize(
    "value",
    [
        1_767_225_600_000,  # epoch ms (durable_gen)
        1_767_225_600,  # epoch seconds (the REST API, the AWS CLI)
        1_767_225_600.0,
        "2026-01-01T00:00:00Z",
        "2026-01-01 00:00:00+00:00",  # json.dumps(boto3 response, default=str)
        "2026-01-01T01:00:00+01:00",
        "2026-01-01T00:00:00",  # naive: UTC
    ],
)
def test_timestamps_in_every_shape_a_history_file_holds(value: Any) -> None:
    assert parse_timestamp(value, "t") == 1_767_225_600_000
