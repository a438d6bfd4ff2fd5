"""Run conformance requirements against a target and validate them with AWS's validator.

Two targets:

``emulator``
    AWS's emulator (``dex-local-runner``, aws-durable-execution-sdk-python-testing
    1.4.0) in a subprocess, invoking our handlers (``durable_gen.aws.durable_handler``)
    at a :class:`durable_gen.aws.local.LocalLambda` in this process. Two emulators
    run: one with ``--skip-time``, one on real time for the requirements time
    skipping would break (see ``Requirement.real_time``). The validator reads
    history through :class:`AdaptedLambdaClient` (see ``_adapter``).

``embedded``
    ``durable-gen serve --skip-time`` (real time where required) over a fresh
    SQLite database per requirement, started as a subprocess; the validator talks
    to it with boto3 and invokes functions through the package's own ``Invoker``.
    A server that exits (a runtime crash) is restarted on the same database.

``embedded-postgres``
    The same, with ``serve --db postgresql://...``: a fresh database per
    requirement on the test PostgreSQL server (``tests/postgres/_server.py``: a
    throw-away cluster, or ``$DURABLE_GEN_PG_URL``), dropped afterwards.

Validation is the package's ``validate_description`` unchanged. Two timing knobs
are set for local stores (neither changes what is compared): the async poll
interval (2 s -> 0.25 s) and CloudWatch's propagation waits (10 s + 10 s ->
0.3 s; our log store is written synchronously).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from durable_gen.aws.local import start_execution

from . import _adapter
from ._logs import FakeCloudFormationClient, FakeLogsClient, LogSink, SinkHandler, SinkStream
from ._requirements import Requirement, all_functions
from .targets import handler_target, hooks_target

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("emulator", "embedded", "embedded-postgres")
#: the embedded targets' stores
EMBEDDED_STORES = {"embedded": "sqlite", "embedded-postgres": "postgres"}
LOCAL_POLL_SECONDS = 0.25
LOG_PROPAGATION_SECONDS = 0.3


def _patch_validator_timing() -> None:
    from aws_durable_execution_conformance_tests import cloudwatch, validate

    validate.POLL_INTERVAL_SECONDS = LOCAL_POLL_SECONDS  # type: ignore[attr-defined]

    class LocalLogRetriever(cloudwatch.CloudWatchLogRetriever):
        EVENT_POLL_TIMEOUT_SECONDS = 0.0
        EVENT_POLL_INTERVAL_SECONDS = 0.0

        def get_execution_log_events(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            time.sleep(LOG_PROPAGATION_SECONDS)
            kwargs["wait_seconds"] = 0
            return list(super().get_execution_log_events(*args, **kwargs))

    validate.CloudWatchLogRetriever = LocalLogRetriever  # type: ignore[misc]


def wait_for_serve(url: str, proc: subprocess.Popen[Any], log: Callable[[], str]) -> None:
    """Wait (30 s at most) until ``durable-gen serve`` at ``url`` answers HTTP; if its
    process exits first, fail with the end of ``log()``."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            time.sleep(0.1)  # the last lines of its log
            raise RuntimeError("durable-gen serve exited: " + log()[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/2025-12-01/durable-executions/none", timeout=1):
                return
        except urllib.error.HTTPError as e:
            e.close()
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _client(url: str) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2}, read_timeout=900, connect_timeout=10),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    requirement: Requirement
    target: str
    passed: bool
    reason: str = ""
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Result:
    """What ``Invoker.invoke`` returns (``.output`` is JSON with DurableExecutionArn)."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.output = json.dumps(output)
        self.success = True


# --------------------------------------------------------------------------- emulator


class AdaptedLambdaClient:
    """The emulator's boto3 client, with history adapted (``_adapter``); else unchanged."""

    def __init__(self, client: Any, db_path: str, log_path: str) -> None:
        self._client = client
        self._db = db_path
        self._log = log_path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_durable_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        response: dict[str, Any] = self._client.get_durable_execution_history(**kwargs)
        arn = kwargs["DurableExecutionArn"]
        stored = _adapter.stored_execution(self._db, arn)
        if stored is None:
            return response
        children = {}
        for child in (stored.get("ChainedInvokeChildren") or {}).values():
            doc = _adapter.stored_execution(self._db, child)
            if doc is not None:
                children[child] = doc
        log_text = Path(self._log).read_text(errors="replace")
        response["Events"] = _adapter.adapt_history(
            response["Events"], stored, children, _adapter.logged_crashes(log_text, arn)
        )
        return response


