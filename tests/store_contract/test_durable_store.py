"""The durable store contract (``_contract.DurableStore``): durability, leases, fencing,
due work and the outside world's writes, on every store that processes share."""

from __future__ import annotations

import os
import time

import pytest

from durable_gen import (
    ErrorObject,
    ExecutionConflictError,
    LeaseHeldError,
    LeaseLostError,
    OperationAction,
    OperationStatus,
)
from durable_gen._stores import owners as _owners

from .test_engine_store import T0, started, step


def test_non_durable_updates_wait_for_the_next_durable_checkpoint(durable):
    store = started(durable)
    store.checkpoint("ex1", [step("a", OperationAction.START)], T0 + 1, durable=False)
    assert store.load("ex1")["a"].status is OperationStatus.STARTED  # this store sees it
    assert "a" not in durable.view().load("ex1")  # nobody else: not written yet
    store.checkpoint("ex1", [step("a", OperationAction.SUCCEED, payload="1")], T0 + 2, durable=True)
    assert durable.view().load("ex1")["a"].status is OperationStatus.SUCCEEDED
    kinds = [e["EventType"] for e in durable.view().history("ex1")]
    assert kinds == ["ExecutionStarted", "StepStarted", "StepSucceeded"]


def test_a_store_that_ends_without_closing_loses_only_non_durable_updates(durable):
    store = started(durable)
    store.checkpoint("ex1", [step("a", OperationAction.START)], T0 + 1, durable=True)
    store.checkpoint("ex1", [step("b", OperationAction.START)], T0 + 2, durable=False)
    # the process dies here: nothing closes the store; another view sees what was durable
    ops = durable.view().load("ex1")
    assert ops["a"].status is OperationStatus.STARTED
    assert "b" not in ops


def test_writing_needs_the_lease(durable):
    store = durable.view()
    store.create("ex1", "null", T0)
    with pytest.raises(
        LeaseLostError, match=r"^stopped advancing execution 'ex1': the lease was released$"
    ):
        store.checkpoint("ex1", [step("a", OperationAction.START)], T0, durable=True)
    assert "a" not in durable.view().load("ex1")


def test_a_live_holder_keeps_its_lease(durable):
    store = started(durable)
    other = durable.view()
    with pytest.raises(
        LeaseHeldError,
        match=rf"^execution 'ex1' is being advanced by another worker \(pid {os.getpid()} "
        r"on .+\); its lease expires at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$",
    ):
        other.acquire("ex1", T0)
    assert other.due(2**62) == []  # nor is it offered as due work
    store.release("ex1", T0 + 5)
    other.acquire("ex1", T0)  # released: free to take
    assert other.info("ex1").lease_owner == other.owner


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced(durable):
    a = durable.view(lease_seconds=0.05)
    b = durable.view()
    a.create("ex1", "null", T0)
    a.acquire("ex1", T0)
    a.checkpoint("ex1", [step("s", OperationAction.START)], T0 + 1, durable=False)
    time.sleep(0.1)
    b.acquire("ex1", T0 + 2)
    with pytest.raises(
        LeaseLostError,
        match=rf"^stopped advancing execution 'ex1': the lease passed to pid {os.getpid()} on ",
    ):
        a.checkpoint("ex1", [step("s", OperationAction.SUCCEED, payload="1")], T0 + 3, durable=True)
    assert "s" not in b.load("ex1")  # nothing of the fenced holder was written
    with pytest.raises(LeaseLostError):
        a.finish("ex1", "SUCCEEDED", T0 + 4, result="1")
    assert b.status("ex1")[0] == "RUNNING"
    assert not a.renew("ex1")
    assert b.renew("ex1")


def test_the_lease_of_a_dead_holder_is_taken_at_once_and_its_invocation_ended(durable):
    a = started(durable)
    a.begin_invocation("ex1", "req-1", T0 + 1)
    _owners.LIVE_OWNERS.discard(a.owner)  # "a" died without letting go
    b = durable.view()
    b.acquire("ex1", T0 + 50)
    last = b.history("ex1")[-1]
    assert last == {
        "EventType": "InvocationCompleted",
        "EventTimestamp": T0 + 50,
        "Id": "ex1",
        "InvocationCompletedDetails": {
            "StartTimestamp": T0 + 1,
            "EndTimestamp": T0 + 50,
            "RequestId": "req-1",
            "Error": {
                "Payload": {
                    "ErrorType": "Runtime.ExitError",
                    "ErrorMessage": f"the worker running this invocation (pid {os.getpid()} on "
                    f"{_owners.HOST}) stopped before it ended",
                },
                "Truncated": False,
            },
        },
        "EventId": 2,
    }


