"""The checkpoint log, in the shapes of the AWS Lambda durable-execution API.

Pure value types: :class:`Operation` (a recorded operation, the API's ``Operation``)
and :class:`OperationUpdate` (one item of ``CheckpointDurableExecution.Updates``),
their enums, the deterministic id scheme, and the conversion to and from the wire
dictionaries (``to_dict`` / ``from_dict``).

Internally the per-type ``*Details`` objects of the wire shape are flattened onto
the operation (``result``, ``error``, ``attempt`` ...); ``to_dict`` puts each field
back under the details object its type uses, so the wire shape is exact.

Timestamps are integers of epoch milliseconds, as in the invocation event.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs

from .errors import (
    CorruptLogError,
    ErrorObject,
    brief,
)

_T = TypeVar("_T")

__all__ = [
    "Operation",
    "OperationAction",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "OperationUpdate",
    "TERMINAL_STATUSES",
    "operation_id",
]


class OperationType(enum.StrEnum):
    EXECUTION = "EXECUTION"
    CONTEXT = "CONTEXT"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationStatus(enum.StrEnum):
    STARTED = "STARTED"
    PENDING = "PENDING"
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"


TERMINAL_STATUSES = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)


class OperationAction(enum.StrEnum):
    START = "START"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    RETRY = "RETRY"
    CANCEL = "CANCEL"


class OperationSubType(enum.StrEnum):
    """The SubType values AWS records for each kind of operation."""

    STEP = "Step"
    WAIT = "Wait"
    WAIT_FOR_CONDITION = "WaitForCondition"
    CALLBACK = "Callback"
    WAIT_FOR_CALLBACK = "WaitForCallback"
    CHAINED_INVOKE = "ChainedInvoke"
    RUN_IN_CHILD_CONTEXT = "RunInChildContext"
    PARALLEL = "Parallel"
    PARALLEL_BRANCH = "ParallelBranch"
    MAP = "Map"
    MAP_ITERATION = "MapIteration"


def operation_id(parent_id: str | None, n: int) -> str:
    """Deterministic id of the ``n``-th (1-based) operation of a context.

    The same scheme as AWS: ``blake2b(f"{parent}-{n}")`` for an operation inside a
    child context, ``blake2b(str(n))`` at the root; hex digest cut to 64 chars.
    Root ids are the same in every execution, so the first ones are memoized.
    """
    if parent_id:
        return hashlib.blake2b(f"{parent_id}-{n}".encode()).hexdigest()[:64]
    if n < len(_ROOT_IDS):
        return _ROOT_IDS[n]
    op_id = hashlib.blake2b(str(n).encode()).hexdigest()[:64]
    if n == len(_ROOT_IDS) and n < _ROOT_ID_CACHE:
        _ROOT_IDS.append(op_id)
    return op_id


_ROOT_ID_CACHE = 1 << 15
_ROOT_IDS: list[str] = [hashlib.blake2b(b"0").hexdigest()[:64]]


_DETAILS_KEY = {
    OperationType.EXECUTION: "ExecutionDetails",
    OperationType.CONTEXT: "ContextDetails",
    OperationType.STEP: "StepDetails",
    OperationType.WAIT: "WaitDetails",
    OperationType.CALLBACK: "CallbackDetails",
    OperationType.CHAINED_INVOKE: "ChainedInvokeDetails",
}


_PLAIN_DEFAULTS = (type(None), bool, int, float, str)  # shared safely by every instance


def plain_attrs_class(cls: type) -> bool:
    """Whether ``cls``'s fields can be written slot by slot, bypassing ``__init__``.

    True when no field has a validator, converter, ``init=False`` or a default that
    is not an immutable scalar, and the class has no init hooks: then writing each
    slot through its descriptor builds exactly what ``__init__`` would. The
    generated constructors below check it and fall back to the class's own
    ``__init__`` / ``attrs.evolve`` otherwise.
    """
    return not (
        any(
            f.validator
            or f.converter
            or not f.init
            or not (f.default is attrs.NOTHING or isinstance(f.default, _PLAIN_DEFAULTS))
            for f in attrs.fields(cls)
        )
        or hasattr(cls, "__attrs_post_init__")
        or hasattr(cls, "__attrs_pre_init__")
    )


def _builder_class(cls: type) -> type | None:
    """A plain class with ``cls``'s slot layout, whose instances can become ``cls``'s.

    Writing a slot through its descriptor's ``__set__`` (what a frozen class leaves
    us) goes through a method-wrapper call that builds an argument tuple; a plain
    ``new.field = value`` on a class without ``__setattr__`` is a specialised
    store, several times cheaper. So a record is built as an instance of this twin
    and then switched to ``cls`` with one ``__class__`` assignment, which CPython
    allows between classes of identical layout (same slots, no ``__dict__``, no
    ``__weakref__`` slot after them). None when it refuses for ``cls``.
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None or cls.__bases__ != (object,):
        return None
    namespace = {"__slots__": tuple(slots), "__module__": cls.__module__}
    twin = type(f"_{cls.__name__}Builder", (object,), namespace)
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return twin


