"""Tests that kill the mutants of durable_gen/_core/serdes.py (issue 29, see mutation/).

They pin the exact payloads of the documented CBOR format where a mutant would still
round-trip, the nesting limit for every kind of container, the exact error messages
(payload excerpts, locations inside the value, CBOR content problems) and the
``value_type`` of the errors.
"""

from __future__ import annotations

import base64
import decimal
import re
import sys
from typing import Any

import cbor2
import pytest

from durable_gen._core.batch import BatchItem, BatchItemStatus, BatchResult, CompletionReason
from durable_gen._core.errors import SerializationError
from durable_gen._core.serdes import (
    BATCH_SERDES,
    CBOR_PREFIX,
    DEFAULT_SERDES,
    MAX_NESTING,
    BatchSerdes,
    JsonSerdes,
    PassThroughSerdes,
    describe_type,
)

S = DEFAULT_SERDES
TAG = 1684300000
TUPLE, DATE, DATETIME, TIME, TIMEDELTA = TAG, TAG + 7, TAG + 6, TAG + 8, TAG + 9
DECIMAL, FRACTION, COMPLEX, BATCH = TAG + 10, TAG + 12, TAG + 13, TAG + 15
FIX = "; return JSON-compatible data, or pass serdes=... to the operation"
SAFE = 2**53 - 1


def _cbor(item: Any) -> str:
    return CBOR_PREFIX + base64.b64encode(cbor2.dumps(item)).decode()


def _raises(fn: Any, message: str) -> SerializationError:
    with pytest.raises(SerializationError) as info:
        fn()
    assert str(info.value) == message
    return info.value


def _bad_payload(payload: str, problem: str) -> None:
    _raises(lambda: S.deserialize(payload), f"cannot deserialize payload {payload!r}: {problem}")


# ------------------------------------------------------------------ exact encodings


def test_non_ascii_text_without_surrogates_is_a_plain_cbor_text_string():
    assert S.serialize(("é",)) == _cbor(cbor2.CBORTag(TUPLE, ["é"]))
    assert S.serialize(({"é": "ü"},)) == _cbor(cbor2.CBORTag(TUPLE, [{"é": "ü"}]))


def test_a_str_keyed_dict_inside_a_cbor_value_is_a_plain_cbor_map():
    assert S.serialize(({"a": 1, "b": [2]},)) == _cbor(cbor2.CBORTag(TUPLE, [{"a": 1, "b": [2]}]))


@pytest.mark.parametrize(
    "value",
    [
        [0, 0, 0, 0, 0, 0, 0, -SAFE],
        [0, 0, 0, 0, 0, 0, 0, SAFE],
        [-SAFE, SAFE],
        {"lo": -SAFE, "hi": SAFE},
    ],
)
def test_ints_at_the_edges_of_the_safe_range_are_json(value):
    assert S.serialize(value) == re.sub(r"\s", "", repr(value)).replace("'", '"')
    assert S.deserialize(S.serialize(value)) == value


@pytest.mark.parametrize(
    "value",
    [[0, 0, 0, 0, 0, 0, 0, SAFE + 1], [0, 0, 0, 0, 0, 0, 0, -SAFE - 1], [1.5, SAFE + 1]],
)
def test_a_list_holding_an_int_past_the_safe_range_is_cbor(value):
    payload = S.serialize(value)
    assert payload == _cbor(value)
    assert S.deserialize(payload) == value


# ------------------------------------------------------------------ nesting limit


def _nest(n: int, wrap: Any, leaf: Any = b"x") -> Any:
    value = leaf
    for _ in range(n):
        value = wrap(value)
    return value


WRAPPERS = {
    "list": lambda v: [v],
    "tuple": lambda v: (v,),
    "str-keyed dict": lambda v: {"k": v},
    "int-keyed dict value": lambda v: {1: v},
}


