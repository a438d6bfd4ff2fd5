"""Serializers ("serdes") that turn operation results into checkpoint payloads.

Every result durable_gen checkpoints is stored as a *string payload*. A ``Serdes``
turns a value into such a string and back. Three are provided:

- ``DefaultSerdes`` (``DEFAULT_SERDES``), used unless an operation is given
  ``serdes=...``. It round-trips values *exactly*: the value read back has the same
  type and value as the one written, at every level of nesting.
- ``JsonSerdes``: plain JSON only, for users who want nothing else in their log.
- ``PassThroughSerdes``: the value is already a string and is stored as it is.

Which encoding, where (as AWS's SDK writes them)
------------------------------------------------

The log is meant to read like the one AWS's Python SDK writes for the same
program, so every payload durable_gen writes by default is JSON whenever JSON can
carry the value:

- step results, child-context and branch results, wait-for-condition states,
  invoke payloads and results: ``DefaultSerdes`` -- plain compact JSON for
  JSON-native values (below), CBOR only for values JSON cannot carry exactly;
- callback results: ``PassThroughSerdes`` (the text the external system sent);
- the result of a Parallel or a Map, and a workflow's result when it is a
  ``BatchResult``: ``BatchSerdes`` -- the JSON record AWS's SDK writes for a batch
  (``BatchResult.to_dict()``: ``{"all": [{"index", "status", "result", "error"}],
  "completionReason"}``), which ``json.loads`` reads back into that shape; CBOR
  only when an item's result is not JSON-native;
- the workflow's input and result: ``DefaultSerdes`` (a Lambda function's result
  must be JSON: the Lambda shim refuses one that is not).

CBOR (or another encoding) is used only where the user asked for it
(``serdes=...`` on the operation) or where JSON cannot carry the value. (AWS's SDK
writes non-primitive values in its own ``{"t": tag, "v": ...}`` envelope; its
values and durable_gen's decode to the same data, which is what a history
comparison compares.) A ``BatchResult`` nested inside another value (a child
context returning one, say) is not JSON-native: it is stored as CBOR so that it
reads back as a ``BatchResult``.

Format of ``DefaultSerdes`` payloads
------------------------------------

*JSON-native* values are stored as compact plain JSON text, exactly as
``json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``
writes it, so ``"task-1"`` is stored as ``'"task-1"'`` and ``{"a": [1, 2]}`` as
``'{"a":[1,2]}'`` (other SDKs and recorded histories compare payloads literally).
A value is JSON-native when it is built only from ``None``, ``bool``, ``str``, ``int``
in the JavaScript safe range ``-(2**53 - 1) .. 2**53 - 1``, finite ``float``,
``list`` and ``dict`` with ``str`` keys, all of exactly these types (``type(x) is
...``: subclasses such as ``IntEnum``, ``OrderedDict`` or ``StrEnum`` are not
JSON-native). Strings holding surrogate code points (U+D800..U+DFFF) are not
JSON-native either: written raw they could not be stored as UTF-8, and written as
``\\uXXXX`` escapes a high surrogate followed by a low one would read back as one
character.

Every other value is stored as ``"cbor:"`` followed by the standard base64 (with
padding) of one CBOR data item (RFC 8949). No JSON text starts with ``c``, so the
prefix is unambiguous: ``deserialize`` reads CBOR when the payload starts with
``"cbor:"`` and JSON otherwise. In the CBOR item, ``None``, ``bool``, ``int`` (of any
size, using bignums past 64 bits), ``float`` (including nan, infinities and -0.0),
``str``, ``bytes``, ``list`` and ``dict`` with ``str`` keys are the native CBOR
items; everything else is a tagged item, with these private tag numbers (from the
first-come-first-served range, not registered with IANA; only durable_gen reads them):

============  ====================  ==================================================
tag           Python type           tag content
============  ====================  ==================================================
1684300000    tuple                 array of the items
1684300001    bytearray             byte string
1684300002    set                   array of the items, sorted by their CBOR encoding
1684300003    frozenset             array of the items, sorted by their CBOR encoding
1684300004    dict (non-str keys)   array ``[k0, v0, k1, v1, ...]`` in dict order
1684300005    collections.          array ``[k0, v0, k1, v1, ...]`` in dict order
              OrderedDict
1684300006    datetime.datetime     ``[year, month, day, hour, minute, second,
                                    microsecond, fold, tz]``
1684300007    datetime.date         ``[year, month, day]``
1684300008    datetime.time         ``[hour, minute, second, microsecond, fold, tz]``
1684300009    datetime.timedelta    ``[days, seconds, microseconds]``
1684300010    decimal.Decimal       text ``str(value)`` (keeps sign, digits, exponent,
                                    NaN, sNaN and infinities)
1684300011    uuid.UUID             16-byte byte string ``value.bytes``
1684300012    fractions.Fraction    ``[numerator, denominator]``
1684300013    complex               ``[real, imag]`` (two floats)
1684300014    str                   byte string: UTF-8 with ``surrogatepass`` (only for
                                    strings holding surrogate code points)
1684300015    BatchResult           its record (``BatchResult.to_record()``)
============  ====================  ==================================================

``tz`` is ``null`` for a naive value, the UTC offset in microseconds (an integer) for
a ``datetime.timezone`` created without a name, or ``[offset, name]`` for one created
with a name. Other ``tzinfo`` classes (``zoneinfo.ZoneInfo``, pytz, dateutil) are
rejected: their rules live outside the value.

Values nothing can encode exactly (arbitrary objects, functions, generators,
subclasses of the types above, other ``tzinfo`` classes, circular references,
containers nested more than ``MAX_NESTING`` deep outside plain JSON) raise
``SerializationError``; a payload never reads back as something different from the
value written. Malformed payloads raise ``SerializationError`` too.

Encoding is deterministic: the same value gives the same payload, in any process
(set items are ordered by their encoding, not by hash).

(Why one module of ~930 lines: it is one codec -- every value type's encoding and
decoding, JSON, CBOR tags and AWS's batch record, and the limits that guard them --
and a reader checks the two directions against each other in one place.)
"""

