"""Memory of one 10,000-operation replay, measured in a fresh process per library.

    python -m benchmarks.peers.memory {durable_gen|aws_sdk} N

Prints one JSON object per library (``measure_in_subprocess`` is what
``benchmarks.run`` calls). Both libraries get the same setup:

1. a first process writes the recorded log -- N SUCCEEDED steps + a STARTED
   60-second Wait, in the library's Lambda-shaped JSON (durable_gen: the log of an
   in-memory forward run of :func:`benchmarks.replay.workflow`; AWS SDK:
   :func:`benchmarks.peers.aws_sdk.recorded_operations`);
2. a fresh process imports the library, parses that file into the library's
   operation objects (what its store or event parser would hand its replay),
   replays a 10-step execution to warm up lazy imports, and then measures:

* ``rss_peak_mib`` / ``rss_growth_mib``: the kernel's RSS high-water mark (VmHWM),
  reset through ``/proc/self/clear_refs`` right before the replay, read after it;
  growth is that peak minus the RSS just before the replay (the interpreter, the
  library and the parsed log are in the baseline);
* ``log_mib``: Python allocations held by the parsed log (tracemalloc);
* ``tracemalloc_peak_mib``: the peak of Python allocations during a second replay
  with tracemalloc on (started after setup, so the log is not counted).

The forward run happens in its own process so that its garbage does not inflate
durable_gen's RSS.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from typing import Any

_MIB = 1024 * 1024


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class _LogOnlyStore:
    """The driver's store port over a recorded log; checkpoints are dropped."""

    def __init__(self, operations: dict[str, Any]) -> None:
        self.operations = operations

    def load(self, execution_id: str) -> dict[str, Any]:
        return self.operations

    def checkpoint(self, execution_id: str, updates: list[Any], now: int, *, durable: bool) -> Any:
        return {}


# -- writing the recorded log (first process) -------------------------------------


def write_log(kind: str, n: int, path: str) -> None:
    if kind == "durable_gen":
        from benchmarks.replay import recorded_execution

        engine, ex = recorded_execution(n)
        doc = {
            "execution_id": ex,
            "now": engine.clock.now(),
            "operations": [op.to_dict() for op in engine.store.load(ex).values()],
        }
    else:
        from benchmarks.peers import aws_sdk

        doc = {"operations": [op.to_json_dict() for op in aws_sdk.recorded_operations(n)]}
    with open(path, "w") as f:
        json.dump(doc, f)


# -- loading it and replaying (second process) ------------------------------------


def _durable_gen_replay(doc: dict[str, Any]) -> Any:
    from benchmarks.replay import workflow
    from durable_gen._core.log import Operation
    from durable_gen._engine.driver import run_invocation

    store = _LogOnlyStore({d["Id"]: Operation.from_dict(d) for d in doc["operations"]})
    ex, now = doc["execution_id"], doc["now"]

    def run() -> None:
        outcome = run_invocation(workflow, ex, store, lambda: now)
        assert outcome.status == "PENDING"
        assert outcome.steps_run == 0

    return run


def _aws_sdk_replay(doc: dict[str, Any]) -> Any:
    from aws_durable_execution_sdk_python.lambda_service import Operation

    from benchmarks.peers import aws_sdk

    return aws_sdk.replay_invocation(0, [Operation.from_json_dict(d) for d in doc["operations"]])


def measure(kind: str, n: int, path: str, warm_path: str) -> dict[str, Any]:
    make = {"durable_gen": _durable_gen_replay, "aws_sdk": _aws_sdk_replay}[kind]
    with open(warm_path) as f:
        make(json.load(f))()  # warm up: lazy imports, first-call caches
    gc.collect()
    tracemalloc.start()
    with open(path) as f:
        run = make(json.load(f))
    gc.collect()
    log_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    gc.collect()
    baseline = _status("VmRSS")
    exact = _reset_peak()
    run()
    peak = _status("VmHWM")
    gc.collect()
    tracemalloc.start()
    run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "kind": kind,
        "n": n,
        "rss_peak_mib": peak / _MIB if peak else None,
        "rss_growth_mib": (peak - baseline) / _MIB if peak and baseline and exact else None,
        "log_mib": log_bytes / _MIB,
        "tracemalloc_peak_mib": traced_peak / _MIB,
    }


def measure_in_subprocess(kind: str, n: int) -> dict[str, Any]:
    """Write the log in one fresh process and measure the replay in another."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    me = [sys.executable, "-m", "benchmarks.peers.memory"]
    with tempfile.TemporaryDirectory() as d:
        log, warm = os.path.join(d, "log.json"), os.path.join(d, "warm.json")
        for size, path in ((n, log), (10, warm)):
            subprocess.run([*me, "write-log", kind, str(size), path], check=True, env=env)
        out = subprocess.run(
            [*me, "measure", kind, str(n), log, warm],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "write-log":
        write_log(args[1], int(args[2]), args[3])
    elif args and args[0] == "measure":
        print(json.dumps(measure(args[1], int(args[2]), args[3], args[4])))
    else:
        for kind in args[:1] or ["durable_gen", "aws_sdk"]:
            print(
                json.dumps(measure_in_subprocess(kind, int(args[1]) if len(args) > 1 else 10_000))
            )


if __name__ == "__main__":
    main()
