"""durable_gen.otel: trace context propagation through Invoke and serve's traceparent.

The rule (AWS's ``aws-durable-execution-sdk-python-otel`` 2.0.0: the invoke's span
goes out as ``XAmznTraceId`` and the target's invocations take its ``Root`` as their
trace and its ``Parent`` as their execution ancestor): an execution started under a
caller's context joins the caller's trace, and its synthetic root
(``DurableExecutionRoot``, the parent of its Workflow and Invocation spans) is a
child of the caller's span -- the Invoke operation's span, or the span a
``traceparent`` header names.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from durable_gen import InMemoryEngine, Invoke, SqliteEngine, Step, Wait
from durable_gen._core.log import OperationType
from durable_gen._core.traceparent import TraceParent, from_xray, parse_traceparent
from durable_gen._engine.clock import VirtualClock
from durable_gen._engine.logger import execution_arn
from durable_gen._http.serve import make_server
from durable_gen._stores.sqlite import SqliteStore
from durable_gen.otel import (
    DurableTracing,
    execution_root_span_id,
    operation_span_id,
    trace_id_for,
)
from tests.postgres import _server as _pg_server

pytestmark = pytest.mark.otel

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE, CALLER_SPAN = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7


def _ok(n: Any = None) -> str:
    return "ok"


def child(event: Any) -> Any:
    yield Step(_ok, name="child-work")
    yield Wait(seconds=5, name="child-nap")
    return (yield Step(_ok, name="child-done"))


def parent(event: Any) -> Any:
    return (yield Invoke("child", {"n": 1}, name="call-child"))


def traced(event: Any) -> Any:
    return (yield Step(_ok, name="traced-step"))


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _of(spans: list[ReadableSpan], arn: str) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes and s.attributes.get("durable.execution.arn") == arn]


def _root(spans: list[ReadableSpan], arn: str) -> ReadableSpan:
    """The execution's synthetic root (its span id says whose), exported once."""
    found = [s for s in spans if s.context.span_id == execution_root_span_id(arn)]
    assert len(found) == 1, f"{arn}: {len(found)} roots"
    assert found[0].name == "DurableExecutionRoot"
    return found[0]


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {len(found)} spans"
    return found[0]


# ---------------------------------------------------------------------- Invoke


@pytest.mark.parametrize("view", ["invocation", "execution"])
def test_an_invoked_execution_continues_the_callers_trace_across_engines(
    tmp_path: Any, view: str
) -> None:
    """Parent and child advanced by four engines on one file (as four processes)."""
    db, clock = tmp_path / "app.db", VirtualClock()
    exporters: list[InMemorySpanExporter] = []

    def engine() -> SqliteEngine:
        provider, exporter = _provider()
        exporters.append(exporter)
        return SqliteEngine(
            store=SqliteStore(db),
            clock=clock,
            functions={"child": child},
            hooks=[DurableTracing(provider, view=view)],
        )

    a = engine()
    parent_id = a.start(parent, {})
    assert a.resume(parent, parent_id, wait=False).status == "RUNNING"  # child created
    (invoke,) = [
        op for op in a.store.load(parent_id).values() if op.type is OperationType.CHAINED_INVOKE
    ]
    child_id = _child_of(a.store, parent_id)

    b = engine()
    assert b.invoke_once(child, child_id).status == "PENDING"  # the wait suspends it
    clock.sleep_until(clock.now() + 10_000)
    c = engine()
    assert c.resume(child, child_id).status == "SUCCEEDED"  # replays from the file
    d = engine()
    assert d.resume(parent, parent_id).status == "SUCCEEDED"

    parent_arn, child_arn = execution_arn(parent_id), execution_arn(child_id)
    started = a.store.info(parent_id).created_at
    trace_id = trace_id_for(parent_arn, started)
    invoke_span = operation_span_id(parent_arn, invoke.id)
    assert d.store.trace_context(child_id) == str(
        TraceParent(trace_id=trace_id, span_id=invoke_span)
    )
    assert d.store.trace_context(parent_id) is None

    spans = [s for e in exporters for s in e.get_finished_spans()]
    assert {s.context.trace_id for s in spans} == {trace_id}  # one trace for both
    # the caller's invoke operation span is the one the child hangs from
    calls = [s for s in spans if s.name == "call-child"]
    assert invoke_span in {s.context.span_id for s in calls}
    # the child's synthetic root: emitted once (by its first invocation), a child of
    # the invoke span; its Workflow span under it, emitted once, by engine C
    child_spans = _of(spans, child_arn)
    root = _root(spans, child_arn)
    assert root in exporters[1].get_finished_spans()
    assert root.parent is not None
    assert root.parent.is_remote
    assert (root.parent.trace_id, root.parent.span_id) == (trace_id, invoke_span)
    workflow = _one(child_spans, "Workflow")
    assert workflow in exporters[2].get_finished_spans()
    assert workflow.parent is not None
    assert workflow.parent.span_id == root.context.span_id
    for invocation in [s for s in child_spans if s.name == "Invocation"]:
        assert invocation.parent is not None
        assert invocation.parent.span_id == root.context.span_id
    # one root for the whole trace: the caller's synthetic root
    assert [s for s in spans if s.parent is None] == [_root(spans, parent_arn)]


