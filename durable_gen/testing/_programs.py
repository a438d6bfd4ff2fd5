"""Random workflow programs over every operation kind, as hypothesis strategies.

A program is a list of ops (plain tuples, so hypothesis shows and shrinks them
readably); :func:`build_workflow` turns it into a workflow function. Each op gets
a label from its position (``r.0``, ``r.2.b1.0`` ...) used as its name, and a
step's result depends only on its label, never on timing or attempts -- so any
correct engine and store give the same result however often the process
crashes. Use them to fuzz engines and stores::

    @given(program=programs())
    def test_my_store(program):
        check_replay(build_workflow(program), functions=PROGRAM_FUNCTIONS)

Op shapes::

    ("step", fail_times[, sub_type])  Step failing its first fail_times attempts (retried)
    ("fail",)                       Step that always fails, not retried, not caught
    ("fatal",)                      Step raising ExecutionError: the execution fails at once
                                    (generated at the top level only, with ``fatal``)
    ("ifail",)                      at-most-once Step raising RetryableSerDesError in its
                                    first attempt: the invocation fails and is retried, the
                                    retry finds the attempt interrupted (top level only,
                                    with ``invocation_retries``)
    ("try", op)                     op, catching the OperationError it throws
    ("wait", seconds)               Wait
    ("wfc", polls)                  WaitForCondition polling ``polls`` times
    ("callback",)                   CreateCallback then awaiting it
    ("wfcb",)                       WaitForCallback
    ("cbtimeout", seconds)          CreateCallback(timeout=seconds) awaited: it times out
    ("cbanswer",)                   WaitForCallback whose submitter completes it at once,
                                    through the service at the input's callback_endpoint
    ("invoke", n)                   Invoke of the registered function "echo"
    ("child", ops, raises[, sub_type])  ChildContext (raising at its end when ``raises``)
    ("vchild", ops, raises)         a virtual ChildContext (records no operation itself)
    (comb, [step/wait ops])         comb: "all", "allsettled", "any" or "race"
    ("parallel", [ops...], policy, max_concurrency[, named])  (named: ParallelBranch)
    ("map", n_items, ops, policy, max_concurrency)

``policy`` names one of :data:`COMPLETION_POLICIES`, two of which are custom
``should_complete`` predicates.

Programs are JSON data too (lists in place of tuples work the same), so one can be
sent as a workflow's input: :func:`program_workflow` runs the program it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from .._core.batch import (
    BatchItemStatus,
    CompletionDecision,
    CompletionOutcome,
    CompletionPolicy,
    CompletionStatus,
    complete_batch,
    continue_batch,
)
from .._core.descriptors import (
    AT_MOST_ONCE_PER_RETRY,
    All,
    AllSettled,
    Any_,
    ChildContext,
    CreateCallback,
    Invoke,
    Map,
    Parallel,
    ParallelBranch,
    Race,
    Step,
    Wait,
    WaitForCallback,
    WaitForCondition,
)
from .._core.errors import ExecutionError, OperationError, RetryableSerDesError
from .._core.retry import (
    Jitter,
    RetryPolicy,
    WaitStrategy,
)
from .._engine.driver import current_attempt

__all__ = [
    "COMPLETION_POLICIES",
    "PROGRAM_FUNCTIONS",
    "build_workflow",
    "program_workflow",
    "programs",
]

RETRY = RetryPolicy(max_attempts=3, initial_delay=1, max_delay=4, jitter=Jitter.FULL)
#: The retry policy of generated steps when delays must be the same in every SDK.
RETRY_NO_JITTER = RetryPolicy(max_attempts=3, initial_delay=1, max_delay=4, jitter=Jitter.NONE)
_NO_RETRY = RetryPolicy.none()


def _quorum2(status: CompletionStatus) -> CompletionDecision:
    """Done, succeeded, at two successes; done, failed, at two failures."""
    if status.success_count >= 2:
        return complete_batch()
    if status.failure_count >= 2:
        return complete_batch(CompletionOutcome.FAILED)
    return continue_batch()


def _first_decides(status: CompletionStatus) -> CompletionDecision:
    """Done when branch 0 has ended, with its outcome (reads the per-branch items)."""
    first = status.items[0].status if status.items else None
    if first is BatchItemStatus.SUCCEEDED:
        return complete_batch()
    if first is BatchItemStatus.FAILED:
        return complete_batch(CompletionOutcome.FAILED)
    return continue_batch()


#: Completion policies a generated Parallel/Map picks from, by name.
COMPLETION_POLICIES: dict[str, CompletionPolicy | None] = {
    "all_completed": CompletionPolicy.all_completed(),
    "first": CompletionPolicy.first_successful(),
    "fail_fast": None,
    "tolerate1": CompletionPolicy(tolerated_failure_count=1),
    "quorum2": CompletionPolicy(should_complete=_quorum2),
    "first_decides": CompletionPolicy(should_complete=_first_decides),
}

#: The sub_type of generated operations that carry one (AWS's ``sub_type``).
SUB_TYPE = "Custom-Op_1"

Op = Sequence[Any]


def _upper(text: str) -> str:
    return str(text).upper()


def _echo(payload: Any) -> Generator[Any, Any, Any]:
    """The durable function generated ``Invoke`` ops call."""
    return (yield Step(_upper, payload, name="upper"))


#: Durable functions generated programs invoke (pass as ``functions=``).
PROGRAM_FUNCTIONS: dict[str, Callable[..., Any]] = {"echo": _echo}


def programs(
    *,
    callbacks: bool = True,
    batches: bool = True,
    invokes: bool = True,
    self_callbacks: bool = False,
    combinators: bool = True,
    failures: bool = False,
    deterministic_batches: bool = False,
    fatal: bool = False,
    invocation_retries: bool = False,
    max_leaves: int = 10,
    max_ops: int = 5,
) -> Any:
    """A hypothesis strategy of programs (lists of ops; see the module docstring).

    ``self_callbacks=True`` adds callbacks that end without an outside party (one
    times out, one is answered by its own submitter: the workflow's input must then
    name the service, see :func:`program_workflow`). ``combinators=False`` leaves
    out All/Any/Race/AllSettled (durable_gen's own, with no counterpart in AWS's
    SDK). ``failures=True`` adds uncaught failing
    steps and try/except around any op. ``deterministic_batches=True`` keeps to
    batches whose outcome cannot depend on how fast concurrent branches run (AWS's
    SDK runs them on threads): a completion policy other than "all completed" only
    with ``max_concurrency=1``. ``fatal=True`` adds top-level steps raising
    ExecutionError (left out of the differential suite: AWS's SDK writes a step's
    START without waiting, so whether its history holds the StepStarted of a step
    that ends the execution at once depends on timing there).
    ``invocation_retries=True`` adds top-level ``("ifail",)`` steps: invocation-level
    retries (in 107 of the differential suite's 200 programs).
    """
    from hypothesis import strategies as st

    step = st.one_of(
        st.tuples(st.just("step"), st.integers(0, 3)),
        st.tuples(st.just("step"), st.integers(0, 3), st.just(SUB_TYPE)),
    )
    wait = st.tuples(st.just("wait"), st.integers(1, 600))
    leaves: list[Any] = [step, wait, st.tuples(st.just("wfc"), st.integers(1, 3))]
    if callbacks:
        leaves += [st.tuples(st.just("callback")), st.tuples(st.just("wfcb"))]
    if invokes:
        leaves.append(st.tuples(st.just("invoke"), st.integers(0, 99)))
    if failures:
        leaves.append(st.tuples(st.just("fail")))
    if self_callbacks:
        # a callback's timeout runs on real time in the services under test: 1 s
        leaves += [st.just(("cbtimeout", 1)), st.just(("cbanswer",))]
    combinable = st.one_of(step, wait)
    policy = st.sampled_from(sorted(COMPLETION_POLICIES))
    concurrency = st.sampled_from([None, 1, 2])
    if deterministic_batches:
        policy_and_concurrency = st.one_of(
            st.tuples(policy, st.just(1)),
            st.tuples(st.just("all_completed"), st.sampled_from([None, 2])),
        )
    else:
        policy_and_concurrency = st.tuples(policy, concurrency)

    def extend(children: Any) -> Any:
        body = st.lists(children, max_size=3)
        options = [
            st.tuples(st.just("child"), body, st.booleans()),
            st.tuples(st.just("child"), body, st.booleans(), st.just(SUB_TYPE)),
            st.tuples(st.just("vchild"), body, st.booleans()),
        ]
        if combinators:
            options += [
                st.tuples(
                    st.sampled_from(["all", "allsettled", "any"]),
                    st.lists(combinable, max_size=3),
                ),
                # Race([]) never settles (as a JS Promise.race([])): give it an operand
                st.tuples(st.just("race"), st.lists(combinable, min_size=1, max_size=3)),
            ]
        if failures:
            options.append(st.tuples(st.just("try"), children))
        if batches:
            options += [
                st.builds(
                    lambda branches, pc, named: ("parallel", branches, *pc, *named),
                    st.lists(st.lists(children, max_size=3), max_size=3),
                    policy_and_concurrency,
                    st.sampled_from([(), (True,)]),
                ),
                st.builds(
                    lambda n, body, pc: ("map", n, body, *pc),
                    st.integers(0, 4),
                    st.lists(children, max_size=2),
                    policy_and_concurrency,
                ),
            ]
        return st.one_of(options)

    op = st.recursive(st.one_of(leaves), extend, max_leaves=max_leaves)
    if fatal:
        # at the top only: in a branch it would race the other branches' events
        op = st.one_of(op, st.just(("fatal",)))
    if invocation_retries:
        # at the top only, for the same reason; rarer than the rest (each costs an
        # invocation retry on every target)
        op = st.one_of(op, op, op, op, op, st.just(("ifail",)))
    return st.lists(op, min_size=1, max_size=max_ops)


def _step_fn(label: str, fail_times: int) -> Callable[..., str]:
    def fn(*_args: Any) -> str:
        attempt = current_attempt()
        if attempt <= fail_times:
            raise ConnectionError(f"{label} failed attempt {attempt}")
        return f"{label}:ok"

    fn.__name__ = "fn"
    return fn


def _policy(name: str, total: int) -> CompletionPolicy | None:
    """The named policy; "first" of no branches is "all_completed" (min_successful
    above the number of branches is refused, as AWS's SDK refuses it)."""
    if name == "first" and total == 0:
        name = "all_completed"
    return COMPLETION_POLICIES[name]


def _fail_fn(label: str) -> Callable[..., str]:
    def fn(*_args: Any) -> str:
        raise ValueError(f"{label} failed for good")

    fn.__name__ = "fn"
    return fn


def _fatal_fn(label: str) -> Callable[..., str]:
    def fn(*_args: Any) -> str:
        raise ExecutionError(f"{label} cannot go on")

    fn.__name__ = "fn"
    return fn


def _ifail_fn(label: str) -> Callable[..., str]:
    def fn(*_args: Any) -> str:
        if current_attempt() == 1:
            raise RetryableSerDesError(f"{label} could not store its result")
        return f"{label}:ok"

    fn.__name__ = "fn"
    return fn


def _ignore(_callback_id: str) -> None:
    return None


def _comb_operand(label: str, op: Op) -> Any:
    if op[0] == "step":
        return Step(_step_fn(label, op[1]), name=label, retry=RETRY)
    return Wait(seconds=op[1], name=label)


_COMBINATORS: dict[str, Any] = {"all": All, "allsettled": AllSettled, "any": Any_, "race": Race}


def program_workflow(event: Any) -> Generator[Any, Any, Any]:
    """A workflow that runs the program in its input: ``{"program": [...], "retry": ...}``.

    ``"retry"`` is ``"jitter"`` (:data:`RETRY`, the default) or ``"none"``
    (:data:`RETRY_NO_JITTER`: the same delays in every SDK). ``"callback_endpoint"``
    is the URL of the durable service ``("cbanswer",)`` ops send their answer to.
    """
    retry = RETRY_NO_JITTER if event.get("retry") == "none" else RETRY
    workflow = build_workflow(
        event["program"], retry=retry, callback_endpoint=event.get("callback_endpoint")
    )
    return (yield from workflow(None))


_clients: dict[str, Any] = {}


def _answer(endpoint: str | None, label: str) -> Callable[[str], None]:
    """A WaitForCallback submitter that completes its callback through the service."""

    def submit(callback_id: str) -> None:
        if endpoint is None:
            raise ValueError("a ('cbanswer',) op needs the input's callback_endpoint")
        client = _clients.get(endpoint)
        if client is None:
            import boto3  # type: ignore[import-untyped]

            client = _clients[endpoint] = boto3.client(
                "lambda",
                endpoint_url=endpoint,
                region_name="us-west-2",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        client.send_durable_execution_callback_success(
            CallbackId=callback_id, Result=f'"{label}:answered"'.encode()
        )

    submit.__name__ = "submit"
    return submit


def build_workflow(
    program: list[Op], *, retry: RetryPolicy = RETRY, callback_endpoint: str | None = None
) -> Callable[[Any], Generator[Any, Any, Any]]:
    """The workflow function of ``program`` (its input is ignored)."""

    def run_ops(ops: list[Op], path: str) -> Generator[Any, Any, list[Any]]:
        results = []
        for i, op in enumerate(ops):
            results.append((yield from run_op(op, f"{path}.{i}")))
        return results

    def run_op(op: Op, label: str) -> Generator[Any, Any, Any]:
        kind = op[0]
        if kind == "step":
            sub_type = op[2] if len(op) > 2 else None
            try:
                return (
                    yield Step(_step_fn(label, op[1]), name=label, retry=retry, sub_type=sub_type)
                )
            except OperationError as e:
                return f"failed:{e.error_message}"
        if kind == "fail":
            return (yield Step(_fail_fn(label), name=label, retry=_NO_RETRY))
        if kind == "fatal":
            return (yield Step(_fatal_fn(label), name=label, retry=retry))
        if kind == "ifail":
            ifail = Step(
                _ifail_fn(label), name=label, retry=retry, semantics=AT_MOST_ONCE_PER_RETRY
            )
            return (yield ifail)
        if kind == "try":
            try:
                return (yield from run_op(op[1], label))
            except OperationError as e:
                return f"caught:{type(e).__name__}:{e.error_type}:{e.error_message}"
        if kind == "wait":
            yield Wait(seconds=op[1], name=label)
            return "waited"
        if kind == "wfc":
            polls: int = op[1]
            strategy = WaitStrategy(
                should_continue=lambda s: bool(s < polls),
                initial_delay=2,
                jitter=Jitter.NONE,
            )
            return (yield WaitForCondition(lambda s: s + 1, 0, strategy, name=label))
        if kind == "callback":
            handle = yield CreateCallback(label)
            return (yield handle.result())
        if kind == "wfcb":
            return (yield WaitForCallback(_ignore, label))
        if kind == "cbtimeout":
            handle = yield CreateCallback(label, timeout=op[1])
            return (yield handle.result())
        if kind == "cbanswer":
            submit = _answer(callback_endpoint, label)
            return (yield WaitForCallback(submit, label, timeout=3600, retry=_NO_RETRY))
        if kind == "invoke":
            return (yield Invoke("echo", f"{label}:{op[1]}", name=label))
        if kind in ("child", "vchild"):
            sub_type = op[3] if len(op) > 3 else None
            child = ChildContext(
                child_body,
                op[1],
                label,
                op[2],
                name=label,
                sub_type=sub_type,
                virtual=kind == "vchild",
            )
            try:
                return (yield child)
            except OperationError as e:
                return f"failed:{e.error_type}:{e.error_message}"
        if kind in _COMBINATORS:
            descs = [_comb_operand(f"{label}.{j}", o) for j, o in enumerate(op[1])]
            try:
                return (yield _COMBINATORS[kind](descs, name=label))
            except OperationError as e:
                return f"failed:{type(e).__name__}"
        if kind == "parallel":
            _, branches, policy, conc, *named = op
            fns: list[Any] = [branch_fn(b, f"{label}.b{j}") for j, b in enumerate(branches)]
            if named and named[0]:
                fns = [ParallelBranch(fn, f"{label}.b{j}") for j, fn in enumerate(fns)]
            r = yield Parallel(
                fns, name=label, completion=_policy(policy, len(fns)), max_concurrency=conc
            )
            return [[it.index, it.status.value, it.result] for it in r.all]
        if kind == "map":
            _, n, body, policy, conc = op

            def item_fn(item: Any, index: int) -> Generator[Any, Any, Any]:
                return (yield from run_ops(body, f"{label}.m{index}"))

            r = yield Map(
                range(n),
                item_fn,
                name=label,
                completion=_policy(policy, n),
                max_concurrency=conc,
            )
            return [[it.index, it.status.value, it.result] for it in r.all]
        raise ValueError(f"unknown op {op!r}")

    def branch_fn(body: list[Op], path: str) -> Callable[[], Generator[Any, Any, Any]]:
        def fn() -> Generator[Any, Any, Any]:
            return (yield from run_ops(body, path))

        return fn

    def child_body(ops: list[Op], path: str, raises: bool) -> Generator[Any, Any, Any]:
        results = yield from run_ops(ops, path)
        if raises:
            raise ValueError(f"{path} raised after {len(results)} ops")
        return results

    def workflow(_input: Any) -> Generator[Any, Any, Any]:
        return (yield from run_ops(program, "r"))

    return workflow
