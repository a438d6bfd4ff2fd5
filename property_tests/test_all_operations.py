"""Crash anywhere, for workflows mixing every operation kind: same result, same final log.

``check_replay`` runs each generated program uninterrupted, then with the process
dying at a few random points -- after checkpoints, or while step attempts run
(inside Parallel/Map branches and combinators too) -- and resumes it from the log:
same result, same final log, no recorded success re-run, and the body interpreted
twice against every prefix of the log asks for the same commands.
"""

from hypothesis import given
from hypothesis import strategies as st

from durable_gen.testing import CrashPlan, WorkflowRunner, check_replay

from .programs import PROGRAM_FUNCTIONS, build_workflow, chooser, programs


def points(data, total, label, max_size):
    """Up to ``max_size`` of the points 1..total, drawn as permilles of the run.

    The draw does not depend on ``total``: with concurrent branches the number of
    checkpoints varies from run to run (the order of updates is fixed, how the
    engine groups them into checkpoints is not), and hypothesis needs the same
    choices to draw the same data.
    """
    permilles = data.draw(st.frozensets(st.integers(0, 999), max_size=max_size), label=label)
    return frozenset(1 + p * total // 1000 for p in permilles) if total else frozenset()


@given(program=programs(), data=st.data())
def test_crash_anywhere_equals_uninterrupted(program, data):
    workflow = build_workflow(program)
    seed = data.draw(st.integers(0, 2**32), label="callback seed")
    # Complete a random subset of the pending callbacks each time the execution
    # waits on them; the choice hangs on logical points crashes do not move.
    report = check_replay(
        workflow, functions=PROGRAM_FUNCTIONS, callbacks=chooser(seed), crash_plans=()
    )
    assert report.result.status == "SUCCEEDED", report.result.error
    plans = [
        CrashPlan(
            after_checkpoints=points(data, report.checkpoints, "crash after checkpoint", 3),
            during_attempts=points(data, report.attempts, "crash during attempt", 2),
        )
        for _ in range(data.draw(st.integers(1, 2), label="crashed runs"))
    ]
    check_replay(
        workflow,
        functions=PROGRAM_FUNCTIONS,
        callbacks=chooser(seed),
        crash_plans=plans,
        determinism=False,
    )


@given(program=programs(max_leaves=4, max_ops=3, invokes=False), seed=st.integers(0, 2**32))
def test_small_programs_survive_a_crash_at_every_point(program, seed):
    # every checkpoint and every step attempt of the uninterrupted run, one at a time
    report = check_replay(
        build_workflow(program), functions=PROGRAM_FUNCTIONS, callbacks=chooser(seed)
    )
    assert report.crash_runs == report.checkpoints + report.attempts


@given(program=programs(batches=False), data=st.data())
def test_crash_anywhere_with_invokes_in_sequential_code(program, data):
    report = check_replay(build_workflow(program), functions=PROGRAM_FUNCTIONS, crash_plans=())
    crashes = points(data, report.checkpoints, "crash after checkpoint", 3) or {1}
    check_replay(
        build_workflow(program),
        functions=PROGRAM_FUNCTIONS,
        crash_plans=[CrashPlan(after_checkpoints=crashes)],
        determinism=False,
    )


def test_a_crash_inside_an_invoked_execution_does_not_change_which_branch_wins():
    program = [("map", 2, [("step", 2), ("invoke", 0)], "first", None)]
    check_replay(
        build_workflow(program),
        functions=PROGRAM_FUNCTIONS,
        crash_plans=[CrashPlan.after(17)],
        determinism=False,
    )


def test_an_operand_a_race_decided_without_never_runs_again():
    program = [
        (
            "parallel",
            [[("race", [("step", 2), ("step", 0)])], [("step", 2)]],
            "all_completed",
            None,
        )
    ]
    runner = WorkflowRunner(functions=PROGRAM_FUNCTIONS)
    assert runner.run(build_workflow(program)).status == "SUCCEEDED"
    # the race settled with operand 1 at once; operand 0 had failed its first attempt
    assert runner.operation("r.0.b0.0.1").status.value == "SUCCEEDED"
    assert [c.attempt for c in runner.step_calls if c.name == "r.0.b0.0.0"] == [1]


def test_a_crash_inside_the_parent_invocation_resumes_the_parent_before_invokes():
    # the counterpart of the test above: the crash is in the parent's invocation
    # (branch 0's first step attempt), so the parent goes on before the invoked
    # execution runs, as it did uninterrupted -- branch 0 still wins
    program = [("parallel", [[("step", 0), ("step", 0)], [("invoke", 0)]], "first", None)]
    check_replay(
        build_workflow(program),
        functions=PROGRAM_FUNCTIONS,
        crash_plans=[CrashPlan(during_attempts=frozenset({1}))],
        determinism=False,
    )
