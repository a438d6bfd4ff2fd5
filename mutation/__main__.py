"""``python -m mutation run MODULE...`` and ``python -m mutation changed --base REF``.

Each module is mutated by mutmut 3 in a scratch copy of the tree (``durable_gen/``,
``tests/``, ``setup.cfg``, ``pyproject.toml``), never in the working tree: mutmut
writes its mutants under ``<copy>/mutants/``, and an interrupted run leaves only a
stale scratch directory behind. Every mutant is judged by the fast test files that
exercise its module (``TESTS`` below), and within those only by the tests that
called the mutated function (mutmut records that in a first, clean run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = Path(__file__).resolve().parent / "EQUIVALENT.md"

# The fast test files that exercise each core module (each file runs in a few
# seconds). tests/test_mut_<stem>.py and tests/test_mut_named.py are added when
# they exist.
TESTS: dict[str, list[str]] = {
    "durable_gen/_core/retry.py": [
        "tests/test_retry.py",
        "tests/test_wait_for_condition.py",
    ],
    "durable_gen/_core/batch.py": [
        "tests/test_combinators.py",
        "tests/test_parallel_map.py",
        "tests/test_aws_options.py",
    ],
    "durable_gen/_core/service.py": [
        "tests/test_callbacks.py",
        "tests/test_testing_runner.py",
        "tests/test_engine.py",
        "tests/test_invocation_retry.py",
        "tests/test_timeouts.py",  # time_out_execution, the chained invoke's timeout
    ],
    "durable_gen/_core/serdes.py": [
        "tests/test_serdes.py",
        "tests/test_aws_shapes.py",
    ],
    "durable_gen/_core/log.py": [
        "tests/test_log.py",
        "tests/test_aws_shapes.py",
        "tests/test_aws_options.py",
        "tests/aws/test_api.py",
        "tests/store_contract",
        "tests/test_sqlite_store.py",
    ],
}
# interpreter/steps.py: the files that drive steps, waits and their replay.
TESTS["durable_gen/_core/interpreter/steps.py"] = STEPS_TESTS = [
    "tests/test_interpreter.py",
    "tests/test_retry.py",
    "tests/test_wait_for_condition.py",
    "tests/test_testing_runner.py",
    "tests/test_testing_replay.py",
    "tests/test_nondeterminism.py",
    "tests/test_engine.py",
    "tests/test_aws_options.py",
    "tests/test_invocation_retry.py",
    "tests/test_patches.py",
]
# The interpreter's other modules: every file that drives operations through it.
INTERPRETER_TESTS = [
    *STEPS_TESTS,
    "tests/test_parallel_map.py",
    "tests/test_combinators.py",
    "tests/test_callbacks.py",
    "tests/test_invoke.py",
    "tests/test_error_hierarchy.py",
    "tests/test_names.py",
    "tests/test_stack_traces.py",
    "tests/test_testing_programs.py",
    "tests/test_check.py",
    "tests/test_mut_steps.py",
    "tests/test_mut_batch.py",
    # each module's own mutation tests judge the others too (scenarios cross modules)
    "tests/test_mut_interpreter.py",
    "tests/test_mut_base.py",
    "tests/test_mut_contexts.py",
    "tests/test_mut_callbacks.py",
    "tests/test_mut_invoke.py",
]
for _stem in ("__init__", "base", "contexts", "callbacks", "invoke"):
    TESTS[f"durable_gen/_core/interpreter/{_stem}.py"] = INTERPRETER_TESTS
# Any other core module: these, which between them drive every operation.
DEFAULT_TESTS = [
    "tests/test_interpreter.py",
    "tests/test_retry.py",
    "tests/test_callbacks.py",
    "tests/test_combinators.py",
    "tests/test_testing_runner.py",
    "tests/test_log.py",
    "tests/test_serdes.py",
]
COPIED = ["durable_gen", "tests", "examples", "setup.cfg", "pyproject.toml"]
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    36: "timeout",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    33: "no tests",
    5: "no tests",
}


def tests_for(module: str) -> list[str]:
    path = Path(module)
    stem = path.parent.name if path.stem == "__init__" else path.stem  # interpreter/__init__
    files = [
        *TESTS.get(module, DEFAULT_TESTS),
        f"tests/test_mut_{stem}.py",
        "tests/test_mut_named.py",
    ]
    return [f for f in dict.fromkeys(files) if (ROOT / f).exists()]


def equivalents() -> set[str]:
    """Mutant names listed in EQUIVALENT.md (a line starting ``- `name```)."""
    if not EQUIVALENT.exists():
        return set()
    return set(re.findall(r"^- `([\w.]+__mutmut_\d+)`", EQUIVALENT.read_text(), re.M))


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(module: str, workdir: Path, tests: list[str]) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=ignore)
        else:
            shutil.copy2(src, workdir / name)
    pyproject = workdir / "pyproject.toml"
    text = pyproject.read_text()
    text = re.split(r"^\[tool\.mutmut\]", text, flags=re.M)[0]
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["durable_gen"]\n'
        'also_copy = ["examples"]\n'
        f"only_mutate = {_toml_list([module])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )
    pyproject.write_text(text)
    # mutmut calls every function of the mutated module through a trampoline, two
    # frames per call: code that recurses once per nesting level (serdes) reaches
    # Python's default recursion limit at half the depth it handles unmutated
    conftest = workdir / "tests" / "conftest.py"
    conftest.write_text(
        conftest.read_text() + "\n\nimport sys as _sys\n\n_sys.setrecursionlimit(4000)\n"
    )


def results(module: str, workdir: Path) -> dict[str, str]:
    meta = workdir / "mutants" / (module + ".meta")
    data = json.loads(meta.read_text())
    return {k: STATUS.get(v, f"exit {v}") for k, v in data["exit_code_by_key"].items()}


def run_one(
    module: str, workroot: Path, max_children: int | None, tests: list[str] | None = None
) -> dict[str, str]:
    module = Path(module).as_posix()
    if not (ROOT / module).is_file():
        raise SystemExit(f"no such module: {module} (give a path like durable_gen/_core/retry.py)")
    tests = tests or tests_for(module)
    workdir = workroot / module.replace("/", "_").removesuffix(".py")
    print(f"== {module}: mutating a copy in {workdir}")
    print(f"   tests: {' '.join(tests)}")
    prepare(module, workdir, tests)
    cmd = [str(Path(sys.executable).parent / "mutmut"), "run"]
    if max_children:
        cmd += ["--max-children", str(max_children)]
    start = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(cmd, check=False, cwd=workdir, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"mutmut failed on {module} (exit {proc.returncode})")
    by_name = results(module, workdir)
    report(module, by_name, elapsed, workdir)
    return by_name


def report(module: str, by_name: dict[str, str], elapsed: float, workdir: Path) -> None:
    known = equivalents()
    counts = Counter(by_name.values())
    survivors = sorted(k for k, v in by_name.items() if v not in ("killed", "timeout"))
    equivalent = [k for k in survivors if k in known]
    unexplained = [k for k in survivors if k not in known]
    total = len(by_name)
    killed = counts["killed"] + counts["timeout"]
    judged = total - len(equivalent)
    score = 100.0 * killed / judged if judged else 100.0
    print(
        f"   {module}: {total} mutants, killed {counts['killed']}, timeout {counts['timeout']}, "
        f"survived {counts['survived']}, no tests {counts['no tests']}, "
        f"equivalent (EQUIVALENT.md) {len(equivalent)}"
    )
    print(f"   score {killed}/{judged} = {score:.1f}% (equivalents excluded), {elapsed:.0f} s")
    for name in unexplained:
        print(f"   {by_name[name]:>9}: {name}")
    if unexplained:
        print(f"   see one with: (cd {workdir} && mutmut show NAME)")


def changed_modules(base: str) -> list[str]:
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD", "--", "durable_gen/_core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # working-tree edits count too, so a developer can run this before committing
    out += subprocess.run(
        ["git", "diff", "--name-only", "HEAD", "--", "durable_gen/_core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({p for p in out.split() if p.endswith(".py") and (ROOT / p).is_file()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    scratch = Path(tempfile.gettempdir()) / "durable_gen-mutation"
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("MUTATION_WORKDIR", scratch)),
        help="scratch directory for the copies (default: $TMPDIR/durable_gen-mutation)",
    )
    parser.add_argument("--max-children", type=int, default=None)
    parser.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="exit 1 when a module scores below this percentage",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="mutate the named modules")
    run.add_argument("modules", nargs="+")
    run.add_argument(
        "--tests", nargs="+", default=None, help="judge the mutants by these test files only"
    )
    changed = sub.add_parser("changed", help="mutate the core modules changed since BASE")
    changed.add_argument("--base", default="origin/main")
    changed.add_argument(
        "--list", action="store_true", help="only list the changed modules and their tests"
    )
    sub.add_parser("named", help="apply the named mutants of mutation/named.py to copies")
    args = parser.parse_args(argv)

    if args.command == "named":
        from .named import run_named

        return run_named()

    modules = args.modules if args.command == "run" else changed_modules(args.base)
    if not modules:
        print("no durable_gen/_core module changed")
        return 0
    if getattr(args, "list", False):
        for module in modules:
            print(f"{module}: {' '.join(tests_for(module))}")
        return 0
    failed = False
    for module in modules:
        tests = getattr(args, "tests", None)
        by_name = run_one(module, args.workdir, args.max_children, tests)
        known = equivalents()
        killed = sum(v in ("killed", "timeout") for v in by_name.values())
        judged = len([k for k in by_name if k not in known or by_name[k] in ("killed", "timeout")])
        if args.min_score is not None and judged and 100.0 * killed / judged < args.min_score:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
