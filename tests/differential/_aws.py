"""Run a durable_gen workflow on AWS's Python SDK: the other side of the comparison.

:func:`aws_handler` is an AWS SDK 3.0 handler (``@durable_execution``) that drives
a durable_gen generator: each descriptor the workflow yields is performed with the
matching ``DurableContext`` call (Step -> ``ctx.step``, ChildContext ->
``ctx.run_in_child_context``, Parallel -> ``ctx.parallel`` ...), its result sent
back in, its failure thrown in as durable_gen's exception of the same kind
(``StepError``, ``ChildContextError`` ...) carrying AWS's ``error_type`` and
message. So one program, written once, runs on both SDKs, and what differs in the
histories is what the SDKs record, not two hand-written versions of the program.

Only the descriptors the differential programs use are supported (Step, Wait,
WaitForCondition, ChildContext, Parallel, Map, CreateCallback and awaiting it,
WaitForCallback, Invoke); anything else is a test bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python import config as aws_config
from aws_durable_execution_sdk_python import exceptions as aws_exc
from aws_durable_execution_sdk_python.concurrency.models import BatchResult as AwsBatchResult
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    ChildConfig,
    CompletionConfig,
    Duration,
    JitterStrategy,
    MapConfig,
    ParallelConfig,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitStrategyConfig,
    create_wait_strategy,
)

from durable_gen import (
    AwaitCallback,
    CallbackError,
    CallbackFailedError,
    CallbackHandle,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContext,
    ChildContextError,
    CreateCallback,
    ErrorObject,
    ExecutionError,
    Invoke,
    InvokeError,
    Map,
    OperationError,
    Parallel,
    RetryableSerDesError,
    RetryPolicy,
    Step,
    StepError,
    ValidationError,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitForConditionError,
)
from durable_gen._core.batch import (
    BatchItemStatus,
    BatchResult,
    CompletionDecision,
    CompletionItemStatus,
    CompletionPolicy,
    CompletionStatus,
)
from durable_gen._core.descriptors import ParallelBranch, StepSemantics
from durable_gen._core.retry import (
    Jitter,
    WaitStrategy,
)
from durable_gen._engine.driver import _attempt
from durable_gen.testing import program_workflow

__all__ = ["aws_handler", "make_aws_handler"]

_JITTER = {Jitter.NONE: JitterStrategy.NONE, Jitter.FULL: JitterStrategy.FULL}
_SEMANTICS = {
    StepSemantics.AT_LEAST_ONCE_PER_RETRY: aws_config.StepSemantics.AT_LEAST_ONCE_PER_RETRY,
    StepSemantics.AT_MOST_ONCE_PER_RETRY: aws_config.StepSemantics.AT_MOST_ONCE_PER_RETRY,
}
#: AWS's operation errors and durable_gen's, subclasses first
_ERRORS: list[tuple[type[aws_exc.DurableOperationError], type[OperationError]]] = [
    (aws_exc.CallbackTimeoutError, CallbackTimeoutError),
    (aws_exc.CallbackExternalError, CallbackFailedError),
    (aws_exc.CallbackSubmitterError, CallbackSubmitterError),
    (aws_exc.CallbackError, CallbackError),
    (aws_exc.StepError, StepError),
    (aws_exc.InvokeError, InvokeError),
    (aws_exc.WaitForConditionError, WaitForConditionError),
    (aws_exc.ChildContextError, ChildContextError),
]


def _retry(policy: RetryPolicy | None) -> Any:
    if policy is None:
        return None
    return create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=policy.max_attempts,
            initial_delay=Duration.from_seconds(int(policy.initial_delay)),
            max_delay=Duration.from_seconds(int(policy.max_delay)),
            backoff_rate=policy.backoff_rate,
            jitter_strategy=_JITTER[policy.jitter],
        )
    )


def _wait_strategy(ws: WaitStrategy) -> Any:
    should_continue = ws.should_continue
    assert should_continue is not None, "differential programs give should_continue"
    return create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=should_continue,
            max_attempts=ws.max_attempts,
            initial_delay=Duration.from_seconds(int(ws.initial_delay)),
            max_delay=Duration.from_seconds(int(ws.max_delay)),
            backoff_rate=ws.backoff_rate,
            jitter_strategy=_JITTER[ws.jitter],
        )
    )


def _predicate(ours: Callable[[CompletionStatus], CompletionDecision]) -> Any:
    """durable_gen's ``should_complete`` as AWS's (its status in, its decision out)."""

    def should_complete(status: aws_config.CompletionStatus) -> aws_config.CompletionDecision:
        items = tuple(
            CompletionItemStatus(
                i.index, i.name, None if i.status is None else BatchItemStatus(i.status.value)
            )
            for i in status.items
        )
        decision = ours(
            CompletionStatus(
                status.success_count,
                status.failure_count,
                status.completed_count,
                status.total_count,
                items,
            )
        )
        outcome = decision.outcome
        return aws_config.CompletionDecision(
            decision.complete,
            None if outcome is None else aws_config.CompletionOutcome(outcome.value),
        )

    return should_complete


def _completion(policy: CompletionPolicy) -> CompletionConfig:
    # (a Parallel's or Map's completion is never None: each has its default policy)
    if policy.should_complete is not None:
        return CompletionConfig(should_complete=_predicate(policy.should_complete))
    return CompletionConfig(
        min_successful=policy.min_successful,
        tolerated_failure_count=policy.tolerated_failure_count,
        tolerated_failure_percentage=policy.tolerated_failure_percentage,
    )


def _batch_summary(summary: Callable[[Any], str] | None) -> Any:
    """durable_gen's batch summary, given AWS's BatchResult as durable_gen's."""
    if summary is None:
        return None
    return lambda result: summary(_batch(result))