class EmulatorInvoker:
    """``Invoker`` for the emulator: Lambda Invoke of a durable function = StartDurableExecution.

    The emulator has no Lambda ``Invoke`` route; a synchronous invoke starts the
    execution and waits for its end, as Lambda's RequestResponse invoke of a
    durable function does; an async one returns at once.
    """

    stack_name = "local"

    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.client = client

    def _start(self, function_name: str, event_file_path: str | None) -> str:
        payload: Any = {}
        if event_file_path is not None:
            from aws_durable_execution_conformance_tests.sam import EventFileReader

            payload = EventFileReader.extract_payload(EventFileReader.read(event_file_path))
        return start_execution(self.url, function_name, payload)

    def invoke(self, function_name: str, event_file_path: str | None = None) -> _Result:
        arn = self._start(function_name, event_file_path)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ex = self.client.get_durable_execution(DurableExecutionArn=arn)
            if ex["Status"] != "RUNNING":
                break
            time.sleep(0.05)
        return _Result({"StatusCode": 200, "DurableExecutionArn": arn, "Payload": ""})

    def invoke_async(self, function_name: str, event_file_path: str | None = None) -> _Result:
        arn = self._start(function_name, event_file_path)
        return _Result({"StatusCode": 202, "DurableExecutionArn": arn, "Payload": ""})


class _EmulatorInstance:
    """One emulator subprocess (sqlite store) and the LocalLambda it invokes."""

    def __init__(
        self, workdir: Path, skip_time: bool, extra_functions: tuple[str, ...] = ()
    ) -> None:
        from durable_gen.aws.local import EMULATOR_COMMAND, LocalLambda

        self.lam = LocalLambda().start()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tag = "skip" if skip_time else "real"
        self.db = str(workdir / f"emulator-{tag}.db")
        self.log = str(workdir / f"emulator-{tag}.log")
        names = [*all_functions(), *extra_functions]  # extra: chained-invoke targets
        configs = {name: {"DurableConfig": {"ExecutionTimeout": 120}} for name in names}
        args = [
            *EMULATOR_COMMAND,
            "start-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lambda-endpoint",
            self.lam.url,
            "--store-type",
            "sqlite",
            "--store-path",
            self.db,
            "--execution-timeout",
            "300",
        ]
        if skip_time:
            args.append("--skip-time")
        if configs:
            args += ["--function-configs", json.dumps(configs)]
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
            **os.environ,
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dex-local-runner exited; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.client = _client(self.url)
        from durable_gen.aws import durable_handler

        for name, fn in all_functions().items():
            self.lam.register(name, durable_handler(fn, client=self.client))
        self._handler = durable_handler

    def register(self, req: Requirement) -> None:
        handler = req.handler
        assert handler is not None
        factory = req.hooks_factory
        hooks = list(factory()) if factory is not None else []
        self.lam.register(
            req.function_name, self._handler(handler, client=self.client, hooks=hooks)
        )

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.lam.stop()


