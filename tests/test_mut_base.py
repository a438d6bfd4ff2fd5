"""Tests that kill the mutants of durable_gen/_core/interpreter/base.py (issue 29).

base.py holds what every operation family uses: the argument digest, the retirement
queue and abandonment of branches, payload limits, recorded outcomes and the error
chains rebuilt from the log, and the messages of the replay checks.
"""

from __future__ import annotations

import contextlib
import functools
import zlib
from typing import Any

import pytest

from durable_gen import (
    ChildContext,
    CompletionPolicy,
    ExecutionError,
    Parallel,
    Step,
    Wait,
)
from durable_gen._core.batch import BatchResult
from durable_gen._core.commands import AwaitOutcome, Checkpoint, Complete, Fail, RunStep, Suspend
from durable_gen._core.errors import (
    ChildContextError,
    CorruptLogError,
    ErrorObject,
    InternalError,
    InvokeError,
    NonDeterminismError,
    PayloadTooLargeError,
    SerializationError,
    StepError,
    WaitForConditionError,
    WorkflowDefinitionError,
)
from durable_gen._core.interpreter import Interpreter
from durable_gen._core.interpreter.base import REPLAY_CHILDREN_THRESHOLD, args_digest
from durable_gen._core.log import OperationAction, operation_id
from durable_gen._core.serdes import DEFAULT_SERDES, JsonSerdes
from tests.test_mut_interpreter import (
    B0,
    B1,
    OP1,
    P,
    S,
    T,
    batch_log,
    op,
    parallel_wf,
    run,
    step_op,
    trace,
)

A = OperationAction
HINT_START = "A running execution must yield the operations its log recorded"


def crc(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


# -- args_digest -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [(7,), (1.5,), (True,), (None,), ("abc",), ("é",), (1, "a"), (None, 2.5, False), ("é", 1)],
)
def test_the_digest_of_scalars_is_the_crc_of_their_repr(args):
    assert args_digest(args) == crc(repr(args))


@pytest.mark.parametrize("args", [([1, 2],), ({"a": 1},), (1, [2]), ([1], "x")])
def test_the_digest_of_other_values_is_the_crc_of_their_json(args):
    assert args_digest(args) == crc(DEFAULT_SERDES.serialize(list(args)))
    assert args_digest(args) != crc(repr(args))


def test_the_digest_is_eight_lowercase_hex_digits():
    digests = [args_digest((i,)) for i in range(40)]
    assert all(len(d) == 8 and d == d.lower() for d in digests)
    assert any(c in "abcdef" for d in digests for c in d)


def test_no_digest_without_arguments_or_for_unserializable_ones():
    assert args_digest(()) is None
    assert args_digest((object(),)) is None
    assert args_digest((1, object())) is None


# -- construction --------------------------------------------------------------------------


def test_a_workflow_must_be_a_generator_function():
    with pytest.raises(WorkflowDefinitionError) as info:
        Interpreter(lambda x: 1, None, {}, now=0, execution_id="e")
    assert str(info.value).startswith("a workflow must be a generator function")


def _gen(x):
    yield x


class _LooksLikeAGeneratorFunction:
    """Passes inspect.isgeneratorfunction, but its call returns an int."""

    __name__ = "fake"
    __code__ = _gen.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __annotations__: dict[str, Any] = {}

    def __call__(self, x):
        return 5


def test_a_workflow_whose_call_returns_no_generator_is_refused():
    with pytest.raises(WorkflowDefinitionError) as info:
        Interpreter(_LooksLikeAGeneratorFunction(), None, {}, now=0, execution_id="e")
    assert str(info.value) == "a workflow must return a generator when called, got int"


def test_arguments_are_not_digested_by_default():
    def wf(_):
        return (yield Step(lambda x: x, 1, name="s"))

    (start,) = [u for c in run(wf, {}) for u in c.updates if u.action is A.START]
    assert start.args_digest is None


def test_state_before_anything_ran():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {OP1: step_op(OP1, "s", result="1")}, now=0, execution_id="e")
    assert interp.current_operation == (None, None)
    assert interp.is_replaying() is False
    assert interp.replaying is True
    empty = Interpreter(wf, None, {}, now=0, execution_id="e")
    empty.next_command()
    assert empty.replaying is False
    assert empty.is_replaying() is False