from __future__ import annotations

import base64
import binascii
import builtins
import decimal
import io
import json
import json.scanner
import math
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from fractions import Fraction
from typing import Any, Final, NoReturn, Protocol, runtime_checkable

import cbor2

from .batch import BatchResult
from .errors import SerializationError

__all__ = [
    "BATCH_SERDES",
    "CBOR_PREFIX",
    "DEFAULT_SERDES",
    "MAX_NESTING",
    "BatchSerdes",
    "DefaultSerdes",
    "JsonSerdes",
    "PassThroughSerdes",
    "Serdes",
    "describe_type",
]

CBOR_PREFIX: Final = "cbor:"
"""The prefix of a ``DefaultSerdes`` payload holding base64-encoded CBOR."""

MAX_NESTING: Final = 180
"""How deeply containers may nest in a value stored as CBOR (the CBOR decoder allows
400 levels, and a tagged container takes two)."""

_TAG_BASE: Final = 1684300000
TAG_TUPLE: Final = _TAG_BASE + 0
TAG_BYTEARRAY: Final = _TAG_BASE + 1
TAG_SET: Final = _TAG_BASE + 2
TAG_FROZENSET: Final = _TAG_BASE + 3
TAG_DICT: Final = _TAG_BASE + 4
TAG_ORDEREDDICT: Final = _TAG_BASE + 5
TAG_DATETIME: Final = _TAG_BASE + 6
TAG_DATE: Final = _TAG_BASE + 7
TAG_TIME: Final = _TAG_BASE + 8
TAG_TIMEDELTA: Final = _TAG_BASE + 9
TAG_DECIMAL: Final = _TAG_BASE + 10
TAG_UUID: Final = _TAG_BASE + 11
TAG_FRACTION: Final = _TAG_BASE + 12
TAG_COMPLEX: Final = _TAG_BASE + 13
TAG_SURROGATE_STR: Final = _TAG_BASE + 14
TAG_BATCH_RESULT: Final = _TAG_BASE + 15

_MAX_SAFE_INT: Final = 2**53 - 1
_CBOR_MAX_DEPTH: Final = 400  # cbor2's default; its native decoder must not go deeper
_EXCERPT_LEN: Final = 80
_FIX_HINT: Final = "return JSON-compatible data, or pass serdes=... to the operation"

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_isfinite: Final = math.isfinite

