"""``durable-gen queue add|list|delete``: the store's queues (``_engine.queues``).

``queue add NAME [--concurrency N] [--worker-concurrency N] [--rate-limit N --per S]
[--partitioned]`` records a queue or its new limits; ``queue list [--json]`` shows
each queue's depth (executions not yet admitted), running (advancing now: holding a
lease), sleeping (admitted, waiting on a timer or a callback), starts in its last
rate period, and limits; ``queue delete NAME`` deletes one none of whose executions
is queued or running. ``--json``: one object per queue per line::

    {"name": str, "concurrency": int | null, "worker_concurrency": int | null,
     "rate_limit": [int, float] | null, "partitioned": bool, "depth": int,
     "running": int, "sleeping": int, "started": int}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._engine.durable import DurableEngine
from .._engine.queues import Queue

__all__ = ["add_arguments", "command"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of 1 or more, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value >= 0.001 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds of at least 0.001, got {text!r}")
    return value


def add_arguments(queue: argparse.ArgumentParser, db: argparse.ArgumentParser) -> None:
    """The ``add``, ``list`` and ``delete`` subcommands of ``queue``."""
    sub = queue.add_subparsers(dest="queue_command", required=True)
    add = sub.add_parser("add", parents=[db], help="declare a queue, or change its limits")
    add.add_argument("name")
    add.add_argument(
        "--concurrency",
        type=_count,
        metavar="N",
        help="at most N of its executions advancing at once, across all workers",
    )
    add.add_argument(
        "--worker-concurrency",
        type=_count,
        metavar="N",
        help="at most N of them advancing in one worker process",
    )
    add.add_argument(
        "--rate-limit",
        type=_count,
        metavar="N",
        help="at most N starts (first admissions) per --per seconds, spaced evenly",
    )
    add.add_argument(
        "--per",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="the rate limit's period (default: 1 second)",
    )
    add.add_argument(
        "--partitioned",
        action="store_true",
        help="split it by each start's --partition key, each partition with these limits",
    )
    lst = sub.add_parser("list", parents=[db], help="each queue's depth, running, rate, limits")
    lst.add_argument("--json", action="store_true", help="one JSON object per queue per line")
    delete = sub.add_parser(
        "delete", parents=[db], help="delete a queue none of whose executions is live"
    )
    delete.add_argument("name")


def command(engine: DurableEngine, args: argparse.Namespace) -> int:
    """Run ``queue add|list|delete``; bad input raises ``ValidationError``."""
    if args.queue_command == "add":
        rate = None if args.rate_limit is None else (args.rate_limit, args.per)
        queue = Queue(
            args.name,
            concurrency=args.concurrency,
            worker_concurrency=args.worker_concurrency,
            rate_limit=rate,
            partitioned=args.partitioned,
        )
        new = engine.add_queue(queue)
        print(
            f"{'added' if new else 'updated'} queue {queue.name}: {queue.describe()}",
            file=sys.stderr,
        )
        return 0
    if args.queue_command == "delete":
        engine.delete_queue(args.name)
        print(f"deleted queue {args.name}", file=sys.stderr)
        return 0
    rows = engine.queues()
    if getattr(args, "json", False):
        for q, s in rows:
            record: dict[str, Any] = {
                "name": q.name,
                "concurrency": q.concurrency,
                "worker_concurrency": q.worker_concurrency,
                "rate_limit": None if q.rate_limit is None else list(q.rate_limit),
                "partitioned": q.partitioned,
                "depth": s.depth,
                "running": s.running,
                "sleeping": s.sleeping,
                "started": s.started,
            }
            print(json.dumps(record))
        return 0
    if not rows:
        print("no queues (durable-gen queue add NAME declares one)", file=sys.stderr)
        return 0
    table = [("QUEUE", "DEPTH", "RUNNING", "SLEEPING", "RATE", "LIMITS")]
    for q, s in rows:
        if q.rate_limit is not None:
            starts = f"{s.started}/{q.rate_limit[0]} per {q.rate_limit[1]:g}s"
        else:
            starts = f"{s.started} in 60s"
        table.append((q.name, str(s.depth), str(s.running), str(s.sleeping), starts, q.describe()))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0
