"""The operation examples: human approval (callback) and fan-out (Map + completion policy)."""

import json

from durable_gen import InMemoryEngine, OperationType
from examples import human_approval
from examples.fan_out import stock_check
from examples.human_approval import expense_flow


def pending_callback(engine, execution_id):
    ops = engine.store.load(execution_id).values()
    return next(op for op in ops if op.type is OperationType.CALLBACK)


def test_expense_is_paid_once_approved():
    engine = InMemoryEngine()
    human_approval.OUTBOX.clear()
    r = engine.run(expense_flow, {"amount": 120})
    assert r.status == "RUNNING"
    (mail,) = human_approval.OUTBOX
    cb = pending_callback(engine, r.execution_id)
    assert mail["callback_id"] == cb.callback_id
    engine.store.complete_callback(
        cb.callback_id, "succeed", engine.clock.now(), payload=json.dumps({"approved": True})
    )
    done = engine.resume(expense_flow, r.execution_id)
    assert done.result == {"status": "paid", "receipt": "paid 120"}
    assert len(human_approval.OUTBOX) == 1  # the request was sent once


def test_expense_expires_after_three_days():
    engine = InMemoryEngine()
    r = engine.run(expense_flow, {"amount": 5})
    engine.clock.advance(3 * 24 * 3600)
    assert engine.resume(expense_flow, r.execution_id).result == {"status": "expired"}


def test_fan_out_stops_at_three_answers():
    r = InMemoryEngine().run(stock_check, {"sku": "B-42"})
    assert r.result["reason"] == "MIN_SUCCESSFUL_REACHED"
    assert [a["warehouse"] for a in r.result["answers"]] == ["ams", "cdg", "dub"]
    assert r.result["failed"] == 1  # ber was down; fra and later were never needed
    names = {op.name for op in r.operations if op.sub_type == "MapIteration"}
    assert {"ams", "ber", "cdg", "dub"} <= names
    assert "zrh" not in names
