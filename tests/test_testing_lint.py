"""The determinism linter: what it flags in a workflow body, where, and what it advises."""

import textwrap
from pathlib import Path

import pytest

import examples.nondeterministic_promo as promo
from durable_gen.testing import Finding, lint_file, lint_source, lint_workflow

ROOT = Path(__file__).resolve().parent.parent


def test_the_nondeterministic_example_is_flagged_with_line_and_advice():
    findings = lint_workflow(promo.promo_flow)
    assert [str(f) for f in findings] == [
        f"{promo.__file__}:32:7: DG101 time.time() reads the wall clock in the workflow body, "
        "so a replay can take another path; wrap it in a Step: yield Step(time.time)"
    ]
    assert findings[0] == Finding(
        line=32,
        col=7,
        code="DG101",
        message="time.time() reads the wall clock in the workflow body, so a replay can take "
        "another path; wrap it in a Step: yield Step(time.time)",
        function="promo_flow",
        path=promo.__file__,
    )
    assert lint_workflow(promo.promo_flow_fixed) == []


def test_lint_file_takes_every_generator_function_as_a_body():
    findings = lint_file(ROOT / "examples" / "nondeterministic_promo.py")
    assert [(f.line, f.code, f.function) for f in findings] == [(32, "DG101", "promo_flow")]


def lint(src):
    findings = lint_source(textwrap.dedent(src))
    return [(f.line, f.code, f.message.split(" in the workflow body")[0]) for f in findings]


def test_each_kind_of_call_and_how_it_was_imported():
    src = """
        import datetime as dt
        import os, random, uuid, subprocess
        from time import monotonic as clock
        from datetime import datetime
        import requests
        from durable_gen import Step

        def flow(event):
            a = dt.datetime.now()
            b = clock()
            c = datetime.utcnow()
            d = random.choice([1, 2])
            e = uuid.uuid4()
            f = os.environ["HOME"]
            g = os.getenv("HOME")
            h = open("x.txt")
            i = requests.get("https://example.com")
            subprocess.run(["ls"])
            import time
            time.sleep(1)
            yield Step(time.time)
        """
    assert lint(src) == [
        (10, "DG101", "dt.datetime.now() reads the wall clock"),
        (11, "DG101", "clock() reads the wall clock"),
        (12, "DG101", "datetime.utcnow() reads the wall clock"),
        (13, "DG102", "random.choice() draws random numbers"),
        (14, "DG103", "uuid.uuid4() makes a random uuid"),
        (15, "DG104", "os.environ reads the environment"),
        (16, "DG104", "os.getenv() reads the environment"),
        (17, "DG105", "open() does I/O"),
        (18, "DG105", "requests.get() does I/O"),
        (19, "DG105", "subprocess.run() does I/O"),
        (21, "DG106", "time.sleep() sleeps"),
    ]


def test_the_advice_names_the_durable_alternative():
    src = """
        import os, time, requests
        def flow(event):
            os.getenv("X")
            requests.post("u")
            time.sleep(3)
            yield None
        """
    messages = [f.message for f in lint_source(textwrap.dedent(src))]
    assert messages == [
        "os.getenv() reads the environment in the workflow body, so a replay can take another "
        "path; read it in a Step (yield Step(os.getenv, 'NAME')) or pass it in the workflow's "
        "input",
        "requests.post() does I/O in the workflow body, so a replay can take another path; do "
        "I/O in a Step: yield Step(fn, ...) where fn calls requests.post",
        "time.sleep() sleeps in the workflow body, so a replay can take another path; use "
        "yield Wait(seconds=...) instead",
    ]


def test_what_runs_in_steps_and_plain_helpers_is_not_flagged():
    src = """
        import random, time
        from durable_gen import Step, WaitForCondition, WaitForCallback

        def helper():
            return time.time()          # not a generator: not a workflow body

        def flow(event):
            yield Step(time.time)                       # passed, not called
            yield Step(lambda: random.random())         # a lambda runs as the step
            def poll(state):
                return time.monotonic()                 # a plain nested def: a step function
            yield WaitForCondition(poll, 0, None)
            rng = random.Random(42)                     # seeded: deterministic
            return rng.random()
        """
    assert lint(src) == []


def test_nested_generator_functions_are_bodies_too():
    src = """
        import random
        from durable_gen import ChildContext

        def flow(event):
            def branch():
                if random.random() < 0.5:
                    yield None
            yield ChildContext(branch)
        """
    assert lint(src) == [(7, "DG102", "random.random() draws random numbers")]


def test_a_parameter_shadowing_a_module_is_not_taken_for_it():
    src = """
        import random
        def flow(random):
            yield random.choice([1])
        """
    assert lint(src) == []


def test_lint_workflow_wants_a_function():
    with pytest.raises(TypeError, match=r"^lint_workflow takes a workflow function, got 3$"):
        lint_workflow(3)
