"""The hypothesis test body shared by the pytest entry and ``python -m tests.differential``."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ._harness import Run, Session
from ._normalize import side_by_side
from ._programs import as_json


class DifferentHistories(AssertionError):
    """A program whose durable_gen history differs from AWS's SDK's."""


def check(session: Session, program: Any, tally: Counter[str] | None = None) -> Run:
    """Run ``program`` on every target; raise :class:`DifferentHistories` if any differ."""
    run = session.run(as_json(program))
    if tally is not None:
        tally["run"] += 1
        for target in session.compared:
            tally[f"equal:{target}"] += run.equal(target)
    bad = [t for t in session.compared if not run.equal(t)]
    if bad:
        report = [f"program: {json.dumps(run.program)}"]
        for target in bad:
            report.append(f"\n== AWS's SDK on the emulator vs durable_gen ({target})")
            report.append(
                side_by_side(run.histories["aws"], run.histories[target], ("aws", target))
            )
        raise DifferentHistories("\n".join(report))
    return run
