"""The error hierarchy of durable_gen.

Errors are split by whose fault they are, h11-style:

- ``WorkflowDefinitionError`` / ``ValidationError``: the workflow author's mistake
  (a plain function where a generator function is needed, a bad option value).
- ``NonDeterminismError``: the workflow no longer yields what its log recorded.
- ``CorruptLogError``: the checkpoint log is malformed or belongs to something else.
- ``StoreError``: a store or service failed (database, checkpoint API).
- ``SerializationError``: a value cannot be encoded or a payload cannot be decoded.
- ``OperationError`` and its subclasses: a durable operation failed; these are
  thrown *into* the workflow with ``gen.throw`` and can be caught there.
- ``InternalError``: a bug in durable_gen itself.

Every class keeps its data as attributes; the message is built from them.
"""

from __future__ import annotations

import reprlib
from typing import Any, ClassVar, Final

__all__ = [
    "CallbackClosedError",
    "ExecutionError",
    "InvocationError",
    "RetryableSerDesError",
    "UnrecoverableError",
    "BatchCompletionError",
    "CallbackError",
    "CallbackFailedError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CombinatorError",
    "InvokeError",
    "WaitForConditionError",
    "ChildContextError",
    "CorruptLogError",
    "DurableGenError",
    "ErrorObject",
    "InternalError",
    "NonDeterminismError",
    "OperationError",
    "PayloadTooLargeError",
    "SerializationError",
    "StepError",
    "StepInterruptedError",
    "StoreError",
    "ValidationError",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
]

import attrs


@attrs.frozen(kw_only=True)
class ErrorObject:
    """A failure as the Lambda durable API records it (``ErrorObject``)."""

    type: str | None = None
    message: str | None = None
    data: str | None = None
    stack_trace: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        # keys in the order AWS's SDK writes them (ErrorObject.to_dict)
        out: dict[str, Any] = {}
        if self.message is not None:
            out["ErrorMessage"] = self.message
        if self.type is not None:
            out["ErrorType"] = self.type
        if self.data is not None:
            out["ErrorData"] = self.data
        if self.stack_trace is not None:
            out["StackTrace"] = list(self.stack_trace)
        return out

    @classmethod
    def from_dict(cls, d: Any) -> ErrorObject:
        if not isinstance(d, dict):
            raise CorruptLogError(f"an ErrorObject must be a JSON object, got {brief(d)}")
        st = d.get("StackTrace")
        if st is not None and not (
            isinstance(st, list | tuple) and all(isinstance(x, str) for x in st)
        ):
            raise CorruptLogError(
                f"ErrorObject field StackTrace must be a list of strings, got {brief(st)}"
            )
        return cls(
            type=_opt_str(d, "ErrorType"),
            message=_opt_str(d, "ErrorMessage"),
            data=_opt_str(d, "ErrorData"),
            stack_trace=None if st is None else tuple(str(x) for x in st),
        )


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None or isinstance(v, str):
        return v
    raise CorruptLogError(f"ErrorObject field {key} must be a string, got {brief(v)}")


_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 3
_BRIEF.maxstring = 60
_BRIEF.maxother = 60


def brief(value: object, limit: int = 80) -> str:
    """A short repr of ``value`` for an error message, safe on deep or huge values."""
    try:
        text = _BRIEF.repr(value)
    except Exception:  # a repr that fails: say what it is
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DurableGenError(Exception):
    """Base class of every error durable_gen raises."""


class ValidationError(DurableGenError, ValueError):
    """An option or argument has a value durable_gen cannot accept."""

    wire_type: ClassVar[str] = "aws_durable_execution_sdk_python.exceptions.ValidationError"
    """``ErrorType`` recorded when it fails a context or the workflow: AWS's SDK raises
    its ValidationError for the same mistakes (a wait under 1 s, min_successful
    above the number of branches)."""


class WorkflowDefinitionError(DurableGenError, TypeError):
    """The workflow code is not shaped as durable_gen needs (the author's mistake)."""


class NonDeterminismError(DurableGenError):
    """The workflow yielded something other than what its log recorded at that position.

    ``source`` is where the workflow stood when it yielded (``path:line (function)``),
    or None when it is not known (the workflow returned instead of yielding).
    """

    def __init__(
        self,
        *,
        position: str,
        recorded: str,
        yielded: str,
        operation_id: str | None,
        hint: str,
        source: str | None = None,
    ) -> None:
        self.position = position
        self.recorded = recorded
        self.yielded = yielded
        self.operation_id = operation_id
        self.hint = hint
        self.source = source
        super().__init__(
            f"non-deterministic replay at the {position}: "
            f"the log recorded {recorded}, but the workflow {yielded}. {hint}"
        )


