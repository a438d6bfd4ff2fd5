"""The store contract: what an engine needs from a store, written down once.

Two protocols, beneath the engines that use them and the stores that keep them
(this module imports only the log model and the errors):

- :class:`EngineStore`: what the resume loop (``_engine.local.LocalEngine``) needs to
  drive one execution: create it, load its log, checkpoint updates the way the
  durable service applies them, fire timers, record invocations and the end.
  :class:`~durable_gen.MemoryStore` and :class:`~durable_gen.SqliteStore` keep it.
- :class:`DurableStore`: an :class:`EngineStore` that several processes share
  (``_engine.durable.DurableEngine``, the worker of ``durable-gen worker`` and ``serve``):
  leases with fencing, finding due work, the outside world's writes (callbacks,
  stop, pause, delete). :class:`~durable_gen.SqliteStore` keeps it; a new durable
  store (PostgreSQL) is a new class that passes ``tests/store_contract``.

The promises, which ``tests/store_contract`` checks against every store:

Durability
    ``checkpoint(..., durable=True)``, ``create``, ``finish``, ``complete_callback``,
    ``stop``, ``pause``, ``resume_paused`` and ``delete`` are durable when they
    return: a store opened afterwards, by any process, sees them, even after a
    crash or power loss (for SQLite: one committed transaction, fsync'ed, with
    ``synchronous=FULL``). ``durable=False`` updates (the START of an at-least-once
    step) may be lost to a crash; they are written with the next durable write.
    An error means nothing of that call was recorded.
Fencing
    Writing an execution's log (``checkpoint``, ``begin_invocation``,
    ``end_invocation``, ``finish``) needs its lease (:meth:`DurableStore.acquire`).
    Each such write checks, atomically with the write, that this store still holds
    the lease and the execution is RUNNING (or PAUSING); otherwise it raises
    :class:`LeaseLostError` and writes nothing. So a worker that lost its lease
    (expired and taken over, stopped, paused, deleted) can never write.
One name, one execution
    ``create`` of an existing id with the same input (and function, where known)
    returns False and writes nothing; with another input or function it raises
    :class:`~durable_gen.ExecutionAlreadyStartedError`. Concurrent creates of one
    id, from any processes, create it once.
Leases
    ``acquire`` takes a free lease, an expired one, or one whose holder is proven
    dead (recording that holder's interrupted invocation as ended with
    ``Runtime.ExitError``); a live holder's lease raises :class:`LeaseHeldError`.
    A holder is never judged dead without proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from .errors import ErrorObject, ExecutionAlreadyStartedError, StoreError
from .log import Operation, OperationUpdate
from .present import fmt_time

__all__ = [
    "ADVANCING_STATUSES",
    "LIVE_STATUSES",
    "DurableStore",
    "check_same_start",
    "EngineStore",
    "ExecutionInfo",
    "LeaseHeldError",
    "LeaseLostError",
    "describe_owner",
    "parse_owner",
]


def parse_owner(owner: str) -> tuple[str, int, str] | None:
    """``(host, pid, start token)`` of a lease owner ``host:pid:token:random``, or None."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4:
        return None
    host, pid, token, _ = parts
    try:
        return host, int(pid), token
    except ValueError:
        return None


def describe_owner(owner: str) -> str:
    """``pid 123 on host`` for people."""
    parsed = parse_owner(owner)
    if parsed is None:
        return f"owner {owner!r}"
    host, pid, _ = parsed
    return f"pid {pid} on {host}"


def check_same_start(
    execution_id: str, same_input: bool, recorded_target: str | None, target: str | None
) -> None:
    """Lambda's name rule for a start whose name (id) exists: the same input and
    function is the existing execution; anything else is refused."""
    if recorded_target is not None and target is not None and recorded_target != target:
        raise ExecutionAlreadyStartedError(
            execution_id,
            "function",
            f"execution name {execution_id!r} is taken by an execution of {recorded_target}, "
            f"not of {target}; an execution name belongs to one function: choose another "
            "name",
        )
    if not same_input:
        raise ExecutionAlreadyStartedError(
            execution_id,
            "input",
            f"execution {execution_id!r} was already started with another input; one name "
            "starts one execution (starting it again with the same input returns that "
            "execution): choose another name, or send the same input",
        )


#: Statuses in which a lease holder may write (PAUSING: a pause waits for the holder's
#: next checkpoint), and those in which an execution has not ended: the outside world
#: may still complete its callbacks and invokes, or stop it.
ADVANCING_STATUSES = ("RUNNING", "PAUSING")
LIVE_STATUSES = ("RUNNING", "PAUSING", "PAUSED")


class LeaseHeldError(StoreError):
    """Another live worker holds the lease of the execution."""

    def __init__(self, execution_id: str, owner: str, expires: int) -> None:
        self.execution_id = execution_id
        self.owner = owner
        self.expires = expires
        super().__init__(
            f"execution {execution_id!r} is being advanced by another worker "
            f"({describe_owner(owner)}); its lease expires at {fmt_time(expires)}",
            retryable=True,
        )