def _sub_type(sub_type: str, default: str) -> str | None:
    return None if sub_type == default else sub_type


def _batch(result: AwsBatchResult[Any]) -> BatchResult:
    return BatchResult.from_record(result.to_dict())


def _ours(exc: aws_exc.DurableOperationError) -> OperationError:
    """AWS's operation error as durable_gen's of the same kind (type and message kept)."""
    for theirs, ours in _ERRORS:
        if isinstance(exc, theirs):
            return ours(ErrorObject(type=exc.error_type, message=exc.message))
    raise TypeError(f"no durable_gen counterpart for {type(exc).__name__}") from exc


def _with_attempt(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[Any], Any]:
    def run(step_ctx: Any) -> Any:
        token = _attempt.set(step_ctx.attempt)  # what current_attempt() reads
        try:
            return fn(*args)
        except ExecutionError as e:  # durable_gen's, raised by the step: AWS's
            raise aws_exc.ExecutionError(str(e)) from None
        except RetryableSerDesError as e:
            raise aws_exc.RetryableSerDesError(str(e)) from None
        finally:
            _attempt.reset(token)

    return run


def _perform(ctx: DurableContext, desc: Any, callbacks: dict[str, Any]) -> Any:
    """Do ``desc`` with AWS's SDK; its result (AWS's exceptions propagate).

    ``callbacks``: AWS's Callback objects of the handles this generator created.
    """
    if isinstance(desc, CreateCallback):
        config_cb = CallbackConfig(
            timeout=Duration.from_seconds(desc.timeout or 0),
            sub_type=_sub_type(desc.sub_type, "Callback"),
        )
        callback = ctx.create_callback(name=desc.name, config=config_cb)
        callbacks[callback.operation_id] = callback
        return CallbackHandle(
            callback_id=callback.callback_id, operation_id=callback.operation_id, name=desc.name
        )
    if isinstance(desc, Invoke):
        return ctx.invoke(desc.function_name, desc.payload, name=desc.name)
    if isinstance(desc, AwaitCallback):
        return callbacks[desc.handle.operation_id].result()
    if isinstance(desc, WaitForCallback):
        submitter = desc.submitter
        config_wcb = WaitForCallbackConfig(
            timeout=Duration.from_seconds(desc.timeout or 0),
            retry_strategy=_retry(desc.retry),
            sub_type=_sub_type(desc.sub_type, "Callback"),
        )
        return ctx.wait_for_callback(
            lambda callback_id, _c: submitter(callback_id), name=desc.name, config=config_wcb
        )
    if isinstance(desc, Step):
        config = StepConfig(
            retry_strategy=_retry(desc.retry),
            sub_type=_sub_type(desc.sub_type, "Step"),
            step_semantics=_SEMANTICS[desc.semantics],
        )
        return ctx.step(_with_attempt(desc.fn, desc.args), name=desc.name, config=config)
    if isinstance(desc, Wait):
        return ctx.wait(Duration.from_seconds(int(desc.seconds)), name=desc.name)
    if isinstance(desc, WaitForCondition):
        check = desc.check
        config_wfc: WaitForConditionConfig[Any] = WaitForConditionConfig(
            wait_strategy=_wait_strategy(desc.wait_strategy), initial_state=desc.initial_state
        )
        return ctx.wait_for_condition(lambda state, _c: check(state), config_wfc, name=desc.name)
    if isinstance(desc, ChildContext):
        fn, args = desc.fn, desc.args
        config_c: ChildConfig[Any] = ChildConfig(
            sub_type=_sub_type(desc.sub_type, "RunInChildContext"),
            is_virtual=desc.virtual,
            summary_generator=desc.summary,
        )
        return ctx.run_in_child_context(
            lambda c: drive(c, fn(*args)), name=desc.name, config=config_c
        )
    if isinstance(desc, Parallel):
        branches: list[Any] = []
        for b in desc.branches:
            run = lambda c, b=b: drive(c, b())  # noqa: E731
            named = isinstance(b, ParallelBranch) and b.name is not None
            branches.append(aws_config.ParallelBranch(run, b.name) if named else run)
        config_p = ParallelConfig(
            max_concurrency=desc.max_concurrency,
            completion_config=_completion(desc.completion),
            summary_generator=_batch_summary(desc.summary),
        )
        return _batch(ctx.parallel(branches, name=desc.name, config=config_p))
    if isinstance(desc, Map):
        fn_m = desc.fn
        config_m: MapConfig[Any] = MapConfig(
            max_concurrency=desc.max_concurrency,
            completion_config=_completion(desc.completion),
            item_namer=desc.item_namer,
            summary_generator=_batch_summary(desc.summary),
        )
        return _batch(
            ctx.map(
                list(desc.items),
                lambda c, item, index, _items: drive(c, fn_m(item, index)),
                name=desc.name,
                config=config_m,
            )
        )
    raise TypeError(f"the AWS side of the differential tests cannot run {desc!r}")


