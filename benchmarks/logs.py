"""What keeping log records costs a durable step, on this disk.

    python -m benchmarks.logs [--steps 5000] [--rounds 3] [--synchronous FULL]

One execution of ``--steps`` sequential steps on a SqliteEngine (a file in a temporary
directory, the real clock), each step logging one INFO line through
``durable_gen.get_logger``, run four ways: the logger's lines kept by the store
(the default, ``keep_logs=1000``: the bound is hit after 1,000 steps, so the oldest
are deleted as new ones come), kept without reaching the bound, not kept
(``keep_logs=0``), and steps that log nothing. No handler shows the lines, so what
is measured is the store's part. Prints steps per second (best of ``--rounds``) and
the cost per step against not keeping them.

Records wait in memory and are written in the transaction of the step's own
checkpoint, so a step stays one commit; what they add is the INSERT of the line,
the read of the execution's last record number, and (past the bound) the DELETE
of the oldest.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from durable_gen import Step, get_logger
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.sqlite import SqliteStore

log = get_logger("benchmarks.logs")


def _logs_a_line(i: int) -> int:
    log.info("step %s charged the card of order %s", i, i * 7)
    return i


def _silent(i: int) -> int:
    return i


def _flow(fn: Callable[[int], int]) -> Callable[[Any], Any]:
    def flow(event: Any) -> Any:
        total = 0
        for i in range(event["steps"]):
            total += yield Step(fn, i, name="s")
        return total

    return flow


def _once(directory: str, steps: int, keep: int, fn: Callable[[int], int], sync: str) -> float:
    path = os.path.join(directory, f"b{time.monotonic_ns()}.db")
    store = SqliteStore(path, keep_logs=keep, synchronous=sync)
    with SqliteEngine(store=store) as engine:
        t0 = time.perf_counter()
        result = engine.run(_flow(fn), {"steps": steps}, execution_id="x")
        took = time.perf_counter() - t0
        assert result.status == "SUCCEEDED", result
        kept = len(store.log_records("x").records)
        assert kept == (min(steps, keep) if fn is _logs_a_line else 0), kept
    return took


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args(argv)
    cases = {
        "kept, bound hit (keep_logs=1000)": (1000, _logs_a_line),
        f"kept, under the bound (keep_logs={args.steps})": (args.steps, _logs_a_line),
        "logged, not kept (keep_logs=0)": (0, _logs_a_line),
        "no logging": (0, _silent),
    }
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(args.rounds):  # interleaved: drift hits every case alike
            for name, (keep, fn) in cases.items():
                took = _once(directory, args.steps, keep, fn, args.synchronous)
                best[name] = min(best.get(name, took), took)
    base = best["logged, not kept (keep_logs=0)"]
    print(
        f"{args.steps} steps, one line each, synchronous={args.synchronous}, "
        f"best of {args.rounds}\n"
    )
    print(f"| {'case':<42} | steps/s | µs/step | vs not kept |")
    print(f"|{'-' * 44}|---------|---------|-------------|")
    for name, took in best.items():
        per = took / args.steps * 1e6
        extra = (took - base) / args.steps * 1e6
        print(f"| {name:<42} | {args.steps / took:7.0f} | {per:7.1f} | {extra:+8.1f} µs |")
    return best


if __name__ == "__main__":
    main()