class LeaseLostError(StoreError):
    """This store no longer holds the execution's lease, or the execution ended."""

    def __init__(self, execution_id: str, status: str | None, owner: str | None) -> None:
        self.execution_id = execution_id
        self.status = status
        self.owner = owner
        if status is None:
            why = "it no longer exists"
        elif status not in ("RUNNING", "PAUSING"):
            why = f"it ended {status}" if status != "PAUSED" else "it was paused"
        elif owner is None:
            why = "the lease was released"
        else:
            why = f"the lease passed to {describe_owner(owner)}"
        super().__init__(f"stopped advancing execution {execution_id!r}: {why}")


@attrs.frozen(kw_only=True)
class ExecutionInfo:
    """A durable store's record of one execution (times in epoch ms)."""

    id: str
    target: str | None
    workdir: str | None
    status: str
    input: str
    result: str | None
    error: ErrorObject | None
    created_at: int
    updated_at: int
    ended_at: int | None
    wake_at: int | None
    lease_owner: str | None
    lease_expires: int | None
    #: the version of the workflow's code it started on (see ``durable_gen.code_version``)
    code_version: str | None = None
    #: when a live execution ends TIMED_OUT (None: never), the ExecutionTimeout it
    #: started with, and how long it is kept once it ended (None: the purger's default)
    deadline: int | None = None
    timeout_ms: int | None = None
    retention_ms: int | None = None


