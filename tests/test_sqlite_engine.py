"""The SQLite engine: the shared resume loop on a database, compared with the in-memory one."""

from __future__ import annotations

import json
import threading
import time

import pytest

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    CreateCallback,
    Hooks,
    InMemoryEngine,
    Invoke,
    InvokeError,
    Jitter,
    LeaseHeldError,
    OperationStatus,
    OperationType,
    Parallel,
    RealClock,
    RetryPolicy,
    Step,
    StepError,
    VirtualClock,
    Wait,
    WorkflowFailedError,
    current_attempt,
)
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores import owners as _owners
from durable_gen._stores.sqlite import SqliteStore
from durable_gen._stores.sqlite import schema as _schema

NO_JITTER = RetryPolicy(max_attempts=3, initial_delay=2, max_delay=10, jitter=Jitter.NONE)


def flaky(label):
    if current_attempt() == 1:
        raise ConnectionError(f"{label} flaked")
    return f"{label}@{current_attempt()}"


def boom():
    raise ValueError("never works")


def inner(x):
    a = yield Step(flaky, f"in{x}", name="inner-flaky", retry=NO_JITTER)
    return {"a": a, "x": x}


def mixed(event):
    first = yield Step(flaky, "one", name="one", retry=NO_JITTER)
    child = yield ChildContext(inner, event["x"], name="kid")
    yield Wait(seconds=30, name="pause")
    try:
        yield Step(boom, name="boom", retry=RetryPolicy.none())
    except StepError as e:
        failed = e.error_message
    last = yield Step(flaky, "two", name="two", semantics=AT_MOST_ONCE_PER_RETRY, retry=NO_JITTER)
    return [first, child, failed, last]


EXPECTED = ["one@2", {"a": "in7@2", "x": 7}, "never works", "two@2"]


@pytest.fixture
def engine(tmp_path):
    e = SqliteEngine(tmp_path / "engine.db", clock=VirtualClock())
    yield e
    e.close()


def shape(store, ex):
    return [(e["EventType"], e.get("Name")) for e in store.history(ex)]


def test_same_result_operations_and_history_as_the_in_memory_engine(engine):
    mem = InMemoryEngine()
    a = mem.run(mixed, {"x": 7}, execution_id="same")
    b = engine.run(mixed, {"x": 7}, execution_id="same")
    assert a.result == b.result == EXPECTED
    assert (a.status, a.invocations) == (b.status, b.invocations) == ("SUCCEEDED", 5)
    assert b.operations == a.operations  # ids, statuses, timestamps, results: all equal
    assert shape(engine.store, "same") == shape(mem.store, "same")
    kinds = [k for k, _ in shape(engine.store, "same")]
    assert kinds.count("InvocationCompleted") == 5
    assert kinds[-2:] == ["InvocationCompleted", "ExecutionSucceeded"]


def test_history_events_equal_the_in_memory_ones_but_request_ids(engine):
    mem = InMemoryEngine()
    mem.run(mixed, {"x": 7}, execution_id="same")
    engine.run(mixed, {"x": 7}, execution_id="same")

    def strip(events):
        out = []
        for e in events:
            d = e.get("InvocationCompletedDetails")
            if d is not None:
                out.append({**e, "InvocationCompletedDetails": {**d, "RequestId": "-"}})
            else:
                out.append(e)
        return out

    assert strip(engine.store.history("same")) == strip(mem.store.history("same"))


def test_results_survive_the_engine_and_resume_elsewhere(tmp_path):
    db = tmp_path / "e.db"
    with SqliteEngine(db, clock=VirtualClock()) as first:
        first.start(mixed, {"x": 7}, execution_id="x1")
        outcome = first.invoke_once(mixed, "x1")
    assert outcome.status == "PENDING"
    with SqliteEngine(db, clock=VirtualClock(start=VirtualClock().now() + 10_000)) as second:
        result = second.resume(mixed, "x1")
        assert result.result == EXPECTED
        assert second.result("x1").get() == EXPECTED
        assert second.store.info("x1").target == f"{__name__}:mixed"


