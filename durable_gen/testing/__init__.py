"""durable_gen.testing: prove your workflows are replay-safe.

- :class:`WorkflowRunner`: run a workflow on the in-memory engine with a virtual
  clock; complete callbacks, advance time, register invoke targets; inspect the
  result, the operations (as a tree) and the history. As a pytest fixture: take the
  ``durable_runner`` argument (the plugin is registered when durable_gen is
  installed).
- :func:`check_replay` / :func:`fuzz_replay`: crash the workflow after every
  checkpoint and during every step attempt, resume, and compare with the
  uninterrupted run; check the body is deterministic. Failures are
  :class:`ReplayCheckFailed` with the input, the crash point and the first
  operation that differed.
- :func:`check_replay_compatible`: replay a recorded execution (its operations,
  or a history file from ``durable-gen history ID --json`` or AWS) against the
  current code without running anything: compatible, or the first divergence.
- :func:`lint_workflow` / :func:`lint_file`: flag clocks, randomness, uuids,
  the environment and I/O used directly in a workflow body.
- :func:`programs` / :func:`build_workflow`: hypothesis strategies of random
  workflow programs over every operation kind, to fuzz engines and stores.

hypothesis is this package's dependency (``pip install durable-gen[test]``).
"""

from ._check import CheckResult, check_replay_compatible, read_history_file
from ._harness import (
    CallbackAnswer,
    CallbackPolicy,
    PendingCallback,
    SimulatedCrash,
    StepCall,
    fail,
    leave_pending,
    succeed,
    succeed_all,
)
from ._lint import Finding, lint_file, lint_source, lint_workflow
from ._programs import (
    COMPLETION_POLICIES,
    PROGRAM_FUNCTIONS,
    build_workflow,
    program_workflow,
    programs,
)
from ._replay import CrashPlan, ReplayCheckFailed, ReplayReport, check_replay, fuzz_replay
from ._runner import OperationNode, WorkflowRunner

__all__ = [
    "COMPLETION_POLICIES",
    "CallbackAnswer",
    "CallbackPolicy",
    "CheckResult",
    "CrashPlan",
    "Finding",
    "OperationNode",
    "PROGRAM_FUNCTIONS",
    "PendingCallback",
    "ReplayCheckFailed",
    "ReplayReport",
    "SimulatedCrash",
    "StepCall",
    "WorkflowRunner",
    "build_workflow",
    "program_workflow",
    "check_replay",
    "check_replay_compatible",
    "fail",
    "fuzz_replay",
    "leave_pending",
    "lint_file",
    "lint_source",
    "lint_workflow",
    "programs",
    "read_history_file",
    "succeed",
    "succeed_all",
]
