"""durable_gen.otel: what the spans say, replay, ids, and the cost of not using it."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

# the OpenTelemetry SDK is in the test extra, not a runtime dependency (the
# otel extra is the API alone); CI installs it, so these run there.
pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from durable_gen import InMemoryEngine, MemoryStore, Step, Wait
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.logger import execution_arn
from durable_gen.otel import (
    DurableTracing,
    operation_span_id,
    trace_id_for,
    workflow_span_id,
)

pytestmark = pytest.mark.otel


def _ok() -> str:
    return "ok"


def step_wait_step(event: Any) -> Any:
    yield Step(_ok, name="before")
    yield Wait(seconds=5, name="pause")
    return (yield Step(_ok, name="after"))


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _names(spans: tuple[ReadableSpan, ...]) -> Counter[str]:
    return Counter(s.name for s in spans)


@pytest.mark.parametrize("view", ["invocation", "execution"])
def test_replayed_operations_are_not_traced_again(view: str) -> None:
    provider, exporter = _provider()
    engine = InMemoryEngine(hooks=[DurableTracing(provider, view=view)])
    result = engine.run(step_wait_step, {})
    assert result.status == "SUCCEEDED"
    names = _names(exporter.get_finished_spans())
    # "before" ran once, in the first invocation; the second replays it silently
    assert names["before"] == 1
    assert names["before attempt 1"] == 1
    assert names["after"] == 1
    assert names["Invocation"] == 2
    assert names["Workflow"] == 1
    # the wait spans both invocations: in the invocation view, a segment in each
    assert names["pause"] == (2 if view == "invocation" else 1)


def test_one_trace_and_deterministic_ids_across_engines() -> None:
    """Two invocations in two engines (as in two processes) on one store: one trace."""
    store, clock = MemoryStore(), VirtualClock()
    provider_a, exporter_a = _provider()
    provider_b, exporter_b = _provider()
    first = InMemoryEngine(
        store=store, clock=clock, hooks=[DurableTracing(provider_a, view="execution")]
    )
    execution_id = first.start(step_wait_step, {})
    assert first.resume(step_wait_step, execution_id, wait=False).status == "RUNNING"
    clock.sleep_until(clock.now() + 10_000)
    second = InMemoryEngine(
        store=store, clock=clock, hooks=[DurableTracing(provider_b, view="execution")]
    )
    assert second.resume(step_wait_step, execution_id).status == "SUCCEEDED"

    spans = exporter_a.get_finished_spans() + exporter_b.get_finished_spans()
    arn = execution_arn(execution_id)
    started = store.load(execution_id)[execution_id].start_timestamp
    assert {s.context.trace_id for s in spans} == {trace_id_for(arn, started)}
    workflow = next(s for s in spans if s.name == "Workflow")
    assert workflow.context.span_id == workflow_span_id(arn)
    ops = {op.name: op.id for op in store.load(execution_id).values() if op.name}
    for name in ("before", "pause", "after"):
        (span,) = [s for s in spans if s.name == name]
        assert span.context.span_id == operation_span_id(arn, ops[name])
        assert span.parent is not None
        assert span.parent.span_id == workflow_span_id(arn)
    # the wait started in engine A and ended in engine B: B exported it, once
    assert [s.name for s in exporter_b.get_finished_spans()].count("pause") == 1


def test_spans_carry_the_conventions_attributes() -> None:
    provider, exporter = _provider()
    engine = InMemoryEngine(hooks=[DurableTracing(provider)])
    result = engine.run(step_wait_step, {})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    arn = execution_arn(result.execution_id)
    attempt = spans["before attempt 1"]
    assert dict(attempt.attributes or {}) == {
        "durable.execution.arn": arn,
        "durable.operation.id": attempt.attributes["durable.operation.id"],  # type: ignore[index]
        "durable.operation.type": "STEP",
        "durable.operation.subtype": "Step",
        "durable.operation.name": "before",
        "durable.attempt.number": 1,
        "durable.attempt.outcome": "SUCCEEDED",
    }
    assert attempt.parent is not None
    assert attempt.parent.span_id == spans["before"].context.span_id
    assert (spans["Workflow"].attributes or {})["durable.execution.status"] == "SUCCEEDED"


def test_a_bad_view_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"^view must be 'invocation' or 'execution', got 'x'$"):
        DurableTracing(view="x")


def test_nothing_of_opentelemetry_is_imported_unless_asked() -> None:
    code = (
        "import sys\n"
        "from durable_gen import InMemoryEngine, SqliteEngine, Step\n"
        "def wf(e):\n"
        "    return (yield Step(len, 'abc'))\n"
        "assert InMemoryEngine().run(wf, None).result == 3\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _crash() -> str:
    raise SystemExit(3)  # the runtime exits mid-step (Lambda's Runtime.ExitError)


def crashing(event: Any) -> Any:
    yield Step(_ok, name="before")
    return (yield Step(_crash, name="crash"))


@pytest.mark.parametrize("view", ["invocation", "execution"])
def test_an_invocation_that_raises_still_ends_its_span_in_error(view: str) -> None:
    provider, exporter = _provider()
    engine = InMemoryEngine(hooks=[DurableTracing(provider, view=view)])
    with pytest.raises(SystemExit):
        engine.run(crashing, {})
    spans = exporter.get_finished_spans()
    (invocation,) = [s for s in spans if s.name == "Invocation"]
    assert invocation.status.status_code.name == "ERROR"
    assert (invocation.attributes or {})["durable.invocation.status"] == "RETRYING"
    assert invocation.end_time is not None
    # the execution goes on (the invocation is retried): no Workflow span yet
    assert [s for s in spans if s.name == "Workflow"] == []
    assert _names(spans)["before"] == 1


def _virtual_body() -> Any:
    yield Wait(seconds=5, name="inside")
    return "done"


def with_virtual(event: Any) -> Any:
    from durable_gen import ChildContext

    return (yield ChildContext(_virtual_body, name="virtual", virtual=True))


@pytest.mark.parametrize("view", ["invocation", "execution"])
def test_a_virtual_context_is_traced_in_each_invocation_its_body_runs(view: str) -> None:
    """It records nothing, so it runs again at every replay: like AWS's plugins, a
    span (with a fresh id) for each run; its operations hang from its parent."""
    provider, exporter = _provider()
    engine = InMemoryEngine(hooks=[DurableTracing(provider, view=view)])
    assert engine.run(with_virtual, {}).status == "SUCCEEDED"
    spans = exporter.get_finished_spans()
    virtual = [s for s in spans if s.name == "virtual"]
    attributes = dict(virtual[-1].attributes or {})
    assert attributes["durable.operation.type"] == "CONTEXT"
    assert attributes["durable.operation.subtype"] == "RunInChildContext"
    assert virtual[-1].status.status_code.name == "OK"
    if view == "invocation":
        # open when the first invocation suspended inside it (UNSET), then ended
        assert len(virtual) == 2
        assert virtual[0].status.status_code.name == "UNSET"
    else:
        assert len(virtual) == 1  # exported when it ended
    assert len({s.context.span_id for s in virtual}) == len(virtual)
    (inside,) = [s for s in spans if s.name == "inside" and s.status.status_code.name == "OK"]
    assert inside.parent is not None
    assert inside.parent.span_id not in {s.context.span_id for s in virtual}
