"""The web console's page weight and how soon the list shows with 10,000 executions.

    python -m benchmarks.console [--executions N] [--repeat R] [--no-browser]

Fills a fresh database with N executions (as ``benchmarks.listing`` does), starts
``durable-gen serve``'s server on it and measures

- the bytes of the list page (first page: 50 rows), its script and its stylesheet
  (as sent, and gzip-compressed for comparison: the server does not compress);
- the server's time to answer the list page and its JSON (unfiltered, by status, by
  a text that scans every execution), median of R requests over a kept-alive
  connection;
- in Chromium (Playwright, when installed): time to first contentful paint and to
  ``DOMContentLoaded`` of the list page, median of R fresh page loads.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.listing import fill
from durable_gen._http.serve import make_server


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


def _browser(url: str, repeat: int) -> tuple[float, float, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    paints, ready, loads = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for _ in range(repeat):
                context = browser.new_context()
                page = context.new_page()
                page.goto(url, wait_until="load")
                page.wait_for_selector("#executions tbody tr")
                timing = page.evaluate(
                    """() => {
                        const nav = performance.getEntriesByType('navigation')[0];
                        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                        return [fcp ? fcp.startTime : -1, nav.domContentLoadedEventEnd,
                                nav.loadEventEnd];
                    }"""
                )
                paints.append(timing[0])
                ready.append(timing[1])
                loads.append(timing[2])
                context.close()
        finally:
            browser.close()
    return statistics.median(paints), statistics.median(ready), statistics.median(loads)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "console.db"
        fill(db, args.executions)
        server = make_server("127.0.0.1", 0, db=str(db), functions={})
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address[:2]
        try:
            conn = http.client.HTTPConnection(str(host), port, timeout=30)
            page = _get(conn, "/console/")
            script = _get(conn, "/console/static/console.js")
            style = _get(conn, "/console/static/console.css")
            print(f"### Console page weight (list page, 50 of {args.executions:,} executions)\n")
            print("| resource | bytes | gzip bytes |")
            print("|---|---:|---:|")
            total = total_gz = 0
            for name, body in (("list HTML", page), ("console.js", script), ("console.css", style)):
                gz = len(gzip.compress(body))
                total += len(body)
                total_gz += gz
                print(f"| {name} | {len(body):,} | {gz:,} |")
            print(f"| **total** | **{total:,}** | **{total_gz:,}** |\n")

            print(
                f"### Server time, {args.executions:,} executions (median of {args.repeat}, ms)\n"
            )
            print("| request | ms |")
            print("|---|---:|")
            for label, path in (
                ("GET /console/ (HTML, 50 rows)", "/console/"),
                ("GET /console/api/executions (JSON, 50 rows)", "/console/api/executions"),
                ("... ?status=FAILED", "/console/api/executions?status=FAILED"),
                ("... ?q=job-0099 (text: scans)", "/console/api/executions?q=job-0099"),
                ("... ?q=nomatch (scans every execution)", "/console/api/executions?q=nomatch"),
            ):
                print(f"| {label} | {_median_ms(conn, path, args.repeat):.2f} |")
            conn.close()
            if not args.no_browser:
                measured = _browser(f"http://{host!s}:{port}/console/", min(args.repeat, 11))
                print()
                if measured is None:
                    print("(no Chromium or Playwright: browser timings skipped)")
                else:
                    fcp, dcl, load = measured
                    print(f"### Chromium, list of {args.executions:,} executions (median, ms)\n")
                    print("| first contentful paint | DOMContentLoaded | load |")
                    print("|---:|---:|---:|")
                    print(f"| {fcp:.1f} | {dcl:.1f} | {load:.1f} |")
        finally:
            server.shutdown()
            server.drain(1.0)
            server.server_close()
            thread.join(5)


if __name__ == "__main__":
    main()
