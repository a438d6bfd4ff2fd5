"""Soak: many executions with waits and callbacks, several worker processes, one database.

    python -m benchmarks.soak [--executions 1000] [--workers 4] [--wait 1]
        [--db PATH-OR-URL | --postgres]

Starts ``--executions`` executions of the workflow below on ONE database (a SQLite
file, or PostgreSQL: ``--db postgresql://...``, or ``--postgres`` for a fresh
database on a throw-away server started from the Debian binaries, as the tests do),
runs ``--workers`` ``durable-gen worker`` processes on it, and plays the outside
world from this process: it reads each execution's callback id from what the
``notify`` step published and completes the callback. Each execution

    a = Step(work, "a")  ->  Wait(--wait s)  ->  CreateCallback  ->  Step(notify)
      ->  await the callback  ->  b = Step(work, "b")  ->  return {...}

Every step appends one line to a side-effect ledger (a file opened with
O_APPEND, one ``write`` per line, shared by the workers), so a step that ran
twice shows up as a duplicate. At the end it checks that every execution
SUCCEEDED exactly once (one ExecutionSucceeded event) with the right result,
that each step's outcome was recorded once, and that the ledger holds each step
once. It prints executions, workers, wall time, failures and duplicates, and
exits 1 if there were failures or duplicates.

Not part of the default test run; ``tests/test_soak.py`` runs a small version
under ``pytest -m slow``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORKFLOW = """
import json
import os
from durable_gen import CreateCallback, Step, Wait

LEDGER = os.environ["SOAK_LEDGER"]


def work(key, step, value):
    line = f"{key} {step} {os.getpid()} {json.dumps(value)}\\n"
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return value


def flow(event):
    key = event["key"]
    a = yield Step(work, key, "a", event["n"] * 2, name="a")
    yield Wait(seconds=event["wait"], name="pause")
    handle = yield CreateCallback("approval", timeout=3600)
    yield Step(work, key, "notify", handle.callback_id, name="notify")
    answer = yield handle.result()
    b = yield Step(work, key, "b", a + int(answer), name="b")
    return {"key": key, "b": b}
