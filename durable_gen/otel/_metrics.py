"""Metrics of durable executions through the OpenTelemetry metrics API.

:class:`DurableMetrics` is a hook, like :class:`~durable_gen.otel.DurableTracing`;
pass both to an engine (or to ``durable_handler``). Like the spans, each count is
made once, by the invocation that did the work: an operation replayed from its
log is not counted again. Instruments (meter ``durable_gen``):

``durable.executions.started`` / ``.succeeded`` / ``.failed`` (counters)
    executions whose first invocation ran here / that ended SUCCEEDED / FAILED.
``durable.invocations`` (counter; ``durable.invocation.status``)
    SUCCEEDED, FAILED, PENDING or RETRY (the invocation raised and is retried).
``durable.operations.started`` / ``.ended`` (counters)
    by ``durable.operation.type`` and ``durable.operation.subtype``; ended also by
    ``durable.operation.status`` (SUCCEEDED/FAILED, or the service's outcome --
    TIMED_OUT, ... -- for waits, callbacks and invokes it ended).
``durable.step.attempts`` (counter; type, subtype, ``durable.attempt.outcome``)
    step function runs (steps, wait-for-condition checks, callback submitters).
``durable.step.retries`` (counter; type, subtype)
    attempts after the first.
``durable.checkpoint.duration`` (histogram, s; ``durable.checkpoint.durable``)
    how long the store took to take a batch of updates.
``durable.checkpoint.updates`` (histogram, updates; ``durable.checkpoint.durable``)
    the size of each batch handed to the store.
``durable.callbacks.open`` (up-down counter)
    callbacks created and not yet seen completed (+1 when created, -1 in the
    invocation that first sees it done; summed over processes it is the number open).
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import metrics

from .._core.errors import ErrorObject
from .._core.log import (
    TERMINAL_STATUSES,
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
)
from .._engine.hooks import Hooks

__all__ = ["DurableMetrics"]

_CALLBACK = OperationType.CALLBACK


class DurableMetrics(Hooks):
    """Lifecycle hooks that count durable work with OpenTelemetry metrics.

    ``meter_provider``: the provider to use (default: the global one).
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        instrument_name: str = "durable_gen",
    ) -> None:
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter(instrument_name)
        self._started = meter.create_counter(
            "durable.executions.started", unit="{execution}", description="executions started"
        )
        self._succeeded = meter.create_counter(
            "durable.executions.succeeded", unit="{execution}", description="executions succeeded"
        )
        self._failed = meter.create_counter(
            "durable.executions.failed", unit="{execution}", description="executions failed"
        )
        self._invocations = meter.create_counter(
            "durable.invocations", unit="{invocation}", description="invocations, by status"
        )
        self._ops_started = meter.create_counter(
            "durable.operations.started", unit="{operation}", description="operations started"
        )
        self._ops_ended = meter.create_counter(
            "durable.operations.ended", unit="{operation}", description="operations ended"
        )
        self._attempts = meter.create_counter(
            "durable.step.attempts", unit="{attempt}", description="step function runs"
        )
        self._retries = meter.create_counter(
            "durable.step.retries", unit="{attempt}", description="step attempts after the first"
        )
        self._checkpoint_seconds = meter.create_histogram(
            "durable.checkpoint.duration", unit="s", description="time the store took a batch"
        )
        self._checkpoint_updates = meter.create_histogram(
            "durable.checkpoint.updates", unit="{update}", description="updates in a batch"
        )
        self._callbacks_open = meter.create_up_down_counter(
            "durable.callbacks.open", unit="{callback}", description="callbacks not yet completed"
        )
        # (execution, operation id) -> (type, subtype), for attempts: bounded by what
        # is running (entries go when the operation ends or the invocation does)
        self._kinds: dict[tuple[str, str], tuple[str, str]] = {}
        self._lock = threading.Lock()  # worker pools call hooks from several threads

    def __repr__(self) -> str:
        return "DurableMetrics()"

    def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
        if first:
            self._started.add(1)

    def on_invocation_end(
        self, execution_id: str, *, status: str, error: ErrorObject | None
    ) -> None:
        self._invocations.add(1, {"durable.invocation.status": status})
        if status == "SUCCEEDED":
            self._succeeded.add(1)
        elif status == "FAILED":
            self._failed.add(1)
        with self._lock:
            for key in [k for k in self._kinds if k[0] == execution_id]:
                del self._kinds[key]

    def on_operation_start(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.EXECUTION:
            return
        key = (execution_id, update.id)
        kind = (update.type.value, update.sub_type or "")
        with self._lock:
            if key in self._kinds:
                return  # a new attempt's START of an operation this invocation resumed
            self._kinds[key] = kind
        self._ops_started.add(
            1, {"durable.operation.type": kind[0], "durable.operation.subtype": kind[1]}
        )
        if update.type is _CALLBACK:
            self._callbacks_open.add(1)

    def on_operation_end(self, execution_id: str, update: OperationUpdate) -> None:
        if update.type is OperationType.EXECUTION:
            return
        status = "SUCCEEDED" if update.action is OperationAction.SUCCEED else "FAILED"
        self._ended(update.type.value, update.sub_type or "", status)
        with self._lock:
            self._kinds.pop((execution_id, update.id), None)

    def on_operation_replayed(self, execution_id: str, op: Operation, *, changed: bool) -> None:
        if not changed or op.type is OperationType.EXECUTION:
            return
        if op.status in TERMINAL_STATUSES:
            # ended while the execution was suspended (by the service, or by an
            # invocation that crashed before it could say so): counted here, once
            self._ended(op.type.value, op.sub_type or "", op.status.value)
            if op.type is _CALLBACK:
                self._callbacks_open.add(-1)
        else:
            with self._lock:
                self._kinds[(execution_id, op.id)] = (op.type.value, op.sub_type or "")

    def _ended(self, type_: str, sub_type: str, status: str) -> None:
        self._ops_ended.add(
            1,
            {
                "durable.operation.type": type_,
                "durable.operation.subtype": sub_type,
                "durable.operation.status": status,
            },
        )

    def on_checkpoint(
        self, execution_id: str, *, updates: int, durable: bool, seconds: float
    ) -> None:
        attributes = {"durable.checkpoint.durable": durable}
        self._checkpoint_seconds.record(seconds, attributes)
        self._checkpoint_updates.record(updates, attributes)

    def on_step_attempt_end(
        self,
        execution_id: str,
        *,
        operation_id: str,
        name: str | None,
        attempt: int,
        succeeded: bool,
        error: BaseException | None,
    ) -> None:
        type_, sub_type = self._kinds.get((execution_id, operation_id), ("STEP", ""))
        attributes: dict[str, Any] = {
            "durable.operation.type": type_,
            "durable.operation.subtype": sub_type,
        }
        if attempt > 1:
            self._retries.add(1, attributes)
        attributes["durable.attempt.outcome"] = "SUCCEEDED" if succeeded else "FAILED"
        self._attempts.add(1, attributes)
