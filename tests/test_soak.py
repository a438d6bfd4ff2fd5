"""A small soak (``pytest -m slow``): 50 executions with waits and callbacks, 2 workers.

The full one is ``python -m benchmarks.soak --executions 1000 --workers 4``.
"""

from __future__ import annotations

import sys

import pytest

from benchmarks import soak

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="worker processes share the db"),
]


def test_every_execution_finishes_once_with_the_right_result(tmp_path):
    out = soak.run(50, 2, db=tmp_path / "soak.db", timeout=300, quiet=True)
    assert out["failure_examples"] == []
    assert out["failures"] == 0
    assert out["duplicates"] == 0
    assert out["steps_run"] == 150
    assert out["callbacks_completed"] == 50
