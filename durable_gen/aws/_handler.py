"""The Lambda handler: one durable invocation of a workflow.

``durable_handler(workflow)`` returns ``handler(event, context)``. Each call:

1. reads the invocation event (``DurableExecutionArn``, ``CheckpointToken``,
   ``InitialExecutionState``) and fetches the remaining state pages with
   ``GetDurableExecutionState`` while ``NextMarker`` is set;
2. takes the input from the EXECUTION operation's ``ExecutionDetails.InputPayload``
   (JSON; blank means ``{}``, as for the AWS SDK);
3. runs the pure :class:`~durable_gen._core.interpreter.Interpreter`, performing its
   commands: a step function runs inline in the handler's thread; steps handed out
   together (Parallel/Map branches, combinators) run concurrently on a thread
   pool of ``max_workers``; updates whose command says
   ``durable_first`` (and every ``Checkpoint``, ``Suspend``, ``Complete`` and
   ``Fail``) are flushed with ``CheckpointDurableExecution``; the others (an
   at-least-once step START, a context START) wait in a buffer and ride along with
   the next flush. The returned deltas are merged into the interpreter with
   ``checkpointed()``, so service-assigned values (a callback's ``CallbackId``)
   reach the workflow;
4. returns ``{"Status": "SUCCEEDED", "Result": <JSON>}``, ``{"Status": "FAILED",
   "Error": {...}}`` or ``{"Status": "PENDING"}`` (only with something pending).

Results larger than the Lambda response limit (6 MiB - 50 bytes) are checkpointed
with an EXECUTION SUCCEED update (the last of its batch) and ``Result`` is ``""``.

What ends an invocation without a status (the handler raises, Lambda retries):

- API failures classified retryable (see ``_api``);
- **non-determinism** (:class:`NonDeterminismError`) and a corrupt log, by default.
  The AWS SDK returns FAILED for these, which ends the execution for good. Here
  the workflow's recorded progress is kept instead: nothing terminal is written,
  Lambda retries the invocation, and deploying a fixed (or the previous) version
  lets the execution resume -- the same rule as the embedded engine's. Pass
  ``on_nondeterminism="fail"`` for the AWS SDK's behaviour.

API failures that retrying cannot cure (a refused update, a missing execution) end
the execution FAILED with the :class:`StoreError`. A malformed event raises
:class:`InvalidEventError` naming the field: such an event does not come from the
durable service, so there is no execution to fail.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, overload

import attrs

from .._core.descriptors import check_generator_function
from .._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    InternalError,
    NonDeterminismError,
    SerializationError,
    StoreError,
    brief,
    error_from_exception,
)
from .._core.interpreter import Interpreter
from .._core.log import (
    TERMINAL_STATUSES,
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
)
from .._core.serdes import CBOR_PREFIX
from .._core.traceparent import from_xray, parse_traceparent, to_xray
from .._engine.driver import (
    InvocationOutcome,
    drive_interpreter,
)
from .._engine.hooks import (
    HookRunner,
    Hooks,
)
from .._engine.meter import (
    Meter,
    compute_meter,
)
from .._stores.encrypted import (
    EncryptedStore,
    PayloadCipher,
)
from ._api import ApiRetry, BatchLimits, Checkpointer, TokenRevoked, parse_operations

_meter_logger = logging.getLogger("durable_gen.meter")

__all__ = ["DurableHandler", "InvalidEventError", "LAMBDA_RESPONSE_LIMIT", "durable_handler"]

#: Largest ``Result`` returned in the response; larger ones are checkpointed.
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024 - 50


class InvalidEventError(DurableGenError, ValueError):
    """The Lambda event is not a durable-execution invocation event."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(
            f"invalid durable invocation event: {field} {problem}. A durable handler "
            "must be invoked by the Lambda durable-execution service (check that the "
            "function has a DurableConfig and is invoked through a version or alias)"
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class DurableHandler:
    """A workflow as a Lambda handler: call it with ``(event, context)``.

    ``client`` is a boto3 ``lambda`` client (created on first use and kept for
    warm invocations when not given, with botocore's own retries off so that
    ``retry`` is the only retry layer; assignable, e.g. to point a deployed
    module's handler at an emulator). ``limits`` bounds checkpoint batches and
    state pages, ``retry`` the retries of transient API failures; ``max_workers``
    steps run at once when the workflow starts several together.
    ``last_checkpoint_calls`` is the number of ``CheckpointDurableExecution``
    calls of the latest invocation. With ``meter_log=True`` each invocation logs
    one line (logger ``durable_gen.meter``, level INFO) metering the checkpoints
    it sent, as Lambda meters durable operations; ``last_meter`` holds it.
    With ``cipher`` (a :class:`~durable_gen.PayloadCipher`) every payload and
    error message the workflow checkpoints is encrypted (AES-256-GCM, bound to
    the execution and operation) and decrypted on replay; the execution's input,
    callback outcomes and invoke results, which others write, may arrive in plain
    text, and the execution's result is returned to the caller in plain text.
    """

    def __init__(
        self,
        workflow: Callable[..., Any],
        *,
        client: Any = None,
        limits: BatchLimits | None = None,
        retry: ApiRetry | None = None,
        on_nondeterminism: Literal["raise", "fail"] = "raise",
        clock: Callable[[], int] = _now_ms,
        max_workers: int = 16,
        hooks: Sequence[Hooks] = (),
        meter_log: bool = False,
        cipher: PayloadCipher | None = None,
    ) -> None:
        check_generator_function(workflow, "a workflow")
        if on_nondeterminism not in ("raise", "fail"):
            raise ValueError(
                f"on_nondeterminism must be 'raise' or 'fail', got {on_nondeterminism!r}"
            )
        self.workflow = workflow
        self._client = client
        self.limits = limits if limits is not None else BatchLimits()
        self.retry = retry if retry is not None else ApiRetry()
        self.on_nondeterminism = on_nondeterminism
        self.clock = clock
        self.max_workers = max_workers
        self.hooks = tuple(hooks)
        self.meter_log = meter_log
        self.cipher = cipher
        self.last_checkpoint_calls = 0
        self.last_meter: Meter | None = None
        functools.update_wrapper(self, workflow)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]

            # Retries are ours (ApiRetry): one layer, with the call's ClientToken kept.
            config = Config(connect_timeout=5, read_timeout=50, retries={"total_max_attempts": 1})
            self._client = boto3.client("lambda", config=config)
        return self._client

    @client.setter
    def client(self, client: Any) -> None:
        self._client = client

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        arn, token, operations, marker = parse_event(event)
        cp = Checkpointer(self.client, arn, token, limits=self.limits, retry=self.retry)
        updated = event.get("UpdatedOperationIds")
        # What changed while it was suspended, for hooks. None (absent or empty: AWS's
        # emulator sends [] even after a callback completed): the execution's history
        # tells, read only if a hook needs it.
        updated_ids = (
            frozenset(i for i in updated if isinstance(i, str))
            if isinstance(updated, list) and updated
            else None
        )
        try:
            return self._invoke(cp, arn, operations, marker, updated_ids)
        except TokenRevoked:
            return {"Status": "PENDING"}
        except StoreError as e:
            if e.retryable:
                raise
            return _failed(error_from_exception(e))
        except (NonDeterminismError, CorruptLogError) as e:
            if self.on_nondeterminism == "fail":
                return _failed(error_from_exception(e))
            raise
        finally:
            self.last_checkpoint_calls = cp.calls

    def _invoke(
        self,
        cp: Checkpointer,
        arn: str,
        operations: dict[str, Operation],
        marker: str,
        updated_ids: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        if marker:
            operations.update(cp.get_state_pages(marker))
        service = _ServiceStore(cp, dict(operations))
        store: Any = service
        execution = _execution_operation(operations, arn)
        if self.cipher is not None:
            # payloads are bound to the execution operation's id, as the driver names it
            store = EncryptedStore(service, self.cipher, outside_plaintext=True)
            operations = dict(store.load(execution.id))
            execution = operations[execution.id]
        hook = HookRunner(self.hooks, arn)
        if hook:
            hook.call("on_invocation_info", execution_started=execution.start_timestamp)
            # the trace Lambda hands the invocation (AWS's xray_context_extractor)
            caller = from_xray(os.environ.get("_X_AMZN_TRACE_ID"))
            if caller is not None and hook.wants("on_trace_context"):
                hook.call("on_trace_context", traceparent=str(caller))
            if hook.wants("invoke_trace_context") and _sends_trace_header(cp.client):
                service.trace_for = _invoke_trace(
                    hook, execution.start_timestamp, None if caller is None else str(caller)
                )
            hook.call("on_invocation_start", first=len(operations) <= 1)
        try:
            outcome = self._passes(arn, execution, operations, store, service, hook, updated_ids)
        except BaseException as e:
            if hook:  # it still ends: how, as __call__ will answer for it
                hook.call(
                    "on_invocation_end",
                    status=self._status_of_raised(e),
                    error=error_from_exception(e),
                )
            raise
        if outcome.status == "PENDING":
            response: dict[str, Any] = {"Status": "PENDING"}
        elif outcome.status == "SUCCEEDED":
            # the result goes to the caller in plain text, not through the cipher
            response = self._complete(outcome, execution.id, service)
        else:
            response = _failed(outcome.error or ErrorObject(type="Error"))
        if hook:
            hook.call("on_invocation_end", status=response["Status"], error=outcome.error)
        if self.meter_log:
            self._log_meter(arn, service)
        return response

    def _passes(
        self,
        arn: str,
        execution: Operation,
        operations: dict[str, Operation],
        store: Any,
        service: _ServiceStore,
        hook: HookRunner,
        updated: frozenset[str] | None,
    ) -> InvocationOutcome:
        """Interpret until the workflow ends or suspends with something pending.
        ``updated``: the operations changed since the previous invocation (hooks)."""
        for _ in range(_MAX_REPLAYS):
            interp = Interpreter(
                self.workflow,
                _read_input(execution),
                operations,
                now=self.clock(),
                # log records name the execution by its ARN (CloudWatch's execution-scoped
                # queries filter on it); the driver's store still uses the operation id
                execution_id=arn,
            )
            if hook:
                interp.observed = []  # recorded operations reached, for hooks
                interp.virtual_events = []
            try:
                outcome = drive_interpreter(
                    interp,
                    execution.id,
                    store,
                    self.clock,
                    self.max_workers,
                    hook,
                    updated_ids=updated,
                )
            finally:
                interp.close()
            if outcome.status != "PENDING" or _anything_pending(service.known):
                return outcome
            # The checkpoint that suspended it came back with what it waited for
            # already done (the service fired a due timer in its answer): go on in
            # this invocation, replaying the log as it now stands, as AWS's SDK does
            # when a checkpoint's answer completes the operation it waits on.
            previous = operations
            operations = dict(store.load(execution.id))
            updated = frozenset(i for i, op in operations.items() if previous.get(i) != op)
        raise InternalError(
            f"the workflow of execution {arn!r} suspended {_MAX_REPLAYS} times in one "
            "invocation with nothing pending; this is a bug in durable_gen"
        )

    def _status_of_raised(self, e: BaseException) -> str:
        """The invocation status :meth:`__call__` gives an exception ``_invoke`` raised."""
        if isinstance(e, TokenRevoked):
            return "PENDING"
        if isinstance(e, StoreError) and not e.retryable:
            return "FAILED"
        if isinstance(e, (NonDeterminismError, CorruptLogError)):
            return "FAILED" if self.on_nondeterminism == "fail" else "RETRY"
        return "RETRY"

    def _log_meter(self, arn: str, store: _ServiceStore) -> None:
        # What this invocation checkpointed (the service adds what it records
        # itself, e.g. callback completions, to the execution's history).
        self.last_meter = compute_meter(
            updates=store.sent, operations=store.known, execution_id=arn
        )
        _meter_logger.info(self.last_meter.summary_line())

    def _complete(
        self, outcome: InvocationOutcome, execution_id: str, store: _ServiceStore
    ) -> dict[str, Any]:
        try:
            result = _result_json(outcome.result or "null", outcome.value)
        except SerializationError as e:
            return _failed(error_from_exception(e))
        if len(result.encode()) <= LAMBDA_RESPONSE_LIMIT:
            return {"Status": "SUCCEEDED", "Result": result}
        final = OperationUpdate(
            id=execution_id,
            type=OperationType.EXECUTION,
            action=OperationAction.SUCCEED,
            payload=result,
        )
        store.checkpoint(execution_id, [final], 0, durable=True)
        return {"Status": "SUCCEEDED", "Result": ""}


class _ServiceStore:
    """The driver's store port over the checkpoint API.

    Updates that may wait (``durable=False``: an at-least-once step's START, a
    context's START) are buffered and ride along with the next durable write, which
    sends everything buffered, in order, with ``CheckpointDurableExecution``.
    ``known`` is the log as the service returned it, for "is anything pending?".
    """

    def __init__(self, cp: Checkpointer, known: dict[str, Operation]) -> None:
        self.cp = cp
        self.known = known
        self.buffered: list[OperationUpdate] = []
        self.sent: list[OperationUpdate] = []  # every update sent, in order
        #: a chained invoke's ``XAmznTraceId`` by its operation id (None: none sent)
        self.trace_for: Callable[[str], str | None] | None = None

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        return self.known

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's events (type, operation id, time in epoch ms), for hooks that
        ask what changed since the previous invocation when the event does not say."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"DurableExecutionArn": self.cp.arn}
        while True:
            page = self.cp.client.get_durable_execution_history(**kwargs)
            for e in page.get("Events", []):
                at = e.get("EventTimestamp")
                ms = int(at.timestamp() * 1000) if hasattr(at, "timestamp") else at
                events.append(
                    {"EventType": e.get("EventType"), "Id": e.get("Id"), "EventTimestamp": ms}
                )
            marker = page.get("NextMarker")
            if not marker:
                return events
            kwargs["Marker"] = marker

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        if self.trace_for is not None:
            updates = [self._traced(u, self.trace_for) for u in updates]
        self.buffered.extend(updates)
        if not durable:
            return {}
        batch, self.buffered = self.buffered, []
        delta = self.cp.checkpoint(batch)
        self.sent.extend(batch)
        self.known.update(delta)
        return delta

    @staticmethod
    def _traced(update: OperationUpdate, trace_for: Callable[[str], str | None]) -> OperationUpdate:
        """``update`` with the trace its invoked execution continues, if it starts one."""
        if (
            update.type is OperationType.CHAINED_INVOKE
            and update.action is OperationAction.START
            and update.trace_header is None
        ):
            header = trace_for(update.id)
            if header is not None:
                return attrs.evolve(update, trace_header=header)
        return update


def _sends_trace_header(client: Any) -> bool:
    """Whether ``client``'s Lambda model knows ``ChainedInvokeOptions.XAmznTraceId``
    (botocore releases before it would refuse the parameter)."""
    try:
        shape = client.meta.service_model.shape_for("ChainedInvokeOptions")
    except Exception:  # not botocore's client, or a model without the shape
        return False
    return "XAmznTraceId" in getattr(shape, "members", {})


def _invoke_trace(
    hook: HookRunner, execution_started: int, traceparent: str | None
) -> Callable[[str], str | None]:
    """The ``XAmznTraceId`` of each chained invoke, from the hooks' trace context (AWS's
    instrumentation sends the invoke span's, so the invoked execution's trace
    continues from it)."""

    def trace_for(operation_id: str) -> str | None:
        answer = hook.first(
            "invoke_trace_context",
            operation_id=operation_id,
            execution_started=execution_started,
            traceparent=traceparent,
        )
        parsed = parse_traceparent(answer) if isinstance(answer, str) else None
        return None if parsed is None else to_xray(parsed)

    return trace_for


def _result_json(payload: str, value: Any) -> str:
    """The workflow's return value as JSON text (the response's ``Result``)."""
    if not payload.startswith(CBOR_PREFIX):
        return payload  # already exact, compact JSON
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SerializationError(
            f"the workflow returned a {type(value).__name__} that JSON cannot carry "
            f"({e}); a Lambda durable function's result must be JSON. Return JSON data "
            "(convert dates, bytes, Decimals ... to strings or numbers)",
            value_type=type(value).__name__,
        ) from e


def _failed(error: ErrorObject) -> dict[str, Any]:
    err = error.to_dict()
    err.setdefault("ErrorType", "Error")
    err.setdefault("ErrorMessage", "")
    err.setdefault("StackTrace", [])
    return {"Status": "FAILED", "Error": err}


#: replays of one invocation whose suspensions each found nothing pending
_MAX_REPLAYS = 100


def _anything_pending(ops: Mapping[str, Operation]) -> bool:
    return any(
        op.type is not OperationType.EXECUTION and op.status not in TERMINAL_STATUSES
        for op in ops.values()
    )


def parse_event(event: Any) -> tuple[str, str, dict[str, Operation], str]:
    """(arn, checkpoint token, operations of the first page, next marker)."""
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            "the event",
            f"must be a JSON object, got {type(event).__name__} (the AWS testing kit's "
            "in-process runner passes objects; drive durable_gen handlers through its "
            "web emulator and durable_gen.aws.local instead)",
        )
    arn = event.get("DurableExecutionArn")
    if not isinstance(arn, str) or not arn:
        raise InvalidEventError(
            "DurableExecutionArn", f"must be a non-empty string, got {brief(arn)}"
        )
    token = event.get("CheckpointToken")
    if not isinstance(token, str) or not token:
        raise InvalidEventError(
            "CheckpointToken", f"must be a non-empty string, got {brief(token, 40)}"
        )
    state = event.get("InitialExecutionState")
    if not isinstance(state, Mapping):
        raise InvalidEventError(
            "InitialExecutionState", f"must be an object, got {type(state).__name__}"
        )
    items = state.get("Operations", [])
    if not isinstance(items, list):
        raise InvalidEventError(
            "InitialExecutionState.Operations", f"must be a list, got {type(items).__name__}"
        )
    marker = state.get("NextMarker") or ""
    if not isinstance(marker, str):
        raise InvalidEventError(
            "InitialExecutionState.NextMarker", f"must be a string, got {brief(marker, 40)}"
        )
    try:
        operations = parse_operations(items)
    except CorruptLogError as e:
        raise InvalidEventError("InitialExecutionState.Operations", f"is malformed: {e}") from e
    return arn, token, operations, marker


