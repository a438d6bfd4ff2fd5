"""One invocation: load the log, interpret, run steps, persist updates, stop.

The driver performs the interpreter's commands against a store (the I/O port).
It is shared by the local engines (in-memory and SQLite); the Lambda shim has its
own driver because it batches against the remote checkpoint API.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from ._commands import AwaitOutcome, Checkpoint, Complete, Fail, RunStep, Suspend
from ._errors import CorruptLogError, ErrorObject, InternalError, SerializationError
from ._interpreter import Interpreter
from ._log import Operation, OperationType, OperationUpdate
from ._serdes import DEFAULT_SERDES

__all__ = ["InvocationOutcome", "Store", "current_attempt", "run_invocation"]

_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("durable_gen_attempt", default=0)


def current_attempt() -> int:
    """Inside a step function: the 1-based number of the running attempt (0 outside)."""
    return _attempt.get()


class Store(Protocol):
    """What the driver needs from a store."""

    def load(self, execution_id: str) -> Mapping[str, Operation]: ...

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]: ...


@attrs.frozen(kw_only=True)
class InvocationOutcome:
    """How one invocation ended: SUCCEEDED, FAILED or PENDING (suspended)."""

    status: str
    result: str | None = None
    value: Any = None
    error: ErrorObject | None = None
    exception: BaseException | None = None
    wake_at: int | None = None
    steps_run: int = 0


def load_input(operations: Mapping[str, Operation], execution_id: str) -> Any:
    op = operations.get(execution_id)
    if op is None or op.type is not OperationType.EXECUTION:
        raise CorruptLogError(f"the log of execution {execution_id!r} has no EXECUTION operation")
    payload = op.input_payload
    if payload is None or payload == "":
        return None
    try:
        return DEFAULT_SERDES.deserialize(payload)
    except SerializationError as e:
        raise CorruptLogError(f"the input of execution {execution_id!r} cannot be read: {e}") from e


def run_invocation(
    workflow: Callable[..., Any],
    execution_id: str,
    store: Store,
    now: Callable[[], int],
    *,
    check_args: bool = True,
) -> InvocationOutcome:
    """Run one invocation of ``workflow`` for ``execution_id`` until it stops.

    Steps run inline in this thread. Updates that need not be durable before the
    next action are handed to the store with ``durable=False`` so it may batch them
    into the next durable write.
    """
    ops = store.load(execution_id)
    input_value = load_input(ops, execution_id)
    interp = Interpreter(
        workflow, input_value, ops, now=now(), execution_id=execution_id, check_args=check_args
    )
    steps = 0
    try:
        while True:
            cmd = interp.next_command()
            tcmd = type(cmd)
            if tcmd is RunStep:
                assert isinstance(cmd, RunStep)
                if cmd.updates:
                    store.checkpoint(execution_id, cmd.updates, now(), durable=cmd.durable_first)
                steps += 1
                token = _attempt.set(cmd.attempt)
                try:
                    value = cmd.fn(*cmd.args)
                except Exception as e:
                    _attempt.reset(token)
                    interp.now = now()
                    interp.step_raised(cmd.op_id, e)
                else:
                    _attempt.reset(token)
                    interp.now = now()
                    interp.step_returned(cmd.op_id, value)
            elif tcmd is Checkpoint:
                delta = store.checkpoint(execution_id, cmd.updates, now(), durable=True)
                interp.checkpointed(delta)
            elif tcmd is Suspend:
                assert isinstance(cmd, Suspend)
                store.checkpoint(execution_id, cmd.updates, now(), durable=True)
                return InvocationOutcome(status="PENDING", wake_at=cmd.wake_at, steps_run=steps)
            elif tcmd is Complete:
                assert isinstance(cmd, Complete)
                store.checkpoint(execution_id, cmd.updates, now(), durable=True)
                return InvocationOutcome(
                    status="SUCCEEDED", result=cmd.result, value=cmd.value, steps_run=steps
                )
            elif tcmd is Fail:
                assert isinstance(cmd, Fail)
                store.checkpoint(execution_id, cmd.updates, now(), durable=True)
                return InvocationOutcome(
                    status="FAILED", error=cmd.error, exception=cmd.exception, steps_run=steps
                )
            elif tcmd is AwaitOutcome:
                raise InternalError("the inline driver never leaves a step running")
            else:
                raise InternalError(f"unknown command {cmd!r}")
    finally:
        interp.close()
