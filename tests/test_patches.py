"""Patch markers: one code path for executions started before a change and after it.

``if (yield Patched("tax")): new else: old``: an execution that recorded what the old
code did at that point replays the old branch; one that gets there for the first
time records the marker and takes the new branch; ``Deprecated("tax")`` replays the
marker once the old branch is gone.
"""

from __future__ import annotations

import re

import pytest

from durable_gen import (
    ChildContext,
    CreateCallback,
    Deprecated,
    InMemoryEngine,
    NonDeterminismError,
    Patched,
    SqliteEngine,
    Step,
    ValidationError,
    VirtualClock,
    Wait,
)
from durable_gen.testing import check_replay_compatible


def charge(amount):
    return {"charged": amount}


def charge_with_tax(amount):
    return {"charged": amount, "tax": amount // 10}


def v1(event):
    handle = yield CreateCallback("approval", timeout=3600)
    yield handle.result()
    return (yield Step(charge, event["amount"], name="charge"))


def v2_unpatched(event):  # the incompatible change
    handle = yield CreateCallback("approval", timeout=3600)
    yield handle.result()
    return (yield Step(charge_with_tax, event["amount"], name="charge-tax"))


def v2(event):  # the same change behind a patch marker
    handle = yield CreateCallback("approval", timeout=3600)
    yield handle.result()
    if (yield Patched("tax")):
        return (yield Step(charge_with_tax, event["amount"], name="charge-tax"))
    return (yield Step(charge, event["amount"], name="charge"))


def v3(event):  # once no execution needs the old branch
    handle = yield CreateCallback("approval", timeout=3600)
    yield handle.result()
    yield Deprecated("tax")
    return (yield Step(charge_with_tax, event["amount"], name="charge-tax"))


def answer(engine, execution_id):
    cb = next(op for op in engine.store.load(execution_id).values() if op.callback_id)
    engine.store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload='"ok"')


def begin(engine, workflow, input_value=None):
    """Start an execution and run it until it waits (without waiting for the callback)."""
    ex = engine.start(workflow, input_value)
    engine.resume(workflow, ex, wait=False)
    return ex


def markers(engine, execution_id):
    return [
        (op.name, op.status.value)
        for op in engine.store.load(execution_id).values()
        if op.sub_type == "Patch"
    ]


@pytest.fixture(params=["memory", "sqlite"])
def engine(request, tmp_path):
    if request.param == "memory":
        return InMemoryEngine()
    return SqliteEngine(tmp_path / "p.db", clock=VirtualClock())


def test_old_executions_take_the_old_branch_new_ones_the_new(engine):
    # v1 executions that passed the point before the change (charged already) and
    # ones still waiting on their callback
    charged = begin(engine, v1, {"amount": 100})
    assert engine.result(charged).status == "RUNNING"
    answer(engine, charged)
    assert engine.resume(v1, charged, wait=False).result == {"charged": 100}
    waiting = [begin(engine, v1, {"amount": 10 * i}) for i in range(1, 4)]

    # the incompatible change: every waiting execution diverges ...
    for ex in waiting:
        assert check_replay_compatible(v2_unpatched, engine.store.load(ex)).compatible
    # (they have not reached the change yet: compatible) -- but one that did diverges
    assert not check_replay_compatible(v2_unpatched, engine.store.load(charged)).compatible
    # ... and behind the marker every one is compatible; the one that charged under
    # v1 still needs the old branch, the waiting ones will take the new one
    for ex in [charged, *waiting]:
        result = check_replay_compatible(v2, engine.store.load(ex))
        assert result.compatible, result.message
        assert result.old_paths == (("tax",) if ex == charged else ())
    assert check_replay_compatible(v2, engine.store.load(charged)).message == (
        "compatible: replays its 2 recorded operations; takes the old branch of patch 'tax'"
    )

    # the deploy: the waiting executions resume on v2 and take the new branch
    for ex in waiting:
        answer(engine, ex)
        assert engine.resume(v2, ex).status == "SUCCEEDED"
    assert [engine.result(ex).result for ex in waiting] == [
        {"charged": 10, "tax": 1},
        {"charged": 20, "tax": 2},
        {"charged": 30, "tax": 3},
    ]
    assert all(markers(engine, ex) == [("tax", "SUCCEEDED")] for ex in waiting)
    # the one that charged under v1 replays its old branch on v2, recording nothing new
    assert engine.resume(v2, charged).result == {"charged": 100}
    assert markers(engine, charged) == []
    # a new execution takes the new branch
    new = begin(engine, v2, {"amount": 50})
    answer(engine, new)
    assert engine.resume(v2, new).result == {"charged": 50, "tax": 5}
    assert markers(engine, new) == [("tax", "SUCCEEDED")]


def test_an_old_execution_replays_its_old_branch_step_by_step_without_running_it():
    runs = []

    def old(event):
        yield Step(lambda: runs.append("old") or 1, name="charge")
        yield Wait(seconds=10)
        return "old done"

    def new(event):
        if (yield Patched("p")):
            yield Step(lambda: runs.append("new") or 2, name="charge-new")
        else:
            yield Step(lambda: runs.append("old") or 1, name="charge")
        yield Wait(seconds=10)
        return "done"

    engine = InMemoryEngine()
    ex = engine.start(old)
    assert engine.resume(old, ex, wait=False).status == "RUNNING"
    assert check_replay_compatible(new, engine.store.load(ex)).old_paths == ("p",)
    engine.clock.advance(10)
    assert engine.resume(new, ex).result == "done"
    assert runs == ["old"]  # replayed, not run again
    assert markers(engine, ex) == []


