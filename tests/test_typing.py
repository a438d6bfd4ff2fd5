"""Typed workflows: ``x = yield from Step(fn)`` gives ``x`` the type ``fn`` returns.

A ``yield`` expression has the generator's send type whatever was yielded, so
``x = yield Step(fn)`` cannot be typed by any checker; ``yield from`` a Step is the
same operation at run time (the Step yields itself and returns what the
interpreter sends back) and is typed. Checked with mypy --strict on a snippet."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api as mypy_api  # a test dependency (pip install -e '.[test]')

from durable_gen import InMemoryEngine, RetryPolicy, Step, StepError, Workflow

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = """
from durable_gen import Step, Workflow


def charge(amount: int) -> dict[str, int]:
    return {"charged": amount}


def flow(event: dict[str, int]) -> Workflow[int]:
    receipt = yield from Step(charge, event["amount"], name="charge")
    reveal_type(receipt)
    untyped = yield Step(charge, 1)
    reveal_type(untyped)
    return receipt["charged"]


def wrong(event: dict[str, int]) -> Workflow[str]:
    receipt = yield from Step(charge, 1)
    return receipt
"""


def test_yield_from_a_step_is_typed_as_its_functions_result(tmp_path, monkeypatch):
    snippet = tmp_path / "typed_flow.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    monkeypatch.chdir(ROOT)  # durable_gen from this checkout, with its py.typed
    out, err, status = mypy_api.run(
        [
            str(snippet),
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]
    dict_of_int = {  # mypy's spelling changed across versions
        'note: Revealed type is "dict[str, int]"',
        'note: Revealed type is "builtins.dict[builtins.str, builtins.int]"',
    }
    assert dict_of_int & set(lines), out
    assert 'note: Revealed type is "Any"' in lines, out  # plain yield: the send type
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [
        'error: Incompatible return value type (got "dict[str, int]", expected "str")  '
        "[return-value]"
    ], out
    assert status == 1, (out, err)


def test_yield_from_runs_the_same_operation_and_carries_failures(tmp_path):
    calls = []

    def charge(amount: int) -> dict[str, int]:
        calls.append(amount)
        if amount < 0:
            raise ValueError("negative")
        return {"charged": amount}

    def flow(event: dict[str, int]) -> Workflow[object]:
        ok = yield from Step(charge, event["amount"], name="charge")
        try:
            yield from Step(charge, -1, name="refund", retry=RetryPolicy.none())
        except StepError as e:
            return [ok, e.error_type, e.error_message]
        return ok

    engine = InMemoryEngine()
    run = engine.run(flow, {"amount": 5})
    assert run.result == [{"charged": 5}, "ValueError", "negative"]
    assert [(op.name, op.status.value) for op in run.operations] == [
        ("charge", "SUCCEEDED"),
        ("refund", "FAILED"),
    ]
    # replayed from the log: nothing runs again
    again = engine.resume(flow, run.execution_id)
    assert again.result == run.result
    assert calls == [5, -1]
