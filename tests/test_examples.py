"""Every example in examples/ runs, in process and through the durable-gen command."""

import json
import os
import subprocess
import sys
from pathlib import Path

from durable_gen import InMemoryEngine
from examples.order_with_review import order_flow
from examples.retrying_payment import payment_flow

ROOT = Path(__file__).resolve().parent.parent


def test_order_with_review():
    result = InMemoryEngine().run(order_flow, {"sku": "B-42", "qty": 2})
    assert result.result == {"hold": "hold-B-42-2", "tracking": "shipped:hold-B-42-2"}
    assert result.invocations == 2
    names = [op.name for op in result.operations]
    assert names == ["reserve-stock", "check_stock", "reserve", "cooling-off", "ship"]


def test_retrying_payment():
    result = InMemoryEngine().run(payment_flow, {"amount": 42})
    assert result.result == {
        "receipt": {"charged": 42, "attempts": 3},
        "bonus": "no bonus: amount 42 refused",
    }
    assert result.invocations == 3


def test_order_example_through_the_command(tmp_path):
    env = {**os.environ, "DURABLE_GEN_DB": str(tmp_path / "examples.db")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable_gen",
            "run",
            "examples/order_with_review.py:order_flow",
            "--input",
            '{"sku": "B-42", "qty": 2}',
            "--virtual-time",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"hold": "hold-B-42-2", "tracking": "shipped:hold-B-42-2"}
