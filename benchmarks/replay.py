"""Replay cost: the resumed invocation of N recorded steps followed by a Wait.

    python -m benchmarks.replay [--repeat 7] [--sizes 100,1000,10000]

Prints a table of median wall time per invocation and per replayed operation,
beside the floor: a bare generator loop doing one JSON decode per yield.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from durable_gen import InMemoryEngine, Step, Wait
from durable_gen._engine.driver import run_invocation


def noop(i):
    return i


def workflow(n):
    total = 0
    for i in range(n):
        total += yield Step(noop, i, name="s")
    yield Wait(seconds=60)
    return total


def recorded_execution(n):
    """An execution suspended at its Wait after N recorded steps."""
    engine = InMemoryEngine()
    ex = engine.start(workflow, n)
    outcome = engine.invoke_once(workflow, ex)
    assert outcome.status == "PENDING"
    return engine, ex


def time_replay(n, repeat):
    engine, ex = recorded_execution(n)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outcome = run_invocation(workflow, ex, engine.store, engine.clock.now)
        times.append(time.perf_counter() - t0)
        assert outcome.status == "PENDING"
        assert outcome.steps_run == 0
    return statistics.median(times)


def time_floor(n, repeat):
    payloads = [json.dumps(i) for i in range(n)]

    def gen():
        total = 0
        for i in range(n):
            total += yield i
        return total

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        g = gen()
        v = g.send(None)
        try:
            while True:
                v = g.send(json.loads(payloads[v]))
        except StopIteration:
            pass
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"Replay of N recorded steps + a Wait (median of {args.repeat} runs)")
    print(f"{'N':>7} | {'durable_gen':>12} | {'us/op':>6} | {'floor':>10} | {'us/op':>6} | ratio")
    print("-" * 66)
    for n in sizes:
        ours = time_replay(n, args.repeat)
        floor = time_floor(n, args.repeat)
        print(
            f"{n:>7} | {ours * 1e3:>9.2f} ms | {ours / n * 1e6:>6.2f} | "
            f"{floor * 1e3:>7.2f} ms | {floor / n * 1e6:>6.2f} | {ours / floor:>4.1f}x floor"
        )


if __name__ == "__main__":
    main()
