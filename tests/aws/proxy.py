"""The shim against AWS's emulator, with what it sends recorded and faults injected.

No service logic lives here: every call that is not failed on purpose reaches AWS's
emulator (dex-local-runner), and what a test reads back -- statuses, results,
histories -- is the emulator's. The two classes only stand between the shim and
the emulator:

- :class:`ProxyClient` wraps the emulator's boto3 client. It records the calls
  the shim makes (the update batches of the checkpoints the emulator answered, the
  state pages fetched, each call's parameters) and injects the faults the emulator
  cannot: an exception before a call reaches it (throttling, a 5xx, a broken
  connection), a response lost after the emulator applied the call, a response
  without its checkpoint token (as a paused execution's), a checkpoint response's
  operations split into pages the shim must fetch.
- :class:`Invocations` wraps the handler the emulator invokes: it records each
  invocation's event and outcome, and may change the event first (page its initial
  state, corrupt its input) or act around the call.

:func:`run` starts an execution of a workflow through both and waits for its end.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from durable_gen.aws import ApiRetry, durable_handler

#: ``before(n, event, handler)`` of :class:`Invocations`
Before = Callable[[int, dict[str, Any], Any], dict[str, Any] | None]

#: API retries without sleeping (the emulator answers at once)
NO_SLEEP = ApiRetry(max_attempts=3, base_delay=0.5, sleep=lambda s: None)


def client_error(status: int, code: str, message: str, op: str) -> ClientError:
    """The botocore error a Lambda API call raises for ``status``/``code``."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


def first_page(client: Any, event: dict[str, Any], size: int) -> dict[str, Any]:
    """``event`` with its initial state cut to the emulator's first page of ``size``
    operations and the emulator's own NextMarker for the rest (as the service
    pages a large state); unchanged when it has no more than ``size``."""
    ops = event["InitialExecutionState"]["Operations"]
    if len(ops) <= size:
        return event
    page = client.get_durable_execution_state(
        DurableExecutionArn=event["DurableExecutionArn"],
        CheckpointToken=event["CheckpointToken"],
        MaxItems=size,
    )
    assert [op["Id"] for op in page["Operations"]] == [op["Id"] for op in ops[:size]]
    state = {"Operations": ops[:size], "NextMarker": page.get("NextMarker") or ""}
    return {**event, "InitialExecutionState": state}


def paged(client: Any, size: int) -> Before:
    """``before`` of :func:`run`: every event cut by :func:`first_page`."""
    return lambda n, event, handler: first_page(client, event, size)


class ProxyClient:
    """The emulator's client, recorded and with faults on demand (module docstring)."""

    def __init__(self, client: Any, *, delta_page_size: int | None = None) -> None:
        self.client = client
        #: every call the shim attempted: (API name, its parameters)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        #: the Updates of every checkpoint call the emulator answered, in order
        self.batches: list[list[dict[str, Any]]] = []
        self.checkpoint_calls = 0  # checkpoint calls the emulator answered
        self.state_calls = 0  # GetDurableExecutionState calls answered
        #: raised, in order, by the next calls, before they reach the emulator
        self.inject: list[BaseException] = []
        #: the next ``lose`` checkpoint responses are lost after the emulator applied them
        self.lose = 0
        #: the next ``strip_token`` checkpoint responses come back without a token
        self.strip_token = 0
        #: called with each checkpoint's Updates before it is sent
        self.on_checkpoint: list[Callable[[list[dict[str, Any]]], None]] = []
        self.delta_page_size = delta_page_size
        self._pages: dict[str, list[dict[str, Any]]] = {}

    def __getattr__(self, name: str) -> Any:  # every other API: the emulator's
        return getattr(self.client, name)

    def _fault(self) -> None:
        if self.inject:
            raise self.inject.pop(0)

    def checkpoint_durable_execution(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("CheckpointDurableExecution", kw))
        self._fault()
        updates = kw.get("Updates", [])
        for hook in self.on_checkpoint:
            hook(updates)
        resp: dict[str, Any] = self.client.checkpoint_durable_execution(**kw)
        self.checkpoint_calls += 1
        self.batches.append(updates)
        if self.lose:
            self.lose -= 1
            raise EndpointConnectionError(endpoint_url="http://emulator (response lost)")
        if self.strip_token:
            self.strip_token -= 1
            resp = {k: v for k, v in resp.items() if k != "CheckpointToken"}
        state = resp.get("NewExecutionState") or {}
        ops = state.get("Operations") or []
        size = self.delta_page_size
        if size is not None and len(ops) > size and not state.get("NextMarker"):
            marker = f"proxy-{uuid.uuid4().hex}"
            self._pages[marker] = ops[size:]
            resp = {**resp, "NewExecutionState": {"Operations": ops[:size], "NextMarker": marker}}
        return resp

    @property
    def held_pages(self) -> int:
        """Checkpoint-answer pages this proxy held back that the shim has not read."""
        return len(self._pages)

    def get_durable_execution_state(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("GetDurableExecutionState", kw))
        self._fault()
        marker = kw.get("Marker", "")
        if marker in self._pages:  # the rest of a checkpoint response this proxy paged
            rest = self._pages.pop(marker)
            size = kw.get("MaxItems") or len(rest)
            page: dict[str, Any] = {"Operations": rest[:size], "NextMarker": ""}
            if rest[size:]:
                nxt = f"proxy-{uuid.uuid4().hex}"
                self._pages[nxt] = rest[size:]
                page["NextMarker"] = nxt
            self.state_calls += 1
            return page
        resp: dict[str, Any] = self.client.get_durable_execution_state(**kw)
        self.state_calls += 1
        return resp


