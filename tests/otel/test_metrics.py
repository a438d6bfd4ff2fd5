"""durable_gen.otel.DurableMetrics: what is counted, once, read with the SDK's reader."""

from __future__ import annotations

from typing import Any

import pytest

# the OpenTelemetry SDK is in the test extra, not a runtime dependency (the
# otel extra is the API alone); CI installs it, so these run there.
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from durable_gen import (
    CreateCallback,
    InMemoryEngine,
    Jitter,
    RetryPolicy,
    Step,
    Wait,
    current_attempt,
)
from durable_gen.otel import DurableMetrics

pytestmark = pytest.mark.otel


def _flaky() -> str:
    if current_attempt() < 3:
        raise ValueError("not yet")
    return "ok"


def _boom() -> str:
    raise ValueError("never")


def workflow(event: Any) -> Any:
    yield Step(
        _flaky, name="flaky", retry=RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)
    )
    yield Wait(seconds=5, name="pause")
    callback = yield CreateCallback(name="approval")
    return (yield callback)


def failing(event: Any) -> Any:
    return (yield Step(_boom, name="boom", retry=RetryPolicy.none()))


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    value = getattr(p, "value", None)
                    if value is None:  # a histogram: (count, sum)
                        value = (p.count, p.sum)
                    out.setdefault(metric.name, []).append((dict(p.attributes or {}), value))
    return out


def _total(points: dict[str, list[tuple[dict[str, Any], Any]]], name: str, **attrs: Any) -> Any:
    return sum(
        v
        for a, v in points.get(name, [])
        if all(a.get(f"durable.{k.replace('_', '.')}") == x for k, x in attrs.items())
    )


def test_executions_operations_attempts_retries_checkpoints_and_open_callbacks() -> None:
    reader = InMemoryMetricReader()
    engine = InMemoryEngine(hooks=[DurableMetrics(MeterProvider(metric_readers=[reader]))])
    execution_id = engine.start(workflow, {})
    assert engine.resume(workflow, execution_id).status == "RUNNING"  # at the callback
    points = _points(reader)
    assert _total(points, "durable.executions.started") == 1
    assert _total(points, "durable.callbacks.open") == 1
    assert _total(points, "durable.step.attempts", attempt_outcome="FAILED") == 2
    assert _total(points, "durable.step.attempts", attempt_outcome="SUCCEEDED") == 1
    assert _total(points, "durable.step.retries") == 2

    (callback,) = [
        op for op in engine.store.load(execution_id).values() if op.callback_id is not None
    ]
    engine.store.complete_callback(
        callback.callback_id, "succeed", engine.clock.now(), payload='"yes"'
    )
    assert engine.resume(workflow, execution_id).status == "SUCCEEDED"
    points = _points(reader)
    assert _total(points, "durable.callbacks.open") == 0
    assert _total(points, "durable.executions.started") == 1  # replays start nothing
    assert _total(points, "durable.executions.succeeded") == 1
    assert _total(points, "durable.executions.failed") == 0
    for type_, sub_type in [("STEP", "Step"), ("WAIT", "Wait"), ("CALLBACK", "Callback")]:
        started = _total(
            points, "durable.operations.started", operation_type=type_, operation_subtype=sub_type
        )
        ended = _total(
            points, "durable.operations.ended", operation_type=type_, operation_status="SUCCEEDED"
        )
        assert (started, ended) == (1, 1), type_
    # the retried step's attempts were not counted again on replay
    assert _total(points, "durable.step.attempts") == 3
    invocations = _total(points, "durable.invocations")
    assert invocations == _total(points, "durable.invocations", invocation_status="PENDING") + 1
    batches = points["durable.checkpoint.updates"]
    assert sum(count for _a, (count, _s) in batches) >= invocations
    assert sum(total for _a, (_c, total) in batches) >= 6  # at least the STARTs and ends
    assert all(seconds >= 0 for _a, (_c, seconds) in points["durable.checkpoint.duration"])


def test_a_failed_execution_is_counted_failed() -> None:
    reader = InMemoryMetricReader()
    engine = InMemoryEngine(hooks=[DurableMetrics(MeterProvider(metric_readers=[reader]))])
    assert engine.run(failing, {}).status == "FAILED"
    points = _points(reader)
    assert _total(points, "durable.executions.failed") == 1
    assert _total(points, "durable.executions.succeeded") == 0
    assert _total(points, "durable.operations.ended", operation_status="FAILED") == 1
    assert _total(points, "durable.step.retries") == 0