# One encoder each, built once: json.dumps builds a new JSONEncoder on every call
# when given options. check_circular is off because values reaching these encoders
# were walked first (a circular value never gets here).
_json_encode: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
).encode
_json_encode_ascii: Final = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, check_circular=False, separators=(",", ":")
).encode
_json_encode_checked: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode

# A context that raises on a malformed decimal string instead of returning NaN; the
# Decimal constructor is exact whatever the context's precision and exponent limits.
_DECIMAL_CONTEXT: Final = decimal.Context(traps=[decimal.InvalidOperation])


@runtime_checkable
class Serdes(Protocol):
    """Turns values into string payloads and back."""

    def serialize(self, value: Any) -> str:
        """Return the payload for ``value``; raise ``SerializationError`` if impossible."""
        ...

    def deserialize(self, data: str) -> Any:
        """Return the value of a payload; raise ``SerializationError`` if malformed."""
        ...


def describe_type(value: object) -> str:
    """The qualified name of ``value``'s type: ``"int"``, ``"decimal.Decimal"``, ``"mod.Foo"``."""
    return _type_name(type(value))


def _type_name(cls: type) -> str:
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", repr(cls))
    module = getattr(cls, "__module__", None)
    if not module or module == "builtins":
        return str(qualname)
    return f"{module}.{qualname}"


def _excerpt(data: str) -> str:
    """``repr`` of the start of ``data``, at most ``_EXCERPT_LEN`` characters long."""
    text = repr(data)
    if len(text) <= _EXCERPT_LEN:
        return text
    n = min(len(data), _EXCERPT_LEN)
    while n > 0:
        text = repr(data[:n]) + "..."
        if len(text) <= _EXCERPT_LEN:
            return text
        n -= 1
    return "..."  # pragma: no cover - repr of one character is at most 12 characters


def _malformed(data: str, problem: str) -> SerializationError:
    return SerializationError(f"cannot deserialize payload {_excerpt(data)}: {problem}")


def _check_payload_type(data: object) -> None:
    if not isinstance(data, str):
        raise SerializationError(
            f"cannot deserialize a payload of type {describe_type(data)}: a payload must be a str",
            value_type=describe_type(data),
        )


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


# --------------------------------------------------------------------------- JSON check


_UNCHECKED_SCALARS: Final[frozenset[type]] = frozenset({str, bool, type(None)})
_INT_ONLY: Final[frozenset[type]] = frozenset({int})
_FLOAT_ONLY: Final[frozenset[type]] = frozenset({float})


def _is_json_native(value: Any) -> bool:
    """Whether ``value`` is plain JSON data that JSON reads back with identical types."""
    t = type(value)
    if t is list:
        if len(value) >= 8:  # long lists are often all of one scalar type: check in C
            kinds = set(map(type, value))
            if kinds <= _UNCHECKED_SCALARS:
                return True
            if kinds == _INT_ONLY:
                return bool(min(value) >= -_MAX_SAFE_INT and max(value) <= _MAX_SAFE_INT)
            if kinds == _FLOAT_ONLY:
                return all(map(_isfinite, value))
        items = value
    elif t is dict:
        for key in value:
            if type(key) is not str:
                return False
        items = value.values()
    else:
        return _is_json_scalar(value)
    # Scalars are checked inline: a call per item would double the cost of the check.
    for item in items:
        t = type(item)
        if t is str or item is None or t is bool:
            continue
        if t is int:
            if -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                continue
            return False
        if t is float:
            if _isfinite(item):
                continue
            return False
        if (t is list or t is dict) and _is_json_native(item):
            continue
        return False
    return True


def _is_json_scalar(value: Any) -> bool:
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT  # type: ignore[no-any-return]
    if t is float:
        return _isfinite(value)
    return False


# --------------------------------------------------------------------------- CBOR encode


class _Unencodable(Exception):
    """Raised inside the encoding walk; the path to the value is added while unwinding."""

    def __init__(self, value: object, problem: str) -> None:
        super().__init__(problem)
        self.value_type = describe_type(value)
        self.problem = problem
        # Innermost first: ("item", "[3]"), ("attr", ".tzinfo") or ("member", "3"),
        # the last meaning the 3rd key of a dict or item of a set: list(...)[3].
        self.segments: list[tuple[str, str]] = []

    def location(self) -> str:
        loc = "value"
        for kind, text in reversed(self.segments):
            loc = f"list({loc})[{text}]" if kind == "member" else loc + text
        return loc


