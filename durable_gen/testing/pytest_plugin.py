"""pytest fixtures for durable_gen workflows.

Enable them in a ``conftest.py``::

    pytest_plugins = ["durable_gen.testing.pytest_plugin"]

then::

    def test_expense(durable_runner):
        durable_runner.run(expense_flow, {"amount": 120})
        result = durable_runner.succeed_callback("manager-approval", '{"approved": true}')
        assert result.status == "SUCCEEDED"
"""

from __future__ import annotations

import pytest

from ._runner import WorkflowRunner

__all__ = ["durable_runner"]


@pytest.fixture
def durable_runner() -> WorkflowRunner:
    """A fresh :class:`~durable_gen.testing.WorkflowRunner` (virtual clock, in memory)."""
    return WorkflowRunner()
