"""One session of differential runs: AWS's emulator and ``durable-gen serve``, kept alive.

Three targets run every program (``durable_gen.testing.program_workflow``, the
program sent as the execution's input):

``aws``
    AWS's Python SDK 3.0 (through :mod:`._aws`) on AWS's emulator.
``shim``
    durable_gen through its Lambda shim (``durable_gen.aws.durable_handler``) on
    the same emulator.
``embedded``
    durable_gen on the embedded SQLite engine: ``durable-gen serve --skip-time``.
``embedded-postgres``
    the same on a PostgreSQL database (``serve --db postgresql://...``), when the
    session's stores include ``postgres`` (``DIFFERENTIAL_STORES=sqlite,postgres``;
    CI sets it): a database on the test server (``tests/postgres/_server.py``).

One emulator (``--skip-time``, reused from ``tests.conformance._harness``) with a
LocalLambda hosting both functions, and one serve process per store, live for the
whole session; a program costs one execution per target, all run at once, not a
process each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable_gen.aws import durable_handler
from durable_gen.aws.local import start_execution
from durable_gen.testing import PROGRAM_FUNCTIONS, program_workflow
from tests.conformance import _adapter
from tests.conformance._harness import _client, _EmulatorInstance, _free_port, wait_for_serve

from ._aws import aws_handler
from ._normalize import emulator_fixes, normalize

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("aws", "shim", "embedded", "embedded-postgres")
#: the embedded engine's stores, by target
EMBEDDED = {"sqlite": "embedded", "postgres": "embedded-postgres"}
#: the stores the embedded engine runs on unless told (``DIFFERENTIAL_STORES``)
DEFAULT_STORES = ("sqlite",)
AWS_FUNCTION = "differential-aws"
SHIM_FUNCTION = "differential-shim"
SERVE_FUNCTION = "differential"
TIMEOUT_SECONDS = 300.0
STALL_SECONDS = 15.0
#: AWS's emulator (1.4.0) with --skip-time sometimes never re-invokes an execution
#: whose timer fired while the invocation that armed it was still running (see
#: tests.conformance._harness.EmulatorTarget.skips_time): such a run is started
#: again, as a fresh execution, this many times. A hang is not a history.
EMULATOR_ATTEMPTS = 2


@dataclass
class Run:
    """One program's normalized history on each target."""

    program: Any
    histories: dict[str, dict[str, Any]]

    def equal(self, target: str) -> bool:
        return self.histories[target] == self.histories["aws"]


def stores_from_env() -> tuple[str, ...]:
    """``$DIFFERENTIAL_STORES`` (comma-separated: ``sqlite``, ``postgres``), else SQLite."""
    raw = os.environ.get("DIFFERENTIAL_STORES", "")
    stores = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    unknown = [s for s in stores if s not in EMBEDDED]
    if unknown:
        raise ValueError(
            f"DIFFERENTIAL_STORES: unknown store(s) {unknown}; known: {list(EMBEDDED)}"
        )
    return stores or DEFAULT_STORES


