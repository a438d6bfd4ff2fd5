"""Parallel and Map: shapes, completion policies, concurrency and determinism."""

import json
import random
import re
import threading
import time

import pytest

from durable_gen import (
    ChildContextError,
    CompletionPolicy,
    CompletionReason,
    InMemoryEngine,
    Map,
    Nesting,
    NonDeterminismError,
    OperationStatus,
    OperationType,
    Parallel,
    RetryPolicy,
    Step,
    ValidationError,
    Wait,
    operation_id,
)

NO_RETRY = RetryPolicy.none()


def echo(x):
    return x


def boom(x):
    raise ValueError(f"bad {x}")


def branch(x):
    def body():
        return (yield Step(echo, x, name=f"echo-{x}"))

    body.__name__ = f"branch_{x}"
    return body


def test_parallel_results_in_index_order_and_recorded_as_aws():
    def wf(_):
        result = yield Parallel([branch("a"), branch("b"), branch("c")], name="fan")
        return result.get_results()

    result = InMemoryEngine().run(wf)
    assert result.result == ["a", "b", "c"]
    ops = {op.id: op for op in result.operations}
    batch_id = operation_id(None, 1)
    batch = ops[batch_id]
    assert (batch.type, batch.sub_type, batch.name) == (OperationType.CONTEXT, "Parallel", "fan")
    for i in range(3):
        b = ops[operation_id(batch_id, i)]  # 0-based, as AWS
        assert (b.sub_type, b.name, b.parent_id) == (
            "ParallelBranch",
            f"parallel-branch-{i}",
            batch_id,
        )
        step = ops[operation_id(b.id, 1)]
        assert step.parent_id == b.id
        assert b.status is OperationStatus.SUCCEEDED


def test_parallel_replay_does_not_rerun_branches():
    calls = []

    def counted(x):
        calls.append(x)
        return x

    def mk(x):
        def body():
            return (yield Step(counted, x))

        return body

    def wf(_):
        r = yield Parallel([mk(1), mk(2)])
        yield Wait(seconds=5)
        return r.get_results()

    result = InMemoryEngine().run(wf)
    assert result.result == [1, 2]
    assert result.invocations == 2
    assert sorted(calls) == [1, 2]


def test_wait_in_one_branch_suspends_only_when_no_branch_can_progress():
    calls = []

    def slow_branch():
        yield Wait(seconds=60)
        return (yield Step(calls.append, "after-wait", name="late"))

    def busy_branch():
        for i in range(3):
            yield Step(calls.append, i, name=f"busy-{i}")
        return "busy"

    def wf(_):
        r = yield Parallel([slow_branch, busy_branch], completion=CompletionPolicy.all_completed())
        return [i.status.value for i in r.all]

    result = InMemoryEngine().run(wf)
    assert result.result == ["SUCCEEDED", "SUCCEEDED"]
    assert result.invocations == 2
    assert calls == [0, 1, 2, "after-wait"]  # the busy branch finished before suspending


def test_branch_failure_with_default_policy_and_throw_if_error():
    def bad():
        yield Step(boom, 1, retry=NO_RETRY)

    def wf(_):
        r = yield Parallel([branch("ok"), bad])
        assert r.completion_reason is CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        try:
            r.throw_if_error()
        except ChildContextError as e:
            return [e.error_type, e.error_message, r.failure_count, r.success_count]

    result = InMemoryEngine().run(wf)
    # the branch's context recorded what escaped it as AWS does: StepError, the message kept
    assert result.result == ["aws_durable_execution_sdk_python.exceptions.StepError", "bad 1", 1, 1]


def test_map_items_index_and_namer():
    def double(item, index):
        return (yield Step(echo, item * 2 + index))

    def wf(items):
        r = yield Map(items, double, name="doubles", item_namer=lambda item, i: f"item-{item}")
        return r.get_results()

    result = InMemoryEngine().run(wf, [10, 20, 30])
    assert result.result == [20, 41, 62]
    iters = [op for op in result.operations if op.sub_type == "MapIteration"]
    assert [op.name for op in iters] == ["item-10", "item-20", "item-30"]
    assert next(op for op in result.operations if op.sub_type == "Map").name == "doubles"


