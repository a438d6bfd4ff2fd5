"""pytest fixtures for durable_gen workflows.

The plugin is registered with pytest when durable_gen is installed (entry point
``pytest11``), so the fixture needs no set-up::

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
