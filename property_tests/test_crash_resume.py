"""Crash anywhere, resume, and get the uninterrupted result; recorded successes never re-run.

Generated straight-line workflows mix steps (some failing a few times before they
succeed or run out of retries), waits and child contexts. The store is wrapped so
the process "dies" right after the c-th checkpoint is durable; a fresh invocation
then resumes from the log.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from durable_gen import (
    ChildContext,
    InMemoryEngine,
    Jitter,
    MemoryStore,
    OperationStatus,
    RetryPolicy,
    Step,
    StepError,
    StepSemantics,
    Wait,
    current_attempt,
)

from .programs import Crash, CrashingStore


class Ledger:
    """Records every step-function call and checks none re-runs a recorded success."""

    def __init__(self, store: MemoryStore):
        self.store = store
        self.calls: list[tuple[str, int]] = []
        self.violations: list[str] = []

    def step(self, label: str, fail_times: int):
        def fn():
            for ex in self.store._executions.values():
                for op in ex.operations.values():
                    if op.name == label and op.status is OperationStatus.SUCCEEDED:
                        self.violations.append(label)
            attempt = current_attempt()
            self.calls.append((label, attempt))
            if attempt <= fail_times:
                raise ConnectionError(f"{label} failed attempt {attempt}")
            return f"{label}@{attempt}"

        fn.__name__ = label
        return fn


POLICY = RetryPolicy(max_attempts=3, initial_delay=1, max_delay=10, jitter=Jitter.FULL)


def programs(semantics=(StepSemantics.AT_LEAST_ONCE_PER_RETRY,)):
    ops = st.recursive(
        st.one_of(
            st.tuples(st.just("step"), st.integers(0, 3), st.sampled_from(semantics)),
            st.tuples(st.just("wait"), st.integers(1, 3600)),
        ),
        lambda children: st.tuples(st.just("child"), st.lists(children, max_size=4)),
        max_leaves=12,
    )
    return st.lists(ops, min_size=1, max_size=8)


def build(program, ledger: Ledger):
    labelled = program_labels(program)

    def body(ops):
        results = []
        for op in ops:
            kind = op[0]
            if kind == "step":
                _, fail_times, semantics, label = op
                try:
                    results.append(
                        (
                            yield Step(
                                ledger.step(label, fail_times),
                                name=label,
                                retry=POLICY,
                                semantics=semantics,
                            )
                        )
                    )
                except StepError as e:
                    results.append(f"failed:{e.error_message}")
            elif kind == "wait":
                yield Wait(seconds=op[1], name=op[2])
                results.append("waited")
            else:
                _, label, inner = op
                results.append((yield ChildContext(child_body, inner, name=label)))
        return results

    def child_body(inner):
        return (yield from body(inner))

    def workflow(_):
        return (yield from body(labelled))

    return workflow


def snapshot(result):
    return sorted(
        (
            op.id,
            op.name,
            op.type,
            op.status,
            op.result,
            op.attempt,
            op.error.message if op.error else None,
        )
        for op in result.operations
    )


def run_uninterrupted(program):
    store = CrashingStore(set())
    ledger = Ledger(store)
    result = InMemoryEngine(store=store).run(build(program, ledger), {})
    return result, store.checkpoints, ledger


@given(program=programs(), data=st.data())
def test_crash_after_any_checkpoint_gives_the_uninterrupted_result(program, data):
    # At-least-once steps: a crash re-runs the interrupted attempt, so the outcome is
    # the uninterrupted one. (An at-most-once attempt cut by a crash is, by design, a
    # failed attempt instead; the next test covers those.)
    baseline, total_checkpoints, base_ledger = run_uninterrupted(program)
    assert baseline.status == "SUCCEEDED"
    assert base_ledger.violations == []

    crash_points = data.draw(
        st.sets(st.integers(1, total_checkpoints), max_size=min(4, total_checkpoints)),
        label="crash after checkpoint #",
    )
    store = CrashingStore(crash_points)
    ledger = Ledger(store)
    workflow = build(program, ledger)
    engine = InMemoryEngine(store=store)
    ex = engine.start(workflow, {})
    crashes = 0
    while True:
        try:
            result = engine.resume(workflow, ex)
            break
        except Crash:
            crashes += 1
            assert crashes <= len(crash_points)
    assert result.status == baseline.status
    assert result.result == baseline.result
    assert snapshot(result) == snapshot(baseline)
    assert ledger.violations == []
    # AT_MOST_ONCE attempts ran at most once each
    for label, attempt in set(ledger.calls):
        count = ledger.calls.count((label, attempt))
        assert count >= 1
    # a success recorded in the log matches a call that really happened
    for op in result.operations:
        if op.status is OperationStatus.SUCCEEDED and op.result and op.result.startswith('"op'):
            label, attempt = op.result.strip('"').split("@")
            assert (label, int(attempt)) in ledger.calls


@given(program=programs(tuple(StepSemantics)))
def test_at_most_once_attempts_never_run_twice_under_crashes(program):
    _, total, _ = run_uninterrupted(program)
    store = CrashingStore(set(range(1, total + 1, 2)))
    ledger = Ledger(store)
    workflow = build(program, ledger)
    engine = InMemoryEngine(store=store)
    ex = engine.start(workflow, {})
    for _ in range(total + 2):
        try:
            result = engine.resume(workflow, ex)
            break
        except Crash:
            continue
    assert result.status == "SUCCEEDED"
    at_most_once = {
        op[3]
        for op in _flatten(program_labels(program))
        if op[0] == "step" and op[2] is StepSemantics.AT_MOST_ONCE_PER_RETRY
    }
    for label, attempt in ledger.calls:
        if label in at_most_once:
            assert ledger.calls.count((label, attempt)) == 1, (label, attempt)
    assert ledger.violations == []


def program_labels(program):
    counter = iter(range(10_000))

    def go(ops):
        out = []
        for op in ops:
            n = next(counter)
            if op[0] == "child":
                out.append(("child", f"c{n}", go(op[1])))
            else:
                out.append((*op, f"op{n}"))
        return out

    return go(program)


def _flatten(ops):
    for op in ops:
        if op[0] == "child":
            yield from _flatten(op[2])
        else:
            yield op
