"""Changing workflow code under running executions, end to end with real processes.

The acceptance requirement of "Changing workflow code safely": 50 executions of v1
wait on callbacks; the code changes incompatibly; ``durable-gen check --status
RUNNING`` names every affected execution and its first divergence; with a patch
marker added, ``check`` passes; a worker finishes old and new executions, and their
results follow the old and new branch respectively.

The incompatible change is to an operation the waiting executions have already
recorded (the step before the callback): a change after the callback is not a
divergence for them (they never recorded anything there), which the test shows too.
Every ``durable-gen`` command runs in a child process, so each version of flows.py
is imported afresh, as a deploy would import it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from durable_gen import RealClock, SqliteEngine, SqliteStore
from durable_gen._engine.targets import canonical_target

from ._procs import cli as cli_args
from ._procs import cli_env

PRELUDE = """
from pathlib import Path

from durable_gen import CreateCallback, Patched, Step

CALLS = Path(__file__).with_name("calls.log")


def note(what, n):
    with CALLS.open("a") as f:
        f.write(f"{what} {n}\\n")


def reserve(n):
    note("reserve", n)
    return {"reserved": n, "by": "reserve"}


def reserve_v2(n):
    note("reserve-v2", n)
    return {"reserved": n, "by": "reserve-v2"}


def charge(n):
    note("charge", n)
    return {"charged": n}


