"""Tests that kill the mutants of durable_gen/_core/interpreter/invoke.py (issue 29)."""

from __future__ import annotations

import pytest

from durable_gen import Invoke
from durable_gen._core.commands import Checkpoint, Suspend
from durable_gen._core.errors import (
    CorruptLogError,
    ErrorObject,
    InvokeError,
    PayloadTooLargeError,
    SerializationError,
    qualified_name,
)
from durable_gen._core.log import OperationAction
from tests.test_mut_interpreter import OP1, S, T, op, run

A = OperationAction


def catching(desc):
    def wf(_):
        try:
            return ("ok", (yield desc))
        except InvokeError as e:
            return (e.error_type, e.error_message, e.operation_name, e.operation_id)

    return wf


def _rec(status, **kw):
    return {OP1: op(OP1, T.CHAINED_INVOKE, status, None, "i", "ChainedInvoke", **kw)}


class _Upper:
    def serialize(self, v):
        return v

    def deserialize(self, d):
        return d.upper()


def test_a_recorded_result_is_read_with_the_invoke_serdes():
    cmds = run(catching(Invoke("fn", name="i", serdes=_Upper())), _rec(S.SUCCEEDED, result="r"))
    assert cmds[-1].value == ("ok", "R")


def test_an_unreadable_recorded_result_is_a_corrupt_log():
    with pytest.raises(CorruptLogError) as info:
        run(catching(Invoke("fn", name="i")), _rec(S.SUCCEEDED, result="{x"))
    assert str(info.value).startswith(
        f"the recorded Invoke 'i' (the 1st operation of the root context, id {OP1!r}) "
        "cannot be replayed: "
    )


def test_a_recorded_failure_names_the_invoke():
    ops = _rec(S.FAILED, error=ErrorObject(type="E", message="m"))
    assert run(catching(Invoke("fn", name="i")), ops)[-1].value == ("E", "m", "i", OP1)


def test_a_started_invoke_suspends_without_a_wake_time():
    cmds = run(catching(Invoke("fn", name="i")), _rec(S.STARTED))
    assert [type(c) for c in cmds] == [Suspend]
    assert (cmds[0].wake_at, cmds[0].updates) == (None, [])


@pytest.mark.parametrize("tenant", [None, "t1"])
def test_a_new_invoke_records_its_start(tenant):
    cmds = run(catching(Invoke("fn", {"a": 1}, name="i", tenant_id=tenant)), {})
    assert [type(c) for c in cmds] == [Checkpoint, Suspend]
    (start,) = cmds[0].updates
    assert (start.id, start.action, start.name, start.sub_type, start.parent_id) == (
        OP1,
        A.START,
        "i",
        "ChainedInvoke",
        None,
    )
    assert (start.payload, start.function_name, start.tenant_id) == ('{"a":1}', "fn", tenant)
    assert cmds[1].wake_at is None


class _Bytes:
    def serialize(self, v):
        return b"x"

    def deserialize(self, d):
        return d


@pytest.mark.parametrize(("name", "shown"), [("i", "'i'"), (None, "'fn'")])
def test_a_payload_serdes_that_returns_bytes_fails_the_invoke(name, shown):
    cmds = run(catching(Invoke("fn", 1, name=name, payload_serdes=_Bytes())), {})
    assert cmds[-1].value == (
        qualified_name(SerializationError),
        f"the payload of invoke {shown} cannot be sent: "
        "serdes _Bytes.serialize returned bytes, not str",
        name,
        OP1,
    )


@pytest.mark.parametrize(("name", "shown"), [("i", "'i'"), (None, "'fn'")])
def test_a_payload_over_the_limit_fails_the_invoke(name, shown):
    cmds = run(catching(Invoke("fn", "x" * 20, name=name)), {}, max_payload_bytes=10)
    assert cmds[-1].value == (
        qualified_name(PayloadTooLargeError),
        f"the payload of invoke {shown} cannot be sent: the payload of invoke {shown} is "
        "22 bytes once serialized, over the 10-byte limit of one checkpoint; keep large "
        "data elsewhere (a file, a bucket) and return a reference to it",
        name,
        OP1,
    )
