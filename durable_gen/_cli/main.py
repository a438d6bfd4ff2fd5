"""The ``durable-gen`` command (also ``python -m durable_gen``).

Executions live in a SQLite database: ``--db PATH``, else ``$DURABLE_GEN_DB``,
else ``$XDG_DATA_HOME/durable_gen/durable_gen.db`` (``~/.local/share/...``).

- ``durable-gen run TARGET [--input JSON | --input-file F] [--id ID] [--no-wait]
  [--virtual-time]``: start an execution (or, with the ``--id`` of an existing one,
  resume it -- at once when the process that held it was killed) and drive it
  until it ends, sleeping through waits. Prints the JSON result on stdout.
  TARGET is ``package.module:function`` or ``path/to/file.py:function``.
- ``durable-gen worker [--once]``: advance every execution whose timer is due.
- ``durable-gen list``, ``show ID [--html FILE | --meter [--json]]``, ``history ID [--json]``,
  ``stop ID``, ``pause ID``, ``resume ID``, ``delete ID [--force]``.
- ``durable-gen logs ID [--json] [--level LEVEL] [--follow]``: the log records the
  database kept for an execution (``durable_gen.get_logger``, INFO and above, the
  newest 1,000; ``$DURABLE_GEN_KEEP_LOGS=N`` keeps N, 0 none): time, level,
  operation and attempt, message, exceptions indented; ``--follow`` until it ends.
  ``--json`` prints one object per line: ``{"execution_id", "seq", "time" (ISO UTC),
  "level", "levelno", "logger", "message", "operation_id", "operation_name",
  "attempt", "exception"}`` (``_cli/logs.py``).
- ``durable-gen check TARGET [--id ID ... | --status S | --all] [--history-file F ...]``:
  replay recorded executions or history files against the current code, running
  nothing; exit status 1 when one diverges.
- ``durable-gen serve [--host H] [--port N] [--token T] --function NAME=TARGET ...``:
  the engine over HTTP in the Lambda API's shapes (boto3 / AWS CLI with an
  endpoint URL); loopback only by default, a bearer token on request.
- ``durable-gen callback succeed|fail|heartbeat CALLBACK_ID [PAYLOAD]``: complete
  a callback; the execution's holder (a ``run`` waiting on it, or a worker)
  resumes it.

Exit status: 0 success; 1 the execution failed or was stopped, or the engine
reported an error; 2 bad command-line input; 3 the execution is suspended
(``--no-wait``, or it waits for something only the outside world can do; its id
is printed on stdout); 130 interrupted. Bad input gets a one-line error on
stderr, never a traceback. Progress goes to stderr when it is a terminal.

(Why one module of ~860 lines: the parser and the commands it dispatches to are
read together; the first-day work on the command (issue 23: progress, logs,
``--json``) is where it splits into a module per group of commands.)
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, cast

from .._core import service as _service
from .._core.contract import ExecutionInfo
from .._core.errors import (
    CorruptLogError,
    DurableGenError,
    ErrorObject,
    ExecutionAlreadyStartedError,
    NonDeterminismError,
    SerializationError,
    StoreError,
    ValidationError,
)
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from .._core.present import describe_operation, fmt_duration, fmt_time, short
from .._core.serdes import DEFAULT_SERDES
from .._engine.clock import (
    RealClock,
    VirtualClock,
)
from .._engine.limits import retention_ms, timeout_ms
from .._engine.sqlite import (
    SqliteEngine,
    result_value,
)
from .._engine.targets import (
    TargetError,
    canonical_target,
    code_version_of,
    resolve_target,
)
from .._stores.factory import open_store
from .._stores.owners import describe_owner
from .._stores.sqlite import SqliteStore
from .._stores.sqlite.paging import OperationsSummary

__all__ = ["load_target", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SUSPENDED = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input; reported in one line."""


def load_target(target: str) -> Callable[..., Any]:
    """Resolve ``pkg.module:function`` or ``path/to/file.py:function`` to a workflow."""
    try:
        return resolve_target(target)
    except TargetError as e:
        raise UsageError(str(e)) from None


def _parse_input(args: argparse.Namespace) -> tuple[bool, Any]:
    """(given, value) of --input / --input-file."""
    if args.input is not None and args.input_file is not None:
        raise UsageError("give --input or --input-file, not both")
    text = args.input
    if args.input_file is not None:
        try:
            text = Path(args.input_file).read_text()
        except OSError as e:
            raise UsageError(f"cannot read --input-file: {e.strerror}: {args.input_file}") from None
    if text is None:
        return False, None
    try:
        return True, json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--input is not valid JSON ({e.msg} at position {e.pos})") from None


_OTEL_HELP = (
    "trace and meter with OpenTelemetry (also DURABLE_GEN_OTEL=1; needs opentelemetry-sdk; "
    "exporters from OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, ...)"
)


def _otel_hooks(args: argparse.Namespace) -> list[Any]:
    """--otel or DURABLE_GEN_OTEL=1: tracing and metrics from the OTEL_* variables."""
    wanted = os.environ.get("DURABLE_GEN_OTEL", "").strip().lower() in ("1", "true", "yes", "on")
    if not (getattr(args, "otel", False) or wanted):
        return []
    from ..otel import hooks_from_env

    return hooks_from_env()


def _open_store(args: argparse.Namespace, *, create: bool = False) -> SqliteStore:
    """The database; with $DURABLE_GEN_KEYS or $DURABLE_GEN_KEY_FILE set, its payloads
    are encrypted at rest (AES-256-GCM) and decrypted for the commands.

    Only commands that start or advance executions (``create``) create a missing
    database; the others report it in one line and create nothing."""
    from .._stores.encrypted import (
        EncryptedStore,
        PayloadCipher,
        keys_from_environment,
    )

    try:
        ring = keys_from_environment()
    except ValidationError as e:
        raise UsageError(str(e)) from None
    try:
        # a postgresql:// URL (--db or $DURABLE_GEN_DB) opens a PostgresStore
        store = cast(SqliteStore, open_store(args.db, create=create))
    except ValidationError as e:  # a bad $DURABLE_GEN_KEEP_LOGS
        raise UsageError(str(e)) from None
    if ring is None:
        return store
    encrypted: Any = EncryptedStore(store, PayloadCipher(ring))
    return cast(SqliteStore, encrypted)  # same interface, payloads sealed


# ---------------------------------------------------------------------- progress


