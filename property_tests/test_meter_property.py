"""The meter agrees with counts derived independently from the engine's checkpoint updates.

For generated workflows mixing every operation kind (run with crashes after random
checkpoints too), the durable operations the meter reports -- in total and per
row -- equal the ones derived here straight from ``store.updates(...)`` by the
table's rules, written per operation *type* and action rather than per metering
kind; the bytes equal the sum of every update's payload and error plus what the
service recorded (input, output, callback payloads); and the meter rebuilt from
the history alone equals the one built from the updates.
"""

import json
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from durable_gen import OperationAction, OperationType
from durable_gen._engine.meter import meter_execution

from .programs import Crash, CrashingStore, build_workflow, drive, new_engine, ops_strategy

START = OperationAction.START
ENDED = {OperationAction.RETRY, OperationAction.SUCCEED, OperationAction.FAIL}
COMPLETED = {OperationAction.SUCCEED, OperationAction.FAIL}
COUNTED_AT_START = {"Parallel", "ParallelBranch", "Map", "MapIteration", "WaitForCallback"}
PROMISES = {"All", "Any", "Race", "AllSettled"}


class HistoryOnly:
    def __init__(self, store):
        self._store = store

    def history(self, execution_id):
        return self._store.history(execution_id)

    def load(self, execution_id):
        return self._store.load(execution_id)


def derive_counts(updates) -> Counter:
    """Durable operations per table row, from the updates alone."""
    parent_sub_type = {}  # context id -> its SubType, from the START that created it
    for u in updates:
        if u.type is OperationType.CONTEXT and u.action is START:
            parent_sub_type[u.id] = u.sub_type
    rows = Counter({"Execution": 1})
    for u in updates:
        under_wfcb = parent_sub_type.get(u.parent_id) == "WaitForCallback"
        if u.type is OperationType.STEP:
            if u.action in ENDED:
                if under_wfcb:
                    rows["WaitForCallback"] += 1
                elif u.sub_type == "WaitForCondition":
                    rows["WaitForCondition"] += 1
                else:
                    rows["Step"] += 1
        elif u.type is OperationType.WAIT:
            rows["Wait"] += u.action is START
        elif u.type is OperationType.CALLBACK:
            rows["WaitForCallback" if under_wfcb else "CreateCallback"] += u.action is START
        elif u.type is OperationType.CHAINED_INVOKE:
            rows["ChainedInvoke"] += u.action is START
        elif u.type is OperationType.CONTEXT:
            if u.sub_type in COUNTED_AT_START and u.action is START:
                rows["WaitForCallback" if u.sub_type == "WaitForCallback" else "Parallel/Map"] += 1
            elif u.sub_type not in COUNTED_AT_START and u.action in COMPLETED:
                # a child context of the workflow's own sub_type is a RunInChildContext
                rows["Promise" if u.sub_type in PROMISES else "RunInChildContext"] += 1
    return +rows


def derive_bytes(store, execution_id) -> int:
    """Every update's payload and error, plus what the service recorded itself."""
    total = 0
    for u in store.updates(execution_id):
        total += len((u.payload or "").encode())
        if u.error is not None and u.error.to_dict():
            total += len(json.dumps(u.error.to_dict(), separators=(",", ":")).encode())
    ops = store.load(execution_id)
    total += len(ops[execution_id].input_payload.encode())
    status, result, _ = store.status(execution_id)
    assert status == "SUCCEEDED"
    total += len(result.encode())
    for op in ops.values():  # callbacks completed by drive(): their payload, as sent
        if op.type is OperationType.CALLBACK and op.result is not None:
            total += len(op.result.encode())
    return total


@given(
    program=ops_strategy(),
    crash_after=st.sets(st.integers(1, 40), max_size=3),
)
def test_meter_counts_equal_counts_derived_from_updates(program, crash_after):
    store = CrashingStore(crash_after)
    engine = new_engine(store)
    workflow = build_workflow(program)
    ex = engine.start(workflow, {}, execution_id="meter-prop")
    result = drive(engine, workflow, ex, crash=Crash)
    assert result.status == "SUCCEEDED", result.error

    meter = meter_execution(store, ex)
    expected = derive_counts(store.updates(ex))
    got = Counter({r.kind.value: r.operations for r in meter.rows})
    got["Promise"] = got.pop("Promise helpers", 0)
    assert +got == expected
    assert meter.operations == sum(expected.values())

    assert meter.bytes_persisted == derive_bytes(store, ex)
    assert meter_execution(HistoryOnly(store), ex).rows == meter.rows