def _compile(
    cls: type,
    header: str,
    values: Sequence[tuple[str, str]],
    extra: Mapping[str, Any] | None = None,
    prologue: Sequence[str] = (),
) -> Any:
    """Compile a function (``header``) that builds a ``cls`` slot by slot and returns it.

    ``values``: each field's name and the expression giving its value, evaluated in
    a namespace with ``extra`` after the ``prologue`` lines. The record is built as
    an instance of :func:`_builder_class`'s twin and switched to ``cls``; where
    there is no twin, each slot is written through its descriptor.
    """
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **(extra or {})}
    twin = _builder_class(cls)
    if twin is not None:
        namespace["_twin"] = twin
        body = ["    new = _new(_twin)"]
        body += [f"    new.{name} = {value}" for name, value in values]
        body += ["    new.__class__ = _cls"]
    else:
        body = ["    new = _new(_cls)"]
        for name, value in values:
            namespace[f"_s_{name}"] = cls.__dict__[name].__set__
            body.append(f"    _s_{name}(new, {value})")
    src = "\n".join([header, *prologue, *body, "    return new"])
    exec(src, namespace)  # generated code, as attrs generates __init__
    return namespace[header[4 : header.index("(")]]


def _check_params(cls: type, params: Sequence[str]) -> None:
    names = {f.name for f in attrs.fields(cls)}
    unknown = [p for p in params if p not in names]
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {unknown}")


def positional_factory(cls: type[_T], params: Sequence[str]) -> Callable[..., _T]:
    """A constructor of the frozen, slotted attrs class ``cls`` taking ``params`` positionally.

    Every other field gets its default. attrs' ``__init__`` spends most of its time
    parsing keyword arguments (16 to 22 of them here) and writing slots through
    method-wrapper calls; this takes positional arguments and builds the record as
    :func:`_compile` does, an equal instance in a quarter of the time (a 22-field
    ``Operation``: 0.66 against 2.6 us), for the records built once or twice per
    step. When :func:`plain_attrs_class` is false it is ``cls(**kwargs)``.
    """
    klass = cast(Any, cls)
    _check_params(klass, params)
    fields = attrs.fields(klass)
    if not plain_attrs_class(klass):

        def slow(*args: Any) -> _T:
            return cls(**dict(zip(params, args, strict=True)))

        return slow
    missing = [f.name for f in fields if f.name not in params and f.default is attrs.NOTHING]
    if missing:
        raise TypeError(f"{cls.__name__} fields {missing} have no default: pass them")
    defaults = {f"_d_{f.name}": f.default for f in fields if f.name not in params}
    values = [(f.name, f.name if f.name in params else f"_d_{f.name}") for f in fields]
    make: Callable[..., _T] = _compile(klass, f"def make({', '.join(params)}):", values, defaults)
    return make


