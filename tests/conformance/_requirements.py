"""The AWS conformance requirements in scope, and where their handlers are."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from .handlers import SUITES

#: Requirement ids in scope (issue 6), per suite.
SCOPE: dict[str, tuple[str, ...]] = {
    "step": tuple(
        [
            "1-1",
            "1-2",
            "1-4",
            "1-5",
            "1-7",
            "1-8",
            "1-10",
            "1-11",
            "1-13",
            "1-14",
            "1-16",
            "1-17",
            "1-19",
            "1-20",
        ]
    ),
    "wait": tuple(["2-1", "2-2", "2-4", "2-5"]),
    "child": tuple(
        [
            "3-1",
            "3-2",
            "3-4",
            "3-5",
            "3-7",
            "3-8",
            "3-10",
            "3-11",
            "3-12",  # issue 19: an interrupted child context resumes, not restarts
            "3-13",
            "3-14",
            "3-16",
            "3-17",
        ]
    ),
    "callback": tuple(
        [
            "4-1",
            "4-2",
            "4-4",
            "4-5",
            "4-7",
            "4-8",
            "4-10",
            "4-11",
            "4-13",
            "4-14",
            "4-16",
            "4-17",
            "4-19",
        ]
    ),
    "invoke": tuple(
        ["5-1", "5-2", "5-4", "5-5", "5-7", "5-8", "5-10", "5-11", "5-13", "5-14", "5-16"]
    ),
    "wait_for_condition": tuple(["6-1", "6-2", "6-4", "6-5", "6-7", "6-8", "6-10", "6-11", "6-13"]),
    "wait_for_callback": tuple(
        ["7-1", "7-2", "7-4", "7-5", "7-7", "7-8", "7-10", "7-11", "7-13", "7-14"]
    ),
    "parallel": tuple(
        [
            "8-1",
            "8-2",
            "8-4",
            "8-5",
            "8-7",
            "8-8",
            "8-10",
            "8-11",
            "8-13",
            "8-14",
            "8-16",
            "8-17",
            "8-19",
            "8-20",
            "8-22",
        ]
    ),
    "map": tuple(
        [
            "9-1",
            "9-2",
            "9-4",
            "9-5",
            "9-7",
            "9-8",
            "9-10",
            "9-11",
            "9-13",
            "9-14",
            "9-16",
            "9-17",
            "9-19",
            "9-20",
        ]
    ),
    "plugin": tuple(["10-1", "10-2", "10-4", "10-5", "10-7"]),
}
assert tuple(SCOPE) == SUITES


def requirements_dir() -> Path:
    import aws_durable_execution_conformance_tests as pkg

    return Path(pkg.__file__).parent / "test_requirements"


@functools.cache
def suite_module(suite: str) -> ModuleType | None:
    """``tests.conformance.handlers.<suite>``, or None when it is not written yet."""
    try:
        return importlib.import_module(f"tests.conformance.handlers.{suite}")
    except ModuleNotFoundError as e:
        if e.name == f"tests.conformance.handlers.{suite}":
            return None
        raise


def all_functions() -> dict[str, Callable[..., Any]]:
    """Every suite's FUNCTIONS (chained-invoke targets), by function name."""
    out: dict[str, Callable[..., Any]] = {}
    for suite in SUITES:
        module = suite_module(suite)
        out.update(getattr(module, "FUNCTIONS", {}) if module is not None else {})
    return out


def _events_between_need_real_time(events: Sequence[dict[str, Any]]) -> bool:
    """An external event must land inside a wait or retry window.

    Time skipping fires waits and retry timers at once; callbacks (and their
    timeouts) come in real time. When the expected history has a callback's
    terminal event between a wait's start and its end (or between a failed
    attempt and the next), skipping would reorder the history, so the
    requirement runs on real time.
    """
    open_windows: set[str] = set()
    for e in events:
        kind, op = e.get("EventType", ""), str(e.get("Id"))
        if kind == "WaitStarted" or (
            kind == "StepFailed" and "NextAttemptDelaySeconds" in str(e.get("StepFailedDetails"))
        ):
            open_windows.add(op)
        elif kind in ("WaitSucceeded", "WaitCancelled", "StepStarted"):
            open_windows.discard(op)
        elif kind.startswith("Callback") and kind != "CallbackStarted" and open_windows:
            return True
    return False


@dataclass(frozen=True)
class Requirement:
    suite: str
    id: str
    path: Path

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        with open(self.path) as f:
            data: dict[str, Any] = yaml.safe_load(f)
        return data

    @property
    def description(self) -> str:
        return str(self.data.get("description", "")).strip()

    @property
    def function_name(self) -> str:
        """The Lambda function name the requirement's handler is served under."""
        return f"conf-{self.suite.replace('_', '-')}-{self.id}"

    @property
    def handler(self) -> Callable[..., Any] | None:
        module = suite_module(self.suite)
        handlers = getattr(module, "HANDLERS", {}) if module is not None else {}
        fn: Callable[..., Any] | None = handlers.get(self.id)
        return fn

    @property
    def hooks_factory(self) -> Callable[[], Any] | None:
        module = suite_module(self.suite)
        hooks = getattr(module, "HOOKS", {}) if module is not None else {}
        factory: Callable[[], Any] | None = hooks.get(self.id)
        return factory

    @property
    def real_time(self) -> bool:
        """True when time skipping would break the requirement (see above)."""
        return _events_between_need_real_time(self.data.get("ExpectedExecutionHistory") or [])

    @property
    def crashes(self) -> bool:
        """The requirement has the runtime crash (Runtime.ExitError)."""
        return "Runtime.ExitError" in str(self.data.get("ExpectedExecutionHistory"))

    def __str__(self) -> str:
        return self.id


def requirements(
    suites: Sequence[str] | None = None, ids: Sequence[str] | None = None
) -> Iterator[Requirement]:
    base = requirements_dir()
    for suite in suites or SUITES:
        if suite not in SCOPE:
            raise ValueError(f"unknown suite {suite!r}; one of {', '.join(SUITES)}")
        for rid in SCOPE[suite]:
            if ids and rid not in ids:
                continue
            yield Requirement(suite, rid, base / suite / f"{rid}.yaml")