class Crash(BaseException):
    """The process dies (nothing catches a BaseException)."""


def test_a_crash_reruns_at_least_once_steps_and_never_at_most_once_ones(tmp_path):
    calls = []

    def once(label):
        calls.append((label, current_attempt()))
        if len(calls) in (1, 3):
            raise Crash
        return label

    def wf(_):
        a = yield Step(once, "alo", name="alo")
        b = yield Step(once, "amo", name="amo", semantics=AT_MOST_ONCE_PER_RETRY, retry=NO_JITTER)
        return [a, b]

    db = tmp_path / "crash.db"
    for _ in range(2):
        store = SqliteStore(db)
        engine = SqliteEngine(store=store, clock=VirtualClock())
        if not store.exists("c"):
            engine.start(wf, execution_id="c")
        with pytest.raises(Crash):
            engine.resume(wf, "c")
        _owners.LIVE_OWNERS.discard(store.owner)  # it "died"
    with SqliteEngine(db, clock=VirtualClock()) as engine:
        result = engine.resume(wf, "c")
    assert result.result == ["alo", "amo"]
    # alo's first attempt re-ran; amo's attempt 1 was cut and is not run again
    assert calls == [("alo", 1), ("alo", 1), ("amo", 1), ("amo", 2)]
    amo = next(op for op in result.operations if op.name == "amo")
    assert amo.attempt == 2


def test_ten_thousand_operations_load_from_a_new_store(tmp_path):
    def wf(n):
        for i in range(n):
            yield Step(str, i, name="s")
        yield Wait(seconds=60)
        return n

    db = tmp_path / "big.db"
    fast = SqliteStore(db, synchronous="NORMAL")  # durability is not what is measured here
    with SqliteEngine(store=fast, clock=VirtualClock()) as engine:
        engine.start(wf, 10_000, execution_id="big")
        assert engine.invoke_once(wf, "big").status == "PENDING"
    with SqliteStore(db) as store:
        ops = store.load("big")  # how long it takes: benchmarks.run's replay rows
    assert len(ops) == 10_002
    assert [op.name for op in ops.values()][1:3] == ["s", "s"]


def test_no_wait_returns_once_suspended_and_a_worker_finishes(tmp_path):
    clock = VirtualClock()

    def wf(_):
        yield Step(str, 1, name="before")
        yield Wait(seconds=5, name="w")
        return (yield Step(str, 2, name="after"))

    with SqliteEngine(tmp_path / "w.db", clock=clock) as engine:
        ex = engine.start(wf, execution_id="w1")
        result = engine.resume(wf, ex, wait=False)
        assert result.status == "RUNNING"
        info = engine.store.info(ex)
        assert info.wake_at == clock.now() + 5000
        assert info.lease_owner is None
        engine.workflow_for = lambda info: wf  # type: ignore[method-assign]
        assert engine.work(once=True) == 0  # nothing is due yet
        clock.advance(5)
        assert engine.work(once=True) == 1
        assert engine.result(ex).result == "2"


def test_the_worker_skips_executions_it_cannot_load(tmp_path):
    lines = []

    def wf(_):
        yield Step(str, 1)

    with SqliteEngine(tmp_path / "w.db", clock=VirtualClock()) as engine:
        engine.start(wf, execution_id="lost", target="no_such_module_abc:flow")
        assert engine.work(once=True, log=lines.append) == 0
    assert lines == [
        "execution lost: cannot import module 'no_such_module_abc': "
        "No module named 'no_such_module_abc'"
    ]


