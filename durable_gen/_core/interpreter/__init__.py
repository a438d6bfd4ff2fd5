"""The replay interpreter: pure, sans-I/O. This module owns every replay rule.

Given a workflow, its input and the checkpoint log, it drives the workflow's
generators: for each yielded descriptor it either replays the recorded outcome
(the value is sent in; a failure is thrown in with ``gen.throw``) or hands the
engine a command (run this step attempt, make these updates durable, suspend
until ...). It never opens a database, reads a clock, draws a random number or
starts a thread: time comes in as ``now``, step functions are run by the engine,
and the engine reports back.

Usage (the engine's loop)::

    interp = Interpreter(workflow, input_value, operations, now=..., execution_id=...)
    while True:
        cmd = interp.next_command()
        # perform cmd (see _commands.py), report outcomes, stop on Suspend/Complete/Fail

Replay rules (see DESIGN.md):

- Operation ids come from position: the n-th operation of a context gets
  ``operation_id(context_id, n)``; branch ``i`` of a Parallel/Map gets
  ``operation_id(batch_id, i)`` (0-based, as AWS).
- A recorded operation must have the Type, SubType, Name and ParentId of what
  the workflow yields at that position, else :class:`NonDeterminismError`; a
  context that finishes before reaching operations its log recorded is
  non-deterministic too.
- Suspension closes every open generator (innermost first): ``finally`` blocks
  in a workflow run at every suspension, not only at the end.

Determinism under concurrency. Several contexts (Parallel/Map branches,
combinator operands) can be active at once, and the engine may run their steps
on threads that finish in any order. The interpreter *retires* outcomes strictly
in the order the work was issued (a reorder buffer): an outcome that arrives
early waits for the ones issued before it. When more than one context is active,
replay mirrors the live run event for event: recorded outcomes of leaf
operations go through the same queue, and contexts that already ended (branches,
child contexts, nested batches) are re-driven -- their recorded operations
replay, nothing is recorded again, their recorded outcome counts -- instead of
being short-cut. Every decision (ids, the order of updates, completion policies,
which operand a Race picks) is therefore a function of the outcomes alone:
identical whatever the thread timing, and identical between an uninterrupted run
and a crashed-and-resumed one. A single active context (ordinary sequential
code) replays inline, which is what makes replay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..commands import AwaitOutcome, Checkpoint, Command, Fail, FailInvocation, Suspend
from ..descriptors import (
    AwaitCallback,
    CallbackHandle,
    ChildContext,
    CreateCallback,
    Deprecated,
    Invoke,
    Map,
    Parallel,
    Patched,
    Step,
    Wait,
    WaitForCallback,
    WaitForCondition,
    _Combinator,
)
from ..errors import (
    CorruptLogError,
    ExecutionError,
    InternalError,
    InvocationError,
    NonDeterminismError,
    SerializationError,
    StepError,
    error_from_exception,
    retries_invocation,
)
from ..log import _ROOT_IDS, Operation, operation_id
from ..serdes import DEFAULT_SERDES
from .base import _FAILED, _STEP, _SUCCEEDED, Outcome, _Ctx, args_digest
from .invoke import _Invokes

__all__ = ["Interpreter"]


class Interpreter(_Invokes):
    """Drives one invocation of a workflow against its log. Pure: no I/O.

    ``operations`` is the log (id -> Operation) as loaded; ``now`` is the current
    time in epoch milliseconds, used only to decide whether a scheduled retry is
    due. ``check_args`` also compares a digest of each step's arguments with the
    recorded one (the embedded and in-memory engines turn it on).
    """

    def next_command(self) -> Command:
        """The next thing the engine must do."""
        if self._awaiting_ack is not None:
            raise InternalError(
                "next_command() called while a Checkpoint is unacknowledged; "
                "call checkpointed() once its updates are durable"
            )
        commands = self._commands
        ready = self._ready
        queue = self._queue
        try:
            while True:
                if commands:
                    cmd = commands.popleft()
                    if type(cmd) is Checkpoint:
                        self._awaiting_ack = self._acks.pop(id(cmd))
                    return cmd
                if self._finished is not None:
                    return self._finished
                if ready:
                    self._drive(ready.popleft())
                    continue
                if queue:
                    key = next(iter(queue))
                    entry = queue[key]
                    if not entry.done:
                        return AwaitOutcome(self._take_updates())
                    del queue[key]
                    assert entry.action is not None
                    entry.action()
                    continue
                return self._stop()
        except InvocationError as e:
            # Out of the root, or out of a serdes reading the log: the invocation ends
            # with it (retried by the engine) -- or, not retryable, the execution fails,
            # as AWS's handler does with each.
            self.close()
            error = error_from_exception(e)
            updates = self._take_updates()
            retry = e.is_retryable()
            self._finished = FailInvocation(updates, error, e) if retry else Fail(updates, error, e)
            return self._finished

    def checkpointed(self, delta: Mapping[str, Operation] | None = None) -> None:
        """The updates of the last Checkpoint are durable; ``delta`` is what changed."""
        action = self._awaiting_ack
        if action is None:
            raise InternalError("checkpointed() called with no Checkpoint outstanding")
        if delta:
            self._ops.update(delta)
        self._awaiting_ack = None
        action()

    def awaits_only(self, op_id: str) -> bool:
        """Whether the next command would be an empty AwaitOutcome for ``op_id`` alone.

        True when nothing but that step's attempt is outstanding: no command, update,
        ready context or other queued work. The engine may then run the attempt at
        once instead of asking for the next command (sequential code, the common case).
        """
        return (
            not self._commands
            and not self._ready
            and not self._updates
            and self._finished is None
            and len(self._queue) == 1
            and op_id in self._queue
        )

    def step_returned(self, op_id: str, value: Any) -> None:
        """The engine ran a step attempt and it returned ``value``."""
        entry = self._arrival(op_id)
        if entry is not None:
            run = entry.run
            assert run is not None
            entry.action = partial(self._step_value, run, value)
            entry.done = True

    def step_raised(self, op_id: str, exc: BaseException) -> None:
        """The engine ran a step attempt and it raised ``exc``."""
        entry = self._arrival(op_id)
        if entry is not None:
            run = entry.run
            assert run is not None
            entry.action = lambda: self._attempt_failed(run, exc, error_from_exception(exc))
            entry.done = True

    def _drive(self, ctx: _Ctx) -> None:
        """Run ``ctx`` until it blocks or finishes; replays recorded operations inline."""
        self._current = ctx
        gen = ctx.gen
        ops = self._ops
        root_ids = _ROOT_IDS
        # never rebound (mutated in place), so locals save a lookup per replayed op
        ready = self._ready
        queue = self._queue
        check_args = self._check_args
        value = ctx.send_value
        exc = ctx.send_exc
        ctx.send_value = ctx.send_exc = None
        while True:
            try:
                desc = gen.send(value) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                self._check_nothing_skipped(ctx)
                self._open.remove(ctx)
                ctx.owner.returned(self, ctx, stop.value)
                return
            except Exception as e:  # the workflow raised
                if isinstance(e, NonDeterminismError | CorruptLogError | InternalError):
                    raise
                self._open.remove(ctx)
                if isinstance(e, ExecutionError) or retries_invocation(e):
                    if ctx.parent is not None:
                        self._escape(ctx.parent, e)
                        return
                    if not isinstance(e, ExecutionError):
                        raise  # out of the root: this invocation fails (next_command)
                ctx.owner.raised(self, ctx, e)
                return
            exc = None
            tdesc = type(desc)
            if tdesc is AwaitCallback or tdesc is CallbackHandle:
                handle = desc.handle if tdesc is AwaitCallback else desc
                outcome = self._await_callback(ctx, handle)
                if outcome is None:
                    return
                value, exc = outcome
                if self._resolved(ctx, value, exc):
                    continue
                return
            ctx.counter += 1
            n = ctx.counter
            prefix = ctx.id
            op_id = root_ids[n] if prefix is None and n < len(root_ids) else operation_id(prefix, n)
            op = ops.get(op_id)
            if tdesc is Step:
                if op is not None:
                    if not (
                        op.type is _STEP
                        and op.name == desc.name
                        and op.parent_id == ctx.op_parent
                        and op.sub_type == desc.sub_type
                    ):
                        self._check(ctx, op, _STEP, desc.sub_type, desc.name)
                    elif self.observed is not None:
                        self.observed.append(op)  # _check appends it otherwise
                    status = op.status
                    if status is _SUCCEEDED:
                        if check_args and op.args_digest is not None:
                            digest = args_digest(desc.args)
                            if digest is not None and digest != op.args_digest:
                                self._check_digest(ctx, op, desc)  # raises
                        res = op.result
                        if res is None:
                            value = None
                        else:
                            try:
                                value = (desc.serdes or DEFAULT_SERDES).deserialize(res)
                            except SerializationError as e:
                                raise self._corrupt(ctx, op, e) from e
                        if ready or queue:
                            self._resolved(ctx, value, None)
                            return
                        continue
                    if status is _FAILED:
                        value = None
                        exc = self._step_error(op, desc.name, StepError)
                        if self._resolved(ctx, value, exc):
                            continue
                        return
                self._start_step(ctx, desc, op_id, op)
                return
            handler = _HANDLERS.get(tdesc)
            if handler is None:
                if not isinstance(desc, _Combinator):
                    self._bad_yield(ctx, desc)
                handler = Interpreter._do_combinator
            outcome = handler(self, ctx, desc, op_id, op)
            if outcome is None:
                return
            value, exc = outcome
            if self._resolved(ctx, value, exc):
                continue
            return

    def _stop(self) -> Command:
        """Nothing is ready and nothing runs: suspend (or report the finished root)."""
        if self._finished is not None:
            return self._finished
        wakes = [w for w in self._parked.values() if w is not None]
        self.close()
        self._finished = Suspend(self._take_updates(), min(wakes) if wakes else None)
        return self._finished


_Handler = Callable[[Interpreter, _Ctx, Any, str, Operation | None], Outcome]


_HANDLERS: dict[type, _Handler] = {
    Wait: Interpreter._do_wait,
    ChildContext: Interpreter._do_child,
    WaitForCondition: Interpreter._do_wait_for_condition,
    CreateCallback: Interpreter._do_create_callback,
    WaitForCallback: Interpreter._do_wait_for_callback,
    Invoke: Interpreter._do_invoke,
    Parallel: Interpreter._do_batch,
    Map: Interpreter._do_batch,
    Patched: Interpreter._do_patch,
    Deprecated: Interpreter._do_patch,
}
