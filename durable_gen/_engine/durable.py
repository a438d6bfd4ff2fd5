"""The durable engine: executions in a store that several processes share.

:class:`DurableEngine` is the resume loop of ``_engine.local.LocalEngine`` on a
:class:`~durable_gen._core.contract.DurableStore`: it takes an execution's lease before
advancing it and renews it from a heartbeat thread (:class:`_Heartbeat`) while a
step runs or it sleeps; it starts the executions that ``Invoke`` asks for; it
wakes early when another process completes a callback; and :meth:`DurableEngine.work`
is the worker loop of ``durable-gen worker`` and ``serve``. It knows no database:
the SQLite engine is this engine on a :class:`~durable_gen.SqliteStore`, and a
second durable store is a new store class, not a new engine.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from .._core import service as _service
from .._core.contract import (
    LIVE_STATUSES,
    DurableStore,
    ExecutionInfo,
    LeaseHeldError,
    LeaseLostError,
)
from .._core.errors import (
    DurableGenError,
    ErrorObject,
    InvocationInterruptedError,
    StoreError,
    ValidationError,
    VersionMismatchError,
)
from .._core.log import (
    OperationStatus,
    OperationType,
)
from .._core.retry import RetryPolicy
from .._core.serdes import DEFAULT_SERDES
from .._core.traceparent import parse_traceparent
from .._stores.queues import DuplicateExecutionError, QueueFullError
from .clock import Clock, RealClock
from .driver import InvocationOutcome
from .hooks import HookRunner, Hooks
from .limits import Limits, deadline_ms, parse_durable_config
from .local import (
    INVOCATION_RETRY,
    ExecutionResult,
    LocalEngine,
)
from .queues import (
    Queue,
    QueueBinding,
    QueueStats,
    check_binding,
    check_start_options,
    queue_binding,
)
from .schedules import Schedule, ScheduleStats, instant_ms
from .targets import (
    TargetError,
    canonical_target,
    code_version_of,
    resolve_target,
    target_of,
)

__all__ = [
    "ERROR_BACKOFF_MS",
    "PURGE_BATCH",
    "PURGE_INTERVAL_MS",
    "RETRY_BACKOFF_MS",
    "DurableEngine",
]

#: How long an execution whose invocation failed (non-determinism, a workflow that
#: cannot be loaded) rests before a worker tries it again, in milliseconds.
ERROR_BACKOFF_MS = 60_000
#: How long an execution rests after a transient store failure (a locked database, a
#: full disk) before a worker tries it again, in milliseconds.
RETRY_BACKOFF_MS = 1_000
#: How many ended executions past their retention a worker deletes per transaction,
#: and how often it looks for them when the last look found fewer (ms).
PURGE_BATCH = 500
PURGE_INTERVAL_MS = 60_000


class _Heartbeat:
    """Renews a lease from a daemon thread until stopped; notes when it is lost."""

    def __init__(
        self,
        store: DurableStore,
        execution_id: str,
        deadline: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.execution_id = execution_id
        #: with a deadline, the beat also ends the execution TIMED_OUT when it comes (a
        #: step still running then is not interrupted; its result is fenced off)
        self.deadline = deadline
        self.clock = clock or RealClock()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"durable-gen-lease-{execution_id[:12]}", daemon=True
        )

    def start(self) -> _Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = self.store.lease_ms / 3000
        deadline = self.deadline
        wait = interval
        while True:
            if deadline is not None:
                wait = min(wait, max(0.01, (deadline - self.clock.now()) / 1000))
            if self._stop.wait(wait):
                return
            wait = interval
            try:
                if deadline is not None and self.clock.now() >= deadline:
                    self.store.time_out(self.execution_id, self.clock.now())
                    self.lost = True  # ended (by this beat or before it): stop advancing
                    return
                if not self.store.renew(self.execution_id):
                    self.lost = True
                    return
            except DurableGenError:
                continue  # a busy database: try again at the next beat

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class DurableEngine(LocalEngine):
    """Drives executions kept in a :class:`~durable_gen._core.contract.DurableStore`.

    ``run``, ``start`` and ``resume`` work as on :class:`~durable_gen.InMemoryEngine`,
    on the real clock by default. Advancing an execution takes its lease: with
    ``wait_for_lease`` (default) the engine waits for another live worker to let go
    of it, otherwise it raises :class:`LeaseHeldError`. :meth:`work` is the worker
    loop. The SQLite engine is this engine on a :class:`~durable_gen.SqliteStore`.
    """

    store: DurableStore

    def __init__(
        self,
        store: DurableStore,
        *,
        clock: Clock | None = None,
        check_args: bool = True,
        max_invocations: int = 100_000,
        wait_for_lease: bool = True,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        hooks: Sequence[Hooks] = (),
        invocation_retry: RetryPolicy = INVOCATION_RETRY,
        version: str | None = None,
        timeout: float | None = None,
        retention_days: float | None = None,
        function_configs: Mapping[str, Any] | None = None,
    ) -> None:
        #: the ExecutionTimeout and retention of the executions this engine starts that
        #: are given none (the retention is also how long its workers keep ended
        #: executions that recorded none); None: no timeout, kept forever
        self.limits = Limits.of(timeout=timeout, retention_days=retention_days)
        #: per function ``Invoke``d by name: Lambda's ``{"DurableConfig": {...}}``
        self.function_limits: dict[str, Limits] = {
            name: parse_durable_config(name, config)
            for name, config in (function_configs or {}).items()
        }
        #: per function ``Invoke``d by name: the queue its executions start on
        #: (``register(..., queue=)``, or ``"Queue"`` in its function config)
        self.function_queues: dict[str, QueueBinding] = {
            name: binding
            for name, config in (function_configs or {}).items()
            if (binding := queue_binding(name, config)) is not None
        }
        super().__init__(
            store,
            clock if clock is not None else RealClock(),
            check_args=check_args,
            max_invocations=max_invocations,
            hooks=hooks,
            invocation_retry=invocation_retry,
        )
        self.wait_for_lease = wait_for_lease
        #: The code version this engine is pinned to (``--version``): executions it
        #: starts record it, and it advances only executions recorded with it. None:
        #: executions record their module's digest and any of them is advanced.
        self.version = version
        # workflow -> code_version_of it: read and hashed once, not at every start
        self._digests: dict[Callable[..., Any], str | None] = {}
        self._noted: set[str] = set()  # executions whose version difference was logged
        #: Durable functions ``Invoke(name, ...)`` reaches by name; a name that looks
        #: like ``module:function`` or ``file.py:function`` is imported instead.
        self.functions: dict[str, Callable[..., Any]] = dict(functions or {})
        self.on_wait: Callable[[str, str], None] | None = None
        self._heartbeats: dict[str, _Heartbeat] = {}
        self._workflows: dict[tuple[str, str | None], Callable[..., Any]] = {}
        self._draining = threading.Event()
        self._children: list[DurableEngine] = []  # the engines of work()'s worker threads
        self._store_away = False  # work() found the store unreachable (said once)
        self._deadlines: dict[str, int | None] = {}  # executions being driven -> deadline
        self._next_purge: int | None = None  # when work() next looks for expired ones

    def close(self) -> None:
        self.store.close()

    def drain(self) -> None:
        """Shut down gently (from any thread, e.g. a signal handler): the running
        invocation ends at its next durable checkpoint, sleeps and waits end now, no
        new invocation starts; the leases are let go as each ends. Combine with the
        ``stop`` event of :meth:`work`."""
        self.store.draining = True
        self._draining.set()
        for child in list(self._children):
            child.drain()

    def __enter__(self) -> DurableEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self,
        workflow: Callable[..., Any],
        input: Any = None,
        *,
        execution_id: str | None = None,
        target: str | None = None,
        workdir: str | None = None,
        timeout: float | None = None,
        deadline: datetime.datetime | None = None,
        retention_days: float | None = None,
        queue: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        partition: str | None = None,
        on_duplicate: str = "error",
        trace_context: str | None = None,
    ) -> str:
        """Record a new execution (without running it) and return its id.

        ``target`` (default: the workflow's ``module:qualname``, when importable)
        is how a worker loads the workflow; ``workdir`` is put on ``sys.path`` then.
        ``timeout`` (seconds, Lambda's ExecutionTimeout; default: the engine's) and
        ``deadline`` (a timezone-aware datetime; the earlier of the two wins): an
        execution still running then ends TIMED_OUT. ``retention_days`` (default: the
        engine's): how long it is kept once ended. ``queue``: the queue
        (:meth:`add_queue`) that admits it, with ``priority`` (higher first),
        ``dedup_id`` (a live execution of the queue holding it: ``on_duplicate="error"``
        raises :class:`~durable_gen._stores.queues.DuplicateExecutionError`,
        ``"existing"`` returns that execution's id) and ``partition`` (the key of a
        partitioned queue). ``trace_context``: the W3C ``traceparent`` of the caller's
        trace, which its spans continue (``durable_gen.otel``). Bad values: a
        :class:`~durable_gen.ValidationError`, and nothing is recorded.
        """
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, "a workflow")
        check_start_options(queue, priority, dedup_id, partition, on_duplicate)
        if trace_context is not None:
            parsed = parse_traceparent(trace_context)
            if parsed is None:
                raise ValidationError(
                    "trace_context must be a W3C traceparent ('00-<32 hex>-<16 hex>-<2 hex>'),"
                    f" got {trace_context!r:.80}"
                )
            trace_context = str(parsed)
        queued: dict[str, Any] = {}
        if queue is not None:
            self._queue_store()
            queued = {
                "queue": queue,
                "partition": partition,
                "priority": priority,
                "dedup_id": dedup_id,
            }
        limits = Limits.of(timeout=timeout, retention_days=retention_days).or_else(self.limits)
        now = self.clock.now()
        given = None if deadline is None else deadline_ms(deadline, now)
        execution_id = execution_id or uuid.uuid4().hex
        try:
            self._create_limited(
                execution_id,
                DEFAULT_SERDES.serialize(input),
                now,
                limits,
                given,
                target=canonical_target(target) if target else target_of(workflow),
                workdir=workdir,
                code_version=self.version_of(workflow),
                **queued,
                trace_context=trace_context,
            )
        except DuplicateExecutionError as e:
            if on_duplicate == "existing":
                return e.existing_id
            raise
        return execution_id

    # ------------------------------------------------------------------ queues

    def _queue_store(self) -> Any:
        """The store, if it keeps queues (the SQLite and PostgreSQL stores do)."""
        if not hasattr(self.store, "put_queue"):
            raise ValidationError(
                f"{type(self.store).__name__} has no queues (the SQLite and PostgreSQL "
                "stores have them); "
                "start the execution without queue="
            )
        return self.store

    def add_queue(self, queue: Queue) -> bool:
        """Record ``queue`` in the store, or its new limits; True when it is new."""
        if not isinstance(queue, Queue):
            raise ValidationError(f"expected a Queue, got {type(queue).__name__}")
        return bool(self._queue_store().put_queue(queue.to_row()))

    def queues(self) -> list[tuple[Queue, QueueStats]]:
        """Every queue of the store, by name, with its load now."""
        stats: list[QueueStats] = self._queue_store().queue_stats()
        return [(Queue.from_row(s.queue), s) for s in stats]

    def delete_queue(self, name: str) -> None:
        """Delete a queue none of whose executions is queued or running."""
        self._queue_store().delete_queue(name)

    # ------------------------------------------------------------------ schedules

    def _schedule_store(self) -> Any:
        """The store, if it keeps schedules (the SQLite and PostgreSQL stores do; not a
        wrapper that delegates: an encrypting one would let inputs in unsealed)."""
        if not hasattr(type(self.store), "fire_due"):
            raise ValidationError(
                "schedules need the SQLite or PostgreSQL store in this version; "
                f"{type(self.store).__name__} has none"
            )
        return self.store

    def add_schedule(self, schedule: Schedule) -> bool:
        """Record ``schedule`` (``_engine.schedules``), or its new definition; True when
        it is new. Its target is loaded now, so that a typo is refused here rather than
        at every tick; nothing is recorded then."""
        if not isinstance(schedule, Schedule):
            raise ValidationError(f"expected a Schedule, got {type(schedule).__name__}")
        store = self._schedule_store()
        resolve_target(schedule.target, workdir=schedule.workdir)
        row = schedule.to_row()
        if schedule.workdir is None:
            row = attrs.evolve(row, target=canonical_target(schedule.target))
        return bool(store.put_schedule(row, self.clock.now()))

    def schedules(self) -> list[tuple[Schedule, ScheduleStats]]:
        """Every schedule of the store, by name, with its state (next and last tick,
        last execution, skipped ticks) and how many of its executions are live."""
        stats: list[ScheduleStats] = self._schedule_store().schedule_stats()
        return [(Schedule.from_row(s.schedule), s) for s in stats]

    def pause_schedule(self, name: str) -> bool:
        """Pause a schedule: its ticks start nothing until resumed; True if it ran."""
        return bool(self._schedule_store().pause_schedule(name, True, self.clock.now()))

    def resume_schedule(self, name: str) -> bool:
        """Resume a paused schedule from its first tick after now (the ticks while it
        was paused are not caught up: :meth:`backfill_schedule` runs them)."""
        return bool(self._schedule_store().pause_schedule(name, False, self.clock.now()))

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the executions it started are kept."""
        self._schedule_store().delete_schedule(name)

    def backfill_schedule(
        self, name: str, start: datetime.datetime, end: datetime.datetime
    ) -> list[str]:
        """Start the ticks of schedule ``name`` from ``start`` to ``end`` (timezone-aware,
        both included, not in the future) that have no execution yet, whatever its
        catch-up window, overlap policy or pause; the ids started."""
        first = instant_ms(start, "a backfill's start")
        last = instant_ms(end, "a backfill's end")
        store = self._schedule_store()
        started: list[str] = store.backfill_schedule(
            name, first, last, self.clock.now(), code_version=self.version
        )
        return started

    def fire_schedules(self) -> list[str]:
        """Start the executions of the schedules' due ticks (:meth:`work` does this at
        every round); their ids. A store without schedules: none."""
        if not hasattr(type(self.store), "fire_due"):
            return []
        started: list[str] = self.store.fire_due(  # type: ignore[attr-defined]
            self.clock.now(), code_version=self.version
        )
        return started

    def _fire(self, log: Callable[[str], None] | None) -> None:
        """:meth:`fire_schedules` for the worker loop: a failure is logged, not raised
        (a busy database: at the next round)."""
        try:
            started = self.fire_schedules()
        except DurableGenError as e:
            if log is not None:
                log(f"starting scheduled executions: {e}")
            return
        if log is not None:
            for execution_id in started:
                log(f"execution {execution_id} started by its schedule")

    def run(
        self,
        workflow: Callable[..., Any],
        input: Any = None,
        *,
        execution_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime.datetime | None = None,
        retention_days: float | None = None,
    ) -> ExecutionResult:
        """Start an execution (with :meth:`start`'s limits) and drive it as far as it goes."""
        execution_id = self.start(
            workflow,
            input,
            execution_id=execution_id,
            timeout=timeout,
            deadline=deadline,
            retention_days=retention_days,
        )
        return self.resume(workflow, execution_id)

    def _create_limited(
        self,
        execution_id: str,
        payload: str,
        now: int,
        limits: Limits,
        deadline: int | None = None,
        **kw: Any,
    ) -> bool:
        """``store.create`` with the execution's deadline, timeout and retention."""
        if limits.timeout_ms is not None:
            by_timeout = now + limits.timeout_ms
            deadline = by_timeout if deadline is None else min(deadline, by_timeout)
        if deadline is None and limits.retention_ms is None:
            return self.store.create(execution_id, payload, now, **kw)
        return self.store.create(
            execution_id,
            payload,
            now,
            deadline=deadline,
            timeout_ms=limits.timeout_ms,
            retention_ms=limits.retention_ms,
            **kw,
        )

    def version_of(self, workflow: Callable[..., Any]) -> str | None:
        """The code version an execution of ``workflow`` started here records."""
        if self.version is not None:
            return self.version
        if workflow not in self._digests:
            self._digests[workflow] = code_version_of(workflow)
        return self._digests[workflow]

    def check_version(self, info: ExecutionInfo) -> None:
        """Refuse to advance an execution of another code version than the pinned one."""
        if self.version is None or info.code_version in (None, self.version):
            return
        raise VersionMismatchError(
            f"execution {info.id!r} started on code version {info.code_version!r}; this "
            f"worker runs version {self.version!r} and leaves it alone: advance it with a "
            f"worker started with --version {info.code_version}, or without --version to "
            "replay it on this code (durable-gen check tells whether that is safe)"
        )

    def register(
        self,
        function_name: str,
        workflow: Callable[..., Any],
        *,
        queue: str | None = None,
        priority: int = 0,
    ) -> None:
        """Make ``workflow`` invocable as ``Invoke(function_name, payload)``; with
        ``queue`` (a queue of the store), each execution it starts waits on that queue
        with ``priority``."""
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, f"function {function_name!r}")
        if queue is not None or priority != 0:
            binding = QueueBinding(queue, priority=priority)  # type: ignore[arg-type]
            check_binding(self.store, function_name, binding)
            self.function_queues[function_name] = binding
        self.functions[function_name] = workflow

    def resume(
        self, workflow: Callable[..., Any], execution_id: str, *, wait: bool = True
    ) -> ExecutionResult:
        """Drive the execution; chained invokes start child executions.

        A child runs its function (registered, or imported from a ``module:function``
        name). With ``wait`` it is driven here; otherwise it is left due for a
        worker. When it ends, the store completes the invoke and the parent is due.
        """
        info = self.store.info(execution_id)
        self._deadlines[execution_id] = info.deadline
        try:
            if self._time_out_if_due(execution_id):
                return self.result(execution_id)
            self.check_version(info)
            while True:
                try:
                    result = super().resume(workflow, execution_id, wait=wait)
                except LeaseLostError as e:
                    if e.status is not None and e.status != "RUNNING":
                        # stopped, paused or timed out while we ran it
                        return self.result(execution_id)
                    raise
                except InvocationInterruptedError:
                    return self.result(execution_id)  # paused, or this worker shuts down
                if result.status != "RUNNING" or not self._advance_invokes(execution_id, wait):
                    return result
        finally:
            self._deadlines.pop(execution_id, None)

    def _advance_invokes(self, execution_id: str, wait: bool) -> bool:
        """Start (and with ``wait``, drive) the executions of started invokes."""
        store = self.store
        progressed = False
        invokes = store.running_invokes(execution_id)
        workdir = store.info(execution_id).workdir if invokes else None
        for op in invokes:
            name = op.function_name or ""
            try:
                fn, target = self._function(name, workdir)
            except TargetError as e:
                store.complete_invoke(
                    execution_id,
                    op.id,
                    "FAILED",
                    self.clock.now(),
                    error=ErrorObject(type="ResourceNotFoundException", message=str(e)),
                )
                progressed = True
                continue
            child = _service.chained_execution_id(execution_id, op.id)  # never started twice
            if not store.exists(child):
                traced = self._invoke_trace_context(execution_id, op.id)
                binding = self.function_queues.get(name)
                self._create_limited(
                    child,
                    op.input_payload or "null",
                    self.clock.now(),
                    self.function_limits.get(name, Limits()).or_else(self.limits),
                    target=target,
                    workdir=workdir,
                    parent=execution_id,
                    parent_op=op.id,
                    code_version=self.version_of(fn),
                    trace_context=traced,
                    **({} if binding is None else binding.start_options()),
                )
            if wait and self.resume(fn, child, wait=True).status != "RUNNING":
                progressed = True  # its end completed the invoke
        return progressed

    def _invoke_trace_context(self, execution_id: str, operation_id: str) -> str | None:
        """The trace context the hooks give the execution an invoke starts (None: no
        hook traces; nothing is read then)."""
        hook = HookRunner(self.hooks, execution_id)
        if not hook.wants("invoke_trace_context"):
            return None
        info = self.store.info(execution_id)
        answer = hook.first(
            "invoke_trace_context",
            operation_id=operation_id,
            execution_started=info.created_at,
            traceparent=self.store.trace_context(execution_id),
        )
        return answer if isinstance(answer, str) else None

    def _function(self, name: str, workdir: str | None) -> tuple[Callable[..., Any], str | None]:
        fn = self.functions.get(name)
        if fn is not None:
            return fn, target_of(fn)
        if ":" in name:
            return resolve_target(name, workdir=workdir), name
        known = ", ".join(sorted(self.functions)) or "none"
        raise TargetError(
            f"no durable function named {name!r} is registered with this engine "
            f"(registered: {known}); register it, or invoke a module:function name"
        )

    def invoke_once(self, workflow: Callable[..., Any], execution_id: str) -> InvocationOutcome:
        """Run exactly one invocation (taking the execution's lease for it if needed)."""
        if execution_id in self._heartbeats:
            return super().invoke_once(workflow, execution_id)
        with self._hold(execution_id):
            return super().invoke_once(workflow, execution_id)

    # ------------------------------------------------------------------ hooks

    @contextlib.contextmanager
    def _hold(self, execution_id: str) -> Iterator[None]:
        store = self.store
        notified = False
        while True:
            try:
                store.acquire(execution_id, self.clock.now())
                break
            except LeaseHeldError as e:
                if not self.wait_for_lease:
                    raise
                if not notified and self.on_wait is not None:
                    self.on_wait(execution_id, str(e))
                notified = True
                if isinstance(e, QueueFullError):  # waits for room on its queue
                    time.sleep(0.1)
                    continue
                time.sleep(0.05 if store.owner_is_dead(e.owner) else 0.2)
        beat = _Heartbeat(
            store, execution_id, self._deadlines.get(execution_id), self.clock
        ).start()
        self._heartbeats[execution_id] = beat
        wake: int | None = self.clock.now()
        try:
            yield
            wake = store.next_timer(execution_id)
            retry = self._retry_at.pop(execution_id, None)  # a failed invocation's retry
            if retry is not None:
                wake = retry if wake is None else min(wake, retry)
        except InvocationInterruptedError:
            wake = self.clock.now()  # ended cleanly at a checkpoint: due for the next worker
            raise
        except Exception as e:
            transient = isinstance(e, StoreError) and e.retryable  # a lock, a full disk
            wake = self.clock.now() + (RETRY_BACKOFF_MS if transient else ERROR_BACKOFF_MS)
            raise
        finally:
            beat.stop()
            self._heartbeats.pop(execution_id, None)
            with contextlib.suppress(DurableGenError):
                store.release(execution_id, wake)

    def _time_out_if_due(self, execution_id: str) -> bool:
        """End the execution TIMED_OUT if its deadline has come; True if it has (ended
        by this call or already)."""
        deadline = self._deadlines.get(execution_id)
        if deadline is None or self.clock.now() < deadline:
            return False
        self.store.time_out(execution_id, self.clock.now())
        return True

    def _begin_invocation(self, execution_id: str, request_id: str, now: int) -> None:
        # past the deadline: end it instead; the fenced write below then refuses
        # (LeaseLostError with the status TIMED_OUT, which resume() returns)
        self._time_out_if_due(execution_id)
        super()._begin_invocation(execution_id, request_id, now)

    def _sleep_until(self, execution_id: str, when: int) -> bool:
        """Sleep until ``when`` or the execution's deadline, whichever comes first (at
        the deadline it ends TIMED_OUT: False, stop driving it)."""
        deadline = self._deadlines.get(execution_id)
        if deadline is None or when < deadline:
            return self._sleep_until_wake(execution_id, when)
        if not self._sleep_until_wake(execution_id, deadline):
            return False
        return not self._time_out_if_due(execution_id)  # True: woken early by a callback

    def _sleep_until_wake(self, execution_id: str, when: int) -> bool:
        """Sleep in short slices: wake early when another process completed a callback."""
        if self.store.running_invokes(execution_id):
            return False  # resume() starts the invoked executions first
        if when <= self.clock.now():
            # already due (a retry whose time passed while the invocation ran): an
            # open callback must not make a worker wait for the outside world here
            return True
        if not isinstance(self.clock, RealClock):
            if self._callback_pending(execution_id):
                # on a virtual clock, skipping to the callback's timeout would time it
                # out before anyone could complete it: wait for the outside world instead
                return self._await_event(execution_id)
            self.clock.sleep_until(when)  # a virtual clock jumps there at once
            return True
        beat = self._heartbeats.get(execution_id)
        clock = self.clock
        while True:
            now = clock.now()
            if now >= when:
                return True
            if (beat is not None and beat.lost) or self._draining.is_set():
                return False
            if self.store.changed_elsewhere(execution_id):
                return True
            if self.on_wait is not None:
                self.on_wait(execution_id, "")
            clock.sleep_until(min(when, now + 250))

    def _await_event(self, execution_id: str) -> bool:
        if self.store.running_invokes(execution_id):
            return False  # resume() starts the invoked executions first
        beat = self._heartbeats.get(execution_id)
        while True:
            if (beat is not None and beat.lost) or self._draining.is_set():
                return False
            if self._time_out_if_due(execution_id):
                return False
            if self.store.changed_elsewhere(execution_id):
                return True
            if self.on_wait is not None:
                self.on_wait(execution_id, "waiting for a callback")
            time.sleep(0.2)

    def _callback_pending(self, execution_id: str) -> bool:
        return any(
            op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
            for op in self.store.load(execution_id).values()
        )

    # ------------------------------------------------------------------ worker

    def workflow_for(self, info: ExecutionInfo) -> Callable[..., Any]:
        """The workflow of a stored execution, loaded from its target."""
        if info.target is None:
            raise StoreError(
                f"execution {info.id!r} was started without an importable target; resume it "
                "from Python with engine.resume(workflow, execution_id)"
            )
        key = (info.target, info.workdir)
        fn = self._workflows.get(key)
        if fn is None:
            fn = self._workflows[key] = resolve_target(info.target, workdir=info.workdir)
        return fn

    def work(
        self,
        *,
        once: bool = False,
        poll_seconds: float = 0.5,
        stop: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
        concurrency: int = 1,
    ) -> int:
        """Advance every due execution, until ``stop`` is set (or, ``once``, none is due).

        Each due execution is driven until it suspends on a timer that is not due
        yet (its lease is then released) or ends. Executions past their deadline end
        TIMED_OUT (whoever holds them); ended executions past their retention are
        deleted, a batch at a time between other work (:meth:`purge`). Each round
        first starts the executions of the schedules' due ticks (:meth:`fire_schedules`),
        and an idle worker sleeps no later than the next tick. With
        ``concurrency`` N, up to N
        executions advance at once, each on a thread of its own with its own store
        handle (:meth:`~durable_gen._core.contract.DurableStore.clone`: its own lease
        owner, so leases fence them as they fence processes); hooks are shared by
        those threads. Returns how many executions ended while working.
        """
        if concurrency < 1:
            raise ValidationError(f"concurrency must be 1 or more, got {concurrency}")
        stop = stop or threading.Event()
        skipped: dict[str, int] = {}
        if concurrency == 1:
            ended = 0
            while not stop.is_set():
                more = self._maybe_purge(log)
                self._fire(log)
                now = self.clock.now()
                due = [
                    ex
                    for ex in self._due(now, log, code_version=self.version)
                    if skipped.get(ex, 0) <= now
                ]
                for execution_id in due:
                    if stop.is_set():
                        break
                    ended += self._advance_due(execution_id, now, skipped, log)
                # ``once``: until nothing is due (a queue proposes as many as have room)
                if once and not due and not more:
                    break
                if not due and not more:
                    self._idle(stop, self._poll_delay(poll_seconds))
            return ended
        return _Pool(self, concurrency, skipped, log).run(once, poll_seconds, stop)

    def _idle(self, stop: threading.Event, seconds: float) -> None:
        """Wait for more work: ``seconds``, or less when the store can say that work
        arrived (PostgreSQL's LISTEN/NOTIFY: ``wait_for_work``); polling stays the rule."""
        wait_for_work = getattr(self.store, "wait_for_work", None)
        if wait_for_work is None:
            stop.wait(seconds)
            return
        # in slices, so that a stop is seen within a second
        end = time.monotonic() + seconds
        while not stop.is_set() and (left := end - time.monotonic()) > 0:
            try:
                if wait_for_work(min(left, 1.0)):
                    return
            except StoreError:  # the server is away: poll meanwhile
                stop.wait(max(0.0, end - time.monotonic()))
                return

    def _advance_due(
        self,
        execution_id: str,
        now: int,
        skipped: dict[str, int],
        log: Callable[[str], None] | None,
    ) -> int:
        """Drive one due execution as far as it goes now (or end it TIMED_OUT, past its
        deadline); 1 when it ended."""
        try:
            info = self.store.info(execution_id)
            if info.deadline is not None and info.deadline <= self.clock.now():
                return self._time_out(execution_id, log)
            workflow = self.workflow_for(info)
            self.check_version(info)
        except DurableGenError as e:
            skipped[execution_id] = now + ERROR_BACKOFF_MS
            if log is not None:
                log(f"execution {execution_id}: {e}")
            return 0
        if log is not None and self.version is None and execution_id not in self._noted:
            self._noted.add(execution_id)  # said once per execution and worker
            current = self.version_of(workflow)  # unpinned: the loaded code's digest
            if info.code_version is not None and current not in (None, info.code_version):
                log(
                    f"execution {execution_id} started on code version "
                    f"{info.code_version}, replaying it on {current} (no --version pin)"
                )
        saved = self.wait_for_lease
        self.wait_for_lease = False
        try:
            result = self.resume(workflow, execution_id, wait=False)
        except LeaseHeldError:
            return 0
        except DurableGenError as e:
            if log is not None:
                log(f"execution {execution_id}: {type(e).__name__}: {e}")
            return 0
        finally:
            self.wait_for_lease = saved
        if result.status in LIVE_STATUSES:
            return 0
        if log is not None:
            log(f"execution {execution_id} {result.status}")
        return 1

    def _time_out(self, execution_id: str, log: Callable[[str], None] | None) -> int:
        """End an execution past its deadline; 1 when this call ended it."""
        if not self.store.time_out(execution_id, self.clock.now()):
            return 0
        if log is not None:
            log(f"execution {execution_id} TIMED_OUT")
        return 1

    def _time_out_overdue(self, log: Callable[[str], None] | None) -> int:
        """End every live execution past its deadline (whoever advances it); how many."""
        ended = 0
        try:
            for execution_id in self.store.overdue(self.clock.now()):
                ended += self._time_out(execution_id, log)
        except DurableGenError as e:  # a busy database: at the next turn
            if log is not None:
                log(f"ending executions past their deadline: {e}")
        return ended

    def purge(self, *, limit: int = PURGE_BATCH) -> int:
        """Delete up to ``limit`` ended executions past their retention (their own, else
        this engine's ``retention_days``) with their data, in one transaction; returns
        how many. :meth:`work` calls it between other work."""
        return self.store.purge(
            self.clock.now(), default_retention_ms=self.limits.retention_ms, limit=limit
        )

    def _maybe_purge(self, log: Callable[[str], None] | None) -> bool:
        """One batch of :meth:`purge` when it is time; True when more wait."""
        now = self.clock.now()
        if self._next_purge is not None and now < self._next_purge:
            return False
        try:
            deleted = self.purge()
        except DurableGenError as e:
            if log is not None:
                log(f"deleting executions past their retention: {e}")
            deleted = 0
        if deleted and log is not None:
            log(f"deleted {deleted} ended executions past their retention")
        more = deleted >= PURGE_BATCH
        self._next_purge = now if more else now + PURGE_INTERVAL_MS
        return more

    def _due(self, now: int, log: Callable[[str], None] | None, **options: Any) -> list[str]:
        """The executions due now (``store.due``); none while the store cannot be
        reached (a retryable :class:`StoreError`: a lost connection, a server
        restarting), said once per outage: a worker waits for it, never exits."""
        try:
            due = self.store.due(now, **options)
        except StoreError as e:
            if not e.retryable:
                raise
            if log is not None and not self._store_away:
                log(f"{e} (looking again every poll until it answers)")
            self._store_away = True
            return []
        if self._store_away and log is not None:
            log("the store answers again")
        self._store_away = False
        return list(due)

    def _poll_delay(self, poll_seconds: float) -> float:
        """How long to wait for more work: until the next wake-up, at most a poll."""
        try:
            wake = self.store.next_wake(code_version=self.version)
        except StoreError as e:
            if not e.retryable:
                raise
            return poll_seconds
        next_tick = getattr(type(self.store), "next_schedule_tick", None)
        if next_tick is not None:  # a schedule's next tick: no later than it
            with contextlib.suppress(StoreError):
                tick = next_tick(self.store)
                if tick is not None and (wake is None or tick < wake):
                    wake = tick
        if wake is None:
            return poll_seconds
        return max(0.01, min(poll_seconds, (wake - self.clock.now()) / 1000))


class _Pool:
    """Up to N executions advancing at once, each on a worker thread with its own engine.

    One dispatcher (the calling thread) finds due executions and hands each to a
    free worker, never one already in flight here; the workers' engines take the
    leases, so other processes' workers are fenced as before.
    """

    def __init__(
        self,
        engine: DurableEngine,
        size: int,
        skipped: dict[str, int],
        log: Callable[[str], None] | None,
    ) -> None:
        self.engine = engine
        self.size = size
        self.skipped = skipped
        self.log = log
        self.ended = 0
        self.in_flight: set[str] = set()
        self.changed = threading.Event()
        self.lock = threading.Lock()
        self.local = threading.local()
        self.engines: list[DurableEngine] = []

    def _engine(self) -> DurableEngine:
        engine: DurableEngine | None = getattr(self.local, "engine", None)
        if engine is None:
            parent = self.engine
            engine = DurableEngine(
                parent.store.clone(),
                clock=parent.clock,
                check_args=parent.check_args,
                max_invocations=parent.max_invocations,
                functions=parent.functions,
                hooks=parent.hooks,
                invocation_retry=parent.invocation_retry,
                version=parent.version,
            )
            engine.limits = parent.limits
            engine.function_limits = parent.function_limits
            engine.function_queues = parent.function_queues
            with self.lock:
                self.engines.append(engine)
                if parent._draining.is_set():
                    engine.drain()
            parent._children.append(engine)
            self.local.engine = engine
        return engine

    def _advance(self, execution_id: str, now: int) -> None:
        try:
            ended = self._engine()._advance_due(execution_id, now, self.skipped, self.log)
        finally:
            with self.lock:
                self.in_flight.discard(execution_id)
            self.changed.set()
        with self.lock:
            self.ended += ended

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Until a worker is free or work arrives (``changed``), at most ``seconds``;
        in slices, so that a stop is seen within a second whatever the poll interval."""
        end = time.monotonic() + seconds
        while not stop.is_set() and (left := end - time.monotonic()) > 0:
            if self.changed.wait(min(left, 1.0)):
                return

    def _listen(self, done: threading.Event) -> None:
        """Wake the dispatcher when the store announces work (``wait_for_work``)."""
        wait_for_work = self.engine.store.wait_for_work  # type: ignore[attr-defined]
        while not done.is_set():
            try:
                if wait_for_work(1.0):
                    self.changed.set()
            except StoreError:
                done.wait(1.0)  # the server is away: polling goes on meanwhile

    def run(self, once: bool, poll_seconds: float, stop: threading.Event) -> int:
        engine = self.engine
        stop_listening = threading.Event()
        if hasattr(engine.store, "wait_for_work"):
            threading.Thread(
                target=self._listen, args=(stop_listening,), name="durable-gen-notify", daemon=True
            ).start()
        with ThreadPoolExecutor(self.size, thread_name_prefix="durable-gen-worker") as pool:
            try:
                while not stop.is_set():
                    self.changed.clear()
                    more = engine._maybe_purge(self.log)
                    # past their deadline: ended here, also those a worker thread runs
                    timed_out = engine._time_out_overdue(self.log)
                    engine._fire(self.log)
                    now = engine.clock.now()
                    with self.lock:
                        self.ended += timed_out
                        busy = set(self.in_flight)
                    free = self.size - len(busy)
                    due = [
                        ex
                        for ex in engine._due(
                            now, self.log, limit=self.size + len(busy), code_version=engine.version
                        )
                        if ex not in busy and self.skipped.get(ex, 0) <= now
                    ][:free]
                    for execution_id in due:
                        with self.lock:
                            self.in_flight.add(execution_id)
                        pool.submit(self._advance, execution_id, now)
                    if once and not due and not more:
                        with self.lock:
                            if not self.in_flight:
                                break
                    if due and len(due) == free:
                        self._wait(poll_seconds, stop)  # full: wait for a free worker
                    elif not due and not more:
                        self._wait(engine._poll_delay(poll_seconds), stop)
            finally:
                stop_listening.set()
                if stop.is_set():
                    for e in self.engines:
                        e.drain()
        for e in self.engines:
            e.store.close()
        return self.ended
