"""A session-wide AWS durable-service emulator driving our local Invoke endpoint.

``dex-local-runner start-server --skip-time`` (AWS's testing kit) runs in a
subprocess on a free loopback port (``durable_gen.aws.local.Emulator``); it
invokes functions at a
:class:`~durable_gen.aws.local.LocalLambda` served from this process, where tests
register handlers by name. Both stop at the end of the session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from durable_gen.aws.local import Emulator as EmulatorProcess
from durable_gen.aws.local import LocalLambda, start_execution

#: functions the emulator lets workflows Invoke (tests register handlers under them)
DURABLE_TARGET = "invoke-durable-target"
PLAIN_TARGET = "invoke-plain-target"


class Emulator:
    """The running emulator: start executions, wait for them, read their history."""

    def __init__(self, url: str, lam: LocalLambda, log: Path | None = None) -> None:
        import boto3

        self.url = url
        self.lam = lam
        self.log = log
        self.client: Any = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def register(self, handler: Any) -> str:
        """Serve ``handler`` under a fresh function name; returns the name."""
        name = f"fn-{uuid.uuid4().hex[:12]}"
        self.lam.register(name, handler)
        return name

    def start(self, function_name: str, input_value: Any = None) -> str:
        return start_execution(
            self.url, function_name, input_value, timeout_seconds=120, request_timeout=10
        )

    def wait(self, arn: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            ex: dict[str, Any] = self.client.get_durable_execution(DurableExecutionArn=arn)
            if ex["Status"] != "RUNNING":
                return ex
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"execution {arn} still RUNNING after {timeout}s\n"
                    f"its history: {[e['EventType'] for e in self.history(arn)]}\n"
                    f"the emulator's log ends:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def run(self, handler: Any, input_value: Any = None) -> tuple[str, dict[str, Any]]:
        arn = self.start(self.register(handler), input_value)
        return arn, self.wait(arn)

    def log_tail(self, lines: int = 60) -> str:
        if self.log is None or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
        while True:
            page = self.client.get_durable_execution_history(**kwargs)
            events.extend(page["Events"])
            if not page.get("NextMarker"):
                return events
            kwargs["Marker"] = page["NextMarker"]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    configs = {DURABLE_TARGET: {"DurableConfig": {"ExecutionTimeout": 60}}, PLAIN_TARGET: {}}
    log = tmp_path_factory.mktemp("emulator") / "dex-local-runner.log"
    with (
        LocalLambda() as lam,
        EmulatorProcess(lam.url, skip_time=True, function_configs=configs, log=str(log)) as emu,
    ):
        yield Emulator(emu.url, lam, log)