def dict_evolve(cls: type[_T]) -> Callable[[_T, Mapping[str, Any]], _T]:
    """``evolve(op, changes)``: ``attrs.evolve(op, **changes)``, generated for ``cls``.

    The generic ``attrs.evolve`` walks the fields with ``getattr``, builds keyword
    arguments and goes through the frozen ``__init__``; this copies each slot once
    as :func:`_compile` builds records, about 5x faster (every checkpoint update
    makes a new Operation this way). When :func:`plain_attrs_class` is false it is
    ``attrs.evolve``.
    """
    klass = cast(Any, cls)
    if not plain_attrs_class(klass):

        def slow(op: _T, changes: Mapping[str, Any]) -> _T:
            new: _T = attrs.evolve(cast(Any, op), **changes)
            return new

        return slow
    values = [(f.name, f"get({f.name!r}, op.{f.name})") for f in attrs.fields(klass)]
    evolve: Callable[[_T, Mapping[str, Any]], _T] = _compile(
        klass, "def evolve(op, changes):", values, prologue=["    get = changes.get"]
    )
    return evolve


def positional_evolve(cls: type[_T], params: Sequence[str]) -> Callable[..., _T]:
    """``evolve(op, *values)``: a copy of ``op`` with ``params`` set to ``values``.

    ``attrs.evolve(op, **dict(zip(params, values)))``, generated for one fixed set
    of changed fields: the others are copied slot to slot, without the keyword
    arguments and the per-field dict lookups of a generic evolve.
    """
    klass = cast(Any, cls)
    _check_params(klass, params)
    if not plain_attrs_class(klass):

        def slow(op: _T, *values: Any) -> _T:
            new: _T = attrs.evolve(cast(Any, op), **dict(zip(params, values, strict=True)))
            return new

        return slow
    values = [(f.name, f.name if f.name in params else f"op.{f.name}") for f in attrs.fields(klass)]
    evolve: Callable[..., _T] = _compile(klass, f"def evolve(op, {', '.join(params)}):", values)
    return evolve