@pytest.mark.parametrize("kind", list(WRAPPERS))
def test_exactly_max_nesting_containers_are_accepted_and_one_more_is_not(kind):
    wrap = WRAPPERS[kind]
    value = _nest(MAX_NESTING, wrap)
    assert S.deserialize(S.serialize(value)) == value
    too_deep = _nest(MAX_NESTING + 1, wrap)
    error = _raises(
        lambda: S.serialize(too_deep),
        f"cannot serialize value: it is nested more than {MAX_NESTING} containers deep{FIX}",
    )
    innermost = _nest(1, wrap)  # the container found at depth MAX_NESTING
    assert error.value_type == describe_type(innermost)


def test_nesting_counts_through_dict_keys_and_set_members():
    # a dict (depth 0) whose key is a tuple chain: depths 1 .. MAX_NESTING - 1
    key = _nest(MAX_NESTING - 1, lambda v: (v,), leaf=1)
    assert S.deserialize(S.serialize({key: 1})) == {key: 1}
    with pytest.raises(SerializationError, match="nested more than"):
        S.serialize({(key,): 1})
    members = _nest(MAX_NESTING - 1, lambda v: frozenset({v}), leaf=1)
    assert S.deserialize(S.serialize({members})) == {members}
    with pytest.raises(SerializationError, match="nested more than"):
        S.serialize({frozenset({members})})


def test_running_out_of_stack_is_a_serialization_error():
    def depth() -> int:
        frame, n = sys._getframe(), 0
        while frame is not None:
            frame, n = frame.f_back, n + 1
        return n

    value = _nest(MAX_NESTING - 10, lambda v: (v,))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth() + 60)
    try:
        with pytest.raises(SerializationError) as info:
            S.serialize(value)
    finally:
        sys.setrecursionlimit(limit)
    assert str(info.value) == f"cannot serialize value: it is nested too deeply{FIX}"
    assert info.value.value_type == "tuple"


# ------------------------------------------------------------------ shared values


@pytest.mark.parametrize(
    "shared",
    [frozenset({1, 2}), {1: "a"}, {"a": b"x"}, [b"x"], (b"x",)],
    ids=["frozenset", "int-keyed dict", "str-keyed dict", "list", "tuple"],
)
def test_a_container_held_twice_is_not_a_circular_reference(shared):
    value = (shared, [shared], {"again": shared})
    assert S.deserialize(S.serialize(value)) == value


def test_set_members_whose_encodings_tie_are_not_compared():
    # two distinct NaNs: unequal members with the same encoding, whose trees are dicts
    def batch() -> BatchResult:
        return BatchResult(
            all=(BatchItem(index=0, status=BatchItemStatus.SUCCEEDED, result=float("nan")),),
            completion_reason=CompletionReason.ALL_COMPLETED,
        )

    value = {batch(), batch()}
    assert len(value) == 2
    assert S.serialize(value) == S.serialize(value)
    assert len(S.deserialize(S.serialize(value))) == 2


# ------------------------------------------------------------------ error locations


def test_the_location_shows_a_str_key_in_full_up_to_40_characters():
    _raises(
        lambda: S.serialize({"é" * 40: object()}),
        f'cannot serialize value["{"é" * 40}"]: type object is not supported{FIX}',
    )
    _raises(
        lambda: S.serialize({"é" * 41: object()}),
        f'cannot serialize value["{"é" * 40}..."]: type object is not supported{FIX}',
    )


def test_the_location_shows_another_key_by_its_repr_up_to_60_characters():
    key60 = ("k" * 55,)
    assert len(repr(key60)) == 60
    _raises(
        lambda: S.serialize({key60: object()}),
        f"cannot serialize value[{key60!r}]: type object is not supported{FIX}",
    )
    key61 = ("k" * 56,)
    _raises(
        lambda: S.serialize({key61: object()}),
        f"cannot serialize value[{repr(key61)[:57]}...]: type object is not supported{FIX}",
    )


def test_the_location_names_the_type_of_a_key_too_large_to_print():
    _raises(
        lambda: S.serialize({10**5000: object()}),
        f"cannot serialize value[<int>]: type object is not supported{FIX}",
    )


