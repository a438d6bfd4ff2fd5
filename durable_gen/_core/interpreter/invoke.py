"""Invoke: chained invocations of other durable functions."""

from __future__ import annotations

from ..descriptors import (
    Invoke,
)
from ..errors import (
    ErrorObject,
    InvokeError,
    SerializationError,
    qualified_name,
)
from ..log import (
    Operation,
    OperationUpdate,
)
from ..serdes import DEFAULT_SERDES
from .base import (
    _INVOKE,
    _ST_INVOKE,
    _START,
    _SUCCEEDED,
    Outcome,
    _Ctx,
)
from .callbacks import (
    _Callbacks,
)


def _payload_of_invoke(desc: Invoke) -> str:
    return f"the payload of invoke {desc.name or desc.function_name!r}"


class _Invokes(_Callbacks):
    """Invoke."""

    def _do_invoke(self, ctx: _Ctx, desc: Invoke, op_id: str, op: Operation | None) -> Outcome:
        if op is not None:
            self._check(ctx, op, _INVOKE, _ST_INVOKE, desc.name)
            if op.status is _SUCCEEDED:
                return self._decode(desc.serdes, op, ctx), None
            if op.is_terminal:
                return None, self._step_error(op, desc.name, InvokeError)
            self._park(ctx, None)
            return None
        try:
            payload = (desc.payload_serdes or DEFAULT_SERDES).serialize(desc.payload)
            if not isinstance(payload, str):
                raise SerializationError(
                    f"serdes {type(desc.payload_serdes).__name__}.serialize returned "
                    f"{type(payload).__name__}, not str",
                    value_type=type(payload).__name__,
                )
            self._check_size(payload, _payload_of_invoke, desc)
        except SerializationError as e:
            return None, InvokeError(
                ErrorObject(
                    type=qualified_name(type(e)),
                    message=f"the payload of invoke {desc.name or desc.function_name!r} "
                    f"cannot be sent: {e}",
                ),
                operation_name=desc.name,
                operation_id=op_id,
            )
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_INVOKE,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_INVOKE,
                payload=payload,
                function_name=desc.function_name,
                tenant_id=desc.tenant_id,
            )
        )
        self._checkpoint_then(lambda: self._park(ctx, None))
        return None
