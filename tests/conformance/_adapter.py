"""Fill the six documented gaps of the 1.4.0 emulator's history — from its own data.

AWS's emulator (``aws-durable-execution-sdk-python-testing`` 1.4.0) builds its
``GetDurableExecutionHistory`` answer from what it stored for the execution
(``--store-type sqlite``: one JSON document per execution holding the
checkpoint ``Updates`` with their timestamps, the ``InvocationCompletions``, the
``Operations``, the ``StartInput`` and the chained-invoke children), but drops
some fields the requirements check. :func:`adapt_history` adds exactly those
fields, reading only that stored document (and, for a crash, the emulator's own
log line); it never reads anything the function (our SDK side) produced other
than what the emulator itself stored. Nothing else in an event is changed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
import sqlite3
from collections.abc import Sequence
from typing import Any


def stored_execution(db_path: str, arn: str) -> dict[str, Any] | None:
    """The emulator's stored document for ``arn`` (its sqlite store), or None."""
    with sqlite3.connect(db_path, timeout=10) as conn:
        row = conn.execute(
            "SELECT data FROM executions WHERE durable_execution_arn = ?", (arn,)
        ).fetchone()
    return json.loads(row[0]) if row else None


def _ms(value: Any) -> float:
    """A stored or event timestamp as epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return value.timestamp() * 1000
    if isinstance(value, int | float):
        return float(value) * (1000 if value < 1e11 else 1)
    text = str(value)
    if text.replace(".", "", 1).isdigit():
        return _ms(float(text))
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _event_ms(event: dict[str, Any]) -> float:
    return _ms(event["EventTimestamp"])


def adapt_history(
    events: Sequence[dict[str, Any]],
    stored: dict[str, Any],
    children: dict[str, dict[str, Any]],
    crash_errors: Sequence[Crash] = (),
) -> list[dict[str, Any]]:
    """``events`` with the six gaps filled from ``stored`` (see the module docstring).

    ``children`` are the stored documents of the execution's chained-invoke
    children, by ARN; ``crash_errors`` the crashed invocations the emulator logged
    for this execution (:func:`logged_crashes`).
    """
    out = [copy.deepcopy(e) for e in events]
    updates: list[dict[str, Any]] = stored.get("Updates") or []
    stamps = [_ms(t) for t in stored.get("UpdateTimestamps") or []]

    # (1) InvocationCompletedDetails. The emulator records each completed
    # invocation (StartTimestamp, EndTimestamp, RequestId) in
    # ``InvocationCompletions`` and emits InvocationCompleted events stamped with
    # the EndTimestamp but without details. Match them in order and add the details.
    completions: list[dict[str, Any]] = list(stored.get("InvocationCompletions") or [])
    invocation_events = [e for e in out if e.get("EventType") == "InvocationCompleted"]
    for event, done in zip(invocation_events, completions, strict=False):
        if "InvocationCompletedDetails" not in event:
            like = event.get("EventTimestamp")
            event["InvocationCompletedDetails"] = {
                "StartTimestamp": _like(like, _ms(done["StartTimestamp"])),
                "EndTimestamp": _like(like, _ms(done["EndTimestamp"])),
                "RequestId": done.get("RequestId", ""),
            }

    # (2) RetryDetails.CurrentAttempt on StepSucceeded after retries: the attempt
    # is the number of START updates the emulator stored for the step up to its
    # SUCCEED update (the emulator counts attempts the same way for RETRY/FAIL).
    attempts: dict[str, int] = {}
    succeed_attempt: dict[str, int] = {}
    for u in updates:
        if u.get("Type") != "STEP":
            continue
        if u.get("Action") == "START":
            attempts[u["Id"]] = attempts.get(u["Id"], 0) + 1
        elif u.get("Action") == "SUCCEED":
            succeed_attempt[u["Id"]] = attempts.get(u["Id"], 1)
    for e in out:
        if e.get("EventType") == "StepSucceeded" and e.get("Id") in succeed_attempt:
            details = e.setdefault("StepSucceededDetails", {})
            if "RetryDetails" not in details:
                details["RetryDetails"] = {"CurrentAttempt": succeed_attempt[e["Id"]]}

    # (3) Timeout / HeartbeatTimeout on CallbackStarted: the CALLBACK START update
    # the emulator stored carries them in CallbackOptions.
    callback_options = {
        u["Id"]: u.get("CallbackOptions") or {}
        for u in updates
        if u.get("Type") == "CALLBACK" and u.get("Action") == "START"
    }
    for e in out:
        if e.get("EventType") == "CallbackStarted" and e.get("Id") in callback_options:
            options = callback_options[e["Id"]]
            details = e.setdefault("CallbackStartedDetails", {})
            if options.get("TimeoutSeconds") and "Timeout" not in details:
                details["Timeout"] = options["TimeoutSeconds"]
            if options.get("HeartbeatTimeoutSeconds") and "HeartbeatTimeout" not in details:
                details["HeartbeatTimeout"] = options["HeartbeatTimeoutSeconds"]

    # (4) The state as Result.Payload on wait-for-condition continue events: a
    # STEP RETRY update without an error becomes a StepSucceeded event; its stored
    # Payload is the new state. Match the n-th such event of an operation with
    # the n-th such update.
    continue_payloads: dict[str, list[str | None]] = {}
    for u in updates:
        if u.get("Type") == "STEP" and u.get("Action") == "RETRY" and not u.get("Error"):
            continue_payloads.setdefault(u["Id"], []).append(u.get("Payload"))
    seen: dict[str, int] = {}
    for e in out:
        op = e.get("Id")
        if e.get("EventType") != "StepSucceeded" or op not in continue_payloads:
            continue
        n = seen.get(op, 0)
        seen[op] = n + 1
        if n < len(continue_payloads[op]):
            payload = continue_payloads[op][n]
            details = e.setdefault("StepSucceededDetails", {})
            if payload is not None and "Payload" not in (details.get("Result") or {}):
                details["Result"] = {"Payload": payload, "Truncated": False}

    # (5) ExecutedVersion and TenantId on ChainedInvokeStarted: TenantId is in the
    # stored CHAINED_INVOKE START update's ChainedInvokeOptions; the executed
    # version is the qualifier the emulator started the child execution with.
    invoke_options = {
        u["Id"]: u.get("ChainedInvokeOptions") or {}
        for u in updates
        if u.get("Type") == "CHAINED_INVOKE" and u.get("Action") == "START"
    }
    child_of = stored.get("ChainedInvokeChildren") or {}
    for e in out:
        if e.get("EventType") != "ChainedInvokeStarted" or e.get("Id") not in invoke_options:
            continue
        details = e.setdefault("ChainedInvokeStartedDetails", {})
        tenant = invoke_options[e["Id"]].get("TenantId")
        if tenant and "TenantId" not in details:
            details["TenantId"] = tenant
        child = children.get(child_of.get(e["Id"], ""))
        if child is not None and "ExecutedVersion" not in details:
            qualifier = (child.get("StartInput") or {}).get("FunctionQualifier")
            details["ExecutedVersion"] = qualifier or "$LATEST"

    # (6) A runtime crash recorded as InvocationCompleted with ErrorType
    # Runtime.ExitError. The emulator does not keep failed invocations in
    # InvocationCompletions; it logs "[arn] Invocation failed: ... <the function's
    # error response>" (at the moment it saw the failure: the invocation's end) and
    # invokes again. The crashed invocation's updates are the stored updates that
    # fall in no completed invocation's [StartTimestamp, EndTimestamp]. Insert one
    # InvocationCompleted per logged crash after the last of them: its error is the
    # logged response's, its end the log line's time, its start the first of those
    # updates (the emulator records no start for a failed invocation: the one
    # value not read from it), then renumber the EventIds.
    if crash_errors:
        windows = [(_ms(c["StartTimestamp"]), _ms(c["EndTimestamp"])) for c in completions]
        orphans = [t for t in stamps if not any(a <= t <= b for a, b in windows)]
        for crash in crash_errors[:1] if orphans else ():
            end = max(orphans)
            at = next((i for i, e in enumerate(out) if _event_ms(e) > end), len(out))
            like = out[at - 1]["EventTimestamp"] if at else None
            ended = max(crash.logged_ms, end)
            out.insert(
                at,
                {
                    "EventType": "InvocationCompleted",
                    "EventTimestamp": _like(like, ended),
                    "InvocationCompletedDetails": {
                        "StartTimestamp": _like(like, min(orphans)),
                        "EndTimestamp": _like(like, ended),
                        "RequestId": crash.request_id,
                        "Error": {
                            "Payload": {
                                "ErrorType": crash.error_type,
                                "ErrorMessage": crash.message,
                            }
                        },
                    },
                },
            )
        for i, e in enumerate(out, 1):
            e["EventId"] = i
    return out


def _like(example: Any, ms: float) -> Any:
    """``ms`` (epoch milliseconds) in the type of the timestamp ``example``."""
    if isinstance(example, datetime.datetime):
        return datetime.datetime.fromtimestamp(ms / 1000, tz=example.tzinfo or datetime.UTC)
    if isinstance(example, int | float) and example < 1e11:
        return ms / 1000
    return ms


@dataclasses.dataclass(frozen=True)
class Crash:
    """A failed invocation as the emulator logged it."""

    error_type: str
    message: str
    request_id: str
    logged_ms: float  # when the emulator logged it: the invocation's end


_FAILED = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?"
    r"\[(?P<arn>[^\]]+)\] Invocation failed: (?P<rest>.*)$",
    re.M,
)


def logged_crashes(log_text: str, arn: str) -> list[Crash]:
    """The invocations of ``arn`` the emulator logged as crashed (Runtime.ExitError),
    with the function's error response and the time of the log line."""
    out = []
    for m in _FAILED.finditer(log_text):
        if m["arn"] != arn or "Runtime.ExitError" not in m["rest"]:
            continue
        response = json.loads(m["rest"][m["rest"].index("{") :])
        when = datetime.datetime.strptime(m["when"], "%Y-%m-%d %H:%M:%S,%f")
        out.append(
            Crash(
                error_type=response["errorType"],
                message=response.get("errorMessage", ""),
                request_id=_request_id(response.get("errorMessage", "")),
                logged_ms=when.astimezone().timestamp() * 1000,
            )
        )
    return out


def _request_id(message: str) -> str:
    """Lambda's runtime names the request in a crash's message ("RequestId: ... Error")."""
    m = re.match(r"RequestId: (\S+) ", message)
    return m[1] if m else ""