# ------------------------------------------------------------------ malformed payloads


def test_the_payload_excerpt_is_the_repr_when_it_fits_in_80_characters():
    _bad_payload("x" * 78, "not valid JSON (Expecting value: line 1 column 1 (char 0))")
    payload = "x" * 200
    _raises(
        lambda: S.deserialize(payload),
        f"cannot deserialize payload {'x' * 75!r}...: "
        "not valid JSON (Expecting value: line 1 column 1 (char 0))",
    )


def test_duplicate_map_keys_are_malformed():
    payload = CBOR_PREFIX + base64.b64encode(bytes.fromhex("a2616101616102")).decode()
    _bad_payload(payload, "invalid CBOR (error decoding map: Duplicate map key: 'a')")


@pytest.mark.parametrize(
    ("tag", "content", "problem"),
    [
        (COMPLEX, [1.0, 2.0, 3.0], "expected an array of 2 items, got 3"),
        (DATETIME, [1, 2, 3, 4, 5, 6, 7, 0, None, 1], "expected an array of 9 items, got 10"),
        (TIME, [1, 2, 3, 4, 0, None, 1], "expected an array of 6 items, got 7"),
        (TIME, [1, 2, 3, 4, 0, [1, "a", 3]], "expected an array of 2 items, got 3"),
        (FRACTION, [1, 2, 3], "expected an array of 2 items, got 3"),
        (FRACTION, [0, 5], "non-canonical fraction 0/5"),
        (TIMEDELTA, [1, 2, 3, 4], "expected an array of 3 items, got 4"),
        (DATE, ["a", 2, 3], "expected integers, got str"),
        (TAG + 1, "a", "expected bytes, got str"),
        (BATCH, {}, "not a batch result (KeyError: 'all')"),
    ],
)
def test_bad_tag_content_is_reported_exactly(tag, content, problem):
    payload = _cbor(cbor2.CBORTag(tag, content))
    _bad_payload(payload, f"bad content for CBOR tag {tag}: {problem}")


def test_decimals_are_read_the_same_whatever_the_callers_decimal_context():
    payload = _cbor(cbor2.CBORTag(DECIMAL, "abc"))
    problem = "invalid content (InvalidOperation: [<class 'decimal.ConversionSyntax'>])"
    with decimal.localcontext() as ctx:
        ctx.traps[decimal.InvalidOperation] = False
        _bad_payload(payload, problem)
        assert S.deserialize(S.serialize(decimal.Decimal("1.50"))) == decimal.Decimal("1.50")


def test_json_serdes_reports_an_unreadable_int_with_its_payload():
    payload = "1" * 5000
    _raises(
        lambda: JsonSerdes().deserialize(payload),
        f"cannot deserialize payload {'1' * 75!r}...: not readable JSON (ValueError: "
        "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 "
        "digits; use sys.set_int_max_str_digits() to increase the limit)",
    )


def test_batch_serdes_reports_a_json_object_that_is_no_batch_result():
    _raises(
        lambda: BATCH_SERDES.deserialize('{"a":1}'),
        """cannot deserialize payload '{"a":1}': not a batch result (KeyError: 'all')""",
    )


@pytest.mark.parametrize("serdes", [S, JsonSerdes(), PassThroughSerdes(), BATCH_SERDES])
def test_a_payload_that_is_not_a_str_names_its_type(serdes):
    error = _raises(
        lambda: serdes.deserialize(5),
        "cannot deserialize a payload of type int: a payload must be a str",
    )
    assert error.value_type == "int"


def test_reprs():
    assert repr(BatchSerdes()) == "BatchSerdes()"
    assert repr(BATCH_SERDES) == "BatchSerdes()"


def test_describe_type_falls_back_to_the_name_when_the_qualname_is_empty():
    cls = type("Odd", (), {"__module__": "mod"})
    cls.__qualname__ = ""
    assert describe_type(cls()) == "mod.Odd"
