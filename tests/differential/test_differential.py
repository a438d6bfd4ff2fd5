"""Differential test: random programs, AWS's SDK vs durable_gen, histories equal.

Not in the default run: ``pytest -m differential tests/differential``;
``DIFFERENTIAL_EXAMPLES`` sets the number of programs (default 200, what CI runs).
A differing program is shrunk by hypothesis and reported with both histories side
by side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings

from ._check import check
from ._harness import Session
from ._programs import differential_programs

pytestmark = pytest.mark.differential

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    logging.getLogger("aws_durable_execution_sdk_python").setLevel(logging.CRITICAL)
    with Session() as s:
        yield s


@seed(0)  # deterministic: the same programs every run
@settings(
    max_examples=EXAMPLES,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(program=differential_programs())
def test_histories_equal_aws_sdk(session: Session, program: Any) -> None:
    check(session, program)


def test_a_known_program_runs_on_every_target(session: Session) -> None:
    """Every target runs, and the comparison sees what it must (not a vacuous pass)."""
    program = [
        ["try", ["child", [["step", 1], ["fail"]], False]],
        ["map", 2, [["wait", 5]], "all_completed", None],
    ]
    run = check(session, program)
    for target in ("aws", "shim", "embedded"):
        history = run.histories[target]
        assert history["status"] == "SUCCEEDED"
        kinds = [e["EventType"] for events in history["operations"].values() for e in events]
        assert kinds.count("StepFailed") == 2  # one retried attempt, one for good
        assert "ContextFailed" in kinds
        assert kinds.count("WaitSucceeded") == 2
    # the child op catches its ChildContextError: AWS recorded the StepError that
    # escaped the child context, with the step's message
    caught = run.histories["aws"]["result"][0]
    assert (
        caught
        == "failed:aws_durable_execution_sdk_python.exceptions.StepError:r.0.1 failed for good"
    )
