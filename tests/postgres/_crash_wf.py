"""The workflow of the crash test (``test_crash.py``), importable by its worker processes.

Each step appends ``execution step pid token`` to ``$DG_STEP_LOG`` and returns its
token: the recorded result names the run of the step that was recorded."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Generator
from typing import Any

from durable_gen import Step

STEPS = 10


def work(execution: str, index: int) -> str:
    token = uuid.uuid4().hex
    time.sleep(0.01)
    with open(os.environ["DG_STEP_LOG"], "a") as f:  # O_APPEND: one whole line per write
        f.write(f"{execution} {index} {os.getpid()} {token}\n")
    return token


def flow(event: dict[str, Any]) -> Generator[Any, Any, list[str]]:
    tokens = []
    for i in range(STEPS):
        tokens.append((yield Step(work, event["id"], i, name=f"s{i}")))
    return tokens
