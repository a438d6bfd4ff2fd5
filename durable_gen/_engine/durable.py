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
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
from .clock import Clock, RealClock
from .driver import InvocationOutcome
from .hooks import Hooks
from .local import (
    INVOCATION_RETRY,
    ExecutionResult,
    LocalEngine,
)
from .targets import (
    TargetError,
    canonical_target,
    code_version_of,
    resolve_target,
    target_of,
)

__all__ = ["ERROR_BACKOFF_MS", "RETRY_BACKOFF_MS", "DurableEngine"]

#: How long an execution whose invocation failed (non-determinism, a workflow that
#: cannot be loaded) rests before a worker tries it again, in milliseconds.
ERROR_BACKOFF_MS = 60_000
#: How long an execution rests after a transient store failure (a locked database, a
#: full disk) before a worker tries it again, in milliseconds.
RETRY_BACKOFF_MS = 1_000


class _Heartbeat:
    """Renews a lease from a daemon thread until stopped; notes when it is lost."""

    def __init__(self, store: DurableStore, execution_id: str) -> None:
        self.store = store
        self.execution_id = execution_id
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
        while not self._stop.wait(interval):
            try:
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
    ) -> None:
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
    ) -> str:
        """Record a new execution (without running it) and return its id.

        ``target`` (default: the workflow's ``module:qualname``, when importable)
        is how a worker loads the workflow; ``workdir`` is put on ``sys.path`` then.
        """
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, "a workflow")
        execution_id = execution_id or uuid.uuid4().hex
        self.store.create(
            execution_id,
            DEFAULT_SERDES.serialize(input),
            self.clock.now(),
            target=canonical_target(target) if target else target_of(workflow),
            workdir=workdir,
            code_version=self.version_of(workflow),
        )
        return execution_id

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

    def register(self, function_name: str, workflow: Callable[..., Any]) -> None:
        """Make ``workflow`` invocable as ``Invoke(function_name, payload)``."""
        from .._core.descriptors import check_generator_function

        check_generator_function(workflow, f"function {function_name!r}")
        self.functions[function_name] = workflow

    def resume(
        self, workflow: Callable[..., Any], execution_id: str, *, wait: bool = True
    ) -> ExecutionResult:
        """Drive the execution; chained invokes start child executions.

        A child runs its function (registered, or imported from a ``module:function``
        name). With ``wait`` it is driven here; otherwise it is left due for a
        worker. When it ends, the store completes the invoke and the parent is due.
        """
        self.check_version(self.store.info(execution_id))
        while True:
            try:
                result = super().resume(workflow, execution_id, wait=wait)
            except LeaseLostError as e:
                if e.status is not None and e.status != "RUNNING":
                    return self.result(execution_id)  # stopped or paused while we ran it
                raise
            except InvocationInterruptedError:
                return self.result(execution_id)  # paused, or this worker shuts down
            if result.status != "RUNNING" or not self._advance_invokes(execution_id, wait):
                return result

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
                store.create(
                    child,
                    op.input_payload or "null",
                    self.clock.now(),
                    target=target,
                    workdir=workdir,
                    parent=execution_id,
                    parent_op=op.id,
                    code_version=self.version_of(fn),
                )
            if wait and self.resume(fn, child, wait=True).status != "RUNNING":
                progressed = True  # its end completed the invoke
        return progressed

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
                time.sleep(0.05 if store.owner_is_dead(e.owner) else 0.2)
        beat = _Heartbeat(store, execution_id).start()
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

    def _sleep_until(self, execution_id: str, when: int) -> bool:
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
        yet (its lease is then released) or ends. With ``concurrency`` N, up to N
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
                now = self.clock.now()
                due = [
                    ex
                    for ex in self.store.due(now, code_version=self.version)
                    if skipped.get(ex, 0) <= now
                ]
                for execution_id in due:
                    if stop.is_set():
                        break
                    ended += self._advance_due(execution_id, now, skipped, log)
                if once:
                    break
                if not due:
                    stop.wait(self._poll_delay(poll_seconds))
            return ended
        return _Pool(self, concurrency, skipped, log).run(once, poll_seconds, stop)

    def _advance_due(
        self,
        execution_id: str,
        now: int,
        skipped: dict[str, int],
        log: Callable[[str], None] | None,
    ) -> int:
        """Drive one due execution as far as it goes now; 1 when it ended."""
        try:
            info = self.store.info(execution_id)
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

    def _poll_delay(self, poll_seconds: float) -> float:
        """How long to wait for more work: until the next wake-up, at most a poll."""
        wake = self.store.next_wake(code_version=self.version)
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

    def run(self, once: bool, poll_seconds: float, stop: threading.Event) -> int:
        engine = self.engine
        with ThreadPoolExecutor(self.size, thread_name_prefix="durable-gen-worker") as pool:
            try:
                while not stop.is_set():
                    self.changed.clear()
                    now = engine.clock.now()
                    with self.lock:
                        busy = set(self.in_flight)
                    free = self.size - len(busy)
                    due = [
                        ex
                        for ex in engine.store.due(
                            now, limit=self.size + len(busy), code_version=engine.version
                        )
                        if ex not in busy and self.skipped.get(ex, 0) <= now
                    ][:free]
                    for execution_id in due:
                        with self.lock:
                            self.in_flight.add(execution_id)
                        pool.submit(self._advance, execution_id, now)
                    if once and not due:
                        with self.lock:
                            if not self.in_flight:
                                break
                    if due and len(due) == free:
                        self.changed.wait(poll_seconds)  # full: wait for a free worker
                    elif not due:
                        self.changed.wait(engine._poll_delay(poll_seconds))
            finally:
                if stop.is_set():
                    for e in self.engines:
                        e.drain()
        for e in self.engines:
            e.store.close()
        return self.ended
