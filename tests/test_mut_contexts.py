"""Tests that kill the mutants of durable_gen/_core/interpreter/contexts.py (issue 29).

Child contexts (recorded and virtual), Parallel and Map, and the combinators: what
they record when they end, the errors they throw, and how a context that already
ended is re-driven under concurrency (its recorded outcome counts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable_gen import (
    All,
    ChildContext,
    CompletionPolicy,
    Map,
    Nesting,
    Parallel,
    Step,
)
from durable_gen import Any as AnyOf
from durable_gen._core.commands import Checkpoint, Complete
from durable_gen._core.errors import (
    ChildContextError,
    CombinatorError,
    ErrorObject,
    NonDeterminismError,
    SerializationError,
    StepError,
    WorkflowDefinitionError,
    qualified_name,
)
from durable_gen._core.log import OperationAction, operation_id
from durable_gen._core.serdes import DEFAULT_SERDES
from tests.test_mut_base import _LooksLikeAGeneratorFunction
from tests.test_mut_interpreter import (
    B0,
    OP1,
    P,
    S,
    T,
    batch_log,
    op,
    run,
    step_op,
)

A = OperationAction
NO_RETRY = None
BIG = 300 * 1024


def ups(cmds, action=None) -> list[Any]:
    return [u for c in cmds for u in c.updates if action is None or u.action is action]


def err_of(e: BaseException | None):
    if e is None:
        return None
    return (type(e).__name__, e.error_type, e.error_message, e.operation_name, e.operation_id)


def catching_wf(desc_factory):
    def wf(_):
        try:
            return ("ok", (yield desc_factory()))
        except Exception as e:
            cause = e.__cause__
            return (
                err_of(e),
                err_of(cause) if hasattr(cause, "error_type") else repr(cause),
            )

    return wf


def _gen_returning(value):
    def body():
        return value
        yield

    return body


def _fails():
    raise ValueError("boom")
    yield


# -- recorded child contexts -------------------------------------------------------------


def test_a_child_context_that_raises_records_its_failure_under_its_parent():
    def inner():
        raise ValueError("boom")
        yield

    def outer():
        return (yield ChildContext(inner, name="in"))

    cmds = run(catching_wf(lambda: ChildContext(outer, name="out")), {})
    inner_id = operation_id(OP1, 1)
    fails = ups(cmds, A.FAIL)
    assert [(u.id, u.parent_id, u.name, u.sub_type) for u in fails] == [
        (inner_id, OP1, "in", "RunInChildContext"),
        (OP1, None, "out", "RunInChildContext"),
    ]
    assert fails[0].error.type == "ValueError"
    starts = ups(cmds, A.START)
    assert [(u.id, u.parent_id) for u in starts] == [(OP1, None), (inner_id, OP1)]
    (outer_err, _cause) = cmds[-1].value
    assert outer_err[0] == "ChildContextError"
    assert outer_err[3:] == ("out", OP1)


def test_a_child_context_result_is_recorded_under_its_parent():
    def inner():
        return "v"
        yield

    def outer():
        return (yield ChildContext(inner, name="in"))

    cmds = run(catching_wf(lambda: ChildContext(outer, name="out")), {})
    succeeded = ups(cmds, A.SUCCEED)
    assert [(u.id, u.parent_id, u.payload, u.replay_children) for u in succeeded] == [
        (operation_id(OP1, 1), OP1, '"v"', None),
        (OP1, None, '"v"', None),
    ]
    assert cmds[-1].value == ("ok", "v")


def test_an_unstorable_child_result_fails_the_context_with_its_type():
    value = object()
    cmds = run(catching_wf(lambda: ChildContext(_gen_returning(value), name="c")), {})
    (fail,) = ups(cmds, A.FAIL)
    assert fail.error.type == qualified_name(SerializationError)
    assert fail.error.message.startswith(
        "child context 'c' returned a value that cannot be stored: "
    )
    err, _cause = cmds[-1].value
    assert err[3:] == ("c", OP1)


def test_a_big_child_result_is_rebuilt_by_replay_or_summarised():
    cmds = run(catching_wf(lambda: ChildContext(_gen_returning("x" * BIG), name="c")), {})
    (done,) = ups(cmds, A.SUCCEED)
    assert (done.payload, done.replay_children) == ("", True)
    cmds = run(
        catching_wf(
            lambda: ChildContext(_gen_returning("x" * BIG), name="c", summary=lambda v: "short")
        ),
        {},
    )
    (done,) = ups(cmds, A.SUCCEED)
    assert (done.payload, done.replay_children) == ("short", True)
    assert cmds[-1].value == ("ok", "x" * BIG)


@pytest.mark.parametrize(
    ("summary", "message", "value_type"),
    [
        (lambda v: 5, "the summary of child context 'c' must be a str, got int", "int"),
        (
            lambda v: "y" * BIG,
            "the summary of child context 'c' is over the 262,144 bytes a context may "
            "store; return a shorter one",
            "str",
        ),
    ],
)
def test_a_bad_summary_fails_the_context(summary, message, value_type):
    seen = []

    def wf(_):
        try:
            yield ChildContext(_gen_returning("x" * BIG), name="c", summary=summary)
        except ChildContextError as e:
            seen.append(e.__cause__)
            return e.error_message

    cmds = run(wf, {})
    assert cmds[-1].value == message
    assert isinstance(seen[0], SerializationError)
    assert seen[0].value_type == value_type


def test_a_recorded_failed_child_without_an_error():
    def wf(_):
        try:
            yield ChildContext(_fails, name="c")
        except ChildContextError as e:
            return err_of(e)

    ops = {OP1: op(OP1, T.CONTEXT, S.FAILED, None, "c", "RunInChildContext")}
    assert run(wf, ops)[-1].value == ("ChildContextError", "Error", None, "c", OP1)


def test_a_recorded_failed_child_keeps_its_cause_from_the_log():
    def wf(_):
        try:
            yield ChildContext(_fails, name="c")
        except ChildContextError as e:
            return err_of(e.__cause__)

    ops = {
        OP1: op(
            OP1,
            T.CONTEXT,
            S.FAILED,
            None,
            "c",
            "RunInChildContext",
            error=ErrorObject(type=StepError.wire_type, message="m"),
        ),
        "s": step_op("s", "st", OP1, S.FAILED, error=ErrorObject(type="V", message="m")),
    }
    assert run(wf, ops)[-1].value == ("StepError", "V", "m", "st", "s")


def test_a_child_whose_call_returns_no_generator():
    with pytest.raises(WorkflowDefinitionError) as info:
        run(catching_wf(lambda: ChildContext(_LooksLikeAGeneratorFunction(), 1, name="c")), {})
    assert str(info.value) == (
        "ChildContext 'c' must run a generator function, its call returned int"
    )


# -- re-driven child contexts (under concurrency) -----------------------------------------


def _branch_wf(b0, b1=None):
    def wf(_):
        result = yield Parallel([b0, b1 or _gen_returning("b1")], name="p")
        return [(i.status.value, i.result) for i in result.all]

    return wf


def _rec_child(status, **kw):
    cid = operation_id(B0, 1)
    return op(cid, T.CONTEXT, status, B0, "c", "RunInChildContext", **kw)


def test_a_re_driven_failed_child_throws_its_recorded_error_with_the_new_cause():
    cid = operation_id(B0, 1)

    def child():
        return (yield Step(lambda: 1, name="s"))

    failed = _rec_child(S.FAILED, error=ErrorObject(type=StepError.wire_type, message="rec"))
    step = step_op(
        operation_id(cid, 1), "s", cid, S.FAILED, error=ErrorObject(type="V", message="m")
    )
    ops = batch_log(failed, step)

    def b0():
        try:
            yield ChildContext(child, name="c")
        except ChildContextError as e:
            return [err_of(e), err_of(e.__cause__)]

    assert run(_branch_wf(b0), ops)[-1].value[0] == (
        "SUCCEEDED",
        [
            ("ChildContextError", StepError.wire_type, "rec", "c", cid),
            ("StepError", "V", "m", "s", operation_id(cid, 1)),
        ],
    )


def test_a_re_driven_failed_child_that_now_returns_takes_its_cause_from_the_log():
    cid = operation_id(B0, 1)
    failed = _rec_child(S.FAILED, error=ErrorObject(type=StepError.wire_type, message="m"))
    step = step_op("s", "st", cid, S.FAILED, error=ErrorObject(type="V", message="m"))
    ops = batch_log(failed, step)

    def b0():
        try:
            yield ChildContext(_gen_returning("now"), name="c")
        except ChildContextError as e:
            return [err_of(e), err_of(e.__cause__)]

    assert run(_branch_wf(b0), ops)[-1].value[0] == (
        "SUCCEEDED",
        [
            ("ChildContextError", StepError.wire_type, "m", "c", cid),
            ("StepError", "V", "m", "st", "s"),
        ],
    )


def test_a_re_driven_child_rebuilt_by_replay_returns_the_new_value():
    ops = batch_log(_rec_child(S.SUCCEEDED, result="", replay_children=True))

    def b0():
        return (yield ChildContext(_gen_returning("rebuilt"), name="c"))

    cmds = run(_branch_wf(b0), ops)
    assert cmds[-1].value[0] == ("SUCCEEDED", "rebuilt")
    assert not [u for u in ups(cmds) if u.name == "c"]  # nothing recorded again


# -- virtual child contexts -----------------------------------------------------------------


def test_a_virtual_child_where_the_log_recorded_an_operation():
    ops = {OP1: step_op(OP1, "s", result="1")}
    for name, what in [("v", "child context 'v'"), (None, "child context")]:
        with pytest.raises(NonDeterminismError) as info:
            run(
                catching_wf(lambda name=name: ChildContext(_fails_named, name=name, virtual=True)),
                ops,
            )
        e = info.value
        assert e.position == "1st operation of the root context"
        assert e.recorded == "Step 's'"
        assert e.yielded == f"yielded a virtual {what}, which records no operation of its own"
        assert e.operation_id == OP1
        assert e.hint.startswith("A running execution must yield")


def _fails_named():
    raise ValueError("boom")
    yield


_fails_named.__name__ = ""


def test_a_virtual_child_failure_names_it():
    cmds = run(catching_wf(lambda: ChildContext(_fails, name="v", virtual=True)), {})
    assert cmds[-1].value[0] == ("ChildContextError", "ValueError", "boom", "v", OP1)
    assert ups(cmds) == []


def test_an_unstorable_virtual_child_result():
    value = object()
    cmds = run(catching_wf(lambda: ChildContext(_gen_returning(value), name="v", virtual=True)), {})
    err, _cause = cmds[-1].value
    assert err[0] == "ChildContextError"
    assert err[1] == qualified_name(SerializationError)
    assert err[2].startswith("virtual child context 'v' returned a value that cannot be stored: ")
    assert err[3:] == ("v", OP1)


def test_a_virtual_child_whose_call_returns_no_generator():
    with pytest.raises(WorkflowDefinitionError) as info:
        run(
            catching_wf(
                lambda: ChildContext(_LooksLikeAGeneratorFunction(), 1, name="v", virtual=True)
            ),
            {},
        )
    assert str(info.value) == (
        "virtual child context 'v' must run a generator function, its call returned int"
    )


@pytest.mark.parametrize(("name", "label"), [("v", "virtual child context 'v'"), ("", None)])
def test_the_label_of_a_virtual_child_in_messages(name, label):
    def body():
        yield Step(lambda: 1, name="t")

    ops = {OP1: step_op(OP1, "s", result="1")}
    with pytest.raises(NonDeterminismError) as info:
        run(catching_wf(lambda: ChildContext(body, name=name or None, virtual=True)), ops)
    assert info.value.position == "1st operation of the root context"
    ops = {operation_id(OP1, 1): step_op(operation_id(OP1, 1), "s", None, result="1")}
    with pytest.raises(NonDeterminismError) as info:
        run(catching_wf(lambda: ChildContext(body, name=name or None, virtual=True)), ops)
    shown = label or "virtual child context"
    if name == "":
        # a nameless ChildContext takes its function's name
        shown = "virtual child context 'body'"
    assert info.value.position == f"1st operation of {shown}"


# -- Parallel and Map --------------------------------------------------------------------------


def _flat_or_nested(nesting, *branches, **kw):
    def wf(_):
        result = yield Parallel(list(branches), name="p", nesting=nesting, **kw)
        return [
            (i.index, i.status.value, i.result, i.error and (i.error.type, i.error.message))
            for i in result.all
        ]

    return wf


@pytest.mark.parametrize("nesting", [Nesting.FLAT, Nesting.NESTED])
def test_a_failed_branch_is_recorded_only_when_nested(nesting):
    policy = CompletionPolicy.all_completed()
    cmds = run(_flat_or_nested(nesting, _fails, _gen_returning(2), completion=policy), {})
    assert cmds[-1].value == [
        (0, "FAILED", None, ("ValueError", "boom")),
        (1, "SUCCEEDED", 2, None),
    ]
    fails = ups(cmds, A.FAIL)
    if nesting is Nesting.FLAT:
        assert fails == []
    else:
        assert [(u.id, u.parent_id, u.name, u.sub_type, u.error.type) for u in fails] == [
            (B0, P, "parallel-branch-0", "ParallelBranch", "ValueError")
        ]


def test_a_big_branch_result_is_rebuilt_by_replay():
    cmds = run(_flat_or_nested(Nesting.NESTED, _gen_returning("x" * BIG)), {})
    branch = [u for u in ups(cmds, A.SUCCEED) if u.id == B0]
    assert [(u.parent_id, u.payload, u.replay_children) for u in branch] == [(P, "", True)]
    small = run(_flat_or_nested(Nesting.NESTED, _gen_returning("x")), {})
    branch = [u for u in ups(small, A.SUCCEED) if u.id == B0]
    assert [(u.parent_id, u.payload, u.replay_children) for u in branch] == [(P, '"x"', None)]


def test_an_unstorable_branch_result_fails_the_branch():
    policy = CompletionPolicy.all_completed()
    cmds = run(_flat_or_nested(Nesting.NESTED, _gen_returning(object()), completion=policy), {})
    (fail,) = [u for u in ups(cmds, A.FAIL) if u.id == B0]
    assert fail.error.type == qualified_name(SerializationError)
    assert fail.error.message.startswith(
        "branch 'parallel-branch-0' of Parallel 'p' returned a value that cannot be stored: "
    )


def test_an_unstorable_batch_result_fails_the_batch():
    policy = CompletionPolicy.all_completed()
    wf = catching_wf(
        lambda: Parallel(
            [_gen_returning(object())], name="p", nesting=Nesting.FLAT, completion=policy
        )
    )
    cmds = run(wf, {})
    (fail,) = ups(cmds, A.FAIL)
    assert (fail.id, fail.parent_id, fail.name, fail.sub_type) == (P, None, "p", "Parallel")
    assert fail.error.type == qualified_name(SerializationError)
    assert fail.error.message.startswith("the result of Parallel 'p' cannot be stored: ")
    err, _cause = cmds[-1].value
    assert err[0] == "ChildContextError"
    assert err[3:] == ("p", P)


def test_a_failing_batch_summary_fails_the_batch_with_its_error():
    def summary(result):
        raise KeyError("no summary")

    wf = catching_wf(lambda: Parallel([_gen_returning("x" * BIG)], name="p", summary=summary))
    cmds = run(wf, {})
    (fail,) = [u for u in ups(cmds, A.FAIL) if u.id == P]
    assert fail.error.type == "KeyError"
    assert cmds[-1].value[0][3:] == ("p", P)


@pytest.mark.parametrize("kind", ["Parallel", "Map"])
@pytest.mark.parametrize("summary", [None, lambda r: "mine"])
def test_a_big_batch_result_records_the_summary_envelope(kind, summary):
    bodies = [_gen_returning("x" * BIG), _gen_returning("y"), _gen_returning("z")]

    def wf(_):
        policy = CompletionPolicy(min_successful=1)
        if kind == "Map":
            desc = Map(
                ["x" * BIG, "y", "z"],
                lambda item, i: _gen_returning(item)(),
                name="b",
                summary=summary,
                completion=policy,
                max_concurrency=1,
            )
        else:
            desc = Parallel(bodies, name="b", summary=summary, completion=policy, max_concurrency=1)
        result = yield desc
        return result.success_count

    cmds = run(wf, {})
    (done,) = [u for u in ups(cmds, A.SUCCEED) if u.id == P]
    assert done.replay_children is True
    env = json.loads(done.payload)
    expected = {
        "type": f"{kind}Result",
        "totalCount": 1,  # the items the result holds: the others never started
        "completionReason": "MIN_SUCCESSFUL_REACHED",
        "startedIndexes": [],
        "startedCount": 0,
        "successCount": 1,
        "failureCount": 0,
        "status": "SUCCEEDED",
    }
    del expected["startedIndexes"]
    got_indexes = {k: env.pop(k) for k in ("startedIndexes", "completedIndexes") if k in env}
    assert got_indexes == {"startedIndexes": []}
    if summary is not None:
        expected["summary"] = "mine"
    assert env == expected


def test_the_summary_envelope_lists_the_fewer_indexes():
    from durable_gen._core.batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
    from durable_gen._core.interpreter.contexts import _summary_envelope

    def env(statuses):
        items = [
            BatchItem(i, s, "v" if s is BatchItemStatus.SUCCEEDED else None)
            for i, s in enumerate(statuses)
        ]
        result = BatchResult.build(items, CompletionReason.MIN_SUCCESSFUL_REACHED)
        return json.loads(_summary_envelope(result, "ParallelResult", None))

    ok, started = BatchItemStatus.SUCCEEDED, BatchItemStatus.STARTED
    assert env([ok, started, started])["completedIndexes"] == [0]
    assert "startedIndexes" not in env([ok, started, started])
    assert env([ok, ok, started])["startedIndexes"] == [2]
    assert env([ok, started])["startedIndexes"] == [1]  # a tie lists the started ones


def test_a_recorded_batch_that_failed_re_driven_throws_its_recorded_error():
    inner = operation_id(B0, 1)
    ops = batch_log(
        op(inner, T.CONTEXT, S.FAILED, B0, "in", "Parallel"),
        op(
            operation_id(inner, 0),
            T.CONTEXT,
            S.SUCCEEDED,
            inner,
            "parallel-branch-0",
            "ParallelBranch",
            result='"r"',
        ),
    )

    def b0():
        try:
            yield Parallel([_gen_returning("r")], name="in")
        except ChildContextError as e:
            return [err_of(e), e.__cause__]

    cmds = run(_branch_wf(b0), ops)
    assert cmds[-1].value[0] == (
        "SUCCEEDED",
        [("ChildContextError", "Error", None, "in", inner), None],
    )


def test_a_recorded_batch_that_succeeded_re_driven_returns_its_record():
    inner = operation_id(B0, 1)
    record = DEFAULT_SERDES.serialize(
        {
            "all": [{"index": 0, "status": "SUCCEEDED", "result": "recorded"}],
            "completionReason": "ALL_COMPLETED",
        }
    )
    ops = batch_log(
        op(inner, T.CONTEXT, S.SUCCEEDED, B0, "in", "Parallel", result=record),
        op(
            operation_id(inner, 0),
            T.CONTEXT,
            S.SUCCEEDED,
            inner,
            "parallel-branch-0",
            "ParallelBranch",
            result='"r"',
        ),
    )

    def b0():
        result = yield Parallel([_gen_returning("fresh")], name="in")
        return result.get_results()

    cmds = run(_branch_wf(b0), ops)
    assert cmds[-1].value[0] == ("SUCCEEDED", ["recorded"])


def test_a_re_driven_failed_branch_counts_its_recorded_error():
    ops = batch_log()
    ops[B0] = op(
        B0,
        T.CONTEXT,
        S.FAILED,
        P,
        "parallel-branch-0",
        "ParallelBranch",
        error=ErrorObject(type="Rec", message="recorded"),
    )
    wf = _flat_or_nested(
        Nesting.NESTED,
        _gen_returning("now"),
        _gen_returning(2),
        completion=CompletionPolicy.all_completed(),
    )
    cmds = run(wf, ops)
    assert cmds[-1].value[0] == (0, "FAILED", None, ("Rec", "recorded"))


def test_a_re_driven_succeeded_branch_reads_its_result_with_the_item_serdes():
    class Upper:
        def serialize(self, v):
            return v

        def deserialize(self, d):
            return d.upper()

    ops = batch_log()
    ops[B0] = op(B0, T.CONTEXT, S.SUCCEEDED, P, "parallel-branch-0", "ParallelBranch", result="rec")
    wf = _flat_or_nested(
        Nesting.NESTED, _gen_returning("now"), _gen_returning("b"), item_serdes=Upper()
    )
    assert run(wf, ops)[-1].value[0] == (0, "SUCCEEDED", "REC", None)


def test_a_re_driven_branch_that_fails_again_counts_its_recorded_success():
    ops = batch_log()
    ops[B0] = op(
        B0, T.CONTEXT, S.SUCCEEDED, P, "parallel-branch-0", "ParallelBranch", result='"rec"'
    )
    wf = _flat_or_nested(Nesting.NESTED, _fails, _gen_returning("b"))
    assert run(wf, ops)[-1].value[0] == (0, "SUCCEEDED", "rec", None)


def test_map_item_names_get_the_index():
    def wf(_):
        result = yield Map(
            ["a", "b"],
            lambda item, i: _gen_returning(item)(),
            item_namer=lambda item, i: f"{item}{i}",
        )
        return result.get_results()

    cmds = run(wf, {})
    names = [u.name for u in ups(cmds, A.START) if u.sub_type == "MapIteration"]
    assert names == ["a0", "b1"]


# -- combinators ---------------------------------------------------------------------------------


def test_a_failed_any_names_itself():
    def fail1():
        raise ValueError("one")

    def fail2():
        raise KeyError("two")

    wf = catching_wf(
        lambda: AnyOf(
            [Step(fail1, name="a", retry=_none()), Step(fail2, name="b", retry=_none())], name="any"
        )
    )
    cmds = run(wf, {})
    err, _cause = cmds[-1].value
    assert err[0] == "CombinatorError"
    assert err[1] == qualified_name(CombinatorError)
    assert err[3:] == ("any", OP1)


def _none():
    from durable_gen import RetryPolicy

    return RetryPolicy.none()


def test_a_failed_all_records_and_names_itself():
    def fail1():
        raise ValueError("one")

    wf = catching_wf(lambda: All([Step(fail1, name="a", retry=_none())], name="all"))
    cmds = run(wf, {})
    (fail,) = [u for u in ups(cmds, A.FAIL) if u.id == OP1]
    assert (fail.parent_id, fail.name, fail.sub_type) == (None, "all", "All")
    err, _cause = cmds[-1].value
    assert err[3:] == ("all", OP1)


def test_a_recorded_failed_combinator_re_driven_throws_its_recorded_error():
    cid = operation_id(B0, 1)
    ops = batch_log(
        op(cid, T.CONTEXT, S.FAILED, B0, "all", "All", error=ErrorObject(type="R", message="rec")),
        step_op(operation_id(cid, 1), "a", cid, S.FAILED, error=ErrorObject(type="V", message="m")),
    )

    def b0():
        try:
            yield All([Step(lambda: 1, name="a")], name="all")
        except CombinatorError as e:
            return err_of(e)

    assert run(_branch_wf(b0), ops)[-1].value[0] == (
        "SUCCEEDED",
        ("CombinatorError", "R", "rec", "all", cid),
    )


def test_a_recorded_succeeded_combinator_re_driven_returns_its_record():
    cid = operation_id(B0, 1)
    ops = batch_log(
        op(cid, T.CONTEXT, S.SUCCEEDED, B0, "all", "All", result='["r1", "r2"]'),
        step_op(operation_id(cid, 1), "a", cid, result='"x"'),
    )

    def b0():
        return (yield All([Step(lambda: 1, name="a"), Step(lambda: 2, name="b")], name="all"))

    cmds = run(_branch_wf(b0), ops)
    assert cmds[-1].value[0] == ("SUCCEEDED", ["r1", "r2"])
    assert not [
        c for c in cmds if isinstance(c, Checkpoint) and any(u.name == "b" for u in c.updates)
    ]
    assert isinstance(cmds[-1], Complete)
