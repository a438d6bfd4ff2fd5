"""Lambda's execution-name rule in the Python API: one name, one execution."""

from __future__ import annotations

import threading

import pytest

from durable_gen import (
    EncryptedStore,
    ExecutionAlreadyStartedError,
    InMemoryEngine,
    KeyRing,
    MemoryStore,
    PayloadCipher,
    Step,
    VirtualClock,
)
from durable_gen._engine.sqlite import SqliteEngine
from durable_gen._stores.sqlite import SqliteStore

RAN: list[int] = []


def count(n: int) -> int:
    RAN.append(n)
    return n + 1


def flow(event):
    return (yield Step(count, event["n"], name="count"))


def other(event):
    return (yield Step(count, event["n"], name="other"))


@pytest.fixture(params=["memory", "sqlite", "encrypted-memory"])
def engine(request, tmp_path):
    RAN.clear()
    if request.param == "memory":
        yield InMemoryEngine()
    elif request.param == "sqlite":
        with SqliteEngine(tmp_path / "n.db", clock=VirtualClock()) as e:
            yield e
    else:
        cipher = PayloadCipher(KeyRing("k1", {"k1": bytes(range(32))}))
        yield InMemoryEngine(store=EncryptedStore(MemoryStore(), cipher))


def test_the_same_name_and_input_is_the_existing_execution(engine):
    first = engine.run(flow, {"n": 1}, execution_id="order-1")
    again = engine.run(flow, {"n": 1}, execution_id="order-1")
    assert (first.status, first.result) == (again.status, again.result) == ("SUCCEEDED", 2)
    assert engine.start(flow, {"n": 1}, execution_id="order-1") == "order-1"
    assert RAN == [1]  # the step ran once


def test_the_same_name_with_another_input_is_refused_and_changes_nothing(engine):
    engine.run(flow, {"n": 1}, execution_id="order-1")
    with pytest.raises(
        ExecutionAlreadyStartedError,
        match=r"^execution 'order-1' was already started with another input; ",
    ) as e:
        engine.run(flow, {"n": 2}, execution_id="order-1")
    assert (e.value.execution_id, e.value.conflict) == ("order-1", "input")
    assert engine.result("order-1").result == 2
    assert RAN == [1]


def test_a_name_belongs_to_one_function(tmp_path):
    with SqliteEngine(tmp_path / "n.db", clock=VirtualClock()) as engine:
        engine.start(flow, {"n": 1}, execution_id="x")
        with pytest.raises(ExecutionAlreadyStartedError) as e:
            engine.start(other, {"n": 1}, execution_id="x")
        assert e.value.conflict == "function"
        assert e.value.args[0] == (
            "execution name 'x' is taken by an execution of tests.test_names:flow, not of "
            "tests.test_names:other; an execution name belongs to one function: choose "
            "another name"
        )


def test_concurrent_starts_of_one_name_in_several_stores_create_one_execution(tmp_path):
    db = tmp_path / "n.db"
    SqliteStore(db).close()
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        try:
            with SqliteEngine(db, clock=VirtualClock()) as e:
                barrier.wait()
                results.append(e.start(flow, {"n": 5}, execution_id="same"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == ["same"] * 6
    with SqliteStore(db) as store:
        assert [i.id for i in store.executions()] == ["same"]
        assert [e["EventType"] for e in store.history("same")] == ["ExecutionStarted"]
