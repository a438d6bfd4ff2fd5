"""An order workflow deployed as an AWS Lambda durable function.

The workflow is plain durable_gen; ``handler`` is what Lambda calls. Deploy it
with the SAM template beside this file (see README.md), or run it locally on AWS's
emulator::

    pip install -e '.[test]'
    python -m examples.lambda_order.app --local
"""

from __future__ import annotations

import sys
from typing import Any

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    Jitter,
    RetryPolicy,
    Step,
    Wait,
    Workflow,
)
from durable_gen.aws import durable_handler


def check_stock(sku: str) -> int:
    return 10


def reserve(sku: str, qty: int) -> str:
    return f"hold-{sku}-{qty}"


def charge(amount: int) -> dict[str, Any]:
    return {"charged": amount}


def ship(hold: str) -> str:
    return f"shipped:{hold}"


def reservation(sku: str, qty: int) -> Workflow[str]:
    available = yield from Step(check_stock, sku, name="check-stock")
    if available < qty:
        raise ValueError(f"only {available} of {sku} left")
    return (yield from Step(reserve, sku, qty, name="reserve"))


def order_flow(event: dict[str, Any]) -> Workflow[dict[str, object]]:
    hold: str = yield ChildContext(reservation, event["sku"], event["qty"], name="reservation")
    yield Wait(seconds=5, name="cooling-off")
    payment = yield from Step(
        charge,
        event["qty"] * 25,
        name="charge",
        semantics=AT_MOST_ONCE_PER_RETRY,  # never charge twice, even if Lambda dies mid-call
        retry=RetryPolicy(max_attempts=3, initial_delay=2, jitter=Jitter.NONE),
    )
    tracking = yield from Step(ship, hold, name="ship")
    return {"hold": hold, "payment": payment, "tracking": tracking}


# The Lambda entry point (template.yaml: Handler: app.handler). The boto3 client
# is created on the first invocation and kept while the environment is warm.
handler = durable_handler(order_flow)


def _run_locally() -> None:  # pragma: no cover - a developer convenience
    import json
    import time
    import urllib.request
    import uuid

    import boto3  # type: ignore[import-untyped]

    from durable_gen.aws.local import Emulator, LocalLambda

    with LocalLambda() as lam, Emulator(lam.url) as emu:
        client = boto3.client(
            "lambda",
            endpoint_url=emu.url,
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        lam.register("order", durable_handler(order_flow, client=client))
        body = {
            "AccountId": "123456789012",
            "FunctionName": "order",
            "FunctionQualifier": "$LATEST",
            "ExecutionName": uuid.uuid4().hex,
            "ExecutionTimeoutSeconds": 60,
            "ExecutionRetentionPeriodDays": 1,
            "Input": json.dumps({"sku": "B-42", "qty": 2}),
        }
        req = urllib.request.Request(
            f"{emu.url}/start-durable-execution", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req) as resp:
            arn = json.loads(resp.read())["ExecutionArn"]
        while (ex := client.get_durable_execution(DurableExecutionArn=arn))["Status"] == "RUNNING":
            time.sleep(0.05)
        print(ex["Status"], ex.get("Result") or ex.get("Error"))


if __name__ == "__main__" and "--local" in sys.argv:
    _run_locally()
