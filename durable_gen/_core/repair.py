"""Redrive and fork: which recorded operations a repaired execution keeps (pure).

Both take an execution's operations in the order they were first recorded (what
every store's ``load`` returns) and give the operations the repaired log holds.
Replay does the rest: an operation that is not recorded runs; one that is recorded
returns its stored outcome and its code does not run. So "kept" means "never run
again", and the rules below keep an operation only when nothing it depends on
changes.

What an operation depends on: every operation recorded before it in the same
sequential context (the code between them decides whether it is reached at all),
and, through its ancestors, what came before them. Branches of a Parallel and
items of a Map do not depend on one another, so a change in one branch leaves its
sibling branches kept.

- **redrive** (a FAILED, STOPPED or TIMED_OUT execution): every operation that did
  not succeed (FAILED, TIMED_OUT, STOPPED, CANCELLED) is dropped, with whatever was
  recorded after it in its sequential context; every context that held a dropped
  operation is reopened (STARTED, outcome cleared), and what came after a reopened
  context in its own sequential context is dropped too. The execution itself is
  reopened. Successes before the first failure in each sequential context are kept.
- **fork** (any execution, from an operation P): P is dropped with everything
  recorded after it, in every context (a fork is a point in time, not a branch),
  and the contexts holding a dropped operation are reopened. Operations that had
  not ended (a step between retries, an open callback, a running invoke) are
  dropped as well: the new execution starts them afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .errors import ValidationError
from .log import Operation, OperationStatus, OperationType

#: Outcomes that redrive runs again.
UNSUCCESSFUL = frozenset(
    {
        OperationStatus.FAILED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
        OperationStatus.CANCELLED,
    }
)
#: Contexts whose children are independent of one another (branches, items).
_BATCH_SUB_TYPES = frozenset({"Parallel", "Map"})


def _reopen(op: Operation) -> Operation:
    return attrs.evolve(
        op,
        status=OperationStatus.STARTED,
        end_timestamp=None,
        result=None,
        error=None,
    )


class _Tree:
    def __init__(self, ops: Sequence[Operation]) -> None:
        self.ops = list(ops)
        self.by_id = {op.id: op for op in ops}
        self.position = {op.id: i for i, op in enumerate(ops)}
        self.children: dict[str | None, list[str]] = {}
        for op in ops:
            if op.type is OperationType.EXECUTION:
                continue
            self.children.setdefault(op.parent_id, []).append(op.id)

    def descendants(self, op_id: str) -> Iterable[str]:
        stack = list(self.children.get(op_id, ()))
        while stack:
            child = stack.pop()
            yield child
            stack.extend(self.children.get(child, ()))

    def ancestors(self, op_id: str) -> Iterable[str]:
        parent = self.by_id[op_id].parent_id
        while parent is not None and parent in self.by_id:
            yield parent
            parent = self.by_id[parent].parent_id

    def later_siblings(self, op_id: str) -> list[str]:
        """Operations recorded after ``op_id`` in its sequential context ([] in a batch)."""
        parent = self.by_id[op_id].parent_id
        if parent in self.by_id and self.by_id[parent].sub_type in _BATCH_SUB_TYPES:
            return []
        mine = self.position[op_id]
        return [s for s in self.children.get(parent, ()) if self.position[s] > mine]

    def result(self, dropped: set[str], reopened: set[str]) -> list[Operation]:
        out = []
        for op in self.ops:
            if op.id in dropped:
                continue
            out.append(_reopen(op) if op.id in reopened else op)
        return out


def _close(tree: _Tree, dropped: set[str], reopened: set[str], sequential: bool) -> None:
    """Drop descendants of dropped operations, reopen their ancestors and (with
    ``sequential``) drop what came after each changed operation in its context."""
    work = list(dropped | reopened)
    while work:
        op_id = work.pop()
        changed = []
        if op_id in dropped:
            changed += [d for d in tree.descendants(op_id) if d not in dropped]
            dropped.update(changed)
        if sequential and tree.by_id[op_id].type is not OperationType.EXECUTION:
            later = [s for s in tree.later_siblings(op_id) if s not in dropped]
            dropped.update(later)
            changed += later
        for a in tree.ancestors(op_id):
            if a not in reopened:
                reopened.add(a)
                changed.append(a)
        work += changed
    reopened -= dropped


def redrive_operations(ops: Sequence[Operation]) -> list[Operation]:
    """The operations a redriven execution keeps (see the module's docstring)."""
    tree = _Tree(ops)
    dropped = {
        op.id
        for op in ops
        if op.type is not OperationType.EXECUTION
        and op.status in UNSUCCESSFUL
        and not tree.children.get(op.id)  # a context is reopened, not dropped
    }
    reopened = {
        op.id
        for op in ops
        if op.type is OperationType.EXECUTION
        or (op.status in UNSUCCESSFUL and op.id not in dropped)
    }
    _close(tree, dropped, reopened, sequential=True)
    return tree.result(dropped, reopened)


def find_operation(ops: Sequence[Operation], key: str) -> Operation:
    """The operation ``key`` names: its id, or its name when that is unique."""
    for op in ops:
        if op.id == key and op.type is not OperationType.EXECUTION:
            return op
    named = [op for op in ops if op.name == key and op.type is not OperationType.EXECUTION]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(op.id[:12] for op in named[:5])
        raise ValidationError(
            f"{len(named)} operations are named {key!r} (ids {ids}...); name one by its id "
            "(durable-gen show --json lists them)"
        )
    raise ValidationError(
        f"no operation with id or name {key!r:.80} is recorded; durable-gen show lists "
        "the execution's operations"
    )


def fork_operations(ops: Sequence[Operation], at: Operation) -> list[Operation]:
    """The operations a fork from ``at`` copies (see the module's docstring)."""
    tree = _Tree(ops)
    cut = tree.position[at.id]
    dropped = {
        op.id
        for op in ops
        if op.type is not OperationType.EXECUTION
        and (tree.position[op.id] >= cut or (not op.is_terminal and not tree.children.get(op.id)))
    }
    reopened = {op.id for op in ops if op.type is OperationType.EXECUTION}
    _close(tree, dropped, reopened, sequential=False)
    return tree.result(dropped, reopened)