class EngineStore(Protocol):
    """What the resume loop needs from a store, to drive one execution."""

    def create(self, execution_id: str, input_payload: str, now: int) -> bool:
        """Record a new RUNNING execution with its EXECUTION operation (durable).

        False, writing nothing, when it exists with this input; another input:
        :class:`~durable_gen.ExecutionAlreadyStartedError`."""
        ...

    def exists(self, execution_id: str) -> bool:
        """Whether an execution with this id is recorded."""
        ...

    def load(self, execution_id: str) -> Mapping[str, Operation]:
        """The execution's operations by id, as last checkpointed (not-found: an
        :class:`~durable_gen.ExecutionNotFoundError`)."""
        ...

    def checkpoint(
        self, execution_id: str, updates: list[OperationUpdate], now: int, *, durable: bool
    ) -> Mapping[str, Operation]:
        """Apply ``updates`` as the durable service does (``_core.service.apply_updates``)
        and return the operations they changed; durable when ``durable`` (fenced)."""
        ...

    def fire_timers(self, execution_id: str, now: int) -> None:
        """Complete the waits, retry delays and timeouts due at ``now`` (fenced)."""
        ...

    def next_timer(self, execution_id: str) -> int | None:
        """The earliest pending timer of the execution, or None."""
        ...

    def finish(
        self,
        execution_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        """Record the execution's end and its Execution* event (durable, fenced); an
        execution it invoked is completed in its parent."""
        ...

    def add_event(self, execution_id: str, event: dict[str, Any]) -> None:
        """Append a history event (durable)."""
        ...

    def begin_invocation(self, execution_id: str, request_id: str | None, now: int) -> None:
        """Fire due timers and note that an invocation is running (durable, fenced)."""
        ...

    def end_invocation(self, execution_id: str, event: dict[str, Any]) -> None:
        """Record the InvocationCompleted ``event``; no invocation runs any more."""
        ...

    def status(self, execution_id: str) -> tuple[str, str | None, ErrorObject | None]:
        """``(status, result payload, error)`` of the execution."""
        ...

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """Its history events in order, in GetDurableExecutionHistory's shapes, with
        ``EventId`` from 1."""
        ...

    def running_invokes(self, execution_id: str) -> list[Operation]:
        """Its CHAINED_INVOKE operations started and not completed."""
        ...

    def complete_invoke(
        self,
        execution_id: str,
        op_id: str,
        status: str,
        now: int,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        """Complete a chained invoke with the outcome of the execution it started
        (durable; needs no lease; the execution is due again)."""
        ...

    def callback_execution(self, callback_id: str) -> str:
        """The execution a callback id belongs to."""
        ...

    def complete_callback(
        self,
        callback_id: str,
        action: str,
        now: int,
        *,
        payload: str | None = None,
        error: ErrorObject | None = None,
        execution_id: str | None = None,
    ) -> str:
        """Succeed, fail or heartbeat a callback from anywhere (durable; needs no
        lease); the execution is due again (not for a heartbeat). Returns its id."""
        ...


class DurableStore(EngineStore, Protocol):
    """An :class:`EngineStore` shared by processes: leases, due work, management."""

    #: This store's lease owner (``host:pid:start-token:random``).
    owner: str
    #: How long a lease lasts without renewal, in ms (the engine renews every third).
    lease_ms: int
    #: Set at shutdown: the running invocation ends at its next durable checkpoint
    #: (:class:`~durable_gen._core.errors.InvocationInterruptedError`, after the write).
    draining: bool

    def create(
        self,
        execution_id: str,
        input_payload: str,
        now: int,
        *,
        target: str | None = None,
        workdir: str | None = None,
        parent: str | None = None,
        parent_op: str | None = None,
        same_input: Callable[[str], bool] | None = None,
        code_version: str | None = None,
        deadline: int | None = None,
        timeout_ms: int | None = None,
        retention_ms: int | None = None,
        trace_context: str | None = None,
    ) -> bool:
        """:meth:`EngineStore.create`, with how workers load it (``target``,
        ``workdir``), the invoking execution and operation (``parent``,
        ``parent_op``: completed when this one ends), how stored inputs compare
        (``same_input``, default equal text; an encrypting wrapper decrypts), the
        version of the code it starts on (``code_version``), when it times out
        (``deadline``, epoch ms; ``timeout_ms``: the ExecutionTimeout it was given),
        how long it is kept once ended (``retention_ms``) and the W3C ``traceparent``
        of the trace it continues (``trace_context``, see :meth:`trace_context`)."""
        ...

    def trace_context(self, execution_id: str) -> str | None:
        """The ``trace_context`` the execution was created with (None: none, or no
        such execution)."""
        ...

    def overdue(self, now: int, *, limit: int = 100) -> list[str]:
        """Ids of live executions whose deadline is at or before ``now``."""
        ...

    def time_out(self, execution_id: str, now: int) -> bool:
        """End a live execution past its deadline as TIMED_OUT (durable; needs no lease:
        its holder can write no more); its open waits and callbacks are closed. False,
        writing nothing, when it ended already or its deadline has not come."""
        ...

    def purge(self, now: int, *, default_retention_ms: int | None = None, limit: int = 500) -> int:
        """Delete up to ``limit`` ended executions past their retention (their own, else
        ``default_retention_ms``; None: kept) with all their data; how many (durable)."""
        ...

    def acquire(self, execution_id: str, now: int) -> None:
        """Take the execution's lease (see "Leases" above), durably."""
        ...

    def release(self, execution_id: str, wake_at: int | None, *, keep_wake: bool = False) -> None:
        """Let go of the lease; a RUNNING execution is due again at ``wake_at`` (never
        later than a wake-up another process asked for meanwhile)."""
        ...

    def release_all(self) -> None:
        """Let go of every lease this store holds, leaving each execution due as it was."""
        ...

    def renew(self, execution_id: str) -> bool:
        """Extend the lease (from any thread); False when it is no longer ours."""
        ...

    def owner_is_dead(self, owner: str) -> bool:
        """True only when ``owner`` is proven dead."""
        ...

    def due(self, now: int, *, limit: int = 100, code_version: str | None = None) -> list[str]:
        """Ids of RUNNING executions due at ``now`` that this store may take (with
        ``code_version``, only those that started on that version of the code)."""
        ...

    def next_wake(self, *, code_version: str | None = None) -> int | None:
        """The earliest wake time of a RUNNING execution no live lease holds (with
        ``code_version``, of those that started on it)."""
        ...

    def changed_elsewhere(self, execution_id: str) -> bool:
        """Whether another process wrote to the execution since this store looked."""
        ...

    def info(self, execution_id: str) -> ExecutionInfo:
        """The execution's record."""
        ...

    def executions(self, *, status: str | None = None, limit: int = 100) -> list[ExecutionInfo]:
        """Executions, newest first."""
        ...

    def stop(self, execution_id: str, now: int, *, error: ErrorObject | None = None) -> None:
        """End a live execution as STOPPED (durable); its holder can write no more."""
        ...

    def pause(self, execution_id: str, now: int, *, reason: str | None = None) -> str:
        """Pause a RUNNING execution: PAUSING until its holder's next checkpoint, or
        PAUSED; returns the new status."""
        ...

    def resume_paused(self, execution_id: str, now: int, *, reason: str | None = None) -> None:
        """Make a paused execution RUNNING and due."""
        ...

    def delete(self, execution_id: str, *, force: bool = False) -> None:
        """Remove an ended execution (a live one only with ``force``) with its data."""
        ...

    def redrive(self, execution_id: str, now: int) -> list[str]:
        """Make a FAILED, STOPPED or TIMED_OUT execution RUNNING again, keeping the
        operations :func:`~durable_gen._core.repair.redrive_operations` keeps; returns
        the ids of those that will run again."""
        ...

    def fork(
        self,
        execution_id: str,
        new_id: str,
        at: str,
        now: int,
        *,
        target: str | None = None,
        code_version: str | None = None,
    ) -> str:
        """A new execution with the source's input and the operations it recorded
        before operation ``at`` (:func:`~durable_gen._core.repair.fork_operations`);
        returns the id of the operation forked from."""
        ...

    def clone(self) -> DurableStore:
        """Another handle on the same data, with a lease owner of its own (a worker
        thread's store)."""
        ...

    def close(self) -> None:
        """Let go of every lease and close the store."""
        ...