def _child_of(store: SqliteStore, parent_id: str) -> str:
    from durable_gen._core.service import chained_execution_id

    (invoke,) = [
        op for op in store.load(parent_id).values() if op.type is OperationType.CHAINED_INVOKE
    ]
    return chained_execution_id(parent_id, invoke.id)


def test_aws_validators_accept_an_invoke_that_continues_the_callers_trace(tmp_path: Any) -> None:
    """AWS's trace checks still hold when both executions share the caller's trace:
    one root, one trace per execution, no Workflow span parented to an SDK span."""
    validators = pytest.importorskip("aws_durable_execution_conformance_tests_otel.validators")
    provider, exporter = _provider()
    with SqliteEngine(
        tmp_path / "app.db",
        clock=VirtualClock(),
        functions={"child": child},
        hooks=[DurableTracing(provider)],
    ) as engine:
        parent_id = engine.start(parent, {})
        assert engine.resume(parent, parent_id).status == "SUCCEEDED"
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    for workflow in [s for s in spans if s.name == "Workflow"]:
        assert workflow.parent is not None
        parent_span = by_id[workflow.parent.span_id]
        assert parent_span.name == "DurableExecutionRoot"
        assert not validators._is_durable_sdk_span(_as_validator_span(parent_span))


def _as_validator_span(span: ReadableSpan) -> Any:
    return types.SimpleNamespace(name=span.name, attributes=dict(span.attributes or {}))


def test_in_memory_engine_propagates_too() -> None:
    provider, exporter = _provider()
    engine = InMemoryEngine(functions={"child": child}, hooks=[DurableTracing(provider)])
    result = engine.run(parent, {})
    assert result.status == "SUCCEEDED"
    child_id = _child_of(engine.store, result.execution_id)  # type: ignore[arg-type]
    assert parse_traceparent(engine.store.trace_context(child_id)) is not None
    assert len({s.context.trace_id for s in exporter.get_finished_spans()}) == 1


def test_without_tracing_nothing_is_stored(tmp_path: Any) -> None:
    with SqliteEngine(tmp_path / "app.db", clock=VirtualClock(), functions={"child": child}) as e:
        parent_id = e.start(parent, {})
        assert e.resume(parent, parent_id).status == "SUCCEEDED"
        assert e.store.trace_context(_child_of(e.store, parent_id)) is None
        assert e.store.trace_context(parent_id) is None


# ---------------------------------------------------------------------- start / no context


