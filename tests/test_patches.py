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
    # ... and behind the marker every one is compatible
    for ex in [charged, *waiting]:
        result = check_replay_compatible(v2, engine.store.load(ex))
        assert result.compatible, result.message

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
