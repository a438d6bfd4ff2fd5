"""Checkpoint calls and invocation time on AWS's emulator: durable_gen vs the AWS SDK.

    pip install -e '.[bench]'
    python -m benchmarks.lambda_emulator [--sizes 100,1000] [--repeat 3]

Both handlers run the same workflow -- N steps (at-least-once, the default of
both) whose results are summed, then a 1-second wait, then the result -- on the
same emulator (``dex-local-runner --skip-time``), invoked through
``durable_gen.aws.local``. ``CheckpointDurableExecution`` calls are counted on each
handler's boto3 client; invocation wall time is measured around each handler call.
The second invocation (after the wait) replays all N steps.

Prints a table: per run the checkpoint calls, the invocations, the time of the
first invocation (it runs the N steps) and of the replaying one, and the
execution's total wall time (median of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from typing import Any

import boto3

from durable_gen import Step, Wait
from durable_gen.aws import durable_handler
from durable_gen.aws.local import Emulator, LocalLambda, start_execution


def noop(i):
    return i


def gen_workflow(event):
    total = 0
    for i in range(event["n"]):
        total += yield Step(noop, i, name=f"s{i}")
    yield Wait(seconds=1, name="pause")
    return total


def sdk_handler(client):
    from aws_durable_execution_sdk_python import DurableContext, durable_execution
    from aws_durable_execution_sdk_python.config import Duration

    @durable_execution(boto3_client=client)
    def handler(event, context: DurableContext):
        total = 0
        for i in range(event["n"]):
            total += context.step(lambda _, i=i: noop(i), name=f"s{i}")
        context.wait(Duration.from_seconds(1), name="pause")
        return total

    return handler


class Counted:
    """A boto3 lambda client whose CheckpointDurableExecution calls are counted."""

    def __init__(self, endpoint: str) -> None:
        self.client: Any = boto3.client(
            "lambda",
            endpoint_url=endpoint,
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.calls = 0
        self.client.meta.events.register(
            "before-call.lambda.CheckpointDurableExecution", self._count
        )

    def _count(self, **_: Any) -> None:
        self.calls += 1


class Timed:
    """Wraps a handler; records the wall time of each invocation."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.times: list[float] = []

    def __call__(self, event: Any, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.handler(event, context)
        finally:
            self.times.append(time.perf_counter() - t0)


def run_once(emu: Emulator, lam: LocalLambda, kind: str, n: int) -> dict[str, Any]:
    counted = Counted(emu.url)
    if kind == "durable_gen":
        handler: Any = durable_handler(gen_workflow, client=counted.client)
    else:
        handler = sdk_handler(counted.client)
    timed = Timed(handler)
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    lam.register(name, timed)
    t0 = time.perf_counter()
    arn = start_execution(emu.url, name, {"n": n})
    while True:
        ex = counted.client.get_durable_execution(DurableExecutionArn=arn)
        if ex["Status"] != "RUNNING":
            break
        time.sleep(0.005)
    total = time.perf_counter() - t0
    if ex["Status"] != "SUCCEEDED" or json.loads(ex["Result"]) != n * (n - 1) // 2:
        raise SystemExit(f"{kind} n={n}: unexpected outcome {ex['Status']} {ex.get('Error')}")
    return {
        "calls": counted.calls,
        "invocations": len(timed.times),
        "first": timed.times[0],
        "replay": timed.times[-1],
        "total": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["durable_gen", "aws-sdk"]
    print(
        f"{'handler':<12} {'steps':>6} {'checkpoint calls':>17} {'invocations':>12} "
        f"{'1st inv (ms)':>13} {'replay inv (ms)':>16} {'execution (ms)':>15}"
    )
    with LocalLambda() as lam, Emulator(lam.url, skip_time=True) as emu:
        run_once(emu, lam, "durable_gen", 10)  # warm up both paths
        run_once(emu, lam, "aws-sdk", 10)
        for n in sizes:
            for kind in kinds:
                runs = [run_once(emu, lam, kind, n) for _ in range(args.repeat)]

                def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
                    return statistics.median(r[key] for r in runs)

                print(
                    f"{kind:<12} {n:>6} {med('calls'):>17.0f} {med('invocations'):>12.0f} "
                    f"{med('first') * 1000:>13.1f} {med('replay') * 1000:>16.1f} "
                    f"{med('total') * 1000:>15.1f}"
                )


if __name__ == "__main__":
    main()