def test_a_lease_held_elsewhere_is_waited_for_or_refused(tmp_path):
    db = tmp_path / "l.db"

    def wf(_):
        return (yield Step(str, 1))

    holder = SqliteStore(db)
    with SqliteEngine(db, clock=VirtualClock(), wait_for_lease=False) as engine:
        engine.start(wf, execution_id="l1")
        holder.acquire("l1", 0)
        with pytest.raises(LeaseHeldError):
            engine.resume(wf, "l1")
        engine.wait_for_lease = True
        waits = []
        engine.on_wait = lambda ex, msg: waits.append(msg)
        threading.Timer(0.3, holder.release, args=("l1", None)).start()
        assert engine.resume(wf, "l1").result == "1"
    assert waits[0].startswith("execution 'l1' is being advanced by another worker (pid ")
    holder.close()


def test_stop_ends_a_run_that_sleeps_on_a_wait(tmp_path):
    db = tmp_path / "s.db"

    def wf(_):
        yield Wait(seconds=3600)
        return "never"

    results = []
    with SqliteEngine(db, clock=RealClock()) as engine:
        engine.start(wf, execution_id="s1")
        t = threading.Thread(target=lambda: results.append(engine.resume(wf, "s1")))
        t.start()
        time.sleep(0.3)
        with SqliteStore(db) as other:
            other.stop("s1", RealClock().now())
        t.join(timeout=5)
        assert not t.is_alive()
    assert results[0].status == "STOPPED"
    with pytest.raises(WorkflowFailedError, match=r"^execution s1 failed: ExecutionStopped: "):
        results[0].get()


def test_a_run_waits_for_a_callback_completed_by_another_process(tmp_path):
    db = tmp_path / "cb.db"

    def wf(_):
        handle = yield CreateCallback("approval", timeout=3600)
        return (yield handle.result())

    results = []
    with SqliteEngine(db, clock=RealClock()) as engine:
        engine.start(wf, execution_id="cb")
        t = threading.Thread(target=lambda: results.append(engine.resume(wf, "cb")))
        t.start()
        with SqliteStore(db) as other:
            for _ in range(50):
                ops = other.load("cb").values()
                cb = [op for op in ops if op.type is OperationType.CALLBACK]
                if cb:
                    break
                time.sleep(0.05)
            assert other.callback_execution(cb[0].callback_id) == "cb"
            other.complete_callback(cb[0].callback_id, "succeed", RealClock().now(), payload="ok")
            with pytest.raises(
                Exception, match=r"already ended SUCCEEDED; it cannot be completed again"
            ):
                other.complete_callback(cb[0].callback_id, "succeed", RealClock().now())
        t.join(timeout=5)
        assert not t.is_alive()
    assert results[0].result == "ok"
    op = next(op for op in results[0].operations if op.type is OperationType.CALLBACK)
    assert op.status is OperationStatus.SUCCEEDED


def test_invoke_runs_a_registered_function_as_a_child_execution(engine):
    def child(event):
        yield Wait(seconds=10)
        return (yield Step(lambda n: n * 3, event["n"], name="triple"))

    def parent(_):
        a = yield Invoke("triple", {"n": 5}, name="call")
        try:
            yield Invoke("missing", {}, name="lost")
        except InvokeError as e:
            return [a, e.error_type]
        return [a, None]

    engine.register("triple", child)
    result = engine.run(parent, execution_id="p")
    assert result.status == "SUCCEEDED"
    assert result.result == [15, "ResourceNotFoundException"]
    call = next(op for op in result.operations if op.name == "call")
    children = [e for e in engine.store.executions() if e.id.startswith("p.")]
    assert [(c.id, c.status) for c in children] == [(f"p.{call.id[:16]}", "SUCCEEDED")]
    kinds = [e["EventType"] for e in engine.store.history("p")]
    assert kinds.count("ChainedInvokeStarted") == 2
    assert "ChainedInvokeSucceeded" in kinds
    assert "ChainedInvokeFailed" in kinds


