"""Durable throughput: durable_gen beside DBOS Transact and the raw SQLite commit rate.

    pip install -e '.[bench]'
    python -m benchmarks.throughput [--quick] [--rounds R] [--workers K]
        [--worker-cmd "durable-gen worker --once"] [--dbos-postgres URL] [--profile]

One Markdown table (issue 22), every cell measured in this run on this machine:

* **raw commit rate**: ``benchmarks.sqlite_forward.raw_commits_per_second`` -- one
  journal-row-sized INSERT per durable transaction, WAL, ``synchronous=FULL`` (the
  pragmas of durable_gen's store). It is the same figure on every row.
* **N sequential steps** (N = 1,000 and 5,000): this module's :func:`steps`, a
  workflow of N ``Step(noop, i, name="s")`` (at-least-once, the default: one
  commit per step), on a fresh database. In process: ``SqliteEngine(path).run``,
  timed around the call. Whole process: ``durable-gen run
  benchmarks.throughput:steps --input 5000 --db PATH``, timed from spawn to exit
  (interpreter start, imports, the run, close). DBOS: ``benchmarks.peers.dbos_peer``
  (``@DBOS.workflow`` calling an ``@DBOS.step`` N times; a fresh process per run;
  in process = the workflow call after launch and a warm-up, whole process = the
  child from spawn to exit).
* **W x S** (100 workflows of 20 steps): durable_gen starts W executions with
  ``SqliteEngine(path).start(steps, S)`` (one durable row each), then runs
  ``--workers`` processes of ``--worker-cmd`` (default one ``durable-gen worker
  --once``: today's worker advances due executions one after the other), timed from
  the first start to the last worker's exit; the in-process row runs
  ``SqliteEngine.work(once=True)`` instead of the processes. DBOS: the W workflows
  enqueued on a queue with ``worker_concurrency=32`` (and, second row, started with
  ``DBOS.start_workflow``, one executor thread each), timed from the first start
  until every handle's ``get_result()`` has returned (enqueued ones polled every
  50 ms).
* **what-if**: DBOS with its SQLite file created in WAL mode before it opens it
  (WAL persists in the file; ``synchronous`` stays FULL), i.e. at durable_gen's
  pragmas -- not DBOS's default, to separate the journal mode from the engine.
* **Postgres** (``--dbos-postgres URL``, optional): DBOS's N-step row on a Postgres
  server, its production backend (a fresh database per run, dropped after; the
  server's own durability settings are read and printed). Not run by default.
* **peak RSS** of the whole 5,000-step process: ``ru_maxrss`` (``os.wait4``) of the
  ``durable-gen run`` child and of the DBOS child, each forked by the same small
  launcher (``benchmarks.peers.dbos_peer.measured_run``: spawned straight from
  this process, a child's ``ru_maxrss`` would include this process's own peak).
  The launcher's floor (``/bin/true`` through it) is printed under the table.

Rounds are interleaved (each round runs every cell once, in rotating order);
medians are printed. Durability of both sides is read from the live databases
(``PRAGMA journal_mode`` / ``synchronous``) and printed under the table, with a
second raw rate using DBOS's settings (rollback journal, FULL) for reference.

``--profile`` prints a cProfile of one in-process 5,000-step durable_gen run, the
run's CPU time beside its wall time, and the rate with ``synchronous=NORMAL`` (no
fsync per commit in WAL mode), to show where a step's time goes.
"""

from __future__ import annotations

from durable_gen import Step


def noop(i):
    """The step body (the same as ``benchmarks.peers.noop``; defined here so that a
    worker importing this workflow file imports nothing else of the harness)."""
    return i


def steps(n):
    """N sequential steps, results summed: the workflow every durable_gen row runs."""
    total = 0
    for i in range(n):
        total += yield Step(noop, i, name="s")
    return total


TARGET = "benchmarks.throughput:steps"

#: The worker command durable_gen's W x S row runs (``--db PATH`` is appended).
#: Today's worker takes due executions one after the other; when the worker gets a
#: pool (e.g. ``--concurrency``), pass its command line with ``--worker-cmd`` (and
#: ``--workers`` for several processes) -- nothing else here needs to change.
WORKER_CMD = "durable-gen worker --once"


