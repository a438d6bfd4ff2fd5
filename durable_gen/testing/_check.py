"""``check_replay_compatible``: can recorded executions replay on the current code?

Durable executions outlive deployments. Before changing a workflow, replay what
running executions recorded -- their operations from a store, or a history from
``durable-gen history ID --json`` or AWS's ``GetDurableExecutionHistory`` --
against the new code: the interpreter walks the workflow against the log as a
resumed invocation would, and nothing runs (no step, no wait, no callback, no
invoke). The answer is ``compatible``, or the first divergence in the words of
the code: where, what the log recorded, what the code yields now, and the line.
"""

from __future__ import annotations

import json
import linecache
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core.errors import CorruptLogError, DurableGenError, NonDeterminismError
from .._core.history import events_of, operations_from_history
from .._core.log import Operation, OperationType, index_operations
from ._replay import interpret_log

__all__ = ["CheckResult", "check_replay_compatible", "present_tense", "read_history_file"]


@attrs.frozen(kw_only=True)
class CheckResult:
    """Whether a recorded execution replays on the current code.

    ``compatible``; ``message``: one line in words (the divergence, or what was
    replayed); for a divergence ``position`` (``"2nd operation of the root
    context"``), ``recorded`` and ``yielded`` (as :class:`NonDeterminismError`
    words them) and ``source`` (``path:line (function)`` where the code yields,
    when known) with ``source_line``, the text of that line. ``error`` is the
    durable_gen error replay raised; ``replayed`` the number of recorded operations.
    """

    execution_id: str
    compatible: bool
    message: str
    replayed: int = 0
    position: str | None = None
    recorded: str | None = None
    yielded: str | None = None
    source: str | None = None
    source_line: str | None = None
    error: DurableGenError | None = None
    #: the patches (``Patched`` ids) whose old branch this execution takes: it still
    #: needs that old code path (empty: none, and the branch may become Deprecated)
    old_paths: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.compatible


def read_history_file(path: str | os.PathLike[str]) -> dict[str, Operation]:
    """The operations a history file records (``{"Events": [...]}`` as
    ``durable-gen history ID --json`` writes it or boto3 returns it).

    OSError when it cannot be read; CorruptLogError (naming the file) when it is
    not such a history.
    """
    text = Path(path).read_text()
    try:
        return operations_from_history(events_of(json.loads(text)))
    except json.JSONDecodeError as e:
        raise CorruptLogError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    except CorruptLogError as e:
        raise CorruptLogError(f"{path}: {e}") from None


def _operations(log: Any) -> dict[str, Operation]:
    if isinstance(log, str | os.PathLike):
        return read_history_file(log)
    if isinstance(log, Mapping):
        if "Events" in log:
            return operations_from_history(events_of(log))
        if all(isinstance(op, Operation) for op in log.values()):
            return dict(log)
    if isinstance(log, Iterable):
        items = list(log)
        if all(isinstance(op, Operation) for op in items):
            return index_operations(items)
        return operations_from_history(events_of(items))
    raise TypeError(
        "check_replay_compatible takes an execution's operations (store.load(id)), a "
        f"history ({{'Events': [...]}}, a list of events, or a file path), not {type(log).__name__}"
    )


def check_replay_compatible(
    workflow: Callable[..., Any],
    log: Mapping[str, Operation] | Mapping[str, Any] | Iterable[Any] | str | os.PathLike[str],
) -> CheckResult:
    """Replay a recorded execution against ``workflow`` without running anything.

    ``log``: the execution's operations (``engine.store.load(execution_id)``), a
    history (``{"Events": [...]}`` from ``durable-gen history ID --json`` or
    ``GetDurableExecutionHistory``, or its list of events) or the path of a
    history file. Steps are not run, waits not waited for, callbacks and invokes
    not called: the workflow body is walked against the log as the next
    invocation would walk it, up to where the log ends.

    Returns a :class:`CheckResult` (true when compatible), for example in pytest::

        result = check_replay_compatible(order_flow, "tests/histories/order-17.json")
        assert result, result.message
    """
    from .._core.descriptors import check_generator_function

    check_generator_function(workflow, "check_replay_compatible's workflow")
    ops = _operations(log)
    executions = [op for op in ops.values() if op.type is OperationType.EXECUTION]
    if len(executions) != 1:
        raise CorruptLogError(
            f"a recorded execution has one EXECUTION operation (ExecutionStarted event), "
            f"this log has {len(executions)}"
        )
    execution_id = executions[0].id
    replayed = len(ops) - 1
    now = max(max(op.start_timestamp, op.end_timestamp or 0) for op in ops.values())
    old_paths: list[str] = []
    _, raised = interpret_log(
        workflow, ops, now=now, execution_id=execution_id, old_paths=old_paths
    )
    if raised is None:
        needs = ""
        if old_paths:
            names = ", ".join(repr(p) for p in dict.fromkeys(old_paths))
            needs = f"; takes the old branch of patch {names}"
        return CheckResult(
            execution_id=execution_id,
            compatible=True,
            message=f"compatible: replays its {replayed} recorded "
            f"operation{'' if replayed == 1 else 's'}{needs}",
            replayed=replayed,
            old_paths=tuple(dict.fromkeys(old_paths)),
        )
    if isinstance(raised, NonDeterminismError):
        source_line = None
        if raised.source is not None:
            path, _, rest = raised.source.rpartition(":")
            line = rest.split(" ", 1)[0]
            if line.isdigit():
                source_line = linecache.getline(path, int(line)).strip() or None
        where = f" ({raised.source})" if raised.source else ""
        return CheckResult(
            execution_id=execution_id,
            compatible=False,
            message=f"diverges at the {raised.position}: the log recorded {raised.recorded}, "
            f"but the code now {present_tense(raised.yielded)}{where}",
            replayed=replayed,
            position=raised.position,
            recorded=raised.recorded,
            yielded=raised.yielded,
            source=raised.source,
            source_line=source_line,
            error=raised,
        )
    return CheckResult(
        execution_id=execution_id,
        compatible=False,
        message=f"cannot be replayed: {type(raised).__name__}: {raised}",
        replayed=replayed,
        error=raised,
    )


def present_tense(yielded: str) -> str:
    """``NonDeterminismError.yielded`` ("yielded Step 'x'", "returned after 2
    operations") as what the code does now."""
    for past, present in (("yielded ", "yields "), ("returned ", "returns ")):
        if yielded.startswith(past):
            return present + yielded[len(past) :]
    return yielded