def _key_text(key: object) -> str:
    if type(key) is str:
        return json.dumps(key if len(key) <= 40 else key[:40] + "...", ensure_ascii=False)
    try:
        text = repr(key)
    except ValueError:  # an int too large for str() under sys.set_int_max_str_digits
        return f"<{describe_type(key)}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _clean_str(s: str) -> bool:
    return s.isascii() or _SURROGATE.search(s) is None


def _cbor_str(s: str) -> Any:
    """A ``str`` as CBOR text, or tagged bytes when it holds surrogate code points."""
    if _clean_str(s):
        return s
    return cbor2.CBORTag(TAG_SURROGATE_STR, s.encode("utf-8", "surrogatepass"))


def _unsupported(value: object) -> _Unencodable:
    cls = type(value)
    detail = ""
    for base in cls.__mro__[1:]:
        if base in _ENCODERS or base in _NATIVE_TYPES:
            name = _type_name(base)
            detail = f" (a subclass of {name}: convert it to a plain {name} first)"
            break
    return _Unencodable(value, f"type {_type_name(cls)} is not supported{detail}")


class _CborEncoder:
    """Walks a value into a tree cbor2 encodes natively: scalars, lists, str-keyed
    dicts and ``CBORTag``s."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active: set[int] = set()  # ids of the containers being walked

    def walk(self, value: Any, depth: int) -> Any:
        t = type(value)
        if t is str:
            return _cbor_str(value)
        if t is int or t is float or t is bool or t is bytes or value is None:
            return value
        encode = _ENCODERS.get(t)
        if encode is None:
            raise _unsupported(value)
        return encode(self, value, depth)

    def enter(self, value: object, depth: int) -> None:
        if depth >= MAX_NESTING:
            raise SerializationError(
                f"cannot serialize value: it is nested more than {MAX_NESTING} containers "
                f"deep; {_FIX_HINT}",
                value_type=describe_type(value),
            )
        key = id(value)
        if key in self.active:
            raise _Unencodable(
                value, f"circular reference (the {describe_type(value)} contains itself)"
            )
        self.active.add(key)

    def items(self, value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
        self.enter(value, depth)
        out = []
        for i, item in enumerate(value):
            try:
                out.append(self.walk(item, depth + 1))
            except _Unencodable as exc:
                exc.segments.append(("item", f"[{i}]"))
                raise
        self.active.discard(id(value))
        return out

    def pairs(self, value: dict[Any, Any], depth: int) -> list[Any]:
        self.enter(value, depth)
        out = []
        for i, (key, item) in enumerate(value.items()):
            try:
                out.append(self.walk(key, depth + 1))
            except _Unencodable as exc:
                exc.segments.append(("member", str(i)))
                raise
            try:
                out.append(self.walk(item, depth + 1))
            except _Unencodable as exc:
                exc.segments.append(("item", f"[{_key_text(key)}]"))
                raise
        self.active.discard(id(value))
        return out

    def members(self, value: set[Any] | frozenset[Any], depth: int) -> list[Any]:
        self.enter(value, depth)
        encoded = []
        for i, item in enumerate(value):
            try:
                tree = self.walk(item, depth + 1)
            except _Unencodable as exc:
                exc.segments.append(("member", str(i)))
                raise
            encoded.append((cbor2.dumps(tree), tree))
        self.active.discard(id(value))
        encoded.sort(key=lambda pair: pair[0])
        return [tree for _, tree in encoded]

    def enc_list(self, value: list[Any], depth: int) -> Any:
        return self.items(value, depth)

    def enc_tuple(self, value: tuple[Any, ...], depth: int) -> Any:
        return cbor2.CBORTag(TAG_TUPLE, self.items(value, depth))

    def enc_dict(self, value: dict[Any, Any], depth: int) -> Any:
        for key in value:
            if type(key) is not str or not _clean_str(key):
                return cbor2.CBORTag(TAG_DICT, self.pairs(value, depth))
        self.enter(value, depth)
        out = {}
        for key, item in value.items():
            try:
                out[key] = self.walk(item, depth + 1)
            except _Unencodable as exc:
                exc.segments.append(("item", f"[{_key_text(key)}]"))
                raise
        self.active.discard(id(value))
        return out

    def enc_ordereddict(self, value: OrderedDict[Any, Any], depth: int) -> Any:
        return cbor2.CBORTag(TAG_ORDEREDDICT, self.pairs(value, depth))

    def enc_set(self, value: set[Any], depth: int) -> Any:
        return cbor2.CBORTag(TAG_SET, self.members(value, depth))

    def enc_frozenset(self, value: frozenset[Any], depth: int) -> Any:
        return cbor2.CBORTag(TAG_FROZENSET, self.members(value, depth))

    def enc_bytearray(self, value: bytearray, depth: int) -> Any:
        return cbor2.CBORTag(TAG_BYTEARRAY, bytes(value))

    def enc_datetime(self, value: datetime, depth: int) -> Any:
        tz = self.tz(value)
        return cbor2.CBORTag(
            TAG_DATETIME,
            [
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
                value.fold,
                tz,
            ],
        )

    def enc_date(self, value: date, depth: int) -> Any:
        return cbor2.CBORTag(TAG_DATE, [value.year, value.month, value.day])

    def enc_time(self, value: time, depth: int) -> Any:
        tz = self.tz(value)
        return cbor2.CBORTag(
            TAG_TIME,
            [value.hour, value.minute, value.second, value.microsecond, value.fold, tz],
        )

    @staticmethod
    def tz(value: datetime | time) -> Any:
        info: tzinfo | None = value.tzinfo
        if info is None:
            return None
        if type(info) is not timezone:
            exc = _Unencodable(
                info,
                f"type {describe_type(info)} is not supported (of the tzinfo classes, only "
                "datetime.timezone fixed offsets can be stored)",
            )
            exc.segments.append(("attr", ".tzinfo"))
            raise exc
        args = info.__getinitargs__()  # type: ignore[attr-defined] # (offset,) or (offset, name)
        offset = args[0] // timedelta(microseconds=1)
        return offset if len(args) == 1 else [offset, _cbor_str(args[1])]

    def enc_timedelta(self, value: timedelta, depth: int) -> Any:
        return cbor2.CBORTag(TAG_TIMEDELTA, [value.days, value.seconds, value.microseconds])

    def enc_decimal(self, value: decimal.Decimal, depth: int) -> Any:
        return cbor2.CBORTag(TAG_DECIMAL, str(value))

    def enc_uuid(self, value: uuid.UUID, depth: int) -> Any:
        return cbor2.CBORTag(TAG_UUID, value.bytes)

    def enc_fraction(self, value: Fraction, depth: int) -> Any:
        return cbor2.CBORTag(TAG_FRACTION, [value.numerator, value.denominator])

    def enc_complex(self, value: complex, depth: int) -> Any:
        return cbor2.CBORTag(TAG_COMPLEX, [value.real, value.imag])


_NATIVE_TYPES: Final[frozenset[type]] = frozenset({str, int, float, bool, bytes})
_ENCODERS: Final[dict[type, Callable[[_CborEncoder, Any, int], Any]]] = {
    list: _CborEncoder.enc_list,
    tuple: _CborEncoder.enc_tuple,
    dict: _CborEncoder.enc_dict,
    OrderedDict: _CborEncoder.enc_ordereddict,
    set: _CborEncoder.enc_set,
    frozenset: _CborEncoder.enc_frozenset,
    bytearray: _CborEncoder.enc_bytearray,
    datetime: _CborEncoder.enc_datetime,
    date: _CborEncoder.enc_date,
    time: _CborEncoder.enc_time,
    timedelta: _CborEncoder.enc_timedelta,
    decimal.Decimal: _CborEncoder.enc_decimal,
    uuid.UUID: _CborEncoder.enc_uuid,
    Fraction: _CborEncoder.enc_fraction,
    complex: _CborEncoder.enc_complex,
    BatchResult: lambda enc, value, depth: cbor2.CBORTag(
        TAG_BATCH_RESULT, enc.walk(value.to_record(), depth + 1)
    ),
}


def _encode_cbor(value: Any) -> str:
    try:
        tree = _CborEncoder().walk(value, 0)
    except _Unencodable as exc:
        raise SerializationError(
            f"cannot serialize {exc.location()}: {exc.problem}; {_FIX_HINT}",
            value_type=exc.value_type,
        ) from None
    except RecursionError:
        raise SerializationError(
            f"cannot serialize value: it is nested too deeply; {_FIX_HINT}",
            value_type=describe_type(value),
        ) from None
    return CBOR_PREFIX + base64.b64encode(cbor2.dumps(tree)).decode("ascii")


# --------------------------------------------------------------------------- CBOR decode


class _Malformed(Exception):
    """The CBOR item is well-formed CBOR but not something DefaultSerdes writes."""


def _reject_shared(value: object, immutable: bool) -> NoReturn:
    # Value sharing (tags 28/29) could build cycles or exponentially large values.
    raise _Malformed("shared values (CBOR tags 28/29) are not supported")


_SEMANTIC_OVERRIDES: Final[dict[int, Any]] = {28: _reject_shared, 29: _reject_shared}
_ARRAY_TYPES: Final[frozenset[type]] = frozenset({list, tuple})
# cbor2 decodes maps inside tags as its frozendict (the builtin one from Python 3.15).
_MAP_TYPES: Final[frozenset[type]] = frozenset(
    {dict, getattr(cbor2, "frozendict", dict), getattr(builtins, "frozendict", dict)}
)


def _array(content: Any, length: int | None = None) -> list[Any] | tuple[Any, ...]:
    if type(content) not in _ARRAY_TYPES:
        raise _Malformed(f"expected an array, got {describe_type(content)}")
    if length is not None and len(content) != length:
        raise _Malformed(f"expected an array of {length} items, got {len(content)}")
    return content  # type: ignore[no-any-return]


def _ints(content: Any, length: int) -> list[int]:
    items = list(_array(content, length))
    for item in items:
        if type(item) is not int:
            raise _Malformed(f"expected integers, got {describe_type(item)}")
    return items


def _typed(content: Any, cls: type) -> Any:
    if type(content) is not cls:
        raise _Malformed(f"expected {_type_name(cls)}, got {describe_type(content)}")
    return content


def _from_cbor(item: Any) -> Any:
    t = type(item)
    if t is str or t is int or t is float or t is bool or t is bytes or item is None:
        return item
    if t in _ARRAY_TYPES:
        return [_from_cbor(x) for x in item]
    if t in _MAP_TYPES:
        out = {}
        for key, value in item.items():
            if type(key) is not str:
                raise _Malformed(f"unsupported CBOR map key of type {describe_type(key)}")
            out[key] = _from_cbor(value)
        return out
    if t is cbor2.CBORTag:
        decode = _DECODERS.get(item.tag)
        if decode is None:
            raise _Malformed(f"unsupported CBOR tag {item.tag}")
        try:
            return decode(item.value)
        except _Malformed as exc:
            raise _Malformed(f"bad content for CBOR tag {item.tag}: {exc}") from None
    raise _Malformed(f"unsupported CBOR item of type {describe_type(item)}")


def _dec_pairs(content: Any) -> list[tuple[Any, Any]]:
    items = [_from_cbor(x) for x in _array(content)]
    if len(items) % 2:
        raise _Malformed("expected an even number of items")
    return list(zip(items[::2], items[1::2], strict=True))


def _dec_tz(content: Any) -> timezone | None:
    if content is None:
        return None
    if type(content) is int:
        return timezone(timedelta(microseconds=content))
    offset, name = _array(content, 2)
    return timezone(timedelta(microseconds=_typed(offset, int)), _typed(_from_cbor(name), str))


def _dec_datetime(content: Any) -> datetime:
    items = _array(content, 9)
    y, mo, d, h, mi, s, us, fold = _ints(items[:8], 8)
    return datetime(y, mo, d, h, mi, s, us, tzinfo=_dec_tz(items[8]), fold=fold)


def _dec_time(content: Any) -> time:
    items = _array(content, 6)
    h, mi, s, us, fold = _ints(items[:5], 5)
    return time(h, mi, s, us, tzinfo=_dec_tz(items[5]), fold=fold)


def _dec_date(content: Any) -> date:
    y, mo, d = _ints(content, 3)
    return date(y, mo, d)


def _dec_timedelta(content: Any) -> timedelta:
    days, seconds, microseconds = _ints(content, 3)
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _dec_decimal(content: Any) -> decimal.Decimal:
    text = _typed(content, str)
    value = decimal.Decimal(text, _DECIMAL_CONTEXT)
    if str(value) != text:
        raise _Malformed(f"non-canonical decimal {text!r}")
    return value


def _dec_fraction(content: Any) -> Fraction:
    numerator, denominator = _ints(content, 2)
    value = Fraction(numerator, denominator)
    if value.numerator != numerator or value.denominator != denominator:
        raise _Malformed(f"non-canonical fraction {numerator}/{denominator}")
    return value


def _dec_complex(content: Any) -> complex:
    real, imag = _array(content, 2)
    return complex(_typed(real, float), _typed(imag, float))


_DECODERS: Final[dict[int, Callable[[Any], Any]]] = {
    TAG_TUPLE: lambda c: tuple(_from_cbor(x) for x in _array(c)),
    TAG_BYTEARRAY: lambda c: bytearray(_typed(c, bytes)),
    TAG_SET: lambda c: {_from_cbor(x) for x in _array(c)},
    TAG_FROZENSET: lambda c: frozenset(_from_cbor(x) for x in _array(c)),
    TAG_DICT: lambda c: dict(_dec_pairs(c)),
    TAG_ORDEREDDICT: lambda c: OrderedDict(_dec_pairs(c)),
    TAG_DATETIME: _dec_datetime,
    TAG_DATE: _dec_date,
    TAG_TIME: _dec_time,
    TAG_TIMEDELTA: _dec_timedelta,
    TAG_DECIMAL: _dec_decimal,
    TAG_UUID: lambda c: uuid.UUID(bytes=_typed(c, bytes)),
    TAG_FRACTION: _dec_fraction,
    TAG_COMPLEX: _dec_complex,
    TAG_SURROGATE_STR: lambda c: _typed(c, bytes).decode("utf-8", "surrogatepass"),
    TAG_BATCH_RESULT: lambda c: _dec_batch_result(_from_cbor(c)),
}


def _dec_batch_result(record: Any) -> BatchResult[Any]:
    try:
        return BatchResult.from_record(record)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _Malformed(f"not a batch result ({type(e).__name__}: {e})") from None


def _decode_cbor(data: str) -> Any:
    try:
        raw = base64.b64decode(data[len(CBOR_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(data, f'invalid base64 after "{CBOR_PREFIX}"') from None
    stream = io.BytesIO(raw)
    try:
        item = cbor2.CBORDecoder(
            stream,
            semantic_decoders=_SEMANTIC_OVERRIDES,
            max_depth=_CBOR_MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, _Malformed) else exc
        raise _malformed(data, f"invalid CBOR ({cause})") from None
    extra = len(raw) - stream.tell()
    if extra:
        raise _malformed(data, f"invalid CBOR ({extra} unexpected bytes after the item)")
    try:
        return _from_cbor(item)
    except _Malformed as exc:
        raise _malformed(data, str(exc)) from None
    except (
        TypeError,
        ValueError,
        ArithmeticError,
        RecursionError,
    ) as exc:
        raise _malformed(data, f"invalid content ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- serdes


_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


class DefaultSerdes:
    """Exact round trips: plain compact JSON for JSON data, tagged CBOR for the rest.

    See the module docstring for the payload format.
    """

    __slots__ = ()

    def serialize(self, value: Any) -> str:
        # Fast paths for scalars; the text is what json.dumps writes for them.
        t = type(value)
        if t is str:
            if value.isascii() or _SURROGATE.search(value) is None:
                return _json_encode(value)
            return _encode_cbor(value)
        if t is int:
            if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                return int.__repr__(value)
            return _encode_cbor(value)
        if t is float:
            return float.__repr__(value) if _isfinite(value) else _encode_cbor(value)
        try:
            native = _is_json_native(value)
        except RecursionError:
            native = False  # too deep for the check: the CBOR walk reports it
        if native:
            try:
                text: str = _json_encode(value)
            except RecursionError:
                pass
            else:
                if text.isascii() or _SURROGATE.search(text) is None:
                    return text
        return _encode_cbor(value)

    def deserialize(self, data: str) -> Any:
        # Fast path: the C scanner reads a payload this serdes wrote (compact JSON, no
        # surrounding white space) without json.loads' Python-level checks; anything
        # else -- CBOR, white space, malformed text -- takes the full path below.
        if type(data) is str:
            try:
                value, end = _scan_once(data, 0)
            except (StopIteration, ValueError, RecursionError):
                pass
            else:
                if end == len(data):
                    return value
        _check_payload_type(data)
        if data.startswith(CBOR_PREFIX):
            return _decode_cbor(data)
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise _malformed(data, f"not valid JSON ({exc})") from None
        except (ValueError, RecursionError) as exc:  # an int of too many digits; depth
            raise _malformed(data, f"not readable JSON ({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return "DefaultSerdes()"


DEFAULT_SERDES: Final = DefaultSerdes()


class BatchSerdes:
    """The payload of a Parallel or a Map: AWS's JSON record of its ``BatchResult``.

    ``serialize(batch)`` writes ``batch.to_record()`` (AWS's ``BatchResult.to_dict()``
    shape) as compact JSON when every item's result is JSON-native, and the
    ``DefaultSerdes`` payload otherwise (CBOR, exact). ``deserialize`` reads either
    back into a ``BatchResult``. Values that are not a ``BatchResult`` are handed to
    ``DefaultSerdes`` both ways.
    """

    __slots__ = ()

    def serialize(self, value: Any) -> str:
        if type(value) is BatchResult:
            record = value.to_record()
            try:
                native = _is_json_native(record)
            except RecursionError:
                native = False
            if native:
                try:
                    text: str = _json_encode(record)
                except RecursionError:
                    pass
                else:
                    if not _has_surrogate(text):
                        return text
        return DEFAULT_SERDES.serialize(value)

    def deserialize(self, data: str) -> Any:
        value = DEFAULT_SERDES.deserialize(data)
        if type(value) is dict:
            try:
                return BatchResult.from_record(value)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise _malformed(data, f"not a batch result ({type(e).__name__}: {e})") from None
        return value

    def __repr__(self) -> str:
        return "BatchSerdes()"


BATCH_SERDES: Final = BatchSerdes()


class JsonSerdes:
    """Plain JSON: ``json.dumps`` (compact, ``allow_nan=False``) and ``json.loads``.

    Lossy the way JSON is (tuples come back as lists, int keys as str keys); values
    JSON cannot hold raise ``SerializationError``. The text of a value is the same as
    with ``DefaultSerdes`` whenever that one writes JSON. Text holding surrogate code
    points is written with ``\\uXXXX`` escapes (``ensure_ascii=True``) so that it can be
    stored as UTF-8; as with any JSON, a high surrogate followed by a low one then reads
    back as the one character they encode.
    """

    __slots__ = ()

    def serialize(self, value: Any) -> str:
        try:
            text: str = _json_encode_checked(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(
                f"cannot serialize value of type {describe_type(value)} as JSON: {exc}; "
                "return JSON-compatible data, or pass another serdes=... to the operation",
                value_type=describe_type(value),
            ) from None
        if _has_surrogate(text):
            return _json_encode_ascii(value)
        return text

    def deserialize(self, data: str) -> Any:
        _check_payload_type(data)
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise _malformed(data, f"not valid JSON ({exc})") from None
        except (ValueError, RecursionError) as exc:  # an int of too many digits; depth
            raise _malformed(data, f"not readable JSON ({type(exc).__name__}: {exc})") from None

    def __repr__(self) -> str:
        return "JsonSerdes()"


class PassThroughSerdes:
    """For values that are already strings: the payload is the string itself.

    A ``str`` subclass (a ``StrEnum`` member, say) is stored, and read back, as a
    plain ``str``.
    """

    __slots__ = ()

    def serialize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise SerializationError(
                f"PassThroughSerdes can only store a str, not {describe_type(value)}; "
                "return a str, or use another serdes=... for the operation",
                value_type=describe_type(value),
            )
        return str.__str__(value)

    def deserialize(self, data: str) -> Any:
        _check_payload_type(data)
        return data

    def __repr__(self) -> str:
        return "PassThroughSerdes()"
