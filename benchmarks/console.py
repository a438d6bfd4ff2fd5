"""The web console's page weight and how soon its pages show: the list with 10,000
executions, and an execution page with 1,000 operations.

    python -m benchmarks.console [--executions N] [--operations M] [--repeat R] [--no-browser]

Fills a fresh database with N executions (as ``benchmarks.listing`` does; nine in ten
ended, with durations spread over a minute) and one execution of M steps that logs a
line every tenth step, starts ``durable-gen serve``'s server on it and measures

- the bytes of the list page (first page: 50 rows), its script and its stylesheet, and
  of the execution page, its JSON, its meter, its logs and its timeline (as sent, and
  gzip-compressed for comparison: the server does not compress);
- the server's time to answer each (the list: unfiltered, by status, by version, oldest
  first, by duration, a previous page, by a text that scans), median of R requests over
  a kept-alive connection;
- in Chromium (Playwright, when installed): time to first contentful paint,
  ``DOMContentLoaded`` and ``load`` of the list page, and for the execution page the
  time until its M operation rows are in the table (its script renders them from the
  JSON), median of fresh page loads.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import shutil
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from benchmarks.listing import fill
from durable_gen import SqliteEngine, Step, get_logger
from durable_gen._http.serve import make_server
from durable_gen._stores.sqlite import SqliteStore

BIG = "big-execution"


def _one(i: int) -> dict[str, int]:
    if i % 10 == 0:
        get_logger().info("step %d of the big execution", i)
    return {"i": i, "square": i * i}


def big(event: dict[str, Any]) -> int:
    """M steps (the execution page of the benchmark)."""
    for i in range(event["n"]):
        yield Step(_one, i, name=f"step {i}")
    return int(event["n"])


def _fill(db: Path, executions: int, operations: int) -> None:
    fill(db, executions)
    store = SqliteStore(db)
    try:  # ended executions get durations (the list sorts by them)
        store._conn.execute(
            "UPDATE executions SET ended_at = created_at + (pk * 7919) % 60000 "
            "WHERE status != 'RUNNING'"
        )
    finally:
        store.close()
    with SqliteEngine(str(db)) as engine:
        engine.run(big, {"n": operations}, execution_id=BIG)


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    return body


def _median_ms(conn: http.client.HTTPConnection, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        _get(conn, path)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _weights(title: str, items: list[tuple[str, bytes]]) -> None:
    print(f"### {title}\n")
    print("| resource | bytes | gzip bytes |")
    print("|---|---:|---:|")
    total = total_gz = 0
    for name, body in items:
        gz = len(gzip.compress(body))
        total += len(body)
        total_gz += gz
        print(f"| {name} | {len(body):,} | {gz:,} |")
    print(f"| **total** | **{total:,}** | **{total_gz:,}** |\n")


def _browser(
    base: str, execution_path: str, operations: int, repeat: int
) -> dict[str, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    samples: dict[str, list[float]] = {}
    timing = """() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return [fcp ? fcp.startTime : -1, nav.domContentLoadedEventEnd, nav.loadEventEnd];
    }"""
    # a function, not an expression: an expression is eval'd, which the CSP forbids
    rows = "(n) => document.querySelectorAll('#operations tbody tr.opr').length >= n"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for _ in range(repeat):
                context = browser.new_context()
                page = context.new_page()
                page.goto(base + "/console/", wait_until="load")
                page.wait_for_selector("#executions tbody tr")
                fcp, dcl, load = page.evaluate(timing)
                for key, value in (("list fcp", fcp), ("list dcl", dcl), ("list load", load)):
                    samples.setdefault(key, []).append(value)
                page.goto(base + execution_path, wait_until="load")
                page.wait_for_function(rows, arg=operations, timeout=60_000)
                shown = page.evaluate("performance.now()")
                fcp, dcl, _ = page.evaluate(timing)
                samples.setdefault("exec fcp", []).append(fcp)
                samples.setdefault("exec dcl", []).append(dcl)
                samples.setdefault("exec rows", []).append(shown)
                context.close()
        finally:
            browser.close()
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "console.db"
        _fill(db, args.executions, args.operations)
        server = make_server(
            "127.0.0.1", 0, db=str(db), functions={"big": "benchmarks.console:big"}
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        try:
            conn = http.client.HTTPConnection(str(host), port, timeout=60)
            page = _get(conn, "/console/")
            script = _get(conn, "/console/static/console.js")
            style = _get(conn, "/console/static/console.css")
            _weights(
                f"Console page weight (list page, 50 of {args.executions + 1:,} executions)",
                [("list HTML", page), ("console.js", script), ("console.css", style)],
            )
            exec_path = "/console/executions/" + urllib.parse.quote(BIG, safe="")
            api = "/console/api/executions/" + urllib.parse.quote(BIG, safe="")
            _weights(
                f"Execution page weight ({args.operations:,} operations)",
                [
                    ("execution HTML", _get(conn, exec_path)),
                    ("its JSON (operations, callbacks, 200 events)", _get(conn, api)),
                    ("its logs JSON", _get(conn, api + "/logs")),
                    ("its meter JSON (opened)", _get(conn, api + "/meter")),
                    ("its timeline (opened)", _get(conn, exec_path + "/timeline")),
                ],
            )

            first = _get(conn, "/console/api/executions?order=oldest")
            after = json.loads(first)["next"]
            second = json.loads(_get(conn, "/console/api/executions?order=oldest&after=" + after))
            before = urllib.parse.quote(second["previous"])
            n = f"{args.executions + 1:,}"
            print(f"### Server time, {n} executions (median of {args.repeat}, ms)\n")
            print("| request | ms |")
            print("|---|---:|")
            for label, path in (
                ("GET /console/ (HTML, 50 rows)", "/console/"),
                ("GET /console/api/executions (JSON, 50 rows)", "/console/api/executions"),
                ("... ?status=FAILED", "/console/api/executions?status=FAILED"),
                ("... ?version=v1", "/console/api/executions?version=v1"),
                ("... ?order=oldest", "/console/api/executions?order=oldest"),
                (
                    "... ?order=oldest&before=(a previous page)",
                    f"/console/api/executions?order=oldest&before={before}",
                ),
                (
                    "... ?order=longest (by duration: a scan)",
                    "/console/api/executions?order=longest",
                ),
                (
                    "... ?order=shortest&status=FAILED",
                    "/console/api/executions?order=shortest&status=FAILED",
                ),
                ("... ?q=job-0099 (text: scans)", "/console/api/executions?q=job-0099"),
                ("... ?q=nomatch (scans every execution)", "/console/api/executions?q=nomatch"),
                (f"GET execution page (HTML, {args.operations:,} operations)", exec_path),
                ("GET its JSON (what each poll reads)", api),
                ("GET its logs", api + "/logs"),
                ("GET its logs, the tail (nothing new)", api + "/logs?after=100000"),
                ("GET its meter", api + "/meter"),
                ("GET its timeline", exec_path + "/timeline"),
            ):
                print(f"| {label} | {_median_ms(conn, path, args.repeat):.2f} |")
            conn.close()
            if not args.no_browser:
                base = f"http://{host!s}:{port}"
                measured = _browser(base, exec_path, args.operations, min(args.repeat, 11))
                print()
                if measured is None:
                    print("(no Chromium or Playwright: browser timings skipped)")
                else:
                    m = measured
                    print("### Chromium (median of fresh page loads, ms)\n")
                    print("| page | first contentful paint | DOMContentLoaded | ready |")
                    print("|---|---:|---:|---:|")
                    print(
                        f"| list of {n} executions | {m['list fcp']:.1f} | {m['list dcl']:.1f} "
                        f"| {m['list load']:.1f} (load) |"
                    )
                    print(
                        f"| execution of {args.operations:,} operations | {m['exec fcp']:.1f} | "
                        f"{m['exec dcl']:.1f} | {m['exec rows']:.1f} (every operation row "
                        "shown) |"
                    )
        finally:
            server.shutdown()
            server.drain(1.0)
            server.server_close()
            thread.join(5)


if __name__ == "__main__":
    main()
