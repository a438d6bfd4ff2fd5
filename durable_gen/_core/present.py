"""How operations, times and durations are shown to people, in one place.

The interpreter's messages, ``durable-gen show``/``history``, the HTML timeline and
the test runner's trees all name an operation the same way: by the operation the
workflow yielded, in AWS's operation names (``Step``, ``Wait``, ``WaitForCondition``,
``CreateCallback``, ``WaitForCallback``, ``Invoke``, ``Parallel``, ``Map``, and
``ChildContext`` for ``RunInChildContext``, after durable_gen's descriptor), then its
name: ``Step 'charge'``. Branches and items keep their recorded subtype
(``ParallelBranch``, ``MapIteration``).
"""

from __future__ import annotations

import datetime

from .log import OperationSubType

__all__ = ["describe_operation", "fmt_duration", "fmt_time", "ordinal", "short"]

_KIND_WORDS = {
    OperationSubType.STEP.value: "Step",
    OperationSubType.WAIT.value: "Wait",
    OperationSubType.RUN_IN_CHILD_CONTEXT.value: "ChildContext",
    OperationSubType.WAIT_FOR_CONDITION.value: "WaitForCondition",
    OperationSubType.CALLBACK.value: "CreateCallback",
    OperationSubType.WAIT_FOR_CALLBACK.value: "WaitForCallback",
    OperationSubType.CHAINED_INVOKE.value: "Invoke",
}


def describe_operation(sub_type: str | None, type_: str | None, name: str | None) -> str:
    """An operation as a person wrote it: ``Step 'charge'``, ``Wait``."""
    kind = _KIND_WORDS.get(sub_type or "") or sub_type or type_ or "operation"
    return f"{kind} {name!r}" if name else kind


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def fmt_time(ms: int | None) -> str:
    """Epoch ms as ``2026-01-01 00:00:00.000Z`` (UTC); None as ``-``."""
    if ms is None:
        return "-"
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S") + f".{ms % 1000:03d}Z"


def fmt_duration(ms: int) -> str:
    """``250 ms``, ``4.2 s``, ``3.0 min``, ``5.5 h``, ``12.0 d``."""
    if ms < 1000:
        return f"{ms} ms"
    s = ms / 1000
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def short(text: str | None, width: int = 60) -> str:
    """One line of at most ``width`` characters (an ellipsis where cut)."""
    if text is None:
        return ""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