def test_an_execution_started_with_no_context_is_its_own_trace(tmp_path: Any) -> None:
    provider, exporter = _provider()
    with SqliteEngine(tmp_path / "app.db", hooks=[DurableTracing(provider)]) as engine:
        execution_id = engine.start(traced, {})
        assert engine.resume(traced, execution_id).status == "SUCCEEDED"
        assert engine.store.trace_context(execution_id) is None
        started = engine.store.info(execution_id).created_at
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {
        trace_id_for(execution_arn(execution_id), started)
    }
    root = _root(list(spans), execution_arn(execution_id))
    assert root.parent is None


def test_start_with_a_trace_context_joins_that_trace(tmp_path: Any) -> None:
    provider, exporter = _provider()
    with SqliteEngine(tmp_path / "app.db", hooks=[DurableTracing(provider)]) as engine:
        execution_id = engine.start(traced, {}, trace_context=CALLER)
        assert engine.resume(traced, execution_id).status == "SUCCEEDED"
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {CALLER_TRACE}
    root = _root(list(spans), execution_arn(execution_id))
    assert root.parent is not None
    assert root.parent.span_id == CALLER_SPAN


def test_a_caller_that_does_not_sample_is_honoured(tmp_path: Any) -> None:
    provider, exporter = _provider()
    with SqliteEngine(tmp_path / "app.db", hooks=[DurableTracing(provider)]) as engine:
        execution_id = engine.start(traced, {}, trace_context=CALLER[:-2] + "00")
        assert engine.resume(traced, execution_id).status == "SUCCEEDED"
    assert exporter.get_finished_spans() == ()


def test_start_refuses_a_bad_trace_context(tmp_path: Any) -> None:
    from durable_gen import ValidationError

    with (
        SqliteEngine(tmp_path / "app.db") as engine,
        pytest.raises(ValidationError, match=r"^trace_context must be a W3C traceparent"),
    ):
        engine.start(traced, {}, trace_context="nope")


# ---------------------------------------------------------------------- serve


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    provider, exporter = _provider()
    server = make_server(
        "127.0.0.1",
        0,
        db=str(tmp_path / "api.db"),
        functions={"traced": "tests.otel.test_propagation:traced"},
        hooks=[DurableTracing(provider)],
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, exporter
    server.shutdown()
    server.drain(1.0)
    server.server_close()
    thread.join(5)


def _invoke(server: Any, headers: dict[str, str]) -> tuple[int, str]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        conn.request(
            "POST", "/2015-03-31/functions/traced/invocations", body=b"{}", headers=headers
        )
        response = conn.getresponse()
        assert json.loads(response.read()) == "ok"
        return response.status, response.getheader("X-Amz-Durable-Execution-Arn") or ""
    finally:
        conn.close()


def _execution_spans(exporter: InMemorySpanExporter, arn: str) -> list[ReadableSpan]:
    spans = _of(list(exporter.get_finished_spans()), arn)
    assert any(s.name == "Workflow" for s in spans)
    return spans


def test_serve_continues_the_callers_traceparent(served: Any) -> None:
    server, exporter = served
    status, arn = _invoke(server, {"traceparent": CALLER, "tracestate": "vendor=1"})
    assert status == 200
    spans = _execution_spans(exporter, arn)
    assert {s.context.trace_id for s in spans} == {CALLER_TRACE}
    root = _root(list(exporter.get_finished_spans()), arn)
    assert root.parent is not None
    assert root.parent.span_id == CALLER_SPAN


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # 00 + more
    ],
)
def test_serve_ignores_an_invalid_traceparent(served: Any, header: str) -> None:
    server, exporter = served
    status, arn = _invoke(server, {"traceparent": header})
    assert status == 200  # never a 400: W3C says an invalid header is ignored
    spans = _execution_spans(exporter, arn)
    assert CALLER_TRACE not in {s.context.trace_id for s in spans}
    assert _root(list(exporter.get_finished_spans()), arn).parent is None