class EmulatorTarget:
    name = "emulator"

    def __init__(self, sink: LogSink, workdir: Path) -> None:
        self.sink = sink
        self.workdir = workdir
        self._instances: dict[bool, _EmulatorInstance] = {}
        self._lock = threading.Lock()

    def _instance(self, skip_time: bool) -> _EmulatorInstance:
        with self._lock:
            inst = self._instances.get(skip_time)
            if inst is None:
                inst = self._instances[skip_time] = _EmulatorInstance(self.workdir, skip_time)
            return inst

    @staticmethod
    def skips_time(req: Requirement) -> bool:
        """Whether ``req`` runs on the ``--skip-time`` emulator: only single-invocation ones.

        The 1.4.0 emulator's skip clock fires a wait or retry timer on the next
        scheduler turn after its checkpoint, i.e. usually before the invocation
        that armed it has returned. That either puts WaitSucceeded before the
        invocation's InvocationCompleted (2-4) or makes the emulator count the
        fired retry (or wait-for-condition poll) as seen by the running invocation
        and never invoke again (1-11, 6-4 hung). So a requirement with a wait, or
        with more than one invocation, runs on real time.
        """
        events = req.data.get("ExpectedExecutionHistory") or []
        invocations = sum(e.get("EventType") == "InvocationCompleted" for e in events)
        waits = any(e.get("EventType") == "WaitStarted" for e in events)
        return not req.real_time and invocations <= 1 and not waits  # no timer fires

    @contextlib.contextmanager
    def session(self, req: Requirement) -> Iterator[tuple[Any, dict[str, Any]]]:
        inst = self._instance(self.skips_time(req))
        inst.register(req)
        client = AdaptedLambdaClient(inst.client, inst.db, inst.log)
        clients = {
            "lambda": client,
            "logs": FakeLogsClient(self.sink),
            "cloudformation": FakeCloudFormationClient(),
        }
        yield EmulatorInvoker(inst.url, inst.client), clients

    def close(self) -> None:
        for inst in self._instances.values():
            inst.close()


# --------------------------------------------------------------------------- embedded

_BOOT = """
import logging, sys
sys.path.insert(0, {root!r})
from tests.conformance._logs import LambdaJsonFormatter
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(LambdaJsonFormatter())
logging.basicConfig(level=logging.INFO, handlers=[handler])
from durable_gen._cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


class _Serve:
    """``durable-gen serve`` for one requirement, restarted when its process dies."""

    def __init__(self, req: Requirement, sink: LogSink, workdir: Path, db: str) -> None:
        self.req = req
        self.sink = sink
        self.db = db
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--db", self.db, "--port", str(self.port)]
        args += ["--function", f"{req.function_name}={handler_target(req.suite, req.id)}"]
        for name, fn in all_functions().items():
            args += ["--function", f"{name}={fn.__module__}:{fn.__qualname__}"]
        if not req.real_time:
            args.append("--skip-time")
        if req.hooks_factory is not None:
            args += ["--hooks", hooks_target(req.suite, req.id)]
        self.args = [sys.executable, "-c", _BOOT.format(root=str(ROOT)), *args]
        self.stderr: list[str] = []
        self.restarts = 0
        self._stopping = False
        self._start()
        self._watch = threading.Thread(target=self._supervise, daemon=True)
        self._watch.start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            self.args,
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(
            target=self._pump, args=(self.proc.stdout, self.sink.add), daemon=True
        ).start()
        threading.Thread(
            target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True
        ).start()
        wait_for_serve(self.url, self.proc, lambda: "".join(self.stderr))

    @staticmethod
    def _pump(stream: Any, put: Callable[[str], None]) -> None:
        for line in stream:
            put(line)

    def _supervise(self) -> None:
        """Like Lambda after a runtime crash: a new process takes over the database."""
        while not self._stopping:
            code = self.proc.poll()
            if code is not None and not self._stopping:
                self.restarts += 1
                if self.restarts > 3:
                    return
                self._start()
            time.sleep(0.05)

    def close(self) -> None:
        self._stopping = True
        self._watch.join(timeout=5)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class EmbeddedTarget:
    """``durable-gen serve`` on a fresh database per requirement: a SQLite file, or
    (``store="postgres"``) a database on the test PostgreSQL server."""

    def __init__(self, sink: LogSink, workdir: Path, store: str = "sqlite") -> None:
        self.sink = sink
        self.workdir = workdir
        self.store = store
        self.name = "embedded" if store == "sqlite" else f"embedded-{store}"

    @contextlib.contextmanager
    def _database(self, req: Requirement) -> Iterator[str]:
        if self.store == "sqlite":
            yield str(self.workdir / f"{req.suite}-{req.id}-{uuid.uuid4().hex[:6]}.db")
            return
        from tests.postgres import _server

        url = _server.fresh_database("conformance")
        try:
            yield url
        finally:
            _server.drop_database(url)

    @contextlib.contextmanager
    def session(self, req: Requirement) -> Iterator[tuple[Any, dict[str, Any]]]:
        from aws_durable_execution_conformance_tests.sam import Invoker

        with self._database(req) as db:
            serve = _Serve(req, self.sink, self.workdir, db)
            try:
                client = _client(serve.url)
                cfn = _StackOfOne(req.function_name)
                invoker = Invoker(stack_name="local", lambda_client=client, cfn_client=cfn)
                logs = FakeLogsClient(self.sink)
                yield invoker, {"lambda": client, "logs": logs, "cloudformation": cfn}
            finally:
                serve.close()

    def close(self) -> None:
        pass


class _StackOfOne(FakeCloudFormationClient):
    """The "stack" the package's Invoker resolves the function in: just this function."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name

    def paginate(self, StackName: str) -> Any:
        return iter(
            [
                {
                    "StackResourceSummaries": [
                        {
                            "ResourceType": "AWS::Lambda::Function",
                            "LogicalResourceId": self.function_name,
                            "PhysicalResourceId": self.function_name,
                        }
                    ]
                }
            ]
        )


