"""Histories reduced to what the differential comparison compares.

A normalized history is ``{"status", "result", "execution": [...], "operations":
{Id: [events...]}}``: per operation, its events in order, each reduced to its
type, subtype, name, parent, decoded payloads, error type and message, retry
details and wait durations. What is left out, and why:

- ``InvocationCompleted`` events, ``EventId``s and timestamps: how a program is
  split into invocations is the SDK's business (the issue's definition of
  "equal histories" ignores them).
- The interleaving of different operations' events: AWS's SDK runs Parallel and
  Map branches on threads, so the order in which two branches' events reach the
  service is not deterministic there. Each operation's own events are compared in
  order.
- ``StackTrace``: not in the compared fields (AWS's SDK records none for a plain
  exception; durable_gen records where it was raised).
- The execution's own id and name, callback ids and the ARNs of chained-invoke
  children: made by the service or the
  caller, different on every run; and the ``callback_endpoint`` in the input
  (where the program's self-answering callbacks reach the service under test).

Payloads are compared as decoded values: AWS's SDK writes non-primitive values in
its ``{"t": tag, "v": ...}`` envelope, durable_gen in plain JSON (or CBOR), and
both decode to the same data. Known differences of AWS's emulator are not
normalized here: the emulator targets' histories are first completed by
``tests.conformance._adapter`` (the documented gaps, filled from the emulator's
own stored data) and :func:`emulator_fixes` (below), one place, a comment each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_durable_execution_sdk_python.concurrency.models import BatchResult as AwsBatchResult
from aws_durable_execution_sdk_python.serdes import ExtendedTypeSerDes

from durable_gen._core.batch import BatchResult
from durable_gen._core.errors import SerializationError
from durable_gen._core.serdes import DEFAULT_SERDES

_AWS_SERDES: ExtendedTypeSerDes[Any] = ExtendedTypeSerDes()  # type: ignore[no-untyped-call]
_DROP = frozenset({"EventId", "EventTimestamp", "StartTimestamp", "EndTimestamp"})
_DROP_DETAILS = frozenset(
    {
        "ScheduledEndTimestamp",
        "CallbackId",
        "DurableExecutionArn",  # a chained invoke's child execution: made by the service
        "Truncated",
        "ExecutionTimeout",
        "StackTrace",
    }
)


def decode(payload: Any) -> Any:
    """A payload as plain data, whichever SDK wrote it."""
    if not isinstance(payload, str):
        return payload
    try:
        value = _AWS_SERDES.deserialize(payload)
    except Exception:  # not AWS's envelope (nor plain JSON): durable_gen's encoding
        try:
            value = DEFAULT_SERDES.deserialize(payload)
        except SerializationError:
            return {"<undecodable>": payload}
    return plain(value)


def plain(value: Any) -> Any:
    """``value`` as JSON-like data: tuples as lists, batch results as their record."""
    if isinstance(value, AwsBatchResult):
        return plain(value.to_dict())
    if isinstance(value, BatchResult):
        return plain(value.to_record())
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != "StackTrace"}
    return value


def _details(details: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in details.items():
        if key in _DROP_DETAILS:
            continue
        if isinstance(value, dict) and "Payload" in value:
            payload = value["Payload"]
            if isinstance(payload, dict):  # an ErrorObject
                out[key] = {k: v for k, v in payload.items() if k != "StackTrace"}
            else:
                out[key] = decode(payload)
        elif isinstance(value, dict):
            out[key] = _details(value)
        else:
            out[key] = value
    return out


def normalize(events: Sequence[dict[str, Any]], status: str, result: Any) -> dict[str, Any]:
    """The comparable form of one execution's history (see the module docstring)."""
    execution: list[dict[str, Any]] = []
    operations: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        kind = event["EventType"]
        if kind == "InvocationCompleted":
            continue
        reduced = {
            k: v
            for k, v in event.items()
            if k not in _DROP and not k.endswith("Details") and k != "Id"
        }
        details = event.get(f"{kind}Details")
        if details:
            reduced["Details"] = _details(details)
        if kind.startswith("Execution"):
            reduced.pop("Name", None)  # the execution's name: made per run by the caller
            given = reduced.get("Details", {}).get("Input")
            if isinstance(given, dict):  # the harness's own routing: where the service is
                given.pop("callback_endpoint", None)
            execution.append(reduced)
        else:
            operations.setdefault(str(event.get("Id")), []).append(reduced)
    return {
        "status": status,
        "result": decode(result),
        "execution": execution,
        "operations": operations,
    }


def emulator_fixes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Known differences of AWS's emulator (1.4.0) left after ``_adapter``, one each.

    Applied to the emulator targets' events only (``aws`` and ``shim`` alike: these
    are the service's events, not what either SDK checkpointed).
    """
    out = []
    for original in events:
        event = dict(original)
        kind = event["EventType"]
        details = dict(event.get(f"{kind}Details") or {})
        retry = dict(details.get("RetryDetails") or {})
        # (1) A final StepFailed (FAIL, not RETRY) carries NextAttemptDelaySeconds 0
        # in the emulator; AWS's requirements (3-8) say a final failure has none
        # ("no NextAttemptDelaySeconds means retries exhausted").
        if kind == "StepFailed" and retry.get("NextAttemptDelaySeconds") == 0:
            retry.pop("NextAttemptDelaySeconds")
        # (2) _adapter fills RetryDetails.CurrentAttempt on every StepSucceeded, the
        # first attempt's too; the requirements only ask for it after retries (3-7),
        # and the embedded service writes it only then.
        if kind == "StepSucceeded" and retry == {"CurrentAttempt": 1}:
            retry = {}
        # (3) CallbackStarted: the emulator records no Timeout / HeartbeatTimeout and
        # _adapter fills them from the START update's CallbackOptions only when
        # non-zero; the update said 0 ("none") for the others, which the embedded
        # service writes as 0.
        if kind == "CallbackStarted":
            details.setdefault("Timeout", 0)
            details.setdefault("HeartbeatTimeout", 0)
            event[f"{kind}Details"] = details
        if "RetryDetails" in details:
            if retry:
                details["RetryDetails"] = retry
            else:
                del details["RetryDetails"]
            event[f"{kind}Details"] = details
        out.append(event)
    return out


def side_by_side(left: dict[str, Any], right: dict[str, Any], names: tuple[str, str]) -> str:
    """The two normalized histories, operation by operation, differences marked."""
    lines = [f"{'':2}{names[0]:<70} | {names[1]}"]

    def rows(value: Any) -> list[str]:
        return [json.dumps(v, sort_keys=True, default=str) for v in value]

    def block(title: str, a: list[str], b: list[str]) -> None:
        lines.append(f"-- {title}")
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else ""
            y = b[i] if i < len(b) else ""
            mark = "  " if x == y else "!!"
            lines.append(f"{mark}{x[:70]:<70} | {y[:70]}")
            if x != y and (len(x) > 70 or len(y) > 70):
                lines.append(f"    {names[0]}: {x}")
                lines.append(f"    {names[1]}: {y}")

    for key in ("status", "result"):
        block(key, rows([left.get(key)]), rows([right.get(key)]))
    block("execution", rows(left["execution"]), rows(right["execution"]))
    ids = list(left["operations"]) + [i for i in right["operations"] if i not in left["operations"]]
    for op_id in ids:
        a = rows(left["operations"].get(op_id, []))
        b = rows(right["operations"].get(op_id, []))
        block(f"operation {op_id[:16]}", a, b)
    return "\n".join(lines)