class CorruptLogError(DurableGenError):
    """The checkpoint log is malformed, inconsistent, or belongs to another execution."""


class StoreError(DurableGenError):
    """A store or the durable service failed; nothing recorded was lost."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)


class ExecutionNotFoundError(StoreError):
    """No execution (or callback) with the given id is recorded."""


class ExecutionAlreadyStartedError(StoreError):
    """An execution name is taken by an execution of another input or function.

    Lambda's rule, kept everywhere an execution is started: the name (id) is the
    idempotency key; the same name with the same input and function is the existing
    execution, anything else is refused. ``conflict`` is ``"input"`` or ``"function"``.
    """

    def __init__(self, execution_id: str, conflict: str, message: str) -> None:
        self.execution_id = execution_id
        self.conflict = conflict
        super().__init__(message)


class ExecutionConflictError(StoreError):
    """The execution's state does not allow the request (e.g. deleting a running one)."""


class CallbackClosedError(ExecutionConflictError):
    """The callback can no longer be completed: its execution ended (e.g. timed out)
    and closed it (Lambda's ``CallbackTimeoutException``)."""


class VersionMismatchError(ExecutionConflictError):
    """A worker pinned to one code version was asked to advance an execution that
    started on another (``--version``)."""


class InvocationInterruptedError(StoreError):
    """The running invocation ends at this checkpoint: the worker is shutting down.

    Raised by a store after it recorded the checkpoint (nothing is lost); the engine
    ends the invocation cleanly and lets go of the execution, due at once for
    whichever worker comes next.
    """

    def __init__(self, execution_id: str, why: str = "its worker is shutting down") -> None:
        self.execution_id = execution_id
        super().__init__(f"the invocation of execution {execution_id!r} ended early: {why}")


class ExecutionPausedError(InvocationInterruptedError):
    """The execution was paused: its running invocation ends at this checkpoint, and
    the execution is PAUSED from then on."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id, "the execution was paused")


class SerializationError(DurableGenError):
    """A value could not be serialized, or a payload could not be deserialized."""

    def __init__(self, message: str, *, value_type: str | None = None) -> None:
        self.value_type = value_type
        super().__init__(message)


class PayloadTooLargeError(SerializationError):
    """A payload is larger than one operation may checkpoint."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message)


class InternalError(DurableGenError):
    """A bug in durable_gen: please report it with the traceback."""


AWS_SDK_EXCEPTIONS: Final = "aws_durable_execution_sdk_python.exceptions"
"""The module AWS's Python SDK names its operation errors by on the wire."""


def short_type(error_type: str | None) -> str:
    """An ErrorType for people: AWS's SDK's classes by their name (``StepError``)."""
    return (error_type or "Error").removeprefix(AWS_SDK_EXCEPTIONS + ".")


class OperationError(DurableGenError):
    """A durable operation failed; thrown into the workflow, which may catch it.

    ``error_type``, ``error_message``, ``error_data`` and ``stack_trace`` carry the
    failure as the operation recorded it, identical on the first run and on replay:
    for a step, the step function's exception (``ValueError``, ...); for a child
    context, what escaped its body (``...StepError`` when a step failure did).

    When the error escapes a context (a child context, a branch, the workflow), it
    is recorded as AWS's SDK records it: ``ErrorType`` is :attr:`wire_type`, the
    name of AWS's class for this kind of failure (``...exceptions.StepError``), and
    the message, data and stack trace are kept. ``__cause__`` holds the error it
    wraps (rebuilt from the log on replay), so the original type stays reachable.
    """

    wire_type: ClassVar[str] = f"{AWS_SDK_EXCEPTIONS}.DurableOperationError"
    """``ErrorType`` recorded when this error escapes a context (AWS's class name)."""

    def __init__(
        self,
        error: ErrorObject,
        *,
        operation_name: str | None = None,
        operation_id: str | None = None,
    ) -> None:
        self.error = error
        self.error_type = error.type
        self.error_message = error.message
        self.error_data = error.data
        self.stack_trace = error.stack_trace
        self.operation_name = operation_name
        self.operation_id = operation_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = f"{self._kind} {self.operation_name!r}" if self.operation_name else self._kind
        detail = short_type(self.error_type)
        if self.error_message:
            detail = f"{detail}: {self.error_message}"
        return f"{what} failed: {detail}"

    _kind = "operation"

    def __reduce__(self) -> Any:
        return (
            _rebuild_operation_error,
            (type(self), self.error, self.operation_name, self.operation_id),
        )