class _ServeProcess:
    """``durable-gen serve --skip-time`` on one database, for the whole session."""

    def __init__(self, db: str, log: Path) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "durable_gen", "serve", "--db", db]
        args += ["--port", str(port), "--skip-time"]
        args += ["--function", f"{SERVE_FUNCTION}=durable_gen.testing:program_workflow"]
        for name, fn in PROGRAM_FUNCTIONS.items():
            args += ["--function", f"{name}={fn.__module__}:{fn.__qualname__}"]
        self._log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            cwd=str(ROOT),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            wait_for_serve(self.url, self.proc, lambda: log.read_text(errors="replace"))
        except BaseException:
            self.close()
            raise
        self.client = _client(self.url)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Session:
    """The emulator and serve processes; use as a context manager.

    ``stores``: the embedded engine's (``sqlite``, ``postgres``); default
    :func:`stores_from_env`. ``postgres`` needs the test server
    (``tests/postgres/_server.py``; :class:`~tests.postgres._server.Unavailable`
    without one).
    """

    def __init__(self, stores: tuple[str, ...] | None = None) -> None:
        self.stores = stores_from_env() if stores is None else stores
        #: the targets compared with "aws"
        self.compared = ("shim", *(EMBEDDED[s] for s in self.stores))
        self.targets = ("aws", *self.compared)
        self.workdir = Path(tempfile.mkdtemp(prefix="differential-"))
        self.emulator = _EmulatorInstance(
            self.workdir, skip_time=True, extra_functions=tuple(PROGRAM_FUNCTIONS)
        )
        self.emulator_hangs = 0  # runs started again (see EMULATOR_ATTEMPTS)
        self._pool = ThreadPoolExecutor(max_workers=len(self.targets), thread_name_prefix="target")
        self.emulator.lam.register(AWS_FUNCTION, aws_handler(self.emulator.client))
        self.emulator.lam.register(
            SHIM_FUNCTION, durable_handler(program_workflow, client=self.emulator.client)
        )
        # what generated Invoke ops call (one implementation for both emulator
        # targets: only the caller's history is compared)
        for name, fn in PROGRAM_FUNCTIONS.items():
            self.emulator.lam.register(name, durable_handler(fn, client=self.emulator.client))
        #: one serve process per embedded target
        self.serves: dict[str, _ServeProcess] = {}
        self._pg_db: str | None = None
        try:
            for store in self.stores:
                target = EMBEDDED[store]
                if store == "postgres":
                    from tests.postgres import _server

                    db = self._pg_db = _server.fresh_database("differential")
                else:
                    db = str(self.workdir / "serve.db")
                self.serves[target] = _ServeProcess(db, self.workdir / f"{target}.log")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.emulator.close()
        for serve in self.serves.values():
            serve.close()
        if self._pg_db is not None:
            from tests.postgres import _server

            _server.drop_database(self._pg_db)
        if os.environ.get("DIFFERENTIAL_KEEP") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ running

    def run(self, program: Any) -> Run:
        event = {"program": program, "retry": "none", "callback_endpoint": self.emulator.url}
        # the executions run at once (each service keeps them apart): a program costs
        # its slowest target, not their sum
        futures = {
            "aws": self._pool.submit(self._on_emulator, AWS_FUNCTION, event),
            "shim": self._pool.submit(self._on_emulator, SHIM_FUNCTION, event),
        }
        for target, serve in self.serves.items():
            on_serve = {**event, "callback_endpoint": serve.url}
            futures[target] = self._pool.submit(self._on_serve, serve.client, on_serve)
        return Run(program, {target: f.result() for target, f in futures.items()})

    def _on_emulator(self, function: str, event: Any) -> dict[str, Any]:
        client = self.emulator.client
        for attempt in range(1, EMULATOR_ATTEMPTS + 1):
            arn = start_execution(self.emulator.url, function, event)
            try:
                ex = _until_done(client, arn)
                break
            except TimeoutError:
                self.emulator_hangs += 1
                if attempt == EMULATOR_ATTEMPTS:
                    raise
        events = _history(client, arn)
        stored = _adapter.stored_execution(self.emulator.db, arn)
        if stored is not None:  # as tests.conformance._harness.AdaptedLambdaClient does
            children = {}
            for child in (stored.get("ChainedInvokeChildren") or {}).values():
                doc = _adapter.stored_execution(self.emulator.db, child)
                if doc is not None:
                    children[child] = doc
            events = _adapter.adapt_history(events, stored, children, ())
        return normalize(emulator_fixes(events), ex["Status"], ex.get("Result"))

    def _on_serve(self, client: Any, event: Any) -> dict[str, Any]:
        response = client.invoke(
            FunctionName=SERVE_FUNCTION,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        arn = response.get("DurableExecutionArn") or response["ResponseMetadata"][
            "HTTPHeaders"
        ].get("x-amz-durable-execution-arn")
        ex = _until_done(client, arn)
        return normalize(_history(client, arn), ex["Status"], ex.get("Result"))


def _until_done(client: Any, arn: str) -> dict[str, Any]:
    """The execution once it ended; TimeoutError when it stops making progress.

    Progress is new history events: a program waiting on real time (callback
    timeouts, the emulator's re-invocation delays) keeps going; one whose history
    stands still for STALL_SECONDS is taken as hung.
    """
    deadline = time.monotonic() + TIMEOUT_SECONDS
    seen, last_change, next_look = -1, time.monotonic(), 0.0
    while True:
        ex: dict[str, Any] = client.get_durable_execution(DurableExecutionArn=arn)
        if ex["Status"] != "RUNNING":
            return ex
        now = time.monotonic()
        if now >= next_look:
            count = len(_history(client, arn))
            if count != seen:
                seen, last_change = count, now
            next_look = now + 1.0
        if now - last_change > STALL_SECONDS or now > deadline:
            raise TimeoutError(
                f"execution {arn} still RUNNING, its history unchanged for "
                f"{now - last_change:.0f} s ({now - deadline + TIMEOUT_SECONDS:.0f} s in all)"
            )
        time.sleep(0.02)


def _history(client: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    marker = None
    while True:
        kwargs: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True}
        if marker:
            kwargs["Marker"] = marker
        page = client.get_durable_execution_history(**kwargs)
        events.extend(page["Events"])
        marker = page.get("NextMarker")
        if not marker:
            return events
