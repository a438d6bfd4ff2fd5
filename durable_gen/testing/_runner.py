"""A test runner: one workflow execution on the in-memory engine and a virtual clock.

::

    runner = WorkflowRunner()
    result = runner.run(expense_flow, {"amount": 120})    # RUNNING: waits for approval
    runner.succeed_callback("manager-approval", '{"approved": true}')
    assert runner.result.result == {"status": "paid", ...}
    print(runner.format_tree())

With ``auto_advance=True`` (default) waits and retry delays take no time; with
``auto_advance=False`` the runner stops at them (status RUNNING) until you call
:meth:`WorkflowRunner.advance`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from .._core.errors import (
    ErrorObject,
    ValidationError,
)
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from .._core.present import describe_operation
from .._engine.clock import VirtualClock
from .._engine.local import ExecutionResult
from .._engine.meter import (
    Meter,
    meter_execution,
)
from ._harness import HarnessEngine, RecordingStore, StepCall, StepTracker, pending_callbacks

__all__ = ["OperationNode", "WorkflowRunner"]


@attrs.frozen
class OperationNode:
    """An operation and the operations recorded under it."""

    operation: Operation
    children: tuple[OperationNode, ...] = ()

    @property
    def label(self) -> str:
        """``Step 'charge' SUCCEEDED``."""
        op = self.operation
        return f"{describe_operation(op.sub_type, op.type.value, op.name)} {op.status.value}"

    def walk(self) -> Iterator[OperationNode]:
        """This node and every node below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, name: str) -> OperationNode:
        """The first node below (or at) this one whose operation is named ``name``."""
        for node in self.walk():
            if node.operation.name == name:
                return node
        raise KeyError(name)


def build_tree(operations: Mapping[str, Operation]) -> tuple[OperationNode, ...]:
    """The operations (without the EXECUTION one) nested by ParentId, in recorded order."""
    by_parent: dict[str | None, list[Operation]] = {}
    for op in operations.values():
        if op.type is not OperationType.EXECUTION:
            by_parent.setdefault(op.parent_id, []).append(op)

    def nodes(parent: str | None) -> tuple[OperationNode, ...]:
        return tuple(OperationNode(op, nodes(op.id)) for op in by_parent.get(parent, ()))

    return nodes(None)


def format_tree(roots: tuple[OperationNode, ...]) -> str:
    """The tree as indented text, one operation a line."""
    lines: list[str] = []

    def emit(node: OperationNode, pad: str) -> None:
        lines.append(pad + node.label)
        for c in node.children:
            emit(c, pad + "  ")

    for r in roots:
        emit(r, "")
    return "\n".join(lines)


