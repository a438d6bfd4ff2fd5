"""Schedule tick latency: how late a scheduled execution starts, durable_gen beside DBOS.

    python -m benchmarks.schedules [--seconds 12] [--rounds 3] [--no-dbos]
    python -m benchmarks.schedules child LIBRARY SECONDS   # one run, JSON out

Workload: a schedule firing every second (cron ``* * * * * *``, seconds first)
whose workflow's first step records how late it runs: the step's wall clock minus
the tick's scheduled time. Each library runs on a SQLite file in a fresh temporary
directory, in a fresh process (DBOS keeps one global instance per process), for
SECONDS; ticks of the first 2 s are left out (start-up). The table gives, per
library, the ticks seen and the median, 90th percentile and largest lateness,
and the ratio of the medians measured in the same round.

durable_gen: ``SqliteEngine(path)``, ``engine.add_schedule(Schedule(...))`` and
``engine.work(stop=..., poll_seconds=0.5)`` on a thread: the worker fires the
tick's execution in one transaction when it comes (an idle worker sleeps until
the next tick, not a whole poll) and runs it. The step reads the tick from the
execution's input (``scheduled_time``).

DBOS: ``DBOS.create_schedule(schedule_name=..., workflow_fn=..., schedule="* * *
* * *")`` after ``DBOS.launch()``; its scheduler thread sleeps to each tick plus a
random jitter of up to 10 % of the sleep ("to prevent a thundering herd", so up
to 100 ms here), then enqueues the workflow on its internal queue, which a queue
thread polls (every second by default). The step receives the tick as the
workflow's ``scheduled_at`` argument. Both record the lateness in a step, so it
is the time the workflow's code really ran.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks.peers import PeerUnavailable

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARM_UP_S = 2.0  # ticks of the first seconds are start-up, not steady state


def lateness_ms(scheduled_time: str) -> float:
    """How late now is after ``scheduled_time`` (ISO 8601), in ms."""
    tick = datetime.datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
    return (time.time() - tick.timestamp()) * 1000


def tick_flow(event: dict[str, Any]):  # type: ignore[no-untyped-def]
    """durable_gen's scheduled workflow: one step measuring its lateness."""
    from durable_gen import Step

    late = yield Step(lateness_ms, event["scheduled_time"], name="late")
    return {"tick": event["scheduled_time"], "late_ms": late}


def child_durable_gen(seconds: float) -> dict[str, Any]:
    from durable_gen._engine.schedules import Schedule
    from durable_gen._engine.sqlite import SqliteEngine

    with (
        tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d,
        SqliteEngine(os.path.join(d, "s.db")) as engine,
    ):
        engine.add_schedule(Schedule("bench", "benchmarks.schedules:tick_flow", cron="* * * * * *"))
        t0 = time.time()
        stop = threading.Event()
        worker = threading.Thread(
            target=engine.work, kwargs={"stop": stop, "poll_seconds": 0.5}, daemon=True
        )
        worker.start()
        time.sleep(seconds)
        stop.set()
        worker.join(timeout=30)
        late = []
        for info in engine.store.executions(limit=100_000):
            if info.status != "SUCCEEDED" or info.result is None:
                continue
            result = json.loads(info.result)
            tick = datetime.datetime.fromisoformat(result["tick"].replace("Z", "+00:00"))
            if tick.timestamp() >= t0 + WARM_UP_S:
                late.append(float(result["late_ms"]))
    return {"late_ms": late}


def child_dbos(seconds: float) -> dict[str, Any]:
    from dbos import DBOS

    late: list[float] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:

        @DBOS.step()
        def measure(scheduled_at: datetime.datetime) -> float:
            return (time.time() - scheduled_at.timestamp()) * 1000

        @DBOS.workflow()
        def tick(scheduled_at: datetime.datetime, context: Any) -> None:
            value = measure(scheduled_at)
            with lock:
                late.append((scheduled_at.timestamp(), value))  # type: ignore[arg-type]

        DBOS(
            config={
                "name": "bench-schedules",
                "system_database_url": f"sqlite:///{os.path.join(d, 'dbos_sys.sqlite')}",
            }
        )
        DBOS.launch()
        try:
            t0 = time.time()
            DBOS.create_schedule(schedule_name="bench", workflow_fn=tick, schedule="* * * * * *")
            time.sleep(seconds)
        finally:
            DBOS.destroy()
    kept = [v for at, v in late if at >= t0 + WARM_UP_S]  # type: ignore[misc]
    return {"late_ms": kept}


def run_child(library: str, seconds: float) -> dict[str, Any]:
    """One run in a fresh process; its JSON."""
    cmd = [sys.executable, "-m", "benchmarks.schedules", "child", library, str(seconds)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        cmd, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(samples: dict[str, list[float]]) -> str:
    names = {"durable_gen": "durable_gen", "dbos": "DBOS"}
    lines = [
        "| library | ticks | median ms late | p90 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for lib, late in samples.items():
        if not late:
            lines.append(f"| {names[lib]} | 0 | - | - | - |")
            continue
        lines.append(
            f"| {names[lib]} | {len(late)} | {statistics.median(late):.1f} | "
            f"{_quantile(late, 0.9):.1f} | {max(late):.1f} |"
        )
    dg, db = samples.get("durable_gen"), samples.get("dbos")
    if dg and db:
        lines.append("")
        ours, theirs = statistics.median(dg), statistics.median(db)
        lines.append(
            f"Median lateness: durable_gen {ours:.1f} ms, DBOS {theirs:.1f} ms "
            f"({theirs / max(ours, 0.1):.0f}x)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-dbos", action="store_true")
    args = parser.parse_args(argv)
    libraries = ["durable_gen"]
    if not args.no_dbos:
        try:
            import dbos  # noqa: F401
        except ImportError as e:
            print(f"DBOS left out: {PeerUnavailable(str(e))}")
        else:
            libraries.append("dbos")
    samples: dict[str, list[float]] = {lib: [] for lib in libraries}
    for _ in range(args.rounds):
        for lib in libraries:
            samples[lib] += run_child(lib, args.seconds)["late_ms"]
    print(table(samples))
    return samples


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        lib, secs = sys.argv[2], float(sys.argv[3])
        out = child_durable_gen(secs) if lib == "durable_gen" else child_dbos(secs)
        print(json.dumps(out))
    else:
        main()