"""

STEPS = ("a", "notify", "b")


def expected(n: int) -> dict[str, Any]:
    return {"key": f"soak-{n}", "b": n * 2 + n}


class Ledger:
    """Reads the ledger file incrementally (lines appended by the workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[tuple[str, str, int, Any]] = []

    def poll(self) -> list[tuple[str, str, int, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        new = []
        for raw in data[:end].decode().splitlines():
            key, step, pid, value = raw.split(" ", 3)
            new.append((key, step, int(pid), json.loads(value)))
        self.lines.extend(new)
        return new


def run(
    executions: int,
    workers: int,
    *,
    wait: int = 1,
    db: str | os.PathLike[str] | None = None,
    timeout: float = 1800.0,
    quiet: bool = False,
) -> dict[str, Any]:
    from durable_gen._engine.durable import DurableEngine
    from durable_gen._engine.sqlite import result_value
    from durable_gen._engine.targets import resolve_target
    from durable_gen._stores.factory import open_store

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="durable-gen-soak-"))
    db = str(db or tmp / "soak.db")
    ledger_path = tmp / "ledger.txt"
    wf_path = tmp / "soak_flow.py"
    wf_path.write_text(WORKFLOW)
    target = f"{wf_path}:flow"
    saved = os.environ.get("SOAK_LEDGER")
    os.environ["SOAK_LEDGER"] = str(ledger_path)  # read when the module is imported
    try:
        flow = resolve_target(target)
    finally:
        if saved is None:
            del os.environ["SOAK_LEDGER"]
        else:
            os.environ["SOAK_LEDGER"] = saved

    env = dict(os.environ, SOAK_LEDGER=str(ledger_path))
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    open_store(db).close()  # create it before the workers race to

    t0 = time.monotonic()
    logs = [open(tmp / f"worker-{i}.log", "w") for i in range(workers)]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "durable_gen", "worker", "--db", db, "--poll", "0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for log in logs
    ]
    ids = [f"soak-{n}" for n in range(executions)]
    with open_store(db) as starter:
        engine = DurableEngine(starter)
        for n, execution_id in enumerate(ids):
            engine.start(
                flow,
                {"key": execution_id, "n": n, "wait": wait},
                execution_id=execution_id,
                target=target,
            )
    say(f"started {executions} executions in {time.monotonic() - t0:.1f}s")

    ledger = Ledger(ledger_path)
    completed: set[str] = set()
    callback_failures: list[str] = []
    deadline = time.monotonic() + timeout
    last_report = 0.0
    with open_store(db) as store:
        while True:
            for key, step, _, value in ledger.poll():
                if step == "notify" and value not in completed:
                    n = int(key.rsplit("-", 1)[1])
                    try:
                        store.complete_callback(
                            value,
                            "succeed",
                            int(time.time() * 1000),
                            payload=str(n),
                            execution_id=key,
                        )
                    except Exception as e:
                        callback_failures.append(f"{key}: {type(e).__name__}: {e}")
                    completed.add(value)
            running = len(store.executions(status="RUNNING", limit=1))  # any left?
            now = time.monotonic()
            if now - last_report > 5:
                left = len(store.executions(status="RUNNING", limit=executions))
                say(f"  {now - t0:6.1f}s  running {left}  callbacks completed {len(completed)}")
                last_report = now
            if running == 0 or now > deadline or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        for log in logs:
            log.close()
        ledger.poll()

        failures: list[str] = list(callback_failures)
        recorded_twice = 0
        for n, execution_id in enumerate(ids):
            info = store.info(execution_id)
            if info.status != "SUCCEEDED":
                failures.append(f"{execution_id}: {info.status} {info.error}")
                continue
            if result_value(info.result) != expected(n):
                failures.append(f"{execution_id}: wrong result {info.result}")
            history = store.history(execution_id)
            kinds = collections.Counter(e["EventType"] for e in history)
            if kinds["ExecutionSucceeded"] != 1 or kinds["ExecutionStarted"] != 1:
                failures.append(f"{execution_id}: finished {kinds['ExecutionSucceeded']} times")
            steps = collections.Counter(
                e["Name"] for e in history if e["EventType"] == "StepSucceeded"
            )
            recorded_twice += sum(c - 1 for c in steps.values() if c > 1)
            if set(steps) != set(STEPS):
                failures.append(f"{execution_id}: recorded steps {dict(steps)}")

    runs = collections.Counter((key, step) for key, step, _, _ in ledger.lines)
    duplicates = sum(c - 1 for c in runs.values() if c > 1) + recorded_twice
    missing = [f"{k} {s}" for k in ids for s in STEPS if runs[(k, s)] == 0]
    failures += [f"step never ran: {m}" for m in missing]
    by_worker = collections.Counter(pid for _, _, pid, _ in ledger.lines)
    out = {
        "executions": executions,
        "workers": workers,
        "wall_seconds": round(wall, 2),
        "failures": len(failures),
        "duplicates": duplicates,
        "steps_run": sum(runs.values()),
        "callbacks_completed": len(completed),
        "steps_per_worker": sorted(by_worker.values(), reverse=True),
        "failure_examples": failures[:10],
        "db": str(db),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--wait", type=int, default=1, help="seconds of the Wait (1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db", help="a SQLite file or a postgresql:// URL (default: a new temp file)"
    )
    where.add_argument(
        "--postgres",
        action="store_true",
        help="a fresh database on a throw-away PostgreSQL server (tests/postgres/_server)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after (1800 s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    db = args.db
    if args.postgres:
        from tests.postgres import _server

        db = _server.fresh_database("soak")
    out = run(args.executions, args.workers, wait=args.wait, db=db, timeout=args.timeout)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"executions   {out['executions']}")
        print(f"workers      {out['workers']}")
        print(f"database     {out['db'].split('?')[0]}")
        print(f"wall time    {out['wall_seconds']:.1f} s")
        print(f"failures     {out['failures']}")
        print(f"duplicates   {out['duplicates']}")
        print(f"steps run    {out['steps_run']} (per worker: {out['steps_per_worker']})")
        for line in out["failure_examples"]:
            print(f"  {line}")
    return 1 if out["failures"] or out["duplicates"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