def test_serve_without_a_traceparent_starts_its_own_trace(served: Any) -> None:
    server, exporter = served
    status, arn = _invoke(server, {})
    assert status == 200
    spans = _execution_spans(exporter, arn)
    assert len({s.context.trace_id for s in spans}) == 1
    assert _root(list(exporter.get_finished_spans()), arn).parent is None


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CALLER, TraceParent(trace_id=CALLER_TRACE, span_id=CALLER_SPAN)),
        (
            CALLER[:-2] + "00",
            TraceParent(trace_id=CALLER_TRACE, span_id=CALLER_SPAN, sampled=False),
        ),
        ("01" + CALLER[2:] + "-later", TraceParent(trace_id=CALLER_TRACE, span_id=CALLER_SPAN)),
        (None, None),
        ("", None),
        (CALLER + "-x", None),
        ("x" * 600, None),
    ],
)
def test_parse_traceparent(text: str | None, expected: TraceParent | None) -> None:
    assert parse_traceparent(text) == expected
    if expected is not None:
        assert parse_traceparent(str(expected)) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1",
            CALLER,
        ),
        (
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0",
            CALLER[:-2] + "00",
        ),
        ("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Sampled=1", None),  # no parent
        ("Root=2-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7", None),
        ("", None),
        (None, None),
    ],
)
def test_an_xray_header_as_a_traceparent(header: str | None, expected: str | None) -> None:
    found = from_xray(header)
    assert (None if found is None else str(found)) == expected


# ---------------------------------------------------------------------- PostgreSQL


# the session's throw-away PostgreSQL server (tests/conftest.py; the test is skipped
# without one, or fails in CI)


@pytest.fixture
def pg_database(postgres_server: str) -> str:
    return str(_pg_server.fresh_database())  # what its pg_url fixture gives


def test_trace_context_survives_on_postgres(pg_database: str) -> None:
    from durable_gen._stores.postgres import PostgresStore

    store = PostgresStore(pg_database)
    try:
        assert store.create("traced", '"x"', 1_000, trace_context=CALLER)
        assert store.create("plain", '"x"', 1_000)
    finally:
        store.close()
    store = PostgresStore(pg_database)  # read back by another connection
    try:
        assert store.trace_context("traced") == CALLER
        assert store.trace_context("plain") is None
        assert store.trace_context("missing") is None
    finally:
        store.close()


# ---------------------------------------------------------------------- Lambda shim


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("aws_durable_execution_sdk_python_testing")
    from ._emulator import OtelEmulator

    emu = OtelEmulator(tmp_path_factory.mktemp("propagation-emulator"))
    try:
        yield emu
    finally:
        emu.close()


@pytest.mark.parametrize(
    ("header", "joins"),
    [
        ("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1", True),
        ("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736", False),  # no parent: its own trace
    ],
)
def test_the_lambda_shim_continues_the_trace_lambda_hands_it(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, header: str, joins: bool
) -> None:
    """AWS's emulator invokes the shim in this process, where Lambda's runtime would
    have set ``_X_AMZN_TRACE_ID``."""
    from durable_gen.aws.local import start_execution

    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    provider, exporter = _provider()
    function = f"propagation-{joins}"
    emulator.register(function, traced, DurableTracing(provider))
    arn = start_execution(emulator.instance.url, function, {})
    for _ in range(600):
        status = emulator.client.get_durable_execution(DurableExecutionArn=arn)["Status"]
        if status != "RUNNING":
            break
        time.sleep(0.05)
    assert status == "SUCCEEDED"
    time.sleep(0.2)  # the handler returns after the service recorded its end
    provider.force_flush()
    spans = list(exporter.get_finished_spans())
    root = _root(spans, arn)
    if joins:
        assert {s.context.trace_id for s in spans} == {CALLER_TRACE}
        assert root.parent is not None
        assert root.parent.span_id == CALLER_SPAN
    else:
        assert CALLER_TRACE not in {s.context.trace_id for s in spans}
        assert root.parent is None
