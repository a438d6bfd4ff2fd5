"""The log model: wire shapes, ids, and rejection of malformed input."""

import hashlib
import re

import attrs
import pytest

from durable_gen import (
    CorruptLogError,
    ErrorObject,
    InMemoryEngine,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Step,
    Wait,
    operation_id,
)


def test_ids_match_aws_scheme():
    assert operation_id(None, 1) == hashlib.blake2b(b"1").hexdigest()[:64]
    assert operation_id(None, 1).startswith("1ced8f5b")  # seen on the real service
    parent = operation_id(None, 3)
    assert operation_id(parent, 2) == hashlib.blake2b(f"{parent}-2".encode()).hexdigest()[:64]
    # memoized root ids equal freshly computed ones, beyond the cache too
    for n in (0, 5, 40_000):
        assert operation_id(None, n) == hashlib.blake2b(str(n).encode()).hexdigest()[:64]


def test_operation_wire_round_trip_for_every_type():
    ops = [
        Operation(
            id="e",
            type=OperationType.EXECUTION,
            status=OperationStatus.STARTED,
            start_timestamp=1,
            input_payload='{"a":1}',
        ),
        Operation(
            id="s",
            type=OperationType.STEP,
            status=OperationStatus.PENDING,
            start_timestamp=1,
            parent_id="c",
            name="n",
            sub_type="Step",
            attempt=2,
            next_attempt_timestamp=9,
            error=ErrorObject(type="E", message="m", stack_trace=("a", "b")),
        ),
        Operation(
            id="w",
            type=OperationType.WAIT,
            status=OperationStatus.STARTED,
            start_timestamp=1,
            sub_type="Wait",
            scheduled_end_timestamp=5,
        ),
        Operation(
            id="c",
            type=OperationType.CONTEXT,
            status=OperationStatus.SUCCEEDED,
            start_timestamp=1,
            end_timestamp=2,
            sub_type="RunInChildContext",
            result="",
            replay_children=True,
        ),
        Operation(
            id="k",
            type=OperationType.CALLBACK,
            status=OperationStatus.STARTED,
            start_timestamp=1,
            callback_id="cb",
        ),
        Operation(
            id="i",
            type=OperationType.CHAINED_INVOKE,
            status=OperationStatus.SUCCEEDED,
            start_timestamp=1,
            result='"r"',
        ),
    ]
    for op in ops:
        assert Operation.from_dict(op.to_dict()) == op
    d = ops[1].to_dict()
    assert d["StepDetails"] == {
        "Attempt": 2,
        "NextAttemptTimestamp": 9,
        "Error": {"ErrorType": "E", "ErrorMessage": "m", "StackTrace": ["a", "b"]},
    }
    assert ops[2].to_dict()["WaitDetails"] == {"ScheduledEndTimestamp": 5}
    assert ops[3].to_dict()["ContextDetails"] == {"ReplayChildren": True, "Result": ""}


def test_update_wire_shape():
    u = OperationUpdate(
        id="x",
        type=OperationType.STEP,
        action=OperationAction.RETRY,
        parent_id="p",
        name="n",
        sub_type="Step",
        error=ErrorObject(type="E"),
        next_attempt_delay_seconds=3,
        args_digest="abcd",
    )
    assert u.to_dict() == {
        "Id": "x",
        "Type": "STEP",
        "Action": "RETRY",
        "ParentId": "p",
        "Name": "n",
        "SubType": "Step",
        "Error": {"ErrorType": "E"},
        "StepOptions": {"NextAttemptDelaySeconds": 3},
    }
    assert OperationUpdate.from_dict(u.to_dict(local_extensions=True)) == u
    w = OperationUpdate(
        id="w", type=OperationType.WAIT, action=OperationAction.START, wait_seconds=30
    )
    assert w.to_dict()["WaitOptions"] == {"WaitSeconds": 30}


def test_engine_log_survives_a_wire_round_trip():
    def wf(_):
        yield Step(lambda: {"x": (1, 2)}, name="s")
        yield Wait(seconds=3)
        return 1

    result = InMemoryEngine().run(wf)
    for op in result.operations:
        assert Operation.from_dict(op.to_dict()) == op


def test_rest_timestamps_in_seconds_are_accepted():
    op = Operation.from_dict(
        {"Id": "a", "Type": "WAIT", "Status": "STARTED", "StartTimestamp": 1.5}
    )
    assert op.start_timestamp == 1500


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "an Operation must be a JSON object, got []"),
        ({"Type": "STEP"}, "an Operation needs a non-empty string Id, got None"),
        (
            {"Id": "a", "Type": "TASK", "Status": "STARTED"},
            "operation 'a' has unknown Type 'TASK'; expected one of EXECUTION, CONTEXT, STEP, "
            "WAIT, CALLBACK, CHAINED_INVOKE",
        ),
        (
            {"Id": "a", "Type": "STEP", "Status": "DONE"},
            "operation 'a' has unknown Status 'DONE'; expected one of STARTED, PENDING, READY, "
            "SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, STOPPED",
        ),
        (  # not a string, and not hashable either: still the same clear error
            {"Id": "a", "Type": {}, "Status": "STARTED"},
            "operation 'a' has unknown Type {}; expected one of EXECUTION, CONTEXT, STEP, "
            "WAIT, CALLBACK, CHAINED_INVOKE",
        ),
        (
            {"Id": "a", "Type": "STEP", "Status": ["DONE"]},
            "operation 'a' has unknown Status ['DONE']; expected one of STARTED, PENDING, "
            "READY, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, STOPPED",
        ),
        (
            {"Id": "a", "Type": "STEP", "Status": "STARTED", "Name": 3},
            "operation 'a': Name must be a string, got 3",
        ),
        (
            {"Id": "a", "Type": "STEP", "Status": "STARTED", "StepDetails": {"Attempt": "2"}},
            "operation 'a': Attempt must be an integer, got '2'",
        ),
        (
            {"Id": "a", "Type": "STEP", "Status": "STARTED", "StartTimestamp": "yesterday"},
            "operation 'a': StartTimestamp must be a timestamp, got 'yesterday'",
        ),
    ],
)
def test_malformed_operations_are_rejected(raw, message):
    with pytest.raises(CorruptLogError, match="^" + re.escape(message) + "$"):
        Operation.from_dict(raw)


