"""Commands the interpreter hands to its engine (the engine performs the I/O).

Every command carries ``updates``: checkpoint updates the interpreter produced
since the previous command, in order. The engine must persist them in that order,
before any later updates. When a command's ``durable_first`` is true the updates
must be durable *before* the engine acts on the command (at-most-once START before
the attempt runs); otherwise the engine may batch them with the next flush.

Commands and what the engine does with them:

- :class:`RunStep` -- run ``fn(*args)`` (attempt ``attempt``), then report with
  ``interpreter.step_returned(op_id, value)`` or ``step_raised(op_id, exc)``.
- :class:`Checkpoint` -- make ``updates`` durable, then call
  ``interpreter.checkpointed(delta)`` with the operations the store changed.
- :class:`AwaitOutcome` -- steps are running elsewhere (threads): block until one
  finishes and report it.
- :class:`Suspend` -- persist ``updates``; nothing can progress until ``wake_at``
  (epoch ms; ``None``: only an external event can resume it). Generators are closed.
- :class:`Complete` / :class:`Fail` -- persist ``updates``; the workflow finished.
- :class:`FailInvocation` -- persist ``updates``; this invocation fails with
  ``exception`` and is to be retried (nothing records the failure but the
  service's InvocationCompleted event).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ErrorObject
from .log import OperationUpdate

__all__ = [
    "AwaitOutcome",
    "Checkpoint",
    "Command",
    "Complete",
    "Fail",
    "FailInvocation",
    "RunStep",
    "Suspend",
]


class Command:
    """Base of the interpreter's commands."""

    __slots__ = ("durable_first", "updates")

    def __init__(self, updates: list[OperationUpdate], durable_first: bool = True) -> None:
        self.updates = updates
        self.durable_first = durable_first

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}" for k in (*type(self).__slots__, *Command.__slots__)
        )
        return f"{type(self).__name__}({fields})"


class RunStep(Command):
    """Run one attempt of a step function."""

    __slots__ = ("args", "attempt", "fn", "name", "op_id")

    def __init__(
        self,
        updates: list[OperationUpdate],
        durable_first: bool,
        *,
        op_id: str,
        name: str | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        attempt: int,
    ) -> None:
        self.updates = updates  # Command.__init__'s two lines, without the call (per step)
        self.durable_first = durable_first
        self.op_id = op_id
        self.name = name
        self.fn = fn
        self.args = args
        self.attempt = attempt


class Checkpoint(Command):
    """Make the updates durable, then acknowledge with ``checkpointed()``."""

    __slots__ = ()


class AwaitOutcome(Command):
    """Block until a running step reports its outcome."""

    __slots__ = ()


class Suspend(Command):
    """Nothing can progress before ``wake_at`` (epoch ms) or an external event."""

    __slots__ = ("wake_at",)

    def __init__(self, updates: list[OperationUpdate], wake_at: int | None) -> None:
        super().__init__(updates, True)
        self.wake_at = wake_at


class Complete(Command):
    """The workflow returned; ``result`` is its serialized return value."""

    __slots__ = ("result", "value")

    def __init__(self, updates: list[OperationUpdate], result: str, value: Any) -> None:
        super().__init__(updates, True)
        self.result = result
        self.value = value


class _Failure(Command):
    """An end with an error: ``error`` as recorded, ``exception`` as raised."""

    __slots__ = ("error", "exception")

    def __init__(
        self, updates: list[OperationUpdate], error: ErrorObject, exception: BaseException
    ) -> None:
        super().__init__(updates, True)
        self.error = error
        self.exception = exception


class Fail(_Failure):
    """The workflow raised; ``error`` is the recorded failure."""

    __slots__ = ()


class FailInvocation(_Failure):
    """This invocation fails with ``exception`` (a retryable InvocationError), which
    nothing records: persist ``updates``, then end the invocation with it (an engine
    retries it later; the Lambda shim raises it for the service to retry)."""

    __slots__ = ()
