"""The programs the differential suite generates: durable_gen.testing's strategy,
restricted to what both SDKs can run and decide the same way.

Left out: durable_gen's combinators (All/Any/Race/AllSettled have no counterpart
in AWS's SDK). Batches are "deterministic" (see ``programs``): AWS's SDK runs
branches on threads, so a completion policy that stops early is only generated
with ``max_concurrency=1``. Callbacks are the self-ending kinds (one times out,
one is answered by its own submitter through the service under test). Chained
invokes call ``PROGRAM_FUNCTIONS["echo"]``, registered on every target.
"""

from __future__ import annotations

from typing import Any

from durable_gen.testing import programs

#: Callback timeouts run on real time in both services (neither skips them): a
#: program may wait for at most this many seconds of them, counted as if every
#: branch ran one after another.
MAX_TIMEOUT_SECONDS = 3


def timeout_seconds(program: Any) -> int:
    """Seconds of callback timeouts ``program`` waits for, at most (branches in turn)."""
    total = 0
    for op in program:
        kind = op[0]
        if kind == "cbtimeout":
            total += op[1]
        elif kind in ("child", "vchild"):
            total += timeout_seconds(op[1])
        elif kind == "try":
            total += timeout_seconds([op[1]])
        elif kind == "parallel":
            total += sum(timeout_seconds(b) for b in op[1])
        elif kind == "map":
            total += op[1] * timeout_seconds(op[2])
    return total


def differential_programs() -> Any:
    """Programs of steps (retried, failing, with a sub_type), waits,
    wait-for-condition, callbacks (timed out, answered), chained invokes, child
    contexts (virtual, with a sub_type), Parallel (named branches) and Map with
    threshold and custom completion policies, and try/except around any of them,
    nested."""
    return programs(
        callbacks=False,
        invokes=True,
        self_callbacks=True,
        combinators=False,
        failures=True,
        deterministic_batches=True,
        invocation_retries=True,
        max_leaves=12,
        max_ops=4,
    ).filter(lambda p: timeout_seconds(p) <= MAX_TIMEOUT_SECONDS)


def as_json(program: Any) -> Any:
    """``program`` with tuples as lists: what the workflow receives as its input."""
    if isinstance(program, list | tuple):
        return [as_json(p) for p in program]
    return program
