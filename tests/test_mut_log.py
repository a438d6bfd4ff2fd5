"""Tests that kill the mutants of durable_gen/_core/log.py (issue 29, see mutation/).

They pin the exact wire dictionaries of ``Operation`` and ``OperationUpdate`` (every
field, which details object holds it, which keys are left out), their parsing back,
the exact message for each malformed field, the memoized root ids, the check of a
log's duplicate ids, and the generated constructors: equal to attrs' own, and
falling back to attrs (validators, converters, hooks, factories) where they must.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import attrs
import pytest

from durable_gen._core import log
from durable_gen._core.errors import CorruptLogError, ErrorObject
from durable_gen._core.log import (
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    dict_evolve,
    index_operations,
    operation_id,
    positional_evolve,
    positional_factory,
)

T = OperationType
ERR = ErrorObject(type="E", message="m")


def _raises(fn: Any, message: str) -> None:
    with pytest.raises(CorruptLogError) as info:
        fn()
    assert str(info.value) == message


# ------------------------------------------------------------------ Operation.to_dict


def _full(t: OperationType, **extra: Any) -> Operation:
    fields: dict[str, Any] = {
        "id": "a",
        "type": t,
        "status": OperationStatus.SUCCEEDED,
        "start_timestamp": 10,
        "parent_id": "p",
        "name": "n",
        "sub_type": "S",
        "end_timestamp": 20,
        "result": "r",
        "error": ERR,
        "attempt": 3,
        "next_attempt_timestamp": 30,
        "scheduled_end_timestamp": 40,
        "callback_id": "cb",
        "replay_children": True,
        "input_payload": "in",
        "args_digest": "dg",
        "function_name": "fn",
        "callback_timeout": 5,
        "callback_heartbeat_timeout": 6,
        "last_heartbeat": 7,
    }
    fields.update(extra)
    return Operation(**fields)


HEAD = {
    "Id": "a",
    "Status": "SUCCEEDED",
    "StartTimestamp": 10,
    "ParentId": "p",
    "Name": "n",
    "SubType": "S",
    "EndTimestamp": 20,
}
RESULT = {"Result": "r", "Error": {"ErrorType": "E", "ErrorMessage": "m"}}
EXT = {
    "X-DurableGen-ArgsDigest": "dg",
    "X-DurableGen-Callback": {
        "TimeoutSeconds": 5,
        "HeartbeatTimeoutSeconds": 6,
        "LastHeartbeat": 7,
    },
}
WIRE = {
    T.EXECUTION: {"ExecutionDetails": {"InputPayload": "in"}},
    T.STEP: {"StepDetails": {"Attempt": 3, "NextAttemptTimestamp": 30, **RESULT}},
    T.WAIT: {"WaitDetails": {"ScheduledEndTimestamp": 40}},
    T.CALLBACK: {"CallbackDetails": {"CallbackId": "cb", **RESULT}},
    T.CONTEXT: {"ContextDetails": {"ReplayChildren": True, **RESULT}},
    T.CHAINED_INVOKE: {
        "ChainedInvokeDetails": dict(RESULT),
        "X-DurableGen-Invoke": {"FunctionName": "fn", "InputPayload": "in"},
    },
}


@pytest.mark.parametrize("t", list(T))
def test_every_field_goes_under_the_details_object_of_its_type(t):
    op = _full(t)
    assert op.to_dict() == {"Type": t.value, **HEAD, **WIRE[t], **EXT}


def _wire_fields(t: OperationType) -> dict[str, Any]:
    """The fields of ``_full(t)`` that its wire shape carries (the rest is dropped)."""
    kept: dict[str, tuple[str, ...]] = {
        T.EXECUTION: ("input_payload",),
        T.STEP: ("attempt", "next_attempt_timestamp", "result", "error"),
        T.WAIT: ("scheduled_end_timestamp",),
        T.CALLBACK: ("callback_id", "result", "error"),
        T.CONTEXT: ("replay_children", "result", "error"),
        T.CHAINED_INVOKE: ("input_payload", "function_name", "result", "error"),
    }
    dropped = {
        "result",
        "error",
        "attempt",
        "next_attempt_timestamp",
        "scheduled_end_timestamp",
        "callback_id",
        "replay_children",
        "input_payload",
        "function_name",
    } - set(kept[t])
    return dict.fromkeys(dropped)


@pytest.mark.parametrize("t", list(T))
def test_every_field_reads_back_from_the_wire(t):
    op = _full(t)
    assert Operation.from_dict(op.to_dict()) == _full(t, **_wire_fields(t))


@pytest.mark.parametrize("t", list(T))
def test_a_bare_operation_has_empty_details_except_an_execution(t):
    op = Operation(id="a", type=t, status=OperationStatus.STARTED, start_timestamp=1)
    expected: dict[str, Any] = {
        "Id": "a",
        "Type": t.value,
        "Status": "STARTED",
        "StartTimestamp": 1,
    }
    if t is not T.EXECUTION:
        expected[log._DETAILS_KEY[t]] = {}
    assert op.to_dict() == expected
    assert Operation.from_dict(expected) == op


def test_the_local_invoke_record_is_written_when_either_half_is_set():
    base = {"id": "i", "type": T.CHAINED_INVOKE, "status": OperationStatus.STARTED}
    only_name = Operation(**base, start_timestamp=1, function_name="fn")
    assert only_name.to_dict()["X-DurableGen-Invoke"] == {
        "FunctionName": "fn",
        "InputPayload": None,
    }
    only_input = Operation(**base, start_timestamp=1, input_payload="{}")
    assert only_input.to_dict()["X-DurableGen-Invoke"] == {
        "FunctionName": None,
        "InputPayload": "{}",
    }
    assert Operation.from_dict(only_name.to_dict()) == only_name
    assert Operation.from_dict(only_input.to_dict()) == only_input


def test_the_local_invoke_record_belongs_to_chained_invokes_only():
    step = Operation(
        id="s",
        type=T.STEP,
        status=OperationStatus.STARTED,
        start_timestamp=1,
        function_name="fn",
        input_payload="{}",
    )
    assert "X-DurableGen-Invoke" not in step.to_dict()


@pytest.mark.parametrize(
    "fields",
    [
        {"callback_timeout": 5},
        {"callback_heartbeat_timeout": 6},
        {"last_heartbeat": 7},
    ],
)
def test_the_local_callback_record_is_written_when_any_of_its_fields_is_set(fields):
    op = Operation(
        id="k", type=T.CALLBACK, status=OperationStatus.STARTED, start_timestamp=1, **fields
    )
    assert op.to_dict()["X-DurableGen-Callback"] == {
        "TimeoutSeconds": fields.get("callback_timeout"),
        "HeartbeatTimeoutSeconds": fields.get("callback_heartbeat_timeout"),
        "LastHeartbeat": fields.get("last_heartbeat"),
    }
    assert Operation.from_dict(op.to_dict()) == op


# ------------------------------------------------------------------ Operation.from_dict


def test_a_missing_start_timestamp_reads_as_zero():
    op = Operation.from_dict({"Id": "a", "Type": "WAIT", "Status": "STARTED"})
    assert op.start_timestamp == 0


def test_botocore_datetimes_are_read_as_epoch_milliseconds():
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    op = Operation.from_dict(
        {
            "Id": "a",
            "Type": "STEP",
            "Status": "PENDING",
            "StartTimestamp": when,
            "StepDetails": {"NextAttemptTimestamp": 2.5},
        }
    )
    assert op.start_timestamp == 1704164645678
    assert op.next_attempt_timestamp == 2500


OP = {"Id": "a", "Status": "STARTED"}


@pytest.mark.parametrize(
    ("t", "where", "key", "value", "kind"),
    [
        ("STEP", None, "ParentId", 1, "a string"),
        ("STEP", None, "Name", 1, "a string"),
        ("STEP", None, "SubType", 1, "a string"),
        ("STEP", None, "X-DurableGen-ArgsDigest", 1, "a string"),
        ("STEP", None, "StartTimestamp", "x", "a timestamp"),
        ("STEP", None, "EndTimestamp", "x", "a timestamp"),
        ("STEP", "StepDetails", "Result", 1, "a string"),
        ("STEP", "StepDetails", "Attempt", "1", "an integer"),
        ("STEP", "StepDetails", "NextAttemptTimestamp", "x", "a timestamp"),
        ("WAIT", "WaitDetails", "ScheduledEndTimestamp", "x", "a timestamp"),
        ("CALLBACK", "CallbackDetails", "CallbackId", 1, "a string"),
        ("CONTEXT", "ContextDetails", "ReplayChildren", "yes", "true or false"),
        ("EXECUTION", "ExecutionDetails", "InputPayload", 1, "a string"),
        ("CHAINED_INVOKE", "X-DurableGen-Invoke", "FunctionName", 1, "a string"),
        ("CHAINED_INVOKE", "X-DurableGen-Invoke", "InputPayload", 1, "a string"),
        ("CALLBACK", "X-DurableGen-Callback", "TimeoutSeconds", "1", "an integer"),
        ("CALLBACK", "X-DurableGen-Callback", "HeartbeatTimeoutSeconds", "1", "an integer"),
        ("CALLBACK", "X-DurableGen-Callback", "LastHeartbeat", "1", "an integer"),
    ],
)
def test_each_malformed_operation_field_is_named(t, where, key, value, kind):
    raw: dict[str, Any] = {**OP, "Type": t}
    if where is None:
        raw[key] = value
    else:
        raw[where] = {key: value}
    _raises(
        lambda: Operation.from_dict(raw),
        f"operation 'a': {key} must be {kind}, got {value!r}",
    )


def test_a_long_unknown_type_or_status_is_cut_to_40_characters():
    long = "X" * 50
    shown = repr(long)[:37] + "..."
    _raises(
        lambda: Operation.from_dict({**OP, "Type": long}),
        f"operation 'a' has unknown Type {shown}; expected one of EXECUTION, CONTEXT, "
        "STEP, WAIT, CALLBACK, CHAINED_INVOKE",
    )
    _raises(
        lambda: Operation.from_dict({"Id": "a", "Type": "STEP", "Status": long}),
        f"operation 'a' has unknown Status {shown}; expected one of STARTED, PENDING, "
        "READY, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, STOPPED",
    )


@pytest.mark.parametrize("op_id", ["", 5, None])
def test_an_operation_id_must_be_a_non_empty_string(op_id):
    _raises(
        lambda: Operation.from_dict({"Id": op_id, "Type": "STEP", "Status": "STARTED"}),
        f"an Operation needs a non-empty string Id, got {op_id!r}",
    )


@pytest.mark.parametrize("key", ["X-DurableGen-Invoke", "X-DurableGen-Callback"])
def test_a_local_extension_that_is_not_an_object_is_rejected(key):
    _raises(
        lambda: Operation.from_dict({**OP, "Type": "CALLBACK", key: ["x"]}),
        "operation 'a': malformed local extension fields",
    )


def test_details_that_are_not_an_object_are_rejected():
    _raises(
        lambda: Operation.from_dict({**OP, "Type": "STEP", "StepDetails": ["x"]}),
        "operation 'a': StepDetails must be an object",
    )


def test_an_operation_that_is_not_a_mapping_is_rejected():
    _raises(lambda: Operation.from_dict("x"), "an Operation must be a JSON object, got 'x'")


# ------------------------------------------------------------------ OperationUpdate


def _update(**extra: Any) -> OperationUpdate:
    fields: dict[str, Any] = {
        "id": "u",
        "type": T.CALLBACK,
        "action": OperationAction.START,
        "parent_id": "p",
        "name": "n",
        "sub_type": "S",
        "payload": "pl",
        "error": ERR,
        "next_attempt_delay_seconds": 1,
        "wait_seconds": 2,
        "callback_timeout_seconds": 3,
        "callback_heartbeat_timeout_seconds": 4,
        "function_name": "fn",
        "tenant_id": "tn",
        "replay_children": False,
        "args_digest": "dg",
    }
    fields.update(extra)
    return OperationUpdate(**fields)


UPDATE_WIRE = {
    "Id": "u",
    "Type": "CALLBACK",
    "Action": "START",
    "ParentId": "p",
    "Name": "n",
    "SubType": "S",
    "Payload": "pl",
    "Error": {"ErrorType": "E", "ErrorMessage": "m"},
    "StepOptions": {"NextAttemptDelaySeconds": 1},
    "WaitOptions": {"WaitSeconds": 2},
    "CallbackOptions": {"TimeoutSeconds": 3, "HeartbeatTimeoutSeconds": 4},
    "ChainedInvokeOptions": {"FunctionName": "fn", "TenantId": "tn"},
    "ContextOptions": {"ReplayChildren": False},
}


def test_every_update_field_has_its_wire_key_and_reads_back():
    u = _update()
    assert u.to_dict() == UPDATE_WIRE
    wire = u.to_dict(local_extensions=True)
    assert wire == {**UPDATE_WIRE, "X-DurableGen-ArgsDigest": "dg"}
    assert OperationUpdate.from_dict(wire) == u
    assert OperationUpdate.from_dict(UPDATE_WIRE) == _update(args_digest=None)


def test_a_bare_update_has_only_its_id_type_and_action():
    u = OperationUpdate(id="u", type=T.STEP, action=OperationAction.SUCCEED)
    assert u.to_dict(local_extensions=True) == {"Id": "u", "Type": "STEP", "Action": "SUCCEED"}
    assert OperationUpdate.from_dict(u.to_dict()) == u


def test_callback_options_go_with_a_callback_start_only_and_default_to_zero():
    start = OperationUpdate(id="u", type=T.CALLBACK, action=OperationAction.START)
    assert start.to_dict()["CallbackOptions"] == {"TimeoutSeconds": 0, "HeartbeatTimeoutSeconds": 0}
    for t, action in [(T.CALLBACK, OperationAction.SUCCEED), (T.STEP, OperationAction.START)]:
        other = OperationUpdate(id="u", type=t, action=action, callback_timeout_seconds=3).to_dict()
        assert "CallbackOptions" not in other


def test_invoke_options_leave_out_a_missing_tenant():
    u = OperationUpdate(
        id="u", type=T.CHAINED_INVOKE, action=OperationAction.START, function_name="fn"
    )
    assert u.to_dict()["ChainedInvokeOptions"] == {"FunctionName": "fn"}


@pytest.mark.parametrize(
    ("where", "key", "value", "kind"),
    [
        (None, "ParentId", 1, "a string"),
        (None, "Name", 1, "a string"),
        (None, "SubType", 1, "a string"),
        (None, "Payload", 1, "a string"),
        (None, "X-DurableGen-ArgsDigest", 1, "a string"),
        ("StepOptions", "NextAttemptDelaySeconds", "1", "an integer"),
        ("WaitOptions", "WaitSeconds", "1", "an integer"),
        ("CallbackOptions", "TimeoutSeconds", "1", "an integer"),
        ("CallbackOptions", "HeartbeatTimeoutSeconds", "1", "an integer"),
        ("ChainedInvokeOptions", "FunctionName", 1, "a string"),
        ("ChainedInvokeOptions", "TenantId", 1, "a string"),
        ("ContextOptions", "ReplayChildren", 1, "true or false"),
    ],
)
def test_each_malformed_update_field_is_named(where, key, value, kind):
    raw: dict[str, Any] = {"Id": "u", "Type": "STEP", "Action": "START"}
    if where is None:
        raw[key] = value
    else:
        raw[where] = {key: value}
    _raises(
        lambda: OperationUpdate.from_dict(raw),
        f"operation 'u': {key} must be {kind}, got {value!r}",
    )


@pytest.mark.parametrize(
    "key",
    ["StepOptions", "WaitOptions", "CallbackOptions", "ChainedInvokeOptions", "ContextOptions"],
)
def test_update_options_that_are_not_an_object_are_named(key):
    _raises(
        lambda: OperationUpdate.from_dict({"Id": "u", "Type": "STEP", "Action": "START", key: 7}),
        f"update 'u': {key} must be an object, got 7",
    )


def test_malformed_updates_are_rejected_with_their_messages():
    _raises(
        lambda: OperationUpdate.from_dict(["x"]),
        "an OperationUpdate must be a JSON object, got ['x']",
    )
    _raises(
        lambda: OperationUpdate.from_dict({"Id": 5, "Type": "STEP", "Action": "START"}),
        "an OperationUpdate needs a string Id, got 5",
    )
    _raises(
        lambda: OperationUpdate.from_dict({"Id": "u", "Type": "STEP", "Action": "GO"}),
        "update 'u': 'GO' is not a valid OperationAction",
    )


# ------------------------------------------------------------------ ids and indexes


def _blake(text: str) -> str:
    return hashlib.blake2b(text.encode()).hexdigest()[:64]


def test_root_ids_are_right_past_the_memo_and_the_memo_stays_right():
    first_uncached = len(log._ROOT_IDS)
    # asking for a later id first must not store it in the slot of an earlier one
    assert operation_id(None, first_uncached + 5) == _blake(str(first_uncached + 5))
    for n in range(first_uncached + 10):
        assert operation_id(None, n) == _blake(str(n))
    for n in range(first_uncached + 10):
        assert operation_id(None, n) == _blake(str(n))


def test_index_operations_keys_by_id_and_rejects_two_different_ones():
    a = Operation(id="a", type=T.STEP, status=OperationStatus.STARTED, start_timestamp=1)
    b = Operation(id="b", type=T.WAIT, status=OperationStatus.STARTED, start_timestamp=2)
    assert index_operations([a, b, a]) == {"a": a, "b": b}
    assert index_operations([]) == {}
    a2 = attrs.evolve(a, status=OperationStatus.SUCCEEDED)
    _raises(
        lambda: index_operations([a, b, a2]),
        "the log holds two different operations with id 'a'",
    )


# ------------------------------------------------------------------ generated constructors


def test_generated_constructors_build_what_attrs_builds():
    make = positional_factory(OperationUpdate, ("id", "type", "action", "payload"))
    u = make("u", T.STEP, OperationAction.SUCCEED, "1")
    assert u == OperationUpdate(id="u", type=T.STEP, action=OperationAction.SUCCEED, payload="1")
    assert type(u) is OperationUpdate
    op = _full(T.STEP)
    evolve = dict_evolve(Operation)
    assert evolve(op, {"status": OperationStatus.FAILED, "attempt": 4}) == attrs.evolve(
        op, status=OperationStatus.FAILED, attempt=4
    )
    assert evolve(op, {}) == op
    pevolve = positional_evolve(Operation, ("status", "result"))
    assert pevolve(op, OperationStatus.PENDING, None) == attrs.evolve(
        op, status=OperationStatus.PENDING, result=None
    )
    with pytest.raises(TypeError):
        make("u", T.STEP, OperationAction.SUCCEED, "1", "extra")


def test_generated_constructors_reject_unknown_fields_and_missing_required_ones():
    with pytest.raises(TypeError, match=r"^OperationUpdate has no fields \['nope'\]$"):
        positional_factory(OperationUpdate, ("id", "nope"))
    with pytest.raises(TypeError, match=r"^Operation has no fields \['nope'\]$"):
        positional_evolve(Operation, ("nope",))
    with pytest.raises(
        TypeError, match=r"^OperationUpdate fields \['type', 'action'\] have no default: pass them$"
    ):
        positional_factory(OperationUpdate, ("id",))


def _positive(instance: Any, attribute: Any, value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0")


@attrs.frozen(kw_only=True)
class Validated:
    a: int = attrs.field(validator=_positive)
    b: int = 0


@attrs.frozen(kw_only=True)
class Converted:
    a: int = attrs.field(converter=int)
    b: int = 0


@attrs.frozen(kw_only=True)
class WithFactory:
    a: int
    items: list[int] = attrs.field(factory=list)


calls: list[str] = []


@attrs.frozen(kw_only=True)
class PostInit:
    a: int
    b: int = 0

    def __attrs_post_init__(self) -> None:
        calls.append(f"post {self.a}")


@attrs.frozen(kw_only=True)
class PreInit:
    a: int
    b: int = 0

    def __attrs_pre_init__(self) -> None:
        calls.append("pre")


def test_constructors_of_a_class_with_validators_run_them():
    make = positional_factory(Validated, ("a",))
    assert make(1) == Validated(a=1)
    with pytest.raises(ValueError, match="a must be >= 0"):
        make(-1)
    with pytest.raises((TypeError, ValueError)):
        make(1, 2)
    v = Validated(a=1, b=2)
    assert dict_evolve(Validated)(v, {"a": 3}) == Validated(a=3, b=2)
    with pytest.raises(ValueError, match="a must be >= 0"):
        dict_evolve(Validated)(v, {"a": -1})
    assert positional_evolve(Validated, ("a",))(v, 4) == Validated(a=4, b=2)
    with pytest.raises(ValueError, match="a must be >= 0"):
        positional_evolve(Validated, ("a",))(v, -1)
    with pytest.raises((TypeError, ValueError)):
        positional_evolve(Validated, ("a",))(v, 4, 5)


def test_constructors_of_a_class_with_converters_or_factories_use_them():
    assert positional_factory(Converted, ("a",))("7") == Converted(a=7)
    assert positional_factory(Converted, ("a",))("7").a == 7
    assert dict_evolve(Converted)(Converted(a=1), {"a": "8"}).a == 8
    made = positional_factory(WithFactory, ("a",))(1)
    assert made.items == []
    assert made.items is not positional_factory(WithFactory, ("a",))(2).items


@pytest.mark.parametrize(("cls", "hook"), [(PostInit, "post 1"), (PreInit, "pre")])
def test_constructors_of_a_class_with_init_hooks_call_them(cls, hook):
    calls.clear()
    assert positional_factory(cls, ("a",))(1) == cls(a=1)
    assert calls == [hook, hook]
    calls.clear()
    dict_evolve(cls)(cls(a=1), {"b": 2})
    positional_evolve(cls, ("b",))(cls(a=1), 3)
    assert calls == [hook] * 4


def test_a_chained_invokes_trace_header_round_trips_exactly() -> None:
    header = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    update = OperationUpdate(
        id="inv",
        type=OperationType.CHAINED_INVOKE,
        action=OperationAction.START,
        function_name="f",
        tenant_id="t",
        trace_header=header,
    )
    wire = update.to_dict()
    assert wire["ChainedInvokeOptions"] == {
        "FunctionName": "f",
        "TenantId": "t",
        "XAmznTraceId": header,
    }
    back = OperationUpdate.from_dict(wire)
    assert back.trace_header == header
    assert back == update
    untraced = attrs.evolve(update, trace_header=None)
    assert untraced.to_dict()["ChainedInvokeOptions"] == {"FunctionName": "f", "TenantId": "t"}
    assert OperationUpdate.from_dict(untraced.to_dict()).trace_header is None
    bad = dict(wire, ChainedInvokeOptions={"FunctionName": "f", "XAmznTraceId": 7})
    with pytest.raises(
        CorruptLogError, match=r"^operation 'inv': XAmznTraceId must be a string, got 7"
    ):
        OperationUpdate.from_dict(bad)
