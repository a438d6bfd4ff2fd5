"""Callbacks: CreateCallback, awaiting a handle (timeouts, heartbeats), and WaitForCallback
(a context holding the callback and its submitter step).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Final

import attrs

from ..descriptors import (
    CallbackHandle,
    CreateCallback,
    Step,
    WaitForCallback,
)
from ..errors import (
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ErrorObject,
    OperationError,
    SerializationError,
    StepError,
    StoreError,
    WorkflowDefinitionError,
    qualified_name,
)
from ..log import (
    Operation,
    OperationUpdate,
)
from .base import (
    _CALLBACK,
    _PASS_THROUGH,
    _ST_WAIT_CALLBACK,
    _START,
    _SUCCEEDED,
    _TIMED_OUT,
    Outcome,
    _Ctx,
)
from .steps import (
    _Steps,
)

_CALLBACK_TIMEOUT_TYPES: Final = frozenset(
    {"Callback.Timeout", "Callback.Heartbeat", CallbackTimeoutError.wire_type}
)


#: what a WaitForCallback context records when its submitter step failed for good
#: (the second: logs written before durable_gen recorded errors as AWS does)
_SUBMITTER_FAILED_TYPES: Final = frozenset(
    {
        StepError.wire_type,
        qualified_name(CallbackSubmitterError),
        "durable_gen._errors.CallbackSubmitterError",  # as logs before 0.2 recorded it
    }
)


def _wait_for_callback_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    """The error a failed WaitForCallback throws, from what its context recorded.

    As AWS's ``wait_for_callback``: a callback failure passes through as its own
    kind; a submitter step's failure (recorded ``...StepError``) becomes
    CallbackSubmitterError, keeping the step's message, data and stack trace.
    """
    if error.type in _CALLBACK_TIMEOUT_TYPES:
        return CallbackTimeoutError(error, operation_name=name, operation_id=op_id)
    if error.type in _SUBMITTER_FAILED_TYPES:
        error = attrs.evolve(error, type=CallbackSubmitterError.wire_type)
        return CallbackSubmitterError(error, operation_name=name, operation_id=op_id)
    return CallbackFailedError(error, operation_name=name, operation_id=op_id)


def _callback_body(desc: WaitForCallback) -> Generator[Any, Any, Any]:
    """The body of a WaitForCallback context, recorded as AWS records it."""
    prefix = f"{desc.name} " if desc.name else ""
    handle = yield CreateCallback(
        f"{prefix}create callback id",
        timeout=desc.timeout,
        heartbeat_timeout=desc.heartbeat_timeout,
        serdes=desc.serdes,
        sub_type=desc.sub_type,
    )
    # A failing submitter's StepError escapes: the context records it as AWS does
    # (ErrorType ...StepError) and _wait_for_callback_error makes it a
    # CallbackSubmitterError at the call site, as AWS's wait_for_callback does.
    yield Step(desc.submitter, handle.callback_id, name=f"{prefix}submitter", retry=desc.retry)
    return (yield handle.result())


class _Callbacks(_Steps):
    """Callbacks."""

    def _do_wait_for_callback(
        self, ctx: _Ctx, desc: WaitForCallback, op_id: str, op: Operation | None
    ) -> Outcome:
        return self._context_op(
            ctx,
            op_id,
            op,
            desc.name,
            _ST_WAIT_CALLBACK,
            # the context's result is stored as AWS's wait_for_callback stores it: with
            # the default serdes (desc.serdes reads the callback's payload, inside)
            None,
            lambda: _callback_body(desc),
            _wait_for_callback_error,
        )

    def _do_create_callback(
        self, ctx: _Ctx, desc: CreateCallback, op_id: str, op: Operation | None
    ) -> Outcome:
        if op is not None:
            self._check(ctx, op, _CALLBACK, desc.sub_type, desc.name)
            return self._handle(ctx, desc, op), None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_CALLBACK,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=desc.sub_type,
                callback_timeout_seconds=desc.timeout,
                callback_heartbeat_timeout_seconds=desc.heartbeat_timeout,
            )
        )

        def created() -> None:
            recorded = self._ops.get(op_id)
            if recorded is None or not recorded.callback_id:
                raise StoreError(
                    f"the service did not return a CallbackId for callback {desc.name or op_id!r}"
                )
            self._resume(ctx, self._handle(ctx, desc, recorded), None)

        self._checkpoint_then(created)
        return None

    def _handle(self, ctx: _Ctx, desc: CreateCallback, op: Operation) -> CallbackHandle:
        if not op.callback_id:
            raise self._corrupt(ctx, op, "a recorded callback has no CallbackId")
        return CallbackHandle(
            callback_id=op.callback_id, operation_id=op.id, name=desc.name, serdes=desc.serdes
        )

    def _await_callback(self, ctx: _Ctx, handle: CallbackHandle) -> Outcome:
        op = self._ops.get(handle.operation_id)
        if op is None or op.type is not _CALLBACK:
            raise WorkflowDefinitionError(
                f"the workflow awaited callback {handle.name or handle.callback_id!r}, which "
                "this execution never created; yield CreateCallback(...) first and await "
                "the handle it yields"
            )
        status = op.status
        if status is _SUCCEEDED:
            res = op.result
            try:
                value = (handle.serdes or _PASS_THROUGH).deserialize(res if res is not None else "")
            except SerializationError as e:
                return None, CallbackFailedError(
                    ErrorObject(
                        type=qualified_name(SerializationError),
                        message=f"the callback's payload cannot be read: {e}",
                    ),
                    operation_name=handle.name,
                    operation_id=op.id,
                )
            return value, None
        if op.is_terminal:
            return None, self._callback_error(op, handle.name)
        self._park(ctx, None)
        return None

    @staticmethod
    def _callback_error(op: Operation, name: str | None) -> OperationError:
        """The error awaiting a callback that did not succeed throws, as AWS's SDK's.

        TIMED_OUT gives CallbackTimeoutError, any other end CallbackFailedError
        (AWS's CallbackExternalError); as in AWS's SDK the error's type is the
        class's, with the recorded message, data and stack trace (the external
        system's own ErrorType stays on the callback operation, and on ``__cause__``).
        """
        timed_out = op.status is _TIMED_OUT
        cls: type[OperationError] = CallbackTimeoutError if timed_out else CallbackFailedError
        recorded = op.error or ErrorObject()
        error = ErrorObject(
            type=cls.wire_type,
            message=recorded.message or ("Callback timed out" if timed_out else "Callback failed"),
            data=recorded.data,
            stack_trace=recorded.stack_trace,
        )
        exc = cls(error, operation_name=name, operation_id=op.id)
        # what the service recorded ("Callback.Timeout" or "Callback.Heartbeat", or
        # the external system's error) stays reachable
        exc.__cause__ = cls(recorded, operation_name=name, operation_id=op.id)
        return exc