def _theirs(exc: OperationError) -> aws_exc.DurableOperationError:
    """durable_gen's operation error (raised by the program itself) as AWS's."""
    for theirs, ours in _ERRORS:
        if type(exc) is ours:
            return theirs(message=exc.error_message, error_type=exc.error_type)
    raise TypeError(f"no AWS counterpart for {type(exc).__name__}") from exc


def drive(ctx: DurableContext, gen: Generator[Any, Any, Any]) -> Any:
    """Run durable_gen generator ``gen`` on AWS's ``ctx`` to its return value.

    AWS's failures are thrown in as durable_gen's; one that escapes the generator
    again leaves as the AWS exception it came from (so AWS's SDK records its own
    class), and an operation error the program raised itself as AWS's counterpart.
    """
    value: Any = None
    exc: OperationError | None = None
    original: aws_exc.DurableOperationError | None = None
    callbacks: dict[str, Any] = {}
    while True:
        try:
            desc = gen.throw(exc) if exc is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value
        except OperationError as e:
            if e is exc and original is not None:
                raise original from None
            raise _theirs(e) from None
        except ValidationError as e:  # a descriptor refused its options: AWS's call would
            raise aws_exc.ValidationError(str(e)) from None
        value, exc, original = None, None, None
        try:
            value = _perform(ctx, desc, callbacks)
        except aws_exc.DurableOperationError as e:
            exc, original = _ours(e), e
        except BaseException:
            with contextlib.suppress(Exception):
                gen.close()
            raise


def make_aws_handler(
    workflow: Callable[[Any], Generator[Any, Any, Any]], client: Any
) -> Callable[..., Any]:
    """AWS's ``@durable_execution`` handler running ``workflow`` with ``client``."""

    def handler(event: Any, ctx: DurableContext) -> Any:
        return drive(ctx, workflow(event))

    return durable_execution(handler, boto3_client=client)


def aws_handler(client: Any) -> Callable[..., Any]:
    """The program runner (:func:`~durable_gen.testing.program_workflow`) on AWS's SDK."""
    return make_aws_handler(program_workflow, client)
