"""Deterministic trace and span ids for one durable execution.

Every invocation of an execution, in whatever process, derives the same ids from
the execution's ARN (and the operation id), so its spans join one trace:

- trace id: 8 hex digits of the execution's start (epoch seconds, X-Ray's shape)
  followed by 24 hex digits of a BLAKE2b hash of the ARN;
- span ids: 16 hex digits of a BLAKE2b hash of a namespaced key --
  ``workflow:<arn>`` (the Workflow span), ``execution-root:<arn>`` (the synthetic
  ancestor), ``<arn>:<operation id>`` (an operation's logical span).

Pure functions: no OpenTelemetry import.
"""

from __future__ import annotations

import hashlib

__all__ = ["execution_root_span_id", "operation_span_id", "trace_id_for", "workflow_span_id"]


def _hash(key: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=size).digest(), "big")
    return value or 1  # an all-zero id is invalid in OpenTelemetry


def trace_id_for(execution_arn: str, started_ms: int) -> int:
    """The execution's 128-bit trace id."""
    if not execution_arn:
        raise ValueError("a trace id needs the execution's ARN, got an empty string")
    seconds = (max(started_ms, 0) // 1000) & 0xFFFFFFFF
    return (seconds << 96) | (_hash(f"trace:{execution_arn}", 12) & ((1 << 96) - 1)) or 1


def workflow_span_id(execution_arn: str) -> int:
    """The execution-wide Workflow span's 64-bit id."""
    return _hash(f"workflow:{execution_arn}", 8)


def execution_root_span_id(execution_arn: str) -> int:
    """The synthetic ancestor of the Workflow and Invocation spans."""
    return _hash(f"execution-root:{execution_arn}", 8)


def operation_span_id(execution_arn: str, operation_id: str) -> int:
    """An operation's logical span id (the same in every invocation)."""
    return _hash(f"{execution_arn}:{operation_id}", 8)
