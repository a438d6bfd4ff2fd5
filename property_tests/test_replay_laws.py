"""The replay laws, over generated programs.

- every prefix of a log replays to the next recorded operation, without asking
  to re-run a step whose success the prefix records;
- the interpreter is pure: the same log gives the same commands, and it reads
  no clock and draws no random number;
- every program mutation (rename, reorder, change kind, insert, delete, return
  early) raises NonDeterminismError at the right position -- never an empty
  result, never a hang;
- combinator laws: All([]) / AllSettled([]) resolve at once, Any([]) fails at
  once; a completion policy decides the same whatever order branches finish in;
- the log survives an Operation.to_dict / from_dict (JSON) round trip.
"""

from __future__ import annotations

import json
import os
import random
import time
from unittest import mock

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from durable_gen import (
    All,
    AllSettled,
    Any,
    ChildContext,
    CombinatorError,
    CompletionPolicy,
    InMemoryEngine,
    NonDeterminismError,
    Operation,
    OperationStatus,
    OperationType,
    Parallel,
    RetryPolicy,
    Step,
    Wait,
)
from durable_gen._core.commands import (
    Complete,
    RunStep,
)
from durable_gen._core.present import (
    describe_operation,
    ordinal,
)
from durable_gen.testing import WorkflowRunner, check_replay
from durable_gen.testing._replay import EXECUTION_ID, interpret

from .programs import PROGRAM_FUNCTIONS, build_workflow, chooser, programs


def _baseline(program, seed=0):
    """The uninterrupted run's store (logs after every checkpoint) and its final log."""
    from durable_gen.testing._replay import CrashPlan, _run

    run = _run(build_workflow(program), None, CrashPlan(), chooser(seed), PROGRAM_FUNCTIONS)
    assert run.exception is None, run.exception
    return run.store, dict(run.store.load(EXECUTION_ID))


@given(program=programs(callbacks=False, invokes=False))
def test_every_prefix_replays_to_the_next_recorded_operation(program):
    store, final = _baseline(program)
    workflow = build_workflow(program)
    for _, now, log in store.logs:
        commands = interpret(workflow, log, now=now)
        assert commands, "an interpretation never gives nothing"
        for key, words, cmd in commands:
            assert key[0] != "raised", words
            if isinstance(cmd, RunStep):
                recorded = log.get(cmd.op_id)
                assert recorded is None or recorded.status is not OperationStatus.SUCCEEDED, words
                # the step it asks for is one the uninterrupted run recorded next
                assert cmd.op_id in final, words


@given(program=programs())
def test_the_interpreter_is_pure(program):
    store, _ = _baseline(program, seed=1)
    workflow = build_workflow(program)

    def forbidden(*_a, **_k):
        raise AssertionError("the interpreter read a clock or drew a random number")

    for _, now, log in store.logs:
        first = interpret(workflow, log, now=now)
        with (
            mock.patch.object(time, "time", forbidden),
            mock.patch.object(time, "time_ns", forbidden),
            mock.patch.object(time, "monotonic", forbidden),
            mock.patch.object(random, "random", forbidden),
            mock.patch.object(random, "getrandbits", forbidden),
            mock.patch.object(os, "urandom", forbidden),
        ):
            second = interpret(workflow, log, now=now)
        assert [k for k, _, _ in first] == [k for k, _, _ in second]


# ---------------------------------------------------------------------------- mutations


def _ok():
    return "ok"


def _child_body(name):
    return (yield Step(_ok, name=f"{name}-inner"))


def _descriptor(kind, name):
    if kind == "step":
        return Step(_ok, name=name)
    if kind == "wait":
        return Wait(seconds=1, name=name)
    return ChildContext(_child_body, name, name=name)


def _flat_workflow(ops):
    def workflow(_):
        for kind, name in ops:
            yield _descriptor(kind, name)
        return len(ops)

    return workflow


def _words(kind, name):
    return describe_operation(
        {"step": "Step", "wait": "Wait", "child": "RunInChildContext"}[kind], None, name
    )


KINDS = ["step", "wait", "child"]
flat_programs = st.lists(st.sampled_from(KINDS), min_size=1, max_size=6).map(
    lambda kinds: [(k, f"op{i}") for i, k in enumerate(kinds)]
)


def _mutate(ops, data):
    """A mutated program, and the 0-based root position where it departs from ``ops``."""
    n = len(ops)
    mutation = data.draw(
        st.sampled_from(["rename", "reorder", "kind", "insert", "delete", "return"]),
        label="mutation",
    )
    i = data.draw(st.integers(0, n - 1), label="position")
    new = list(ops)
    if mutation == "rename":
        new[i] = (ops[i][0], ops[i][1] + "-renamed")
    elif mutation == "reorder":
        assume(n >= 2)
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="swap with")
        new[i], new[j] = new[j], new[i]
        i = min(i, j)
    elif mutation == "kind":
        new[i] = (data.draw(st.sampled_from([k for k in KINDS if k != ops[i][0]])), ops[i][1])
    elif mutation == "insert":
        new.insert(i, (data.draw(st.sampled_from(KINDS)), "inserted"))
    elif mutation == "delete":
        del new[i]
    else:
        new = new[:i]
    return mutation, new, i