@attrs.frozen(kw_only=True, slots=True, cache_hash=False, weakref_slot=False)
class Operation:
    """One recorded operation (the API's ``Operation``), details flattened.

    Field meaning by type: ``result``/``error`` for CONTEXT, STEP, CALLBACK and
    CHAINED_INVOKE; ``attempt``/``next_attempt_timestamp`` for STEP;
    ``scheduled_end_timestamp`` for WAIT; ``callback_id`` for CALLBACK;
    ``replay_children`` for CONTEXT; ``input_payload`` for EXECUTION.
    ``args_digest`` is a local extension (never sent to AWS): a digest of a step's
    arguments, compared on replay by the embedded and in-memory engines.
    """

    id: str
    type: OperationType
    status: OperationStatus
    start_timestamp: int
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    end_timestamp: int | None = None
    result: str | None = None
    error: ErrorObject | None = None
    attempt: int | None = None
    next_attempt_timestamp: int | None = None
    scheduled_end_timestamp: int | None = None
    callback_id: str | None = None
    replay_children: bool | None = None
    input_payload: str | None = None
    args_digest: str | None = None
    # Local extensions kept by the local service (never sent to AWS):
    function_name: str | None = None  # CHAINED_INVOKE target; input in input_payload
    callback_timeout: int | None = None  # seconds
    callback_heartbeat_timeout: int | None = None  # seconds
    last_heartbeat: int | None = None  # epoch ms

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of the Lambda API (timestamps as epoch milliseconds)."""
        d: dict[str, Any] = {
            "Id": self.id,
            # _value_: the member's value without enum's Python-level ``value`` property
            "Type": self.type._value_,
            "Status": self.status._value_,
            "StartTimestamp": self.start_timestamp,
        }
        if self.parent_id is not None:
            d["ParentId"] = self.parent_id
        if self.name is not None:
            d["Name"] = self.name
        if self.sub_type is not None:
            d["SubType"] = self.sub_type
        if self.end_timestamp is not None:
            d["EndTimestamp"] = self.end_timestamp
        details: dict[str, Any] = {}
        t = self.type
        if t is OperationType.EXECUTION:
            if self.input_payload is not None:
                details["InputPayload"] = self.input_payload
        elif t is OperationType.STEP:
            if self.attempt is not None:
                details["Attempt"] = self.attempt
            if self.next_attempt_timestamp is not None:
                details["NextAttemptTimestamp"] = self.next_attempt_timestamp
        elif t is OperationType.WAIT:
            if self.scheduled_end_timestamp is not None:
                details["ScheduledEndTimestamp"] = self.scheduled_end_timestamp
        elif t is OperationType.CALLBACK:
            if self.callback_id is not None:
                details["CallbackId"] = self.callback_id
        elif t is OperationType.CONTEXT and self.replay_children is not None:
            details["ReplayChildren"] = self.replay_children
        if t is not OperationType.EXECUTION and t is not OperationType.WAIT:
            if self.result is not None:
                details["Result"] = self.result
            if self.error is not None:
                details["Error"] = self.error.to_dict()
        if details or t is not OperationType.EXECUTION:
            d[_DETAILS_KEY[t]] = details
        if self.args_digest is not None:
            d["X-DurableGen-ArgsDigest"] = self.args_digest
        if t is OperationType.CHAINED_INVOKE and (self.function_name or self.input_payload):
            d["X-DurableGen-Invoke"] = {
                "FunctionName": self.function_name,
                "InputPayload": self.input_payload,
            }
        if self.callback_timeout or self.callback_heartbeat_timeout or self.last_heartbeat:
            d["X-DurableGen-Callback"] = {
                "TimeoutSeconds": self.callback_timeout,
                "HeartbeatTimeoutSeconds": self.callback_heartbeat_timeout,
                "LastHeartbeat": self.last_heartbeat,
            }
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Operation:
        """Parse the wire shape, rejecting malformed input with a clear error."""
        if not isinstance(d, Mapping):
            raise CorruptLogError(f"an Operation must be a JSON object, got {brief(d)}")
        op_id = d.get("Id")
        if not isinstance(op_id, str) or not op_id:
            raise CorruptLogError(f"an Operation needs a non-empty string Id, got {brief(op_id)}")
        # a dict look-up, not the enum's call: loading a log parses every operation
        raw = d.get("Type")
        t = _TYPES.get(raw) if type(raw) is str else None
        if t is None:
            raise CorruptLogError(
                f"operation {op_id!r} has unknown Type {brief(d.get('Type'), 40)}; "
                f"expected one of {', '.join(x.value for x in OperationType)}"
            )
        raw = d.get("Status")
        status = _STATUSES.get(raw) if type(raw) is str else None
        if status is None:
            raise CorruptLogError(
                f"operation {op_id!r} has unknown Status {brief(d.get('Status'), 40)}; "
                f"expected one of {', '.join(x.value for x in OperationStatus)}"
            )
        details = d.get(_DETAILS_KEY[t]) or {}
        if not isinstance(details, Mapping):
            raise CorruptLogError(f"operation {op_id!r}: {_DETAILS_KEY[t]} must be an object")
        err = details.get("Error")
        inv = d.get("X-DurableGen-Invoke") or {}
        cb = d.get("X-DurableGen-Callback") or {}
        if not isinstance(inv, Mapping) or not isinstance(cb, Mapping):
            raise CorruptLogError(f"operation {op_id!r}: malformed local extension fields")
        input_payload = _s(details, "InputPayload", op_id)
        if t is OperationType.CHAINED_INVOKE:
            input_payload = _s(inv, "InputPayload", op_id)
        values: tuple[Any, ...] = (  # in the order of Operation's fields (_OP_FIELDS)
            op_id,
            t,
            status,
            _ts(d.get("StartTimestamp"), op_id, "StartTimestamp") or 0,
            _s(d, "ParentId", op_id),
            _s(d, "Name", op_id),
            _s(d, "SubType", op_id),
            _ts(d.get("EndTimestamp"), op_id, "EndTimestamp"),
            _s(details, "Result", op_id),
            None if err is None else ErrorObject.from_dict(err),
            _int(details, "Attempt", op_id),
            _ts(details.get("NextAttemptTimestamp"), op_id, "NextAttemptTimestamp"),
            _ts(details.get("ScheduledEndTimestamp"), op_id, "ScheduledEndTimestamp"),
            _s(details, "CallbackId", op_id),
            _bool(details, "ReplayChildren", op_id),
            input_payload,
            _s(d, "X-DurableGen-ArgsDigest", op_id),
            _s(inv, "FunctionName", op_id),
            _int(cb, "TimeoutSeconds", op_id),
            _int(cb, "HeartbeatTimeoutSeconds", op_id),
            _int(cb, "LastHeartbeat", op_id),
        )
        return _operation_from_fields(*values)


def _s(d: Mapping[str, Any], key: str, op_id: str) -> str | None:
    v = d.get(key)
    if v is None or type(v) is str:
        return v
    raise CorruptLogError(f"operation {op_id!r}: {key} must be a string, got {brief(v)}")


def _int(d: Mapping[str, Any], key: str, op_id: str) -> int | None:
    v = d.get(key)
    if v is None or type(v) is int:
        return v
    raise CorruptLogError(f"operation {op_id!r}: {key} must be an integer, got {brief(v)}")


def _bool(d: Mapping[str, Any], key: str, op_id: str) -> bool | None:
    v = d.get(key)
    if v is None or type(v) is bool:
        return v
    raise CorruptLogError(f"operation {op_id!r}: {key} must be true or false, got {brief(v)}")


def _ts(v: Any, op_id: str, key: str) -> int | None:
    """Timestamps: epoch ms ints (invocation event) or epoch-second floats (REST APIs)."""
    if v is None:
        return None
    if type(v) is int:
        return v
    if type(v) is float and math.isfinite(v):
        return round(v * 1000)
    if isinstance(v, datetime.datetime):  # as botocore parses REST timestamps
        return round(v.timestamp() * 1000)
    raise CorruptLogError(f"operation {op_id!r}: {key} must be a timestamp, got {brief(v)}")


@attrs.frozen(kw_only=True, slots=True, weakref_slot=False)
class OperationUpdate:
    """One checkpoint update (the API's ``OperationUpdate``), options flattened."""

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: ErrorObject | None = None
    next_attempt_delay_seconds: int | None = None
    wait_seconds: int | None = None
    callback_timeout_seconds: int | None = None
    callback_heartbeat_timeout_seconds: int | None = None
    function_name: str | None = None
    tenant_id: str | None = None
    #: ChainedInvokeOptions.XAmznTraceId: the trace the invoked execution continues
    #: (an X-Ray header naming the invoke's span; AWS's otel instrumentation sends it)
    trace_header: str | None = None
    replay_children: bool | None = None
    args_digest: str | None = None

    def to_dict(self, *, local_extensions: bool = False) -> dict[str, Any]:
        """The wire shape of the Lambda API; ``local_extensions`` keeps args_digest."""
        d: dict[str, Any] = {"Id": self.id, "Type": self.type.value, "Action": self.action.value}
        if self.parent_id is not None:
            d["ParentId"] = self.parent_id
        if self.name is not None:
            d["Name"] = self.name
        if self.sub_type is not None:
            d["SubType"] = self.sub_type
        if self.payload is not None:
            d["Payload"] = self.payload
        if self.error is not None:
            d["Error"] = self.error.to_dict()
        if self.next_attempt_delay_seconds is not None:
            d["StepOptions"] = {"NextAttemptDelaySeconds": self.next_attempt_delay_seconds}
        if self.wait_seconds is not None:
            d["WaitOptions"] = {"WaitSeconds": self.wait_seconds}
        if self.type is OperationType.CALLBACK and self.action is OperationAction.START:
            d["CallbackOptions"] = {
                "TimeoutSeconds": self.callback_timeout_seconds or 0,
                "HeartbeatTimeoutSeconds": self.callback_heartbeat_timeout_seconds or 0,
            }
        if self.function_name is not None:
            opts: dict[str, Any] = {"FunctionName": self.function_name}
            if self.tenant_id is not None:
                opts["TenantId"] = self.tenant_id
            if self.trace_header is not None:
                opts["XAmznTraceId"] = self.trace_header
            d["ChainedInvokeOptions"] = opts
        if self.replay_children is not None:
            d["ContextOptions"] = {"ReplayChildren": self.replay_children}
        if local_extensions and self.args_digest is not None:
            d["X-DurableGen-ArgsDigest"] = self.args_digest
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OperationUpdate:
        if not isinstance(d, Mapping):
            raise CorruptLogError(f"an OperationUpdate must be a JSON object, got {brief(d)}")
        op_id = d.get("Id")
        if not isinstance(op_id, str) or not op_id:
            raise CorruptLogError(f"an OperationUpdate needs a string Id, got {brief(op_id)}")
        try:
            t = OperationType(str(d.get("Type")))
            action = OperationAction(str(d.get("Action")))
        except ValueError as e:
            raise CorruptLogError(f"update {op_id!r}: {e}") from None
        err = d.get("Error")
        step = _options(d, "StepOptions", op_id)
        wait = _options(d, "WaitOptions", op_id)
        cb = _options(d, "CallbackOptions", op_id)
        inv = _options(d, "ChainedInvokeOptions", op_id)
        ctx = _options(d, "ContextOptions", op_id)
        return cls(
            id=op_id,
            type=t,
            action=action,
            parent_id=_s(d, "ParentId", op_id),
            name=_s(d, "Name", op_id),
            sub_type=_s(d, "SubType", op_id),
            payload=_s(d, "Payload", op_id),
            error=None if err is None else ErrorObject.from_dict(err),
            next_attempt_delay_seconds=_int(step, "NextAttemptDelaySeconds", op_id),
            wait_seconds=_int(wait, "WaitSeconds", op_id),
            callback_timeout_seconds=_int(cb, "TimeoutSeconds", op_id),
            callback_heartbeat_timeout_seconds=_int(cb, "HeartbeatTimeoutSeconds", op_id),
            function_name=_s(inv, "FunctionName", op_id),
            tenant_id=_s(inv, "TenantId", op_id),
            trace_header=_s(inv, "XAmznTraceId", op_id),
            replay_children=_bool(ctx, "ReplayChildren", op_id),
            args_digest=_s(d, "X-DurableGen-ArgsDigest", op_id),
        )


def _options(d: Mapping[str, Any], key: str, op_id: str) -> Mapping[str, Any]:
    v = d.get(key) or {}
    if not isinstance(v, Mapping):
        raise CorruptLogError(f"update {op_id!r}: {key} must be an object, got {brief(v)}")
    return v


def index_operations(operations: Iterable[Operation]) -> dict[str, Operation]:
    """Operations keyed by id; a duplicate id is a corrupt log."""
    out: dict[str, Operation] = {}
    for op in operations:
        if op.id in out and out[op.id] != op:
            raise CorruptLogError(f"the log holds two different operations with id {op.id!r}")
        out[op.id] = op
    return out


#: ``OperationUpdate`` of a step, positionally (the interpreter builds two per step).
new_step_update: Callable[..., OperationUpdate] = positional_factory(
    OperationUpdate,
    ("id", "type", "action", "parent_id", "name", "sub_type", "payload", "args_digest"),
)
#: ``Operation``'s fields in order, and a positional constructor of all of them (what
#: ``Operation.from_dict`` builds: loading a log parses every operation).
_OP_FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(Operation))
_operation_from_fields: Callable[..., Operation] = positional_factory(Operation, _OP_FIELDS)
_TYPES: dict[str, OperationType] = {t.value: t for t in OperationType}
_STATUSES: dict[str, OperationStatus] = {t.value: t for t in OperationStatus}
#: A new ``Operation`` as a START creates it, positionally (the service, once per step).
new_started_op: Callable[..., Operation] = positional_factory(
    Operation,
    ("id", "type", "status", "start_timestamp", "parent_id", "name", "sub_type", "args_digest"),
)
