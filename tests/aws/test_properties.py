"""Property: paging and batching never change what an execution does.

Whatever the page size of the invocation's initial state and of checkpoint
deltas, and whatever batch limits the handler uses, a workflow ends with the
same result, the same operations and the same sequence of updates as with the
service's defaults.
"""

import json

import attrs
from hypothesis import given
from hypothesis import strategies as st

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    Jitter,
    OperationUpdate,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    current_attempt,
)
from durable_gen.aws import ApiRetry, BatchLimits, durable_handler

from .fake_service import FakeDurableService

RETRY = RetryPolicy(max_attempts=3, initial_delay=1, jitter=Jitter.NONE)


def value_of(v):
    return v


def flaky(fails, v):
    if current_attempt() <= fails:
        raise TimeoutError(f"attempt {current_attempt()}")
    return v


leaf = st.one_of(
    st.tuples(st.just("step"), st.integers(0, 99)),
    st.tuples(st.just("amo"), st.text(max_size=30)),
    st.tuples(st.just("wait"), st.integers(1, 60)),
    st.tuples(st.just("flaky"), st.integers(0, 3)),
    st.tuples(st.just("big"), st.integers(100, 3000)),
)
program = st.recursive(
    st.lists(leaf, max_size=6),
    lambda inner: st.lists(
        st.one_of(
            leaf,
            st.tuples(st.just("child"), inner),
            st.tuples(st.just("parallel"), st.lists(inner, min_size=1, max_size=3)),
        ),
        max_size=5,
    ),
    max_leaves=14,
)


def body(prog):
    out = []
    for i, (kind, arg) in enumerate(prog):
        name = f"{kind}{i}"
        if kind == "step":
            out.append((yield Step(value_of, arg, name=name)))
        elif kind == "amo":
            out.append((yield Step(value_of, arg, name=name, semantics=AT_MOST_ONCE_PER_RETRY)))
        elif kind == "wait":
            yield Wait(seconds=arg)
        elif kind == "flaky":
            try:
                out.append((yield Step(flaky, arg, i, name=name, retry=RETRY)))
            except StepError as e:
                out.append(e.error_message)
        elif kind == "big":
            out.append(len((yield Step(value_of, "z" * arg, name=name))))
        elif kind == "parallel":
            result = yield Parallel([branch(p) for p in arg], name=name)
            out.append(result.get_results())
        else:
            out.append((yield ChildContext(body, arg, name=name)))
    return out


def branch(prog):
    def run_branch():
        return (yield from body(prog))

    return run_branch


def workflow(event):
    return (yield ChildContext(body, event["prog"], name="main"))


def execute(prog, svc, limits):
    handler = durable_handler(
        workflow, client=svc, limits=limits, retry=ApiRetry(sleep=lambda s: None)
    )
    handler.clock = svc.clock
    arn = svc.start(json.dumps({"prog": prog}))
    ex = svc.run(handler, arn)
    ops = sorted(
        (op.id, op.type, op.sub_type, op.name, op.parent_id, op.status, op.result, op.attempt)
        for op in svc.operations(arn)
    )
    # each operation's updates, in order (steps of parallel branches that finish at
    # the same moment may interleave differently between runs), without stack
    # traces (a step runs inline or on the pool, depending on timing)
    per_op: dict[str, list[OperationUpdate]] = {}
    for update in ex.updates:
        u = update
        if u.error is not None:
            u = attrs.evolve(u, error=attrs.evolve(u.error, stack_trace=None))
        per_op.setdefault(u.id, []).append(u)
    return ex.status, ex.result, ops, per_op, ex.invocations


@given(
    prog=program,
    event_page=st.one_of(st.none(), st.integers(1, 4)),
    delta_page=st.one_of(st.none(), st.integers(1, 3)),
    state_page=st.integers(1, 5),
    max_updates=st.integers(1, 6),
    max_bytes=st.integers(300, 5000),
)
def test_same_result_and_operations_whatever_paging_and_batching(
    prog, event_page, delta_page, state_page, max_updates, max_bytes
):
    reference = execute(prog, FakeDurableService(), BatchLimits())
    svc = FakeDurableService(event_page_size=event_page, delta_page_size=delta_page)
    limits = BatchLimits(max_updates=max_updates, max_bytes=max_bytes, state_page_size=state_page)
    got = execute(prog, svc, limits)
    assert got == reference
    assert reference[0] == "SUCCEEDED"
    for batch in svc.batches:
        assert len(batch) <= max_updates
        if len(batch) > 1:
            assert len(json.dumps(batch, separators=(",", ":"))) <= max_bytes + len(batch) + 2