def _execution_operation(ops: Mapping[str, Operation], arn: str) -> Operation:
    op = ops.get(arn.rsplit("/", 1)[-1])
    if op is not None and op.type is OperationType.EXECUTION:
        return op
    found = [o for o in ops.values() if o.type is OperationType.EXECUTION]
    if len(found) == 1:
        return found[0]
    raise CorruptLogError(
        f"the state of execution {arn!r} holds {len(found)} EXECUTION operations; "
        "expected exactly one"
    )


def _read_input(op: Operation) -> Any:
    text = op.input_payload
    if text is None or not text.strip():
        return {}
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # not JSON, or nested too deep to read
        raise CorruptLogError(
            f"the input of execution operation {op.id!r} is not JSON ({e}): {text!r:.80}"
        ) from e


@overload
def durable_handler(
    workflow: None = None,
    /,
    *,
    client: Any = None,
    limits: BatchLimits | None = None,
    retry: ApiRetry | None = None,
    on_nondeterminism: Literal["raise", "fail"] = "raise",
    max_workers: int = 16,
    hooks: Sequence[Hooks] = (),
    meter_log: bool = False,
    cipher: PayloadCipher | None = None,
) -> Callable[[Callable[..., Any]], DurableHandler]: ...


@overload
def durable_handler(
    workflow: Callable[..., Any],
    /,
    *,
    client: Any = None,
    limits: BatchLimits | None = None,
    retry: ApiRetry | None = None,
    on_nondeterminism: Literal["raise", "fail"] = "raise",
    max_workers: int = 16,
    hooks: Sequence[Hooks] = (),
    meter_log: bool = False,
    cipher: PayloadCipher | None = None,
) -> DurableHandler: ...


def durable_handler(
    workflow: Callable[..., Any] | None = None,
    /,
    *,
    client: Any = None,
    limits: BatchLimits | None = None,
    retry: ApiRetry | None = None,
    on_nondeterminism: Literal["raise", "fail"] = "raise",
    max_workers: int = 16,
    hooks: Sequence[Hooks] = (),
    meter_log: bool = False,
    cipher: PayloadCipher | None = None,
) -> DurableHandler | Callable[[Callable[..., Any]], DurableHandler]:
    """Turn a workflow (a generator function) into a Lambda durable handler.

    Use as ``handler = durable_handler(order_flow)``, or as a decorator, bare or
    with options (``@durable_handler(client=..., on_nondeterminism="fail")``).
    """

    def wrap(fn: Callable[..., Any]) -> DurableHandler:
        return DurableHandler(
            fn,
            client=client,
            limits=limits,
            retry=retry,
            on_nondeterminism=on_nondeterminism,
            max_workers=max_workers,
            hooks=hooks,
            meter_log=meter_log,
            cipher=cipher,
        )

    if workflow is None:
        return wrap
    return wrap(workflow)