def test_stop_ends_the_execution_and_fences_its_holder(durable):
    store = started(durable)
    other = durable.view()
    other.stop("ex1", T0 + 10)
    with pytest.raises(ExecutionConflictError, match=r"^execution 'ex1' already ended STOPPED$"):
        other.stop("ex1", T0 + 11)
    with pytest.raises(
        LeaseLostError, match=r"^stopped advancing execution 'ex1': it ended STOPPED$"
    ):
        store.checkpoint("ex1", [step("a", OperationAction.START)], T0 + 12, durable=True)
    status, result, error = store.status("ex1")
    assert (status, result) == ("STOPPED", None)
    assert error == ErrorObject(type="ExecutionStopped", message="stopped by request")
    assert store.load("ex1")["ex1"].status is OperationStatus.STOPPED
    last = store.history("ex1")[-1]
    assert last["EventType"] == "ExecutionStopped"
    assert last["ExecutionStoppedDetails"]["Error"]["Payload"]["ErrorType"] == "ExecutionStopped"


def test_finish_records_when_it_ended(durable):
    store = started(durable)
    store.finish("ex1", "SUCCEEDED", T0 + 5, result='"done"')
    info = durable.view().info("ex1")
    assert (info.status, info.ended_at, info.wake_at) == ("SUCCEEDED", T0 + 5, None)


def test_due_work_and_listing(durable):
    store = durable.view()
    for i in range(3):
        store.create(f"e{i}", "null", T0 + i, target="mod:fn")
    store.acquire("e1", T0)
    store.release("e1", T0 + 10_000)
    other = durable.view()
    assert other.due(T0 + 5) == ["e0", "e2"]
    assert other.due(T0 + 20_000) == ["e0", "e2", "e1"]
    assert [e.id for e in other.executions()] == ["e2", "e1", "e0"]
    assert [e.id for e in other.executions(status="SUCCEEDED")] == []
    assert other.next_wake() == T0
    info = other.info("e1")
    assert (info.target, info.input, info.status, info.wake_at) == (
        "mod:fn",
        "null",
        "RUNNING",
        T0 + 10_000,
    )


def test_a_completed_callback_makes_the_execution_due_and_is_seen_by_its_holder(durable):
    from .test_engine_store import callback_start

    store = started(durable)
    store.checkpoint("ex1", [callback_start()], T0, durable=True)
    callback_id = store.load("ex1")["cb"].callback_id
    store.release("ex1", None)  # waits for the outside world: not due
    assert durable.view().due(2**62) == []
    outside = durable.view()
    outside.complete_callback(callback_id, "heartbeat", T0 + 1)
    assert durable.view().due(2**62) == []  # a heartbeat wakes nobody
    outside.complete_callback(callback_id, "succeed", T0 + 2, payload="yes")
    assert durable.view().due(T0 + 2) == ["ex1"]
    assert store.changed_elsewhere("ex1")
    assert store.load("ex1")["cb"].status is OperationStatus.SUCCEEDED


def test_release_all_lets_go_of_every_lease_and_leaves_the_executions_due(durable):
    store = durable.view()
    for ex in ("a", "b"):
        store.create(ex, "null", T0)
        store.acquire(ex, T0)
    assert durable.view().due(T0) == []
    store.release_all()
    assert durable.view().due(T0) == ["a", "b"]
    assert {durable.view().info(ex).lease_owner for ex in ("a", "b")} == {None}


def test_a_name_belongs_to_one_function(durable):
    from durable_gen import ExecutionAlreadyStartedError

    store = durable.view()
    assert store.create("ex1", "null", T0, target="mod:fn") is True
    assert durable.view().create("ex1", "null", T0, target="mod:fn") is False
    with pytest.raises(ExecutionAlreadyStartedError) as e:
        durable.view().create("ex1", "null", T0, target="mod:other")
    assert e.value.conflict == "function"
    assert durable.view().info("ex1").target == "mod:fn"
