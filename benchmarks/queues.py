"""Queue dispatch overhead per execution: durable_gen's queues beside DBOS's.

    python -m benchmarks.queues [--executions 1000] [--rounds 3] [--concurrency 8]
        [--no-dbos]
    python -m benchmarks.queues child LIBRARY MODE N C   # one run, JSON out

Workload: N executions of a one-step workflow (the step returns its argument,
``benchmarks.peers.noop``), each library on a SQLite file in a fresh temporary
directory, every run in a fresh process (DBOS keeps one global instance per
process). Timed: from just before the first start until every execution has
ended (results checked). Each library runs it twice in the same round:

* ``direct``: started without a queue;
* ``queue``: started onto a queue with no limits, so that only the dispatch
  differs.

The overhead per execution is ``(queue - direct) / N``; the table gives each
median and the ratio of the two libraries' figures measured in the same run.

durable_gen: ``SqliteEngine(path)``; N ``engine.start(one_step, i)`` (``queue=``
a ``Queue("bench")`` declared before the clock starts), then ``engine.work(
once=True, concurrency=C)`` until nothing is due. DBOS: ``DBOS.start_workflow``
(its executor runs each at once, one thread per workflow) or
``DBOS.enqueue_workflow`` on ``DBOS.register_queue("bench", polling_interval_sec=
P)`` (no limits), under ``SetWorkflowID``; then every ``handle.get_result()``
(enqueued ones polled every 50 ms, as in ``benchmarks.peers.dbos_peer``). DBOS's
queue polls the database every ``polling_interval_sec`` (1 s by default); the
run uses 0.05 s (``DBOS_POLL``) so that the figure is its dispatch, not its
default sleep. durable_gen's workers poll too (``--poll``, 0.5 s), but a worker
that finds work looks again at once, so ``work(once=True)`` does not wait on it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from benchmarks.peers import PeerUnavailable, noop

QUEUE = "bench"
DBOS_POLL = 0.05  # DBOS's queue polling interval here (its default is 1 s)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_step(i: int):  # type: ignore[no-untyped-def]
    """The workflow: one step returning its argument."""
    from durable_gen import Step

    return (yield Step(noop, i, name="s"))


def child_durable_gen(mode: str, n: int, concurrency: int) -> dict[str, Any]:
    from benchmarks.queues import one_step  # importable by name, not as __main__'s
    from durable_gen._engine.queues import Queue
    from durable_gen._engine.sqlite import SqliteEngine

    with (
        tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d,
        SqliteEngine(os.path.join(d, "q.db")) as engine,
    ):
        if mode == "queue":
            engine.add_queue(Queue(QUEUE))
        engine.run(one_step, -1)  # warm-up: imports, the connection, the first write
        queued = {"queue": QUEUE} if mode == "queue" else {}
        t0 = time.perf_counter()
        ids = [engine.start(one_step, i, **queued) for i in range(n)]
        started = time.perf_counter() - t0
        ended = engine.work(once=True, concurrency=concurrency)
        seconds = time.perf_counter() - t0
        results = [engine.store.info(i).result for i in ids]
    if ended != n or results != [json.dumps(i) for i in range(n)]:
        raise AssertionError(f"durable_gen: {ended} of {n} ended, results {results[:3]}...")
    return {"start_s": started, "seconds": seconds}


def child_dbos(mode: str, n: int) -> dict[str, Any]:
    from dbos import DBOS, SetWorkflowID

    from benchmarks.peers.dbos_peer import POLL, _launch

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        fns, _ = _launch(d)
        try:
            if fns["steps"](1) != 0:  # warm-up
                raise AssertionError("DBOS warm-up workflow returned a wrong sum")
            if mode == "queue":
                DBOS.register_queue(QUEUE, polling_interval_sec=DBOS_POLL)
                deadline = time.monotonic() + 10  # its worker thread starts within 1 s
                while not any(t.name == f"queue-worker-{QUEUE}" for t in threading.enumerate()):
                    if time.monotonic() > deadline:
                        raise AssertionError("DBOS did not start a worker for the queue")
                    time.sleep(0.01)
            t0 = time.perf_counter()
            handles = []
            for k in range(n):
                with SetWorkflowID(f"bench-{k}"):
                    if mode == "queue":
                        handles.append(DBOS.enqueue_workflow(QUEUE, fns["steps"], 1))
                    else:
                        handles.append(DBOS.start_workflow(fns["steps"], 1))
            started = time.perf_counter() - t0
            results = [h.get_result(polling_interval_sec=POLL) for h in handles]
            seconds = time.perf_counter() - t0
        finally:
            DBOS.destroy()
    if results != [0] * n:
        raise AssertionError(f"DBOS results: {results[:3]}...")
    return {"start_s": started, "seconds": seconds}


def run_child(library: str, mode: str, n: int, concurrency: int) -> dict[str, Any]:
    """One run in a fresh process; its JSON."""
    cmd = [sys.executable, "-m", "benchmarks.queues", "child", library, mode, str(n)]
    cmd.append(str(concurrency))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        cmd, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def measure(
    n: int, rounds: int, concurrency: int, libraries: list[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``rounds`` interleaved rounds of every (library, mode); samples by library, mode."""
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        lib: {"direct": [], "queue": []} for lib in libraries
    }
    cells = [(lib, mode) for lib in libraries for mode in ("direct", "queue")]
    for r in range(rounds):
        for lib, mode in cells[r % len(cells) :] + cells[: r % len(cells)]:
            samples[lib][mode].append(run_child(lib, mode, n, concurrency))
    return samples


