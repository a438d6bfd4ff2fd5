"""Peer harnesses for ``benchmarks.run``: the same workloads on other durable-execution libraries.

Each module imports its peer lazily and raises :class:`PeerUnavailable` (with the
reason) when the peer cannot be imported or run here, so the runner can print why
and go on. Every harness documents, next to its code, how its workload was made
equivalent to durable_gen's (same N, same step body, same durability and
time-skipping) and what exactly is timed.
"""

from __future__ import annotations


class PeerUnavailable(Exception):
    """A peer library is not installed or cannot run here; the message says why."""


def noop(i):
    """The step body of every scenario, for every library: return the argument."""
    return i
