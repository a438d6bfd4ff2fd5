"""The telemetry requirements on AWS's emulator, through the Lambda shim.

AWS's emulator (``dex-local-runner``, sqlite store, real time: its skip clock fires
timers before the invocation that armed them has returned, see
``tests/conformance/_harness.py``) invokes ``durable_handler`` handlers served by a
:class:`~durable_gen.aws.local.LocalLambda` in this process; each handler carries
:class:`durable_gen.otel.DurableTracing`. History is read through the conformance
harness's adapter (it fills what the 1.4.0 emulator leaves out of its events).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_gen.aws import durable_handler
from durable_gen.aws.local import start_execution
from durable_gen.otel import DurableTracing

from ._scenarios import SCENARIOS, TARGETS

#: the wait-interrupted execution's timeout (s): it ends TIMED_OUT inside its long wait
INTERRUPTED_TIMEOUT_SECONDS = 3
RUN_TIMEOUT_SECONDS = 90


class OtelEmulator:
    """One emulator subprocess and the LocalLambda it invokes, for a whole session."""

    def __init__(self, workdir: Path) -> None:
        from tests.conformance._harness import AdaptedLambdaClient, _EmulatorInstance

        self.instance = _EmulatorInstance(workdir, skip_time=False, extra_functions=tuple(TARGETS))
        self.client = self.instance.client
        self.history_client = AdaptedLambdaClient(
            self.instance.client, self.instance.db, self.instance.log
        )

    def register(self, name: str, workflow: Any, tracing: DurableTracing) -> None:
        self.instance.lam.register(
            name, durable_handler(workflow, client=self.client, hooks=[tracing])
        )

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
        while True:
            page = self.history_client.get_durable_execution_history(**kwargs)
            events.extend(page["Events"])
            if not page.get("NextMarker"):
                return events
            kwargs["Marker"] = page["NextMarker"]

    def close(self) -> None:
        self.instance.close()


def _callback_actions(emu: OtelEmulator, arn: str, actions: list[Any], used: set[int]) -> None:
    """Send the action of each new CallbackStarted (by name, as AWS's validator does)."""
    from ._runner import _matches

    for event in emu.history(arn):
        if event.get("EventType") != "CallbackStarted":
            continue
        for i, action in enumerate(actions):
            if i in used or not _matches(action, event.get("Name")):
                continue
            used.add(i)
            time.sleep(int(action.get("Delay", 0)))
            callback_id = event["CallbackStartedDetails"]["CallbackId"]
            if action["Operation"] == "success":
                emu.client.send_durable_execution_callback_success(
                    CallbackId=callback_id, Result=json.dumps(action["Payload"]).encode()
                )
            else:
                payload = action["Payload"]
                emu.client.send_durable_execution_callback_failure(
                    CallbackId=callback_id,
                    Error={
                        "ErrorType": payload.get("ErrorType", "Error"),
                        "ErrorMessage": payload.get("ErrorMessage", ""),
                    },
                )
            break


def run_on_emulator(emu: OtelEmulator, requirement: Any, spec: dict[str, Any], event: Any) -> Any:
    from ._runner import _provider, _Ran

    exporter = InMemorySpanExporter()
    provider = _provider(exporter)
    tracing = DurableTracing(provider, view=requirement.view)
    for name, target in TARGETS.items():  # the functions its Invoke reaches
        emu.register(name, target, tracing)
    function = f"otel-{uuid.uuid4().hex[:12]}"
    emu.register(function, SCENARIOS[event["scenario"]], tracing)
    interrupted = event["scenario"] == "wait-interrupted"
    arn = start_execution(
        emu.instance.url,
        function,
        event,
        timeout_seconds=INTERRUPTED_TIMEOUT_SECONDS if interrupted else 120,
    )
    used: set[int] = set()
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        status = str(emu.client.get_durable_execution(DurableExecutionArn=arn)["Status"])
        if status != "RUNNING" or time.monotonic() > deadline:
            break
        if spec.get("CallbackActions"):
            _callback_actions(emu, arn, spec["CallbackActions"], used)
        time.sleep(0.1)
    time.sleep(0.2)  # the handler returns after the service recorded its end
    provider.force_flush()
    return _Ran(arn, status, emu.history(arn), exporter.get_finished_spans())
