"""The interpreter on its own: commands as data, no engine, no mocks."""

import ast
from pathlib import Path

import pytest

import durable_gen
from durable_gen import OperationAction, Step, Wait
from durable_gen._core.commands import (
    Checkpoint,
    Complete,
    RunStep,
    Suspend,
)
from durable_gen._core.errors import InternalError
from durable_gen._core.interpreter import Interpreter
from durable_gen._core.log import (
    Operation,
    OperationStatus,
    OperationType,
    operation_id,
)

PKG = Path(durable_gen.__file__).parent


def double(x):
    return x * 2


def wf(event):
    a = yield Step(double, event, name="double")
    yield Wait(seconds=10)
    return a


def test_first_invocation_commands():
    interp = Interpreter(wf, 21, {}, now=1000, execution_id="e")
    cmd = interp.next_command()
    assert isinstance(cmd, RunStep)
    assert (cmd.fn, cmd.args, cmd.attempt, cmd.name) == (double, (21,), 1, "double")
    assert cmd.durable_first is False  # at-least-once START may ride with the next flush
    assert [u.action for u in cmd.updates] == [OperationAction.START]
    interp.step_returned(cmd.op_id, 42)
    cmd2 = interp.next_command()
    assert isinstance(cmd2, Checkpoint)
    assert [(u.action, u.payload) for u in cmd2.updates] == [(OperationAction.SUCCEED, "42")]
    with pytest.raises(InternalError, match="unacknowledged"):
        interp.next_command()
    interp.checkpointed({})
    cmd3 = interp.next_command()
    assert isinstance(cmd3, Suspend)
    assert cmd3.wake_at == 1000 + 10_000
    assert [(u.type, u.wait_seconds) for u in cmd3.updates] == [(OperationType.WAIT, 10)]


def test_replay_runs_no_user_code_and_completes():
    ops = {
        operation_id(None, 1): Operation(
            id=operation_id(None, 1),
            type=OperationType.STEP,
            status=OperationStatus.SUCCEEDED,
            start_timestamp=0,
            name="double",
            sub_type="Step",
            result="42",
        ),
        operation_id(None, 2): Operation(
            id=operation_id(None, 2),
            type=OperationType.WAIT,
            status=OperationStatus.SUCCEEDED,
            start_timestamp=0,
            sub_type="Wait",
        ),
    }
    interp = Interpreter(wf, 21, ops, now=0, execution_id="e")
    cmd = interp.next_command()
    assert isinstance(cmd, Complete)
    assert (cmd.result, cmd.value, cmd.updates) == ("42", 42, [])
    assert interp.replaying is True


def trace(ops, now):
    """Every command's observable content for one invocation with scripted outcomes."""
    out = []
    interp = Interpreter(wf, 5, ops, now=now, execution_id="e")
    while True:
        cmd = interp.next_command()
        out.append((type(cmd).__name__, [u.to_dict() for u in cmd.updates]))
        if isinstance(cmd, RunStep):
            interp.step_raised(cmd.op_id, ConnectionError("down"))
        elif isinstance(cmd, Checkpoint):
            interp.checkpointed({})
        else:
            out.append(getattr(cmd, "wake_at", None))
            return out


def test_same_inputs_same_commands():
    assert trace({}, 5) == trace({}, 5)
    # the jitter of the recorded retry delay depends on ids, not on time or chance
    first = trace({}, 5)
    assert first[1][1][0]["StepOptions"] == trace({}, 999)[1][1][0]["StepOptions"]


FORBIDDEN = {
    "time",
    "random",
    "sqlite3",
    "threading",
    "socket",
    "boto3",
    "os",
    "uuid",
    "secrets",
    "asyncio",
    "concurrent",
}
#: Every module of the pure core (durable_gen/_core): no I/O, clock, randomness, threads.
PURE_MODULES = sorted(str(p.relative_to(PKG / "_core")) for p in (PKG / "_core").rglob("*.py"))


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_layers_import_no_io(module):
    tree = ast.parse((PKG / "_core" / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    allowed = {"uuid"} if module == "serdes.py" else set()  # the UUID type, nothing else
    assert not imported & (FORBIDDEN - allowed)
    calls = {
        f"{n.func.value.id}.{n.func.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
    }
    assert not {c for c in calls if c.startswith(("uuid.uuid", "datetime.now", "date.today"))}
