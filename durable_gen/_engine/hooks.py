"""Lifecycle hooks (plugins): observe invocations, operations and step attempts.

Subclass :class:`Hooks` and override what you need; pass instances to an engine
(``InMemoryEngine(hooks=[...])``) or to the Lambda handler. Hooks run on the
engine's side, only for live work (never for operations being replayed). A hook
that raises is logged on the ``durable_gen.hooks`` logger and otherwise ignored:
it never changes the execution's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from .._core.errors import ErrorObject
from .._core.log import (
    Operation,
    OperationAction,
    OperationUpdate,
)
from . import logger as _logging

__all__ = ["Hooks"]

_log = logging.getLogger("durable_gen.hooks")


class Hooks:
    """Base class of lifecycle hooks; every method does nothing by default."""

    def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
        """An invocation begins; ``first`` is True for the execution's first one."""

    def on_trace_context(self, execution_id: str, *, traceparent: str) -> None:
        """Called just before :meth:`on_invocation_start` of an execution started under
        a caller's trace (an ``Invoke``'s, or the ``traceparent`` header of ``serve``'s
        caller; under Lambda, ``_X_AMZN_TRACE_ID``): a valid W3C ``traceparent``. Not
        called for an execution started with none."""

    def invoke_trace_context(
        self,
        execution_id: str,
        *,
        operation_id: str,
        execution_started: int,
        traceparent: str | None,
    ) -> str | None:
        """The trace context (a W3C ``traceparent``) to start the execution that the
        invoke ``operation_id`` of ``execution_id`` starts under, or None (the
        default): none. ``execution_started`` (epoch ms) and ``traceparent`` (None:
        none) are the invoking execution's, as :meth:`on_invocation_info` and
        :meth:`on_trace_context` told them. The engine stores the first hook's
        answer with the new execution."""
        return None

    def on_invocation_info(self, execution_id: str, *, execution_started: int) -> None:
        """Called just before :meth:`on_invocation_start`: when the execution started
        (epoch ms, as its log records it)."""

    def on_operation_replayed(self, execution_id: str, op: Operation, *, changed: bool) -> None:
        """The workflow reached ``op``, recorded by an earlier invocation (as the log holds
        it now). ``changed``: it changed after the previous invocation ended (a wait that
        elapsed, a callback completed, a retry that became due), so this invocation is
        the first to see its state. Not called for operations this invocation started."""

    def on_invocation_end(
        self, execution_id: str, *, status: str, error: ErrorObject | None
    ) -> None:
        """An invocation ended: SUCCEEDED / FAILED (the execution ended), PENDING, or
        RETRY (it raised -- a crash, a store failure --: the execution goes on, the
        invocation will be retried; ``error`` says what it raised)."""

    def on_operation_start(self, execution_id: str, update: OperationUpdate) -> None:
        """A new operation was started (its START update)."""

    def on_virtual_context_start(
        self,
        execution_id: str,
        *,
        operation_id: str,
        name: str | None,
        sub_type: str | None,
        parent_id: str | None,
    ) -> None:
        """A virtual child context's body starts (it records nothing, so no update
        tells of it; it runs again at every replay, and is reported every time)."""

    def on_virtual_context_end(
        self, execution_id: str, *, operation_id: str, error: ErrorObject | None
    ) -> None:
        """A virtual child context's body ended: returned (``error`` None) or raised."""

    def on_operation_end(self, execution_id: str, update: OperationUpdate) -> None:
        """An operation ended (its SUCCEED or FAIL update)."""

    def on_checkpoint(
        self, execution_id: str, *, updates: int, durable: bool, seconds: float
    ) -> None:
        """The driver handed ``updates`` operation updates to its store (``durable``:
        they had to be durable before it went on) and the store took ``seconds``.
        Under the Lambda shim a ``durable=False`` hand-over is only buffered (it rides
        along with the next durable one, whose time includes the API call)."""

    def on_step_attempt_start(
        self, execution_id: str, *, operation_id: str, name: str | None, attempt: int
    ) -> None:
        """A step attempt (or poll, or submitter run) is about to run."""

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
        """A step attempt finished."""


class HookRunner:
    """Calls every hook, isolating failures."""

    __slots__ = ("_bound", "execution_id", "hooks")

    def __init__(self, hooks: Sequence[Hooks], execution_id: str) -> None:
        self.hooks = tuple(hooks)
        # hooks get the execution as the outside world names it (an ARN under serve)
        self.execution_id = _logging.execution_arn(execution_id)
        # method -> (hook, bound method) of the hooks that override it: a hook that
        # keeps Hooks' do-nothing method costs no call (benchmarks/otel.py)
        self._bound: dict[str, tuple[tuple[Hooks, Callable[..., Any]], ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def _overriding(self, method: str) -> tuple[tuple[Hooks, Callable[..., Any]], ...]:
        default = getattr(Hooks, method, None)
        found = []
        for hook in self.hooks:
            fn = getattr(hook, method)
            if default is None or getattr(fn, "__func__", None) is not default:
                found.append((hook, fn))
        bound = self._bound[method] = tuple(found)
        return bound

    def wants(self, method: str) -> bool:
        """Whether some hook overrides ``method`` (worth gathering its arguments)."""
        bound = self._bound.get(method)
        if bound is None:
            bound = self._overriding(method)
        return bool(bound)

    def first(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The first answer other than None of the hooks that override ``method``."""
        bound = self._bound.get(method)
        if bound is None:
            bound = self._overriding(method)
        for hook, fn in bound:
            try:
                answer = fn(self.execution_id, *args, **kwargs)
            except Exception:
                _log.exception("hook %r raised in %s; ignored", hook, method)
                continue
            if answer is not None:
                return answer
        return None

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        bound = self._bound.get(method)
        if bound is None:
            bound = self._overriding(method)
        for hook, fn in bound:
            try:
                fn(self.execution_id, *args, **kwargs)
            except Exception:
                _log.exception("hook %r raised in %s; ignored", hook, method)

    def updates(self, updates: Sequence[OperationUpdate]) -> None:
        for u in updates:
            if u.action is OperationAction.START:
                self.call("on_operation_start", u)
            elif u.action is OperationAction.SUCCEED or u.action is OperationAction.FAIL:
                self.call("on_operation_end", u)