class _Progress:
    """What ``run`` tells while it runs: notable moments as lines (a retry with its
    error and next attempt, a callback to complete and how, a wait and its end), and
    on a terminal a live status line below them (operations done, what runs now)."""

    def __init__(
        self,
        stream: TextIO,
        execution_id: str,
        ops: Mapping[str, Operation],
        *,
        live: bool,
        db_hint: str = "",
    ) -> None:
        self.stream = stream
        self.execution_id = execution_id
        self.ops = dict(ops)
        self.live = live
        self.db_hint = db_hint
        self.doing = "starting"
        self._last = 0.0
        self._shown = False
        self._said: set[tuple[str, str, int | None]] = set()
        self._waited = False

    def on_change(self, execution_id: str, changed: Mapping[str, Operation]) -> None:
        if execution_id != self.execution_id:
            return
        self.ops.update(changed)
        for op in changed.values():
            what = describe_operation(op.sub_type, op.type.value, op.name)
            if op.type is OperationType.STEP and op.status is OperationStatus.STARTED:
                self.doing = f"running {what} (attempt {(op.attempt or 0) + 1})"
            elif op.type is OperationType.STEP and op.status is OperationStatus.PENDING:
                error = op.error.message if op.error is not None else "no error recorded"
                kind = op.error.type.rsplit(".", 1)[-1] if op.error and op.error.type else "Error"
                when = (
                    f"; next attempt at {fmt_time(op.next_attempt_timestamp)}"
                    if op.next_attempt_timestamp is not None
                    else ""
                )
                self.doing = f"{what} failed attempt {op.attempt}; retrying"
                self.say(op, f"{what} failed attempt {op.attempt}: {kind}: {short(error)}{when}")
            elif op.type is OperationType.WAIT and op.status is OperationStatus.STARTED:
                self.doing = f"{what} started"
                if op.scheduled_end_timestamp is not None:
                    self.say(op, f"{what}: waiting until {fmt_time(op.scheduled_end_timestamp)}")
            elif op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED:
                timeout = (
                    f" (times out after {fmt_duration(op.callback_timeout * 1000)})"
                    if op.callback_timeout
                    else ""
                )
                self.doing = f"waiting for callback {op.callback_id}"
                self.say(
                    op,
                    f"waiting for callback {op.callback_id}{timeout}; complete it with: "
                    f"durable-gen callback succeed {op.callback_id} '<json>'{self.db_hint}",
                )
        self.render()

    def say(self, op: Operation, line: str) -> None:
        """One line, once per operation state (a replay does not repeat it)."""
        key = (op.id, op.status.value, op.attempt)
        if key in self._said:
            return
        self._said.add(key)
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False
        self.stream.write(f"durable-gen: {line}\n")
        self.stream.flush()

    def on_wait(self, execution_id: str, message: str) -> None:
        if message:
            self.doing = message
            if not self.live and not self._waited and message.startswith("execution "):
                # without a live line: say once why run waits (another worker holds it)
                self._waited = True
                self.stream.write(f"durable-gen: waiting: {message}\n")
                self.stream.flush()
        else:
            wake = _service.next_timer(self.ops.values())
            if wake is not None:
                left = max(0, wake - RealClock().now())
                self.doing = f"waiting {fmt_duration(left)} (until {fmt_time(wake)})"
        self.render()

    def render(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        done = sum(
            1
            for op in self.ops.values()
            if op.is_terminal and op.type is not OperationType.EXECUTION
        )
        line = f"[{self.execution_id[:12]}] {done} operations done · {self.doing}"
        self.stream.write("\r\x1b[K" + line[:200])
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


# ---------------------------------------------------------------------- run


def _cmd_run(args: argparse.Namespace) -> int:
    workflow = load_target(args.target)
    given, value = _parse_input(args)
    target = canonical_target(args.target)
    clock = VirtualClock(start=RealClock().now()) if args.virtual_time else RealClock()
    store = _open_store(args, create=True)
    engine = SqliteEngine(
        store=store, clock=clock, version=args.code_version, hooks=_otel_hooks(args)
    )
    try:
        execution_id = args.id
        created = False
        if execution_id is None or not store.exists(execution_id):
            try:
                execution_id = engine.start(
                    workflow,
                    value,
                    execution_id=execution_id,
                    target=target,
                    workdir=os.getcwd(),
                    **_limits(args),
                )
                created = True
            except ValidationError as e:  # a deadline that has passed
                raise UsageError(str(e)) from None
            except DurableGenError:
                if execution_id is None or not store.exists(execution_id):
                    raise
        assert execution_id is not None
        if not created:
            _check_same_execution(store.info(execution_id), target, given, value)
        progress = None
        if not args.quiet:
            print(
                f"durable-gen: execution {execution_id} {'started' if created else 'resumed'}",
                file=sys.stderr,
                flush=True,
            )
            live = args.progress or sys.stderr.isatty()
            db_hint = f" --db {args.db}" if args.db else ""
            progress = _Progress(
                sys.stderr, execution_id, store.load(execution_id), live=live, db_hint=db_hint
            )
            store.listener = progress.on_change
            engine.on_wait = progress.on_wait
            progress.render(force=True)
        try:
            result = engine.resume(workflow, execution_id, wait=not args.no_wait)
        except KeyboardInterrupt:
            if progress is not None:
                progress.close()
            print(
                f"durable-gen: interrupted; resume with: durable-gen run {args.target} "
                f"--id {execution_id}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        finally:
            if progress is not None:
                progress.close()
        if args.json:
            print(
                json.dumps(
                    {
                        "id": result.execution_id,
                        "status": result.status,
                        "result": _decoded(result.result_payload),
                        "error": result.error.to_dict() if result.error else None,
                    }
                )
            )
            return {"SUCCEEDED": EXIT_OK, "RUNNING": EXIT_SUSPENDED}.get(result.status, EXIT_FAILED)
        return _report(
            result.execution_id, result.status, result.result_payload, result.error, store
        )
    finally:
        engine.close()


def _check_same_execution(info: ExecutionInfo, target: str, given: bool, value: Any) -> None:
    if info.target is not None and info.target != target:
        raise UsageError(f"execution {info.id!r} runs {info.target}, not {target}")
    if given and DEFAULT_SERDES.serialize(value) != info.input:
        raise UsageError(
            f"execution {info.id!r} was started with another input ({short(info.input)}); "
            "leave out --input to resume it"
        )


def _report(
    execution_id: str,
    status: str,
    payload: str | None,
    error: ErrorObject | None,
    store: SqliteStore,
) -> int:
    if status == "SUCCEEDED":
        try:
            value = result_value(payload)
            text = json.dumps(value, default=repr)
        except (SerializationError, TypeError, ValueError):
            text = payload or "null"
        print(text)
        return EXIT_OK
    if status == "RUNNING":
        wake = store.next_timer(execution_id)
        when = f"until {fmt_time(wake)}" if wake is not None else "for an external event"
        print(execution_id)
        print(
            f"durable-gen: execution {execution_id} is suspended {when}; "
            f"`durable-gen worker` or `durable-gen run TARGET --id {execution_id}` resumes it",
            file=sys.stderr,
        )
        return EXIT_SUSPENDED
    if status == "FAILED" and error is not None:
        kind = (error.type or "Error").rsplit(".", 1)[-1]  # AWS's SDK names its classes fully
        print(
            f"durable-gen: execution {execution_id} failed: {kind}: {error.message} "
            f"(durable-gen show {execution_id} has the stack trace)",
            file=sys.stderr,
        )
    elif status == "STOPPED":
        print(f"durable-gen: execution {execution_id} was stopped", file=sys.stderr)
    elif status == "TIMED_OUT":
        why = f": {error.message}" if error is not None and error.message else ""
        print(f"durable-gen: execution {execution_id} timed out{why}", file=sys.stderr)
    else:
        print(f"durable-gen: execution ended {status}", file=sys.stderr)
    return EXIT_FAILED


# ---------------------------------------------------------------------- start, worker


def _cmd_start(args: argparse.Namespace) -> int:
    workflow = load_target(args.target)
    _, value = _parse_input(args)
    with _open_store(args, create=True) as store:
        engine = SqliteEngine(store=store, version=args.code_version)
        try:
            execution_id = engine.start(
                workflow,
                value,
                execution_id=args.id,
                target=canonical_target(args.target),
                workdir=os.getcwd(),
                **_limits(args),
                **_queued(args),
            )
        except ValidationError as e:  # a deadline that has passed, an unknown queue
            raise UsageError(str(e)) from None
    print(execution_id)
    return EXIT_OK


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """``--timeout``, ``--deadline`` and ``--retention-days`` as ``start``'s keywords."""
    return {
        "timeout": args.timeout,
        "deadline": args.deadline,
        "retention_days": args.retention_days,
    }


def _queued(args: argparse.Namespace) -> dict[str, Any]:
    """``--queue``, ``--priority``, ``--dedup-id``, ``--partition`` and ``--on-duplicate``
    as ``start``'s keywords (none when no queue option is given)."""
    given = {
        "queue": args.queue,
        "priority": args.priority,
        "dedup_id": args.dedup_id,
        "partition": args.partition,
        "on_duplicate": args.on_duplicate,
    }
    return given if given != _NO_QUEUE else {}


_NO_QUEUE = {
    "queue": None,
    "priority": 0,
    "dedup_id": None,
    "partition": None,
    "on_duplicate": "error",
}


def _checked(check: Callable[[Any, str], int], what: str) -> Callable[[str], float]:
    """An argparse type: a number that ``check`` (``_engine.limits``) accepts."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        try:
            check(value, what)
        except ValidationError as e:
            raise argparse.ArgumentTypeError(f"{e} ({text!r})") from None
        return value

    return parse


def _deadline(text: str) -> datetime.datetime:
    """``--deadline``: an ISO 8601 time (UTC when it names no zone)."""
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a time such as 2026-12-06T10:00:00Z, got {text!r}"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return n


#: How long a worker or server that was asked to stop lets the running invocation
#: go on to its next checkpoint before it lets go of the execution anyway.
GRACE_SECONDS = 3.0


#: How long a starting worker waits for a database server it cannot reach yet (one
#: restarting, or starting beside it) before it gives up with the error.
WORKER_START_WAIT = 30.0


def _open_worker_store(args: argparse.Namespace) -> SqliteStore:
    """The worker's store; a server that cannot be reached yet (a retryable error) is
    waited for up to :data:`WORKER_START_WAIT` seconds, said once on stderr."""
    deadline = time.monotonic() + WORKER_START_WAIT
    said = False
    while True:
        try:
            return _open_store(args, create=True)
        except StoreError as e:
            if not e.retryable or time.monotonic() > deadline:
                raise
            if not said:
                print(
                    f"durable-gen worker: {e} (waiting up to {WORKER_START_WAIT:g} s for it)",
                    file=sys.stderr,
                    flush=True,
                )
                said = True
            time.sleep(0.5)


def _cmd_worker(args: argparse.Namespace) -> int:
    store = _open_worker_store(args)
    engine = SqliteEngine(
        store=store,
        version=args.code_version,
        retention_days=args.retention_days,
        hooks=_otel_hooks(args),
    )
    stop = threading.Event()
    timers: list[threading.Timer] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        # Stop taking work; the running invocation ends at its next checkpoint. A step
        # that runs past the grace period is interrupted (KeyboardInterrupt, in this
        # thread): its execution is let go at once and resumes from its last checkpoint.
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        engine.drain()
        timer = threading.Timer(GRACE_SECONDS, lambda: signal.raise_signal(signal.SIGTERM))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGINT)}

    def log(message: str) -> None:
        print(f"durable-gen worker: {message}", file=sys.stderr, flush=True)

    try:
        engine.work(
            once=args.once,
            poll_seconds=args.poll,
            stop=stop,
            log=log,
            concurrency=args.concurrency,
        )
    except KeyboardInterrupt:
        pass  # a second signal, or the grace period is over: leases are let go below
    finally:
        for timer in timers:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
    return EXIT_OK


# ---------------------------------------------------------------------- inspecting


#: What ``list --status`` accepts.
STATUSES = ("RUNNING", "PAUSING", "PAUSED", "SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT")


def _when(text: str) -> int:
    """A start-time bound: ISO 8601 (``2026-12-06``, ``2026-12-06T10:00:00Z``) or an
    age such as ``30m``, ``2h``, ``7d`` (that long ago); epoch ms."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if m:
        seconds = float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
        return RealClock().now() - round(seconds * 1000)
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a time such as 2026-12-06T10:00:00Z or an age such as 2h, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return round(when.timestamp() * 1000)


def _cmd_list(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        rows = store.executions(
            status=args.status,
            limit=args.limit + 1,
            target=canonical_target(args.function) if args.function else None,
            code_version=args.code_version,
            name_prefix=args.name_prefix,
            started_after=args.since,
            started_before=args.until,
            after=args.next_token,
        )
        more = len(rows) > args.limit
        rows = rows[: args.limit]
        token = store.page_marker(rows[-1]) if more else None
    if args.json:
        doc: dict[str, Any] = {"executions": [_execution_json(r) for r in rows]}
        if token is not None:
            doc["next_token"] = token
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not rows:
        print("no executions", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':<32}  {'STATUS':<9}  {'STARTED':<24}  {'VERSION':<16}  {'NOTE':<28}  TARGET")
    now = RealClock().now()
    for r in rows:
        print(
            f"{r.id:<32}  {r.status:<9}  {fmt_time(r.created_at):<24}  "
            f"{r.code_version or '-':<16}  {_note(r, now):<28}  {r.target or '-'}"
        )
    if token is not None:
        print(f"more: list again with --next-token {token}", file=sys.stderr)
    return EXIT_OK


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _execution_json(r: ExecutionInfo) -> dict[str, Any]:
    """An execution as ``list --json`` and ``show --json`` print it (README: "JSON output")."""
    return {
        "id": r.id,
        "status": r.status,
        "target": r.target,
        "code_version": r.code_version,
        "started": _iso(r.created_at),
        "ended": _iso(r.ended_at),
        "wakes": _iso(r.wake_at) if r.status == "RUNNING" else None,
        "input": _decoded(r.input),
        "result": _decoded(r.result),
        "error": r.error.to_dict() if r.error is not None else None,
        "deadline": _iso(r.deadline),
        "timeout_seconds": None if r.timeout_ms is None else r.timeout_ms / 1000,
        "retention_days": None if r.retention_ms is None else r.retention_ms / 86_400_000,
    }


def _decoded(payload: str | None) -> Any:
    """A stored payload as JSON when it is JSON, else its text."""
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _note(r: ExecutionInfo, now: int) -> str:
    if r.status != "RUNNING":
        return f"took {fmt_duration((r.ended_at or r.updated_at) - r.created_at)}"
    if r.lease_owner is not None and (r.lease_expires or 0) > now:
        return f"running ({describe_owner(r.lease_owner)})"
    if r.wake_at is None:
        return "waits for an external event"
    if r.wake_at <= now:
        return "due now"
    return f"wakes in {fmt_duration(r.wake_at - now)}"


_PRICE_FLAGS = (
    "price_per_million_operations",
    "price_per_gb_persisted",
    "price_per_gb_month_retained",
)


def _show_meter(args: argparse.Namespace) -> int:
    """``show ID --meter``: durable operations and bytes, and a cost estimate if priced."""
    from .._engine.meter import meter_execution
    from .._engine.pricing import estimate, prices_from_flags

    with _open_store(args) as store:
        store.info(args.id)  # a clear error for an unknown id
        try:
            meter = meter_execution(store, args.id, retention_days=args.retention_days)
        except ValidationError as e:
            raise UsageError(str(e)) from None
    flags = {k: getattr(args, k) for k in _PRICE_FLAGS}
    priced = args.prices is not None or any(v is not None for v in flags.values())
    est = None
    if priced:
        try:
            prices = prices_from_flags({"prices": args.prices, **flags})
            est = estimate(meter, prices, args.executions_per_month)
        except (ValidationError, OSError) as e:
            raise UsageError(f"cannot price the meter: {e}") from None
    if args.json:
        doc = meter.to_dict()
        if est is not None:
            doc["estimate"] = est.to_dict()
        print(json.dumps(doc, indent=2))
    else:
        print(meter.to_table())
        if est is not None:
            print(est.to_table())
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    if args.meter:
        return _show_meter(args)
    if args.retention_days is not None or args.prices is not None:
        raise UsageError("--retention-days and --prices go with --meter")
    with _open_store(args) as store:
        info = store.info(args.id)
        summary = None
        if args.json or args.html or args.all:
            ops = list(store.load(args.id).values())
        else:  # at most --limit operations, read without holding every one
            head = args.limit
            summary = store.operations_summary(args.id, head=head, tail=head // 2)
            ops = summary.first
        events = store.history(args.id) if args.html else []
    if args.json:
        doc = _execution_json(info)
        doc["operations"] = [op.to_dict() for op in ops if op.type is not OperationType.EXECUTION]
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if args.html:
        from .._html.timeline import render_timeline

        try:
            Path(args.html).write_text(render_timeline(info, ops, events), encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.html}: {e.strerror}") from None
        print(f"wrote {args.html}", file=sys.stderr)
        return EXIT_OK
    end = info.ended_at
    print(f"execution {info.id}")
    print(f"  status   {info.status}")
    print(f"  target   {info.target or '-'}")
    took = f"  (took {fmt_duration(end - info.created_at)})" if end is not None else ""
    print(f"  started  {fmt_time(info.created_at)}")
    if end is not None:
        print(f"  ended    {fmt_time(end)}{took}")
    elif info.wake_at is not None:
        print(f"  wakes    {fmt_time(info.wake_at)}")
    if info.deadline is not None:
        limit = f" (timeout {fmt_duration(info.timeout_ms)})" if info.timeout_ms else ""
        print(f"  deadline {fmt_time(info.deadline)}{limit}")
    if info.retention_ms is not None:
        print(f"  kept     {fmt_duration(info.retention_ms)} after it ends")
    print(f"  input    {short(info.input, 200)}")
    if info.result is not None:
        print(f"  result   {short(info.result, 200)}")
    if info.error is not None:
        from .._core.errors import AWS_SDK_EXCEPTIONS

        kind = (info.error.type or "Error").removeprefix(AWS_SDK_EXCEPTIONS + ".")
        print(f"  error    {kind}: {short(info.error.message, 200)}")
    tree = [op for op in ops if op.type is not OperationType.EXECUTION]
    if summary is not None and summary.count > len(tree):
        _print_some(summary, args.limit)
        open_callbacks = summary.open_callbacks
        tree = summary.failed
    else:
        print(f"operations ({len(tree)})")
        children: dict[str | None, list[Operation]] = {}
        for op in tree:
            children.setdefault(op.parent_id, []).append(op)
        _print_tree(children, None, "")
        open_callbacks = [
            op for op in tree if op.type is OperationType.CALLBACK and op.status.value == "STARTED"
        ]
    if open_callbacks and info.status in ("RUNNING", "PAUSING", "PAUSED"):
        db_hint = f" --db {args.db}" if args.db else ""
        print("open callbacks (complete one with the command beside it)")
        for op in open_callbacks:
            print(
                f"  {describe_operation(op.sub_type, op.type.value, op.name)}: "
                f"durable-gen callback succeed {op.callback_id} '<json>'{db_hint}"
            )
    if not args.no_trace:
        _print_failures(info, tree)
    return EXIT_OK


def _print_some(summary: OperationsSummary, limit: int) -> None:
    """More operations than ``--limit``: their counts, the first and the last ones."""
    counts = ", ".join(f"{n:,} {status}" for status, n in sorted(summary.by_status.items()))
    head = summary.first[: limit - len(summary.last)]
    print(
        f"operations ({summary.count:,}: {counts}; the first {len(head):,} and the last "
        f"{len(summary.last):,} as recorded; --all prints every one, --limit N more or fewer)"
    )
    for i, op in enumerate(head, 1):
        print(f"  #{i:<6} {_op_line(op)}")
    hidden = summary.count - len(head) - len(summary.last)
    if hidden:
        print(f"  … {hidden:,} more …")
    for i, op in enumerate(summary.last, summary.count - len(summary.last) + 1):
        print(f"  #{i:<6} {_op_line(op)}")


def _print_failures(info: ExecutionInfo, ops: list[Operation]) -> None:
    """Each recorded failure with its stack trace, the execution's first."""
    failed: list[tuple[str, ErrorObject]] = []
    if info.error is not None:
        failed.append(("the execution", info.error))
    for op in ops:
        if op.error is not None and op.error.stack_trace:
            what = describe_operation(op.sub_type, op.type.value, op.name)
            attempt = f", attempt {op.attempt}" if op.attempt else ""
            failed.append((f"{what} ({op.status.value}{attempt})", op.error))
    traced = [(who, e) for who, e in failed if e.stack_trace]
    if not traced:
        return
    print("failures (--no-trace hides them)")
    for who, error in traced:
        kind = (error.type or "Error").rsplit(".", 1)[-1]
        print(f"  {who}: {kind}: {error.message}")
        for frame in error.stack_trace or ():
            for line in str(frame).rstrip("\n").splitlines():
                print(f"    {line}")


def _op_line(op: Operation) -> str:
    from .._core.errors import AWS_SDK_EXCEPTIONS

    what = describe_operation(op.sub_type, op.type.value, op.name)
    parts = [what, op.status.value]
    if op.end_timestamp is not None:
        parts.append(fmt_duration(op.end_timestamp - op.start_timestamp))
    if op.type is OperationType.STEP and (op.attempt or 0) > 1:
        parts.append(f"{op.attempt} attempts")
    if op.status is OperationStatus.PENDING and op.next_attempt_timestamp is not None:
        parts.append(f"retry at {fmt_time(op.next_attempt_timestamp)}")
    if (
        op.type is OperationType.WAIT
        and op.status is OperationStatus.STARTED
        and op.scheduled_end_timestamp
    ):
        parts.append(f"until {fmt_time(op.scheduled_end_timestamp)}")
    if op.type is OperationType.CALLBACK and op.callback_id:
        parts.append(f"callback {op.callback_id}")
        if op.status is OperationStatus.STARTED and op.callback_timeout:
            deadline = op.start_timestamp + op.callback_timeout * 1000
            parts.append(f"times out at {fmt_time(deadline)}")
    line = "  ".join(parts)
    if op.status is OperationStatus.SUCCEEDED and op.result:
        line += f"  → {short(op.result)}"
    elif op.error is not None:
        # AWS's SDK names the failure that escaped a context by its own class
        # (aws_durable_execution_sdk_python.exceptions.StepError): show the class;
        # the original failure is on the operation below it in the tree
        kind = (op.error.type or "Error").removeprefix(AWS_SDK_EXCEPTIONS + ".")
        line += f"  ✗ {kind}: {short(op.error.message)}"
    return line


def _print_tree(children: dict[str | None, list[Operation]], parent: str | None, pad: str) -> None:
    kids = children.get(parent, [])
    for i, op in enumerate(kids):
        last = i == len(kids) - 1
        print(f"{pad}{'└── ' if last else '├── '}{_op_line(op)}")
        _print_tree(children, op.id, pad + ("    " if last else "│   "))


def _cmd_history(args: argparse.Namespace) -> int:
    """Printed a page at a time as it is read (memory: one page, whatever the length);
    ``--json`` prints the same text ``json.dumps({"Events": [...]}, indent=2)`` would."""
    with _open_store(args) as store:
        pages = store.history_pages(args.id)
        first = next(pages, [])  # an unknown id fails here, before anything is printed
        write = sys.stdout.write
        if args.json:
            write('{\n  "Events": [')
            sep = "\n    "
            encode = json.JSONEncoder(indent=2).encode
            for page in itertools.chain([first], pages):
                for e in page:
                    # the event's lines, indented as inside the whole document
                    write(sep + encode(e).replace("\n", "\n    "))
                    sep = ",\n    "
            write("\n  ]\n}\n" if sep != "\n    " else "]\n}\n")
            return EXIT_OK
        for page in itertools.chain([first], pages):
            for e in page:
                name = e.get("Name")
                label = f" {name!r}" if name else ""
                details = e.get(f"{e['EventType']}Details") or {}
                write(
                    f"{e['EventId']:>4}  {fmt_time(e['EventTimestamp'])}  {e['EventType']:<20}"
                    f"{label}  {short(_summary(details), 80)}".rstrip()
                    + "\n"
                )
    return EXIT_OK


def _summary(details: Mapping[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if isinstance(value, dict) and "Payload" in value:
            payload = value["Payload"]
            if isinstance(payload, dict):
                payload = f"{payload.get('ErrorType')}: {payload.get('ErrorMessage')}"
            parts.append(f"{key}={payload}")
        elif isinstance(value, dict):
            parts.append(f"{key}={json.dumps(value, separators=(',', ':'))}")
        elif key not in ("StartTimestamp", "EndTimestamp", "ScheduledEndTimestamp"):
            parts.append(f"{key}={value}")
    return " ".join(parts)


# ---------------------------------------------------------------------- check


def _cmd_check(args: argparse.Namespace) -> int:
    """Replay recorded executions against the current code; nothing runs."""
    from ..testing._check import CheckResult, check_replay_compatible, read_history_file

    workflow = load_target(args.target)
    checked: list[tuple[str, CheckResult]] = []
    for path in args.history_file:
        try:
            checked.append((path, check_replay_compatible(workflow, read_history_file(path))))
        except OSError as e:
            raise UsageError(f"cannot read --history-file {path}: {e.strerror}") from None
        except CorruptLogError as e:
            where = "" if str(e).startswith(f"{path}: ") else f"{path}: "
            raise UsageError(f"--history-file {where}{e}") from None
    if args.id or args.status or args.all or not args.history_file:
        for label, ops in _recorded_executions(args):
            try:
                result = check_replay_compatible(workflow, ops)
            except CorruptLogError as e:  # no EXECUTION operation
                result = CheckResult(
                    execution_id=label, compatible=False, message=f"cannot be replayed: {e}"
                )
            checked.append((label, result))
    return _report_checks(checked)


def _recorded_executions(args: argparse.Namespace) -> list[tuple[str, Mapping[str, Operation]]]:
    """(id, operations) of the executions ``--id`` / ``--status`` / ``--all`` name
    (default: the RUNNING ones) among those of TARGET (or of no recorded target)."""
    try:
        store = _open_store(args)
    except StoreError as e:
        raise UsageError(str(e)) from None
    with store:
        if args.id:
            for execution_id in args.id:
                if not store.exists(execution_id):
                    raise UsageError(
                        f"no execution with id {execution_id!r} in {store.path}; "
                        "`durable-gen list` shows the executions"
                    )
            return [(i, store.load(i)) for i in args.id]
        status = None if args.all else (args.status or "RUNNING").upper()
        target = canonical_target(args.target)
        rows = store.executions(status=status, limit=1 << 62)
        mine = [r for r in rows if r.target in (None, target)]
        what = "executions" if status is None else f"{status} executions"
        if len(mine) < len(rows):
            print(
                f"durable-gen: skipped {len(rows) - len(mine)} {what} of other targets "
                "(name them with --id to check them against this code)",
                file=sys.stderr,
            )
        if not mine:
            print(f"durable-gen: no {what} of {args.target} to check", file=sys.stderr)
        return [(r.id, store.load(r.id)) for r in reversed(mine)]  # oldest first


def _report_checks(checked: Sequence[tuple[str, Any]]) -> int:
    """Print one line per compatible execution, a block per divergence; exit 0 or 1."""
    bad = 0
    for label, result in checked:
        if result.compatible:
            print(f"{label}: {result.message}")
            continue
        bad += 1
        if result.position is None:
            print(f"{label}: {result.message}")
            continue
        print(f"{label}: DIVERGES at the {result.position}")
        print(f"    recorded:  {result.recorded}")
        print(f"    now:       {_check_words(result.yielded)}")
        if result.source is not None:
            path, sep, rest = result.source.rpartition(":")
            relative = os.path.relpath(path) if sep else path
            source = result.source if relative.startswith("..") else f"{relative}:{rest}"
            print(f"    at:        {source}")
            if result.source_line:
                print(f"               {result.source_line}")
    if checked:
        print(
            f"{len(checked)} execution{'' if len(checked) == 1 else 's'} checked: "
            f"{len(checked) - bad} compatible, {bad} diverge{'s' if bad == 1 else ''}"
        )
    return EXIT_FAILED if bad else EXIT_OK


def _check_words(yielded: str | None) -> str:
    from ..testing._check import present_tense

    return present_tense(yielded or "")


def _cmd_callback(args: argparse.Namespace) -> int:
    payload = args.payload
    if payload == "-":
        payload = sys.stdin.read()
    error = None
    if args.action == "fail":
        error = ErrorObject(type=args.error_type, message=payload)
        payload = None
    elif args.action == "heartbeat" and payload is not None:
        raise UsageError("a heartbeat carries no payload")
    with _open_store(args) as store:
        execution_id = store.complete_callback(
            args.callback_id,
            args.action,
            RealClock().now(),
            payload=payload,
            error=error,
            execution_id=args.execution,
        )
    done = {"succeed": "succeeded", "fail": "failed", "heartbeat": "heartbeat sent to"}
    print(f"{done[args.action]} callback of execution {execution_id}", file=sys.stderr)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from .._http.serve import (
        load_hooks,
        make_server,
    )

    functions: dict[str, str] = {}
    for spec in args.function:
        name, sep, target = spec.partition("=")
        if not sep or not name or not target:
            raise UsageError(f"--function takes NAME=TARGET, got {spec!r}")
        functions[name] = target
    token = args.token if args.token is not None else os.environ.get("DURABLE_GEN_TOKEN")
    if token is not None and not token.strip():
        raise UsageError("--token (or DURABLE_GEN_TOKEN) must not be empty")
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        hooks = [h for target in args.hooks for h in load_hooks(target)]
        hooks += _otel_hooks(args)
        server = make_server(
            args.host,
            args.port,
            db=args.db,
            functions=functions,
            token=token,
            skip_time=args.skip_time,
            hooks=hooks,
            region=region or "us-east-1",
            account=args.account,
            concurrency=args.concurrency,
            version=args.code_version,
            function_configs=_function_configs(args.function_configs),
            retention_days=args.retention_days,
        )
    except (TargetError, ValidationError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror}") from None
    host, port = server.server_address[:2]
    print(f"durable-gen: serving the Lambda API on http://{host!s}:{port}", file=sys.stderr)
    console = f"http://{f'[{host!s}]' if ':' in str(host) else f'{host!s}'}:{port}/console/"
    print(f"durable-gen: the web console is on {console}", file=sys.stderr)
    if getattr(args, "open_console", None) is not None:
        args.open_console(console)
    if token is None and args.host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"durable-gen: warning: {args.host} is reachable from other machines and no "
            "--token is set: anyone who can connect can start, read and complete executions",
            file=sys.stderr,
        )

    def on_term(signum: int, frame: FrameType | None) -> None:
        # serve_forever runs in this thread: shut it down from another one
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.drain(GRACE_SECONDS)  # the running invocation ends; leases are let go
        server.server_close()
    return EXIT_OK


def _function_configs(text: str | None) -> dict[str, Any] | None:
    """``--function-configs``: JSON, or ``file://PATH`` to a file of it (as AWS's emulator
    takes it): ``{"NAME": {"DurableConfig": {"ExecutionTimeout": S, "RetentionPeriodInDays":
    D}}}``."""
    if text is None:
        return None
    if text.startswith("file://"):
        try:
            text = Path(text[len("file://") :]).read_text()
        except OSError as e:
            raise UsageError(f"cannot read --function-configs: {e.strerror}: {text}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(
            f"--function-configs is not valid JSON ({e.msg} at position {e.pos})"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            '--function-configs must be a JSON object such as {"NAME": {"DurableConfig": '
            f'{{"ExecutionTimeout": 3600}}}}}}, got {short(text, 60)}'
        )
    return value


def _cmd_ui(args: argparse.Namespace) -> int:
    """``serve`` on this machine, its console's address on stdout (and opened)."""

    def open_console(url: str) -> None:
        print(url, flush=True)
        if not args.no_open:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    args.open_console = open_console
    return _cmd_serve(args)


def _cmd_stop(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        store.stop(args.id, RealClock().now())
    print(f"stopped execution {args.id}", file=sys.stderr)
    return EXIT_OK


def _cmd_pause(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        status = store.pause(args.id, RealClock().now(), reason=args.reason)
    if status == "PAUSING":
        print(
            f"pausing execution {args.id}: the worker advancing it stops at its next checkpoint",
            file=sys.stderr,
        )
    else:
        print(f"paused execution {args.id}", file=sys.stderr)
    return EXIT_OK


def _cmd_resume(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        store.resume_paused(args.id, RealClock().now(), reason=args.reason)
    print(f"resumed execution {args.id}: a worker advances it now", file=sys.stderr)
    return EXIT_OK


def _cmd_redrive(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        rerun = store.redrive(args.id, RealClock().now())
    print(
        f"redrove execution {args.id}: {len(rerun)} operation(s) run again, the recorded "
        "successes before them are kept; a worker advances it now",
        file=sys.stderr,
    )
    return EXIT_OK


def _cmd_fork(args: argparse.Namespace) -> int:
    new_id = args.new_id or uuid.uuid4().hex
    with _open_store(args) as store:
        target = canonical_target(args.target) if args.target else store.info(args.id).target
        version = args.code_version
        if version is None and target is not None:
            version = code_version_of(resolve_target(target, workdir=store.info(args.id).workdir))
        try:
            point = store.fork(
                args.id,
                new_id,
                args.at,
                RealClock().now(),
                target=target,
                code_version=version,
            )
        except ValidationError as e:
            raise UsageError(f"cannot fork execution {args.id}: {e}") from None
    print(
        f"forked execution {args.id} from operation {point[:12]}... as {new_id}: the "
        "operations recorded before it are kept; a worker advances it now",
        file=sys.stderr,
    )
    print(new_id)
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        store.delete(args.id, force=args.force)
    print(f"deleted execution {args.id} with its log, history and callbacks", file=sys.stderr)
    return EXIT_OK


def _cmd_queue(args: argparse.Namespace) -> int:
    from . import queues as _queues

    with _open_store(args, create=args.queue_command == "add") as store:
        try:
            return _queues.command(SqliteEngine(store=store), args)
        except ValidationError as e:
            raise UsageError(str(e)) from None


def _cmd_schedule(args: argparse.Namespace) -> int:
    from . import schedules as _schedules

    with _open_store(args, create=args.schedule_command == "add") as store:
        try:
            return _schedules.command(SqliteEngine(store=store), args)
        except ValidationError as e:
            raise UsageError(str(e)) from None


def _cmd_logs(args: argparse.Namespace) -> int:
    from . import logs as _logs

    with _open_store(args) as store:
        return _logs.command(store, args)


# ---------------------------------------------------------------------- parser


#: ``--log-level`` choices (also ``$DURABLE_GEN_LOG``).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_EPILOG = """\
exit status: 0 done (run: the execution succeeded); 1 failed (the execution failed,
or the store refused: a divergence, a corrupt file, a conflict); 2 bad usage (a
bad option, input or target); 3 run --no-wait: suspended, its id on stdout;
130 interrupted. Global options (--db, --log-level, --json) go before or after
the subcommand."""


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--db`` and ``--log-level``, accepted before the subcommand (``top``) and
    after it; a value given after it wins."""
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--db",
        default=default,
        help="the database: a SQLite file, or a postgresql://user@host/dbname URL "
        "(default: $DURABLE_GEN_DB, else $XDG_DATA_HOME/durable_gen/durable_gen.db)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        help="show workflow log records (durable_gen.get_logger) and durable_gen's own "
        "at this level and above on stderr (default: $DURABLE_GEN_LOG, else none)",
    )


def _limit_options(p: argparse.ArgumentParser) -> None:
    """``--timeout``, ``--deadline`` and ``--retention-days`` of a new execution."""
    p.add_argument(
        "--timeout",
        type=_checked(timeout_ms, "--timeout"),
        metavar="SECONDS",
        help="end it TIMED_OUT if it still runs SECONDS after it started (Lambda's "
        "ExecutionTimeout; default: no timeout)",
    )
    p.add_argument(
        "--deadline",
        type=_deadline,
        metavar="T",
        help="end it TIMED_OUT if it still runs at T (ISO 8601; with --timeout: the earlier)",
    )
    p.add_argument(
        "--retention-days",
        type=_checked(retention_ms, "--retention-days"),
        metavar="DAYS",
        help="delete it DAYS after it ended (Lambda's RetentionPeriodInDays; default: the "
        "worker's --retention-days, else kept forever)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="durable-gen",
        description="Run durable workflows written as Python generators.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"durable-gen {__version__}")
    _global_options(parser, top=True)
    parser.add_argument(
        "--json",
        dest="json_first",
        action="store_true",
        help="JSON output, for " + ", ".join(_JSON_COMMANDS) + " (also after the subcommand)",
    )
    db = argparse.ArgumentParser(add_help=False)
    _global_options(db, top=False)
    sub = parser.add_subparsers(dest="command", required=True)

    def pin(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument(
            "--version",
            dest="code_version",
            metavar="V",
            help=what,
        )

    run = sub.add_parser(
        "run", parents=[db], help="run a workflow until it ends and print its JSON result"
    )
    run.add_argument("target", help="package.module:function or path/to/file.py:function")
    run.add_argument("--input", help="the workflow's input as JSON")
    run.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    run.add_argument("--input-file", help="read the input JSON from this file")
    run.add_argument("--id", help="the execution id; an existing execution is resumed")
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="return (exit status 3, id on stdout) once the execution waits on a timer",
    )
    run.add_argument(
        "--quiet", action="store_true", help="print only the result (or the id when suspended)"
    )
    run.add_argument(
        "--json",
        action="store_true",
        help='print {"id", "status", "result", "error"} on stdout (same exit status)',
    )
    run.add_argument(
        "--progress",
        action="store_true",
        help="a live status line even when stderr is not a terminal",
    )
    run.add_argument(
        "--virtual-time",
        action="store_true",
        help="skip through waits and retry delays instead of sleeping",
    )
    pin(run, "the code version a new execution records (default: a digest of its module)")
    _limit_options(run)
    run.set_defaults(func=_cmd_run)

    start = sub.add_parser(
        "start", parents=[db], help="record a new execution for a worker and print its id"
    )
    start.add_argument("target", help="package.module:function or path/to/file.py:function")
    start.add_argument("--input", help="the workflow's input as JSON")
    start.add_argument("--input-file", help="read the input JSON from this file")
    start.add_argument(
        "--id", help="the execution's name; the same name and input is the same execution"
    )
    pin(start, "the code version it records (default: a digest of the workflow's module)")
    _limit_options(start)
    start.add_argument("--queue", metavar="Q", help="start it onto queue Q (durable-gen queue)")
    start.add_argument(
        "--priority", type=int, default=0, metavar="P", help="on its queue: higher starts first"
    )
    start.add_argument(
        "--dedup-id",
        metavar="D",
        help="refuse the start while an execution of the queue with this id is queued or running",
    )
    start.add_argument("--partition", metavar="K", help="the partition of a partitioned queue")
    start.add_argument(
        "--on-duplicate",
        choices=("error", "existing"),
        default="error",
        help="with --dedup-id held: fail (default), or print the live execution's id",
    )
    start.set_defaults(func=_cmd_start)
    queue = sub.add_parser(
        "queue", parents=[db], help="declare, list and delete queues (admission rules)"
    )
    from . import queues as _queues

    _queues.add_arguments(queue, db)
    queue.set_defaults(func=_cmd_queue)
    schedule = sub.add_parser(
        "schedule", parents=[db], help="add, list, pause, resume, delete and backfill schedules"
    )
    from . import schedules as _schedules

    _schedules.add_arguments(schedule, db)
    schedule.set_defaults(func=_cmd_schedule)

    worker = sub.add_parser(
        "worker", parents=[db], help="advance every execution whose timer is due"
    )
    worker.add_argument("--once", action="store_true", help="advance what is due now, then exit")
    worker.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    worker.add_argument(
        "--poll", type=float, default=0.5, help="seconds between looks for new work (0.5)"
    )
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        default=1,
        metavar="N",
        help="advance up to N executions at once, each on a thread of its own (1)",
    )
    pin(
        worker,
        "advance only executions that started on code version V (default: all of them)",
    )
    worker.add_argument(
        "--retention-days",
        type=_checked(retention_ms, "--retention-days"),
        metavar="DAYS",
        help="delete ended executions that recorded no retention DAYS after they ended "
        "(default: keep them forever)",
    )
    worker.set_defaults(func=_cmd_worker)

    lst = sub.add_parser("list", parents=[db], help="list executions, newest first")
    lst.add_argument("--status", choices=STATUSES, help="only executions with this status")
    lst.add_argument("--function", metavar="TARGET", help="only executions of this workflow")
    pin(lst, "only executions that started on code version V")
    lst.add_argument("--name-prefix", metavar="P", help="only executions whose id starts with P")
    lst.add_argument(
        "--since", type=_when, metavar="T", help="started at or after T (ISO time, or 2h, 7d)"
    )
    lst.add_argument("--until", type=_when, metavar="T", help="started at or before T")
    lst.add_argument("--limit", type=_positive_int, default=50, help="at most this many (50)")
    lst.add_argument(
        "--next-token", metavar="TOKEN", help="the next page (the token the last page printed)"
    )
    lst.add_argument("--json", action="store_true", help="print JSON (with next_token)")
    lst.set_defaults(func=_cmd_list)

    show = sub.add_parser("show", parents=[db], help="an execution and its operations")
    show.add_argument("id")
    show.add_argument("--html", metavar="FILE", help="write a self-contained HTML timeline")
    show.add_argument(
        "--no-trace", action="store_true", help="leave out the stack traces of failures"
    )
    show.add_argument(
        "--limit",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="at most N operations (default 1,000): a larger execution prints counts by "
        "status and the first and last ones",
    )
    show.add_argument("--all", action="store_true", help="print every operation, however many")
    show.add_argument(
        "--meter",
        action="store_true",
        help="durable operations and bytes persisted, as Lambda meters them",
    )
    show.add_argument(
        "--json",
        action="store_true",
        help="print JSON: the execution and its operations (with --meter: the meter)",
    )
    show.add_argument(
        "--retention-days",
        type=float,
        metavar="DAYS",
        help="with --meter: report data retained for this retention period",
    )
    show.add_argument(
        "--prices", metavar="FILE", help="with --meter: a JSON/TOML file of unit prices"
    )
    for flag in _PRICE_FLAGS:
        show.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            type=float,
            metavar="PRICE",
            help="with --meter: a unit price (overrides --prices)",
        )
    show.add_argument(
        "--executions-per-month",
        type=int,
        default=1_000_000,
        metavar="N",
        help="with a price: the monthly volume to estimate (default 1,000,000)",
    )
    show.set_defaults(func=_cmd_show)

    history = sub.add_parser("history", parents=[db], help="an execution's history events")
    history.add_argument("id")
    history.add_argument(
        "--json", action="store_true", help="GetDurableExecutionHistory-shaped JSON"
    )
    history.set_defaults(func=_cmd_history)

    from . import logs as _logs

    logs = sub.add_parser(
        "logs",
        parents=[db],
        help="an execution's kept log records",
        epilog=_logs.JSON_SCHEMA,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _logs.add_arguments(logs)
    logs.set_defaults(func=_cmd_logs)

    callback = sub.add_parser(
        "callback", parents=[db], help="complete (or heartbeat) a callback of an execution"
    )
    callback.add_argument("action", choices=["succeed", "fail", "heartbeat"])
    callback.add_argument("callback_id")
    callback.add_argument(
        "payload",
        nargs="?",
        help="succeed: the result, passed as is (- reads stdin); fail: the error message",
    )
    callback.add_argument(
        "--error-type", default="CallbackFailed", help="fail: the ErrorType (CallbackFailed)"
    )
    callback.add_argument(
        "--execution",
        metavar="ID",
        help="refuse unless the callback belongs to this execution",
    )
    callback.set_defaults(func=_cmd_callback)

    serve = sub.add_parser(
        "serve", parents=[db], help="serve the engine over HTTP in the Lambda API's shapes"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    serve.add_argument("--otel", action="store_true", help=_OTEL_HELP)
    serve.add_argument(
        "--token",
        help="require 'Authorization: Bearer TOKEN' on every request "
        "(default: $DURABLE_GEN_TOKEN, else no token)",
    )
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help="serve TARGET (module:function or file.py:function) as function NAME",
    )
    serve.add_argument(
        "--concurrency",
        type=_positive_int,
        default=1,
        metavar="N",
        help="advance up to N executions at once (1)",
    )
    serve.add_argument(
        "--function-configs",
        metavar="JSON",
        help="each served function's DurableConfig in Lambda's shape (or file://PATH), e.g. "
        '{"NAME": {"DurableConfig": {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 7}}}; '
        '"Queue": "Q" (and "Priority": P) beside DurableConfig start its executions on queue Q',
    )
    serve.add_argument(
        "--retention-days",
        type=_checked(retention_ms, "--retention-days"),
        metavar="DAYS",
        help="delete ended executions whose function sets no retention DAYS after they "
        "ended (default: keep them forever)",
    )
    serve.add_argument(
        "--region",
        help="the region in the ARNs handed out (default: $AWS_REGION, $AWS_DEFAULT_REGION, "
        "else us-east-1)",
    )
    serve.add_argument(
        "--account",
        default="000000000000",
        help="the 12-digit account id in the ARNs handed out (000000000000)",
    )
    serve.add_argument(
        "--skip-time",
        action="store_true",
        help="skip through waits and retry delays (callback timeouts still take real time)",
    )
    serve.add_argument(
        "--hooks",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="install lifecycle hooks: a Hooks instance, a list of them, or a factory",
    )
    pin(serve, "executions it starts record version V; its worker advances only those")
    serve.set_defaults(func=_cmd_serve)

    ui = sub.add_parser(
        "ui",
        parents=[db],
        help="serve the web console on this machine and open it in a browser",
        description="`durable-gen serve` on 127.0.0.1 with its web console (/console/): "
        "prints the console's address and opens it (with $DURABLE_GEN_TOKEN set, the "
        "console asks for that token).",
    )
    ui.add_argument("--port", type=int, default=8765, help="port to listen on (8765; 0: any)")
    ui.add_argument("--no-open", action="store_true", help="print the address, open nothing")
    ui.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME=TARGET",
        help="also serve TARGET as function NAME (as serve --function)",
    )
    ui.set_defaults(
        func=_cmd_ui,
        host="127.0.0.1",
        token=None,
        region=None,
        account="000000000000",
        concurrency=1,
        skip_time=False,
        hooks=[],
        code_version=None,
        function_configs=None,
        retention_days=None,
    )

    check = sub.add_parser(
        "check",
        parents=[db],
        help="replay recorded executions against the current code (runs nothing)",
        description="Replay recorded executions against TARGET's current code without "
        "running any step, wait, callback or invoke; report per execution 'compatible' "
        "or its first divergence. Exit status 0: all compatible; 1: one diverges; "
        "2: bad input. Without --id, --status, --all or --history-file: the RUNNING "
        "executions of TARGET in the database.",
    )
    check.add_argument("target", help="package.module:function or path/to/file.py:function")
    chosen = check.add_mutually_exclusive_group()
    chosen.add_argument(
        "--id", action="append", default=[], metavar="ID", help="check this execution (repeat)"
    )
    chosen.add_argument(
        "--status", help="check TARGET's executions with this status (e.g. RUNNING)"
    )
    chosen.add_argument("--all", action="store_true", help="check all of TARGET's executions")
    check.add_argument(
        "--history-file",
        action="append",
        default=[],
        metavar="F",
        help="check the history in F: `durable-gen history ID --json` output or "
        "GetDurableExecutionHistory's response (repeat)",
    )
    check.set_defaults(func=_cmd_check)

    stop = sub.add_parser("stop", parents=[db], help="stop a running execution")
    stop.add_argument("id")
    stop.set_defaults(func=_cmd_stop)
    pause = sub.add_parser(
        "pause",
        parents=[db],
        help="pause a running execution: nothing advances it until it is resumed",
    )
    pause.add_argument("id")
    pause.add_argument("--reason", help="recorded in its ExecutionPaused event")
    pause.set_defaults(func=_cmd_pause)
    resume = sub.add_parser("resume", parents=[db], help="resume a paused execution")
    resume.add_argument("id")
    resume.add_argument("--reason", help="recorded in its ExecutionResumed event")
    resume.set_defaults(func=_cmd_resume)
    redrive = sub.add_parser(
        "redrive",
        parents=[db],
        help="run a FAILED, STOPPED or TIMED_OUT execution again from its failed operations",
    )
    redrive.add_argument("id")
    redrive.set_defaults(func=_cmd_redrive)
    fork = sub.add_parser(
        "fork",
        parents=[db],
        help="a new execution with another's operations recorded before OP, run on this code",
    )
    fork.add_argument("id", help="the execution to fork")
    fork.add_argument(
        "--at", required=True, metavar="OP", help="the operation (id or unique name) to run from"
    )
    fork.add_argument("--id", dest="new_id", help="the new execution's id (default: a new uuid)")
    fork.add_argument("--target", help="the workflow it runs (default: the source's)")
    pin(fork, "the code version the fork records")
    fork.set_defaults(func=_cmd_fork)
    delete = sub.add_parser(
        "delete", parents=[db], help="delete an ended execution with its log and history"
    )
    delete.add_argument("id")
    delete.add_argument("--force", action="store_true", help="delete a running or paused one too")
    delete.set_defaults(func=_cmd_delete)
    return parser


def _configure_logging(level: str | None) -> None:
    """Workflow log records (and durable_gen's) on stderr, each naming its execution
    and operation; a replayed line is dropped by the logger itself."""
    level = level or os.environ.get("DURABLE_GEN_LOG") or None
    if level is None:
        return
    if level.upper() not in LOG_LEVELS:
        raise UsageError(
            f"DURABLE_GEN_LOG must be one of {', '.join(LOG_LEVELS)}, got {level!r:.40}"
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RecordFormat())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


class _RecordFormat(logging.Formatter):
    """``time level logger [execution operation] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ex = getattr(record, "execution_id", None)
        op = getattr(record, "operation_name", None) or getattr(record, "operation_id", None)
        where = f" [{ex}{' ' + str(op) if op else ''}]" if ex else ""
        record.where = where
        return super().format(record)


#: The commands with a ``--json`` output (README, "JSON output", has their shapes).
_JSON_COMMANDS = ("run", "list", "show", "history", "logs")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json_first:  # ``durable-gen --json list``: the same as ``list --json``
        if not hasattr(args, "json"):
            parser.error(
                f"--json is an output of {', '.join(_JSON_COMMANDS)}; {args.command} has none"
            )
        args.json = True
    try:
        _configure_logging(args.log_level)
    except UsageError as e:
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as e:
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ExecutionAlreadyStartedError as e:  # a name taken with another input: the caller's
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (NonDeterminismError, StoreError) as e:
        print(f"durable-gen: {e}", file=sys.stderr)
        return EXIT_FAILED
    except DurableGenError as e:
        print(f"durable-gen: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("durable-gen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
