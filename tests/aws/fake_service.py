"""An in-process Lambda durable service speaking the boto3 client's API.

The three calls the handler uses (``checkpoint_durable_execution``,
``get_durable_execution_state``) plus ``get_durable_execution_history`` apply the
service's semantics: updates go through ``durable_gen._core.service.apply_updates``
(the same logic the local stores use), checkpoint tokens are single-use and
chained, ``ClientToken`` makes a retried call idempotent, state and deltas are
paged with ``Marker``/``NextMarker``, and errors are botocore ``ClientError``s
shaped like the emulator's (``Code`` "400").

``run(handler, arn)`` plays the service's invocation loop on a virtual clock:
invoke, validate the envelope, fire due timers, re-invoke.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from durable_gen._core import service as _service
from durable_gen._core.errors import ErrorObject
from durable_gen._core.log import (
    TERMINAL_STATUSES,
    Operation,
    OperationType,
    OperationUpdate,
)


def client_error(status: int, code: str, message: str, op: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


class _Execution:
    def __init__(self, arn: str, op: Operation, event: dict[str, Any]) -> None:
        self.arn = arn
        self.exec_id = op.id
        self.invocations = 0
        self.ops: dict[str, Operation] = {op.id: op}
        self.events: list[dict[str, Any]] = [event]
        self.seq = 0
        self.status = "RUNNING"
        self.result: str | None = None
        self.error: dict[str, Any] | None = None
        self.last_call: tuple[str, str, dict[str, Any]] | None = None
        self.updates: list[OperationUpdate] = []

    @property
    def token(self) -> str:
        return f"{self.arn}#{self.seq}"


class FakeDurableService:
    """See the module docstring. ``event_page_size`` / ``delta_page_size`` force paging."""

    def __init__(
        self,
        *,
        event_page_size: int | None = None,
        delta_page_size: int | None = None,
        start: int = 1_767_225_600_000,
    ) -> None:
        self.now = start
        self.event_page_size = event_page_size
        self.delta_page_size = delta_page_size
        self.executions: dict[str, _Execution] = {}
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self.checkpoint_calls = 0
        self.state_calls = 0
        self.batches: list[list[dict[str, Any]]] = []
        #: exceptions raised (in order) by the next API calls, before any effect
        self.inject: list[BaseException] = []
        #: called with the batch before it is applied (tests observe ordering)
        self.on_checkpoint: list[Any] = []
        self.revoke_next_token = False

    # ------------------------------------------------------------------ setup

    def clock(self) -> int:
        return self.now

    def start(self, input_payload: str = "{}") -> str:
        exec_id = uuid.uuid4().hex
        arn = f"arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/x/{exec_id}"
        op, event = _service.start_execution(exec_id, input_payload, self.now)
        self.executions[arn] = _Execution(arn, op, event)
        return arn

    def event(self, arn: str) -> dict[str, Any]:
        ex = self.executions[arn]
        ex.seq += 1
        items = [op.to_dict() for op in ex.ops.values()]
        first, marker = self._page(items, self.event_page_size)
        return {
            "DurableExecutionArn": arn,
            "CheckpointToken": ex.token,
            "InitialExecutionState": {"Operations": first, "NextMarker": marker},
        }

    def _page(self, items: list[dict[str, Any]], size: int | None) -> tuple[list[Any], str]:
        if size is None or len(items) <= size:
            return items, ""
        marker = uuid.uuid4().hex
        self._pages[marker] = items[size:]
        return items[:size], marker

    def _take(self) -> None:
        if self.inject:
            raise self.inject.pop(0)

    # ------------------------------------------------------------------ API

    def checkpoint_durable_execution(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Updates: list[dict[str, Any]],
        ClientToken: str | None = None,
    ) -> dict[str, Any]:
        self._take()
        ex = self.executions.get(DurableExecutionArn)
        if ex is None:
            raise client_error(404, "404", "Execution not found", "CheckpointDurableExecution")
        if ex.last_call is not None and ex.last_call[:2] == (ClientToken, CheckpointToken):
            return ex.last_call[2]
        if ex.status != "RUNNING" or CheckpointToken != ex.token:
            raise client_error(400, "400", "Invalid checkpoint token", "CheckpointDurableExecution")
        ups = [OperationUpdate.from_dict(u) for u in Updates]
        if len(ups) > 250:
            raise client_error(400, "400", "too many updates", "CheckpointDurableExecution")
        execs = [u for u in ups if u.type is OperationType.EXECUTION]
        if len(execs) > 1 or (execs and ups[-1].type is not OperationType.EXECUTION):
            raise client_error(
                400, "400", "EXECUTION checkpoint must be the last update.", "Checkpoint"
            )
        for hook in self.on_checkpoint:
            hook(ex, ups)
        try:
            changed, events = _service.apply_updates(
                ex.ops, ups, self.now, new_callback_id=lambda op_id: f"cb-{op_id[:8]}"
            )
        except _service.InvalidUpdateError as e:
            raise client_error(400, "400", str(e), "CheckpointDurableExecution") from e
        self.checkpoint_calls += 1
        self.batches.append(Updates)
        ex.ops.update(changed)
        ex.events.extend(events)
        ex.updates.extend(ups)
        ex.seq += 1
        ops, marker = self._page([op.to_dict() for op in changed.values()], self.delta_page_size)
        resp: dict[str, Any] = {"NewExecutionState": {"Operations": ops, "NextMarker": marker}}
        if execs:
            op = ex.ops[execs[0].id]
            self._finish(ex, "SUCCEEDED", op.result, None)
        elif self.revoke_next_token:
            self.revoke_next_token = False
        else:
            resp["CheckpointToken"] = ex.token
        ex.last_call = (ClientToken or "", CheckpointToken, resp)
        return resp

    def get_durable_execution_state(
        self,
        *,
        DurableExecutionArn: str,
        CheckpointToken: str,
        Marker: str,
        MaxItems: int = 1000,
    ) -> dict[str, Any]:
        self._take()
        self.state_calls += 1
        ex = self.executions[DurableExecutionArn]
        if CheckpointToken != ex.token:
            raise client_error(400, "400", "Invalid checkpoint token", "GetDurableExecutionState")
        items = self._pages.pop(Marker, None)
        if items is None:
            raise client_error(400, "400", f"invalid marker {Marker!r}", "GetState")
        page, marker = self._page(items, MaxItems)
        return {"Operations": page, "NextMarker": marker}

    def send_durable_execution_callback_success(
        self, *, CallbackId: str, Result: bytes = b""
    ) -> dict[str, Any]:
        for ex in self.executions.values():
            for op in ex.ops.values():
                if op.callback_id == CallbackId:
                    new, events = _service.complete_callback(
                        op, "succeed", self.now, payload=Result.decode()
                    )
                    ex.ops[op.id] = new
                    ex.events.extend(events)
                    return {}
        raise client_error(404, "404", f"no callback {CallbackId}", "SendCallbackSuccess")

    def get_durable_execution_history(self, *, DurableExecutionArn: str) -> dict[str, Any]:
        ex = self.executions[DurableExecutionArn]
        return {"Events": [{**e, "EventId": i} for i, e in enumerate(ex.events, 1)]}

    # ------------------------------------------------------------------ invocation loop

    def _finish(
        self, ex: _Execution, status: str, result: str | None, error: dict[str, Any] | None
    ) -> None:
        if ex.status != "RUNNING":
            return
        ex.status = status
        ex.result = result
        ex.error = error
        ex.events.append(
            _service.execution_finished_event(
                ex.exec_id,
                status,
                self.now,
                result=result,
                error=None if error is None else ErrorObject.from_dict(error),
            )
        )

    def invoke(self, handler: Any, arn: str) -> dict[str, Any]:
        """One invocation; validates the envelope as the service does."""
        ex = self.executions[arn]
        out = handler(self.event(arn), None)
        json.dumps(out)  # the response must be JSON
        status = out["Status"]
        if status == "SUCCEEDED":
            assert "Error" not in out, out
            result = out.get("Result")
            if result == "" and ex.status == "SUCCEEDED":
                return out
            assert isinstance(result, str)
            json.loads(result)
            self._finish(ex, "SUCCEEDED", result, None)
        elif status == "FAILED":
            assert "Result" not in out, out
            self._finish(ex, "FAILED", None, out["Error"])
        else:
            assert status == "PENDING", out
            assert set(out) == {"Status"}, out
            pending = [
                op
                for op in ex.ops.values()
                if op.type is not OperationType.EXECUTION and op.status not in TERMINAL_STATUSES
            ]
            assert pending, "PENDING with no pending operations"
        return out

    def run(self, handler: Any, arn: str, max_invocations: int = 200) -> _Execution:
        """Invoke until the execution ends or only an external event could move it."""
        ex = self.executions[arn]
        while ex.status == "RUNNING":
            ex.invocations += 1
            assert ex.invocations <= max_invocations
            self.invoke(handler, arn)
            if ex.status != "RUNNING":
                break
            wake = _service.next_timer(ex.ops.values())
            if wake is None:
                break
            self.now = max(self.now, wake)
            changed, events = _service.fire_timers(ex.ops, self.now)
            ex.ops.update(changed)
            ex.events.extend(events)
        return ex

    def operations(self, arn: str) -> list[Operation]:
        ex = self.executions[arn]
        return [op for op in ex.ops.values() if op.type is not OperationType.EXECUTION]