def test_is_replaying_counts_the_operations_recorded_per_context():
    child_id = operation_id(None, 2)

    def child():
        return (yield Step(lambda: 2, name="c1"))

    def wf(_):
        yield Step(lambda: 1, name="s")
        return (yield ChildContext(child, name="c"))

    ops = {
        OP1: step_op(OP1, "s", result="1"),
        child_id: op(child_id, T.CONTEXT, S.STARTED, None, "c", "RunInChildContext"),
        operation_id(child_id, 1): step_op(
            operation_id(child_id, 1), "c1", child_id, S.STARTED, attempt=1
        ),
    }
    interp = Interpreter(wf, None, ops, now=0, execution_id="e")
    cmd = interp.next_command()
    assert isinstance(cmd, RunStep)
    assert cmd.name == "c1"
    assert interp.current_operation[0] == child_id
    assert interp.is_replaying() is False  # the child's 1st op is its last recorded one


def test_is_replaying_is_true_before_the_last_recorded_operation():
    def wf(_):
        yield Step(lambda: 1, name="a")
        return (yield Step(lambda: 2, name="b"))

    ops = {
        OP1: step_op(OP1, "a", status=S.STARTED, attempt=1),
        operation_id(None, 2): step_op(operation_id(None, 2), "b", result="2"),
    }
    interp = Interpreter(wf, None, ops, now=0, execution_id="e")
    assert isinstance(interp.next_command(), RunStep)
    assert interp.is_replaying() is True


# -- the root's outcome --------------------------------------------------------------------


def test_the_root_result_is_stored_with_the_default_serdes():
    def wf(_):
        return (1, 2)
        yield

    (done,) = run(wf, {})
    assert isinstance(done, Complete)
    assert done.result == DEFAULT_SERDES.serialize((1, 2))


def test_an_unstorable_root_result_fails_with_its_type():
    value = object()

    def wf(_):
        return value
        yield

    with pytest.raises(SerializationError) as info:
        DEFAULT_SERDES.serialize(value)
    (fail,) = run(wf, {})
    assert isinstance(fail, Fail)
    assert isinstance(fail.exception, SerializationError)
    assert fail.exception.value_type == info.value.value_type
    assert fail.exception.value_type is not None
    assert str(fail.exception) == (
        f"the workflow returned a value that cannot be stored: {info.value}"
    )


def test_a_failed_root_keeps_its_exception():
    exc = ValueError("x")

    def wf(_):
        raise exc
        yield

    (fail,) = run(wf, {})
    assert fail.exception is exc


def test_a_finally_block_that_raises_does_not_hide_a_suspension():
    def wf(_):
        try:
            yield Wait(seconds=5)
        finally:
            raise RuntimeError("in finally")

    cmds = run(wf, {})
    assert isinstance(cmds[-1], Suspend)


# -- step reports ----------------------------------------------------------------------------


def test_a_report_for_an_unknown_step_is_an_internal_error():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    with pytest.raises(InternalError) as info:
        interp.step_returned("nope", 1)
    assert str(info.value) == "no step attempt is running with operation id 'nope'"
    cmd = interp.next_command()
    interp.step_returned(cmd.op_id, 1)
    with pytest.raises(InternalError, match="no step attempt is running"):
        interp.step_returned(cmd.op_id, 1)  # twice


def _min_one(*branches):
    def wf(_):
        result = yield Parallel(
            list(branches), name="p", completion=CompletionPolicy(min_successful=1)
        )
        return [(i.index, i.status.value, i.result) for i in result.all]

    return wf


def test_a_step_of_an_abandoned_branch_may_report_once():
    def quick():
        return (yield Step(lambda: "a", name="a"))

    def slow():
        return (yield Step(lambda: "b", name="b"))

    interp = Interpreter(_min_one(quick, slow), None, {}, now=0, execution_id="e")
    first = interp.next_command()
    second = interp.next_command()
    assert (first.name, second.name) == ("a", "b")
    interp.step_returned(first.op_id, "a")
    ends = []
    while True:
        cmd = interp.next_command()
        ends.append(cmd)
        if isinstance(cmd, Checkpoint):
            interp.checkpointed({})
        else:
            break
    assert isinstance(ends[-1], Complete)
    assert ends[-1].value == [(0, "SUCCEEDED", "a"), (1, "STARTED", None)]
    interp.step_returned(second.op_id, "b")  # abandoned: ignored, once
    with pytest.raises(InternalError):
        interp.step_returned(second.op_id, "b")


