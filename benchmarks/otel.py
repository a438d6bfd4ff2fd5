"""Cost of durable_gen.otel: replay and forward runs without tracing and with it.

    python -m benchmarks.otel [--repeat 7] [--steps 10000]

``off``: no hooks (opentelemetry is not even imported). ``on``: DurableTracing on an
SDK TracerProvider with no exporter (spans are built, then dropped), execution view.
Replay: the resumed invocation of N recorded steps then a Wait. Forward: N new steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from durable_gen import InMemoryEngine, Step, Wait
from durable_gen._engine.driver import run_invocation


def noop(i: int) -> int:
    return i


def workflow(n: int) -> Any:
    total = 0
    for i in range(n):
        total += yield Step(noop, i, name="s")
    yield Wait(seconds=60)
    return total


def _hooks(mode: str) -> list[Any]:
    if mode == "off":
        return []
    from opentelemetry.sdk.trace import TracerProvider

    from durable_gen.otel import DurableTracing

    return [DurableTracing(TracerProvider(), view="execution", flush=False)]


def forward(n: int, mode: str) -> float:
    engine = InMemoryEngine(hooks=_hooks(mode))
    ex = engine.start(workflow, n)
    t = time.perf_counter()
    engine.invoke_once(workflow, ex)
    return time.perf_counter() - t


def replay(n: int, mode: str) -> float:
    engine = InMemoryEngine()
    ex = engine.start(workflow, n)
    engine.invoke_once(workflow, ex)
    hooks = _hooks(mode)
    t = time.perf_counter()
    run_invocation(workflow, ex, engine.store, engine.clock.now, hooks=hooks)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--modes", default="off,on")
    args = p.parse_args(argv)
    for mode in args.modes.split(","):
        for name, fn in (("replay", replay), ("forward", forward)):
            runs = [fn(args.steps, mode) for _ in range(args.repeat)]
            med = statistics.median(runs)
            print(
                f"{name:8} {mode:4} n={args.steps}: {med * 1000:8.1f} ms  "
                f"({med / args.steps * 1e6:.2f} µs/op)"
            )
    loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    print("opentelemetry modules loaded:", len(loaded))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