def test_deprecated_replays_the_marker_and_new_executions_record_none():
    engine = InMemoryEngine()
    patched = begin(engine, v2, {"amount": 10})
    answer(engine, patched)
    assert engine.resume(v2, patched, wait=False).status == "SUCCEEDED"
    assert markers(engine, patched) == [("tax", "SUCCEEDED")]
    assert check_replay_compatible(v3, engine.store.load(patched)).compatible
    assert check_replay_compatible(v2, engine.store.load(patched)).old_paths == ()
    fresh = begin(engine, v3, {"amount": 20})
    answer(engine, fresh)
    assert engine.resume(v3, fresh).result == {"charged": 20, "tax": 2}
    assert markers(engine, fresh) == []


def test_dropping_the_marker_altogether_is_caught_as_a_divergence():
    engine = InMemoryEngine()
    ex = begin(engine, v2, {"amount": 10})
    answer(engine, ex)
    engine.resume(v2, ex)
    result = check_replay_compatible(v2_unpatched, engine.store.load(ex))
    assert not result.compatible
    assert "'tax'" in result.message  # the log recorded the marker there
    with pytest.raises(NonDeterminismError, match="the log recorded Patch 'tax'"):
        engine.invoke_once(v2_unpatched, ex)


def test_two_patches_at_one_point_each_decide_for_themselves():
    def wf(event):
        first = yield Patched("a")
        second = yield Patched("b")
        return [first, second]

    engine = InMemoryEngine()
    r = engine.run(wf)
    assert r.result == [True, True]
    assert markers(engine, r.execution_id) == [("a", "SUCCEEDED"), ("b", "SUCCEEDED")]
    # replayed: both markers found again, in order
    assert check_replay_compatible(wf, engine.store.load(r.execution_id)).compatible


@pytest.mark.parametrize(
    ("patch_id", "message"),
    [
        ("", "a patch id must be a non-empty str, got ''"),
        (3, "a patch id must be a non-empty str, got 3 (int)"),
        ("é", "name must be 1 to 256 printable ASCII characters"),
    ],
)
def test_a_patch_id_is_a_name(patch_id, message):
    for cls in (Patched, Deprecated):
        with pytest.raises(ValidationError, match=re.escape(message)):
            cls(patch_id)


def _values(workflow_first, workflow_then):
    """What ``workflow_then`` returns when it replays what ``workflow_first`` recorded
    before its Wait (the second invocation replays, the first records)."""
    engine = InMemoryEngine()
    ex = engine.start(workflow_first)
    assert engine.resume(workflow_first, ex, wait=False).status == "RUNNING"
    engine.clock.advance(5)
    return engine.resume(workflow_then, ex).result, markers(engine, ex)


def test_what_each_marker_yields_fresh_on_replay_and_against_an_old_log():
    def patched(event):
        value = yield Patched("x")
        yield Wait(seconds=5)
        if value:
            yield Step(lambda: "new", name="after")
        return value

    def deprecated(event):
        value = yield Deprecated("x")
        yield Wait(seconds=5)
        yield Step(lambda: "new", name="after")
        return value

    def old(event):
        yield Step(lambda: "old", name="s")
        yield Wait(seconds=5)
        return "old"

    def patched_over_old(event):
        value = yield Patched("x")
        yield Step(lambda: "new" if value else "old", name="n" if value else "s")
        yield Wait(seconds=5)
        return value

    # fresh: the marker is recorded, True; replayed after the wait: True again
    assert _values(patched, patched) == (True, [("x", "SUCCEEDED")])
    # against the log of the old code: False, nothing recorded
    assert _values(old, patched_over_old) == (False, [])
    # Deprecated replays a recorded marker, records none, and yields None either way
    assert _values(patched, deprecated) == (None, [("x", "SUCCEEDED")])
    assert _values(deprecated, deprecated) == (None, [])
    r = InMemoryEngine().run(patched_over_old)
    assert r.result is True
    assert [op.name for op in r.operations] == ["x", "n", None]  # marker, new step, wait


def test_the_marker_is_a_step_recorded_under_its_context_with_result_true():
    def kid(_):
        return (yield Patched("in-kid"))

    def wf(event):
        return (yield ChildContext(kid, None, name="kid"))

    engine = InMemoryEngine()
    r = engine.run(wf)
    assert r.result is True
    kid_op, marker = r.operations
    sent = [(u.action.value, u.parent_id) for u in engine.store.updates(r.execution_id)]
    # both updates name the context, as AWS's SDK sends a step's
    assert [s for s in sent if s[1] == kid_op.id] == [("START", kid_op.id), ("SUCCEED", kid_op.id)]
    assert (marker.type.value, marker.sub_type, marker.name) == ("STEP", "Patch", "in-kid")
    assert marker.parent_id == kid_op.id
    assert marker.result == "true"


def test_a_step_of_the_old_code_named_like_the_patch_is_not_its_marker():
    def old(event):
        yield Step(lambda: "old", name="tax")
        yield Wait(seconds=5)
        return "old"

    def new(event):
        if (yield Patched("tax")):
            return "new"
        yield Step(lambda: "old", name="tax")
        yield Wait(seconds=5)
        return "old path"

    assert _values(old, new) == ("old path", [])


def test_deprecated_in_a_new_execution_takes_no_position():
    def with_deprecated(event):
        yield Deprecated("gone")
        yield Step(lambda: 1, name="a")
        return (yield Step(lambda: 2, name="b"))

    def without(event):
        yield Step(lambda: 1, name="a")
        return (yield Step(lambda: 2, name="b"))

    ids = [
        [op.id for op in InMemoryEngine().run(wf).operations] for wf in (with_deprecated, without)
    ]
    assert ids[0] == ids[1]