class Invocations:
    """The handler as the emulator invokes it, each invocation recorded.

    ``before(n, event, handler)`` (n from 1) may return another event to hand to
    the handler, or call the handler itself first (what it raises is recorded).
    """

    def __init__(self, handler: Any, before: Before | None = None) -> None:
        self.handler = handler
        self.before = before
        self.events: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any] | None] = []
        #: (invocation number, exception) for every invocation that raised
        self.errors: list[tuple[int, BaseException]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(copy.deepcopy(event))
        n = len(self.events)
        try:
            if self.before is not None:
                event = self.before(n, event, self.handler) or event
            out: dict[str, Any] = self.handler(event, context)
        except BaseException as e:
            self.errors.append((n, e))
            self.outputs.append(None)
            raise
        self.outputs.append(out)
        return out

    def execution_id(self) -> str:
        """The id of the EXECUTION operation (from the first event)."""
        ops = self.events[0]["InitialExecutionState"]["Operations"]
        return next(op["Id"] for op in ops if op["Type"] == "EXECUTION")


@dataclass
class Run:
    """An execution of the shim on the emulator, once it ended (or stopped waiting)."""

    emulator: Any
    arn: str
    proxy: ProxyClient
    invocations: Invocations
    handler: Any
    execution: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.execution["Status"])

    @property
    def result(self) -> str | None:
        """The execution's result, as the emulator returns it (JSON text)."""
        return self.execution.get("Result")

    @property
    def error(self) -> dict[str, Any] | None:
        return self.execution.get("Error")

    def history(self) -> list[dict[str, Any]]:
        return list(self.emulator.history(self.arn))

    def types(self) -> list[str]:
        """The history's event types, InvocationCompleted left out (the emulator may
        record it before or after a skipped timer's event)."""
        return [e["EventType"] for e in self.history() if e["EventType"] != "InvocationCompleted"]

    def events_named(self, event_type: str, name: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.history()
            if e["EventType"] == event_type and (name is None or e.get("Name") == name)
        ]

    def wait(self) -> Run:
        self.execution = self.emulator.wait(self.arn)
        return self


def start(
    emulator: Any,
    workflow: Any,
    input_value: Any = None,
    *,
    proxy: ProxyClient | None = None,
    before: Before | None = None,
    **handler_kw: Any,
) -> Run:
    """Start ``workflow`` through the shim on the emulator; returns at once."""
    proxy = proxy if proxy is not None else ProxyClient(emulator.client)
    handler_kw.setdefault("retry", NO_SLEEP)
    handler = durable_handler(workflow, client=proxy, **handler_kw)
    recorded = Invocations(handler, before)
    arn = emulator.start(emulator.register(recorded), input_value)
    return Run(emulator, arn, proxy, recorded, handler)


def run(emulator: Any, workflow: Any, input_value: Any = None, **kw: Any) -> Run:
    """``start``, then wait until the execution is no longer RUNNING."""
    return start(emulator, workflow, input_value, **kw).wait()