def _rebuild_operation_error(
    cls: type[OperationError],
    error: ErrorObject,
    name: str | None,
    op_id: str | None,
) -> OperationError:
    return cls(error, operation_name=name, operation_id=op_id)


class StepError(OperationError):
    """A step failed for good (retries exhausted or the error was not retryable)."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.StepError"

    _kind = "step"


class ChildContextError(OperationError):
    """A child context's generator raised."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.ChildContextError"

    _kind = "child context"


class BatchCompletionError(OperationError):
    """A Parallel or Map whose ``should_complete`` predicate completed it FAILED, with
    no failed branch (raised by :meth:`BatchResult.throw_if_error`)."""

    wire_type = "aws_durable_execution_sdk_python.concurrency.models.BatchCompletionError"

    _kind = "batch"


class CallbackError(OperationError):
    """A callback did not succeed (base of the callback failures)."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.CallbackError"

    _kind = "callback"


class CallbackFailedError(CallbackError):
    """The external system completed the callback with a failure."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.CallbackExternalError"


class CallbackTimeoutError(CallbackError):
    """The callback timed out (``Callback.Timeout``) or missed a heartbeat.

    A missed heartbeat has error type ``Callback.Heartbeat``.
    """

    wire_type = f"{AWS_SDK_EXCEPTIONS}.CallbackTimeoutError"


class CallbackSubmitterError(CallbackError):
    """The submitter step of a WaitForCallback failed for good."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.CallbackSubmitterError"

    _kind = "callback submitter"


class InvokeError(OperationError):
    """A chained invocation of another durable function failed, timed out or was stopped."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.InvokeError"

    _kind = "invocation"


class WaitForConditionError(OperationError):
    """WaitForCondition ran out of polls, or its check failed for good."""

    wire_type = f"{AWS_SDK_EXCEPTIONS}.WaitForConditionError"

    _kind = "wait for condition"


class CombinatorError(OperationError):
    """All / Any / Race failed: carries the deciding failure (or, for Any, all of them)."""

    wire_type = "durable_gen.CombinatorError"  # no counterpart in AWS's SDK

    _kind = "combinator"


class UnrecoverableError(DurableGenError):
    """Base of the errors that end more than the operation they are raised in."""

    wire_type: ClassVar[str | None] = f"{AWS_SDK_EXCEPTIONS}.UnrecoverableError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "wire_type" not in cls.__dict__:
            cls.wire_type = None  # a workflow's own subclass is recorded by its own name


class ExecutionError(UnrecoverableError):
    """Raise it (in a step function, a check, a submitter or the workflow) to fail the
    execution at once, as AWS's ``ExecutionError`` does: the step is not retried and
    no enclosing context records the failure; the execution ends FAILED with it,
    unless the workflow catches it on the way.
    """

    wire_type = f"{AWS_SDK_EXCEPTIONS}.ExecutionError"