# -- everything below is the harness; imported lazily so a worker loading the
# -- workflow above does not pay for it.


def _imports():
    import os
    import shlex
    import statistics
    import subprocess
    import sys
    import time

    return os, shlex, statistics, subprocess, sys, time


def _root():
    import os

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    import os

    root = _root()
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


def _cli(args):
    """``durable-gen ARGS`` (the console script beside this interpreter, else ``-m``)."""
    import os
    import shlex
    import sys

    if isinstance(args, str):
        args = shlex.split(args)
    if args and args[0] == "durable-gen":
        script = os.path.join(os.path.dirname(sys.executable), "durable-gen")
        head = [script] if os.path.exists(script) else [sys.executable, "-m", "durable_gen"]
        return head + list(args[1:])
    return list(args)


def _fresh(directory, name):
    from benchmarks.sqlite_forward import _fresh

    return _fresh(directory, name)


# -- durable_gen cells ------------------------------------------------------------------


def raw_rate(directory, n):
    """Raw durable commits/s with durable_gen's pragmas (WAL, FULL): sqlite_forward's own."""
    from benchmarks.sqlite_forward import raw_commits_per_second

    return raw_commits_per_second(directory, n, "FULL")


def raw_rate_dbos_pragmas(directory, n):
    """The same raw row and statement as ``sqlite_forward``, on SQLite's defaults as DBOS
    leaves them: rollback journal (``journal_mode=DELETE``), ``synchronous=FULL``."""
    import sqlite3
    import time

    from benchmarks.sqlite_forward import _EVENTS, _OPS, _RAW_INSERT

    conn = sqlite3.connect(_fresh(directory, "raw_delete.db"), isolation_level=None)
    mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    conn.execute("PRAGMA synchronous = FULL")
    assert mode == "delete", mode
    conn.execute("CREATE TABLE journal (key INTEGER PRIMARY KEY, ops TEXT, events TEXT)")
    t0 = time.perf_counter()
    for i in range(n):
        conn.execute(_RAW_INSERT, ((1 << 32) | i, f"{_OPS}{i:08d}", f"{_EVENTS}{i:08d}"))
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def dg_in_process(directory, n, synchronous="FULL"):
    """``SqliteEngine.run`` of N steps on a fresh database: (steps/s, CPU s, wall s)."""
    import time

    from durable_gen._engine.sqlite import SqliteEngine
    from durable_gen._stores.sqlite import SqliteStore

    engine = SqliteEngine(store=SqliteStore(_fresh(directory, "dg.db"), synchronous=synchronous))
    c0, t0 = time.process_time(), time.perf_counter()
    result = engine.run(steps, n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.close()
    if result.status != "SUCCEEDED" or result.result != n * (n - 1) // 2:
        raise AssertionError(f"durable_gen run ended {result.status}: {result.error}")
    return n / wall, cpu, wall


def dg_durability(directory):
    """journal_mode and synchronous on a connection of durable_gen's own store."""
    from durable_gen._stores.sqlite import SqliteStore

    store = SqliteStore(_fresh(directory, "pragmas.db"))
    try:
        conn = store._conn  # private: the connection the store commits on
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        store.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal, "synchronous": f"{sync} ({names.get(sync, '?')})"}


