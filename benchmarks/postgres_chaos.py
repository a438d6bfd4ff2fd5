"""Many machines on one PostgreSQL server, under fire (issue 27's acceptance run).

``python -m benchmarks.postgres_chaos [--workers 4] [--executions 200] [--steps 20]
[--kills 10] [--cuts 3] [--restarts 1] [--concurrency 8] [--seed N]``

Starts EXECUTIONS executions of :func:`flow` (STEPS steps each), runs WORKERS
``durable-gen worker --concurrency N`` processes (standing in for machines) on one
server, and meanwhile, at random moments (drawn from ``--seed``, as fractions of the
steps run so far):

- KILLS times, SIGKILLs a random worker and at once starts a new one in its place;
- CUTS times, cuts every connection of durable_gen
  (``SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name
  LIKE 'durable_gen%'``: the stores', the group commits' and the LISTEN connections);
- RESTARTS times, restarts the server (``pg_ctl stop -m immediate``, as a crash, then
  start, same data directory and socket).

Then it waits (bounded) until every execution ended, and checks:

- **lost**: executions not SUCCEEDED, or whose result, or history, is not whole
  (one ExecutionSucceeded, and one StepSucceeded per step, ``s0`` .. ``sN`` in order);
- **recorded successes re-run** -- the rule checked: every run of a step body appends
  ``execution step pid token`` to a side-effect file when it starts (open, append,
  close: a line survives SIGKILL) and returns its fresh ``token``; the execution's
  result is the list of the recorded tokens, so it names the run of each step whose
  result was recorded. A recorded success is re-run when some run of the same step
  *started after the recorded run* (a later line in the file). With leases and
  fencing there is no other way for one: a run that started earlier and was not
  recorded is a run cut short (its process killed, its connection cut, the server
  gone) before its result became durable -- at-least-once, allowed;
- **duplicates**: steps whose body ran more than once (all such runs are before the
  recorded one, by the rule above). Each disruption can cause at most one unrecorded
  run per execution in flight at that moment: a kill at most CONCURRENCY, a cut or a
  restart at most WORKERS x CONCURRENCY; the bound is checked;
- every worker that was not killed on purpose is still running at the end (a worker
  that exits on a lost connection is a bug), and none printed a Traceback.

While no step runs for 5 s it prints the executions not ended (status, lease holder,
lease and wake time left); with ``DG_CHAOS_DEBUG=1`` also the workers, the server's
backends and the advisory locks held (and it keeps its files).

Prints one table; :func:`run` is what ``tests/postgres/test_chaos.py`` calls (a smaller
run in the default test run, this full one marked slow). The server is the tests'
throw-away cluster (``tests/postgres/_server``: ``fsync=on``, ``synchronous_commit=on``,
``full_page_writes=on``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from durable_gen import Step

TARGET = "benchmarks.postgres_chaos:flow"
ENV_LOG = "DG_CHAOS_LOG"


def work(execution: str, index: int) -> str:
    """A step body: note its run (before its result exists), then return its token."""
    token = uuid.uuid4().hex
    with open(os.environ[ENV_LOG], "a") as f:  # O_APPEND: one whole line per write
        f.write(f"{execution} {index} {os.getpid()} {token}\n")
    time.sleep(0.005)
    return token


def flow(event: dict[str, Any]) -> Generator[Any, Any, list[str]]:
    tokens = []
    for i in range(int(event["steps"])):
        tokens.append((yield Step(work, event["id"], i, name=f"s{i}")))
    return tokens


class ChaosReport:
    """What a chaos run did and found (``problems`` empty: it passed)."""

    def __init__(self, **fields: Any) -> None:
        self.workers: int = fields["workers"]
        self.concurrency: int = fields["concurrency"]
        self.executions: int = fields["executions"]
        self.steps: int = fields["steps"]
        self.kills: int = fields["kills"]
        self.cuts: int = fields["cuts"]
        self.restarts: int = fields["restarts"]
        self.seed: int = fields["seed"]
        self.lost: int = fields["lost"]
        self.rerun_recorded: int = fields["rerun_recorded"]
        self.duplicates: int = fields["duplicates"]
        self.duplicate_bound: int = fields["duplicate_bound"]
        self.succeeded: int = fields["succeeded"]
        self.wall: float = fields["wall"]
        self.step_runs: int = fields["step_runs"]
        self.unplanned_exits: list[str] = fields["unplanned_exits"]
        self.invocation_errors: dict[str, int] = fields["invocation_errors"]
        self.problems: list[str] = fields["problems"]

    def table(self) -> str:
        rows = [
            ("workers x concurrency", f"{self.workers} x {self.concurrency}"),
            ("executions", self.executions),
            ("steps per execution", self.steps),
            ("SIGKILLs of workers", self.kills),
            ("pg_terminate_backend rounds", self.cuts),
            ("server restarts", self.restarts),
            ("lost", self.lost),
            ("recorded successes re-run", self.rerun_recorded),
            ("steps run more than once", f"{self.duplicates} (bound {self.duplicate_bound})"),
            ("step bodies run", self.step_runs),
            ("SUCCEEDED", f"{self.succeeded} / {self.executions}"),
            ("invocations ended by an error", _counts(self.invocation_errors)),
            ("workers that exited on their own", len(self.unplanned_exits)),
            ("wall time", f"{self.wall:.1f} s"),
            ("seed", self.seed),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines += [f"PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def run(
    url: str,
    workdir: Path,
    *,
    restart_server: Callable[[], None] | None,
    workers: int = 4,
    executions: int = 200,
    steps: int = 20,
    kills: int = 10,
    cuts: int = 3,
    restarts: int = 1,
    concurrency: int = 8,
    seed: int | None = None,
    timeout: float = 600,
    log: Callable[[str], None] = lambda _: None,
) -> ChaosReport:
    """One chaos run on the database ``url`` (empty), files in ``workdir``;
    ``restart_server`` restarts the server (None: ``restarts`` must be 0)."""
    import collections
    import json
    import random
    import signal
    import subprocess

    import psycopg

    from durable_gen import DurableEngine
    from durable_gen._stores.postgres import PostgresStore
    from tests._procs import cli, cli_env, kill, read_log, spawn, stop

    if restarts and restart_server is None:
        raise ValueError("restarts need a restart_server")
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    side = workdir / "steps.log"
    env = cli_env(**{ENV_LOG: str(side)})
    total = executions * steps
    started = time.monotonic()

    with DurableEngine(PostgresStore(url)) as engine:
        for n in range(executions):
            engine.start(
                flow, {"id": f"ex{n}", "steps": steps}, execution_id=f"ex{n}", target=TARGET
            )
    log(f"started {executions} executions in {time.monotonic() - started:.1f} s")

    names = iter(f"w{n}" for n in range(1000))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    unplanned: list[str] = []

    def new_worker() -> None:
        name = next(names)
        args = ("--db", url, "worker", "--poll", "0.5", "--concurrency", str(concurrency))
        procs[name] = spawn(cli(*args), workdir, name, env=env)

    # the disruptions, at random fractions of the steps run, in order
    plan = sorted(
        [(rng.uniform(0.05, 0.9), "kill") for _ in range(kills)]
        + [(rng.uniform(0.05, 0.9), "cut") for _ in range(cuts)]
        + [(rng.uniform(0.05, 0.9), "restart") for _ in range(restarts)]
    )
    lines = 0
    offset = 0

    def progress() -> int:
        nonlocal lines, offset
        if side.exists():
            with open(side, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            lines += chunk[:end].count(b"\n")
            offset += end
        return lines

    def statuses() -> dict[str, int] | None:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT status, count(*) FROM durable_gen.executions GROUP BY status"
                ).fetchall()
            return {s: int(n) for s, n in rows}
        except psycopg.Error:
            return None  # the server is restarting

    def stuck() -> list[str]:
        """The executions not ended: id, status, lease holder, lease and wake time left."""
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT id, status, lease_owner, lease_expires - t, wake_at - t FROM "
                    "durable_gen.executions, (SELECT (extract(epoch FROM clock_timestamp()) "
                    "* 1000)::bigint AS t) AS now WHERE status NOT IN "
                    "('SUCCEEDED', 'FAILED', 'STOPPED', 'TIMED_OUT') ORDER BY id"
                ).fetchall()
        except psycopg.Error as e:
            return [f"(cannot read: {e})"]
        return [
            f"{ex} {status} lease {owner or '-'} ({lease} ms left) wake in {wake} ms"
            for ex, status, owner, lease, wake in rows
        ]

    def cut() -> int:
        with psycopg.connect(url, autocommit=True, application_name="chaos") as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'durable_gen%' AND pid <> pg_backend_pid()"
            ).fetchall()
        return len(rows)

    problems: list[str] = []
    for _ in range(workers):
        new_worker()
    try:
        deadline = time.monotonic() + timeout
        done: dict[str, int] | None = None
        last_lines, last_change = 0, time.monotonic()
        while True:
            now_lines = progress()
            while plan and now_lines >= plan[0][0] * total:
                _, what = plan.pop(0)
                if what == "kill":
                    name = rng.choice(sorted(procs))
                    kill(procs.pop(name))
                    new_worker()
                    log(f"{now_lines}/{total} steps: SIGKILL {name}, started a new worker")
                elif what == "cut":
                    log(f"{now_lines}/{total} steps: terminated {cut()} backends")
                else:
                    t0 = time.monotonic()
                    assert restart_server is not None
                    restart_server()
                    log(
                        f"{now_lines}/{total} steps: restarted the server "
                        f"({time.monotonic() - t0:.1f} s)"
                    )
            for name, proc in list(procs.items()):
                if proc.poll() is not None:  # exited on its own: a bug; replaced
                    unplanned.append(f"{name} exited with {proc.returncode}")
                    procs.pop(name)
                    new_worker()
            counts = statuses()
            ended = sum((counts or {}).get(s, 0) for s in ("SUCCEEDED", "FAILED", "STOPPED"))
            if not plan and ended + (counts or {}).get("TIMED_OUT", 0) == executions:
                done = counts
                break
            if time.monotonic() > deadline:
                problems.append(
                    f"not all ended within {timeout:.0f} s: {counts}; the stuck ones:\n  "
                    + "\n  ".join(stuck())
                )
                break
            if now_lines != last_lines:
                last_lines, last_change = now_lines, time.monotonic()
            elif time.monotonic() - last_change > 5:
                log("no step ran for 5 s; not ended:\n  " + "\n  ".join(stuck()[:20]))
                if os.environ.get("DG_CHAOS_DEBUG"):
                    log(f"workers: {[(n, p.pid, p.poll()) for n, p in procs.items()]}")
                    with psycopg.connect(url, autocommit=True) as conn:
                        for r in conn.execute(
                            "SELECT pid, application_name, state, wait_event_type, wait_event, "
                            "left(query, 60) FROM pg_stat_activity WHERE datname = "
                            "current_database()"
                        ).fetchall():
                            log(f"  backend {r}")
                        for r in conn.execute(
                            "SELECT l.pid, l.locktype, l.objid, l.granted FROM pg_locks l "
                            "WHERE locktype = 'advisory'"
                        ).fetchall():
                            log(f"  lock {r}")
                last_change = time.monotonic()
            time.sleep(0.05)
        wall = time.monotonic() - started
    finally:
        for name, proc in procs.items():
            try:
                stop(proc, signal.SIGTERM)
            except AssertionError as e:
                problems.append(f"{name}: {e}")
    log(f"all ended ({done}) in {wall:.1f} s; checking")

    # ---------------------------------------------------------------- the checks
    store = PostgresStore(url)
    try:
        infos = {i.id: i for i in store.executions(limit=executions + 1)}
        histories = {ex: store.history(ex) for ex in infos}
        results = {ex: store.info(ex).result for ex in infos}
    finally:
        store.close()
    lost = []
    recorded: dict[tuple[str, int], str] = {}
    errors: collections.Counter[str] = collections.Counter()
    for n in range(executions):
        ex = f"ex{n}"
        info = infos.get(ex)
        if info is None:
            lost.append(f"{ex}: missing")
            continue
        events = histories[ex]
        kinds = collections.Counter(e["EventType"] for e in events)
        done_steps = [e["Name"] for e in events if e["EventType"] == "StepSucceeded"]
        for e in events:
            if e["EventType"] == "InvocationCompleted":
                error = e["InvocationCompletedDetails"].get("Error")
                if error:
                    errors[error.get("Payload", {}).get("ErrorType", "?")] += 1
        tokens = json.loads(results[ex] or "null")
        if (
            info.status != "SUCCEEDED"
            or kinds["ExecutionSucceeded"] != 1
            or done_steps != [f"s{i}" for i in range(steps)]
            or not isinstance(tokens, list)
            or len(tokens) != steps
        ):
            lost.append(f"{ex}: {info.status}, {kinds['StepSucceeded']} steps succeeded")
            continue
        for i, token in enumerate(tokens):
            recorded[(ex, i)] = token
    runs = [line.split() for line in side.read_text().splitlines()]
    by_step: dict[tuple[str, int], list[str]] = collections.defaultdict(list)
    for ex, i, _pid, token in runs:
        by_step[(ex, int(i))].append(token)
    rerun = []
    for key, token in recorded.items():
        tokens_run = by_step.get(key, [])
        if token not in tokens_run:
            rerun.append(f"{key}: the recorded run is not in the side-effect file")
        elif tokens_run.index(token) != len(tokens_run) - 1:
            rerun.append(f"{key}: ran again after the run that was recorded")
    duplicates = sum(len(t) - 1 for t in by_step.values())
    bound = kills * concurrency + (cuts + restarts) * workers * concurrency
    if lost:
        problems.append(f"{len(lost)} lost: {lost[:10]}")
    if rerun:
        problems.append(f"{len(rerun)} recorded successes re-run: {rerun[:10]}")
    if duplicates > bound:
        problems.append(f"{duplicates} steps ran more than once, more than the bound {bound}")
    if unplanned:
        problems.append(f"workers exited on their own: {unplanned}")
    for name in sorted({*procs, *(u.split()[0] for u in unplanned)}):
        if "Traceback" in read_log(workdir, name):
            problems.append(f"{name} printed a Traceback (see {workdir / name}.err)")
    return ChaosReport(
        workers=workers,
        concurrency=concurrency,
        executions=executions,
        steps=steps,
        kills=kills,
        cuts=cuts,
        restarts=restarts,
        seed=seed,
        lost=len(lost),
        rerun_recorded=len(rerun),
        duplicates=duplicates,
        duplicate_bound=bound,
        succeeded=sum(1 for i in infos.values() if i.status == "SUCCEEDED"),
        wall=wall,
        step_runs=len(runs),
        unplanned_exits=unplanned,
        invocation_errors=dict(errors),
        problems=problems,
    )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    from tests.postgres import _server

    p = argparse.ArgumentParser(prog="python -m benchmarks.postgres_chaos")
    for name, default in (
        ("workers", 4),
        ("executions", 200),
        ("steps", 20),
        ("kills", 10),
        ("cuts", 3),
        ("restarts", 1),
        ("concurrency", 8),
    ):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args(argv)
    url = _server.fresh_database("chaos")
    cluster = _server.cluster()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        settings = [
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        ]
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    print(f"server: PostgreSQL {version}, {', '.join(settings)}; {os.cpu_count()} CPUs")
    if a.restarts and cluster is None:
        p.error("server restarts need the throw-away cluster (unset DURABLE_GEN_PG_URL)")
    with tempfile.TemporaryDirectory(prefix="dg-chaos-") as d:
        report = run(
            url,
            Path(d),
            restart_server=None if cluster is None else cluster.restart,
            workers=a.workers,
            executions=a.executions,
            steps=a.steps,
            kills=a.kills,
            cuts=a.cuts,
            restarts=a.restarts,
            concurrency=a.concurrency,
            seed=a.seed,
            timeout=a.timeout,
            log=lambda m: print(m, flush=True),
        )
        print(report.table())
        if report.problems or os.environ.get("DG_CHAOS_DEBUG"):
            keep = Path(tempfile.mkdtemp(prefix="dg-chaos-kept-"))
            for f in Path(d).iterdir():
                (keep / f.name).write_bytes(f.read_bytes())
            print(f"files kept in {keep}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