class WorkflowRunner:
    """Runs one workflow execution at a time for a test; see the module docstring.

    ``functions`` are the durable functions ``Invoke`` can reach (also
    :meth:`register`). Every step attempt is recorded in :attr:`step_calls`.
    """

    def __init__(
        self,
        *,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        auto_advance: bool = True,
        start_ms: int = 1_767_225_600_000,
        check_args: bool = True,
    ) -> None:
        self.clock = VirtualClock(start_ms)
        self.store: RecordingStore = RecordingStore()
        self._tracker = StepTracker(self.store)
        self.engine = HarnessEngine(
            store=self.store,
            clock=self.clock,
            hooks=[self._tracker],
            functions=functions,
            check_args=check_args,
        )
        self.auto_advance = auto_advance
        self._workflow: Callable[..., Any] | None = None
        self._execution_id: str | None = None

    # ------------------------------------------------------------------ driving

    def register(self, function_name: str, workflow: Callable[..., Any]) -> None:
        """Make ``workflow`` reachable as ``Invoke(function_name, payload)``."""
        self.engine.register(function_name, workflow)

    def run(
        self, workflow: Callable[..., Any], input: Any = None, *, execution_id: str = "test"
    ) -> ExecutionResult:
        """Start an execution and drive it until it ends or waits on the outside world."""
        if self._execution_id is not None and self.store.exists(execution_id):
            raise ValidationError(
                f"this runner already ran an execution with id {execution_id!r}; use a new "
                "runner or pass execution_id="
            )
        self._workflow = workflow
        self._execution_id = self.engine.start(workflow, input, execution_id=execution_id)
        return self.resume()

    def resume(self) -> ExecutionResult:
        """Drive the execution again (after you changed the world)."""
        workflow, ex = self._current()
        return self.engine.resume(workflow, ex, wait=self.auto_advance)

    def advance(self, seconds: float) -> ExecutionResult:
        """Move the virtual clock forward, fire due timers and resume."""
        self.clock.advance(seconds)
        return self.resume()

    # ------------------------------------------------------------------ callbacks

    def pending_callbacks(self) -> list[Operation]:
        """CALLBACK operations still waiting for the outside world."""
        return pending_callbacks(self.store, self._current()[1])

    def callback_id(self, name_or_id: str) -> str:
        """The callback id of the pending callback named ``name_or_id`` (or with that id).

        A WaitForCallback named ``approval`` records its callback as
        ``approval create callback id``; either name finds it.
        """
        ops = self.store.load(self._current()[1]).values()
        callbacks = [op for op in ops if op.type is OperationType.CALLBACK]
        for op in callbacks:
            short = (op.name or "").removesuffix(" create callback id")
            if name_or_id in (op.callback_id, op.name, short):
                return op.callback_id or ""
        known = ", ".join(repr(op.name) for op in callbacks) or "none"
        raise ValidationError(f"no callback named {name_or_id!r} (callbacks: {known})")

    def succeed_callback(self, name_or_id: str, payload: str = "") -> ExecutionResult:
        """Complete a callback successfully with ``payload`` and resume."""
        return self._complete(name_or_id, "succeed", payload=payload)

    def fail_callback(
        self, name_or_id: str, message: str = "", *, error_type: str = "CallbackFailed"
    ) -> ExecutionResult:
        """Complete a callback with a failure and resume."""
        return self._complete(
            name_or_id, "fail", error=ErrorObject(type=error_type, message=message)
        )

    def heartbeat_callback(self, name_or_id: str) -> None:
        """Record a heartbeat for a callback (it stays pending)."""
        self.store.complete_callback(self.callback_id(name_or_id), "heartbeat", self.clock.now())

    def _complete(self, name_or_id: str, action: str, **kw: Any) -> ExecutionResult:
        self.store.complete_callback(self.callback_id(name_or_id), action, self.clock.now(), **kw)
        return self.resume()

    # ------------------------------------------------------------------ inspecting

    @property
    def execution_id(self) -> str:
        return self._current()[1]

    @property
    def result(self) -> ExecutionResult:
        """The execution as recorded now."""
        return self.engine.result(self._current()[1])

    @property
    def operations(self) -> list[Operation]:
        """Every recorded operation but the EXECUTION one, in recorded order."""
        ops = self.store.load(self._current()[1]).values()
        return [op for op in ops if op.type is not OperationType.EXECUTION]

    def operation(self, name: str) -> Operation:
        """The first recorded operation named ``name``."""
        for op in self.operations:
            if op.name == name:
                return op
        known = ", ".join(repr(op.name) for op in self.operations if op.name) or "none"
        raise ValidationError(f"no operation named {name!r} (named operations: {known})")

    def tree(self) -> tuple[OperationNode, ...]:
        """The operations nested by ParentId (the roots of the tree)."""
        return build_tree(self.store.load(self._current()[1]))

    def format_tree(self) -> str:
        """The tree as indented text: ``Parallel 'book' SUCCEEDED`` then its branches."""
        return format_tree(self.tree())

    def history(self) -> list[dict[str, Any]]:
        """The history events, in the shapes of GetDurableExecutionHistory."""
        return self.store.history(self._current()[1])

    def meter(self, *, retention_days: float | None = None) -> Meter:
        """Durable operations and bytes persisted so far, as Lambda meters them."""
        return meter_execution(self.store, self._current()[1], retention_days=retention_days)

    def event_types(self) -> list[str]:
        """Just the EventType of each history event."""
        return [str(e["EventType"]) for e in self.history()]

    @property
    def step_calls(self) -> list[StepCall]:
        """Every step attempt that ran (name, operation id, attempt), in order."""
        return list(self._tracker.calls)

    def succeeded(self, name: str) -> bool:
        return self.operation(name).status is OperationStatus.SUCCEEDED

    def _current(self) -> tuple[Callable[..., Any], str]:
        if self._workflow is None or self._execution_id is None:
            raise ValidationError("no execution yet: call runner.run(workflow, input) first")
        return self._workflow, self._execution_id