def dg_cli_run(directory, n):
    """``durable-gen run`` of N steps as a whole process: (steps/s, wall s, peak RSS MiB).

    Run from ``dbos_peer.measured_run``'s launcher: wall from fork to exit, peak RSS
    the child's ``ru_maxrss`` from ``os.wait4``."""
    from benchmarks.peers.dbos_peer import measured_run

    path = _fresh(directory, "dg_cli.db")
    run = measured_run(_cli(["durable-gen", "run", TARGET, "--input", str(n), "--db", path]))
    out = run["stdout"]
    if run["rc"] or out.strip() != str(n * (n - 1) // 2):
        raise AssertionError(f"durable-gen run exited {run['rc']}: {out!r} {run['stderr']!r}")
    return n / run["process_s"], run["process_s"], run["rss_peak_mib"]


def dg_fanout(directory, workflows, steps_each, worker_cmd=WORKER_CMD, workers=1):
    """Start W executions, then run ``workers`` worker processes (``worker_cmd``), or
    with ``worker_cmd=None`` ``SqliteEngine.work(once=True)`` in this process.

    Returns (steps/s from the first start to the end, start s, total s)."""
    import subprocess
    import time

    from durable_gen._engine.sqlite import SqliteEngine
    from durable_gen._stores.sqlite import SqliteStore

    path = _fresh(directory, "dg_fan.db")
    engine = SqliteEngine(path)
    t0 = time.perf_counter()
    # An explicit target: run as ``python -m``, this module is ``__main__`` here.
    ids = [
        engine.start(steps, steps_each, target=TARGET, workdir=_root()) for _ in range(workflows)
    ]
    started = time.perf_counter() - t0
    errors = ""
    if worker_cmd is None:
        engine.work(once=True)
        engine.close()
    else:
        engine.close()
        cmd = [*_cli(worker_cmd), "--db", path]
        procs = [
            subprocess.Popen(
                cmd, cwd=_root(), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            for _ in range(workers)
        ]
        for proc in procs:
            _, err = proc.communicate()
            err = err.decode()
            errors += err
            if proc.returncode:
                raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}: {err}")
    total = time.perf_counter() - t0
    expected = steps_each * (steps_each - 1) // 2
    with SqliteStore(path, create=False) as store:
        for ex in ids:
            status, payload, error = store.status(ex)
            if status != "SUCCEEDED" or int(payload) != expected:
                raise AssertionError(
                    f"execution {ex} ended {status}: {payload} {error}; workers said: {errors}"
                )
    return workflows * steps_each / total, started, total


# -- the table --------------------------------------------------------------------------


def _rate(x):
    return f"{x:,.0f}"


def _x(a, b):
    return f"{a / b:.2f}x" if a / b < 10 else f"{a / b:.1f}x"


def _print_stats(prof, title, key, restrict=()):
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(*restrict, 18)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print(f"{title}:\n")
    print("```")
    print("\n".join(lines[start : start + 19]))
    print("```\n")


def _commits_per_execution(directory, workflows, steps_each):
    """Durable commits per execution: start, then ``work(once=True)`` in process.

    Counted with a trace callback on the store's connection (private ``_conn``): a
    COMMIT, or an INSERT/UPDATE/DELETE run outside a transaction (autocommit)."""
    import collections

    from durable_gen._engine.sqlite import SqliteEngine

    engine = SqliteEngine(_fresh(directory, "dg_count.db"))
    conn = engine.store._conn
    counts = collections.Counter()

    def trace(sql):
        words = sql.split()
        verb = words[0].upper() if words else ""
        if verb == "COMMIT":
            counts["in explicit transactions"] += 1
        elif verb in ("INSERT", "UPDATE", "DELETE") and not conn.in_transaction:
            table = words[1] if verb == "UPDATE" else words[2]
            counts[f"autocommit {verb} {table}"] += 1

    conn.set_trace_callback(trace)
    for _ in range(workflows):
        engine.start(steps, steps_each, target=TARGET, workdir=_root())
    engine.work(once=True)
    conn.set_trace_callback(None)
    engine.close()
    out = {k: v / workflows for k, v in counts.items()}
    out["total"] = sum(counts.values()) / workflows
    return out


def profile(directory, n, workflows=100, steps_each=20):
    """cProfile of one in-process run of N steps; CPU vs wall; the rate without fsync;
    then the in-process W x S run, its store and engine calls by cumulative time."""
    import cProfile

    dg_in_process(directory, 100)  # warm-up
    rate, cpu, wall = dg_in_process(directory, n)
    normal = dg_in_process(directory, n, synchronous="NORMAL")
    print(
        f"\n### Where the time goes: {n:,} steps in process\n\n"
        f"- synchronous=FULL: {rate:,.0f} steps/s, wall {wall * 1e6 / n:.1f} µs/step, "
        f"CPU {cpu * 1e6 / n:.1f} µs/step (wall - CPU = waiting, mostly for fsync: "
        f"{(wall - cpu) * 1e6 / n:.1f} µs/step)\n"
        f"- synchronous=NORMAL (WAL: no fsync per commit): {normal[0]:,.0f} steps/s, "
        f"CPU {normal[1] * 1e6 / n:.1f} µs/step\n"
    )
    prof = cProfile.Profile()
    prof.enable()
    dg_in_process(directory, n)
    prof.disable()
    for key in ("tottime", "cumulative"):
        _print_stats(
            prof, f"cProfile, by {key} (synchronous=FULL; cProfile inflates Python calls)", key
        )
    fan = dg_fanout(directory, workflows, steps_each, None)
    per_ex = (fan[2] - workflows * steps_each / rate) / workflows
    commits = _commits_per_execution(directory, 10, steps_each)
    print(
        f"### {workflows} x {steps_each} in process: {fan[0]:,.0f} steps/s, {fan[2]:.2f} s; "
        f"beyond {workflows * steps_each:,} steps at the sequential rate, "
        f"{per_ex * 1e3:.2f} ms per execution. Durable commits per execution of "
        f"{steps_each} steps (sqlite3 trace of the store's connection): "
        + ", ".join(f"{k} {v:g}" for k, v in commits.items())
        + "\n"
    )
    prof = cProfile.Profile()
    prof.enable()
    dg_fanout(directory, workflows, steps_each, None)
    prof.disable()
    _print_stats(
        prof,
        "cProfile of it, store and engine calls by cumulative time",
        "cumulative",
        (r"_sqlite|_durable|_engine",),
    )


def main(argv=None):
    import argparse
    import os
    import statistics
    import sys
    import tempfile
    import time

    from benchmarks.peers import PeerUnavailable, dbos_peer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    parser.add_argument("--rounds", type=int, default=0, help="rounds (default 5; quick 1)")
    parser.add_argument(
        "--worker-cmd",
        default=WORKER_CMD,
        help=f"durable_gen's worker command line; --db PATH is appended ({WORKER_CMD!r})",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes at once (1)")
    parser.add_argument("--concurrency", type=int, default=32, help="DBOS worker_concurrency")
    parser.add_argument("--no-dbos", action="store_true", help="durable_gen and raw SQLite only")
    parser.add_argument(
        "--dbos-postgres",
        metavar="URL",
        help="also run DBOS's N-step row on this Postgres server (a what-if row: its "
        "production backend), e.g. postgresql+psycopg://postgres@/?host=/tmp/pg&port=5432",
    )
    parser.add_argument("--profile", action="store_true", help="also profile durable_gen")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (1 if quick else 5)
    small, big = (200, 1000) if quick else (1000, 5000)
    workflows, steps_each = (20, 20) if quick else (100, 20)
    fan = f"{workflows} x {steps_each}"

    use_dbos = not args.no_dbos
    if use_dbos:
        try:
            dbos_peer.available()
        except PeerUnavailable as e:
            print(f"> note: DBOS skipped: {e}")
            use_dbos = False

    print(
        f"# Throughput vs DBOS ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {rounds} "
        f"interleaved rounds)\n"
    )
    if use_dbos:
        print(f"Peer: {dbos_peer.version()}\n")

    cells = {}
    samples = {}

    def cell(name, fn):
        cells[name] = fn
        samples[name] = []

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        dg_in_process(d, 100)  # warm-up: imports, first-call caches
        cell("raw", lambda: raw_rate(d, big))
        cell("raw_delete", lambda: raw_rate_dbos_pragmas(d, max(small, 1000)))
        cell("dg_small", lambda: dg_in_process(d, small))
        cell("dg_big", lambda: dg_in_process(d, big))
        cell("dg_cli", lambda: dg_cli_run(d, big))
        cell(
            "dg_fan_proc",
            lambda: dg_fanout(d, workflows, steps_each, args.worker_cmd, args.workers),
        )
        cell("dg_fan_inproc", lambda: dg_fanout(d, workflows, steps_each, None))
        if use_dbos:
            cell("dbos_small", lambda: dbos_peer.sequential(small))
            cell("dbos_big", lambda: dbos_peer.sequential(big))
            cell("dbos_big_wal", lambda: dbos_peer.sequential(big, "wal"))
            if args.dbos_postgres:
                cell("dbos_big_pg", lambda: dbos_peer.sequential(big, "pg=" + args.dbos_postgres))
            cell(
                "dbos_queue",
                lambda: dbos_peer.fanout(workflows, steps_each, "queue", args.concurrency),
            )
            cell("dbos_start", lambda: dbos_peer.fanout(workflows, steps_each, "start"))
        names = list(cells)
        loads = [os.getloadavg()[0]]
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                samples[name].append(cells[name]())
            loads.append(os.getloadavg()[0])
            print(f"> round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
        dg_dur = dg_durability(d)
        profile_dir = d if args.profile else None

        def med(name, key):
            vals = samples.get(name)
            return statistics.median(key(v) for v in vals) if vals else None

        raw = med("raw", lambda v: v)
        raw_delete = med("raw_delete", lambda v: v)
        rows = [
            (
                f"{small:,} sequential steps, in process (steps/s)",
                med("dg_small", lambda v: v[0]),
                med("dbos_small", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"{big:,} sequential steps, in process (steps/s)",
                med("dg_big", lambda v: v[0]),
                med("dbos_big", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"{big:,} sequential steps, in process; DBOS's file put in WAL mode first "
                "(not its default) (steps/s)",
                med("dg_big", lambda v: v[0]),
                med("dbos_big_wal", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"{big:,} sequential steps, in process; DBOS on a local Postgres server "
                "(its production backend; durable_gen on SQLite as above) (steps/s)",
                med("dg_big", lambda v: v[0]),
                med("dbos_big_pg", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"{big:,} sequential steps, whole process: `durable-gen run` / DBOS script "
                "(steps/s)",
                med("dg_cli", lambda v: v[0]),
                med("dbos_big", lambda v: big / v["process_s"]),
                True,
            ),
            (
                f"{fan}, start then execute: `{args.worker_cmd}` x{args.workers} / DBOS "
                f"queue, worker_concurrency={args.concurrency} (steps/s)",
                med("dg_fan_proc", lambda v: v[0]),
                med("dbos_queue", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"{fan}, start then execute: in-process `SqliteEngine.work(once=True)` / DBOS "
                "`start_workflow` (thread per workflow) (steps/s)",
                med("dg_fan_inproc", lambda v: v[0]),
                med("dbos_start", lambda v: v["steps_per_s"]),
                True,
            ),
            (
                f"peak RSS of the {big:,}-step process (MiB; lower is better)",
                med("dg_cli", lambda v: v[2]),
                med("dbos_big", lambda v: v["rss_peak_mib"]),
                False,
            ),
        ]
        header = [
            "scenario",
            "durable_gen",
            "DBOS",
            "raw commit rate",
            "durable_gen/raw",
            "durable_gen/DBOS",
        ]
        print("| " + " | ".join(header) + " |")
        print("|---|---:|---:|---:|---:|---:|")
        # The what-if rows (DBOS on WAL, on Postgres) only when they were run.
        rows = [
            r
            for r in rows
            if r[2] is not None or not ("Postgres" in r[0] or "WAL mode first" in r[0])
        ]
        for label, dg, db, is_rate in rows:
            fmt = _rate if is_rate else (lambda x: f"{x:,.1f}")
            cells_out = [
                label,
                fmt(dg),
                fmt(db) if db is not None else "not run",
                _rate(raw) if is_rate else "n/a",
                _x(dg, raw) if is_rate else "n/a",
                _x(dg, db) if db is not None else "n/a",
            ]
            print("| " + " | ".join(cells_out) + " |")

        dg_rounds = " ".join(
            f"{v[0]:,.0f} ({v[0] / r:.2f}x)"
            for v, r in zip(samples["dg_big"], samples["raw"], strict=True)
        )
        print(
            "\nLoad average (1 min; other processes on this shared machine) before the first "
            "round and after each: " + " ".join(f"{x:.1f}" for x in loads) + "."
        )
        print(
            f"durable_gen {big:,} steps in process per round (vs that round's raw rate): "
            f"{dg_rounds}."
        )
        print(
            f"Raw commit rate: `benchmarks.sqlite_forward.raw_commits_per_second` "
            f"({big:,} step-sized INSERTs, one durable commit each, WAL, synchronous=FULL), "
            f"per round: {' '.join(_rate(v) for v in samples['raw'])}."
        )
        print(
            f"The same raw loop with DBOS's settings (journal_mode=DELETE, synchronous=FULL): "
            f"{_rate(raw_delete)} commits/s (per round "
            f"{' '.join(_rate(v) for v in samples['raw_delete'])})"
            + (
                f"; DBOS's {big:,}-step rate is {_x(rows[1][2], raw_delete)} of it."
                if use_dbos
                else "."
            )
        )
        dur = (
            f"Durability read from the live databases: durable_gen journal_mode="
            f"{dg_dur['journal_mode']}, synchronous={dg_dur['synchronous']}"
        )
        if use_dbos:
            s = samples["dbos_big"][0]
            dur += (
                f"; DBOS journal_mode={s['journal_mode']}, synchronous={s['synchronous']}, "
                f"isolation_level={s['isolation_level']}, each step committed before the next "
                f"(probe): {s['step_committed_before_next']}"
            )
            w = samples["dbos_big_wal"][0]
            dur += (
                f"; DBOS what-if row: journal_mode={w['journal_mode']}, "
                f"synchronous={w['synchronous']}"
            )
            if "dbos_big_pg" in samples:
                p = samples["dbos_big_pg"][0]
                dur += f"; DBOS Postgres row: {p['journal_mode']}, {p['synchronous']}"
        print(dur + ".")
        fan_parts = [
            (
                "durable_gen start phase (s, processes / in-process): "
                + " ".join(f"{v[1]:.2f}" for v in samples["dg_fan_proc"])
                + " / "
                + " ".join(f"{v[1]:.2f}" for v in samples["dg_fan_inproc"])
            ),
            (
                "durable_gen total (s): "
                + " ".join(f"{v[2]:.2f}" for v in samples["dg_fan_proc"])
                + " / "
                + " ".join(f"{v[2]:.2f}" for v in samples["dg_fan_inproc"])
            ),
        ]
        if use_dbos:
            for name in ("dbos_queue", "dbos_start"):
                vs = samples[name]
                fan_parts.append(
                    f"DBOS {vs[0]['mode']}: start phase "
                    + " ".join(f"{v['start_seconds']:.2f}" for v in vs)
                    + " s, to the last result "
                    + " ".join(f"{v['seconds']:.2f}" for v in vs)
                    + " s"
                )
        print(f"{fan} per round: " + "; ".join(fan_parts) + ".")
        cpu_note = (
            f"CPU per step in the {big:,}-step in-process runs (process time, all threads; "
            "µs): durable_gen " + " ".join(f"{v[1] * 1e6 / big:.0f}" for v in samples["dg_big"])
        )
        if use_dbos:
            for name, what in (
                ("dbos_big", "DBOS"),
                ("dbos_big_wal", "DBOS on WAL"),
                ("dbos_big_pg", "DBOS on Postgres"),
            ):
                if name not in samples:
                    continue
                cpu_note += f"; {what} " + " ".join(
                    f"{v['cpu_s'] * 1e6 / big:.0f}" for v in samples[name]
                )
        print(cpu_note + ".")
        floor = dbos_peer.spawn_floor_mib()
        rss_note = "Peak RSS per round (MiB): durable-gen run " + " ".join(
            f"{v[2]:.1f}" for v in samples["dg_cli"]
        )
        if use_dbos:
            vs = samples["dbos_big"]
            rss_note += (
                "; DBOS child "
                + " ".join(f"{v['rss_peak_mib']:.1f}" for v in vs)
                + " (its own getrusage "
                + " ".join(f"{v['self_ru_maxrss_mib']:.1f}" for v in vs)
                + ", VmHWM "
                + " ".join(f"{v['vmhwm_mib']:.1f}" for v in vs if v["vmhwm_mib"])
                + ")"
            )
        print(rss_note + f"; the launcher's floor (/bin/true): {floor:.1f}.")
        if use_dbos:
            print(
                f"DBOS {big:,}-step child, whole process (s): "
                + " ".join(f"{v['process_s']:.2f}" for v in samples["dbos_big"])
                + "; durable-gen run (s): "
                + " ".join(f"{v[1]:.2f}" for v in samples["dg_cli"])
                + "."
            )
        if profile_dir is not None:
            profile(profile_dir, big, workflows, steps_each)


if __name__ == "__main__":
    main()
