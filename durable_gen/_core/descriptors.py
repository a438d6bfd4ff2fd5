"""Operation descriptors: the inert values a workflow yields.

Building a descriptor does nothing; yielding it is the only way a workflow touches
the outside world. Descriptors are frozen ``attrs`` values that validate their
arguments on construction, with messages that show the offending value.

Names. ``name`` is optional everywhere. When it is omitted, a Step records the
step function's ``__name__`` and a ChildContext the generator function's
``__name__`` (``<lambda>`` and other non-identifier names are not recorded), so
histories read well. A recorded name -- given or defaulted -- takes part in the
non-determinism check: renaming the function of a step that has already been
recorded by a running execution is a change of the workflow. Pass ``name=`` to
keep a stable name across refactors. A Wait with no name records none.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import math
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .errors import (
    ValidationError,
    WorkflowDefinitionError,
)
from .log import _builder_class
from .retry import RetryPolicy
from .serdes import Serdes

if TYPE_CHECKING:
    from .batch import BatchResult

__all__ = [
    "PATCH_SUB_TYPE",
    "ChildContext",
    "Deprecated",
    "Patched",
    "Step",
    "StepSemantics",
    "Wait",
    "check_generator_function",
]

#: Longest wait or delay the service accepts (366 days), in seconds.
MAX_WAIT_SECONDS = 31_622_400


class StepSemantics(enum.Enum):
    """How a step attempt relates to its checkpoint.

    ``AT_LEAST_ONCE_PER_RETRY`` (default): the attempt runs at once; if the process
    dies before its outcome is recorded the attempt runs again on resume.
    ``AT_MOST_ONCE_PER_RETRY``: START is made durable before the attempt runs; an
    attempt found started but unfinished on resume is not run again, it is handed
    to the retry policy as a :class:`~durable_gen.StepInterruptedError`.
    """

    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"


AT_LEAST_ONCE_PER_RETRY = StepSemantics.AT_LEAST_ONCE_PER_RETRY
AT_MOST_ONCE_PER_RETRY = StepSemantics.AT_MOST_ONCE_PER_RETRY


def _tname(v: object) -> str:
    return type(v).__name__


def check_generator_function(fn: object, what: str) -> None:
    """Raise WorkflowDefinitionError unless ``fn`` is a generator function."""
    if inspect.isgeneratorfunction(fn):
        return
    if inspect.isgenerator(fn):
        code_name = fn.gi_code.co_name
        raise WorkflowDefinitionError(
            f"{what} must be a generator function, got a generator object; "
            f"pass {code_name}, not {code_name}()"
        )
    if inspect.isasyncgenfunction(fn) or inspect.isasyncgen(fn):
        raise WorkflowDefinitionError(
            f"{what} must be a generator function (def ... yield), got the async "
            f"generator {_fn_name(fn)!r}; durable_gen drives plain generators: "
            "drop 'async' and yield descriptors instead of awaiting"
        )
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutine(fn):
        raise WorkflowDefinitionError(
            f"{what} must be a generator function (def ... yield), got the coroutine "
            f"function {_fn_name(fn)!r}; durable_gen drives plain generators, not async def"
        )
    if callable(fn):
        raise WorkflowDefinitionError(
            f"{what} must be a generator function (a def whose body yields operations), "
            f"got {_fn_name(fn)!r}, which does not yield; add a yield, or run it as a Step"
        )
    raise WorkflowDefinitionError(
        f"{what} must be a generator function, got {fn!r:.60} ({_tname(fn)})"
    )


def check_generator_callable(fn: object, what: str) -> None:
    """Like :func:`check_generator_function`, but also accept any other callable
    (a lambda or partial returning a generator); its call is checked when it runs."""
    if inspect.isgeneratorfunction(fn):
        return
    if callable(fn) and not (
        inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn) or isinstance(fn, type)
    ):
        return
    check_generator_function(fn, what)


def _fn_name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)


def default_name(fn: object) -> str | None:
    """The name recorded for an operation whose name was not given."""
    name = getattr(fn, "__name__", None)
    if type(name) is str and name.isidentifier() and name.isascii() and len(name) <= 256:
        return name
    return None


def _check_name(name: object) -> None:
    if name is None:
        return
    if not isinstance(name, str):
        raise ValidationError(f"name must be a str or None, got {name!r:.60} ({_tname(name)})")
    if not 1 <= len(name) <= 256 or not name.isprintable() or not name.isascii():
        raise ValidationError(
            f"name must be 1 to 256 printable ASCII characters (the service's rule), "
            f"got {name!r:.80}"
        )


_SUB_TYPE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def check_sub_type(sub_type: object, default: str) -> str:
    """The SubType an operation records: ``sub_type``, or ``default`` for None/"".

    A custom operation built from steps, callbacks or contexts labels them so that
    a history reader can filter them without parsing names (AWS's ``sub_type``).
    The service accepts 1 to 32 characters from A-Z, a-z, 0-9, ``-`` and ``_``;
    changing it under a running execution is a non-deterministic change, as a
    name change is.
    """
    if sub_type is None or sub_type == "":
        return default
    if (
        not isinstance(sub_type, str)
        or len(sub_type) > 32
        or not set(sub_type) <= _SUB_TYPE_CHARACTERS
    ):
        raise ValidationError(
            "sub_type must be 1 to 32 characters from A-Z, a-z, 0-9, hyphen and "
            f"underscore (the service's rule), got {sub_type!r:.60}"
        )
    return sub_type


def _validate_step_fn(_: Any, __: Any, fn: Any) -> None:
    if inspect.isgeneratorfunction(fn):
        raise WorkflowDefinitionError(
            f"Step runs a plain function, got the generator function {_fn_name(fn)!r}; "
            "to run a generator function as a sub-workflow, yield ChildContext(fn, ...)"
        )
    if inspect.isgenerator(fn) or not callable(fn):
        raise WorkflowDefinitionError(
            f"Step needs a callable as its first argument, got {fn!r:.60} ({_tname(fn)})"
        )
    if inspect.iscoroutinefunction(fn):
        raise WorkflowDefinitionError(
            f"Step runs a plain function, got the coroutine function {_fn_name(fn)!r}; "
            "wrap it: Step(lambda: asyncio.run(fn()))"
        )


def _validate_name(_: Any, __: Any, name: Any) -> None:
    _check_name(name)


def _validate_retry(_: Any, __: Any, retry: Any) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError(
            f"retry must be a RetryPolicy or None, got {retry!r:.60} ({_tname(retry)})"
        )


def _validate_semantics(_: Any, __: Any, s: Any) -> None:
    if not isinstance(s, StepSemantics):
        raise ValidationError(
            "semantics must be AT_LEAST_ONCE_PER_RETRY or AT_MOST_ONCE_PER_RETRY, "
            f"got {s!r:.60} ({_tname(s)})"
        )


def _validate_serdes(_: Any, __: Any, s: Any) -> None:
    if s is not None and not (hasattr(s, "serialize") and hasattr(s, "deserialize")):
        raise ValidationError(
            "serdes must have serialize(value) -> str and deserialize(str) methods, "
            f"got {s!r:.60} ({_tname(s)})"
        )


# A plain function's code flags say at once that it is neither a generator nor a
# coroutine function; anything else (partials, builtins, callables) takes the slow path.
_NOT_PLAIN = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_CHECKED_NAMES: set[str] = set()  # names already validated (bounded below)


def _checked_name(name: object) -> None:
    if name is None or name in _CHECKED_NAMES:
        return
    _check_name(name)
    if len(_CHECKED_NAMES) > 4096:
        _CHECKED_NAMES.clear()
    _CHECKED_NAMES.add(name)  # type: ignore[arg-type]


_T = TypeVar("_T")
_S = TypeVar("_S")
_I = TypeVar("_I")

if TYPE_CHECKING:
    from typing import Generic as _Typed

    class _Attrs:
        """To type checkers: attrs gives a class made with ``init=False`` an
        ``__attrs_init__`` (mypy's attrs plugin knows it; pyright does not)."""

        def __attrs_init__(self, *args: Any) -> None: ...
else:

    class _Attrs:
        __slots__ = ()

    class _Typed:
        """``Step[T]`` to type checkers; at run time ``Step`` derives from ``object``
        only (its records are built on a slot-compatible twin: see ``log.py``)."""

        def __class_getitem__(cls, item: object) -> type:
            return object


#: The type of a workflow (or a child context, branch or item body) returning T:
#: ``def flow(event: Order) -> Workflow[Receipt]: ...``.
Workflow = Generator[Any, Any, _T]


def _same_class(cls: type, item: object) -> type:
    return cls


@attrs.frozen(init=False, weakref_slot=False)
class Step(_Typed[_T]):
    """Run ``fn(*args)`` once as a checkpointed step and yield back its result.

    ``Step(fn, *args, name=None, retry=None, semantics=AT_LEAST_ONCE_PER_RETRY,
    serdes=None, sub_type=None)``. A failure goes through ``retry``
    (``RetryPolicy.default()`` when omitted); when no retry is left,
    :class:`~durable_gen.StepError` is thrown into the workflow. ``sub_type``
    labels the operation in the history (default ``"Step"``).

    ``x = yield Step(fn)`` is how a workflow runs it; ``x = yield from Step(fn)``
    does the same and lets a type checker know that ``x`` is what ``fn`` returns (a
    ``yield`` expression has the generator's send type, whatever was yielded).
    """

    fn: Callable[..., _T]
    args: tuple[Any, ...] = ()
    name: str | None = None
    retry: RetryPolicy | None = None
    semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: Serdes | None = None
    sub_type: str = "Step"

    if not TYPE_CHECKING:
        __class_getitem__ = classmethod(_same_class)  # Step[int] in annotations

    def __iter__(self) -> Generator[Step[_T], Any, _T]:
        """``yield from Step(fn)``: yields this step, returns its result (typed)."""
        result: _T = yield self
        return result

    def __new__(
        cls,
        fn: Callable[..., _T],
        *args: Any,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY,
        serdes: Serdes | None = None,
        sub_type: str | None = None,
    ) -> Step[_T]:
        # Validation is inlined with fast paths: replay builds one Step per operation.
        code = getattr(fn, "__code__", None)
        if code is None or code.co_flags & _NOT_PLAIN:
            _validate_step_fn(None, None, fn)
        if name is None:
            name = default_name(fn)
        elif name not in _CHECKED_NAMES:  # _checked_name's own test, without the call
            _checked_name(name)
        if retry is not None:
            _validate_retry(None, None, retry)
        if semantics is not AT_LEAST_ONCE_PER_RETRY and semantics is not AT_MOST_ONCE_PER_RETRY:
            _validate_semantics(None, None, semantics)
        if serdes is not None:
            _validate_serdes(None, None, serdes)
        sub_type = "Step" if sub_type is None else check_sub_type(sub_type, "Step")
        # Built in __new__ (Step has no __init__: object's accepts the arguments) as
        # the log's records are: on a twin with the same slots, then switched to Step
        # (see durable_gen._core.log._builder_class); ~40% less than writing each slot
        # through its descriptor, per operation replayed.
        twin = _STEP_TWIN
        if cls is Step and twin is not None:
            new: Any = _new(twin)
            new.fn = fn
            new.args = args
            new.name = name
            new.retry = retry
            new.semantics = semantics
            new.serdes = serdes
            new.sub_type = sub_type
            new.__class__ = Step
            return new  # type: ignore[no-any-return]
        self = _new(cls)
        values = (fn, args, name, retry, semantics, serdes, sub_type)
        for field, value in zip(_STEP_FIELDS, values, strict=True):
            object.__setattr__(self, field, value)
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """copy and pickle rebuild a Step through ``__new__``, which needs ``fn``."""
        kwargs = {"name": self.name, "retry": self.retry, "semantics": self.semantics}
        return (self.fn, *self.args), {
            **kwargs,
            "serdes": self.serdes,
            "sub_type": self.sub_type,
        }


_STEP_FIELDS = ("fn", "args", "name", "retry", "semantics", "serdes", "sub_type")
assert tuple(f.name for f in attrs.fields(Step)) == _STEP_FIELDS
_STEP_TWIN = _builder_class(Step)
_new = object.__new__


def _seconds(value: object) -> int:
    if isinstance(value, datetime.timedelta):
        secs = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise ValidationError(
            f"seconds must be a number of seconds or a datetime.timedelta, "
            f"got {value!r:.60} ({_tname(value)})"
        )
    if math.isnan(secs) or secs < 1 or secs > MAX_WAIT_SECONDS:
        raise ValidationError(
            f"a wait must last from 1 second to {MAX_WAIT_SECONDS} seconds (366 days), "
            f"got {value!r:.60}"
        )
    if secs != int(secs):
        raise ValidationError(
            f"a wait is recorded in whole seconds, got {value!r:.60}; round it, e.g. "
            f"Wait(seconds={round(secs) or 1})"
        )
    return int(secs)


@attrs.frozen(init=False)
class Wait(_Attrs):
    """Suspend the workflow for a duration: ``Wait(seconds=30)`` or ``Wait(timedelta(...))``.

    The duration is whole seconds from 1 s to 366 days, as the service accepts.
    """

    seconds: int
    name: str | None = attrs.field(default=None, validator=_validate_name)

    def __init__(
        self,
        seconds: float | datetime.timedelta | None = None,
        *,
        name: str | None = None,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> None:
        extra = minutes * 60 + hours * 3600 + days * 86400
        if seconds is None:
            if not extra:
                raise ValidationError(
                    "Wait needs a duration: Wait(seconds=30), Wait(timedelta(minutes=5)) "
                    "or Wait(minutes=5)"
                )
            seconds = 0
        if isinstance(seconds, datetime.timedelta):
            total: object = seconds + datetime.timedelta(seconds=extra)
        else:
            total = seconds + extra if extra else seconds
        self.__attrs_init__(_seconds(total), name)

    def __iter__(self) -> Generator[Wait, Any, None]:
        """``yield from Wait(...)``: the same as ``yield Wait(...)``, typed."""
        result: None = yield self
        return result


#: SubType of the STEP operation a :class:`Patched` marker records.
PATCH_SUB_TYPE = "Patch"


def _validate_patch_id(_: Any, __: Any, patch_id: Any) -> None:
    if not isinstance(patch_id, str) or not patch_id:
        raise ValidationError(
            f"a patch id must be a non-empty str, got {patch_id!r:.60} ({_tname(patch_id)})"
        )
    _check_name(patch_id)


@attrs.frozen
class Patched:
    """One code path for executions started before a change and after it.

    ``if (yield Patched("tax-v2")): <new code> else: <old code>``. It yields True,
    and records a marker (a STEP of SubType ``Patch`` named ``patch_id``, with no
    function), where an execution gets to it for the first time: executions started
    after the change, and older ones that had not reached this point yet. An
    execution whose log already holds something else here -- what the old code
    recorded -- gets False and takes the old branch; nothing is recorded, so its
    replay goes on matching the old code. Once no execution needs the old branch,
    replace the ``if`` by :class:`Deprecated` ``("tax-v2")`` and keep the new code.
    """

    patch_id: str = attrs.field(validator=_validate_patch_id)


@attrs.frozen
class Deprecated:
    """``yield Deprecated("tax-v2")``: the patch's old branch is gone.

    Executions that recorded the ``Patched("tax-v2")`` marker replay it here; new
    ones record nothing. Remove it too once no execution holds the marker
    (``durable-gen check`` says so: a log with the marker and no ``Deprecated`` in
    the code diverges).
    """

    patch_id: str = attrs.field(validator=_validate_patch_id)


@attrs.frozen(init=False)
class ChildContext(_Attrs, _Typed[_T]):
    """Run the generator function ``fn(*args)`` as a checkpointed child context.

    Its operations are recorded under the context; its return value is the
    context's result (a raised error becomes a
    :class:`~durable_gen.ChildContextError` in the parent). Once the context has
    succeeded, replay returns its recorded result without re-running its body.

    - ``sub_type`` labels the context in the history (default
      ``"RunInChildContext"``).
    - ``virtual=True``: a grouping that records nothing of its own (AWS's
      ``is_virtual``): its operations are recorded under the enclosing context,
      with ids of their own, and its body runs again on every replay.
    - ``summary(result) -> str``: what is recorded in place of a result over the
      256 KiB a context may store (AWS's ``summary_generator``); replay then rebuilds
      the result by running the body again. Without it an empty string is recorded.
    """

    fn: Callable[..., Generator[Any, Any, _T]]
    args: tuple[Any, ...] = ()
    name: str | None = attrs.field(default=None, validator=_validate_name)
    serdes: Serdes | None = attrs.field(default=None, validator=_validate_serdes)
    sub_type: str = "RunInChildContext"
    virtual: bool = False
    summary: Callable[[Any], str] | None = None

    if not TYPE_CHECKING:
        __class_getitem__ = classmethod(_same_class)  # ChildContext[int] in annotations

    def __init__(
        self,
        fn: Callable[..., Generator[Any, Any, _T]],
        *args: Any,
        name: str | None = None,
        serdes: Serdes | None = None,
        sub_type: str | None = None,
        virtual: bool = False,
        summary: Callable[[Any], str] | None = None,
    ) -> None:
        check_generator_function(fn, "ChildContext's function")
        if name is None:
            name = default_name(fn)
        if not isinstance(virtual, bool):
            raise ValidationError(f"virtual must be True or False, got {virtual!r:.60}")
        if summary is not None:
            _check_callable("ChildContext's summary", summary)
        self.__attrs_init__(
            fn,
            args,
            name,
            serdes,
            check_sub_type(sub_type, "RunInChildContext"),
            virtual,
            summary,
        )

    def __iter__(self) -> Generator[ChildContext[_T], Any, _T]:
        """``yield from ChildContext(fn)``: typed as what the generator ``fn`` returns."""
        result: _T = yield self
        return result


# --------------------------------------------------------------------------- operations


def _opt_seconds(what: str, value: object) -> int | None:
    """Optional timeouts: None/0 means none; else whole seconds from 1."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        secs = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise ValidationError(
            f"{what} must be seconds or a datetime.timedelta, got {value!r:.60} ({_tname(value)})"
        )
    if secs == 0:
        return None
    if math.isnan(secs) or secs < 1 or secs > 99_999_999 or secs != int(secs):
        raise ValidationError(
            f"{what} must be whole seconds from 1 to 99999999 (or None), got {value!r:.60}"
        )
    return int(secs)


def _check_callable(what: str, fn: object) -> None:
    if not callable(fn) or inspect.isgeneratorfunction(fn):
        raise WorkflowDefinitionError(
            f"{what} must be a plain function (it runs as a step), got {fn!r:.60} ({_tname(fn)})"
        )


@attrs.frozen(init=False)
class WaitForCondition(_Attrs, _Typed[_S]):
    """Poll ``check(state) -> state`` as a step until ``wait_strategy`` says stop.

    The first poll gets ``initial_state``; after each poll
    ``wait_strategy.should_continue(new_state)`` decides: continue (the new state is
    recorded and the next poll runs after the strategy's delay) or stop (the state
    is the operation's result). Running out of polls throws
    :class:`~durable_gen.WaitForConditionError`. An exception in ``check`` goes
    through ``retry`` like a step's; without one it is not retried (as on AWS):
    the operation fails and :class:`~durable_gen.WaitForConditionError` is thrown.
    """

    check: Callable[[_S], _S]
    initial_state: _S
    wait_strategy: Any
    name: str | None = None
    retry: RetryPolicy | None = None
    serdes: Serdes | None = None

    if not TYPE_CHECKING:
        __class_getitem__ = classmethod(_same_class)

    def __init__(
        self,
        check: Callable[[_S], _S],
        initial_state: _S,
        wait_strategy: Any,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        serdes: Serdes | None = None,
    ) -> None:
        from .retry import WaitStrategy

        _check_callable("WaitForCondition's check", check)
        if not isinstance(wait_strategy, WaitStrategy) or not callable(
            wait_strategy.should_continue
        ):
            raise ValidationError(
                "wait_strategy must be a WaitStrategy with should_continue=callable, e.g. "
                "WaitStrategy(should_continue=lambda state: not state['done']), "
                f"got {wait_strategy!r:.80}"
            )
        if name is None:
            name = default_name(check)
        _checked_name(name)
        _validate_retry(None, None, retry)
        _validate_serdes(None, None, serdes)
        self.__attrs_init__(check, initial_state, wait_strategy, name, retry, serdes)

    def __iter__(self) -> Generator[WaitForCondition[_S], Any, _S]:
        """``yield from WaitForCondition(...)``: typed as the state (the final one)."""
        result: _S = yield self
        return result


@attrs.frozen(init=False)
class CreateCallback(_Attrs):
    """Create a callback; yields back a :class:`CallbackHandle` with its ``callback_id``.

    Hand the id to an external system, then ``yield handle`` (or
    ``yield handle.result()``) to wait for it to be completed. ``timeout`` ends the
    callback TIMED_OUT when it is not completed in time; ``heartbeat_timeout``
    when no heartbeat (or completion) arrives in that interval. The payload is
    returned as the string the external system sent unless ``serdes`` says
    otherwise (as AWS does). ``sub_type`` labels the operation in the history
    (default ``"Callback"``).
    """

    name: str | None = None
    timeout: int | None = None
    heartbeat_timeout: int | None = None
    serdes: Serdes | None = None
    sub_type: str = "Callback"

    def __init__(
        self,
        name: str | None = None,
        *,
        timeout: float | datetime.timedelta | None = None,
        heartbeat_timeout: float | datetime.timedelta | None = None,
        serdes: Serdes | None = None,
        sub_type: str | None = None,
    ) -> None:
        _checked_name(name)
        _validate_serdes(None, None, serdes)
        self.__attrs_init__(
            name,
            _opt_seconds("timeout", timeout),
            _opt_seconds("heartbeat_timeout", heartbeat_timeout),
            serdes,
            check_sub_type(sub_type, "Callback"),
        )

    def __iter__(self) -> Generator[CreateCallback, Any, CallbackHandle]:
        """``yield from CreateCallback()``: typed as the :class:`CallbackHandle`."""
        result: CallbackHandle = yield self
        return result


@attrs.frozen(kw_only=True)
class CallbackHandle:
    """A created callback. ``yield handle`` waits for its outcome."""

    callback_id: str
    operation_id: str
    name: str | None = None
    serdes: Serdes | None = None

    def result(self) -> AwaitCallback:
        """The descriptor that waits for this callback's outcome."""
        return AwaitCallback(self)


@attrs.frozen
class AwaitCallback:
    """Wait for a created callback's outcome (``yield handle.result()``)."""

    handle: CallbackHandle


@attrs.frozen(init=False)
class WaitForCallback(_Attrs):
    """Create a callback, run ``submitter(callback_id)`` as a step, wait for the outcome.

    Recorded as AWS records it: a CONTEXT (SubType WaitForCallback) holding the
    CALLBACK ``"<name> create callback id"`` and the STEP ``"<name> submitter"``
    (retried per ``retry``). A failing submitter throws
    :class:`~durable_gen.CallbackSubmitterError`. ``sub_type`` labels the callback
    (default ``"Callback"``); the context keeps ``"WaitForCallback"``, as on AWS.
    """

    submitter: Callable[[str], Any]
    name: str | None = None
    timeout: int | None = None
    heartbeat_timeout: int | None = None
    retry: RetryPolicy | None = None
    serdes: Serdes | None = None
    sub_type: str = "Callback"

    def __init__(
        self,
        submitter: Callable[[str], Any],
        name: str | None = None,
        *,
        timeout: float | datetime.timedelta | None = None,
        heartbeat_timeout: float | datetime.timedelta | None = None,
        retry: RetryPolicy | None = None,
        serdes: Serdes | None = None,
        sub_type: str | None = None,
    ) -> None:
        _check_callable("WaitForCallback's submitter", submitter)
        _checked_name(name)
        _validate_retry(None, None, retry)
        _validate_serdes(None, None, serdes)
        self.__attrs_init__(
            submitter,
            name,
            _opt_seconds("timeout", timeout),
            _opt_seconds("heartbeat_timeout", heartbeat_timeout),
            retry,
            serdes,
            check_sub_type(sub_type, "Callback"),
        )

    def __iter__(self) -> Generator[WaitForCallback, Any, Any]:
        """``yield from WaitForCallback(...)``: what the callback was completed with
        (``Any``: annotate the target, ``x: Approval = yield from ...``)."""
        result: Any = yield self
        return result


@attrs.frozen(init=False)
class Invoke(_Attrs):
    """Invoke another durable function and yield back its result.

    ``payload`` is written with ``payload_serdes`` and the result read with
    ``serdes`` (both JSON by default; AWS's ``serdes_payload`` and
    ``serdes_result``). ``tenant_id`` is passed to the invoked function. A failed
    invocation throws :class:`~durable_gen.InvokeError`.
    """

    function_name: str
    payload: Any = None
    name: str | None = None
    serdes: Serdes | None = None
    tenant_id: str | None = None
    payload_serdes: Serdes | None = None

    def __init__(
        self,
        function_name: str,
        payload: Any = None,
        *,
        name: str | None = None,
        serdes: Serdes | None = None,
        tenant_id: str | None = None,
        payload_serdes: Serdes | None = None,
    ) -> None:
        if not isinstance(function_name, str) or not function_name:
            raise ValidationError(
                f"function_name must be a non-empty str, got {function_name!r:.60}"
            )
        _checked_name(name)
        _validate_serdes(None, None, serdes)
        _validate_serdes(None, None, payload_serdes)
        if tenant_id is not None and (not isinstance(tenant_id, str) or not tenant_id):
            raise ValidationError(
                f"tenant_id must be a non-empty str or None, got {tenant_id!r:.60}"
            )
        self.__attrs_init__(function_name, payload, name, serdes, tenant_id, payload_serdes)

    def __iter__(self) -> Generator[Invoke, Any, Any]:
        """``yield from Invoke(...)``: the invoked function's result (``Any``: annotate
        the target)."""
        result: Any = yield self
        return result


class Nesting(enum.Enum):
    """How Parallel/Map branches are recorded.

    NESTED (default): each branch is a CONTEXT operation holding its operations.
    FLAT: branches are not recorded themselves (fewer operations); their
    operations hang directly under the batch.
    """

    NESTED = "NESTED"
    FLAT = "FLAT"


def _check_concurrency(max_concurrency: object) -> None:
    if max_concurrency is not None and (type(max_concurrency) is not int or max_concurrency < 1):
        raise ValidationError(
            f"max_concurrency must be an int >= 1 or None (no limit), got {max_concurrency!r}"
        )


def _check_policy(completion: object, total: int) -> None:
    from .batch import CompletionPolicy

    if completion is not None and not isinstance(completion, CompletionPolicy):
        raise ValidationError(
            f"completion must be a CompletionPolicy or None, got {completion!r:.60}"
        )
    # AWS's SDK refuses this when map/parallel is called, with this message
    # (CompletionConfig._validate_for_total)
    if completion is not None and (completion.min_successful or 0) > total:
        raise ValidationError(
            "min_successful cannot be greater than total items: "
            f"{completion.min_successful} > {total}"
        )


@attrs.frozen(init=False)
class ParallelBranch(_Attrs):
    """A branch of :class:`Parallel` with a name of its own (AWS's ``ParallelBranch``).

    ``Parallel([ParallelBranch(fetch_user, "fetch-user"), fetch_orders])`` records
    the first branch as ``fetch-user`` instead of ``parallel-branch-0``.
    """

    fn: Callable[[], Any]
    name: str | None = None

    def __init__(self, fn: Callable[[], Any], name: str | None = None) -> None:
        check_generator_callable(fn, "ParallelBranch's function")
        _checked_name(name)
        self.__attrs_init__(fn, name)

    def __call__(self) -> Any:
        return self.fn()


def _check_summary(what: str, summary: object) -> None:
    if summary is not None:
        _check_callable(what, summary)


@attrs.frozen(init=False)
class Parallel(_Attrs):
    """Run generator functions as concurrent branches; yields back a BatchResult.

    ``completion`` defaults to ``CompletionPolicy.all_successful()``. Branch
    step functions run concurrently (threads, at most ``max_concurrency``
    branches at once), while ids, decisions and results stay deterministic. A
    branch is a generator function, or a :class:`ParallelBranch` to name it.
    ``summary(batch_result) -> str`` is recorded (in AWS's summary envelope) when
    the result is over the 256 KiB a context may store.
    """

    branches: tuple[Callable[[], Any], ...]
    name: str | None = None
    max_concurrency: int | None = None
    completion: Any = None
    nesting: Nesting = Nesting.NESTED
    serdes: Serdes | None = None
    item_serdes: Serdes | None = None
    summary: Callable[[Any], str] | None = None

    def __init__(
        self,
        branches: Iterable[Callable[[], Any]],
        *,
        name: str | None = None,
        max_concurrency: int | None = None,
        completion: Any = None,
        nesting: Nesting = Nesting.NESTED,
        serdes: Serdes | None = None,
        item_serdes: Serdes | None = None,
        summary: Callable[[Any], str] | None = None,
    ) -> None:
        from .batch import CompletionPolicy

        branches = tuple(branches)
        for i, fn in enumerate(branches):
            if not isinstance(fn, ParallelBranch):
                check_generator_callable(fn, f"Parallel branch {i}")
        _checked_name(name)
        _check_concurrency(max_concurrency)
        _check_policy(completion, len(branches))
        _check_summary("Parallel's summary", summary)
        if not isinstance(nesting, Nesting):
            raise ValidationError(f"nesting must be Nesting.NESTED or FLAT, got {nesting!r}")
        self.__attrs_init__(
            branches,
            name,
            max_concurrency,
            completion or CompletionPolicy.all_successful(),
            nesting,
            serdes,
            item_serdes,
            summary,
        )

    def __iter__(self) -> Generator[Parallel, Any, BatchResult[Any]]:
        """``yield from Parallel(...)``: typed as the :class:`BatchResult`."""
        result: BatchResult[Any] = yield self
        return result


@attrs.frozen(init=False)
class Map(_Attrs, _Typed[_T]):
    """Run the generator function ``fn(item, index)`` for each item; yields a BatchResult.

    ``completion`` defaults to fail-fast (done at the first failure).
    ``item_namer(item, index)`` names each iteration (default ``map-item-{index}``).
    ``summary(batch_result) -> str``: as for :class:`Parallel`.
    """

    items: tuple[Any, ...]
    fn: Callable[[Any, int], Generator[Any, Any, _T]]
    name: str | None = None
    max_concurrency: int | None = None
    completion: Any = None
    item_namer: Callable[[Any, int], str] | None = None
    nesting: Nesting = Nesting.NESTED
    serdes: Serdes | None = None
    item_serdes: Serdes | None = None
    summary: Callable[[Any], str] | None = None

    if not TYPE_CHECKING:
        __class_getitem__ = classmethod(_same_class)

    def __init__(
        self,
        items: Iterable[_I],
        fn: Callable[[_I, int], Generator[Any, Any, _T]],
        *,
        name: str | None = None,
        max_concurrency: int | None = None,
        completion: Any = None,
        item_namer: Callable[[Any, int], str] | None = None,
        nesting: Nesting = Nesting.NESTED,
        serdes: Serdes | None = None,
        item_serdes: Serdes | None = None,
        summary: Callable[[Any], str] | None = None,
    ) -> None:
        from .batch import CompletionPolicy

        check_generator_callable(fn, "Map's function")
        _check_summary("Map's summary", summary)
        _checked_name(name)
        items = tuple(items)
        _check_concurrency(max_concurrency)
        _check_policy(completion, len(items))
        if not isinstance(nesting, Nesting):
            raise ValidationError(f"nesting must be Nesting.NESTED or FLAT, got {nesting!r}")
        self.__attrs_init__(
            items,
            fn,
            name,
            max_concurrency,
            completion or CompletionPolicy(),
            item_namer,
            nesting,
            serdes,
            item_serdes,
            summary,
        )

    def __iter__(self) -> Generator[Map[_T], Any, BatchResult[_T]]:
        """``yield from Map(items, fn)``: a :class:`BatchResult` of what ``fn`` returns."""
        result: BatchResult[_T] = yield self
        return result


class _Combinator(_Attrs):
    """Base of All / Any / Race / AllSettled over descriptors."""

    kind: str = ""


def _combinator(kind: str, doc: str) -> type:
    @attrs.frozen(init=False)
    class Comb(_Combinator):
        operations: tuple[Any, ...]
        name: str | None = None

        def __init__(self, operations: Iterable[Any], *, name: str | None = None) -> None:
            ops = tuple(operations)
            if kind == "Race" and not ops:
                raise WorkflowDefinitionError(
                    "Race() of no operations would never settle; pass at least one "
                    "operation descriptor"
                )
            for i, d in enumerate(ops):
                if not isinstance(d, _DESCRIPTOR_TYPES):
                    raise WorkflowDefinitionError(
                        f"{kind}() takes operation descriptors, got {d!r:.60} "
                        f"({_tname(d)}) at index {i}"
                    )
            _checked_name(name)
            self.__attrs_init__(ops, name)

    Comb.kind = kind
    Comb.__name__ = Comb.__qualname__ = kind
    Comb.__doc__ = doc
    return Comb


All = _combinator(
    "All",
    "Run the operations concurrently; yields the list of results. The first "
    "failure (in settle order) fails it with CombinatorError.",
)
Any_ = _combinator(
    "Any",
    "Run the operations concurrently; yields the first success. If every one "
    "fails it throws CombinatorError listing the errors.",
)
Race = _combinator(
    "Race",
    "Run the operations concurrently; the first to settle decides: its result is "
    "yielded, or its failure thrown as CombinatorError.",
)
AllSettled = _combinator(
    "AllSettled",
    "Run the operations concurrently; yields one dict per operation: "
    "{'status': 'fulfilled', 'value': ...} or {'status': 'rejected', 'reason': ErrorObject}.",
)

_DESCRIPTOR_TYPES: tuple[type, ...] = (
    Step,
    Wait,
    ChildContext,
    WaitForCondition,
    CreateCallback,
    AwaitCallback,
    CallbackHandle,
    WaitForCallback,
    Invoke,
    Parallel,
    Map,
    _Combinator,
)
