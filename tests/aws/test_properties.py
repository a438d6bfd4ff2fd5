"""Property: paging and batching never change what an execution does.

Whatever the page size of the invocation's initial state and of checkpoint
deltas, and whatever batch limits the handler uses, a workflow run by AWS's
emulator (dex-local-runner, see ``conftest.py``) ends with the same result, the
same history of each operation and the same updates of each operation as with
the emulator's defaults.

The initial state is cut to the emulator's own first page (``MaxItems``, with its
real ``NextMarker``); checkpoint deltas are paged by the
:class:`~tests.aws.proxy.ProxyClient` (the emulator returns them whole).
"""

import json
from datetime import datetime
from typing import Any

import hypothesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    ChildContext,
    Jitter,
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    current_attempt,
)
from durable_gen.aws import ApiRetry, BatchLimits

from .proxy import ProxyClient, Run, paged, run

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


def comparable(value: Any) -> Any:
    """``value`` without what differs between two runs of one program: timestamps,
    and stack traces (a step runs inline or on the pool, depending on timing)."""
    if isinstance(value, dict):
        return {
            k: comparable(v)
            for k, v in value.items()
            if k != "StackTrace" and not isinstance(v, datetime)
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def execute(emulator: Any, prog: Any, limits: BatchLimits, *, event_page=None, delta_page=None):
    """Run ``prog`` on the emulator; returns what it did, and the run.

    What it did: the execution's status and result, each operation's events in
    the emulator's history and each operation's updates the emulator answered,
    in order (steps of parallel branches that finish at the same moment may
    interleave differently between runs), and the number of invocations.
    """
    proxy = ProxyClient(emulator.client, delta_page_size=delta_page)
    result: Run = run(
        emulator,
        workflow,
        {"prog": prog},
        proxy=proxy,
        before=None if event_page is None else paged(emulator.client, event_page),
        limits=limits,
        retry=ApiRetry(sleep=lambda s: None),
    )
    history: dict[str, list[Any]] = {}
    for e in result.history():
        if e["EventType"] == "InvocationCompleted" or e["EventType"].startswith("Execution"):
            continue  # the execution's own events name the execution, not the program
        what = (e["EventType"], e.get("SubType"), e.get("Name"), e.get("ParentId"))
        details = {k: v for k, v in e.items() if k.endswith("Details")}
        history.setdefault(e["Id"], []).append((what, comparable(details)))
    updates: dict[str, list[Any]] = {}
    for batch in proxy.batches:
        for u in batch:
            updates.setdefault(u["Id"], []).append(comparable(u))
    assert result.invocations.errors == []  # no invocation raised
    outcome = (result.status, result.result, history, updates, len(result.invocations.events))
    return outcome, result


#: waits, retries, a parallel, a child context and a large payload, paged finely
RICH = [
    ["step", 1],
    ["wait", 3],
    ["parallel", [[["wait", 2], ["step", 7]], [["flaky", 1], ["wait", 5]], [["big", 400]]]],
    ["child", [["amo", "x"], ["flaky", 3]]],
]


# Each example is two executions on the emulator (about 0.4 s): a modest count.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    prog=program,
    event_page=st.one_of(st.none(), st.integers(1, 4)),
    delta_page=st.one_of(st.none(), st.integers(1, 3)),
    state_page=st.integers(1, 5),
    max_updates=st.integers(1, 6),
    max_bytes=st.integers(300, 5000),
)
@example(prog=RICH, event_page=1, delta_page=1, state_page=2, max_updates=2, max_bytes=300).via(
    "every kind of paging and batching, always"
)
def test_same_result_and_operations_whatever_paging_and_batching(
    emulator, prog, event_page, delta_page, state_page, max_updates, max_bytes
):
    reference, ref_run = execute(emulator, prog, BatchLimits())
    limits = BatchLimits(max_updates=max_updates, max_bytes=max_bytes, state_page_size=state_page)
    got, got_run = execute(emulator, prog, limits, event_page=event_page, delta_page=delta_page)
    assert got == reference
    assert reference[0] == "SUCCEEDED", ref_run.execution
    for batch in got_run.proxy.batches:
        assert len(batch) <= max_updates
        if len(batch) > 1:
            assert len(json.dumps(batch, separators=(",", ":"))) <= max_bytes + len(batch) + 2
    # each invocation whose state was cut read the rest from the emulator's pages
    cut = sum(
        len(e["InitialExecutionState"]["Operations"]) > event_page
        for e in got_run.invocations.events
        if event_page is not None
    )
    state_reads = [kw for name, kw in got_run.proxy.calls if name == "GetDurableExecutionState"]
    assert len(state_reads) >= cut
    assert all(kw["MaxItems"] == state_page for kw in state_reads)
    assert got_run.proxy.held_pages == 0  # every delta page the proxy held back was read
    hypothesis.event(f"invocations with their state cut: {min(cut, 3)}{'+' if cut > 3 else ''}")
