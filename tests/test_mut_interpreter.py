"""Tests that kill the mutants of durable_gen/_core/interpreter/__init__.py (issue 29).

The interpreter is pure: each test hands it a log, drives it command by command and
compares what it emits (commands, updates, errors and their messages).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from durable_gen import (
    ChildContext,
    CreateCallback,
    Invoke,
    Parallel,
    RetryPolicy,
    Step,
    Wait,
)
from durable_gen._core.commands import (
    AwaitOutcome,
    Checkpoint,
    Complete,
    Fail,
    FailInvocation,
    RunStep,
)
from durable_gen._core.errors import (
    CallbackFailedError,
    CorruptLogError,
    ErrorObject,
    InternalError,
    InvocationError,
    InvokeError,
    StepError,
    error_from_exception,
    qualified_name,
)
from durable_gen._core.interpreter import Interpreter
from durable_gen._core.log import (
    _ROOT_IDS,
    Operation,
    OperationStatus,
    OperationType,
    operation_id,
)
from tests.test_mut_steps import drive

S = OperationStatus
T = OperationType
OP1 = operation_id(None, 1)
P = OP1  # a batch at the root
B0 = operation_id(P, 0)
B1 = operation_id(P, 1)


def op(id_, type_, status, parent=None, name=None, sub_type=None, **kw) -> Operation:
    return Operation(
        id=id_,
        type=type_,
        status=status,
        start_timestamp=0,
        parent_id=parent,
        name=name,
        sub_type=sub_type,
        **kw,
    )


def step_op(id_, name, parent=None, status=S.SUCCEEDED, **kw) -> Operation:
    return op(id_, T.STEP, status, parent, name, "Step", **kw)


def batch_log(*extra: Operation) -> dict[str, Operation]:
    """A Parallel 'p' of two branches, started, and ``extra``."""
    ops = [
        op(P, T.CONTEXT, S.STARTED, None, "p", "Parallel"),
        op(B0, T.CONTEXT, S.STARTED, P, "parallel-branch-0", "ParallelBranch"),
        op(B1, T.CONTEXT, S.STARTED, P, "parallel-branch-1", "ParallelBranch"),
        *extra,
    ]
    return {o.id: o for o in ops}


def run(wf, ops, **kw) -> list[Any]:
    """Drive one invocation at time 0 (tests.test_mut_steps.drive); all commands."""
    return drive(wf, ops, now=0, **kw)


def trace(cmds) -> list[tuple[str, list[tuple[str, str | None]]]]:
    return [(type(c).__name__, [(u.action.value, u.name) for u in c.updates]) for c in cmds]


def parallel_wf(*branches):
    def wf(_):
        result = yield Parallel(list(branches), name="p")
        return [(i.status.value, i.result, i.error) for i in result.all]

    return wf


# -- replay under concurrency keeps the live order ---------------------------------------


def test_a_replayed_step_waits_behind_a_ready_branch():
    def b0():
        yield Step(lambda: 1, name="a")
        return (yield Step(lambda: 2, name="b"))

    def b1():
        return (yield Step(lambda: 3, name="c"))

    cmds = run(parallel_wf(b0, b1), batch_log(step_op(operation_id(B0, 1), "a", B0, result="1")))
    assert trace(cmds) == [
        ("RunStep", [("START", "c")]),
        ("RunStep", [("START", "b")]),
        ("Checkpoint", [("SUCCEED", "c")]),
        ("Checkpoint", [("SUCCEED", "parallel-branch-1")]),
        ("Checkpoint", [("SUCCEED", "b")]),
        ("Checkpoint", [("SUCCEED", "parallel-branch-0")]),
        ("Checkpoint", [("SUCCEED", "p")]),
        ("Complete", []),
    ]
    assert cmds[-1].value == [("SUCCEEDED", 2, None), ("SUCCEEDED", 3, None)]


def test_a_replayed_step_waits_behind_a_running_step():
    def b0():
        return (yield Step(lambda: 3, name="c"))

    def b1():
        yield Step(lambda: 1, name="a")
        return (yield Step(lambda: 2, name="b"))

    cmds = run(parallel_wf(b0, b1), batch_log(step_op(operation_id(B1, 1), "a", B1, result="1")))
    assert trace(cmds)[:4] == [
        ("RunStep", [("START", "c")]),
        ("Checkpoint", [("SUCCEED", "c")]),
        ("Checkpoint", [("SUCCEED", "parallel-branch-0")]),
        ("RunStep", [("START", "b")]),
    ]


def _catch(desc_factory):
    def body():
        try:
            return ("ok", (yield desc_factory()))
        except Exception as e:
            return (type(e).__name__, e.error_type, e.error_message)

    return body


def _busy():
    return (yield Step(lambda: "busy", name="busy"))


def test_a_replayed_failed_step_is_thrown_in_order_under_concurrency():
    failed = step_op(
        operation_id(B0, 1), "a", B0, S.FAILED, error=ErrorObject(type="V", message="m")
    )
    cmds = run(parallel_wf(_catch(lambda: Step(lambda: 1, name="a")), _busy), batch_log(failed))
    assert cmds[-1].value[0] == ("SUCCEEDED", ("StepError", "V", "m"), None)
    assert trace(cmds)[0] == ("RunStep", [("START", "busy")])


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED])
def test_a_replayed_invoke_outcome_is_queued_under_concurrency(status):
    rec = op(
        operation_id(B0, 1),
        T.CHAINED_INVOKE,
        status,
        B0,
        None,
        "ChainedInvoke",
        result='"x"' if status is S.SUCCEEDED else None,
        error=None if status is S.SUCCEEDED else ErrorObject(type="E", message="no"),
    )
    cmds = run(parallel_wf(_catch(lambda: Invoke("fn")), _busy), batch_log(rec))
    expected = ("ok", "x") if status is S.SUCCEEDED else ("InvokeError", "E", "no")
    assert cmds[-1].value[0] == ("SUCCEEDED", expected, None)


def test_an_awaited_failed_callback_is_thrown_under_concurrency():
    cb = op(
        operation_id(B0, 1),
        T.CALLBACK,
        S.FAILED,
        B0,
        "cb",
        "Callback",
        callback_id="cid",
        error=ErrorObject(type="X", message="nope"),
    )

    def body():
        handle = yield CreateCallback("cb")
        try:
            return (yield handle)
        except CallbackFailedError as e:
            return ("failed", e.error_message)

    cmds = run(parallel_wf(body, _busy), batch_log(cb))
    assert cmds[-1].value[0] == ("SUCCEEDED", ("failed", "nope"), None)


# -- replaying steps -----------------------------------------------------------------------


def test_a_step_recorded_without_a_result_replays_none():
    def wf(_):
        return ("v", (yield Step(lambda: 1, name="s")))

    cmds = run(wf, {OP1: step_op(OP1, "s")})
    assert [type(c) for c in cmds] == [Complete]
    assert cmds[0].value == ("v", None)


def test_without_check_args_a_recorded_digest_is_not_compared():
    def wf(_):
        return (yield Step(lambda x: x, 5, name="s"))

    ops = {OP1: step_op(OP1, "s", result="7", args_digest="00000000")}
    assert run(wf, ops)[-1].value == 7


def test_an_unreadable_step_result_is_a_corrupt_log():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    with pytest.raises(CorruptLogError) as info:
        run(wf, {OP1: step_op(OP1, "s", result="{not json")})
    why = str(info.value.__cause__)
    assert why
    assert str(info.value) == (
        f"the recorded Step 's' (the 1st operation of the root context, id {OP1!r}) "
        f"cannot be replayed: {why}"
    )


def test_root_ids_past_the_memoized_ones():
    # _ROOT_IDS memoizes the root ids met so far (other tests grow it): start from
    # its first entry so that this run computes, and memoizes, ids 1 to 4 itself
    saved = list(_ROOT_IDS)
    del _ROOT_IDS[1:]
    try:

        def wf(_):
            total = 0
            for i in range(4):
                total += yield Step(lambda i=i: i, name="s")
            return total

        cmds = run(wf, {})
    finally:
        _ROOT_IDS[len(_ROOT_IDS) :] = saved[len(_ROOT_IDS) :]
    assert cmds[-1].value == 6
    ids = [c.op_id for c in cmds if isinstance(c, RunStep)]
    assert ids == [hashlib.blake2b(str(k).encode()).hexdigest()[:64] for k in range(1, 5)]


# -- awaits_only, the engine protocol --------------------------------------------------------


def test_awaits_only_the_one_running_step():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    assert interp.awaits_only(OP1) is False  # nothing issued yet: the root is ready
    cmd = interp.next_command()
    assert isinstance(cmd, RunStep)
    assert interp.awaits_only(OP1) is True
    assert interp.awaits_only("other") is False
    interp.step_returned(OP1, 1)
    assert interp.awaits_only(OP1) is True  # done, but not retired yet
    assert isinstance(interp.next_command(), Checkpoint)
    assert interp.awaits_only(OP1) is False  # awaiting the checkpoint's ack


def test_awaits_only_is_false_with_two_steps_running():
    def b(name):
        def body():
            return (yield Step(lambda: 1, name=name))

        return body

    interp = Interpreter(parallel_wf(b("x"), b("y")), None, {}, now=0, execution_id="e")
    first = interp.next_command()
    assert isinstance(first, RunStep)
    assert interp.awaits_only(first.op_id) is False  # the other branch is ready
    second = interp.next_command()
    assert isinstance(second, RunStep)
    assert interp.awaits_only(first.op_id) is False
    assert interp.awaits_only(second.op_id) is False


def test_awaits_only_is_false_once_finished_or_with_pending_updates():
    def wf(_):
        yield ChildContext(child, name="c")

    def child():
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    cmd = interp.next_command()
    assert isinstance(cmd, RunStep)
    assert interp.awaits_only(cmd.op_id) is True
    interp._updates.append(cmd.updates[0])  # an update not handed out yet
    assert interp.awaits_only(cmd.op_id) is False

    def done(_):
        return 1
        yield

    interp = Interpreter(done, None, {}, now=0, execution_id="e")
    interp._queue["x"] = object()  # type: ignore[assignment]
    interp._ready.clear()
    interp._finished = Complete([], "1", 1)
    assert interp.awaits_only("x") is False
    interp._finished = None
    assert interp.awaits_only("x") is True
    interp._commands.append(Checkpoint([]))
    assert interp.awaits_only("x") is False


def test_next_command_refuses_to_run_past_an_unacknowledged_checkpoint():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    run_cmd = interp.next_command()
    interp.step_returned(run_cmd.op_id, 1)
    assert isinstance(interp.next_command(), Checkpoint)
    with pytest.raises(InternalError) as info:
        interp.next_command()
    assert str(info.value) == (
        "next_command() called while a Checkpoint is unacknowledged; "
        "call checkpointed() once its updates are durable"
    )


def test_checkpointed_without_a_checkpoint_outstanding():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    interp = Interpreter(wf, None, {}, now=0, execution_id="e")
    with pytest.raises(InternalError) as info:
        interp.checkpointed({})
    assert str(info.value) == "checkpointed() called with no Checkpoint outstanding"


# -- an InvocationError out of a serdes ends the invocation -----------------------------------


class _RaisingSerdes:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def serialize(self, value):
        raise self.exc

    def deserialize(self, data):
        raise self.exc


@pytest.mark.parametrize("retryable", [True, False])
def test_an_invocation_error_from_a_serdes_ends_the_invocation(retryable):
    exc = InvocationError("serdes down", retryable=retryable)

    def child():
        return (yield Invoke("fn", 1, payload_serdes=_RaisingSerdes(exc)))

    def wf(_):
        return (yield ChildContext(child, name="c"))

    cmds = run(wf, {})
    assert len(cmds) == 1
    (end,) = cmds
    assert type(end) is (FailInvocation if retryable else Fail)
    assert [(u.action.value, u.name, u.id) for u in end.updates] == [("START", "c", OP1)]
    assert end.error == error_from_exception(exc)
    assert end.error is not None
    assert end.exception is exc


def test_a_step_error_names_the_failed_step():
    failed = step_op(OP1, "s", status=S.FAILED, error=ErrorObject(type="V", message="m"))

    def wf(_):
        try:
            yield Step(lambda: 1, name="s")
        except StepError as e:
            return (e.operation_name, e.operation_id)

    assert run(wf, {OP1: failed})[-1].value == ("s", OP1)


def test_replayed_failed_invoke_names_it():
    rec = op(OP1, T.CHAINED_INVOKE, S.FAILED, None, "i", "ChainedInvoke")

    def wf(_):
        try:
            yield Invoke("fn", name="i")
        except InvokeError as e:
            return (e.error_type, e.error_message, e.operation_name)

    assert run(wf, {OP1: rec})[-1].value == (
        qualified_name(InvokeError),
        "the operation ended FAILED",
        "i",
    )


def test_no_await_outcome_when_steps_report_at_once():
    def wf(_):
        return (yield Step(lambda: 1, name="s"))

    assert not [c for c in run(wf, {}) if isinstance(c, AwaitOutcome)]


# ------------------------------------------------ what the interpreter hands to hooks


def test_engines_with_hooks_see_each_replayed_operation_and_every_virtual_context_run():
    """The interpreter's pure ``observed`` and ``virtual_events`` lists (filled only
    when an engine with hooks asks): every recorded operation the workflow reaches on
    replay, once per invocation and in order, including a step the fast path replays;
    each run of a virtual context's body, with how it ended."""
    from durable_gen import Hooks, InMemoryEngine

    seen: list[tuple[Any, ...]] = []
    caught: list[str] = []

    class Recorder(Hooks):
        def on_operation_replayed(self, execution_id: str, op: Any, *, changed: bool) -> None:
            seen.append(("replayed", op.name, changed))

        def on_virtual_context_start(self, execution_id: str, **kw: Any) -> None:
            seen.append(("virtual", kw["name"], kw["sub_type"]))

        def on_virtual_context_end(self, execution_id: str, **kw: Any) -> None:
            seen.append(("virtual end", kw["error"].type if kw["error"] else None))

        def on_invocation_start(self, execution_id: str, *, first: bool) -> None:
            seen.append(("invocation", first))

    def one() -> int:
        return 1

    def refuse() -> None:
        raise ValueError("no")

    def group() -> Any:
        return (yield Step(one, name="in-group"))

    def failing_group() -> Any:
        yield Step(refuse, name="refused", retry=RetryPolicy.none())

    def flow(event: Any) -> Any:
        a = yield Step(one, name="a")
        yield Wait(seconds=5, name="pause")
        b = yield ChildContext(group, name="grouping", virtual=True)
        try:
            yield ChildContext(failing_group, name="failing", virtual=True)
        except Exception as e:
            caught.append(type(e).__name__)
        return a + b

    run = InMemoryEngine(hooks=[Recorder()]).run(flow, None)
    assert run.result == 2
    assert caught == ["ChildContextError"]
    second = seen.index(("invocation", False))
    assert seen[:second] == [("invocation", True)]
    later = seen[second + 1 :]
    assert [e for e in later if e[0] == "replayed"] == [
        ("replayed", "a", False),  # recorded by the first invocation, unchanged since
        ("replayed", "pause", True),  # the wait elapsed while suspended
    ]
    assert [e for e in later if e[0] != "replayed"] == [
        ("virtual", "grouping", "RunInChildContext"),
        ("virtual end", None),
        ("virtual", "failing", "RunInChildContext"),
        ("virtual end", "aws_durable_execution_sdk_python.exceptions.StepError"),
    ]
