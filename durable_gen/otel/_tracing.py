"""The tracing hooks: spans in AWS's durable-execution conventions (see the package doc)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from .._core.errors import ErrorObject
from .._core.log import (
    TERMINAL_STATUSES,
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
)
from .._core.traceparent import TraceParent, parse_traceparent
from .._engine.hooks import Hooks
from ._ids import execution_root_span_id, operation_span_id, trace_id_for, workflow_span_id

__all__ = ["DurableTracing"]

VIEWS = ("invocation", "execution")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_INTERNAL = SpanKind.INTERNAL
_STEP_NS = 1_000  # timestamps within one execution never go backwards: +1 µs


class _IdOverride:
    """An OpenTelemetry SDK id generator that hands out chosen ids when asked to.

    Installed on this package's own tracer only (other instrumentation keeps the
    provider's generator); the choice lives in a context variable, so threads
    running parallel branches cannot take each other's ids.
    """

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._chosen: contextvars.ContextVar[tuple[int | None, int | None] | None] = (
            contextvars.ContextVar("durable_gen_otel_ids", default=None)
        )

    @contextmanager
    def use(self, *, trace_id: int | None = None, span_id: int | None = None) -> Iterator[None]:
        token = self._chosen.set((trace_id, span_id))
        try:
            yield
        finally:
            self._chosen.reset(token)

    def choose(self, trace_id: int | None, span_id: int | None) -> contextvars.Token[Any]:
        """:meth:`use` without a context manager (the hot path): reset the token after."""
        return self._chosen.set((trace_id, span_id))

    def reset(self, token: contextvars.Token[Any]) -> None:
        self._chosen.reset(token)

    def generate_trace_id(self) -> int:
        chosen = self._chosen.get()
        if chosen is not None and chosen[0] is not None:
            return chosen[0]
        return int(self._fallback.generate_trace_id())

    def generate_span_id(self) -> int:
        chosen = self._chosen.get()
        if chosen is not None and chosen[1] is not None:
            self._chosen.set((chosen[0], None))  # one span only
            return chosen[1]
        return int(self._fallback.generate_span_id())

    def is_trace_id_random(self) -> bool:
        return False


class _OpMeta:
    __slots__ = ("id", "name", "parent_id", "start_ns", "sub_type", "type")

    def __init__(
        self,
        op_id: str,
        type_: OperationType,
        sub_type: str | None,
        name: str | None,
        parent_id: str | None,
        start_ns: int,
    ) -> None:
        self.id = op_id
        self.type = type_
        self.sub_type = sub_type
        self.name = name
        self.parent_id = parent_id
        self.start_ns = start_ns


class _Invocation:
    """What one invocation of one execution holds while it runs."""

    def __init__(
        self, arn: str, trace_id: int, started_ms: int, first: bool, flags: TraceFlags = _SAMPLED
    ) -> None:
        self.arn = arn
        self.trace_id = trace_id
        self.flags = flags
        self.started_ms = started_ms
        self.first = first
        self.invocation_span: Span | None = None
        self.ops: dict[str, _OpMeta] = {}
        # invocation view: recording operation spans open in this invocation
        self.op_spans: dict[str, Span] = {}
        self.attempt_spans: dict[tuple[str, int], Span] = {}
        self.last_attempt: dict[str, int] = {}
        self.ended: set[str] = set()
        self.virtual: dict[str, _OpMeta] = {}  # virtual child contexts running
        # made once, used by every span of the invocation (all immutable values)
        self.workflow = self.ctx(workflow_span_id(arn))
        self.ancestor = self.ctx(execution_root_span_id(arn))
        self.op_ctxs: dict[str, SpanContext] = {}
        self.parents: dict[int, Context] = {}  # span id -> a context holding it as parent
        self.links: dict[int, Link] = {}  # span id -> a link to it

    def ctx(self, span_id: int) -> SpanContext:
        return SpanContext(self.trace_id, span_id, is_remote=False, trace_flags=self.flags)

    def op_ctx(self, op_id: str) -> SpanContext:
        ctx = self.op_ctxs.get(op_id)
        if ctx is None:
            ctx = self.op_ctxs[op_id] = self.ctx(operation_span_id(self.arn, op_id))
        return ctx

    def parent(self, span: SpanContext) -> Context:
        context = self.parents.get(span.span_id)
        if context is None:  # one trace per invocation: the span id says which
            context = self.parents[span.span_id] = trace.set_span_in_context(NonRecordingSpan(span))
        return context

    def link(self, span: SpanContext) -> Link:
        link = self.links.get(span.span_id)
        if link is None:
            link = self.links[span.span_id] = Link(span)
        return link


class DurableTracing(Hooks):
    """Lifecycle hooks that trace durable executions with OpenTelemetry.

    Pass it to an engine: ``SqliteEngine(path, hooks=[DurableTracing()])``.
    ``tracer_provider``: the provider to use (default: the global one); ``view``:
    ``"invocation"`` (operation spans under each Invocation span, linked to the
    Workflow span; AWS's ``InvocationOtelPlugin``) or ``"execution"`` (one
    Workflow-rooted tree across invocations, operations linked to the invocation
    that ended them; AWS's ``ExecutionOtelPlugin``). ``clock_ns``: the time of
    live events (default: the wall clock); ``flush``: force-flush the provider at
    the end of every invocation (what a Lambda function needs before it freezes).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        view: str = "invocation",
        clock_ns: Callable[[], int] | None = None,
        workflow_span_name: str = "Workflow",
        instrument_name: str = "durable_gen",
        flush: bool = True,
    ) -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be 'invocation' or 'execution', got {view!r}")
        if not isinstance(workflow_span_name, str) or not workflow_span_name:
            raise ValueError(
                f"workflow_span_name must be a non-empty string, got {workflow_span_name!r}"
            )
        self.view = view
        self._provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = self._provider.get_tracer(instrument_name)
        self._ids = self._install_ids(self._tracer)
        self._clock_ns = clock_ns or time.time_ns
        self._workflow_span_name = workflow_span_name
        self._flush = flush
        self._lock = threading.RLock()
        self._last_ns = 0
        self._started: dict[str, int] = {}  # execution -> start (ms), from on_invocation_info
        self._callers: dict[str, TraceParent] = {}  # execution -> caller, from on_trace_context
        self._runs: dict[str, _Invocation] = {}

    def __repr__(self) -> str:
        return f"DurableTracing(view={self.view!r})"

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _install_ids(tracer: Any) -> _IdOverride | None:
        """Our id generator on an SDK tracer (None: ids stay random, e.g. a no-op tracer)."""
        current = getattr(tracer, "id_generator", None)
        if current is None:
            return None
        if isinstance(current, _IdOverride):
            return current
        ids = _IdOverride(current)
        tracer.id_generator = ids
        return ids

    def _now(self) -> int:
        """The time of a live event: the clock, but never before the previous one."""
        with self._lock:
            now = self._clock_ns()
            if now <= self._last_ns:
                now = self._last_ns + _STEP_NS
            self._last_ns = now
            return now

    def _start(
        self,
        run: _Invocation,
        name: str,
        parent: SpanContext,
        attributes: dict[str, Any],
        start_ns: int,
        *,
        span_id: int | None = None,
        trace_id: int | None = None,
        links: tuple[SpanContext, ...] = (),
    ) -> Span:
        context = run.parent(parent)
        linked = [run.link(c) for c in links]
        if self._ids is None or (span_id is None and trace_id is None):
            return self._tracer.start_span(name, context, _INTERNAL, attributes, linked, start_ns)
        token = self._ids.choose(trace_id, span_id)
        try:
            return self._tracer.start_span(name, context, _INTERNAL, attributes, linked, start_ns)
        finally:
            self._ids.reset(token)

    def _attributes(
        self, run: _Invocation, meta: _OpMeta, status: str | None = None
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "durable.execution.arn": run.arn,
            "durable.operation.id": meta.id,
            "durable.operation.type": meta.type.value,
        }
        if meta.sub_type is not None:
            attributes["durable.operation.subtype"] = meta.sub_type
        if status is not None:
            attributes["durable.operation.status"] = status
        if meta.name is not None:
            attributes["durable.operation.name"] = meta.name
        return attributes

    def _meta_from_update(self, run: _Invocation, update: OperationUpdate) -> _OpMeta:
        meta = run.ops.get(update.id)
        if meta is None:
            meta = _OpMeta(
                update.id, update.type, update.sub_type, update.name, update.parent_id, self._now()
            )
            run.ops[update.id] = meta
        return meta

    def _workflow_ctx(self, run: _Invocation) -> SpanContext:
        return run.workflow

    def _ancestor(self, run: _Invocation) -> SpanContext:
        return run.ancestor

    def _op_ctx(self, run: _Invocation, op_id: str) -> SpanContext:
        return run.op_ctx(op_id)

    def _invocation_ctx(self, run: _Invocation) -> SpanContext:
        span = run.invocation_span
        return span.get_span_context() if span is not None else self._ancestor(run)

    def _parent_of(self, run: _Invocation, parent_id: str | None) -> SpanContext:
        """Where an operation's span hangs (by view)."""
        if self.view == "execution":
            if parent_id is not None:
                return self._op_ctx(run, parent_id)
            return self._workflow_ctx(run)
        if parent_id is not None:
            span = run.op_spans.get(parent_id)
            if span is not None:
                return span.get_span_context()
        return self._invocation_ctx(run)

    # ------------------------------------------------------------------ invocations

    def on_invocation_info(self, execution_id: str, *, execution_started: int) -> None:
        with self._lock:
            self._started[execution_id] = execution_started

    def on_trace_context(self, execution_id: str, *, traceparent: str) -> None:
        caller = parse_traceparent(traceparent)
        if caller is not None:
            with self._lock:
                self._callers[execution_id] = caller

    def invoke_trace_context(
        self,
        execution_id: str,
        *,
        operation_id: str,
        execution_started: int,
        traceparent: str | None,
    ) -> str | None:
        # the invoke operation's logical span: its first (or only) span has this id in
        # both views, in the invoking execution's trace (its caller's, if it has one)
        caller = parse_traceparent(traceparent)
        return str(
            TraceParent(
                trace_id=caller.trace_id
                if caller is not None
                else trace_id_for(execution_id, execution_started),
                span_id=operation_span_id(execution_id, operation_id),
                sampled=caller is None or caller.sampled,
            )
        )

    def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
        with self._lock:
            started_ms = self._started.pop(execution_id, self._clock_ns() // 1_000_000)
            caller = self._callers.pop(execution_id, None)
        if caller is None:
            run = _Invocation(
                execution_id, trace_id_for(execution_id, started_ms), started_ms, first
            )
            above = SpanContext(run.trace_id, 0, is_remote=False, trace_flags=_SAMPLED)
        else:
            # started under a caller's trace (AWS's ExecutionTraceContext with an
            # extracted X-Ray parent): its trace id, and the root a child of its span
            flags = _SAMPLED if caller.sampled else TraceFlags(TraceFlags.DEFAULT)
            run = _Invocation(execution_id, caller.trace_id, started_ms, first, flags)
            above = SpanContext(caller.trace_id, caller.span_id, is_remote=True, trace_flags=flags)
        with self._lock:
            self._runs[execution_id] = run
        if first:
            # the execution's one root: a zero-length anchor both views hang from (the
            # trace's root too, unless the execution continues a caller's trace)
            at = started_ms * 1_000_000
            root = self._start(
                run,
                "DurableExecutionRoot",
                above,
                {"durable.execution.synthetic_root": True},
                at,
                trace_id=run.trace_id,
                span_id=execution_root_span_id(run.arn),
            )
            root.end(end_time=at)
        run.invocation_span = self._start(
            run,
            "Invocation",
            self._ancestor(run),
            {"durable.execution.arn": run.arn, "durable.invocation.first": first},
            self._now(),
        )

    def on_invocation_end(
        self, execution_id: str, *, status: str, error: ErrorObject | None
    ) -> None:
        with self._lock:
            run = self._runs.pop(execution_id, None)
        if run is None:
            return
        try:
            # spans still open (an operation that did not end in this invocation):
            # the invocation view closes them as they stand; attempts cut short say so
            for key, open_span in reversed(list(run.attempt_spans.items())):
                open_span.set_attribute("durable.span.truncated_at_invocation_boundary", True)
                open_span.end(end_time=self._now())
                run.attempt_spans.pop(key, None)
            for op_id in reversed(list(run.op_spans)):
                run.op_spans.pop(op_id).end(end_time=self._now())
            span = run.invocation_span
            if span is not None:
                # RETRY: the invocation raised and will be retried; AWS names it so
                span.set_attribute(
                    "durable.invocation.status", "RETRYING" if status == "RETRY" else status
                )
                if status in ("SUCCEEDED", "PENDING"):
                    span.set_status(Status(StatusCode.OK))
                elif status in ("FAILED", "RETRY"):
                    span.set_status(Status(StatusCode.ERROR, _message(error)))
                span.end(end_time=self._now())
            if status in ("SUCCEEDED", "FAILED"):
                workflow = self._start(
                    run,
                    self._workflow_span_name,
                    self._ancestor(run),
                    {"durable.execution.arn": run.arn, "durable.execution.status": status},
                    run.started_ms * 1_000_000,
                    span_id=workflow_span_id(run.arn),
                )
                if status == "SUCCEEDED":
                    workflow.set_status(Status(StatusCode.OK))
                else:
                    workflow.set_status(Status(StatusCode.ERROR, _message(error)))
                workflow.end(end_time=self._now())
        finally:
            if self._flush:
                flush = getattr(self._provider, "force_flush", None)
                if flush is not None:
                    flush()

    # ------------------------------------------------------------------ operations

    def on_operation_start(self, execution_id: str, update: OperationUpdate) -> None:
        run = self._runs.get(execution_id)
        if run is None or update.type is OperationType.EXECUTION:
            return
        with self._lock:
            if update.id in run.ops:
                return  # a new attempt's START of an operation this invocation resumed
            meta = self._meta_from_update(run, update)
            if self.view == "invocation":
                run.op_spans[meta.id] = self._start(
                    run,
                    meta.name or meta.id,
                    self._parent_of(run, meta.parent_id),
                    self._attributes(run, meta, "STARTED"),
                    meta.start_ns,
                    span_id=run.op_ctx(meta.id).span_id,
                    links=(self._workflow_ctx(run),),
                )

    def on_operation_replayed(self, execution_id: str, op: Operation, *, changed: bool) -> None:
        run = self._runs.get(execution_id)
        if run is None or op.type is OperationType.EXECUTION:
            return
        with self._lock:
            if op.id in run.ended:
                return
            terminal = op.status in TERMINAL_STATUSES
            meta = run.ops.get(op.id)
            if meta is not None:
                # started in this invocation: its own hooks tell its story, unless the
                # service ended it while the invocation ran (a timer fired in the
                # answer to the checkpoint that would have suspended it)
                if terminal and changed:
                    end_ns = (op.end_timestamp or op.start_timestamp) * 1_000_000
                    self._end_operation(run, meta, op.status.value, op.error, end_ns)
                return
            if terminal and not changed:
                return  # reported by the invocation that first saw it ended
            meta = _OpMeta(
                op.id, op.type, op.sub_type, op.name, op.parent_id, op.start_timestamp * 1_000_000
            )
            run.ops[op.id] = meta
            if op.attempt is not None:
                run.last_attempt.setdefault(op.id, op.attempt)
            if self.view == "invocation":
                # a continuation segment of the operation, linked to its logical span
                run.op_spans[op.id] = self._start(
                    run,
                    meta.name or meta.id,
                    self._parent_of(run, meta.parent_id),
                    self._attributes(run, meta, op.status.value),
                    self._now(),
                    links=(self._op_ctx(run, op.id), self._workflow_ctx(run)),
                )
            if terminal:
                end_ns = (op.end_timestamp or op.start_timestamp) * 1_000_000
                self._end_operation(run, meta, op.status.value, op.error, end_ns)

    def on_operation_end(self, execution_id: str, update: OperationUpdate) -> None:
        run = self._runs.get(execution_id)
        if run is None or update.type is OperationType.EXECUTION:
            return
        status = "SUCCEEDED" if update.action is OperationAction.SUCCEED else "FAILED"
        with self._lock:
            meta = self._meta_from_update(run, update)
            if self.view == "invocation" and meta.id not in run.op_spans:
                # started by an earlier invocation and not replayed here: a segment now
                run.op_spans[meta.id] = self._start(
                    run,
                    meta.name or meta.id,
                    self._parent_of(run, meta.parent_id),
                    self._attributes(run, meta, status),
                    self._now(),
                    links=(self._op_ctx(run, meta.id), self._workflow_ctx(run)),
                )
            self._end_operation(run, meta, status, update.error, None)

    def _end_operation(
        self,
        run: _Invocation,
        meta: _OpMeta,
        status: str,
        error: ErrorObject | None,
        end_ns: int | None,
    ) -> None:
        if meta.id in run.ended:
            return
        run.ended.add(meta.id)
        attempt = run.last_attempt.get(meta.id)
        if self.view == "invocation":
            # a segment of this invocation: it ends now, whenever the operation did
            end_ns = None
            span = run.op_spans.pop(meta.id)
            span.set_attribute("durable.operation.status", status)
            if attempt is not None and meta.type is OperationType.STEP:
                span.set_attribute("durable.attempt.number", attempt)
        else:
            attributes = self._attributes(run, meta, status)
            if attempt is not None and meta.type is OperationType.STEP:
                attributes["durable.attempt.number"] = attempt
            end = self._now() if end_ns is None else end_ns
            span = self._start(
                run,
                meta.name or meta.id,
                self._parent_of(run, meta.parent_id),
                attributes,
                min(meta.start_ns, end),
                span_id=run.op_ctx(meta.id).span_id,
                links=(self._invocation_ctx(run),),
            )
        if status == "SUCCEEDED":
            span.set_status(Status(StatusCode.OK))
        else:
            span.set_status(Status(StatusCode.ERROR, _message(error)))
        span.end(end_time=self._now() if end_ns is None else max(end_ns, meta.start_ns))

    # ------------------------------------------------------------------ virtual contexts

    def on_virtual_context_start(
        self,
        execution_id: str,
        *,
        operation_id: str,
        name: str | None,
        sub_type: str | None,
        parent_id: str | None,
    ) -> None:
        run = self._runs.get(execution_id)
        if run is None:
            return
        with self._lock:
            meta = _OpMeta(
                operation_id, OperationType.CONTEXT, sub_type, name, parent_id, self._now()
            )
            run.virtual[operation_id] = meta
            if self.view == "invocation":
                # no checkpoint, no deterministic identity: a fresh span id every run
                run.op_spans[operation_id] = self._start(
                    run,
                    name or operation_id,
                    self._parent_of(run, parent_id),
                    self._attributes(run, meta),
                    meta.start_ns,
                    links=(self._workflow_ctx(run),),
                )

    def on_virtual_context_end(
        self, execution_id: str, *, operation_id: str, error: ErrorObject | None
    ) -> None:
        run = self._runs.get(execution_id)
        if run is None:
            return
        with self._lock:
            meta = run.virtual.pop(operation_id, None)
            if meta is None:
                return
            if self.view == "invocation":
                span = run.op_spans.pop(operation_id, None)
                if span is None:
                    return
            else:
                span = self._start(
                    run,
                    meta.name or operation_id,
                    self._parent_of(run, meta.parent_id),
                    self._attributes(run, meta),
                    meta.start_ns,
                    links=(self._invocation_ctx(run),),
                )
            if error is None:
                span.set_status(Status(StatusCode.OK))
            else:
                span.set_status(Status(StatusCode.ERROR, _message(error)))
            span.end(end_time=self._now())

    # ------------------------------------------------------------------ attempts

    def on_step_attempt_start(
        self, execution_id: str, *, operation_id: str, name: str | None, attempt: int
    ) -> None:
        run = self._runs.get(execution_id)
        if run is None:
            return
        with self._lock:
            meta = run.ops.get(operation_id) or _OpMeta(
                operation_id, OperationType.STEP, None, name, None, self._now()
            )
            attributes = self._attributes(run, meta)
            attributes["durable.attempt.number"] = attempt
            if self.view == "invocation":
                op_span = run.op_spans.get(operation_id)
                parent = (
                    op_span.get_span_context()
                    if op_span is not None
                    else self._parent_of(run, meta.parent_id)
                )
                links: tuple[SpanContext, ...] = (self._workflow_ctx(run),)
            else:
                parent = self._op_ctx(run, operation_id)
                links = (self._invocation_ctx(run),)
            run.attempt_spans[(operation_id, attempt)] = self._start(
                run,
                f"{meta.name or operation_id} attempt {attempt}",
                parent,
                attributes,
                self._now(),
                links=links,
            )

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
        run = self._runs.get(execution_id)
        if run is None:
            return
        with self._lock:
            run.last_attempt[operation_id] = attempt
            span = run.attempt_spans.pop((operation_id, attempt), None)
            if span is None:
                return
            span.set_attribute("durable.attempt.outcome", "SUCCEEDED" if succeeded else "FAILED")
            if succeeded:
                span.set_status(Status(StatusCode.OK))
            else:
                if error is not None:
                    span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error) if error else ""))
            span.end(end_time=self._now())


def _message(error: ErrorObject | None) -> str:
    if error is None:
        return ""
    return error.message or error.type or ""