def table(samples: dict[str, dict[str, list[dict[str, Any]]]], n: int) -> str:
    """The Markdown table: µs per execution, started directly and on a queue (median,
    and the fastest run in brackets: this VM's speed drifts, the ratios are the result)."""

    def med(lib: str, mode: str, key: str = "seconds") -> float:
        return statistics.median(s[key] for s in samples[lib][mode]) / n * 1e6

    def best(lib: str, mode: str) -> float:
        return min(s["seconds"] for s in samples[lib][mode]) / n * 1e6

    names = {"durable_gen": "durable_gen", "dbos": "DBOS"}
    lines = [
        "| library | direct µs/exec | on a queue µs/exec | queue overhead µs/exec "
        "| start µs/exec (direct / queue) |",
        "|---|---:|---:|---:|---:|",
    ]
    overhead = {}
    for lib in samples:
        direct, queued = med(lib, "direct"), med(lib, "queue")
        overhead[lib] = queued - direct
        fastest = best(lib, "queue") - best(lib, "direct")
        starts = f"{med(lib, 'direct', 'start_s'):.0f} / {med(lib, 'queue', 'start_s'):.0f}"
        lines.append(
            f"| {names[lib]} | {direct:.0f} ({best(lib, 'direct'):.0f}) | {queued:.0f} "
            f"({best(lib, 'queue'):.0f}) | {overhead[lib]:+.0f} ({fastest:+.0f}) | {starts} |"
        )
    if "dbos" in samples:
        dg, db = med("durable_gen", "queue"), med("dbos", "queue")
        lines.append("")
        lines.append(
            f"On a queue, durable_gen takes {dg:.0f} µs per execution and DBOS {db:.0f} µs: "
            f"DBOS takes {db / dg:.2f}x as long (fastest runs: "
            f"{best('dbos', 'queue') / best('durable_gen', 'queue'):.2f}x). Queue overhead "
            f"(median): durable_gen {overhead['durable_gen']:+.0f} µs, DBOS "
            f"{overhead['dbos']:+.0f} µs per execution."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["child"]:
        library, mode, n, concurrency = (
            args_list[1],
            args_list[2],
            int(args_list[3]),
            int(args_list[4]),
        )
        if library == "durable_gen":
            out = child_durable_gen(mode, n, concurrency)
        else:
            out = child_dbos(mode, n)
        print(json.dumps(out))
        return {}
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queues", description=__doc__)
    parser.add_argument("--executions", type=int, default=1000, metavar="N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, metavar="C")
    parser.add_argument("--no-dbos", action="store_true", help="durable_gen only")
    args = parser.parse_args(args_list)
    libraries = ["durable_gen"]
    if not args.no_dbos:
        try:
            from benchmarks.peers import dbos_peer

            dbos_peer.available()
            print(f"Peer: {dbos_peer.version()}")
            libraries.append("dbos")
        except PeerUnavailable as e:
            print(f"DBOS left out: {e}")
    samples = measure(args.executions, args.rounds, args.concurrency, libraries)
    print(
        f"\n### Queue dispatch: {args.executions} one-step executions, median of "
        f"{args.rounds} (durable_gen work concurrency {args.concurrency})\n"
    )
    print(table(samples, args.executions))
    return samples


if __name__ == "__main__":
    main()
