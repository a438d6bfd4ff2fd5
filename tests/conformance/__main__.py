"""``python -m tests.conformance --target emulator|embedded|embedded-postgres [--suite S]
[-k ID] [-j N]``.

``embedded-postgres`` runs on the test PostgreSQL server (tests/postgres/_server.py:
a throw-away cluster started from the installed binaries, or ``$DURABLE_GEN_PG_URL``).

Prints one line per requirement (PASS/FAIL and a short reason) and a final
``N passed, N failed`` line; exits 1 when any requirement failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ._harness import EMBEDDED_STORES, TARGETS, Outcome, Runner
from ._requirements import SCOPE, requirements
from .known import KNOWN_FAILURES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__)
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--suite", action="append", choices=list(SCOPE), help="repeatable")
    parser.add_argument(
        "-k", action="append", dest="ids", metavar="ID", help="e.g. 1-1; repeatable"
    )
    parser.add_argument("-j", "--jobs", type=int, default=8, help="requirements run at once")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every error")
    args = parser.parse_args(argv)
    out = sys.stdout
    reqs = list(requirements(args.suite, args.ids))
    if EMBEDDED_STORES.get(args.target) == "postgres":
        from tests.postgres import _server

        try:
            _server.server()
        except _server.Unavailable as e:
            print(f"no PostgreSQL server: {e}", file=sys.stderr)
            return 2
    started = time.monotonic()
    with Runner(args.target) as runner, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(runner.run, req) for req in reqs]
        outcomes: list[Outcome] = []
        for fut in futures:
            o = fut.result()
            outcomes.append(o)
            status = "PASS" if o.passed else "FAIL"
            req = o.requirement
            line = f"{status} {req.suite:<18} {req.id:<6} {o.seconds:5.1f}s"
            if not o.passed:
                known = KNOWN_FAILURES.get((args.target, o.requirement.id))
                line += f"  {o.reason}" + (f"  [known: {known}]" if known else "")
            print(line, file=out, flush=True)
            if args.verbose and not o.passed:
                for err in o.errors:
                    print(f"    {err}", file=out)
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.0f}s)", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
