"""The options of AWS's SDK that durable_gen offers under its own spelling (issue 28):
named parallel branches, sub types, virtual child contexts, summaries of large
results, custom completion predicates, Invoke's payload serdes.

What AWS's SDK records for the same programs is checked by the differential suite
(tests/differential); these tests pin durable_gen's side on the in-memory engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable_gen import (
    BatchCompletionError,
    BatchItemStatus,
    ChildContext,
    ChildContextError,
    CompletionDecision,
    CompletionOutcome,
    CompletionPolicy,
    CompletionReason,
    CompletionStatus,
    CreateCallback,
    InMemoryEngine,
    Invoke,
    Jitter,
    JsonSerdes,
    Map,
    NonDeterminismError,
    OperationType,
    Parallel,
    ParallelBranch,
    RetryPolicy,
    Step,
    ValidationError,
    Wait,
    WaitForCallback,
    complete_batch,
    continue_batch,
    operation_id,
)
from durable_gen.testing import COMPLETION_POLICIES


def echo(x: Any) -> Any:
    return x


def boom(x: Any) -> Any:
    raise ValueError(f"boom {x}")


def by_name(result: Any) -> dict[str, Any]:
    return {op.name: op for op in result.operations}


# ------------------------------------------------------------------ named branches


def test_named_parallel_branches_are_recorded_under_their_names() -> None:
    def a():
        return (yield Step(echo, "a", name="sa"))

    def b():
        return (yield Step(echo, "b", name="sb"))

    def wf(_):
        r = yield Parallel([ParallelBranch(a, "fetch-user"), b, ParallelBranch(b)], name="p")
        return r.get_results()

    result = InMemoryEngine().run(wf)
    assert result.result == ["a", "b", "b"]
    p = by_name(result)["p"]
    branches = sorted(
        (op for op in result.operations if op.parent_id == p.id), key=lambda op: op.id
    )
    names = {op.id: op.name for op in branches}
    # ids stay positional: a name changes what is shown, not where it is recorded
    assert names == {
        operation_id(p.id, 0): "fetch-user",
        operation_id(p.id, 1): "parallel-branch-1",
        operation_id(p.id, 2): "parallel-branch-2",
    }
    assert {op.sub_type for op in branches} == {"ParallelBranch"}


def test_a_parallel_branch_is_checked_when_made() -> None:
    with pytest.raises(ValidationError, match="name must be 1 to 256"):
        ParallelBranch(lambda: iter(()), "")

    from durable_gen import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError, match="ParallelBranch's function"):
        ParallelBranch(42, "x")  # type: ignore[arg-type]


# ------------------------------------------------------------------ sub types


def test_sub_types_label_steps_callbacks_and_child_contexts() -> None:
    def body():
        return (yield Step(echo, 1, name="inner"))

    def wf(_):
        yield Step(echo, 1, name="s", sub_type="Lookup")
        yield ChildContext(body, name="c", sub_type="Saga-Step_2")
        yield CreateCallback("cb", sub_type="Approval", timeout=60)
        return "done"

    result = InMemoryEngine().run(wf)
    ops = by_name(result)
    assert (ops["s"].type, ops["s"].sub_type) == (OperationType.STEP, "Lookup")
    assert (ops["c"].type, ops["c"].sub_type) == (OperationType.CONTEXT, "Saga-Step_2")
    assert (ops["cb"].type, ops["cb"].sub_type) == (OperationType.CALLBACK, "Approval")
    assert ops["inner"].sub_type == "Step"  # the default is kept where none is given


def test_a_wait_for_callbacks_sub_type_labels_its_callback_not_its_context() -> None:
    def wf(_):
        return (yield WaitForCallback(lambda cid: None, "approve", sub_type="Approval"))

    result = InMemoryEngine().run(wf)
    ops = by_name(result)
    assert ops["approve"].sub_type == "WaitForCallback"
    assert ops["approve create callback id"].sub_type == "Approval"
    assert ops["approve submitter"].sub_type == "Step"


@pytest.mark.parametrize("bad", ["x" * 33, "has space", "dot.ted", 7])
def test_a_sub_type_the_service_would_refuse_is_refused_when_made(bad: Any) -> None:
    with pytest.raises(ValidationError, match="sub_type must be 1 to 32 characters"):
        Step(echo, 1, sub_type=bad)
    with pytest.raises(ValidationError, match="sub_type must be 1 to 32 characters"):
        CreateCallback("c", sub_type=bad)


def test_an_empty_sub_type_is_the_default_as_on_aws() -> None:
    assert Step(echo, 1, sub_type="").sub_type == "Step"
    assert ChildContext(lambda: (yield), sub_type=None).sub_type == "RunInChildContext"


def test_changing_a_steps_sub_type_under_a_running_execution_is_non_deterministic() -> None:
    sub_type = {"now": "Lookup"}

    def wf(_):
        yield Step(echo, 1, name="s", sub_type=sub_type["now"])
        yield Wait(seconds=10)
        return "done"

    engine = InMemoryEngine()
    ex = engine.start(wf)
    assert engine.invoke_once(wf, ex).status == "PENDING"  # at the wait
    sub_type["now"] = "Fetch"
    with pytest.raises(NonDeterminismError, match="Lookup"):
        engine.resume(wf, ex)


# ------------------------------------------------------------------ virtual contexts


def test_a_virtual_child_context_records_nothing_of_its_own() -> None:
    def group(x):
        a = yield Step(echo, x, name="a")
        yield Wait(seconds=5, name="w")
        return a + 1

    def wf(_):
        v = yield ChildContext(group, 41, name="virtual", virtual=True)
        after = yield Step(echo, "after", name="after")
        return [v, after]

    result = InMemoryEngine().run(wf)
    assert result.result == [42, "after"]
    ops = by_name(result)
    assert "virtual" not in ops
    # the group took the root's first id; its operations hang under the root with ids
    # of their own, and the next root operation is the root's second
    vid = operation_id(None, 1)
    assert (ops["a"].id, ops["a"].parent_id) == (operation_id(vid, 1), None)
    assert (ops["w"].id, ops["w"].parent_id) == (operation_id(vid, 2), None)
    assert ops["after"].id == operation_id(None, 2)


def test_a_virtual_child_context_inside_a_child_records_under_that_child() -> None:
    def inner():
        return (yield Step(echo, "x", name="deep"))

    def outer():
        return (yield ChildContext(inner, name="v", virtual=True))

    def wf(_):
        return (yield ChildContext(outer, name="outer"))

    result = InMemoryEngine().run(wf)
    ops = by_name(result)
    assert ops["deep"].parent_id == ops["outer"].id
    assert ops["deep"].id == operation_id(operation_id(ops["outer"].id, 1), 1)


def test_a_virtual_child_context_that_raises_throws_child_context_error() -> None:
    def group():
        yield Step(boom, 1, name="b", retry=RetryPolicy.none())

    def wf(_):
        try:
            yield ChildContext(group, name="v", virtual=True)
        except ChildContextError as e:
            return [type(e.__cause__).__name__, e.error_type, e.error_message]

    result = InMemoryEngine().run(wf)
    assert result.result == [
        "StepError",
        "aws_durable_execution_sdk_python.exceptions.StepError",
        "boom 1",
    ]
    assert [op.type for op in result.operations] == [OperationType.STEP]  # no context


def test_a_virtual_child_context_runs_again_on_replay_with_the_same_outcome() -> None:
    runs = []

    def group():
        runs.append(1)
        a = yield Step(echo, "a", name="a")
        yield Wait(seconds=30)
        return a

    def wf(_):
        return (yield ChildContext(group, name="v", virtual=True))

    engine = InMemoryEngine()
    ex = engine.start(wf)
    engine.invoke_once(wf, ex)
    done = engine.resume(wf, ex)
    assert done.result == "a"
    # no record to return from: the body runs in every invocation (the body is the record)
    assert len(runs) == 1 + done.invocations


def test_a_virtual_context_where_the_log_has_a_context_is_non_deterministic() -> None:
    virtual = {"now": False}

    def group():
        yield Wait(seconds=5, name="w")
        return 1

    def wf(_):
        return (yield ChildContext(group, name="g", virtual=virtual["now"]))

    engine = InMemoryEngine()
    ex = engine.start(wf)
    engine.invoke_once(wf, ex)
    virtual["now"] = True
    with pytest.raises(NonDeterminismError, match="virtual child context 'g'"):
        engine.resume(wf, ex)


# ------------------------------------------------------------------ summaries

BIG = "x" * (300 * 1024)


def test_a_child_contexts_summary_is_recorded_in_place_of_a_result_over_the_limit() -> None:
    def body():
        return (yield Step(lambda: BIG, name="big"))  # (a step may store 256 KiB too)

    def wf(_):
        value = yield ChildContext(body, name="c", summary=lambda v: json.dumps({"length": len(v)}))
        yield Wait(seconds=1)
        return len(value)

    result = InMemoryEngine().run(wf)
    # the step's own result is over the step limit, so the step fails: use parts
    assert result.status == "FAILED"

    def parts():
        chunks = []
        for i in range(3):
            chunks.append((yield Step(lambda i=i: BIG[: 110 * 1024], name=f"part{i}")))
        return "".join(chunks)

    def wf2(_):
        value = yield ChildContext(
            parts, name="c", summary=lambda v: json.dumps({"length": len(v)})
        )
        yield Wait(seconds=1)  # the replay after it rebuilds the value from the parts
        return len(value)

    result = InMemoryEngine().run(wf2)
    assert result.result == 3 * 110 * 1024
    c = by_name(result)["c"]
    assert c.replay_children is True
    assert json.loads(c.result) == {"length": 3 * 110 * 1024}


def _three_parts():
    chunks = []
    for i in range(3):
        chunks.append((yield Step(lambda: "y" * (110 * 1024), name=f"part{i}")))
    return "".join(chunks)


def test_without_a_summary_an_empty_string_is_recorded_as_on_aws() -> None:
    def wf(_):
        return len((yield ChildContext(_three_parts, name="c")))

    result = InMemoryEngine().run(wf)
    assert result.result == 3 * 110 * 1024
    assert by_name(result)["c"].result == ""


def test_a_summary_that_fails_fails_the_context() -> None:
    def bad_summary(value):
        raise KeyError("no summary")

    def wf(_):
        try:
            yield ChildContext(_three_parts, name="c", summary=bad_summary)
        except ChildContextError as e:
            return e.error_type

    result = InMemoryEngine().run(wf)
    assert result.result == "KeyError"
    assert by_name(result)["c"].status.value == "FAILED"


def test_a_summary_that_is_not_a_string_is_refused_with_the_reason() -> None:
    def wf(_):
        try:
            yield ChildContext(_three_parts, name="c", summary=len)
        except ChildContextError as e:
            return e.error_message

    result = InMemoryEngine().run(wf)
    assert "the summary of child context 'c' must be a str, got int" in result.result


def test_a_large_batch_records_awss_envelope_with_the_workflows_summary() -> None:
    def item(i, index):
        return (yield Step(lambda: "z" * (100 * 1024), name=f"part{index}"))

    def wf(_):
        r = yield Map(
            range(3),
            item,
            name="m",
            summary=lambda batch: f"{batch.success_count} parts",
        )
        return [len(x) for x in r.get_results()]

    result = InMemoryEngine().run(wf)
    assert result.result == [100 * 1024] * 3
    m = by_name(result)["m"]
    assert m.replay_children is True
    assert json.loads(m.result) == {
        "type": "MapResult",
        "totalCount": 3,
        "completionReason": "ALL_COMPLETED",
        "startedIndexes": [],
        "startedCount": 0,
        "successCount": 3,
        "failureCount": 0,
        "status": "SUCCEEDED",
        "summary": "3 parts",
    }


# ------------------------------------------------------------------ custom completion


#: done, succeeded, at two successes; done, failed, at two failures
_quorum = COMPLETION_POLICIES["quorum2"].should_complete
assert _quorum is not None


def _outcomes(*fails: bool):
    def branch(i: int, fail: bool):
        def fn():
            return (yield Step(boom if fail else echo, i, name=f"b{i}", retry=RetryPolicy.none()))

        return fn

    return [branch(i, f) for i, f in enumerate(fails)]


def test_a_predicate_completes_a_batch_when_it_decides() -> None:
    def wf(_):
        r = yield Parallel(
            _outcomes(False, True, False, False),
            name="p",
            max_concurrency=1,
            completion=CompletionPolicy(should_complete=_quorum),
        )
        return [r.completion_reason.value, r.status.value, [i.status.value for i in r.all]]

    result = InMemoryEngine().run(wf)
    # branches 0 and 2 succeeded: done before branch 3 started
    assert result.result == [
        "CUSTOM_COMPLETION_SUCCEEDED",
        "SUCCEEDED",
        ["SUCCEEDED", "FAILED", "SUCCEEDED"],
    ]


def test_a_failed_decision_fails_the_batch_even_with_no_failed_item_counted_as_such() -> None:
    def wf(_):
        r = yield Parallel(
            _outcomes(True, True, False),
            name="p",
            max_concurrency=1,
            completion=CompletionPolicy(should_complete=_quorum),
        )
        assert r.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED
        assert r.status is BatchItemStatus.FAILED
        r.throw_if_error()

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    assert result.error.message.endswith("boom 0")  # the first failed branch's error


def test_a_failed_decision_without_failed_branches_raises_batch_completion_error() -> None:
    never = CompletionPolicy(
        should_complete=lambda s: (
            complete_batch(CompletionOutcome.FAILED) if s.success_count == 1 else continue_batch()
        )
    )

    def wf(_):
        r = yield Parallel(_outcomes(False, False), max_concurrency=1, completion=never)
        try:
            r.throw_if_error()
        except BatchCompletionError as e:
            return [e.error_type, e.error_message]

    result = InMemoryEngine().run(wf)
    assert result.result == [
        "aws_durable_execution_sdk_python.concurrency.models.BatchCompletionError",
        "Batch completed as failed by should_complete (CUSTOM_COMPLETION_FAILED)",
    ]


def test_the_predicate_sees_every_branch_by_index_with_its_name_and_state() -> None:
    seen: list[Any] = []

    def record(status: CompletionStatus) -> CompletionDecision:
        seen.append(
            (
                status.success_count,
                status.failure_count,
                status.completed_count,
                status.total_count,
                [(i.index, i.name, i.status and i.status.value) for i in status.items],
            )
        )
        return continue_batch()

    def item(x, index):
        return (yield Step(echo, x, name=f"i{index}"))

    def wf(_):
        r = yield Map(
            ["a", "b"],
            item,
            max_concurrency=1,
            item_namer=lambda x, i: f"item-{x}",
            completion=CompletionPolicy(should_complete=record),
        )
        return r.completion_reason.value

    result = InMemoryEngine().run(wf)
    assert result.result == "ALL_COMPLETED"  # never decided: done when all are
    assert seen[:5] == [
        (0, 0, 0, 2, [(0, "item-a", None), (1, "item-b", None)]),  # before any started
        (0, 0, 0, 2, [(0, "item-a", "STARTED"), (1, "item-b", None)]),
        (1, 0, 1, 2, [(0, "item-a", "SUCCEEDED"), (1, "item-b", None)]),
        (1, 0, 1, 2, [(0, "item-a", "SUCCEEDED"), (1, "item-b", "STARTED")]),
        (2, 0, 2, 2, [(0, "item-a", "SUCCEEDED"), (1, "item-b", "SUCCEEDED")]),
    ]


def test_a_predicate_may_complete_a_batch_before_any_branch_starts() -> None:
    def wf(_):
        r = yield Parallel(
            _outcomes(False, False),
            completion=CompletionPolicy(should_complete=lambda s: complete_batch()),
        )
        return [r.completion_reason.value, len(r.all)]

    result = InMemoryEngine().run(wf)
    assert result.result == ["CUSTOM_COMPLETION_SUCCEEDED", 0]
    assert [op.type for op in result.operations] == [OperationType.CONTEXT]


def test_a_predicate_is_not_combined_with_thresholds_and_must_decide() -> None:
    with pytest.raises(ValidationError, match="cannot be combined with min_successful"):
        CompletionPolicy(min_successful=1, should_complete=_quorum)
    with pytest.raises(ValidationError, match="needs its outcome"):
        CompletionDecision(True)

    def wf(_):
        yield Parallel(
            _outcomes(False), completion=CompletionPolicy(should_complete=lambda s: True)
        )

    with pytest.raises(ValidationError, match="must return continue_batch"):
        InMemoryEngine().run(wf)


def test_a_decided_batch_replays_its_recorded_decision() -> None:
    calls = []

    def counting(status: CompletionStatus) -> CompletionDecision:
        calls.append(status.completed_count)
        return _quorum(status)

    def wf(_):
        r = yield Parallel(
            _outcomes(False, False, False),
            max_concurrency=1,
            completion=CompletionPolicy(should_complete=counting),
        )
        yield Wait(seconds=10)
        return r.completion_reason.value

    engine = InMemoryEngine()
    ex = engine.start(wf)
    engine.invoke_once(wf, ex)
    before = len(calls)
    assert engine.resume(wf, ex).result == "CUSTOM_COMPLETION_SUCCEEDED"
    assert len(calls) == before  # the recorded result answers: the predicate is not asked


# ------------------------------------------------------------------ invoke serdes


class Shouting(JsonSerdes):
    def serialize(self, value: Any) -> str:
        return super().serialize(str(value).upper())


def test_invoke_writes_its_payload_with_its_own_serdes() -> None:
    def callee(event):
        return (yield Step(echo, event, name="got"))

    def wf(_):
        return (yield Invoke("callee", "hello", name="call", payload_serdes=Shouting()))

    result = InMemoryEngine(functions={"callee": callee}).run(wf)
    assert result.result == "HELLO"
    assert by_name(result)["call"].status.value == "SUCCEEDED"


# ------------------------------------------------------------------ with_retry, set_logger


def test_with_retry_runs_a_block_again_after_a_durable_backoff() -> None:
    from durable_gen import with_retry

    tries: list[int] = []

    def block(order: str, attempt: int):
        tries.append(attempt)
        reserved = yield Step(echo, f"{order}-{attempt}", name=f"reserve-{attempt}")
        if attempt < 3:
            raise ConnectionError(f"attempt {attempt} lost the hold")
        return reserved

    policy = RetryPolicy(max_attempts=4, initial_delay=2, backoff_rate=2, jitter=Jitter.NONE)

    def wf(_):
        return (yield with_retry(block, "o-1", retry=policy, name="hold"))

    result = InMemoryEngine().run(wf)
    assert result.result == "o-1-3"
    ops = by_name(result)
    assert ops["hold"].type is OperationType.CONTEXT
    waits = [ops["hold-backoff-1"], ops["hold-backoff-2"]]
    assert [w.parent_id for w in waits] == [ops["hold"].id] * 2
    delays = [(w.scheduled_end_timestamp - w.start_timestamp) // 1000 for w in waits]
    assert delays == [2, 4]  # the policy's delays
    assert sorted(set(tries)) == [1, 2, 3]


def test_with_retry_gives_up_as_its_policy_says_and_the_context_fails() -> None:
    from durable_gen import with_retry

    def block(attempt: int):
        yield Step(echo, attempt, name=f"try-{attempt}")
        raise KeyError(f"missing {attempt}")

    def wf(_):
        try:
            yield with_retry(block, retry=RetryPolicy(max_attempts=2, initial_delay=1), name="b")
        except ChildContextError as e:
            return [e.error_type, e.error_message]

    result = InMemoryEngine().run(wf)
    assert result.result == ["KeyError", "'missing 2'"]


def test_with_retry_without_a_child_context_raises_the_last_error_itself() -> None:
    from durable_gen import with_retry

    def block(attempt: int):
        yield Wait(seconds=1, name=f"w{attempt}")
        raise ValueError(f"no {attempt}")

    def wf(_):
        try:
            yield from with_retry(block, retry=RetryPolicy(max_attempts=2), child=False)
        except ValueError as e:
            return str(e)

    result = InMemoryEngine().run(wf)
    assert result.result == "no 2"
    assert {op.type for op in result.operations} == {OperationType.WAIT}  # no context


def test_get_logger_wraps_the_workflows_own_logger(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from durable_gen import get_logger

    mine = logging.getLogger("my.app.orders")

    def wf(_):
        log = get_logger(mine)
        log.info("before the wait")
        yield Wait(seconds=5)
        log.info("after the wait")
        return "ok"

    with caplog.at_level(logging.INFO, logger="my.app.orders"):
        assert InMemoryEngine().run(wf).result == "ok"
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.name == "my.app.orders"]
    # replay-aware: "before the wait" is not logged again when the body replays
    assert lines == [("my.app.orders", "before the wait"), ("my.app.orders", "after the wait")]
    with pytest.raises(TypeError, match=r"a logger name or a logging\.Logger"):
        get_logger(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ ExecutionError


def test_an_execution_error_in_a_step_fails_the_execution_at_once() -> None:
    from durable_gen import ExecutionError

    attempts: list[int] = []

    def charge(amount):
        attempts.append(amount)
        raise ExecutionError(f"card {amount} is blocked")

    def inner():
        return (yield Step(charge, 5, name="charge", retry=RetryPolicy(max_attempts=5)))

    def wf(_):
        try:
            return (yield ChildContext(inner, name="pay"))
        except ChildContextError:  # not a context failure: nothing to catch here
            return "caught"

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.ExecutionError"
    assert result.error.message == "card 5 is blocked"
    assert attempts == [5]  # not retried
    ops = by_name(result)
    # neither the step nor the context recorded an end: the execution's failure is it
    assert ops["charge"].status.value == "STARTED"
    assert ops["pay"].status.value == "STARTED"


def test_a_workflow_may_catch_an_execution_error_and_its_subclass_keeps_its_name() -> None:
    from durable_gen import ExecutionError, UnrecoverableError

    assert issubclass(ExecutionError, UnrecoverableError)

    class FraudSuspected(ExecutionError):
        pass

    def check(order):
        raise FraudSuspected(f"order {order}")

    def wf(_):
        try:
            yield Step(check, "o-1", name="check")
        except ExecutionError as e:
            return f"handled {e}"

    assert InMemoryEngine().run(wf).result == "handled order o-1"

    def uncaught(_):
        yield Step(check, "o-2", name="check")

    result = InMemoryEngine().run(uncaught)
    assert result.error.type.endswith("FraudSuspected")  # the class AWS's SDK would record


def test_an_execution_error_in_a_branch_ends_the_batch_unrecorded() -> None:
    from durable_gen import ExecutionError

    def fatal():
        raise ExecutionError("stop everything")

    def b0():
        return (yield Step(fatal, name="fatal"))

    def b1():
        yield Wait(seconds=60, name="long")
        return "late"

    def wf(_):
        yield Parallel([b0, b1], name="p", completion=CompletionPolicy.all_completed())

    result = InMemoryEngine().run(wf)
    assert result.status == "FAILED"
    assert result.error.message == "stop everything"
    assert by_name(result)["p"].status.value == "STARTED"


def test_an_execution_error_in_a_combinator_operand_stops_the_others() -> None:
    from durable_gen import All, ExecutionError

    def fatal():
        raise ExecutionError("give up")

    def wf(_):
        yield All([Step(fatal, name="fatal"), Wait(seconds=60, name="long")], name="both")

    result = InMemoryEngine().run(wf)
    assert (result.status, result.error.message) == ("FAILED", "give up")
    ops = by_name(result)
    assert ops["both"].status.value == "STARTED"  # the combinator recorded no end
    assert ops["long"].status.value == "STARTED"  # its wait never fired