@pytest.mark.parametrize(
    ("policy", "expected_reason", "expected_statuses"),
    [
        (None, CompletionReason.FAILURE_TOLERANCE_EXCEEDED, "SF"),  # fail fast (Map default)
        (CompletionPolicy.all_completed(), CompletionReason.ALL_COMPLETED, "SFSFS"),
        (CompletionPolicy(min_successful=2), CompletionReason.MIN_SUCCESSFUL_REACHED, "SFS"),
        (
            CompletionPolicy(tolerated_failure_count=1),
            CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
            "SFSF",
        ),
        (
            CompletionPolicy(tolerated_failure_percentage=50),
            CompletionReason.ALL_COMPLETED,
            "SFSFS",
        ),
        (CompletionPolicy.first_successful(), CompletionReason.MIN_SUCCESSFUL_REACHED, "S"),
    ],
)
def test_map_completion_policies(policy, expected_reason, expected_statuses):
    # items at odd indexes fail; max_concurrency=1 makes the admission order plain
    def item_fn(item, index):
        if index % 2:
            yield Step(boom, index, retry=NO_RETRY)
        return (yield Step(echo, item))

    def wf(_):
        r = yield Map(range(5), item_fn, max_concurrency=1, completion=policy)
        return r

    result = InMemoryEngine().run(wf)
    r = result.result  # a returned BatchResult is returned as AWS's JSON record of it
    assert r["completionReason"] == expected_reason.value
    assert "".join(i["status"][0] for i in r["all"]) == expected_statuses
    assert all(set(i) == {"index", "status", "result", "error"} for i in r["all"])


def test_early_completion_leaves_running_branches_started_and_skips_the_rest():
    def item_fn(item, index):
        yield Wait(seconds=10 + index)  # every item is still waiting ...
        return index

    def quick(item, index):
        if index == 0:
            return (yield Step(echo, "first"))
        return (yield from item_fn(item, index))

    def wf(_):
        r = yield Map(
            range(4), quick, max_concurrency=2, completion=CompletionPolicy.first_successful()
        )
        return [(i.index, i.status.value) for i in r.all]

    result = InMemoryEngine().run(wf)
    # item 0 succeeded; item 1 was running (waiting); items 2, 3 never started
    assert result.result == [(0, "SUCCEEDED"), (1, "STARTED")]


def test_flat_nesting_records_no_branch_operations():
    def wf(_):
        r = yield Parallel([branch(1), branch(2)], nesting=Nesting.FLAT, name="flat")
        return r.get_results()

    result = InMemoryEngine().run(wf)
    assert result.result == [1, 2]
    batch = next(op for op in result.operations if op.sub_type == "Parallel")
    assert [op.type for op in result.operations].count(OperationType.CONTEXT) == 1
    steps = [op for op in result.operations if op.type is OperationType.STEP]
    assert {op.parent_id for op in steps} == {batch.id}
    assert {op.id for op in steps} == {operation_id(operation_id(batch.id, i), 1) for i in (0, 1)}


def test_large_batch_result_is_rebuilt_from_branches():
    big = "x" * (200 * 1024)

    def item_fn(item, index):
        return (yield Step(echo, big + str(index)))

    def wf(_):
        r = yield Map(range(2), item_fn, name="big")
        yield Wait(seconds=1)
        return [len(x) for x in r.get_results()]

    result = InMemoryEngine().run(wf)
    assert result.result == [len(big) + 1, len(big) + 1]
    batch = next(op for op in result.operations if op.sub_type == "Map")
    assert batch.replay_children is True
    # AWS's summary envelope (CompletionRecord.summary_envelope), no summary given
    assert json.loads(batch.result) == {
        "type": "MapResult",
        "totalCount": 2,
        "completionReason": "ALL_COMPLETED",
        "startedIndexes": [],
        "startedCount": 0,
        "successCount": 2,
        "failureCount": 0,
        "status": "SUCCEEDED",
    }