class InvocationError(UnrecoverableError):
    """Raise it (in the workflow, a child context, a branch, a WaitForCondition check
    or a serdes) to fail this *invocation* only, as AWS's ``InvocationError`` does:
    nothing records it (no context FAIL, no EXECUTION FAIL), the invocation ends with
    it, and the engine invokes the workflow again after a delay, replaying what was
    recorded (on Lambda the handler raises it and the service retries). After the
    engine's ``invocation_retry`` policy gives up (5 consecutive failed invocations
    by default), the execution fails with it.

    For a transient failure outside any step: a dependency the workflow itself reads
    is down, a secret is not there yet. Raised by a *step's* function it is an
    ordinary failure of that attempt and goes through the step's retry policy, as on
    AWS. With ``retryable=False`` it is an ordinary exception: it fails what it
    leaves (the context, then the execution).
    """

    wire_type = f"{AWS_SDK_EXCEPTIONS}.InvocationError"

    def __init__(self, message: str = "", *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable

    def is_retryable(self) -> bool:
        """Whether the invocation is retried (AWS's ``InvocationError.is_retryable``)."""
        return self.retryable


class RetryableSerDesError(InvocationError):
    """A serdes failed transiently (a network call of an offloading serdes timed out).

    Raise it from a custom ``Serdes`` (or a step's function): the step's retry policy
    is bypassed and the invocation fails, as :class:`InvocationError`; an
    at-most-once step whose result could not be stored then finds its attempt
    interrupted on the next invocation (:class:`StepInterruptedError`). Use
    :class:`SerializationError` for a permanent failure.
    """

    wire_type = f"{AWS_SDK_EXCEPTIONS}.RetryableSerDesError"


def retries_invocation(exc: BaseException) -> bool:
    """Whether ``exc`` ends the invocation for the engine to retry it."""
    return isinstance(exc, InvocationError) and exc.is_retryable()


class StepInterruptedError(InvocationError):
    """An at-most-once step attempt was started but never recorded an outcome.

    Handed to the retry policy in place of the attempt's own error; the attempt's
    function is never run again silently. Recorded as AWS's SDK records it
    (``...exceptions.StepInterruptedError``, "Step operation_id=... name=... was
    previously interrupted").
    """

    wire_type = f"{AWS_SDK_EXCEPTIONS}.StepInterruptedError"


class WorkflowFailedError(DurableGenError):
    """An execution ended FAILED; ``error`` holds the recorded ErrorObject."""

    def __init__(self, error: ErrorObject, *, execution_id: str | None = None) -> None:
        self.error = error
        self.execution_id = execution_id
        msg = short_type(error.type)
        if error.message:
            msg = f"{msg}: {error.message}"
        super().__init__(f"execution {execution_id or ''} failed: {msg}".replace("  ", " "))


_MAX_STACK_LINES = 50
#: durable_gen's own folder (this module is durable_gen/_core/errors.py), "/"-separated
_PKG_DIR = __file__.replace("\\", "/").rsplit("/", 2)[0] + "/"
#: The service refuses an ErrorObject over 32 KiB; stay well under it.
MAX_ERROR_BYTES = 24 * 1024
_MAX_MESSAGE = 8 * 1024


def _is_plumbing(filename: str) -> bool:
    """durable_gen's own frames and the thread pool's: noise to the reader."""
    filename = filename.replace("\\", "/")
    return filename.startswith(_PKG_DIR) or "concurrent/futures" in filename


def _utf8_safe(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates: undecodable bytes that
    ``surrogateescape`` kept) as U+FFFD, so that the error can be sized and stored."""
    if text.isascii():
        return text
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + "... [truncated]"


def qualified_name(cls: type) -> str:
    """The wire ErrorType of a class: ``ValueError`` for builtins, ``pkg.mod.Class``
    otherwise -- and for durable_gen's own classes their public name,
    ``durable_gen.SerializationError``, which stays the same however the package's
    private modules move (logs written before 0.2 say ``durable_gen._errors.X``)."""
    mod = cls.__module__
    if mod == "builtins":
        return cls.__qualname__
    if mod.startswith("durable_gen._"):
        return f"durable_gen.{cls.__qualname__}"
    return f"{mod}.{cls.__qualname__}"


def operation_failure(exc: BaseException) -> ErrorObject:
    """The failure an exception stands for, unwrapped: an :class:`OperationError`'s
    own recorded error (a StepError's ``ValueError``), else as
    :func:`error_from_exception` records it. For durable_gen's combinators, which
    have no counterpart in AWS's SDK and report the operands' own failures."""
    if isinstance(exc, OperationError):
        return exc.error
    return error_from_exception(exc)


def error_from_exception(exc: BaseException) -> ErrorObject:
    """The ErrorObject recorded for an exception that escapes a context or the workflow.

    An :class:`OperationError` that escapes (an uncaught StepError, say) is recorded
    as AWS's SDK records it (``ErrorObject.from_exception``): ``ErrorType`` is its
    :attr:`~OperationError.wire_type` (``aws_durable_execution_sdk_python.exceptions.
    StepError``), with the original failure's message, data and stack trace.
    """
    import traceback

    if isinstance(exc, OperationError):
        return ErrorObject(
            type=type(exc).wire_type,
            message=exc.error_message,
            data=exc.error_data,
            stack_trace=exc.stack_trace,
        )
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the failure itself
        message = f"<{type(exc).__name__} whose str() failed>"
    message = _truncate_utf8(_utf8_safe(message), _MAX_MESSAGE)
    # the trace starts at user code: the same failure records the same trace whether
    # its step ran inline or on the thread pool
    tb = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_plumbing(f.filename)]
    lines = [
        _utf8_safe(line.rstrip("\n")) for line in traceback.format_list(tb[-_MAX_STACK_LINES:])
    ]
    # keep the whole ErrorObject under the service's size limit: drop the oldest frames
    budget = MAX_ERROR_BYTES - len(message.encode()) - 512
    while lines and sum(len(x.encode()) + 8 for x in lines) > budget:
        lines.pop(0)
    return ErrorObject(
        type=getattr(type(exc), "wire_type", None) or qualified_name(type(exc)),
        message=message,
        data=None,
        stack_trace=tuple(lines) or None,
    )
