"""Steps and their retries (at-least-once or at-most-once per attempt), waits, and
WaitForCondition, whose polls are attempts of a step: the operations time decides.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..commands import RunStep
from ..descriptors import (
    PATCH_SUB_TYPE,
    Deprecated,
    Patched,
    Step,
    Wait,
    WaitForCondition,
)
from ..errors import (
    ErrorObject,
    ExecutionError,
    OperationError,
    RetryableSerDesError,
    SerializationError,
    StepError,
    StepInterruptedError,
    WaitForConditionError,
    error_from_exception,
    qualified_name,
    retries_invocation,
)
from ..log import (
    Operation,
    OperationUpdate,
    new_step_update,
)
from ..present import describe_operation
from ..serdes import DEFAULT_SERDES
from .base import (
    _AT_MOST_ONCE,
    _DEFAULT_RETRY,
    _FAIL,
    _NO_RETRY,
    _PENDING,
    _READY,
    _RETRY,
    _ST_WAIT,
    _ST_WFC,
    _START,
    _STARTED,
    _STEP,
    _SUCCEED,
    _SUCCEEDED,
    _WAIT,
    Outcome,
    _Ctx,
    _Entry,
    _Running,
    args_digest,
)
from .contexts import (
    _Contexts,
)


def _result_of_step(run: _Running) -> str:
    return f"the result of step {run.desc.name or run.op_id!r}"


def _state_of(desc: WaitForCondition[Any]) -> str:
    return f"the state of {describe_operation(_ST_WFC, None, desc.name)}"


class _Steps(_Contexts):
    """Steps and their retries (at-least-once or at-most-once per attempt), waits, and
    WaitForCondition, whose polls are attempts of a step.
    """

    def _start_step(self, ctx: _Ctx, desc: Step[Any], op_id: str, op: Operation | None) -> None:
        """A step that is new or in flight: run an attempt, or wait for its retry timer."""
        at_most_once = desc.semantics is _AT_MOST_ONCE
        if op is None:
            self._new_op()
            self._updates.append(
                new_step_update(
                    op_id,
                    _STEP,
                    _START,
                    ctx.op_parent,
                    desc.name,
                    desc.sub_type,
                    None,
                    args_digest(desc.args) if self._check_args else None,
                )
            )
            self._run(ctx, desc, op_id, 1, at_most_once, desc.fn, desc.args)
            return
        status = op.status
        attempt = (op.attempt or 0) + 1
        if status is _STARTED:
            self._new_op()
            if at_most_once:
                # An attempt began and never recorded its outcome: do not run it again.
                run = _Running(ctx, desc, op_id, attempt)
                # AWS's words: the history reads the same on both (the class explains)
                interrupted = StepInterruptedError(
                    f"Step operation_id={op_id} name={desc.name} was previously interrupted"
                )
                self._attempt_failed(run, interrupted, error_from_exception(interrupted))
                return
            self._run(ctx, desc, op_id, attempt, False, desc.fn, desc.args)
            return
        if status is _PENDING or status is _READY:
            due = op.next_attempt_timestamp
            if status is _PENDING and due is not None and due > self.now:
                self._park(ctx, due)
                return
            self._new_op()
            self._updates.append(
                new_step_update(
                    op_id, _STEP, _START, ctx.op_parent, desc.name, desc.sub_type, None, None
                )
            )
            self._run(ctx, desc, op_id, attempt, at_most_once, desc.fn, desc.args)
            return
        # CANCELLED / TIMED_OUT / STOPPED: terminal without a result.
        exc = self._step_error(op, desc.name, StepError)
        if self._resolved(ctx, None, exc):
            self._resume(ctx, None, exc)

    def _run(
        self,
        ctx: _Ctx,
        desc: Any,
        op_id: str,
        attempt: int,
        durable_first: bool,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        state: Any = None,
    ) -> None:
        self._queue[op_id] = _Entry(ctx, False, None, _Running(ctx, desc, op_id, attempt, state))
        self._commands.append(
            RunStep(
                self._take_updates(),
                durable_first,
                op_id=op_id,
                name=desc.name,
                fn=fn,
                args=args,
                attempt=attempt,
            )
        )

    def _step_value(self, run: _Running, value: Any) -> None:
        desc = run.desc
        if type(desc) is WaitForCondition:
            self._poll_value(run, value)
            return
        serdes = desc.serdes or DEFAULT_SERDES
        try:
            payload = serdes.serialize(value)
            if not isinstance(payload, str):
                raise SerializationError(
                    f"serdes {type(serdes).__name__}.serialize returned "
                    f"{type(payload).__name__}, not str",
                    value_type=type(payload).__name__,
                )
            if len(payload) * 4 > self.max_payload_bytes:  # _check_size's own first test
                self._check_size(payload, _result_of_step, run)
            if serdes is not DEFAULT_SERDES:
                value = serdes.deserialize(payload)
        except RetryableSerDesError as e:  # transient: this invocation fails, as on AWS
            self._resume(run.ctx, None, e)
            return
        except SerializationError as e:
            err = ErrorObject(
                type=qualified_name(type(e)),
                message=f"step {desc.name or run.op_id!r} returned a value that cannot be "
                f"stored: {e}",
            )
            self._fail_step(run, err)
            return
        self._updates.append(
            new_step_update(
                run.op_id,
                _STEP,
                _SUCCEED,
                run.ctx.op_parent,
                desc.name,
                desc.sub_type,
                payload,
                None,
            )
        )
        # a partial, not a closure: no cell variables to make on every step
        self._checkpoint_then(partial(self._resume, run.ctx, value, None))

    def _attempt_failed(self, run: _Running, exc: BaseException, error: ErrorObject) -> None:
        if isinstance(exc, ExecutionError) or (
            retries_invocation(exc)
            and (isinstance(exc, RetryableSerDesError) or type(run.desc) is WaitForCondition)
        ):
            # no retry, nothing recorded: it ends the execution (ExecutionError) or this
            # invocation, unless the workflow catches it (AWS: a step's RetryableSerDesError
            # and a check's retryable InvocationError bypass the retry strategy)
            self._resume(run.ctx, None, exc)
            return
        desc = run.desc
        policy = desc.retry or (_NO_RETRY if type(desc) is WaitForCondition else _DEFAULT_RETRY)
        decision = policy.decide(exc, run.attempt, jitter_key=f"{self.execution_id}/{run.op_id}")
        if not decision.retry:
            self._fail_step(run, error)
            return
        is_poll = type(desc) is WaitForCondition
        payload = None
        if is_poll:
            payload = self._encode_state(run, run.state)
            if payload is None:
                return
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_RETRY,
                parent_id=run.ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC if is_poll else run.desc.sub_type,
                error=error,
                payload=payload,
                next_attempt_delay_seconds=decision.delay_seconds,
            )
        )
        self._park(run.ctx, self.now + decision.delay_seconds * 1000)

    def _fail_step(self, run: _Running, error: ErrorObject) -> None:
        desc = run.desc
        is_poll = type(desc) is WaitForCondition
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_FAIL,
                parent_id=run.ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC if is_poll else desc.sub_type,
                error=error,
            )
        )
        cls: type[OperationError] = WaitForConditionError if is_poll else StepError
        exc = cls(error, operation_name=desc.name, operation_id=run.op_id)
        ctx = run.ctx
        self._checkpoint_then(lambda: self._resume(ctx, None, exc))

    def _step_error(
        self, op: Operation, name: str | None, cls: type[OperationError]
    ) -> OperationError:
        error = op.error or ErrorObject(
            type=qualified_name(cls), message=f"the operation ended {op.status.value}"
        )
        return cls(error, operation_name=name, operation_id=op.id)

    def _do_wait_for_condition(
        self, ctx: _Ctx, desc: WaitForCondition[Any], op_id: str, op: Operation | None
    ) -> Outcome:
        if op is None:
            self._new_op()
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_STEP,
                    action=_START,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WFC,
                )
            )
            state = desc.initial_state
            self._run(ctx, desc, op_id, 1, False, desc.check, (state,), state=state)
            return None
        self._check(ctx, op, _STEP, _ST_WFC, desc.name)
        status = op.status
        if status is _SUCCEEDED:
            return self._decode(desc.serdes, op, ctx), None
        if op.is_terminal:
            return None, self._step_error(op, desc.name, WaitForConditionError)
        state = desc.initial_state if op.result is None else self._decode(desc.serdes, op, ctx)
        attempt = (op.attempt or 0) + 1
        if status is _STARTED:
            self._new_op()
            self._run(ctx, desc, op_id, attempt, False, desc.check, (state,), state=state)
            return None
        due = op.next_attempt_timestamp
        if status is _PENDING and due is not None and due > self.now:
            self._park(ctx, due)
            return None
        self._new_op()
        self._updates.append(
            OperationUpdate(
                id=op_id,
                type=_STEP,
                action=_START,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC,
            )
        )
        self._run(ctx, desc, op_id, attempt, False, desc.check, (state,), state=state)
        return None

    def _encode_state(self, run: _Running, state: Any) -> str | None:
        """The serialized poll state, or None after failing the operation."""
        desc = run.desc
        try:
            payload = str((desc.serdes or DEFAULT_SERDES).serialize(state))
            self._check_size(payload, _state_of, desc)
            return payload
        except SerializationError as e:
            self._fail_step(
                run,
                ErrorObject(
                    type=qualified_name(type(e)),
                    message=f"the state of {describe_operation(_ST_WFC, None, desc.name)} "
                    f"cannot be stored: {e}",
                ),
            )
            return None

    def _poll_value(self, run: _Running, state: Any) -> None:
        desc: WaitForCondition[Any] = run.desc
        ctx = run.ctx
        try:
            go_on = bool(desc.wait_strategy.should_continue(state))
        except Exception as e:  # the predicate is workflow code: the workflow sees it
            self._resume(ctx, None, e)
            return
        payload = self._encode_state(run, state)
        if payload is None:
            return
        serdes = desc.serdes or DEFAULT_SERDES
        if not go_on:
            if serdes is not DEFAULT_SERDES:
                state = serdes.deserialize(payload)
            self._updates.append(
                OperationUpdate(
                    id=run.op_id,
                    type=_STEP,
                    action=_SUCCEED,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WFC,
                    payload=payload,
                )
            )
            self._checkpoint_then(lambda: self._resume(ctx, state, None))
            return
        delay = desc.wait_strategy.next_delay(
            run.attempt, jitter_key=f"{self.execution_id}/{run.op_id}"
        )
        if delay is None:
            self._fail_step(
                run,
                ErrorObject(
                    type=qualified_name(WaitForConditionError),
                    message=f"the condition was still unmet after {run.attempt} "
                    f"poll{'s' if run.attempt != 1 else ''}",
                    data=payload,
                ),
            )
            return
        self._updates.append(
            OperationUpdate(
                id=run.op_id,
                type=_STEP,
                action=_RETRY,
                parent_id=ctx.op_parent,
                name=desc.name,
                sub_type=_ST_WFC,
                payload=payload,
                next_attempt_delay_seconds=delay,
            )
        )
        self._park(ctx, self.now + delay * 1000)

    def _do_wait(self, ctx: _Ctx, desc: Wait, op_id: str, op: Operation | None) -> Outcome:
        if op is not None:
            self._check(ctx, op, _WAIT, _ST_WAIT, desc.name)
            if op.is_terminal:
                return None, None
            wake = op.scheduled_end_timestamp
            if wake is None:
                raise self._corrupt(ctx, op, "a started wait has no ScheduledEndTimestamp")
        else:
            self._new_op()
            self._updates.append(
                OperationUpdate(
                    id=op_id,
                    type=_WAIT,
                    action=_START,
                    parent_id=ctx.op_parent,
                    name=desc.name,
                    sub_type=_ST_WAIT,
                    wait_seconds=desc.seconds,
                )
            )
            wake = self.now + desc.seconds * 1000
        self._park(ctx, wake)
        return None

    def _do_patch(
        self, ctx: _Ctx, desc: Patched | Deprecated, op_id: str, op: Operation | None
    ) -> Outcome:
        """Patched / Deprecated: a marker where the log has one, or where it ends."""
        if op is not None:
            if op.type is _STEP and op.sub_type == PATCH_SUB_TYPE and op.name == desc.patch_id:
                return (True if type(desc) is Patched else None), None  # replay the marker
            # what the old code recorded is here: take the old branch, record nothing,
            # and leave this position to the operation the old branch yields
            ctx.counter -= 1
            if type(desc) is Patched:
                self.old_paths.append(desc.patch_id)
                return False, None
            return None, None
        if type(desc) is Deprecated:
            ctx.counter -= 1  # new executions record nothing
            return None, None
        self._new_op()
        parent, name = ctx.op_parent, desc.patch_id
        self._updates.append(
            new_step_update(op_id, _STEP, _START, parent, name, PATCH_SUB_TYPE, None, None)
        )
        self._updates.append(
            new_step_update(op_id, _STEP, _SUCCEED, parent, name, PATCH_SUB_TYPE, "true", None)
        )
        return True, None
