"""AWS's conformance requirements on both targets (``pytest -m conformance``).

One test per requirement per target; not in the default run. A requirement
without a handler, or that fails, fails here (none is skipped). The embedded
engine runs them twice: on SQLite (``embedded``) and on PostgreSQL
(``embedded-postgres``: the session's test server, see tests/conftest.py; skipped
without one, failed without one in CI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._harness import EMBEDDED_STORES, TARGETS, Runner
from ._requirements import Requirement, requirements
from .known import KNOWN_FAILURES

pytestmark = pytest.mark.conformance

REQUIREMENTS = list(requirements())


@pytest.fixture(scope="module")
def runners() -> Iterator[dict[str, Runner]]:
    opened: dict[str, Runner] = {}
    try:
        yield opened
    finally:
        for runner in opened.values():
            runner.__exit__(None, None, None)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("req", REQUIREMENTS, ids=[f"{r.suite}-{r.id}" for r in REQUIREMENTS])
def test_requirement(
    req: Requirement, target: str, runners: dict[str, Runner], request: pytest.FixtureRequest
) -> None:
    if EMBEDDED_STORES.get(target) == "postgres":
        request.getfixturevalue("postgres_server")  # skip (or, in CI, fail) without one
    runner = runners.get(target)
    if runner is None:
        runner = runners[target] = Runner(target).__enter__()
    outcome = runner.run(req)
    known = KNOWN_FAILURES.get((target, req.id))
    detail = "\n".join(outcome.errors) + (f"\nknown: {known}" if known else "")
    assert outcome.passed, f"{req.id} on {target}: {outcome.reason}\n{detail}"
