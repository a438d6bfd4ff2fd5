"""The SQLite crash tests, on PostgreSQL: the same workflows, kills and checks.

From ``tests/test_cli_crash.py`` (real ``durable-gen`` processes, SIGKILL) and
``tests/test_faults_sqlite.py`` (SIGKILL between a side effect and its checkpoint),
with ``--db postgresql://...`` (a fresh database per test) instead of a SQLite file,
and the store read back through :class:`PostgresStore`:

- ``durable-gen run`` SIGKILLed at random points, ten times or more, then run to its
  end: every step's recorded success is its last run (nothing ran after it was
  recorded), at-most-once steps ran at most once per attempt, the killed
  invocations are in the history as ``Runtime.ExitError``;
- a run whose holder was SIGKILLed mid-step is taken over at once by the next run
  (the dead holder's lease is not waited out);
- two workers never advance one execution at once (steps never overlap) and each
  step runs once;
- SIGKILL after a step's side effect, before its checkpoint: at-least-once runs it
  again, at-most-once records the interrupted attempt and retries; no step recorded
  twice.

The workflows are those modules' own (imported), so the two stores are held to the
same programs. About 30 s in all.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from durable_gen import DurableEngine
from durable_gen._engine.clock import VirtualClock
from durable_gen._stores.postgres import PostgresStore
from tests._procs import cli, cli_env
from tests.test_cli_crash import WORKFLOW
from tests.test_faults_sqlite import _CRASH_WORKFLOW

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> dict[str, Any]:
    wf = tmp_path / "crashwf.py"
    wf.write_text(WORKFLOW)
    log = tmp_path / "steps.log"
    return {
        "wf": wf,
        "env": cli_env(STEP_LOG=str(log), DURABLE_GEN_DB=pg_url),
        "log": log,
        "db": pg_url,
    }


def test_sigkill_at_random_points_then_resume(env: dict[str, Any]) -> None:
    n = 240  # enough work that the run outlives ten random kills
    expected = {f"m{i}" if i % 3 == 2 else f"l{i}" for i in range(n)}
    expected |= {f"c{k}{s}" for k in range(11, n, 12) for s in "ab"}
    args = cli("run", f"{env['wf']}:flow", "--input", json.dumps({"n": n}))
    args += ["--id", "crashy", "--virtual-time"]
    rng = random.Random(20260101)
    kills = 0
    deadline = time.monotonic() + 18
    while True:
        p = subprocess.Popen(
            args, env=env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if kills < 30 and time.monotonic() < deadline:
            try:
                p.wait(timeout=rng.uniform(0.3, 0.7))  # PostgreSQL: a slower start
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.communicate()
                kills += 1
                continue
        out, err = p.communicate(timeout=120)
        break
    assert p.returncode == 0, err
    assert kills >= 10, f"only {kills} runs were killed before the execution ended"
    tokens = json.loads(out)
    assert set(tokens) == expected

    runs: dict[str, list[tuple[str, int, str]]] = collections.defaultdict(list)
    for line in env["log"].read_text().splitlines():
        kind, name, attempt, token = line.split()
        runs[name].append((kind, int(attempt), token))
    assert set(runs) == expected
    amo_attempts: list[list[int]] = []
    for name, calls in runs.items():
        # a recorded success is the last run of its step: nothing ran after it was recorded
        assert calls[-1][2] == tokens[name], (name, calls)
        if calls[0][0] == "amo":
            attempts = [a for _, a, _ in calls]
            assert attempts == sorted(set(attempts)), (name, calls)
            amo_attempts.append(attempts)
        else:
            assert {a for _, a, _ in calls} == {1}
    assert len(amo_attempts) == len([k for k in expected if k.startswith("m") or "b" in k])
    # the kills did land inside steps: some steps ran again
    assert any(len(c) > 1 for c in runs.values())

    with PostgresStore(env["db"]) as store:
        events = store.history("crashy")
    exits = [
        e
        for e in events
        if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]
    ]
    assert exits
    assert {e["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] for e in exits} == {
        "Runtime.ExitError"
    }
    assert events[-1]["EventType"] == "ExecutionSucceeded"
    succeeded = collections.Counter(e["Name"] for e in events if e["EventType"] == "StepSucceeded")
    assert set(succeeded) == expected
    assert set(succeeded.values()) == {1}  # exactly once recorded


def test_run_resumes_at_once_after_its_holder_was_killed(
    env: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    args = cli("run", f"{env['wf']}:takes_long", "--id", "long")
    args += ["--input", json.dumps({"marker": str(marker)})]
    p = subprocess.Popen(args, env=env["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(400):
            if marker.exists():
                break
            time.sleep(0.05)
        assert marker.exists()
        time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    with PostgresStore(env["db"]) as store:
        info = store.info("long")
    assert info is not None
    assert info.lease_owner is not None  # the dead process still "holds" it
    assert info.lease_expires is not None
    assert info.lease_expires > time.time() * 1000 + 20_000  # for another 20 s or more
    done = subprocess.run(
        args, check=False, env=env["env"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "done"
    with PostgresStore(env["db"]) as store:
        ended = store.info("long").ended_at
    assert ended is not None
    # taken over at once: the execution ended long before the dead holder's lease expired
    assert ended < info.lease_expires - 15_000


def test_two_workers_never_advance_one_execution_at_once(env: dict[str, Any]) -> None:
    ids = [f"ex{i}" for i in range(8)]

    def stand_in(event: Any) -> Any:  # the workers load the real one from the target
        yield

    with DurableEngine(PostgresStore(env["db"])) as engine:
        for ex in ids:
            engine.start(stand_in, {"ex": ex}, execution_id=ex, target=f"{env['wf']}:sequential")
    workers = [
        subprocess.Popen(
            cli("worker", "--poll", "0.05"),
            env=env["env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        with PostgresStore(env["db"]) as store:
            while time.monotonic() < deadline:
                if all(store.info(ex).status == "SUCCEEDED" for ex in ids):
                    break
                time.sleep(0.1)
            statuses = {ex: store.info(ex).status for ex in ids}
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        logs = [w.communicate(timeout=30)[1] for w in workers]
    assert statuses == dict.fromkeys(ids, "SUCCEEDED"), logs
    assert [w.returncode for w in workers] == [0, 0], logs

    intervals: dict[str, list[tuple[int, int, int, str]]] = collections.defaultdict(list)
    for line in env["log"].read_text().splitlines():
        ex, name, pid, t0, t1 = line.split()
        intervals[ex].append((int(t0), int(t1), int(pid), name))
    pids = {pid for spans in intervals.values() for _, _, pid, _ in spans}
    assert pids == {w.pid for w in workers}  # both workers did work
    for ex, spans in intervals.items():
        assert sorted(name for *_, name in spans) == ["s0", "s1", "s2", "s3"]  # each step once
        spans.sort()
        for (_, a1, apid, _), (b0, _, bpid, _) in itertools.pairwise(spans):
            assert a1 <= b0, f"{ex}: steps of pid {apid} and pid {bpid} overlapped"


@pytest.mark.parametrize(
    ("workflow", "attempts"),
    [("at_least_once", ["b 1", "b 1"]), ("at_most_once", ["b 1", "b 2"])],
)
def test_sigkill_between_a_side_effect_and_its_checkpoint(
    pg_url: str, tmp_path: Path, workflow: str, attempts: list[str]
) -> None:
    wf = tmp_path / "crashy.py"
    wf.write_text(_CRASH_WORKFLOW)
    ledger = tmp_path / "ledger"
    proc = subprocess.Popen(
        cli("run", f"{wf}:{workflow}", "--db", pg_url),
        env=cli_env(LEDGER=str(ledger)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not Path(f"{ledger}.b").exists():
        assert proc.poll() is None, "the run ended before the step ran"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # b's effect happened; its result was never recorded
    proc.wait(timeout=10)

    with PostgresStore(pg_url) as store:
        [info] = store.executions()
        ops = {op.name: op for op in store.load(info.id).values() if op.name}
    assert ops["a"].status.value == "SUCCEEDED"
    if workflow == "at_most_once":
        assert ops["b"].status.value == "STARTED"  # START was durable before the effect
    else:
        assert "b" not in ops  # START rides with the result, which never came

    os.environ["LEDGER"] = str(ledger)
    try:
        clock = VirtualClock(start=time.time_ns() // 1_000_000)
        with DurableEngine(PostgresStore(pg_url), clock=clock) as engine:
            found = engine.store.info(info.id)
            assert found is not None
            result = engine.resume(engine.workflow_for(found), info.id)
    finally:
        del os.environ["LEDGER"]
    assert result.status == "SUCCEEDED"
    assert result.result == ["done-a", "done-b"]
    assert ledger.read_text().split("\n")[:-1] == attempts
    with PostgresStore(pg_url) as store:
        ops = {op.name: op for op in store.load(info.id).values() if op.name}
        history = store.history(info.id)
    assert ops["b"].attempt == int(attempts[-1][-1])
    succeeded = collections.Counter(e["Name"] for e in history if e["EventType"] == "StepSucceeded")
    assert succeeded == {"a": 1, "b": 1}  # nothing recorded twice
    interrupted = [
        e["InvocationCompletedDetails"]["Error"]["Payload"]
        for e in history
        if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]
    ]
    assert [p["ErrorType"] for p in interrupted] == ["Runtime.ExitError"]
    assert re.fullmatch(
        r"the worker running this invocation \(pid \d+ on .+\) stopped before it ended",
        interrupted[0]["ErrorMessage"],
    )
    if workflow == "at_most_once":
        failed = [e for e in history if e["EventType"] == "StepFailed"]
        assert [e["Name"] for e in failed] == ["b"]  # the interrupted attempt, handed to retry
