"""``python -m tests.differential [--examples N] [--seed S] [--stores sqlite,postgres]``:
random programs at scale.

Runs N generated programs on the targets (see ``_harness``; the embedded engine on
each of ``--stores``, default ``$DIFFERENTIAL_STORES`` or SQLite) and prints
``programs run / programs equal`` per durable_gen target. When a program differs,
hypothesis then shrinks it: the minimal program is printed with AWS's history and
durable_gen's side by side, and the command exits 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter

from hypothesis import HealthCheck, Phase, given, seed, settings

from ._check import DifferentHistories, check
from ._harness import EMBEDDED, Session, stores_from_env
from ._programs import differential_programs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__)
    parser.add_argument("--examples", type=int, default=200, help="programs to run")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (deterministic)")
    parser.add_argument(
        "--stores",
        help=f"the embedded engine's stores, comma-separated, of {', '.join(EMBEDDED)} "
        "(default: $DIFFERENTIAL_STORES, else sqlite)",
    )
    args = parser.parse_args(argv)
    stores = (
        tuple(s.strip() for s in args.stores.split(",") if s.strip())
        if args.stores
        else stores_from_env()
    )
    if unknown := [s for s in stores if s not in EMBEDDED]:
        parser.error(f"unknown store(s) {unknown}")
    logging.getLogger("aws_durable_execution_sdk_python").setLevel(logging.CRITICAL)
    started = time.monotonic()
    tally: Counter[str] = Counter()
    first_bad: list[str] = []
    with Session(stores) as session:
        common = settings(
            max_examples=args.examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )

        @seed(args.seed)
        @settings(common, phases=[Phase.explicit, Phase.generate])
        @given(program=differential_programs())
        def count(program: object) -> None:
            if tally["run"] and tally["run"] % 50 == 0:
                equal = " ".join(f"{t}={tally[f'equal:{t}']}" for t in session.compared)
                print(f"... {tally['run']} run, equal: {equal}", file=sys.stderr, flush=True)
            try:
                check(session, program, tally)
            except TimeoutError as e:  # a hung service: no history to compare
                tally["timeout"] += 1
                print(f"program not compared: {e}", file=sys.stderr, flush=True)
            except DifferentHistories as e:
                tally["different"] += 1
                if not first_bad:
                    first_bad.append(str(e))
                    brief = [ln for ln in str(e).splitlines() if not ln.startswith("  ")]
                    print("first difference (before shrinking):", *brief, sep="\n", flush=True)

        count()
        elapsed = time.monotonic() - started
        for target in session.compared:
            print(
                f"{target:<17} programs run {tally['run']:>6}  "
                f"programs equal {tally[f'equal:{target}']:>6}"
            )
        print(
            f"({elapsed:.0f}s; emulator runs started again after a hang: "
            f"{session.emulator_hangs}; programs not compared, a service hung: "
            f"{tally['timeout']})"
        )
        if not first_bad:
            return 0

        @seed(args.seed)
        @common
        @given(program=differential_programs())
        def shrink(program: object) -> None:
            check(session, program)

        print("\nA program differs; shrinking it (hypothesis) ...", flush=True)
        try:
            shrink()
        except DifferentHistories as e:
            print(e)
        else:
            print("(not found again while shrinking; the first difference seen:)")
            print(first_bad[0])
        return 1


if __name__ == "__main__":
    sys.exit(main())