# -- positional factories (the per-step records built without keyword parsing) -------


def test_new_step_update_equals_keyword_construction():
    from durable_gen._core.log import new_step_update

    kw = OperationUpdate(
        id="a1",
        type=OperationType.STEP,
        action=OperationAction.SUCCEED,
        parent_id="p",
        name="s",
        sub_type="Step",
        payload="12",
        args_digest="0badf00d",
    )
    pos = new_step_update(
        "a1", OperationType.STEP, OperationAction.SUCCEED, "p", "s", "Step", "12", "0badf00d"
    )
    assert pos == kw
    assert hash(pos) == hash(kw)
    assert repr(pos) == repr(kw)
    assert type(pos) is OperationUpdate
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        pos.payload = "13"  # type: ignore[misc]


def test_new_started_op_equals_keyword_construction():
    from durable_gen._core.log import new_started_op

    kw = Operation(
        id="a1",
        type=OperationType.STEP,
        status=OperationStatus.STARTED,
        start_timestamp=5,
        name="s",
        sub_type="Step",
    )
    pos = new_started_op(
        "a1", OperationType.STEP, OperationStatus.STARTED, 5, None, "s", "Step", None
    )
    assert pos == kw
    assert pos.to_dict() == kw.to_dict()
    assert pos.end_timestamp is None
    assert pos.attempt is None


def test_positional_factory_refuses_bad_fields_and_falls_back_for_validators():
    from durable_gen._core.log import positional_factory

    with pytest.raises(TypeError, match="no fields"):
        positional_factory(OperationUpdate, ("id", "nope"))
    with pytest.raises(TypeError, match="have no default"):
        positional_factory(OperationUpdate, ("id", "type"))  # action is required

    @attrs.frozen(slots=True)
    class Checked:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))
        y: int = 0

    make = positional_factory(Checked, ("x",))
    assert make(3) == Checked(3)
    with pytest.raises(TypeError):
        make("3")  # the validator still runs: the keyword constructor is used


def test_records_are_built_as_a_twin_and_switched_to_their_class():
    from durable_gen._core.log import (
        _builder_class,
        dict_evolve,
        new_started_op,
    )

    for cls in (Operation, OperationUpdate):
        twin = _builder_class(cls)
        assert twin is not None
        assert twin is not cls
        assert twin.__slots__ == cls.__slots__
    op = new_started_op(
        "a1", OperationType.STEP, OperationStatus.STARTED, 5, None, "s", "Step", None
    )
    assert type(op) is Operation  # the switch happened: no builder instance escapes
    evolved = dict_evolve(Operation)(op, {"status": OperationStatus.SUCCEEDED, "result": "1"})
    assert type(evolved) is Operation
    assert evolved == attrs.evolve(op, status=OperationStatus.SUCCEEDED, result="1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        evolved.result = "2"  # type: ignore[misc]


def test_a_class_whose_layout_refuses_the_switch_is_built_slot_by_slot():
    from durable_gen._core.log import (
        _builder_class,
        positional_evolve,
        positional_factory,
    )

    @attrs.frozen(slots=True)  # a __weakref__ slot after the fields: no compatible twin
    class WithWeakref:
        x: int
        y: str | None = None

    assert "__weakref__" in WithWeakref.__slots__
    assert _builder_class(WithWeakref) is None
    make = positional_factory(WithWeakref, ("x",))
    built = make(3)
    assert type(built) is WithWeakref
    assert built == WithWeakref(3)
    assert positional_evolve(WithWeakref, ("y",))(built, "b") == WithWeakref(3, "b")


def test_positional_evolve_equals_attrs_evolve():
    from durable_gen._core.log import positional_evolve

    op = Operation(
        id="a1",
        type=OperationType.STEP,
        status=OperationStatus.STARTED,
        start_timestamp=5,
        parent_id="p",
        name="s",
        sub_type="Step",
        attempt=2,
        args_digest="0badf00d",
    )
    evolve = positional_evolve(Operation, ("status", "end_timestamp", "result"))
    new = evolve(op, OperationStatus.SUCCEEDED, 9, "12")
    assert new == attrs.evolve(op, status=OperationStatus.SUCCEEDED, end_timestamp=9, result="12")
    assert op.status is OperationStatus.STARTED  # the original is untouched
    with pytest.raises(TypeError, match="no fields"):
        positional_evolve(Operation, ("status", "nope"))
