"""Tests of durable_gen._core.serdes: payload text, exact round trips, errors."""

from __future__ import annotations

import base64
import collections
import contextlib
import enum
import json
import math
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_gen._core.errors import SerializationError
from durable_gen._core.serdes import (
    CBOR_PREFIX,
    DEFAULT_SERDES,
    MAX_NESTING,
    TAG_DATE,
    TAG_DECIMAL,
    TAG_TUPLE,
    DefaultSerdes,
    JsonSerdes,
    PassThroughSerdes,
    Serdes,
    describe_type,
)

S = DEFAULT_SERDES
FIX = r"; return JSON-compatible data, or pass serdes=\.\.\. to the operation"


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _identical(a: Any, b: Any) -> bool:
    """``a`` and ``b`` have the same type and value at every level (nan equals nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, complex):
        return _identical(a.real, b.real) and _identical(a.imag, b.imag)
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()  # exact: sign, digits, exponent, NaN kinds
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):  # order matters: dict order is part of the value
        return len(a) == len(b) and all(
            _identical(ka, kb) and _identical(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, set | frozenset):
        return len(a) == len(b) and all(any(_identical(x, y) for y in b) for x in a)
    if isinstance(a, datetime | time):
        return (
            repr(a) == repr(b)  # fields, fold and the tzinfo (with its explicit name)
            and _identical(a.tzinfo, b.tzinfo)
            and a.tzname() == b.tzname()
        )
    if isinstance(a, timezone):
        return a == b and repr(a) == repr(b)
    if isinstance(a, int):
        return a == b
    return bool(a == b and repr(a) == repr(b))


def assert_round_trip(value: Any) -> str:
    payload = S.serialize(value)
    assert isinstance(payload, str)
    assert S.serialize(value) == payload, "serialize must be deterministic"
    back = S.deserialize(payload)
    assert _identical(back, value), f"{value!r} came back as {back!r} from {payload!r}"
    assert S.serialize(back) == payload, "a value read back must serialize to the same text"
    payload.encode("utf-8")  # every payload can be stored as UTF-8
    return payload


def test_identical_helper_is_strict() -> None:
    assert _identical([1, (2,)], [1, (2,)])
    assert not _identical([1, (2,)], [1, [2]])
    assert not _identical(1, True)
    assert not _identical(1, 1.0)
    assert not _identical(0.0, -0.0)
    assert _identical(float("nan"), float("nan"))
    assert not _identical(Decimal("1.1"), Decimal("1.10"))
    assert not _identical({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not _identical(collections.OrderedDict(a=1), {"a": 1})
    assert not _identical(datetime(2020, 1, 1), datetime(2020, 1, 1, fold=1))
    assert not _identical(
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(0), "Z")),
    )


# --------------------------------------------------------------------------- JSON text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("task-1", '"task-1"'),
        ({"a": [1, 2]}, '{"a":[1,2]}'),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-17, "-17"),
        (2**53 - 1, "9007199254740991"),
        (-(2**53 - 1), "-9007199254740991"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (-0.0, "-0.0"),
        (1e300, "1e+300"),
        (5e-324, "5e-324"),
        (0.1, "0.1"),
        ("", '""'),
        ([], "[]"),
        ({}, "{}"),
        ("é€😀 ünï", '"é€😀 ünï"'),
        ('say "hi"\n\t\\', r'"say \"hi\"\n\t\\"'),
        ("\x00\x1f\x7f", '"\\u0000\\u001f\x7f"'),
        ("\u2028", '"\u2028"'),
        ("cbor:AAAA", '"cbor:AAAA"'),
        ({"b": 1, "a": 2}, '{"b":1,"a":2}'),
        (
            {"user": {"id": 7, "tags": ["x", None, True]}, "ratio": 0.25},
            '{"user":{"id":7,"tags":["x",null,true]},"ratio":0.25}',
        ),
        ([[[]], [{}]], "[[[]],[{}]]"),
        (list(range(10)), "[0,1,2,3,4,5,6,7,8,9]"),
        ([0.5] * 8, "[" + ",".join(["0.5"] * 8) + "]"),
        (["a"] * 8, "[" + ",".join(['"a"'] * 8) + "]"),
    ],
)
def test_json_native_values_are_compact_json(value: Any, text: str) -> None:
    assert S.serialize(value) == text
    assert JsonSerdes().serialize(value) == text
    assert_round_trip(value)
    assert _identical(json.loads(text), value)


def test_json_text_is_what_json_dumps_writes() -> None:
    value = {"k": [1, -2.5, "ü", None, False, {"n": [[]]}], "e": ""}
    assert S.serialize(value) == _json_dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        2**64,
        -(2**64) - 1,
        10**100,
        -(10**100),
        float("nan"),
        float("inf"),
        float("-inf"),
        [1, float("nan")],
        {"a": 2**60},
        (1, 2),
        [1, (2,)],
        {1: "a"},
        {"a": {2: "b"}},
        {True: 1},
        b"bytes",
        collections.OrderedDict(a=1),
        # Surrogates: raw, not storable as UTF-8; escaped, a pair would read back as one.
        "\ud800",
        "\ud800\udc00",
        ["é", "\udfff"],
        {"\udc80": 1},
    ],
)
def test_values_json_cannot_carry_exactly_go_through_cbor(value: Any) -> None:
    assert assert_round_trip(value).startswith(CBOR_PREFIX)


# --------------------------------------------------------------------------- exact round trips


class Point(NamedTuple):
    x: int
    y: int


class Color(enum.IntEnum):
    RED = 1


class Letter(enum.StrEnum):
    A = "a"


class Opaque:
    pass


class MyOrderedDict(collections.OrderedDict[Any, Any]):
    pass


class FixedTZ(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


PLUS_5 = timezone(timedelta(hours=5, minutes=30))
ODD_TZ = timezone(-timedelta(hours=23, minutes=59, seconds=59, microseconds=999999), "odd")

EXACT_VALUES: list[Any] = [
    b"",
    b"\x00\xff bytes",
    bytearray(),
    bytearray(b"\x00\x01"),
    datetime(2024, 2, 29, 23, 59, 59, 999999),
    datetime(1, 1, 1),
    datetime.max,
    datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=PLUS_5),
    datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=-3), "BRT")),
    datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(0), "UTC")),
    datetime(2024, 5, 1, 12, 0, tzinfo=ODD_TZ),
    datetime(2024, 11, 3, 1, 30, fold=1),
    date(2024, 2, 29),
    date.min,
    date.max,
    time(),
    time(23, 59, 59, 999999),
    time(1, 2, 3, 4, tzinfo=PLUS_5, fold=1),
    timedelta(),
    timedelta(days=-1, seconds=5, microseconds=7),
    timedelta.max,
    timedelta.min,
    Decimal("1.10"),
    Decimal("-0"),
    Decimal("-0E+3"),
    Decimal("1E+999999"),
    Decimal("123456789012345678901234567890.123456789"),
    Decimal("NaN"),
    Decimal("-NaN123"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID(int=0),
    (),
    (1,),
    ((), ((),)),
    (1, "a", None, [2, (3,)]),
    [(1, 2), [3, (4, [5])]],
    set(),
    {1, "a", None, (1, 2)},
    frozenset(),
    frozenset({frozenset({1}), (2, 3)}),
    {1: "a", 2: "b"},
    {(1, 2): [3], frozenset({4}): {5: 6}},
    {"a": 1, 2: "b"},
    {1.5: 1, None: 2, b"k": 3, date(2020, 1, 1): 4},
    2**53,
    -(2**53),
    2**63,
    2**64,
    -(2**64),
    3**500,
    -(7**300),
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    [-0.0, 0.0],
    collections.OrderedDict([("b", 1), ("a", 2)]),
    collections.OrderedDict([(1, (2,))]),
    Fraction(3, 7),
    Fraction(-(10**40), 3),
    1 + 2j,
    complex(float("nan"), -0.0),
    complex(float("inf"), float("-inf")),
    ("\ud800",),
    {"\udc80": (1,)},
    [b"x", bytearray(b"y"), "\ud83d"],
    datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=1), "\ud800")),
    {"items": [1, (2, 3), {4, 5}], "when": datetime(2020, 1, 1), "n": Decimal("1.0")},
]


@pytest.mark.parametrize("value", EXACT_VALUES, ids=describe_type)
def test_exact_round_trip(value: Any) -> None:
    assert_round_trip(value)


def test_every_supported_type_round_trips_nested_in_everything() -> None:
    leaves = [v for v in EXACT_VALUES if _hashable(v)]
    assert_round_trip(leaves)
    assert_round_trip(tuple(leaves))
    assert_round_trip({f"k{i}": v for i, v in enumerate(leaves)})
    assert_round_trip({v: i for i, v in enumerate(leaves) if not _has_nan(v)})
    assert_round_trip(frozenset(v for v in leaves if not _has_nan(v)))
    assert_round_trip(EXACT_VALUES)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _has_nan(value: Any) -> bool:
    try:
        return value != value  # type: ignore[no-any-return]
    except Exception:  # sNaN refuses comparisons
        return True


def test_the_value_that_comes_back_is_a_new_object() -> None:
    value = [1, [2]]
    back = S.deserialize(S.serialize(value))
    assert back == value
    assert back is not value
    assert back[1] is not value[1]


def test_shared_subvalues_are_stored_as_copies() -> None:
    inner = (1, 2)
    assert_round_trip([inner, inner, {"a": inner}])


def test_nesting_up_to_the_limit_round_trips() -> None:
    value: Any = ()
    for _ in range(MAX_NESTING - 1):
        value = (value,)
    assert_round_trip(value)
    deep_json: Any = []
    for _ in range(300):
        deep_json = [deep_json]
    assert S.serialize(deep_json) == "[" * 301 + "]" * 301


def test_set_payload_does_not_depend_on_insertion_order() -> None:
    # 1 and 9 collide in an 8-slot table: their iteration order is the insertion order.
    first, second = {1}, {9}
    first.add(9)
    second.add(1)
    assert list(first) != list(second)
    assert S.serialize(first) == S.serialize(second)
    assert S.serialize(frozenset(first)) == S.serialize(frozenset(second))


def test_dict_key_order_is_kept() -> None:
    assert list(S.deserialize(S.serialize({2: "a", 1: "b"}))) == [2, 1]
    assert list(S.deserialize(S.serialize({"b": (1,), "a": 2}))) == ["b", "a"]


# Pinned payloads: stored payloads must stay readable, so the format must not drift.
GOLDEN = [
    ((1, 2), "cbor:2mRkYOCCAQI="),
    (datetime(2020, 1, 2, 3, 4, 5, 6), "cbor:2mRkYOaJGQfkAQIDBAUGAPY="),
    (Decimal("1.10"), "cbor:2mRkYOpkMS4xMA=="),
    ({3, 1, "a"}, "cbor:2mRkYOKDAQNhYQ=="),
    (float("nan"), "cbor:+X4A"),
    (2**53, "cbor:GwAgAAAAAAAA"),
    (bytearray(b"x"), "cbor:2mRkYOFBeA=="),
    (("\ud800",), "cbor:2mRkYOCB2mRkYO5D7aCA"),
    (time(1, 2, 3, 4, tzinfo=UTC), "cbor:2mRkYOiGAQIDBAAA"),
]


@pytest.mark.parametrize(("value", "payload"), GOLDEN)
def test_golden_payloads(value: Any, payload: str) -> None:
    assert S.serialize(value) == payload
    assert _identical(S.deserialize(payload), value)


# --------------------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_json_native_values_are_plain_json(value: Any) -> None:
    payload = S.serialize(value)
    assert payload == _json_dumps(value)
    assert _identical(json.loads(payload), value)
    assert _identical(S.deserialize(payload), value)
    assert JsonSerdes().serialize(value) == payload


_offsets = st.timedeltas(
    min_value=-timedelta(hours=24) + timedelta(microseconds=1),
    max_value=timedelta(hours=24) - timedelta(microseconds=1),
)
_any_text = st.text() | st.text(st.characters(categories=["Cs", "Ll", "Nd"]), max_size=5)
timezones = (
    st.none()
    | st.just(UTC)
    | st.builds(timezone, _offsets)
    | st.builds(timezone, _offsets, _any_text)
)
_folds = st.sampled_from([0, 1])
datetimes = st.builds(lambda d, f: d.replace(fold=f), st.datetimes(timezones=timezones), _folds)
times = st.builds(lambda t, f: t.replace(fold=f), st.times(timezones=timezones), _folds)
decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [Decimal("1.10"), Decimal("-0E+3"), Decimal("sNaN12"), Decimal("-NaN"), Decimal("1E+5000")]
)

hashable_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats()
    | _any_text
    | st.binary(max_size=8)
    | datetimes
    | st.dates()
    | times
    | st.timedeltas()
    | decimals.filter(lambda d: not d.is_snan())  # a signaling NaN refuses to hash
    | st.uuids()
    | st.fractions()
    | st.complex_numbers()
)
hashables = st.recursive(
    hashable_scalars,
    lambda children: (
        st.lists(children, max_size=3).map(tuple) | st.frozensets(children, max_size=3)
    ),
    max_leaves=6,
)
scalars = hashable_scalars | decimals | st.binary(max_size=8).map(bytearray)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(_any_text, children, max_size=5)
        | st.dictionaries(hashables, children, max_size=4)
        | st.dictionaries(hashables, children, max_size=4).map(collections.OrderedDict)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    )


any_values = st.recursive(scalars, _containers, max_leaves=25)


@given(any_values)
def test_any_supported_value_round_trips_exactly(value: Any) -> None:
    assert_round_trip(value)


@given(hashables)
def test_hashable_values_round_trip_exactly(value: Any) -> None:
    assert_round_trip(value)


@given(st.text())
def test_deserialize_of_any_text_is_a_value_or_a_serialization_error(text: str) -> None:
    for payload in (text, CBOR_PREFIX + text):
        with contextlib.suppress(SerializationError):
            S.deserialize(payload)


@given(st.binary())
def test_deserialize_of_any_cbor_is_a_value_or_a_serialization_error(raw: bytes) -> None:
    with contextlib.suppress(SerializationError):
        S.deserialize(CBOR_PREFIX + base64.b64encode(raw).decode("ascii"))


# --------------------------------------------------------------------------- errors


def _located(where: str, type_name: str, detail: str = "") -> str:
    return (
        rf"^cannot serialize {re.escape(where)}: type {re.escape(type_name)} is not supported"
        rf"{re.escape(detail)}{FIX}$"
    )


def _generator() -> Iterator[int]:
    yield 1


OPAQUE = f"{Opaque.__module__}.Opaque"


@pytest.mark.parametrize(
    ("value", "where", "type_name", "detail"),
    [
        (Opaque(), "value", OPAQUE, ""),
        ({"items": [0, 1, 2, Opaque()]}, 'value["items"][3]', OPAQUE, ""),
        ((1, {"k": {Opaque()}}), 'list(value[1]["k"])[0]', OPAQUE, ""),
        ({Opaque(): 1}, "list(value)[0]", OPAQUE, ""),
        ({"a": 1, (1, Opaque()): 2}, "list(value)[1][1]", OPAQUE, ""),
        ({(1, 2): [Opaque()]}, "value[(1, 2)][0]", OPAQUE, ""),
        (collections.OrderedDict(x=Opaque()), 'value["x"]', OPAQUE, ""),
        (len, "value", "builtin_function_or_method", ""),
        (lambda: 1, "value", "function", ""),
        (_generator(), "value", "generator", ""),
        (Opaque, "value", "type", ""),
        (
            Color.RED,
            "value",
            f"{Color.__module__}.Color",
            " (a subclass of int: convert it to a plain int first)",
        ),
        (
            [Letter.A],
            "value[0]",
            f"{Letter.__module__}.Letter",
            " (a subclass of str: convert it to a plain str first)",
        ),
        (
            {"p": Point(1, 2)},
            'value["p"]',
            f"{Point.__module__}.Point",
            " (a subclass of tuple: convert it to a plain tuple first)",
        ),
        (
            collections.defaultdict(list),
            "value",
            "collections.defaultdict",
            " (a subclass of dict: convert it to a plain dict first)",
        ),
        (
            MyOrderedDict(),
            "value",
            f"{MyOrderedDict.__module__}.MyOrderedDict",
            " (a subclass of collections.OrderedDict: convert it to a plain "
            "collections.OrderedDict first)",
        ),
        (
            {"at": datetime(2020, 1, 1, tzinfo=FixedTZ())},
            'value["at"].tzinfo',
            f"{FixedTZ.__module__}.FixedTZ",
            " (of the tzinfo classes, only datetime.timezone fixed offsets can be stored)",
        ),
        (
            [time(1, tzinfo=FixedTZ())],
            "value[0].tzinfo",
            f"{FixedTZ.__module__}.FixedTZ",
            " (of the tzinfo classes, only datetime.timezone fixed offsets can be stored)",
        ),
        (range(3), "value", "range", ""),
        (object(), "value", "object", ""),
        (memoryview(b"x"), "value", "memoryview", ""),
    ],
)
def test_unsupported_values_raise_with_location_and_type(
    value: Any, where: str, type_name: str, detail: str
) -> None:
    with pytest.raises(SerializationError, match=_located(where, type_name, detail)) as info:
        S.serialize(value)
    assert info.value.value_type == type_name


def test_long_dict_keys_are_shortened_in_the_location() -> None:
    key = "k" * 100
    where = 'value["' + "k" * 40 + '..."]'
    with pytest.raises(SerializationError, match=_located(where, OPAQUE)):
        S.serialize({key: Opaque()})


def test_circular_references_are_reported() -> None:
    value: list[Any] = [1]
    value.append({"self": value})
    with pytest.raises(
        SerializationError,
        match=rf'^cannot serialize value\[1\]\["self"\]: circular reference '
        rf"\(the list contains itself\){FIX}$",
    ) as info:
        S.serialize(value)
    assert info.value.value_type == "list"


def test_too_deep_values_are_rejected() -> None:
    value: Any = ()
    for _ in range(MAX_NESTING + 1):
        value = (value,)
    with pytest.raises(
        SerializationError,
        match=rf"^cannot serialize value: it is nested more than {MAX_NESTING} containers "
        rf"deep{FIX}$",
    ):
        S.serialize(value)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SerializationError, match=r"nested more than"):
        S.serialize(deep)


def _cbor(item: Any) -> str:
    return CBOR_PREFIX + base64.b64encode(cbor2.dumps(item)).decode("ascii")


def _bad(payload: str, problem: str) -> str:
    return rf"^cannot deserialize payload {re.escape(repr(payload))}: {problem}$"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("", r"not valid JSON \(Expecting value: line 1 column 1 \(char 0\)\)"),
        ("{", r"not valid JSON \(Expecting property name enclosed in double quotes: .*\)"),
        ('{"a":1} x', r"not valid JSON \(Extra data: line 1 column 9 \(char 8\)\)"),
        ("undefined", r"not valid JSON \(Expecting value: .*\)"),
        ("1" * 5000, r"not readable JSON \(ValueError: .*\)"),
        ("[" * 100_000, r"not readable JSON \(RecursionError: .*\)"),
        ("cbor:", r"invalid CBOR \(premature end of stream .*\)"),
        ("cbor:!!!!", r'invalid base64 after "cbor:"'),
        ("cbor:AQ", r'invalid base64 after "cbor:"'),
        ("cbor:AQ==\n", r'invalid base64 after "cbor:"'),
        ("cbor:AQI=", r"invalid CBOR \(1 unexpected bytes after the item\)"),
        ("cbor:9w==", r"unsupported CBOR item of type cbor2\.UndefinedType"),
        ("cbor:YQ==", r"invalid CBOR \(premature end of stream .*\)"),
        ("cbor:Yf8=", r"invalid CBOR \(error decoding text string\)"),
        ("cbor:nwH/", r"invalid CBOR \(.*indefinite length.*\)"),
        ("cbor:2BwAgfc=", r"invalid CBOR \(shared values \(CBOR tags 28/29\) are not supported\)"),
        (_cbor({"a": 1, 2: "b"}), r"unsupported CBOR map key of type int"),
        (_cbor(cbor2.CBORTag(1684300099, 1)), r"unsupported CBOR tag 1684300099"),
        (_cbor(cbor2.CBORTag(77777, 1)), r"unsupported CBOR tag 77777"),
        (
            _cbor(datetime(2020, 1, 1, tzinfo=UTC)),
            r"unsupported CBOR item of type datetime\.datetime",
        ),
        (_cbor(Decimal("1.5")), r"unsupported CBOR item of type decimal\.Decimal"),
        (_cbor({1, 2}), r"unsupported CBOR item of type set"),
        (
            _cbor(cbor2.CBORTag(TAG_TUPLE, 5)),
            r"bad content for CBOR tag 1684300000: expected an array, got int",
        ),
        (
            _cbor(cbor2.CBORTag(TAG_DATE, [2020, 1])),
            r"bad content for CBOR tag 1684300007: expected an array of 3 items, got 2",
        ),
        (
            _cbor(cbor2.CBORTag(TAG_DATE, [2020, 13, 1])),
            r"invalid content \(ValueError: month must be in 1\.\.12\)",
        ),
        (
            _cbor(cbor2.CBORTag(TAG_DECIMAL, "1_000")),
            r"bad content for CBOR tag 1684300010: non-canonical decimal '1_000'",
        ),
        (
            _cbor(cbor2.CBORTag(TAG_DECIMAL, "pi")),
            r"invalid content \(InvalidOperation: .*\)",
        ),
        (
            _cbor(cbor2.CBORTag(1684300002, [[1]])),
            r"invalid content \(TypeError: unhashable type: 'list'\)",
        ),
        (_cbor(cbor2.CBORTag(1684300004, [1])), r".*expected an even number of items"),
    ],
)
def test_malformed_payloads_raise_serialization_errors(payload: str, problem: str) -> None:
    with pytest.raises(SerializationError) as info:
        S.deserialize(payload)
    message = str(info.value)
    excerpt = repr(payload) if len(repr(payload)) <= 80 else None
    if excerpt is not None:
        assert re.match(_bad(payload, problem), message), message
    else:
        assert re.match(rf"^cannot deserialize payload '.{{1,76}}'\.\.\.: {problem}$", message)
    assert info.value.value_type is None
    # No raw json/cbor exception is chained on.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_deep_cbor_payloads_are_rejected_without_crashing() -> None:
    payload = CBOR_PREFIX + base64.b64encode(b"\x81" * 100_000 + b"\x01").decode("ascii")
    with pytest.raises(SerializationError, match=r"nesting depth \(400\) exceeded"):
        S.deserialize(payload)


def test_payload_excerpts_are_short() -> None:
    for payload in ["x" * 1000, "\x00" * 1000, "\U0010ffff" * 1000, "cbor:" + "A" * 999]:
        with pytest.raises(SerializationError) as info:
            S.deserialize(payload)
        excerpt = re.match(r"^cannot deserialize payload (.*?): ", str(info.value))
        assert excerpt is not None
        assert len(excerpt.group(1)) <= 80
        assert excerpt.group(1).endswith("...")


@pytest.mark.parametrize("serdes", [DefaultSerdes(), JsonSerdes(), PassThroughSerdes()])
def test_a_payload_must_be_a_str(serdes: Serdes) -> None:
    with pytest.raises(
        SerializationError,
        match=r"^cannot deserialize a payload of type bytes: a payload must be a str$",
    ):
        serdes.deserialize(b"{}")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- other serdes


def test_json_serdes() -> None:
    js = JsonSerdes()
    assert js.serialize({"a": [1, 2.5, None, "é"]}) == '{"a":[1,2.5,null,"é"]}'
    assert js.serialize((1, 2)) == "[1,2]"  # lossy, the JSON way
    assert js.deserialize("[1,2]") == [1, 2]
    assert js.serialize({1: "a"}) == '{"1":"a"}'
    assert js.serialize(2**80) == str(2**80)
    assert js.deserialize(str(2**80)) == 2**80
    assert js.serialize("\ud800") == '"\\ud800"'  # storable as UTF-8
    assert js.deserialize('"\\ud800"') == "\ud800"
    assert js.deserialize(js.serialize("\ud800\udc00")) == "\U00010000"  # JSON merges pairs


@pytest.mark.parametrize(
    ("value", "type_name", "reason"),
    [
        (Opaque(), OPAQUE, "Object of type Opaque is not JSON serializable"),
        (float("nan"), "float", "Out of range float values are not JSON compliant.*"),
        ({"a": {1, 2}}, "dict", "Object of type set is not JSON serializable"),
    ],
)
def test_json_serdes_errors(value: Any, type_name: str, reason: str) -> None:
    with pytest.raises(
        SerializationError,
        match=rf"^cannot serialize value of type {re.escape(type_name)} as JSON: {reason}; "
        r"return JSON-compatible data, or pass another serdes=\.\.\. to the operation$",
    ) as info:
        JsonSerdes().serialize(value)
    assert info.value.value_type == type_name


def test_json_serdes_rejects_circular_values_and_malformed_payloads() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(SerializationError, match=r"Circular reference detected"):
        JsonSerdes().serialize(value)
    with pytest.raises(SerializationError, match=_bad("{", r"not valid JSON \(.*\)")):
        JsonSerdes().deserialize("{")
    with pytest.raises(SerializationError, match=r"not valid JSON"):
        JsonSerdes().deserialize("cbor:AQ==")


def test_pass_through_serdes() -> None:
    pt = PassThroughSerdes()
    text = '{"not": "parsed"} \ud800'
    assert pt.serialize(text) is text
    assert pt.deserialize(text) is text
    assert pt.serialize("") == ""
    stored = pt.serialize(Letter.A)
    assert stored == "a"
    assert type(stored) is str
    with pytest.raises(
        SerializationError,
        match=r"^PassThroughSerdes can only store a str, not bytes; return a str, "
        r"or use another serdes=\.\.\. for the operation$",
    ) as info:
        pt.serialize(b"x")
    assert info.value.value_type == "bytes"
    with pytest.raises(SerializationError, match=r"not int"):
        pt.serialize(1)


def test_serdes_protocol_and_reprs() -> None:
    for serdes in (DEFAULT_SERDES, DefaultSerdes(), JsonSerdes(), PassThroughSerdes()):
        assert isinstance(serdes, Serdes)
        assert serdes  # `serdes or DEFAULT_SERDES` must keep a given serdes
        assert repr(serdes) == f"{type(serdes).__name__}()"
    assert not isinstance(object(), Serdes)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (1, "int"),
        (None, "NoneType"),
        (Decimal(1), "decimal.Decimal"),
        (datetime(2020, 1, 1), "datetime.datetime"),
        (collections.OrderedDict(), "collections.OrderedDict"),
        (Opaque(), OPAQUE),
        (Point(1, 2), f"{Point.__module__}.Point"),
        (Opaque, "type"),
    ],
)
def test_describe_type(value: Any, name: str) -> None:
    assert describe_type(value) == name


def test_nested_class_names_are_qualified() -> None:
    class Inner:
        pass

    assert describe_type(Inner()) == (
        f"{__name__}.test_nested_class_names_are_qualified.<locals>.Inner"
    )


@given(any_values, st.data())
def test_corrupted_cbor_payloads_are_a_value_or_a_serialization_error(
    value: Any, data: st.DataObject
) -> None:
    payload = S.serialize(value)
    raw = bytearray(
        base64.b64decode(payload[len(CBOR_PREFIX) :])
        if payload.startswith(CBOR_PREFIX)
        else cbor2.dumps(None)
    )
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(SerializationError):
        S.deserialize(CBOR_PREFIX + base64.b64encode(bytes(raw)).decode("ascii"))
