"""Random workflow programs over every operation kind, and a driver that runs them.

A program is a list of ops; each op gets a unique label from its position, so a
step's function knows which op it is. Step results depend only on the label (not
on timing or attempt), so any correct engine gives the same result however often
the process crashes.
"""

from __future__ import annotations

import threading

from hypothesis import strategies as st

from durable_gen import (
    All,
    AllSettled,
    ChildContext,
    CompletionPolicy,
    CreateCallback,
    InMemoryEngine,
    Jitter,
    Map,
    MemoryStore,
    OperationStatus,
    OperationType,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitStrategy,
    current_attempt,
)

POLICY = RetryPolicy(max_attempts=3, initial_delay=1, max_delay=4, jitter=Jitter.FULL)
POLICIES = {
    "all_completed": CompletionPolicy.all_completed(),
    "first": CompletionPolicy.first_successful(),
    "fail_fast": None,
    "tolerate1": CompletionPolicy(tolerated_failure_count=1),
}


def ops_strategy(*, callbacks: bool = True, batches: bool = True):
    leaves = [
        st.tuples(st.just("step"), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.integers(1, 600)),
        st.tuples(st.just("wfc"), st.integers(1, 3)),
    ]
    if callbacks:
        leaves += [st.tuples(st.just("callback")), st.tuples(st.just("wfcb"))]
    leaf = st.one_of(leaves)
    combinable = st.one_of(
        st.tuples(st.just("step"), st.integers(0, 3)),
        st.tuples(st.just("wait"), st.integers(1, 600)),
    )

    def extend(children):
        options = [
            st.tuples(st.just("child"), st.lists(children, max_size=3)),
            st.tuples(
                st.sampled_from(["all", "allsettled"]), st.lists(combinable, min_size=0, max_size=3)
            ),
        ]
        if batches:
            options += [
                st.tuples(
                    st.just("parallel"),
                    st.lists(st.lists(children, max_size=3), max_size=3),
                    st.sampled_from(sorted(POLICIES)),
                    st.sampled_from([None, 1, 2]),
                ),
                st.tuples(
                    st.just("map"),
                    st.integers(0, 4),
                    st.lists(children, max_size=2),
                    st.sampled_from(sorted(POLICIES)),
                    st.sampled_from([None, 1, 2]),
                ),
            ]
        return st.one_of(options)

    return st.lists(st.recursive(leaf, extend, max_leaves=10), min_size=1, max_size=5)


class Ledger:
    """Step-function calls, and a check that no recorded success runs again."""

    def __init__(self, store: MemoryStore):
        self.store = store
        self.calls: list[tuple[str, int]] = []
        self.violations: list[str] = []
        self.lock = threading.Lock()

    def succeeded(self, label: str) -> bool:
        with self.store._lock:
            for ex in self.store._executions.values():
                for op in ex.operations.values():
                    if op.name == label and op.status is OperationStatus.SUCCEEDED:
                        return True
        return False

    def step(self, label: str, fail_times: int):
        def fn(*_args):
            if self.succeeded(label):
                self.violations.append(label)
            attempt = current_attempt()
            with self.lock:
                self.calls.append((label, attempt))
            if attempt <= fail_times:
                raise ConnectionError(f"{label} failed attempt {attempt}")
            return f"{label}:ok"

        fn.__name__ = "fn"
        return fn


def build(program, ledger: Ledger):
    """The workflow function of ``program``."""

    def run_ops(ops, path):
        results = []
        for i, op in enumerate(ops):
            label = f"{path}.{i}"
            results.append((yield from run_op(op, label)))
        return results

    def run_op(op, label):
        kind = op[0]
        if kind == "step":
            try:
                return (yield Step(ledger.step(label, op[1]), name=label, retry=POLICY))
            except StepError as e:
                return f"failed:{e.error_message}"
        if kind == "wait":
            yield Wait(seconds=op[1], name=label)
            return "waited"
        if kind == "wfc":
            polls = op[1]
            strategy = WaitStrategy(
                should_continue=lambda s, polls=polls: s < polls,
                initial_delay=2,
                jitter=Jitter.NONE,
            )
            return (yield WaitForCondition(lambda s: s + 1, 0, strategy, name=label))
        if kind == "callback":
            handle = yield CreateCallback(label)
            return (yield handle.result())
        if kind == "wfcb":
            return (yield WaitForCallback(lambda cid: None, label))
        if kind == "child":
            return (yield ChildContext(child_body, op[1], label, name=label))
        if kind in ("all", "allsettled"):
            descs = [
                Step(ledger.step(f"{label}.{j}", o[1]), name=f"{label}.{j}", retry=POLICY)
                if o[0] == "step"
                else Wait(seconds=o[1], name=f"{label}.{j}")
                for j, o in enumerate(op[1])
            ]
            comb = All if kind == "all" else AllSettled
            try:
                r = yield comb(descs, name=label)
            except Exception as e:  # record whatever the combinator threw
                return f"failed:{type(e).__name__}"
            return r
        if kind == "parallel":
            _, branches, policy, conc = op
            fns = [branch_fn(b, f"{label}.b{j}") for j, b in enumerate(branches)]
            r = yield Parallel(fns, name=label, completion=POLICIES[policy], max_concurrency=conc)
            return [(it.index, it.status.value, it.result) for it in r.all]
        if kind == "map":
            _, n, body, policy, conc = op

            def item_fn(item, index, body=body, label=label):
                return (yield from run_ops(body, f"{label}.m{index}"))

            r = yield Map(
                range(n), item_fn, name=label, completion=POLICIES[policy], max_concurrency=conc
            )
            return [(it.index, it.status.value, it.result) for it in r.all]
        raise AssertionError(op)

    def branch_fn(body, path):
        def fn():
            return (yield from run_ops(body, path))

        return fn

    def child_body(ops, path):
        return (yield from run_ops(ops, path))

    def workflow(_):
        return (yield from run_ops(program, "r"))

    return workflow


def complete_callbacks(engine, execution_id, choose=None):
    """Complete pending callbacks (all, or those ``choose`` picks); True if any."""
    pending = sorted(
        (
            op
            for op in engine.store.load(execution_id).values()
            if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED
        ),
        key=lambda op: op.id,
    )
    if choose is not None and pending:
        pending = choose(pending)
    for op in pending:
        engine.store.complete_callback(
            op.callback_id, "succeed", engine.clock.now(), payload=f"answer:{op.name}"
        )
    return bool(pending)


def drive(engine, workflow, execution_id, choose=None, crash=BaseException):
    """Resume until done, completing callbacks whenever the execution waits on them."""
    for _ in range(500):
        try:
            result = engine.resume(workflow, execution_id)
        except crash:
            continue
        if result.status != "RUNNING":
            return result
        if not complete_callbacks(engine, execution_id, choose):
            nxt = engine.store.next_timer(execution_id)
            assert nxt is not None, "blocked with nothing to complete"
            engine.clock.sleep_until(nxt)
    raise AssertionError("did not finish")


def snapshot(engine, execution_id):
    ops = engine.store.load(execution_id).values()
    return sorted(
        (
            op.id,
            op.parent_id,
            op.name,
            op.type.value,
            op.sub_type,
            op.status.value,
            op.result,
            op.attempt,
            op.error.message if op.error else None,
        )
        for op in ops
        if op.type is not OperationType.EXECUTION
    )


def new_engine(store):
    return InMemoryEngine(store=store)
