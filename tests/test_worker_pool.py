"""The worker pool: `work(concurrency=N)` and `durable-gen worker --concurrency N`, and
`durable-gen start` recording executions for workers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from durable_gen import AT_MOST_ONCE_PER_RETRY, SqliteEngine, Step, ValidationError, Wait
from durable_gen._cli.main import main
from tests._procs import cli_env, run_cli

SPANS = Path(os.environ.get("DG_POOL_SPANS", "/nonexistent"))
_lock = threading.Lock()


def nap(tag: str) -> str:
    """A step that blocks (as I/O does) and records when it ran."""
    start = time.monotonic()
    time.sleep(0.15)
    with _lock, open(os.environ["DG_POOL_SPANS"], "a") as f:
        f.write(json.dumps([tag, start, time.monotonic()]) + "\n")
    return tag


def flow(event):
    a = yield Step(nap, f"{event['n']}-a", name="a", semantics=AT_MOST_ONCE_PER_RETRY)
    yield Wait(seconds=1)
    b = yield Step(nap, f"{event['n']}-b", name="b", semantics=AT_MOST_ONCE_PER_RETRY)
    return [a, b]


def flow_now(event):
    a = yield Step(nap, f"{event['n']}-a", name="a", semantics=AT_MOST_ONCE_PER_RETRY)
    b = yield Step(nap, f"{event['n']}-b", name="b", semantics=AT_MOST_ONCE_PER_RETRY)
    return [a, b]


def _spans(path: Path) -> list[tuple[str, float, float]]:
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()]


def _most_at_once(spans: list[tuple[str, float, float]]) -> int:
    edges = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.fixture
def spans(tmp_path, monkeypatch):
    path = tmp_path / "spans.jsonl"
    path.write_text("")
    monkeypatch.setenv("DG_POOL_SPANS", str(path))
    return path


def test_up_to_n_executions_advance_at_once_and_each_step_runs_once(tmp_path, spans):
    from durable_gen import VirtualClock

    with SqliteEngine(tmp_path / "pool.db", clock=VirtualClock()) as engine:
        for n in range(12):
            engine.start(
                flow_now, {"n": n}, execution_id=f"e{n}", target="tests.test_worker_pool:flow_now"
            )
        ended = engine.work(once=True, concurrency=4)
        assert ended == 12
        assert {i.status for i in engine.store.executions()} == {"SUCCEEDED"}
        assert engine.result("e3").result == ["3-a", "3-b"]
    seen = _spans(spans)
    assert sorted(tag for tag, _, _ in seen) == sorted(
        f"{n}-{s}" for n in range(12) for s in ("a", "b")
    )  # every step once
    assert 2 <= _most_at_once(seen) <= 4


def test_concurrency_must_be_positive(tmp_path):
    with (
        SqliteEngine(tmp_path / "pool.db") as engine,
        pytest.raises(ValidationError, match=r"^concurrency must be 1 or more, got 0$"),
    ):
        engine.work(once=True, concurrency=0)


def test_start_records_and_workers_finish_with_a_pool(tmp_path, spans):
    db = str(tmp_path / "cli.db")
    env = cli_env(DG_POOL_SPANS=str(spans))
    ids = []
    for n in range(6):
        done = run_cli(
            "start",
            "tests.test_worker_pool:flow",
            "--input",
            json.dumps({"n": n}),
            "--db",
            db,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip())
    assert len(set(ids)) == 6
    same = run_cli(
        "start",
        "tests.test_worker_pool:flow",
        "--input",
        '{"n": 100}',
        "--id",
        "x",
        "--db",
        db,
        env=env,
    )
    again = run_cli(
        "start",
        "tests.test_worker_pool:flow",
        "--input",
        '{"n": 100}',
        "--id",
        "x",
        "--db",
        db,
        env=env,
    )
    assert (same.stdout, again.stdout) == ("x\n", "x\n")  # the same name and input: one
    other = run_cli(
        "start",
        "tests.test_worker_pool:flow",
        "--input",
        '{"n": 200}',
        "--id",
        "x",
        "--db",
        db,
        env=env,
    )
    assert other.returncode == 2
    assert other.stderr.startswith("durable-gen: execution 'x' was already started with another")
    # the waits take 1 s of real time: run the pool until everything ended (bounded)
    for _ in range(40):
        worker = run_cli("worker", "--once", "--concurrency", "4", "--db", db, env=env)
        assert worker.returncode == 0, worker.stderr
        listed = run_cli("list", "--db", db, env=env)
        if listed.stdout.count("SUCCEEDED") == 7:
            break
        time.sleep(0.25)
    assert listed.stdout.count("SUCCEEDED") == 7, listed.stdout
    tags = sorted(tag for tag, _, _ in _spans(spans))
    assert len(tags) == len(set(tags)) == 14  # each step of each execution ran once


def test_bad_concurrency_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["worker", "--concurrency", "0", "--db", str(tmp_path / "x.db")])
    assert e.value.code == 2
    assert "expected a whole number of 1 or more, got '0'" in capsys.readouterr().err