@given(ops=flat_programs, data=st.data())
def test_every_mutation_raises_nondeterminism_at_its_position(ops, data):
    engine = InMemoryEngine()
    result = engine.run(_flat_workflow(ops), None, execution_id=EXECUTION_ID)
    assert result.status == "SUCCEEDED"
    log = dict(engine.store.load(EXECUTION_ID))
    mutation, mutated, i = _mutate(ops, data)
    commands = interpret(_flat_workflow(mutated), log, now=engine.clock.now())
    assert len(commands) == 1, [w for _, w, _ in commands]
    key, words, _ = commands[0]
    assert key[:2] == ("raised", "NonDeterminismError"), words
    # the same through the engine: an invocation that raises, with the position in words
    with pytest.raises(NonDeterminismError) as info:
        engine.invoke_once(_flat_workflow(mutated), EXECUTION_ID)
    e = info.value
    assert e.position == f"{ordinal(i + 1)} operation of the root context", (mutation, e)
    assert e.recorded == _words(*ops[i]), (mutation, e)
    if i < len(mutated):
        assert e.yielded == f"yielded {_words(*mutated[i])}", (mutation, e)
    else:
        assert e.yielded == f"returned after {i} operation" + ("" if i == 1 else "s")


# ---------------------------------------------------------------------------- combinators


def test_empty_combinators_resolve_at_once():
    def flow(_):
        a = yield All([])
        s = yield AllSettled([])
        try:
            yield Any([])
        except CombinatorError as e:
            return [a, s, e.error_message]
        return "Any([]) succeeded"

    runner = WorkflowRunner(auto_advance=False)
    result = runner.run(flow)
    assert result.status == "SUCCEEDED"
    assert result.invocations == 1
    assert result.result == [[], [], "all 0 operations of Any failed: "]
    assert runner.format_tree() == "All SUCCEEDED\nAllSettled SUCCEEDED\nAny FAILED"


def _sleeper(index, fails, sleep_ms):
    def fn():
        time.sleep(sleep_ms / 1000)
        if fails:
            raise ValueError(f"branch {index} failed")
        return index

    fn.__name__ = f"work{index}"
    return fn


def _branch(index, fails, sleep_ms):
    def branch():
        return (
            yield Step(
                _sleeper(index, fails, sleep_ms), name=f"work{index}", retry=RetryPolicy.none()
            )
        )

    return branch


POLICIES = [
    CompletionPolicy.all_successful(),
    CompletionPolicy.all_completed(),
    CompletionPolicy.first_successful(),
    CompletionPolicy(min_successful=2),
    CompletionPolicy(tolerated_failure_count=1),
    CompletionPolicy(tolerated_failure_percentage=50),
]


@given(
    fails=st.lists(st.booleans(), min_size=1, max_size=4),
    policy=st.sampled_from(POLICIES),
    concurrency=st.sampled_from([None, 2]),
    data=st.data(),
)
def test_completion_policy_is_decided_the_same_whatever_order_branches_finish(
    fails, policy, concurrency, data
):
    order = data.draw(st.permutations(range(len(fails))), label="finish order")

    def flow(sleeps):
        def run(_):
            r = yield Parallel(
                [_branch(i, f, sleeps[i]) for i, f in enumerate(fails)],
                name="batch",
                completion=policy,
                max_concurrency=concurrency,
            )
            return {
                "reason": r.completion_reason.value,
                "items": [(it.index, it.status.value, it.result) for it in r.all],
            }

        return run

    def snapshot(result):
        return sorted((op.id, op.name, op.status.value, op.result) for op in result.operations)

    instant = InMemoryEngine().run(flow([0] * len(fails)), None, execution_id="e")
    # branch order[k] finishes k-th: it sleeps k * 15 ms
    sleeps = [0] * len(fails)
    for k, i in enumerate(order):
        sleeps[i] = 15 * k
    permuted = InMemoryEngine().run(flow(sleeps), None, execution_id="e")
    assert permuted.result == instant.result
    assert snapshot(permuted) == snapshot(instant)


# ---------------------------------------------------------------------------- round trip


@given(program=programs())
def test_the_log_survives_a_json_round_trip(program):
    _, final = _baseline(program, seed=2)
    wire = json.loads(json.dumps([op.to_dict() for op in final.values()]))
    back = {d["Id"]: Operation.from_dict(d) for d in wire}
    assert back == final
    # and replaying the round-tripped log completes with the recorded result
    commands = interpret(build_workflow(program), back, now=max_time(final))
    last = commands[-1][2]
    assert isinstance(last, Complete), commands[-1][1]
    assert last.updates == []


def max_time(ops):
    return max(op.end_timestamp or op.start_timestamp for op in ops.values())


def test_check_replay_passes_on_a_program_with_every_kind():
    program = [
        ("step", 1),
        ("wait", 5),
        ("wfc", 2),
        ("callback",),
        ("wfcb",),
        ("invoke", 7),
        ("child", [("step", 0)], True),
        ("all", [("step", 0), ("wait", 3)]),
        ("race", [("step", 2)]),
        ("parallel", [[("step", 1)], [("wait", 2)]], "all_completed", None),
        ("map", 2, [("step", 3)], "tolerate1", 1),
    ]
    report = check_replay(build_workflow(program), functions=PROGRAM_FUNCTIONS)
    assert report.result.status == "SUCCEEDED"
    assert report.result.result == [
        "r.0:ok",
        "waited",
        2,
        "ok",
        "ok",
        "R.5:7",
        "failed:ValueError:r.6 raised after 1 ops",
        ["r.7.0:ok", None],
        "r.8.0:ok",
        [[0, "SUCCEEDED", ["r.9.b0.0:ok"]], [1, "SUCCEEDED", ["waited"]]],
        [
            [0, "SUCCEEDED", ["failed:r.10.m0.0 failed attempt 3"]],
            [1, "SUCCEEDED", ["failed:r.10.m1.0 failed attempt 3"]],
        ],
    ]
    # one crash run per checkpoint and per step attempt of the uninterrupted run
    assert (report.checkpoints, report.attempts) == (54, 19)
    assert report.crash_runs == 54 + 19
    assert not any(op.type is OperationType.EXECUTION for op in report.result.operations)
