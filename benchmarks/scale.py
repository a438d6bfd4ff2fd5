"""Scale: an execution of 10,000 to 100,000 operations, read and replayed (issue 22).

    python -m benchmarks.scale [--sizes 10000,50000,100000] [--keep DIR] [--save F.json]
                               [--compare BEFORE.json] [--only show,history,...]

Builds, once per size, a database holding one execution of N sequential tiny steps
(``steps_then_wait``: N ``Step(noop)``, then a year-long Wait, so it is suspended
with N+2 operations and 2N+3 history events); ``--keep DIR`` keeps the files for the
next run. Then, each in a fresh child process (so that its peak RSS is its own):

- ``show``, ``history``, ``history --json``: the ``durable-gen`` command, stdout to
  /dev/null;
- ``http history`` / ``http state``: ``durable-gen serve``'s
  GetDurableExecutionHistory and GetDurableExecutionState on a fresh server: the
  first page (``MaxItems=1000``; its time is the ``first`` column), then 20 more
  pages following ``NextMarker`` (median time per page: ``per page``);
- ``replay``: the resumed invocation (``engine.invoke_once``): load the log, replay
  N steps, suspend again at the Wait.

Seconds are wall time of the whole child (interpreter start included, ~0.1 s) but
for the HTTP rows, which are the per-request times; peak MiB is the child's
``ru_maxrss``. ``--save`` writes the figures as JSON, ``--compare`` prints them
beside a saved run (e.g. one made on the previous version of the code:
``git archive HEAD | tar -x -C /tmp/before`` and ``PYTHONPATH=/tmp/before``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from durable_gen import Step, Wait, Workflow

EXECUTION = "big"
ROOT = Path(__file__).parents[1]


def noop(i: int) -> int:
    return i


def steps_then_wait(n: int) -> Workflow[int]:
    """N sequential tiny steps, then a Wait of a year (the execution stays suspended)."""
    total = 0
    for i in range(n):
        total += yield from Step(noop, i, name="s")
    yield Wait(seconds=365 * 86400)
    return total


def build(path: Path, n: int) -> float:
    """Record one execution of ``steps_then_wait(n)`` at ``path``; seconds taken."""
    from durable_gen._engine.sqlite import SqliteEngine
    from durable_gen._stores.sqlite import SqliteStore

    t0 = time.perf_counter()
    with SqliteEngine(store=SqliteStore(path, synchronous="NORMAL")) as engine:
        engine.start(steps_then_wait, n, execution_id=EXECUTION)
        outcome = engine.invoke_once(steps_then_wait, EXECUTION)
        assert outcome.status == "PENDING", outcome
    return time.perf_counter() - t0


def _child_env(pythonpath: str | None) -> dict[str, str]:
    path = [p for p in (pythonpath, str(ROOT)) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``args``; (wall seconds, peak RSS MiB, stdout) of the child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # read stdout while it runs (a pipe that fills would block the child)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    # maxima of RUSAGE_CHILDREN do not subtract: each child reports its own peak
    if proc.returncode != 0:
        raise RuntimeError(f"{args!r} failed ({proc.returncode}): {err.decode()[-2000:]}")
    peak = _peak_from(err.decode())
    return wall, peak, out.decode()


_PEAK = "__peak_rss_kib="


def _peak_from(stderr: str) -> float:
    for line in stderr.splitlines():
        if line.startswith(_PEAK):
            return int(line[len(_PEAK) :]) / 1024
    raise RuntimeError(f"the child did not report its peak RSS: {stderr[-500:]}")


_CLI = """
def _hwm():
    # VmHWM: the peak RSS of this process image (ru_maxrss would include the RSS the
    # parent had when it forked it: Linux keeps that maximum across fork and exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
import atexit, sys
atexit.register(lambda: print("{peak}%d" % _hwm(),
                              file=sys.stderr))
from durable_gen._cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
sys.exit(code)
""".replace("{peak}", _PEAK)

_HTTP = """
def _hwm():
    # VmHWM: the peak RSS of this process image (ru_maxrss would include the RSS the
    # parent had when it forked it: Linux keeps that maximum across fork and exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
import json, statistics, sys, threading, time, urllib.parse, urllib.request
from durable_gen._http.serve import make_server
db, route, pages = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = make_server("127.0.0.1", 0, db=db, functions={})
threading.Thread(target=server.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d/2025-12-01/durable-executions/big/%s" % (
    server.server_address[1], route)