def test_invoke_of_a_module_function_is_finished_by_a_worker(tmp_path, monkeypatch):
    (tmp_path / "invokee_mod.py").write_text(
        "from durable_gen import Step\n"
        "def child(event):\n"
        "    return (yield Step(str, event['n'], name='s'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def parent(_):
        return {"got": (yield Invoke("invokee_mod:child", {"n": 7}))}

    clock = VirtualClock()
    with SqliteEngine(tmp_path / "i.db", clock=clock) as engine:
        engine.start(parent, execution_id="q", workdir=str(tmp_path))
        first = engine.resume(parent, "q", wait=False)
        assert first.status == "RUNNING"  # the child is left to a worker
        engine.workflow_for = lambda info: (  # type: ignore[method-assign]
            parent if info.id == "q" else SqliteEngine.workflow_for(engine, info)
        )
        # ``once`` works until nothing is due (as the pool does): the child ends, which
        # makes the parent due, and the parent ends in the same call
        assert engine.work(once=True) == 2
        assert engine.work(once=True) == 0
        assert engine.result("q").result == {"got": "7"}


def unicode_step(text):
    return {"text": text, "big": 2**70}


def unicode_flow(event):
    a = yield Step(unicode_step, event["s"], name="naïve ✓")
    b = yield Step(flaky, "é", name="\u2028sep", retry=NO_JITTER)
    return [a, b]


def test_journal_rows_are_the_text_the_standard_json_encoder_writes(engine):
    """orjson writes the rows; they must be exactly what the stdlib encoder writes."""
    engine.run(mixed, {"x": 7}, execution_id="m")
    engine.run(unicode_flow, {"s": 'quote " back\\slash \x01 ü 😀'}, execution_id="u")
    rows = engine.store._query("SELECT ops, events FROM journal")
    texts = [t for row in rows for t in row if t is not None]
    assert len(texts) > 20
    assert any("😀" in t for t in texts)  # non-ASCII kept as it is, not \u-escaped
    for text in texts:
        value = _schema._loads(text)
        assert value == json.loads(text)
        assert _schema._dumps(value) == _schema._std_dumps(value) == text


def test_what_the_fast_encoder_refuses_is_encoded_by_the_standard_one():
    for value in ({"n": 2**70}, {1: "non-string key"}, [{"a": [-(2**64)]}]):
        assert _schema._dumps(value) == _schema._std_dumps(value)
        assert json.loads(_schema._dumps(value)) == json.loads(json.dumps(value))


def test_a_retry_due_while_a_callback_is_open_does_not_stall_the_worker(tmp_path):
    # Found by the 2,000-program differential run on ``serve --skip-time``: an
    # invocation scheduled a step's retry, ran on until that retry was due, and ended
    # with a callback open. The worker, told not to wait, took the due retry for a
    # sleep on a virtual clock and waited for the callback's outside world instead:
    # every later execution stalled behind it.
    clock = VirtualClock()
    calls = []

    class LongInvocation(Hooks):
        """The first invocation takes 10 s of the clock: the 1 s retry is due at its end."""

        def on_invocation_end(self, execution_id, *, status, error):
            if len(calls) == 1:
                clock.advance(10)

    def flaky():
        calls.append(clock.now())
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    def failing_branch():
        policy = RetryPolicy(max_attempts=2, initial_delay=1, jitter=Jitter.NONE)
        return (yield Step(flaky, name="flaky", retry=policy))

    def callback_branch():
        handle = yield CreateCallback("cb", timeout=60)
        return (yield handle.result())

    def workflow(_event):
        return (yield Parallel([failing_branch, callback_branch], name="p"))

    engine = SqliteEngine(
        str(tmp_path / "db.sqlite"), clock=clock, wait_for_lease=False, hooks=[LongInvocation()]
    )
    execution_id = engine.start(workflow, None, target="t:x")
    done = []
    worker = threading.Thread(
        target=lambda: done.append(engine.resume(workflow, execution_id, wait=False)),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "resume(wait=False) blocked on the open callback"
    assert done[0].status == "RUNNING"
    assert len(calls) == 2  # the due retry ran; only the callback is left
    engine.close()
