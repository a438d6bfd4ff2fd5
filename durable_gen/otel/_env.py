"""Tracing and metrics configured from the environment, for the ``durable-gen`` command.

``durable-gen run|worker|serve --otel`` (or ``DURABLE_GEN_OTEL=1``) calls
:func:`hooks_from_env`: an OpenTelemetry SDK tracer provider and meter provider made
from the SDK's standard variables, installed as the global ones, and the hooks that
feed them. Honoured: ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the
resource), ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, the
default; ``console``; ``none``), and for OTLP everything its exporter reads
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL`` = ``http/protobuf``
(default) or ``grpc``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...). Spans are exported in
batches; what is buffered is flushed when the process exits.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from .._core.errors import ValidationError
from .._engine.hooks import Hooks

__all__ = ["OtelConfigError", "enabled_by_env", "hooks_from_env"]

_TRUE = ("1", "true", "yes", "on")


class OtelConfigError(ValidationError):
    """Tracing was asked for but cannot be set up (a package or a setting is missing)."""


def enabled_by_env(environ: Any = None) -> bool:
    """Whether ``DURABLE_GEN_OTEL`` asks for tracing."""
    env = os.environ if environ is None else environ
    return str(env.get("DURABLE_GEN_OTEL", "")).strip().lower() in _TRUE


def _exporter_name(env: Any, key: str) -> str:
    name = str(env.get(key, "otlp") or "otlp").strip().lower()
    if name not in ("otlp", "console", "none"):
        raise OtelConfigError(f"{key} must be otlp, console or none, got {name!r}")
    return name


def _otlp(kind: str, env: Any) -> Any:
    protocol = str(env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")).strip().lower()
    if protocol not in ("http/protobuf", "grpc"):
        raise OtelConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc, got {protocol!r}"
        )
    package = "http" if protocol == "http/protobuf" else "grpc"
    module_name = f"opentelemetry.exporter.otlp.proto.{package}.{kind}_exporter"
    try:
        module = __import__(module_name, fromlist=["_"])
    except ImportError as e:
        raise OtelConfigError(
            f"OTLP export over {protocol} needs the exporter package: pip install "
            f"opentelemetry-exporter-otlp-proto-{package} (or opentelemetry-exporter-otlp); "
            f"or set OTEL_{kind.upper()}S_EXPORTER=console ({e})"
        ) from None
    return getattr(module, "OTLPSpanExporter" if kind == "trace" else "OTLPMetricExporter")()


def hooks_from_env(environ: Any = None) -> list[Hooks]:
    """SDK providers from the standard variables (installed as the global ones, shut
    down at exit) and a :class:`DurableTracing` and :class:`DurableMetrics` on them."""
    env = os.environ if environ is None else environ
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as e:
        raise OtelConfigError(
            "tracing (--otel or DURABLE_GEN_OTEL) needs the OpenTelemetry SDK: "
            f"pip install 'durable_gen[otel]' opentelemetry-sdk ({e})"
        ) from None

    from ._metrics import DurableMetrics
    from ._tracing import DurableTracing

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    tracer_provider = TracerProvider(resource=resource)
    traces = _exporter_name(env, "OTEL_TRACES_EXPORTER")
    if traces != "none":
        exporter = ConsoleSpanExporter() if traces == "console" else _otlp("trace", env)
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    readers = []
    metrics_exporter = _exporter_name(env, "OTEL_METRICS_EXPORTER")
    if metrics_exporter != "none":
        exporter = (
            ConsoleMetricExporter() if metrics_exporter == "console" else _otlp("metric", env)
        )
        readers.append(PeriodicExportingMetricReader(exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    atexit.register(meter_provider.shutdown)
    atexit.register(tracer_provider.shutdown)
    # batches go out in the background: no flush at each invocation's end
    return [DurableTracing(tracer_provider, flush=False), DurableMetrics(meter_provider)]