def test_an_abandoned_branch_drops_its_queued_replayed_outcome():
    # branch 0 replays a step then returns; branch 1 replays one queued behind it:
    # branch 0 completes the batch first, so branch 1's queued outcome is dropped
    def b0():
        return (yield Step(lambda: 1, name="a"))

    def b1():
        yield Step(lambda: 1, name="c")
        return (yield Step(lambda: 2, name="d"))

    ops = batch_log(
        step_op(operation_id(B0, 1), "a", B0, result='"a"'),
        step_op(operation_id(B1, 1), "c", B1, result='"c"'),
    )

    def wf(_):
        batch = yield Parallel([b0, b1], name="p", completion=CompletionPolicy(min_successful=1))
        after = yield Step(lambda: "after", name="after")
        return [(i.index, i.status.value, i.result) for i in batch.all], after

    cmds = run(wf, ops)
    assert trace(cmds) == [
        ("Checkpoint", [("SUCCEED", "parallel-branch-0")]),
        ("Checkpoint", [("SUCCEED", "p")]),
        ("RunStep", [("START", "after")]),
        ("Checkpoint", [("SUCCEED", "after")]),
        ("Complete", []),
    ]
    assert cmds[-1].value == ([(0, "SUCCEEDED", "a"), (1, "STARTED", None)], "after")


def test_an_abandoned_branch_with_a_raising_finally_and_a_nested_child():
    closed = []

    def quick():
        return "q"
        yield

    def inner():
        try:
            return (yield Step(lambda: 1, name="inner"))
        finally:
            closed.append("inner")
            raise RuntimeError("finally")

    def slow():
        try:
            return (yield ChildContext(inner, name="c"))
        finally:
            closed.append("slow")

    def wf(_):
        first = yield Parallel([slow, quick], completion=CompletionPolicy(min_successful=1))
        after = yield Step(lambda: "after", name="after")
        return first.get_results(), after

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    cmds = []
    while True:
        cmd = interp.next_command()
        cmds.append(cmd)
        if isinstance(cmd, RunStep):
            if cmd.name == "after":
                interp.step_returned(cmd.op_id, cmd.fn())
        elif isinstance(cmd, Checkpoint):
            interp.checkpointed({})
        else:
            break
    assert isinstance(cmds[-1], Complete), cmds
    assert cmds[-1].value == (["q"], "after")
    assert closed == ["inner", "slow"]
    assert not [c for c in cmds if isinstance(c, AwaitOutcome)]


def test_an_execution_error_out_of_a_branch_stops_its_siblings():
    def bad():
        raise ExecutionError("stop")
        yield

    def other():
        return (yield Step(lambda: 1, name="other"))

    cmds = run(parallel_wf(bad, other), {})
    assert [type(c) for c in cmds] == [Fail]
    assert isinstance(cmds[0].exception, ExecutionError)


# -- payload limits ------------------------------------------------------------------------


def _interp(**kw):
    def wf(_):
        yield

    return Interpreter(wf, None, {}, now=0, execution_id="e", **kw)


def test_a_payload_at_the_limit_passes_and_one_byte_more_is_refused():
    interp = _interp(max_payload_bytes=10)
    interp._check_size("x" * 10, str, "it")
    interp._check_size("é" * 5, str, "it")  # 10 bytes in UTF-8
    with pytest.raises(PayloadTooLargeError) as info:
        interp._check_size("é" * 5 + "x", str, "it")
    assert (info.value.size, info.value.limit) == (11, 10)
    assert str(info.value) == (
        "it is 11 bytes once serialized, over the 10-byte limit of one checkpoint; keep "
        "large data elsewhere (a file, a bucket) and return a reference to it"
    )