# --------------------------------------------------------------------------- running

_CAPTURE_LOCK = threading.Lock()
_CAPTURE: dict[str, Any] = {"depth": 0}


class Runner:
    """Runs requirements on one target; use as a context manager."""

    def __init__(self, target: str, *, output_dir: str | None = None) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        _patch_validator_timing()
        self.sink = LogSink()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"conformance-{target}-"))
        self.output_dir = output_dir or str(self.workdir / "histories")
        self.target: EmulatorTarget | EmbeddedTarget = (
            EmulatorTarget(self.sink, self.workdir)
            if target == "emulator"
            else EmbeddedTarget(self.sink, self.workdir, EMBEDDED_STORES[target])
        )

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.target.close()
        if exc[0] is None and os.environ.get("CONFORMANCE_KEEP") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @contextlib.contextmanager
    def _capturing(self) -> Iterator[None]:
        """While any requirement runs: the functions' output goes to the sink.

        Lambda's JSON log format for ``logging`` records (root at INFO, as Lambda
        sets it up), and stdout line by line; see _logs. Reference-counted so
        requirements can run concurrently; installed per run so pytest's own
        output capture (which swaps sys.stdout per test) cannot hide it.
        """
        with _CAPTURE_LOCK:
            _CAPTURE["depth"] += 1
            if _CAPTURE["depth"] == 1:
                root = logging.getLogger()
                handler = SinkHandler(self.sink)
                saved = (root.level, sys.stdout, handler)
                root.addHandler(handler)
                root.setLevel(logging.INFO)
                for noisy in ("botocore", "urllib3", "boto3"):
                    logging.getLogger(noisy).setLevel(logging.WARNING)
                sys.stdout = SinkStream(self.sink)  # type: ignore[assignment]
                _CAPTURE["saved"] = saved
        try:
            yield
        finally:
            with _CAPTURE_LOCK:
                _CAPTURE["depth"] -= 1
                if _CAPTURE["depth"] == 0:
                    level, stdout, handler = _CAPTURE.pop("saved")
                    sys.stdout = stdout
                    logging.getLogger().removeHandler(handler)
                    logging.getLogger().setLevel(level)

    def run(self, req: Requirement) -> Outcome:
        from aws_durable_execution_conformance_tests.validate import validate_description

        started = time.monotonic()
        if req.handler is None:
            return Outcome(req, self.target.name, False, "no handler registered", [])
        try:
            with self._capturing(), self.target.session(req) as (invoker, clients):
                result = validate_description(
                    function_name=req.function_name,
                    description_id=req.id,
                    test_file=str(req.path),
                    invoker=invoker,
                    tmp_dir=str(self.workdir),
                    region="us-west-2",
                    aws_clients=clients,  # type: ignore[arg-type]
                    output_dir=self.output_dir,
                )
        except Exception as e:
            return Outcome(
                req,
                self.target.name,
                False,
                f"harness error: {type(e).__name__}: {e}",
                traceback.format_exc().splitlines(),
                time.monotonic() - started,
            )
        reason = "" if result.passed else "; ".join(result.errors)[:300]
        return Outcome(
            req,
            self.target.name,
            result.passed,
            reason,
            list(result.errors),
            time.monotonic() - started,
        )