def charge_with_tax(n):
    note("charge-with-tax", n)
    return {"charged": n, "tax": n // 10}
"""

V1 = (
    PRELUDE
    + """

def order(event):
    reserved = yield Step(reserve, event["n"], name="reserve")
    handle = yield CreateCallback("approval", timeout=3600)
    answer = yield handle.result()
    charged = yield Step(charge, event["n"], name="charge")
    return {"n": event["n"], "reserved": reserved, "answer": answer, "charged": charged}
"""
)

# a change after the callback: nothing the waiting executions recorded is affected
V1_LATER_CHANGE = V1.replace(
    'yield Step(charge, event["n"], name="charge")',
    'yield Step(charge_with_tax, event["n"], name="charge-with-tax")',
)

# the incompatible change: another step where every execution recorded 'reserve'
V2_LINE = 'reserved = yield Step(reserve_v2, event["n"], name="reserve-v2")'
V2 = V1.replace('reserved = yield Step(reserve, event["n"], name="reserve")', V2_LINE)

# the same change behind a patch marker
V3 = (
    PRELUDE
    + """

def order(event):
    if (yield Patched("new-reserve")):
        path = "new"
        reserved = yield Step(reserve_v2, event["n"], name="reserve-v2")
    else:
        path = "old"
        reserved = yield Step(reserve, event["n"], name="reserve")
    handle = yield CreateCallback("approval", timeout=3600)
    answer = yield handle.result()
    charged = yield Step(charge, event["n"], name="charge")
    return {
        "path": path,
        "n": event["n"],
        "reserved": reserved,
        "answer": answer,
        "charged": charged,
    }
"""
)

OLD = 50  # executions started on v1, waiting on their callbacks when the code changes
NEW = 10  # executions started on v3 (with the patch marker)
VIA_CLI = 5  # of the OLD ones, started with `durable-gen start` (the rest from Python)


def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m durable_gen ARGS`` run to its end in ``tmp_path`` (where flows.py is)."""
    try:
        return subprocess.run(
            cli_args(*args),
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`durable-gen {' '.join(args)}` did not end in {timeout} s") from e


def step_calls(tmp_path: Path) -> list[tuple[str, int]]:
    """(step function, n) of every call the workflow's steps made, in any process."""
    log = tmp_path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(what, int(n)) for what, n in (line.split() for line in lines)]


def calls(tmp_path: Path) -> Counter[str]:
    return Counter(what for what, _ in step_calls(tmp_path))


def calls_of(tmp_path: Path, what: str) -> list[int]:
    return sorted(n for w, n in step_calls(tmp_path) if w == what)


def import_file(path: Path, name: str) -> Any:
    """The ``order`` workflow of ``path``, imported under a module name of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.order


def work_until_settled(tmp_path: Path, db: Path, rounds: int = 10) -> list[str]:
    """``durable-gen worker --once`` until nothing is due; the workers' stderr."""
    logs = []
    with SqliteStore(db) as store:
        for _ in range(rounds):
            done = cli(tmp_path, "worker", "--once", "--db", str(db))
            assert done.returncode == 0, done.stderr
            logs.append(done.stderr)
            if not store.due(RealClock().now()):
                return logs
    raise AssertionError(f"executions still due after {rounds} workers: {logs}")


def callback_id_of(db: Path, execution_id: str) -> str:
    with SqliteStore(db) as store:
        ids = [op.callback_id for op in store.load(execution_id).values() if op.callback_id]
    assert len(ids) == 1, (execution_id, ids)
    return str(ids[0])


def patch_markers(store: SqliteStore, execution_id: str) -> list[tuple[str | None, str]]:
    return [
        (op.name, op.status.value)
        for op in store.load(execution_id).values()
        if op.sub_type == "Patch"
    ]


def test_old_executions_diverge_then_pass_behind_a_patch_and_finish_on_their_branch(
    tmp_path: Path,
) -> None:
    db = tmp_path / "orders.db"
    flows = tmp_path / "flows.py"
    flows.write_text(V1)
    target = "flows.py:order"

    # ---- 50 executions of v1, each waiting on its callback
    old: list[str] = []
    for n in range(VIA_CLI):
        done = cli(tmp_path, "start", target, "--input", json.dumps({"n": n}), "--db", str(db))
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"[0-9a-f]{32}\n", done.stdout), done.stdout
        old.append(done.stdout.strip())
    v1 = import_file(flows, "flows_v1_for_test")
    with SqliteEngine(db) as engine:
        for n in range(VIA_CLI, OLD):
            old.append(
                engine.start(
                    v1,
                    {"n": n},
                    execution_id=f"old-{n:02d}",
                    target=canonical_target(str(flows) + ":order"),
                    workdir=str(tmp_path),
                )
            )
    assert len(set(old)) == OLD
    work_until_settled(tmp_path, db)  # v1 runs 'reserve', then waits for the callback
    listed = cli(tmp_path, "list", "--status", "RUNNING", "--limit", "100", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()[1:]} == set(old)
    with SqliteStore(db) as store:
        for ex in old:
            ops = [op for op in store.load(ex).values() if op.type.value != "EXECUTION"]
            assert [(op.name, op.status.value) for op in ops] == [
                ("reserve", "SUCCEEDED"),
                ("approval", "STARTED"),
            ], ex
    assert calls(tmp_path) == Counter({"reserve": OLD})
    assert calls_of(tmp_path, "reserve") == list(range(OLD))

    check = ["check", target, "--status", "RUNNING", "--db", str(db)]

    # ---- a change after the callback is no divergence: they never recorded 'charge'
    flows.write_text(V1_LATER_CHANGE)
    done = cli(tmp_path, *check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        *(f"{ex}: compatible: replays its 2 recorded operations" for ex in old),
        f"{OLD} executions checked: {OLD} compatible, 0 diverge",
    ]

    # ---- v2: the step before the callback changed, no patch marker
    flows.write_text(V2)
    line = V2.splitlines().index("    " + V2_LINE) + 1
    done = cli(tmp_path, *check)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == ""
    named = re.findall(r"^(\S+): DIVERGES at the (.*)$", done.stdout, re.M)
    assert named == [(ex, "1st operation of the root context") for ex in old]
    assert (
        done.stdout
        == "".join(
            f"{ex}: DIVERGES at the 1st operation of the root context\n"
            "    recorded:  Step 'reserve'\n"
            "    now:       yields Step 'reserve-v2'\n"
            f"    at:        flows.py:{line} (order)\n"
            f"               {V2_LINE}\n"
            for ex in old
        )
        + f"{OLD} executions checked: 0 compatible, {OLD} diverge\n"
    )

    # ---- v3: the same change behind Patched("new-reserve"): every one is compatible,
    # and check names the old branch each old execution still needs
    old_branch = "; takes the old branch of patch 'new-reserve'"
    flows.write_text(V3)
    done = cli(tmp_path, *check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        *(f"{ex}: compatible: replays its 2 recorded operations{old_branch}" for ex in old),
        f"{OLD} executions checked: {OLD} compatible, 0 diverge",
    ]
    assert calls(tmp_path) == Counter({"reserve": OLD})  # check ran nothing

    # ---- 10 new executions on v3, also waiting on their callbacks
    new: list[str] = []
    for n in range(100, 100 + NEW):
        done = cli(tmp_path, "start", target, "--input", json.dumps({"n": n}), "--db", str(db))
        assert done.returncode == 0, done.stderr
        new.append(done.stdout.strip())
    logs = work_until_settled(tmp_path, db)
    assert "FAILED" not in "".join(logs), logs
    assert calls_of(tmp_path, "reserve-v2") == list(range(100, 100 + NEW))
    assert calls(tmp_path)["reserve"] == OLD  # the old executions were not advanced again
    with SqliteStore(db) as store:
        assert {r.id for r in store.executions(status="RUNNING", limit=1000)} == {*old, *new}
        assert all(patch_markers(store, ex) == [("new-reserve", "SUCCEEDED")] for ex in new)

    # check on the mix: old and new executions both replay on v3
    done = cli(tmp_path, *check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        *(f"{ex}: compatible: replays its 2 recorded operations{old_branch}" for ex in old),
        *(f"{ex}: compatible: replays its 3 recorded operations" for ex in new),
        f"{OLD + NEW} executions checked: {OLD + NEW} compatible, 0 diverge",
    ]

    # ---- complete the 60 callbacks: one with `durable-gen callback`, found through
    # `durable-gen history --json`; the rest from Python
    first = old[0]
    history = cli(tmp_path, "history", first, "--json", "--db", str(db))
    assert history.returncode == 0, history.stderr
    started = [
        e["CallbackStartedDetails"]["CallbackId"]
        for e in json.loads(history.stdout)["Events"]
        if e["EventType"] == "CallbackStarted"
    ]
    assert started == [callback_id_of(db, first)]
    done = cli(
        tmp_path,
        "callback", "succeed", started[0], f"ok:{first}",
        "--execution", first, "--db", str(db),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"succeeded callback of execution {first}\n"
    with SqliteStore(db) as store:
        for ex in [*old[1:], *new]:
            got = store.complete_callback(
                callback_id_of(db, ex),
                "succeed",
                RealClock().now(),
                payload=f"ok:{ex}",  # comes back as the string sent
                execution_id=ex,
            )
            assert got == ex

    # ---- a worker on v3 finishes them all
    logs = work_until_settled(tmp_path, db)
    lines = "".join(logs).splitlines()
    assert not [x for x in lines if "FAILED" in x or "rror" in x], lines
    finished = [
        m[1]
        for x in lines
        if (m := re.fullmatch(r"durable-gen worker: execution (\S+) SUCCEEDED", x))
    ]
    assert sorted(finished) == sorted([*old, *new]), lines
    listed = cli(tmp_path, "list", "--status", "SUCCEEDED", "--limit", "100", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()[1:]} == {*old, *new}

    with SqliteEngine(db) as engine:
        results = {ex: engine.result(ex) for ex in [*old, *new]}
        assert {ex: r.status for ex, r in results.items()} == dict.fromkeys(
            [*old, *new], "SUCCEEDED"
        )
        for n, ex in enumerate(old):  # the old branch: 'reserve', recorded by v1
            assert results[ex].result == {
                "path": "old",
                "n": n,
                "reserved": {"reserved": n, "by": "reserve"},
                "answer": f"ok:{ex}",
                "charged": {"charged": n},
            }, ex
            assert patch_markers(engine.store, ex) == []  # nothing recorded for the marker
        for n, ex in zip(range(100, 100 + NEW), new, strict=True):  # the new branch
            assert results[ex].result == {
                "path": "new",
                "n": n,
                "reserved": {"reserved": n, "by": "reserve-v2"},
                "answer": f"ok:{ex}",
                "charged": {"charged": n},
            }, ex
            assert patch_markers(engine.store, ex) == [("new-reserve", "SUCCEEDED")]
    # every step ran once: the old 'reserve' was replayed, not run again
    assert calls(tmp_path) == Counter({"reserve": OLD, "reserve-v2": NEW, "charge": OLD + NEW})

    # the one completed through the CLI shows its result there too
    shown = cli(tmp_path, "show", first, "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "  status   SUCCEEDED\n" in shown.stdout
    assert '"path":"old"' in shown.stdout
