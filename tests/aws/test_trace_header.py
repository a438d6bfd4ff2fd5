"""A traced workflow's Invoke under the Lambda shim sends its trace to the invoked
function as ``ChainedInvokeOptions.XAmznTraceId`` (an X-Ray header naming the invoke
operation's span), as AWS's otel instrumentation does, so that Lambda continues the
caller's trace in the invoked execution; untraced, nothing is sent."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from durable_gen import Invoke
from durable_gen._core.log import OperationAction, OperationType, OperationUpdate
from durable_gen._core.traceparent import TraceParent, from_xray, to_xray
from durable_gen.aws import durable_handler

from .conftest import DURABLE_TARGET
from .test_emulator import price

pytest.importorskip("opentelemetry.sdk.trace")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from durable_gen.otel import DurableTracing, operation_span_id


def invoking(event: Any) -> Any:
    return (yield Invoke(DURABLE_TARGET, {"qty": 2}, name="quote"))


def test_to_xray_is_the_inverse_of_from_xray() -> None:
    for sampled in (True, False):
        parent = TraceParent(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, sampled=sampled
        )
        header = to_xray(parent)
        assert header == (
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;"
            f"Sampled={1 if sampled else 0}"
        )
        assert from_xray(header) == parent


def test_a_chained_invoke_update_carries_its_trace_header_on_the_wire() -> None:
    update = OperationUpdate(
        id="op",
        type=OperationType.CHAINED_INVOKE,
        action=OperationAction.START,
        function_name="fn",
        trace_header="Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7",
    )
    wire = update.to_dict()
    assert wire["ChainedInvokeOptions"] == {
        "FunctionName": "fn",
        "XAmznTraceId": "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7",
    }
    assert OperationUpdate.from_dict(wire) == update
    plain = OperationUpdate(
        id="op", type=OperationType.CHAINED_INVOKE, action=OperationAction.START, function_name="f"
    )
    assert plain.to_dict()["ChainedInvokeOptions"] == {"FunctionName": "f"}


def _chained_starts(emulator: Any, hooks: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Run ``invoking`` on the emulator with ``hooks``; its CHAINED_INVOKE STARTs as sent."""
    client = boto3.client(
        "lambda",
        endpoint_url=emulator.url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-call.lambda.CheckpointDurableExecution",
        lambda params, **_: sent.append(json.loads(params["body"])),
    )
    emulator.lam.register(DURABLE_TARGET, durable_handler(price, client=emulator.client))
    arn, ex = emulator.run(durable_handler(invoking, client=client, hooks=hooks))
    assert ex["Status"] == "SUCCEEDED", ex
    assert json.loads(ex["Result"]) == {"total": 14}
    starts = [
        u
        for body in sent
        for u in body["Updates"]
        if u["Type"] == "CHAINED_INVOKE" and u["Action"] == "START"
    ]
    return arn, starts


def test_a_traced_invoke_sends_the_invoke_span_as_xamzntraceid(emulator: Any) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    arn, starts = _chained_starts(emulator, [DurableTracing(provider)])
    assert len(starts) == 1
    caller = from_xray(starts[0]["ChainedInvokeOptions"]["XAmznTraceId"])
    assert caller is not None
    assert caller.sampled
    # the invoke operation's span, in the invoking execution's trace
    assert caller.span_id == operation_span_id(arn, starts[0]["Id"])
    provider.force_flush()
    traces = {s.context.trace_id for s in exporter.get_finished_spans()}
    assert traces == {caller.trace_id}


def test_an_untraced_invoke_sends_no_trace_header(emulator: Any) -> None:
    _, starts = _chained_starts(emulator, [])
    assert len(starts) == 1
    assert "XAmznTraceId" not in starts[0]["ChainedInvokeOptions"]
