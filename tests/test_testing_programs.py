"""The program strategies generate every operation kind, and built programs run."""

from hypothesis import given, settings

from durable_gen import InMemoryEngine
from durable_gen.testing import PROGRAM_FUNCTIONS, build_workflow, programs


def kinds(program):
    for op in program:
        yield op[0]
        if op[0] in ("child", "vchild"):
            yield from kinds(op[1])
        elif op[0] == "parallel":
            for branch in op[1]:
                yield from kinds(branch)
        elif op[0] == "map":
            yield from kinds(op[2])
        elif op[0] in ("all", "allsettled", "any", "race"):
            yield from kinds(op[1])


ALL_KINDS = {
    "step", "wait", "wfc", "callback", "wfcb", "invoke", "child", "vchild",
    "all", "allsettled", "any", "race", "parallel", "map",
}  # fmt: skip


def seen_in(strategy, n=300):
    """Every op kind in ``n`` generated programs, and whether a batch held a batch."""
    seen: set[str] = set()

    @settings(max_examples=n, database=None, derandomize=True, deadline=None)
    @given(program=strategy)
    def collect(program):
        seen.update(kinds(program))
        for op in program:
            if op[0] == "parallel" and any({"map", "parallel"} & set(kinds(b)) for b in op[1]):
                seen.add("nested batch")
            if op[0] == "map" and {"map", "parallel"} & set(kinds(op[2])):
                seen.add("nested batch")

    collect()
    return seen


def test_every_kind_is_generated_and_batches_nest():
    assert seen_in(programs()) == ALL_KINDS | {"nested batch"}


def test_the_options_leave_kinds_out():
    seen = seen_in(programs(callbacks=False, batches=False, invokes=False), n=100)
    assert seen == ALL_KINDS - {"callback", "wfcb", "invoke", "parallel", "map"}


def test_a_built_program_runs_with_results_from_its_labels():
    program = [("step", 1), ("child", [("wait", 3), ("invoke", 5)], False), ("any", [])]
    engine = InMemoryEngine(functions=PROGRAM_FUNCTIONS)
    result = engine.run(build_workflow(program))
    assert result.result == ["r.0:ok", ["waited", "R.1.1:5"], "failed:CombinatorError"]


def test_fatal_steps_are_generated_on_request_and_fail_the_execution():
    assert "fatal" in seen_in(programs(fatal=True), n=100)
    assert "fatal" not in seen_in(programs(failures=True), n=100)
    result = InMemoryEngine().run(build_workflow([("step", 0), ("fatal",), ("step", 0)]))
    assert (result.status, result.error.message) == ("FAILED", "r.1 cannot go on")