def test_empty_batches_complete_at_once():
    def wf(_):
        p = yield Parallel([])
        m = yield Map([], lambda item, i: (yield Step(echo, 1)))
        return [p.total_count, m.total_count, p.completion_reason.value]

    assert InMemoryEngine().run(wf).result == [0, 0, "ALL_COMPLETED"]


def test_validation():
    with pytest.raises(
        ValidationError, match=r"^max_concurrency must be an int >= 1 or None \(no limit\), got 0$"
    ):
        Map([1], lambda i, x: (yield), max_concurrency=0)
    with pytest.raises(
        TypeError, match="Parallel branch 0 must be a generator function, got a generator object"
    ):
        Parallel([branch(1)()])

    def wf(_):
        # a plain function: refused when its call returns no generator
        yield Parallel([lambda: None])

    with pytest.raises(
        TypeError,
        match=r"^branch 0 of Parallel must be a generator function, its call returned NoneType$",
    ):
        InMemoryEngine().run(wf)
    with pytest.raises(ValidationError, match="min_successful must be at least 1"):
        CompletionPolicy(min_successful=0)


def test_nondeterminism_when_the_batch_changes():
    def v1(_):
        yield Parallel([branch(1), branch(2)], name="p")
        yield Wait(seconds=5)

    def v2(_):
        yield Map([1, 2], lambda item, i: (yield Step(echo, item)), name="p")
        yield Wait(seconds=5)

    engine = InMemoryEngine()
    ex = engine.start(v1)
    assert engine.invoke_once(v1, ex).status == "PENDING"
    with pytest.raises(
        NonDeterminismError,
        match=re.escape(
            "at the 1st operation of the root context: the log recorded Parallel 'p', "
            "but the workflow yielded Map 'p'."
        ),
    ):
        engine.invoke_once(v2, ex)


# ---------------------------------------------------------------- concurrency


def test_branch_steps_really_run_concurrently():
    barrier = threading.Barrier(3, timeout=10)

    def meet(x):
        barrier.wait()  # deadlocks (then times out) unless all three run at once
        return x

    def mk(x):
        def body():
            return (yield Step(meet, x, retry=NO_RETRY))

        return body

    def wf(_):
        r = yield Parallel([mk(1), mk(2), mk(3)])
        r.throw_if_error()
        return r.get_results()

    assert InMemoryEngine().run(wf).result == [1, 2, 3]


def test_max_concurrency_bounds_running_steps():
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def work(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return x

    def item_fn(item, index):
        return (yield Step(work, item))

    def wf(_):
        return (yield Map(range(12), item_fn, max_concurrency=3)).get_results()

    assert InMemoryEngine().run(wf).result == list(range(12))
    assert 2 <= peak[0] <= 3


def jittery(x):
    time.sleep(random.random() * 0.004)
    if x % 5 == 3:
        raise ValueError(f"item {x}")
    return x


def fanout(policy):
    def item_fn(item, index):
        a = yield Step(jittery, item, retry=NO_RETRY, name="first")
        b = yield Step(jittery, item + 10, retry=NO_RETRY, name="second")
        return a + b

    def wf(_):
        r = yield Map(range(10), item_fn, max_concurrency=4, completion=policy)
        return r

    return wf


@pytest.mark.parametrize(
    "policy",
    [CompletionPolicy.all_completed(), CompletionPolicy(min_successful=3), None],
    ids=["all_completed", "min3", "fail_fast"],
)
def test_logs_are_identical_whatever_the_thread_timing(policy):
    wf = fanout(policy)
    runs = []
    for _ in range(15):
        engine = InMemoryEngine()
        result = engine.run(wf)
        updates = [u.to_dict() for u in engine.store.updates(result.execution_id)]
        runs.append((result.result, updates))
    first = runs[0]
    assert all(r == first for r in runs[1:])
