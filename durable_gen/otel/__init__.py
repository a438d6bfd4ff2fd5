"""OpenTelemetry traces of durable executions, in AWS's durable-execution conventions.

Install ``durable_gen[otel]`` (``opentelemetry-api``; configure an SDK provider and
an exporter yourself) and pass the hooks to an engine::

    from durable_gen.otel import DurableTracing
    engine = SqliteEngine("app.db", hooks=[DurableTracing()])

Nothing here is imported unless you import it: without it an engine pays nothing.

Conventions (read from AWS's ``aws-durable-execution-sdk-python-otel`` 2.0.0 and
the requirements of ``aws-durable-execution-conformance-tests-otel`` 0.2.0; written
anew here, no code copied):

Span names
    ``Workflow`` (the execution; configurable), ``Invocation`` (one run of the
    workflow), an operation's name (or its id when unnamed), and
    ``"<operation> attempt <n>"`` for each run of a step function, a
    wait-for-condition check or a wait-for-callback submitter. All ``INTERNAL``.
Attributes (all under ``durable.``)
    every span: ``durable.execution.arn``. Workflow: ``durable.execution.status``
    (SUCCEEDED/FAILED). Invocation: ``durable.invocation.first``,
    ``durable.invocation.status`` (SUCCEEDED/FAILED/PENDING). Operation:
    ``durable.operation.id/.type/.subtype/.name/.status`` (STARTED while open) and,
    for steps, ``durable.attempt.number`` (the last attempt). Attempt: the
    operation's id/type/subtype/name plus ``durable.attempt.number`` and
    ``durable.attempt.outcome`` (SUCCEEDED/FAILED) -- no operation status.
Statuses
    OK for SUCCEEDED (and for a PENDING invocation), ERROR for FAILED, UNSET for
    an operation span that is still open when its invocation ends.
One trace per execution, deterministic ids (see ``_ids``)
    trace id from the ARN and start time; the Workflow span, each operation's
    logical span and a zero-length synthetic root (``DurableExecutionRoot``, the
    parent of the Workflow and Invocation spans, exported by the first
    invocation) have ids derived from the ARN and operation id. Spans of many
    invocations and processes therefore join one trace.
Emitted once, when the work really ran
    a replayed operation whose outcome an earlier invocation already reported
    produces nothing. The Workflow span is exported once, by the invocation that
    ends the execution (months later if need be), starting at the execution's
    recorded start.
Two views (``DurableTracing(view=...)``), as AWS has two plugins:
    ``"invocation"`` (AWS's ``InvocationOtelPlugin``): operation spans are
    children of the Invocation span (or of their enclosing context's span) and
    link to the Workflow span; an operation that spans invocations has its first
    segment on its deterministic id (status STARTED, UNSET) and a continuation
    segment in the invocation that ends it, linked to the first; attempts are
    children of their operation's segment. ``"execution"`` (AWS's
    ``ExecutionOtelPlugin``): one tree Workflow -> operation -> attempt; each
    operation is exported once, on its deterministic id, when it ends (from its
    recorded start), linked to the Invocation that ended it; attempts link to
    the Invocation they ran in.

Virtual child contexts
    record nothing, so they are reported by ``on_virtual_context_start/end`` hooks
    (the interpreter lists them as pure data, the driver calls the hooks); like
    AWS's plugins, a span with a fresh id each time the body runs.
Lambda
    ``durable_handler(..., hooks=[DurableTracing()])``: replayed operations are
    reported once, by the invocation the event's ``UpdatedOperationIds`` names
    them to (when the list is empty -- AWS's 1.4.0 emulator sends ``[]`` after a
    callback completed -- the execution's history says what changed).
An invocation that raises
    (a crash, a store failure) ends its Invocation span with ERROR and
    ``durable.invocation.status`` RETRYING (AWS's plugin leaves it UNSET); no
    Workflow span: the execution goes on.
Metrics
    :class:`DurableMetrics` (see ``_metrics``). ``durable-gen run|worker|serve
    --otel`` or ``DURABLE_GEN_OTEL=1``: :func:`hooks_from_env` (see ``_env``).

Propagation
    AWS's plugins hand an invoke's span to the service as ``XAmznTraceId``
    (``propagation.py``, ``invocation_plugin.provide_propagation_metadata``), and a
    target's invocations read ``_X_AMZN_TRACE_ID`` (``context_extractors.
    xray_context_extractor``): its ``Root`` becomes the execution's trace id and its
    ``Parent`` the execution's ancestor (``execution_trace_context.
    ExecutionTraceContext.resolve``). Here the same: an execution started under a
    caller's context (an ``Invoke``'s span, from ``invoke_trace_context``; a
    ``traceparent`` given to ``serve`` or ``start``; ``_X_AMZN_TRACE_ID`` under the
    shim) takes the caller's trace id, and its ``DurableExecutionRoot`` is a child
    of the caller's span. The synthetic root stays between them (AWS exports none
    under a remote parent; its service's own segment sits there instead): AWS's
    requirements reject an invoked Workflow span whose parent is an SDK span
    (``$reject_sdk_span``). The context is stored with the execution
    (``executions.trace_context``) and handed to each invocation's
    ``on_trace_context``, so every invocation joins the same trace.
"""

from ._env import OtelConfigError, enabled_by_env, hooks_from_env
from ._ids import execution_root_span_id, operation_span_id, trace_id_for, workflow_span_id
from ._metrics import DurableMetrics
from ._tracing import DurableTracing

__all__ = [
    "DurableMetrics",
    "OtelConfigError",
    "enabled_by_env",
    "hooks_from_env",
    "DurableTracing",
    "execution_root_span_id",
    "operation_span_id",
    "trace_id_for",
    "workflow_span_id",
]
