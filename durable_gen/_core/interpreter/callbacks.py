"""Callbacks: CreateCallback, awaiting a handle (timeouts, heartbeats), and WaitForCallback
(a context holding the callback and its submitter step).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

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
    _ST_CALLBACK,
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


def _wait_for_callback_error(error: ErrorObject, name: str | None, op_id: str) -> OperationError:
    if error.type in ("Callback.Timeout", "Callback.Heartbeat"):
        return CallbackTimeoutError(error, operation_name=name, operation_id=op_id)
    if error.type == qualified_name(CallbackSubmitterError):
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
    )
    try:
        yield Step(desc.submitter, handle.callback_id, name=f"{prefix}submitter", retry=desc.retry)
    except StepError as e:
        raise CallbackSubmitterError(
            ErrorObject(
                type=qualified_name(CallbackSubmitterError),
                message=f"{e.error_type}: {e.error_message}",
                data=e.error_data,
                stack_trace=e.stack_trace,
            ),
            operation_name=desc.name,
        ) from None
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
            desc.serdes or _PASS_THROUGH,
            lambda: _callback_body(desc),
            _wait_for_callback_error,
        )

    def _do_create_callback(
        self, ctx: _Ctx, desc: CreateCallback, op_id: str, op: Operation | None
    ) -> Outcome:
        if op is not None:
            self._check(ctx, op, _CALLBACK, _ST_CALLBACK, desc.name)
            return self._handle(ctx, desc, op), None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_CALLBACK,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_CALLBACK,
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
        if status is _TIMED_OUT:
            return None, self._step_error(op, handle.name, CallbackTimeoutError)
        if op.is_terminal:
            return None, self._step_error(op, handle.name, CallbackFailedError)
        self._park(ctx, None)
        return None
