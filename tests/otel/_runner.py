"""Run AWS's telemetry requirements on the embedded engine; AWS's validator judges.

For each requirement (``otel-invocation`` in the invocation view, ``otel-execution``
and ``otel-long-running`` in the execution view, as AWS's long-running runner
selects ``ExecutionTelemetryAssertions`` for the execution view):

1. its scenario's workflow runs on an :class:`~durable_gen.InMemoryEngine` (virtual
   clock: waits and retry delays are skipped) with :class:`durable_gen.otel.DurableTracing`
   on an OpenTelemetry SDK ``TracerProvider`` (resource ``service.name``) whose
   spans an in-memory exporter keeps; callbacks are completed as the requirement's
   ``CallbackActions`` say; the "interrupted" scenario is timed out after its
   first invocation as the service would;
2. the spans are encoded with the SDK's OTLP encoder, turned into OTLP/HTTP JSON,
   and normalized by AWS's ``normalizers.normalize_otlp_json``;
3. placeholders (``${STEP1}``...) are bound by AWS's ``EventHistoryMatcher`` on the
   execution's history, ``${EXECUTION_ARN}``/``${SERVICE_NAME}``/``${TARGET_EXECUTION_ARN}``
   as AWS's extension binds them; the expected execution status is checked;
4. AWS's ``validators.validate_trace`` judges the trace, unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from aws_durable_execution_conformance_tests.history import EventHistoryMatcher
from aws_durable_execution_conformance_tests.variables import PlaceholderContext
from aws_durable_execution_conformance_tests_otel.model import TelemetryQuery, Trace
from aws_durable_execution_conformance_tests_otel.normalizers import normalize_otlp_json
from aws_durable_execution_conformance_tests_otel.validators import validate_trace
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_gen import InMemoryEngine
from durable_gen.otel import DurableTracing

from ._scenarios import SCENARIOS, TARGETS

SERVICE_NAME = "durable-execution-conformance"
SUITES = {
    "otel-invocation": ("invocation", "TelemetryAssertions"),
    "otel-execution": ("execution", "TelemetryAssertions"),
    "otel-long-running": ("execution", "ExecutionTelemetryAssertions"),
}
#: embedded: InMemoryEngine, one process; sqlite: SqliteEngine on a file, every
#: invocation in a fresh engine and tracer (as in another process); emulator: AWS's
#: emulator driving the Lambda shim (``durable_handler``) on real time
RUNTIMES = ("embedded", "sqlite", "emulator")


@dataclass(frozen=True)
class Requirement:
    suite: str
    id: str
    path: Path

    @property
    def view(self) -> str:
        return SUITES[self.suite][0]

    def load(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.path.read_text(encoding="utf-8")))


@dataclass
class Outcome:
    requirement: Requirement
    runtime: str
    errors: list[str] = field(default_factory=list)
    otlp: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.errors


def requirements() -> list[Requirement]:
    root = Path(str(files("aws_durable_execution_conformance_tests_otel") / "test_requirements"))
    found = []
    for suite in SUITES:
        paths = sorted((root / suite).glob("*.yaml"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        found.extend(Requirement(suite, p.stem, p) for p in paths)
    return found


def otlp_json(spans: Any) -> dict[str, Any]:
    """Spans as an OTLP/HTTP JSON export request (the SDK's encoder, proto3 JSON)."""
    return MessageToDict(encode_spans(spans))


def _matches(action: dict[str, Any], name: str | None) -> bool:
    from aws_durable_execution_conformance_tests.history import get_regex_pattern

    pattern = get_regex_pattern(action["CallbackName"])
    if pattern:
        return bool(pattern.search(name or ""))
    return bool(action["CallbackName"] == name)


def _complete_callbacks(store: Any, clock: Any, execution_id: str, actions: list[Any]) -> None:
    """Send each pending callback's action (matched by name, as AWS's runner does)."""
    from durable_gen import ErrorObject

    for op in store.load(execution_id).values():
        if op.callback_id is None or op.status.value != "STARTED":
            continue
        for action in actions:
            if _matches(action, op.name):
                now = clock.now() + int(action.get("Delay", 0)) * 1000
                clock.sleep_until(now)
                if action["Operation"] == "success":
                    store.complete_callback(
                        op.callback_id, "succeed", now, payload=json.dumps(action["Payload"])
                    )
                else:
                    payload = action["Payload"]
                    store.complete_callback(
                        op.callback_id,
                        "fail",
                        now,
                        error=ErrorObject(
                            type=payload.get("ErrorType"), message=payload.get("ErrorMessage")
                        ),
                    )


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@dataclass
class _Ran:
    """What one run left: the execution, its end, its history, the spans exported."""

    arn: str
    status: str
    history: list[dict[str, Any]]
    spans: Any


def _run_embedded(requirement: Requirement, spec: dict[str, Any], event: Any) -> _Ran:
    exporter = InMemorySpanExporter()
    provider = _provider(exporter)
    engine = InMemoryEngine(functions=dict(TARGETS))
    tracing = DurableTracing(
        provider, view=requirement.view, clock_ns=lambda: engine.clock.now() * 1_000_000
    )
    engine.hooks = (tracing,)
    workflow = SCENARIOS[event["scenario"]]
    execution_id = engine.start(workflow, event)
    result = engine.resume(workflow, execution_id, wait=event["scenario"] != "wait-interrupted")
    for _ in range(5):
        if result.status != "RUNNING" or not spec.get("CallbackActions"):
            break
        _complete_callbacks(engine.store, engine.clock, execution_id, spec["CallbackActions"])
        result = engine.resume(workflow, execution_id)
    if event["scenario"] == "wait-interrupted" and result.status == "RUNNING":
        # the service times the execution out while it waits
        engine.store.finish(execution_id, "TIMED_OUT", engine.clock.now())
        result = engine.result(execution_id)
    provider.force_flush()
    return _Ran(
        _arn(execution_id),
        result.status,
        engine.store.history(execution_id),
        exporter.get_finished_spans(),
    )


def _run_sqlite(requirement: Requirement, spec: dict[str, Any], event: Any, db: Path) -> _Ran:
    """Each round is a new engine, store connection, provider and tracer (a new process,
    as far as tracing can tell); a round advances what is due, then time moves on."""
    from durable_gen import SqliteEngine
    from durable_gen._engine.clock import VirtualClock

    exporter = InMemorySpanExporter()
    clock = VirtualClock()

    def engine() -> tuple[Any, TracerProvider]:
        provider = _provider(exporter)
        tracing = DurableTracing(
            provider, view=requirement.view, clock_ns=lambda: clock.now() * 1_000_000
        )
        return SqliteEngine(db, clock=clock, functions=dict(TARGETS), hooks=[tracing]), provider

    first, provider = engine()
    execution_id = first.start(SCENARIOS[event["scenario"]], event)
    first.close()
    status = "RUNNING"
    for _ in range(200):
        current, provider = engine()
        try:
            current.work(once=True)
            provider.force_flush()
            status = current.store.info(execution_id).status
            if status != "RUNNING":
                break
            if event["scenario"] == "wait-interrupted":
                # the service times the execution out while it waits
                current.store.acquire(execution_id, clock.now())
                current.store.finish(execution_id, "TIMED_OUT", clock.now())
                current.store.release(execution_id, None)
                status = "TIMED_OUT"
                break
            if spec.get("CallbackActions"):
                _complete_callbacks(current.store, clock, execution_id, spec["CallbackActions"])
            clock.sleep_until(clock.now() + 500)
        finally:
            current.close()
    reader = SqliteEngine(db, clock=clock)
    try:
        history = reader.store.history(execution_id)
    finally:
        reader.close()
    return _Ran(_arn(execution_id), status, history, exporter.get_finished_spans())


def run(requirement: Requirement, runtime: str = "embedded", **options: Any) -> Outcome:
    """Run one requirement on ``runtime`` and validate its trace with AWS's validator."""
    outcome = Outcome(requirement, runtime)
    spec = requirement.load()
    context = PlaceholderContext()
    context.resolve_variables(dict(spec.get("Variables", {})))
    event = context.substitute(spec.get("Input"))
    if event["scenario"] not in SCENARIOS:
        outcome.errors.append(f"no ported workflow for scenario {event['scenario']!r}")
        return outcome
    started = datetime.now(UTC)
    if runtime == "embedded":
        ran = _run_embedded(requirement, spec, event)
    elif runtime == "sqlite":
        ran = _run_sqlite(requirement, spec, event, options["db"])
    elif runtime == "emulator":
        from ._emulator import run_on_emulator

        ran = run_on_emulator(options["emulator"], requirement, spec, event)
    else:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    judge(outcome, spec, context, ran, started)
    return outcome


def judge(
    outcome: Outcome, spec: dict[str, Any], context: Any, ran: _Ran, started: datetime
) -> None:
    """Check the end and the history, then let AWS's validator judge the trace."""
    assertions_key = SUITES[outcome.requirement.suite][1]
    expected_status = spec.get("ExpectedResult", {}).get("ExecutionStatus")
    if expected_status and ran.status != expected_status:
        outcome.errors.append(f"execution ended {ran.status}, expected {expected_status}")
    match = EventHistoryMatcher(context=PlaceholderContext()).match(
        spec.get("ExpectedExecutionHistory", []), ran.history
    )
    outcome.errors.extend(f"history: {e}" for e in match.errors)

    payload = otlp_json(ran.spans)
    outcome.otlp = payload
    traces = normalize_otlp_json(payload)
    arn = ran.arn
    placeholders = PlaceholderContext()
    for name, value in {**context.bindings, **match.resolved_placeholders}.items():
        placeholders.bind(name, value)
    placeholders.bind("EXECUTION_ARN", arn)
    placeholders.bind("SERVICE_NAME", SERVICE_NAME)
    others = sorted(
        {
            str(s.attributes.get("durable.execution.arn"))
            for t in traces
            for s in t.spans
            if s.attributes.get("durable.execution.arn") not in (None, arn)
        }
    )
    if others and "TARGET_EXECUTION_ARN" not in placeholders.bindings:
        placeholders.bind("TARGET_EXECUTION_ARN", others[0])
    assertions = placeholders.substitute(spec[assertions_key])
    allowed = assertions.get("allowed_execution_arns", ())
    allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
    execution_arns = tuple(dict.fromkeys((arn, *allowed)))
    # what a backend returns: the execution's trace plus execution-correlated traces
    wanted = {a.lower() for a in execution_arns}
    spans = tuple(
        s
        for t in traces
        if any(
            str(x.attributes.get("durable.execution.arn", "")).lower() in wanted for x in t.spans
        )
        for s in t.spans
    )
    main_trace = next(
        (
            t.trace_id
            for t in traces
            if any(x.attributes.get("durable.execution.arn") == arn for x in t.spans)
        ),
        "",
    )
    trace = Trace(trace_id=main_trace, spans=spans, raw_artifact=payload)
    query = TelemetryQuery(
        execution_arn=arn,
        service_name=SERVICE_NAME,
        started_at=started,
        ended_at=datetime.now(UTC),
        trace_id=main_trace,
        execution_arns=execution_arns,
    )
    outcome.errors.extend(f"OpenTelemetry: {e}" for e in validate_trace(trace, assertions, query))


def _arn(execution_id: str) -> str:
    from durable_gen._engine.logger import execution_arn

    return execution_arn(execution_id)
