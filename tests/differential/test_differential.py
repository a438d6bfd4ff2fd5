"""Differential test: random programs, AWS's SDK vs durable_gen, histories equal.

Not in the default run: ``pytest -m differential tests/differential``;
``DIFFERENTIAL_EXAMPLES`` sets the number of programs (default 200, what CI runs);
``DIFFERENTIAL_STORES`` the embedded engine's stores (default ``sqlite``; CI runs
``sqlite,postgres``: both compared with AWS's SDK on every program, PostgreSQL on
the session's test server, see tests/conftest.py).
A differing program is shrunk by hypothesis and reported with both histories side
by side.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings

from durable_gen.aws.local import start_execution

from ._aws import make_aws_handler
from ._check import check
from ._harness import ROOT, Session, _history, _until_done, stores_from_env
from ._programs import differential_programs

pytestmark = pytest.mark.differential

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    logging.getLogger("aws_durable_execution_sdk_python").setLevel(logging.CRITICAL)
    stores = stores_from_env()
    if "postgres" in stores:
        request.getfixturevalue("postgres_server")  # skip (or, in CI, fail) without one
    with Session(stores) as s:
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
    assert set(run.histories) == set(session.targets)
    for target in session.targets:
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


def _tree_of_history(events: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """(depth, SubType, Name) of every operation in an AWS history, in start order."""
    ops: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("SubType") and e["Id"] not in ops:
            ops[e["Id"]] = e

    def depth(op: dict[str, Any]) -> int:
        parent = op.get("ParentId")
        return 0 if parent not in ops else 1 + depth(ops[parent])

    return [(depth(op), op["SubType"], op["Name"]) for op in ops.values()]


def _tree_of_show(text: str) -> list[tuple[int, str, str]]:
    """(depth, SubType, Name) of every line of ``durable-gen show``'s operation tree."""
    tree = []
    lines = text.split("operations (", 1)[1].splitlines()[1:]
    for line in lines:
        m = re.match(r"^((?:[│ ]   )*)[├└]── (\S+) '([^']*)'", line)
        if m:
            tree.append((len(m[1]) // 4, m[2], m[3]))
    return tree


def test_show_draws_the_names_and_nesting_awss_sdk_records(
    session: Session, tmp_path: Path
) -> None:
    """Issue 28's acceptance: a workflow with a virtual child context and named
    parallel branches (examples/quorum_lookup.py), run by AWS's SDK on its emulator
    and by ``durable-gen run`` on the embedded engine, shows in ``durable-gen show``
    the operation names and nesting that AWS's SDK records."""
    from examples.quorum_lookup import quorum_lookup

    emulator = session.emulator
    emulator.lam.register("quorum-aws", make_aws_handler(quorum_lookup, emulator.client))
    arn = start_execution(emulator.url, "quorum-aws", {"customer": "c-7"})
    ex = _until_done(emulator.client, arn)
    assert ex["Status"] == "SUCCEEDED"
    aws_tree = _tree_of_history(_history(emulator.client, arn))

    db = str(tmp_path / "q.db")
    cli = [sys.executable, "-m", "durable_gen"]
    target = "examples/quorum_lookup.py:quorum_lookup"
    run = subprocess.run(
        [*cli, "run", target, "--input", '{"customer": "c-7"}', "--db", db],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(run.stdout)["reason"] == "CUSTOM_COMPLETION_SUCCEEDED"
    listed = subprocess.run(
        [*cli, "list", "--db", db],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (row,) = listed.stdout.splitlines()[1:]
    show = subprocess.run(
        [*cli, "show", row.split()[0], "--db", db],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert (
        _tree_of_show(show.stdout)
        == aws_tree
        == [
            (0, "Parallel", "regions"),  # the virtual "lookup" context is not drawn
            (1, "ParallelBranch", "eu-west-1"),
            (2, "Lookup", "fetch-eu-west-1"),
            (1, "ParallelBranch", "us-east-1"),
            (2, "Lookup", "fetch-us-east-1"),
        ]
    )
