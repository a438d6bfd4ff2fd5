"""Typed workflows: ``x = yield from Step(fn)`` gives ``x`` the type ``fn`` returns.

A ``yield`` expression has the generator's send type whatever was yielded, so
``x = yield Step(fn)`` cannot be typed by any checker; ``yield from`` a Step is the
same operation at run time (the Step yields itself and returns what the
interpreter sends back) and is typed. Checked with mypy --strict on a snippet."""

from __future__ import annotations

import subprocess
import sys
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


OPERATIONS_SNIPPET = """
from durable_gen import (
    ChildContext, CreateCallback, Map, Parallel, Step, Wait, WaitForCondition, WaitStrategy,
    Workflow,
)


def price(sku: str) -> float:
    return 1.5


def priced(sku: str, index: int) -> Workflow[float]:
    return (yield from Step(price, sku))


def child(n: int) -> Workflow[list[int]]:
    yield from Wait(seconds=1)
    return [n]


def poll(state: int) -> int:
    return state + 1


def flow(event: dict[str, str]) -> Workflow[None]:
    sub = yield from ChildContext(child, 3)
    reveal_type(sub)
    batch = yield from Map(["a", "b"], priced)
    reveal_type(batch.get_results())
    state = yield from WaitForCondition(poll, 0, WaitStrategy(should_continue=lambda s: s < 3))
    reveal_type(state)
    handle = yield from CreateCallback()
    reveal_type(handle.callback_id)
    both = yield from Parallel([lambda: child(1)])
    reveal_type(both.success_count)
"""

#: What each reveal_type above must show (mypy's and pyright's spelling).
EXPECTED = [
    ("list[int]", "builtins.list[builtins.int]"),
    ("list[float]", "builtins.list[builtins.float]"),
    ("int", "builtins.int"),
    ("str", "builtins.str"),
    ("int", "builtins.int"),
]


def _revealed(lines: list[str]) -> list[str]:
    """The types mypy ('Revealed type is "T"') or pyright ('Type of "x" is "T"') show."""
    return [
        line.rsplit('"', 2)[1]
        for line in lines
        if 'Revealed type is "' in line or ('Type of "' in line and '" is "' in line)
    ]


def test_child_contexts_maps_conditions_and_callbacks_are_typed_for_mypy(tmp_path, monkeypatch):
    snippet = tmp_path / "typed_ops.py"
    snippet.write_text(textwrap.dedent(OPERATIONS_SNIPPET))
    monkeypatch.chdir(ROOT)
    out, err, status = mypy_api.run(
        [str(snippet), "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c")]
    )
    assert status == 0, (out, err)
    revealed = _revealed(out.splitlines())
    assert len(revealed) == len(EXPECTED), out
    for got, spellings in zip(revealed, EXPECTED, strict=True):
        assert got in spellings, out
    assert [line for line in out.splitlines() if ": error:" in line] == [], out


def test_pyright_sees_the_same_types(tmp_path, monkeypatch):
    """pyright (a test dependency; it fetches its Node package from the npm registry
    on first use) agrees with mypy on the Step snippet and the operations snippet."""
    snippet = tmp_path / "typed_ops.py"
    snippet.write_text(textwrap.dedent(OPERATIONS_SNIPPET))
    step_snippet = tmp_path / "typed_flow.py"
    step_snippet.write_text(textwrap.dedent(SNIPPET))
    monkeypatch.chdir(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, str(snippet)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    revealed = _revealed(done.stdout.splitlines())
    assert revealed == [pyright for pyright, _ in EXPECTED], done.stdout + done.stderr
    assert "0 errors" in done.stdout, done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, str(step_snippet)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    revealed = _revealed(done.stdout.splitlines())
    assert revealed[0] == "dict[str, int]", done.stdout
    assert 'Type "dict[str, int]" is not assignable to return type "str"' in done.stdout


def test_the_installed_package_is_visible_to_mypy_outside_the_checkout(tmp_path, monkeypatch):
    """From a user's project directory (not this checkout), mypy finds the installed
    durable_gen and its types, also when it is an editable install (setuptools' import
    hook would hide it: setup.cfg's ``package_dir`` makes it a plain path entry)."""
    user = tmp_path / "user_project"
    user.mkdir()
    (user / "flow.py").write_text(
        "from durable_gen import Step, Workflow\n\n"
        "def one() -> int:\n    return 1\n\n"
        "def flow(event: object) -> Workflow[int]:\n"
        "    n = yield from Step(one)\n    reveal_type(n)\n    return n\n"
    )
    monkeypatch.chdir(user)
    out, err, status = mypy_api.run(
        ["flow.py", "--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c")]
    )
    assert "import-not-found" not in out, out
    assert _revealed(out.splitlines()) in (["int"], ["builtins.int"]), out
    assert status == 0, (out, err)