@pytest.mark.parametrize(
    ("chars", "big"),
    [
        (REPLAY_CHILDREN_THRESHOLD // 4 + 1, False),
        (REPLAY_CHILDREN_THRESHOLD, False),
        (REPLAY_CHILDREN_THRESHOLD + 1, True),
    ],
)
def test_a_context_result_is_big_over_the_threshold(chars, big):
    payload = "x" * (chars - 2)  # JSON adds the quotes
    assert len(DEFAULT_SERDES.serialize(payload)) == chars
    stored, value, is_big = _interp()._encode_context_result(DEFAULT_SERDES, payload)
    assert (is_big, value) == (big, payload)
    assert stored == ("" if big else DEFAULT_SERDES.serialize(payload))


def test_a_non_ascii_context_result_is_measured_in_bytes():
    class Raw:
        def serialize(self, v):
            return v

        def deserialize(self, d):
            return d

    n = REPLAY_CHILDREN_THRESHOLD // 2
    assert _interp()._encode_context_result(Raw(), "é" * n)[2] is False  # exactly the limit
    assert _interp()._encode_context_result(Raw(), "é" * n + "x")[2] is True


def test_a_context_result_comes_back_through_its_serdes():
    def child():
        return (1, 2)
        yield

    def wf(_):
        return (yield ChildContext(child, name="c", serdes=JsonSerdes()))

    assert run(wf, {})[-1].value == [1, 2]


# -- recorded batches ------------------------------------------------------------------------


def _batch_wf(serdes=None):
    def never():
        raise AssertionError("ran")
        yield

    def wf(_):
        return (yield Parallel([never], name="p", serdes=serdes))

    return wf


def test_a_recorded_batch_result_that_is_no_batch_is_a_corrupt_log():
    ops = {P: op(P, T.CONTEXT, S.SUCCEEDED, None, "p", "Parallel", result="1")}
    with pytest.raises(CorruptLogError) as info:
        run(_batch_wf(), ops)
    assert str(info.value).startswith(
        f"the recorded Parallel 'p' (the 1st operation of the root context, id {P!r}) "
        "cannot be replayed: not a batch result ("
    )


def test_an_unreadable_batch_result_is_a_corrupt_log():
    ops = {P: op(P, T.CONTEXT, S.SUCCEEDED, None, "p", "Parallel", result="{bad")}
    with pytest.raises(CorruptLogError) as info:
        run(_batch_wf(), ops)
    assert str(info.value).startswith(
        f"the recorded Parallel 'p' (the 1st operation of the root context, id {P!r}) "
        "cannot be replayed: "
    )


def test_a_recorded_batch_result_is_read_with_its_serdes():
    result = BatchResult.build([], None) if False else None

    class Fixed:
        def serialize(self, v):
            return "fixed"

        def deserialize(self, d):
            assert d == "stored"
            return "batch"

    del result
    ops = {P: op(P, T.CONTEXT, S.SUCCEEDED, None, "p", "Parallel", result="stored")}
    with pytest.raises(CorruptLogError, match=r"not a batch result"):
        run(_batch_wf(Fixed()), ops)  # read by Fixed ("batch"), which is no record


# -- the cause rebuilt from the log ------------------------------------------------------


def _failed_child_log(error: ErrorObject | None, *children) -> dict:
    ops = [op(OP1, T.CONTEXT, S.FAILED, None, "c", "RunInChildContext", error=error), *children]
    return {o.id: o for o in ops}


def _cause_wf():
    def never():
        raise AssertionError("ran")
        yield

    def wf(_):
        try:
            yield ChildContext(never, name="c")
        except ChildContextError as e:
            chain = []
            c = e.__cause__
            while c is not None:
                chain.append(
                    (
                        type(c).__name__,
                        c.error_type,
                        c.error_message,
                        c.operation_name,
                        c.operation_id,
                    )
                )
                c = c.__cause__
            return (e.error_type, e.error_message), chain

    return wf


def _child(n, type_=T.STEP, status=S.FAILED, message="m", sub_type="Step", parent=OP1, end=None):
    return op(
        f"c{n}",
        type_,
        status,
        parent,
        f"n{n}",
        sub_type,
        end_timestamp=end,
        error=None if status is S.SUCCEEDED else ErrorObject(type=f"E{n}", message=message),
    )


def _cause(n, cls="StepError"):
    return (cls, f"E{n}", "m", f"n{n}", f"c{n}")


STEP_ERR = ErrorObject(type=StepError.wire_type, message="m")


def test_the_cause_is_the_failed_step_with_the_recorded_message():
    ops = _failed_child_log(
        STEP_ERR,
        _child(1, end=5),
        _child(2, message="other", end=9),  # another message
        _child(3, status=S.SUCCEEDED, end=9),  # succeeded
        _child(4, status=S.STARTED, end=9),  # not ended
        _child(5, parent="elsewhere", end=9),  # another parent
        _child(6, type_=T.CONTEXT, sub_type="RunInChildContext", end=9),  # another kind
        _child(7, sub_type="WaitForCondition", end=9),  # a condition, not a step
    )
    assert run(_cause_wf(), ops)[-1].value == (
        (StepError.wire_type, "m"),
        [_cause(1)],
    )


@pytest.mark.parametrize(
    ("ends", "chosen"),
    [((5, 10), 2), ((10, 5), 1), ((None, None), 2), ((1, None), 1), ((None, 1), 2), ((3, 3), 2)],
)
def test_the_cause_is_the_last_to_end(ends, chosen):
    ops = _failed_child_log(STEP_ERR, _child(1, end=ends[0]), _child(2, end=ends[1]))
    assert run(_cause_wf(), ops)[-1].value[1] == [_cause(chosen)]


def test_a_condition_cause_and_a_nested_context_cause():
    wfc = ErrorObject(type=WaitForConditionError.wire_type, message="m")
    ops = _failed_child_log(wfc, _child(1, end=1), _child(2, sub_type="WaitForCondition"))
    assert run(_cause_wf(), ops)[-1].value[1] == [_cause(2, "WaitForConditionError")]
    nested = _child(1, type_=T.CONTEXT, sub_type="RunInChildContext")
    nested = op(
        "c1",
        T.CONTEXT,
        S.FAILED,
        OP1,
        "n1",
        "RunInChildContext",
        error=ErrorObject(type=StepError.wire_type, message="m"),
    )
    ops = _failed_child_log(
        ErrorObject(type=ChildContextError.wire_type, message="m"),
        nested,
        _child(2, parent="c1"),
    )
    assert run(_cause_wf(), ops)[-1].value[1] == [
        ("ChildContextError", StepError.wire_type, "m", "n1", "c1"),
        _cause(2),
    ]


def test_no_cause_without_a_recorded_error_or_of_an_unknown_kind():
    ops = _failed_child_log(None, _child(1))
    assert run(_cause_wf(), ops)[-1].value == (("Error", None), [])
    ops = _failed_child_log(ErrorObject(type="Other", message="m"), _child(1))
    assert run(_cause_wf(), ops)[-1].value[1] == []
    ops = _failed_child_log(STEP_ERR, _child(1, message="x"))
    assert run(_cause_wf(), ops)[-1].value[1] == []


def test_an_invoke_cause():
    ops = _failed_child_log(
        ErrorObject(type=InvokeError.wire_type, message="m"),
        _child(1, type_=T.CHAINED_INVOKE, sub_type="ChainedInvoke"),
    )
    assert run(_cause_wf(), ops)[-1].value[1] == [_cause(1, "InvokeError")]


# -- re-driven contexts count their recorded outcome ---------------------------------------


def test_a_context_recorded_as_rebuilt_by_replay_that_now_raises_is_a_corrupt_log():
    def child():
        yield Step(lambda: 1, name="s")
        raise ValueError("now")

    def wf(_):
        return (yield ChildContext(child, name="c"))

    ops = {
        OP1: op(
            OP1,
            T.CONTEXT,
            S.SUCCEEDED,
            None,
            "c",
            "RunInChildContext",
            result="",
            replay_children=True,
        ),
        operation_id(OP1, 1): step_op(operation_id(OP1, 1), "s", OP1, result="1"),
    }
    with pytest.raises(CorruptLogError) as info:
        run(wf, ops)
    assert str(info.value) == (
        f"the recorded ChildContext 'c' (the 1st operation of child context 'c', id {OP1!r}) "
        "cannot be replayed: its log recorded success, but replaying it raised "
        "ValueError('now')"
    )


class _Upper:
    def serialize(self, v):
        return v

    def deserialize(self, d):
        return d.upper()


def test_a_re_driven_context_reads_its_recorded_result_with_its_serdes():
    cid = operation_id(B0, 1)

    def child():
        return "fresh"
        yield

    def b0():
        return (yield ChildContext(child, name="c", serdes=_Upper()))

    def b1():
        return "b1"
        yield

    ops = batch_log(op(cid, T.CONTEXT, S.SUCCEEDED, B0, "c", "RunInChildContext", result="kept"))
    assert run(parallel_wf(b0, b1), ops)[-1].value[0] == ("SUCCEEDED", "KEPT", None)


def test_a_re_driven_context_with_an_unreadable_result_is_a_corrupt_log():
    cid = operation_id(B0, 1)

    def child():
        return "fresh"
        yield

    def b0():
        return (yield ChildContext(child, name="c"))

    def b1():
        return "b1"
        yield

    ops = batch_log(op(cid, T.CONTEXT, S.SUCCEEDED, B0, "c", "RunInChildContext", result="{x"))
    with pytest.raises(CorruptLogError, match=r"^the recorded ChildContext 'c' \(the 0th"):
        run(parallel_wf(b0, b1), ops)


def test_a_re_driven_branch_that_failed_without_an_error():
    def b0():
        return "fresh"
        yield

    def b1():
        return "b1"
        yield

    ops = batch_log()
    ops[B0] = op(B0, T.CONTEXT, S.FAILED, P, "parallel-branch-0", "ParallelBranch")

    def wf(_):
        result = yield Parallel([b0, b1], name="p", completion=CompletionPolicy.all_completed())
        return [
            (i.status.value, i.result, i.error and (i.error.type, i.error.message))
            for i in result.all
        ]

    assert run(wf, ops)[-1].value[0] == ("FAILED", None, ("Error", "ended FAILED"))


# -- the messages of the replay checks ----------------------------------------------------------


def _nd(wf, ops) -> NonDeterminismError:
    with pytest.raises(NonDeterminismError) as info:
        run(wf, ops)
    return info.value


def test_a_step_under_another_parent_names_both_parents():
    cid = OP1
    sid = operation_id(cid, 1)

    def child():
        return (yield Step(lambda: 1, name="s"))

    def wf(_):
        return (yield ChildContext(child, name="c"))

    ops = {
        cid: op(cid, T.CONTEXT, S.STARTED, None, "c", "RunInChildContext"),
        sid: step_op(sid, "s", "zzz"),
    }
    e = _nd(wf, ops)
    assert e.recorded == "Step 's' under parent 'zzz'"
    assert e.yielded == f"yielded Step 's' under parent {cid!r}"
    assert e.position == "1st operation of child context 'c'"
    assert e.operation_id == sid


def test_another_step_under_another_parent_names_no_parents():
    cid = OP1
    sid = operation_id(cid, 1)

    def child():
        return (yield Step(lambda: 1, name="t"))

    def wf(_):
        return (yield ChildContext(child, name="c"))

    ops = {
        cid: op(cid, T.CONTEXT, S.STARTED, None, "c", "RunInChildContext"),
        sid: step_op(sid, "s", "zzz"),
    }
    e = _nd(wf, ops)
    assert (e.recorded, e.yielded) == ("Step 's'", "yielded Step 't'")


@pytest.mark.parametrize(
    ("change", "recorded", "yielded"),
    [
        ({"name": "x"}, "ParallelBranch 'x'", "ParallelBranch 'parallel-branch-0'"),
        (
            {"sub_type": "MapIteration"},
            "MapIteration 'parallel-branch-0'",
            "ParallelBranch 'parallel-branch-0'",
        ),
        (
            {"parent_id": "zzz"},
            "ParallelBranch 'parallel-branch-0' under parent 'zzz'",
            f"ParallelBranch 'parallel-branch-0' under parent {P!r}",
        ),
        (
            {"type": T.STEP},
            "ParallelBranch 'parallel-branch-0'",
            "ParallelBranch 'parallel-branch-0'",
        ),
    ],
)
def test_a_branch_recorded_otherwise_is_non_deterministic(change, recorded, yielded):
    import attrs

    def b():
        return 1
        yield

    ops = batch_log()
    ops[B0] = attrs.evolve(ops[B0], **change)
    e = _nd(parallel_wf(b, b), ops)
    assert e.position == "branch 0 (0-based) of the root context"
    assert (e.recorded, e.yielded) == (recorded, f"yielded {yielded}")
    assert e.operation_id == B0
    assert e.hint.startswith(HINT_START)


@pytest.mark.parametrize(("ran", "word"), [(1, "operation"), (2, "operations")])
def test_a_context_that_returns_early_names_what_it_skipped(ran, word):
    def wf(_):
        for _i in range(ran):
            yield Step(lambda: 1, name="s")

    ops = {
        operation_id(None, k): step_op(operation_id(None, k), "s", result="1")
        for k in range(1, ran + 2)
    }
    e = _nd(wf, ops)
    assert e.position == f"{ordinal(ran + 1)} operation of the root context"
    assert e.recorded == "Step 's'"
    assert e.yielded == f"returned after {ran} {word}"
    assert e.operation_id == operation_id(None, ran + 1)


def ordinal(n):
    return {1: "1st", 2: "2nd", 3: "3rd"}[n]


def test_other_arguments_are_non_deterministic_with_check_args():
    def wf(_):
        return (yield Step(lambda x: x, 5, name="s"))

    ops = {OP1: step_op(OP1, "s", result="7", args_digest="00000000")}
    with pytest.raises(NonDeterminismError) as info:
        run(wf, ops, check_args=True)
    e = info.value
    assert e.operation_id == OP1
    assert e.recorded == "Step 's' called with other arguments"
    assert e.yielded == "yielded Step 's' with arguments (5,)"


def test_yielding_a_callable_without_a_name():
    target = functools.partial(print)

    def wf(_):
        yield target

    with pytest.raises(WorkflowDefinitionError) as info:
        run(wf, {})
    assert str(info.value) == (
        f"the workflow yielded the function {repr(target)!r} at the 1st operation of the "
        f"root context; to run it as a step, yield Step({target!r}, *args)"
    )


def test_suppressed_finally_does_not_leak():
    with contextlib.suppress(Exception):
        pass
    assert B1 != B0


def test_an_operation_recorded_without_a_sub_type_is_named_by_its_type():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    e = _nd(wf, {OP1: op(OP1, T.WAIT, S.SUCCEEDED)})
    assert str(e.recorded) == "WAIT"

    def short(_):
        return 1
        yield

    e = _nd(short, {OP1: op(OP1, T.WAIT, S.SUCCEEDED)})
    assert str(e.recorded) == "WAIT"
    assert e.yielded == "returned after 0 operations"


def test_a_reported_step_of_an_abandoned_branch_may_not_report_again():
    def quick():
        return (yield Step(lambda: "a", name="a"))

    def slow():
        return (yield Step(lambda: "b", name="b"))

    interp = Interpreter(_min_one(quick, slow), None, {}, now=0, execution_id="e")
    first = interp.next_command()
    second = interp.next_command()
    interp.step_returned(first.op_id, "a")
    interp.step_returned(second.op_id, "b")  # done, not retired when the batch ends
    while True:
        cmd = interp.next_command()
        if not isinstance(cmd, Checkpoint):
            break
        interp.checkpointed({})
    assert cmd.value == [(0, "SUCCEEDED", "a"), (1, "STARTED", None)]
    with pytest.raises(InternalError):
        interp.step_returned(second.op_id, "b")


def test_abandoning_a_nested_branch_spares_the_other_work_in_flight():
    # outer Parallel [x, y]: x runs an inner Parallel(min_successful=1) [slow, quick];
    # y replays a step (queued) then runs one. quick ends the inner batch while slow's
    # step, two child contexts deep, and y's work are queued: only slow's goes.
    closed = []

    def deep():
        try:
            return (yield Step(lambda: "s1", name="s1"))
        finally:
            closed.append("deep")

    def mid():
        return (yield ChildContext(deep, name="deep"))

    def slow():
        return (yield ChildContext(mid, name="mid"))

    def quick():
        return "q"
        yield

    def x():
        inner = yield Parallel(
            [slow, quick], name="in", completion=CompletionPolicy(min_successful=1)
        )
        return inner.get_results()

    def y():
        a = yield Step(lambda: "a", name="a")
        return a, (yield Step(lambda: "b", name="b"))

    y_id = operation_id(P, 1)
    ops = {
        P: op(P, T.CONTEXT, S.STARTED, None, "p", "Parallel"),
        y_id: op(y_id, T.CONTEXT, S.STARTED, P, "parallel-branch-1", "ParallelBranch"),
        operation_id(y_id, 1): step_op(operation_id(y_id, 1), "a", y_id, result='"a"'),
    }
    cmds = run(parallel_wf(x, y), ops)
    assert isinstance(cmds[-1], Complete), trace(cmds)
    assert cmds[-1].value == [("SUCCEEDED", ["q"], None), ("SUCCEEDED", ("a", "b"), None)]
    assert closed == ["deep"]
    names = [u.name for u in ups_of(cmds) if u.action is A.SUCCEED]
    assert "s1" not in names
    assert "deep" not in names
    assert "mid" not in names


def ups_of(cmds):
    return [u for c in cmds for u in c.updates]
