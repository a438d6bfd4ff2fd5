"""``check_replay`` and ``fuzz_replay``: prove a workflow is replay-safe.

The check runs the workflow once uninterrupted, then again with the process
"dying" at chosen points -- right after a checkpoint, or while a step attempt
runs (inside Parallel/Map branches too) -- and resumed each time from the log.
It asserts:

1. the resumed run ends as the uninterrupted one did (same status, result, error);
2. the final log is the same (callback ids and timestamps aside);
3. no step whose success was recorded runs again;
4. the workflow body is deterministic: interpreted twice against the same log
   (the log after every checkpoint), it asks for the same commands, and never
   for a step whose success that log records.

An at-most-once step attempt cut short by a crash is, by design, a failed
attempt: for such a crash point (1) and (2) are not required, only that the
interrupted attempt never runs again. Steps whose results change from run to
run (the time, a random draw -- read in a step, as they should be) are legal:
the workflow is run uninterrupted twice, and crashed runs are compared only as
far as those two agree (see :attr:`ReplayReport.compared`).

A failure raises :class:`ReplayCheckFailed`: the input, the crash point and the
first operation that differed, in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._core import service as _service
from .._core.commands import (
    Checkpoint,
    Command,
    Complete,
    Fail,
    FailInvocation,
    RunStep,
    Suspend,
)
from .._core.errors import (
    DurableGenError,
    NonDeterminismError,
)
from .._core.interpreter import Interpreter
from .._core.interpreter.base import args_digest
from .._core.log import (
    Operation,
    OperationStatus,
    OperationType,
)
from .._core.present import describe_operation
from .._core.serdes import DEFAULT_SERDES
from .._engine.clock import VirtualClock
from .._engine.driver import load_input
from .._engine.local import ExecutionResult
from ._harness import (
    CallbackPolicy,
    HarnessEngine,
    RecordingStore,
    StepTracker,
    StuckError,
    describe_updates,
    drive,
    succeed_all,
)

__all__ = ["CrashPlan", "ReplayCheckFailed", "ReplayReport", "check_replay", "fuzz_replay"]

EXECUTION_ID = "check-replay"


class ReplayCheckFailed(AssertionError):
    """A workflow is not replay-safe: ``input``, ``crash_point``, ``problem``, ``difference``."""

    def __init__(
        self,
        *,
        input: Any,
        problem: str,
        crash_point: str | None = None,
        difference: str | None = None,
    ) -> None:
        self.input = input
        self.problem = problem
        self.crash_point = crash_point
        self.difference = difference
        lines = [f"replay check failed for input {input!r}"]
        if crash_point is not None:
            lines.append(f"  crash point: {crash_point}")
        lines.append(f"  problem: {problem}")
        if difference is not None:
            lines.append(f"  first difference: {difference}")
        super().__init__("\n".join(lines))


@attrs.frozen
class CrashPlan:
    """Where the process dies: after these checkpoints, during these step attempts.

    Numbers are 1-based and counted over the whole run, resumes included.
    """

    after_checkpoints: frozenset[int] = frozenset()
    during_attempts: frozenset[int] = frozenset()

    @classmethod
    def after(cls, *checkpoints: int) -> CrashPlan:
        return cls(after_checkpoints=frozenset(checkpoints))

    @classmethod
    def during(cls, *attempts: int) -> CrashPlan:
        return cls(during_attempts=frozenset(attempts))


@attrs.frozen
class ReplayReport:
    """What a passing check covered.

    ``compared`` says how crashed runs were compared with the uninterrupted one:
    ``"values"`` (results and the whole log), ``"shape"`` (which operations ran
    and how they ended: two uninterrupted runs differed in values, e.g. a step
    returns the time) or ``"nothing"`` (they differed in shape too; only errors,
    re-run successes and determinism were checked).
    """

    result: ExecutionResult
    checkpoints: int
    attempts: int
    crash_runs: int
    logs_checked: int
    compared: str = "values"


@attrs.define
class _Run:
    store: RecordingStore
    tracker: StepTracker
    result: ExecutionResult | None
    exception: BaseException | None
    crashes: list[str]


def _run(
    workflow: Callable[..., Any],
    input: Any,
    plan: CrashPlan,
    policy: CallbackPolicy,
    functions: Mapping[str, Callable[..., Any]] | None,
    totals: tuple[int, int] | None = None,
) -> _Run:
    crashes: list[str] = []
    store = RecordingStore(
        plan.after_checkpoints,
        watch=EXECUTION_ID,
        total=totals[0] if totals else None,
        crashes=crashes,
    )
    tracker = StepTracker(
        store, plan.during_attempts, total=totals[1] if totals else None, crashes=crashes
    )
    clock = VirtualClock()
    engine = HarnessEngine(store=store, clock=clock, hooks=[tracker], functions=functions)
    engine.start(workflow, input, execution_id=EXECUTION_ID)
    store.logs.append((0, clock.now(), dict(store.load(EXECUTION_ID))))
    try:
        result = drive(engine, workflow, EXECUTION_ID, policy)
    except (DurableGenError, StuckError) as e:
        return _Run(store, tracker, None, e, crashes)
    return _Run(store, tracker, result, None, crashes)


# ------------------------------------------------------------------------ words


def _describe_op(op: Operation) -> str:
    return describe_operation(op.sub_type, op.type.value, op.name)


def _value_words(payload: str | None) -> str:
    """A recorded payload as the value it holds (cbor payloads are unreadable as text)."""
    if payload is None:
        return "None"
    try:
        value = DEFAULT_SERDES.deserialize(payload)
    except DurableGenError:
        return f"{payload!r:.100}"
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _state(op: Operation) -> str:
    words = op.status.value
    if op.attempt is not None and op.type is OperationType.STEP:
        words += f" after {op.attempt} attempt{'s' if op.attempt != 1 else ''}"
    if op.status is OperationStatus.SUCCEEDED and op.result is not None:
        words += f" with result {_value_words(op.result)}"
    if op.error is not None:
        words += f" with error {op.error.type}: {op.error.message!s:.80}"
    return words


def _where(ops: Mapping[str, Operation], op: Operation) -> str:
    parent = ops.get(op.parent_id) if op.parent_id else None
    if parent is None:
        return "in the root context"
    return f"in {_describe_op(parent)}"


def _fingerprint(op: Operation, compare: str = "values") -> tuple[Any, ...]:
    """What must be equal between two runs (callback ids and timestamps are not).

    ``compare="shape"``: only which operations ran and how they ended.
    """
    if compare == "shape":
        return (op.parent_id, op.name, op.type.value, op.sub_type, op.status.value)
    err = op.error
    return (
        op.parent_id,
        op.name,
        op.type.value,
        op.sub_type,
        op.status.value,
        op.result,
        op.attempt,
        None if err is None else (err.type, err.message),
        op.replay_children,
    )


def _log_of(run: _Run) -> dict[str, Operation]:
    """The log to compare: without the EXECUTION, and without abandoned work.

    Work is abandoned when the context it runs in no longer waits for it: a
    branch left unfinished when its batch completed, an operand a combinator
    decided without. What was still in flight there -- a chained invoke, a step
    with a retry pending -- races with that decision like any outside event, so
    it is not compared: an operation is left out when a context above it never
    ended, or ended before the operation did (or while it was still running).
    """
    ops = run.store.load(EXECUTION_ID)
    ended = run.result is not None and run.result.status != "RUNNING"

    def abandoned(op: Operation) -> bool:
        parent = ops.get(op.parent_id) if op.parent_id else None
        while parent is not None:
            if parent.type is OperationType.CONTEXT:
                if not parent.is_terminal:
                    return ended
                if not op.is_terminal or (op.end_timestamp or 0) > (parent.end_timestamp or 0):
                    return True
            parent = ops.get(parent.parent_id) if parent.parent_id else None
        return False

    return {
        k: v for k, v in ops.items() if v.type is not OperationType.EXECUTION and not abandoned(v)
    }


def _first_log_difference(
    base: dict[str, Operation], other: dict[str, Operation], compare: str = "values"
) -> str | None:
    for op_id, op in base.items():  # in the order the uninterrupted run created them
        got = other.get(op_id)
        if got is None:
            return (
                f"{_describe_op(op)} {_where(base, op)}: the uninterrupted run recorded it "
                f"{_state(op)}; the resumed run never reached it"
            )
        if _fingerprint(got, compare) != _fingerprint(op, compare):
            return (
                f"{_describe_op(op)} {_where(base, op)}: the uninterrupted run recorded it "
                f"{_state(op)}; the resumed run recorded {_describe_op(got)} {_state(got)}"
            )
    for op_id, got in other.items():
        if op_id not in base:
            return (
                f"{_describe_op(got)} {_where(other, got)}: the resumed run recorded it "
                f"{_state(got)}; the uninterrupted run never yielded it"
            )
    return None


def _nondeterminism_words(e: NonDeterminismError) -> str:
    return f"at the {e.position}, the log recorded {e.recorded}; the workflow {e.yielded}"


def _outcome_words(result: ExecutionResult) -> str:
    if result.status == "SUCCEEDED":
        return f"SUCCEEDED with {_value_words(result.result_payload)}"
    err = result.error
    detail = "" if err is None else f" with {err.type}: {err.message!s:.200}"
    return f"{result.status}{detail}"


# ------------------------------------------------------------------------ determinism


def _command_words(cmd: Command, ops: Mapping[str, Operation]) -> str:
    if isinstance(cmd, RunStep):
        op = ops.get(cmd.op_id)
        what = describe_operation(op.sub_type if op else "Step", "STEP", cmd.name)
        return f"run attempt {cmd.attempt} of {what}"
    ups = f" ({describe_updates(cmd.updates)})" if cmd.updates else ""
    if isinstance(cmd, Checkpoint):
        return f"checkpoint {describe_updates(cmd.updates)}"
    if isinstance(cmd, Suspend):
        return f"suspend{ups}"
    if isinstance(cmd, Complete):
        return f"complete with {cmd.result!s:.120}{ups}"
    if isinstance(cmd, Fail):
        return f"fail with {cmd.error.type}: {cmd.error.message!s:.120}{ups}"
    if isinstance(cmd, FailInvocation):
        return f"fail the invocation with {cmd.error.type}: {cmd.error.message!s:.120}{ups}"
    return f"wait for a running step{ups}"


def _command_key(cmd: Command) -> tuple[Any, ...]:
    key: tuple[Any, ...] = (
        type(cmd).__name__,
        tuple(repr(u.to_dict(local_extensions=True)) for u in cmd.updates),
    )
    if isinstance(cmd, RunStep):
        key += (cmd.op_id, cmd.name, cmd.attempt, args_digest(cmd.args), cmd.durable_first)
    elif isinstance(cmd, Suspend):
        key += (cmd.wake_at,)
    elif isinstance(cmd, Complete):
        key += (cmd.result,)
    elif isinstance(cmd, Fail | FailInvocation):
        key += (cmd.error.type, cmd.error.message)
    return key


def interpret(
    workflow: Callable[..., Any],
    log: Mapping[str, Operation],
    *,
    now: int,
    execution_id: str = EXECUTION_ID,
    max_commands: int = 1000,
) -> list[tuple[tuple[Any, ...], str, Command]]:
    """The commands the interpreter gives against ``log``, up to the first that needs I/O.

    Checkpoints are applied (with the service's pure rules) and acknowledged;
    step attempts are collected, never run. It stops at the first command that
    awaits a step's outcome, suspends or ends. A durable_gen error becomes the
    last entry (``("raised", ...)``).
    """
    return interpret_log(
        workflow, log, now=now, execution_id=execution_id, max_commands=max_commands
    )[0]


def interpret_log(
    workflow: Callable[..., Any],
    log: Mapping[str, Operation],
    *,
    now: int,
    execution_id: str = EXECUTION_ID,
    max_commands: int = 1000,
    old_paths: list[str] | None = None,
) -> tuple[list[tuple[tuple[Any, ...], str, Command]], DurableGenError | None]:
    """:func:`interpret`, and the durable_gen error that ended it (None if none did);
    ``old_paths`` is extended with the patch ids whose old branch the replay took."""
    raised: DurableGenError | None = None
    ops = dict(log)
    out: list[tuple[tuple[Any, ...], str, Command]] = []
    interp = Interpreter(
        workflow,
        load_input(ops, execution_id),
        ops,
        now=now,
        execution_id=execution_id,
        check_args=True,
    )
    try:
        for _ in range(max_commands):
            cmd = interp.next_command()
            if cmd.updates:
                changed, _ = _service.apply_updates(
                    ops, cmd.updates, now, new_callback_id=lambda op_id: f"cb-{op_id[:16]}"
                )
                ops.update(changed)
            else:
                changed = {}
            out.append((_command_key(cmd), _command_words(cmd, ops), cmd))
            if isinstance(cmd, Checkpoint):
                interp.checkpointed(changed)
                continue
            if isinstance(cmd, RunStep):
                continue
            break
    except DurableGenError as e:
        words = f"raise {type(e).__name__}: {e}"
        out.append((("raised", type(e).__name__, str(e)), words, Command([])))
        raised = e
    finally:
        interp.close()
        if old_paths is not None:
            old_paths.extend(interp.old_paths)
    return out, raised


def _check_determinism(workflow: Callable[..., Any], input: Any, baseline: _Run, total: int) -> int:
    """Interpret the workflow twice against the log after every checkpoint."""
    for k, now, log in baseline.store.logs:
        where = (
            "before the first checkpoint"
            if k == 0
            else f"after checkpoint {k} of {total}: {baseline.store.descriptions[k - 1]}"
        )
        first = interpret(workflow, log, now=now)
        second = interpret(workflow, log, now=now)
        for i, (a, b) in enumerate(zip(first, second, strict=False)):
            if a[0] != b[0]:
                raise ReplayCheckFailed(
                    input=input,
                    crash_point=where,
                    problem="the workflow body is not deterministic: interpreted twice against "
                    "the log recorded up to the crash point, it asked for different things",
                    difference=f"command {i + 1}: the first time it asked to {a[1]}, "
                    f"the second time to {b[1]}",
                )
        if len(first) != len(second):
            raise ReplayCheckFailed(
                input=input,
                crash_point=where,
                problem="the workflow body is not deterministic: interpreted twice against "
                f"the log recorded up to the crash point, it gave {len(first)} and then "
                f"{len(second)} commands",
            )
        for _, words, cmd in first:
            if isinstance(cmd, RunStep):
                op = log.get(cmd.op_id)
                if op is not None and op.status is OperationStatus.SUCCEEDED:
                    raise ReplayCheckFailed(
                        input=input,
                        crash_point=where,
                        problem=f"the replay would {words}, whose success is recorded",
                    )
    return len(baseline.store.logs)


# ------------------------------------------------------------------------ the check


def _check_crash_run(
    input: Any, baseline: _Run, run: _Run, plan_words: str, compare: str = "values"
) -> None:
    crash_point = "; then ".join(run.crashes) or f"{plan_words} (never reached)"
    if run.exception is not None:
        e = run.exception
        if isinstance(e, NonDeterminismError):
            raise ReplayCheckFailed(
                input=input,
                crash_point=crash_point,
                problem="the resumed run raised NonDeterminismError",
                difference=_nondeterminism_words(e),
            )
        raise ReplayCheckFailed(
            input=input,
            crash_point=crash_point,
            problem=f"the resumed run raised {type(e).__name__}: {e}",
        )
    assert run.result is not None
    assert baseline.result is not None
    if run.tracker.violations:
        raise ReplayCheckFailed(
            input=input,
            crash_point=crash_point,
            problem=f"a recorded success ran again: {run.tracker.violations[0]}",
        )
    if run.store.interrupted:
        # At-most-once attempts cut short are failed attempts by design; each
        # interrupted attempt must never run again.
        seen: set[tuple[str, str, int]] = set()
        for c in run.tracker.calls:
            key = (c.execution_id, c.operation_id, c.attempt)
            if c.operation_id in run.store.at_most_once and key in seen:
                raise ReplayCheckFailed(
                    input=input,
                    crash_point=crash_point,
                    problem=f"attempt {c.attempt} of at-most-once "
                    f"{describe_operation(None, 'STEP', c.name)} ran twice",
                )
            seen.add(key)
        return
    if compare == "nothing":
        return
    base, got = baseline.result, run.result
    values = compare == "values"
    same = (
        got.status == base.status
        and (not values or got.result_payload == base.result_payload)
        and (got.error is None) == (base.error is None)
        and (
            got.error is None
            or base.error is None
            or not values
            or (got.error.type, got.error.message) == (base.error.type, base.error.message)
        )
    )
    difference = _first_log_difference(_log_of(baseline), _log_of(run), compare)
    if not same:
        raise ReplayCheckFailed(
            input=input,
            crash_point=crash_point,
            problem=f"the resumed run ended {_outcome_words(got)}, the uninterrupted run "
            f"{_outcome_words(base)}",
            difference=difference,
        )
    if difference is not None:
        raise ReplayCheckFailed(
            input=input,
            crash_point=crash_point,
            problem="the resumed run left a different log",
            difference=difference,
        )


def _plan_words(plan: CrashPlan) -> str:
    parts = [f"after checkpoint {k}" for k in sorted(plan.after_checkpoints)]
    parts += [f"during step attempt {k}" for k in sorted(plan.during_attempts)]
    return ", ".join(parts)


def _comparison(first: _Run, second: _Run) -> str:
    """How much two uninterrupted runs agree: "values", "shape" or "nothing".

    Steps whose results change from run to run (a clock or a random draw read in
    a step, as it should be) make runs differ in values; when they steer the
    workflow, in shape too. A crashed run is compared as far as two uninterrupted
    runs agree.
    """
    a, b = _log_of(first), _log_of(second)
    ra, rb = first.result, second.result
    assert ra is not None
    assert rb is not None
    if _first_log_difference(a, b) is None and (ra.status, ra.result_payload) == (
        rb.status,
        rb.result_payload,
    ):
        return "values"
    if _first_log_difference(a, b, "shape") is None and ra.status == rb.status:
        return "shape"
    return "nothing"


def _baseline(
    workflow: Callable[..., Any],
    input: Any,
    policy: CallbackPolicy,
    functions: Mapping[str, Callable[..., Any]] | None,
) -> _Run:
    baseline = _run(workflow, input, CrashPlan(), policy, functions)
    if baseline.exception is not None:
        e = baseline.exception
        raise ReplayCheckFailed(
            input=input,
            problem=f"the uninterrupted run raised {type(e).__name__}: {e}",
            difference=_nondeterminism_words(e) if isinstance(e, NonDeterminismError) else None,
        )
    if baseline.tracker.violations:
        raise ReplayCheckFailed(
            input=input,
            problem=f"a recorded success ran again: {baseline.tracker.violations[0]}",
        )
    return baseline


def check_replay(
    workflow: Callable[..., Any],
    input: Any = None,
    *,
    callbacks: CallbackPolicy | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    crash_plans: Iterable[CrashPlan] | None = None,
    determinism: bool = True,
) -> ReplayReport:
    """Check that ``workflow`` run with ``input`` survives a crash anywhere.

    By default the process dies once at every point: after each checkpoint of the
    uninterrupted run, and during each of its step attempts. ``crash_plans``
    replaces those with your own (several crashes per run). ``callbacks`` answers
    pending callbacks (default: succeed each with ``"ok"``); ``functions`` are the
    durable functions ``Invoke`` can reach. Raises :class:`ReplayCheckFailed`.
    """
    from .._core.descriptors import check_generator_function

    check_generator_function(workflow, "check_replay's workflow")
    try:
        DEFAULT_SERDES.serialize(input)
    except DurableGenError as e:
        raise ReplayCheckFailed(input=input, problem=f"the input cannot be stored: {e}") from None
    policy = callbacks or succeed_all()
    baseline = _baseline(workflow, input, policy, functions)
    compare = _comparison(baseline, _baseline(workflow, input, policy, functions))
    totals = (baseline.store.count, len(baseline.tracker.calls))
    logs = _check_determinism(workflow, input, baseline, totals[0]) if determinism else 0
    if crash_plans is None:
        plans: Sequence[CrashPlan] = [CrashPlan.after(k) for k in range(1, totals[0] + 1)] + [
            CrashPlan.during(k) for k in range(1, totals[1] + 1)
        ]
    else:
        plans = list(crash_plans)
    for plan in plans:
        run = _run(workflow, input, plan, policy, functions, totals)
        _check_crash_run(input, baseline, run, _plan_words(plan), compare)
    assert baseline.result is not None
    return ReplayReport(
        result=baseline.result,
        checkpoints=totals[0],
        attempts=totals[1],
        crash_runs=len(plans),
        logs_checked=logs,
        compared=compare,
    )


def fuzz_replay(
    workflow: Callable[..., Any],
    inputs: Any,
    *,
    callbacks: CallbackPolicy | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    max_crashes: int = 3,
    settings: Any = None,
) -> None:
    """Hypothesis-driven :func:`check_replay`: inputs from a strategy, random crashes.

    For each input drawn from ``inputs`` (a hypothesis strategy) it checks
    determinism against every prefix of the log, then crashes the run at up to
    ``max_crashes`` random points (after checkpoints, during step attempts) and
    compares. A failure is shrunk by hypothesis to a minimal input and crash plan
    and raised as :class:`ReplayCheckFailed`. Call it from a plain test function,
    not from inside ``@given``; ``settings`` (a ``hypothesis.settings``) replaces
    the active profile (default: the active profile without a deadline).
    """
    from hypothesis import given
    from hypothesis import strategies as st

    from .._core.descriptors import check_generator_function

    check_generator_function(workflow, "fuzz_replay's workflow")
    policy = callbacks or succeed_all()

    @given(input=inputs, data=st.data())
    def replay_is_safe(input: Any, data: Any) -> None:
        baseline = _baseline(workflow, input, policy, functions)
        compare = _comparison(baseline, _baseline(workflow, input, policy, functions))
        totals = (baseline.store.count, len(baseline.tracker.calls))
        _check_determinism(workflow, input, baseline, totals[0])
        # Crash points are drawn as permilles of the run, not as indices: the number
        # of checkpoints of a workflow with concurrent branches varies from run to
        # run (how updates are grouped into checkpoints is timing), and hypothesis
        # needs the same choices to draw the same data.
        chosen = data.draw(
            st.lists(
                st.tuples(st.sampled_from(["after", "during"]), st.integers(0, 999)),
                min_size=1,
                max_size=max_crashes,
                unique=True,
            ),
            label="crash points (kind, permille of the run)",
        )
        after = frozenset(1 + p * totals[0] // 1000 for kind, p in chosen if kind == "after")
        during = frozenset(1 + p * totals[1] // 1000 for kind, p in chosen if kind == "during")
        plan = CrashPlan(
            after_checkpoints=after if totals[0] else frozenset(),
            during_attempts=during if totals[1] else frozenset(),
        )
        run = _run(workflow, input, plan, policy, functions, totals)
        _check_crash_run(input, baseline, run, _plan_words(plan), compare)

    if settings is None:  # the active profile, without a deadline (a check runs many times)
        from hypothesis import settings as hypothesis_settings

        settings = hypothesis_settings(deadline=None)
    settings(replay_is_safe)()