times, marker, n = [], None, 0
for _ in range(pages + 1):
    q = {"MaxItems": "1000"}
    if route == "state":
        q["CheckpointToken"] = "any"
    if marker:
        q["Marker"] = marker
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + "?" + urllib.parse.urlencode(q)) as r:
        body = json.loads(r.read())
    times.append(time.perf_counter() - t0)
    n += len(body["Events" if route == "history" else "Operations"])
    marker = body.get("NextMarker")
    if not marker:
        break
server.shutdown()
print(json.dumps({"first": times[0], "per_page": statistics.median(times[1:] or times),
                  "items": n, "pages": len(times)}))
print("{peak}%d" % _hwm(), file=sys.stderr)
""".replace("{peak}", _PEAK)

_REPLAY = """
def _hwm():
    # VmHWM: the peak RSS of this process image (ru_maxrss would include the RSS the
    # parent had when it forked it: Linux keeps that maximum across fork and exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
import json, sys, time
from durable_gen._engine.sqlite import SqliteEngine
from benchmarks.scale import steps_then_wait
with SqliteEngine(sys.argv[1]) as engine:
    t0 = time.perf_counter()
    outcome = engine.invoke_once(steps_then_wait, "big")
    took = time.perf_counter() - t0
assert outcome.status == "PENDING" and outcome.steps_run == 0, outcome
print(json.dumps({"seconds": took}))
print("{peak}%d" % _hwm(), file=sys.stderr)
""".replace("{peak}", _PEAK)

COMMANDS = {
    "show": ["show", EXECUTION],
    "history": ["history", EXECUTION],
    "history --json": ["history", EXECUTION, "--json"],
}


def measure(db: Path, n: int, only: set[str], pythonpath: str | None) -> list[dict[str, Any]]:
    env = _child_env(pythonpath)
    rows: list[dict[str, Any]] = []
    for name, argv in COMMANDS.items():
        if name.split()[0] not in only:
            continue
        wall, peak, out = _run_child([sys.executable, "-c", _CLI, *argv, "--db", str(db)], env)
        rows.append(
            {"ops": n, "command": name, "seconds": wall, "peak_mib": peak, "bytes_out": len(out)}
        )
    for route in ("history", "state"):
        if "http" not in only:
            continue
        wall, peak, out = _run_child([sys.executable, "-c", _HTTP, str(db), route, "20"], env)
        doc = json.loads(out)
        rows.append(
            {
                "ops": n,
                "command": f"http {route} first page",
                "seconds": doc["first"],
                "peak_mib": peak,
            }
        )
        rows.append(
            {
                "ops": n,
                "command": f"http {route} per page",
                "seconds": doc["per_page"],
                "peak_mib": peak,
            }
        )
    if "replay" in only:
        copy = db.with_suffix(".replay.db")
        shutil.copyfile(db, copy)  # the replay writes (an invocation's events)
        try:
            wall, peak, out = _run_child([sys.executable, "-c", _REPLAY, str(copy)], env)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(str(copy) + suffix).unlink(missing_ok=True)
        seconds = json.loads(out)["seconds"]
        rows.append(
            {
                "ops": n,
                "command": "replay (invoke_once)",
                "seconds": seconds,
                "peak_mib": peak,
                "us_per_op": seconds / n * 1e6,
            }
        )
    return rows


def table(rows: list[dict[str, Any]], before: list[dict[str, Any]] | None) -> str:
    old = {(r["ops"], r["command"]): r for r in before or ()}
    head = "| ops | command | seconds | peak MiB |"
    rule = "|---:|---|---:|---:|"
    if before is not None:
        head += " seconds before | peak MiB before |"
        rule += "---:|---:|"
    lines = [head, rule]
    for r in rows:
        line = f"| {r['ops']:,} | {r['command']} | {r['seconds']:.3f} | {r['peak_mib']:.0f} |"
        if before is not None:
            b = old.get((r["ops"], r["command"]))
            line += f" {b['seconds']:.3f} | {b['peak_mib']:.0f} |" if b else " - | - |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,50000,100000")
    p.add_argument("--keep", metavar="DIR", help="keep (and reuse) the databases here")
    p.add_argument("--save", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--compare", metavar="FILE", help="print beside a saved run")
    p.add_argument("--only", default="show,history,http,replay")
    p.add_argument("--pythonpath", help="measure the durable_gen found here (e.g. an old copy)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    only = set(args.only.split(","))
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dg-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for n in sizes:
            db = workdir / f"scale-{n}.db"
            if not db.exists():
                took = build(db, n)
                print(f"built {db} ({n:,} steps) in {took:.1f} s", file=sys.stderr)
            rows += measure(db, n, only, args.pythonpath)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    print(table(rows, before))
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
