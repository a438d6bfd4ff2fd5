"""The named mutants of issue 29, applied by hand to a scratch copy of the tree.

mutmut's operators do not write "twice the timeout", so these mutations are spelled
out: each replaces exact text in one module of a copy, then runs the test meant to
kill it against the copy (``PYTHONPATH`` puts the copy first). A mutant is killed
when the test fails on it; the same test must pass on the unmutated copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "durable_gen/_core/service.py"
STEPS = "durable_gen/_core/interpreter/steps.py"
PENDING_DUE = "if status is _PENDING and due is not None and due > self.now:"
FIRE_DUE = "due = op.next_attempt_timestamp\n            if due is not None and due <= now:"
TESTS = "tests/test_mut_named.py::"
RETRY_TEST = TESTS + "test_a_retry_runs_at_its_recorded_delay_and_not_one_ms_before"
CALLBACK_TEST = TESTS + "test_a_callback_times_out_at_its_timeout_and_not_one_ms_before"
AUTO_RETRY_TEST = TESTS + "test_auto_advance_wakes_a_retry_exactly_at_its_delay"
READY_TEST = TESTS + "test_the_store_makes_a_retry_ready_exactly_at_its_due_time"
DEADLINE_TEST = TESTS + "test_the_store_wakes_a_pending_callback_exactly_at_its_timeout"


@attrs.frozen
class Edit:
    path: str
    old: str
    new: str
    count: int = 1  # how many occurrences of ``old`` there are (all are replaced)


@attrs.frozen
class Named:
    name: str
    test: str
    edits: tuple[Edit, ...]


def named(name: str, test: str, path: str, old: str, new: str, count: int = 1) -> Named:
    return Named(name, test, (Edit(path, old, new, count),))


NAMED = [
    named(
        "retry due one interval (1 s) early",
        RETRY_TEST,
        SERVICE,
        'fields["next_attempt_timestamp"] = now + delay * 1000',
        'fields["next_attempt_timestamp"] = now + (delay - 1) * 1000',
    ),
    named(
        "retry delay off by a factor (x0.5)",
        RETRY_TEST,
        SERVICE,
        'fields["next_attempt_timestamp"] = now + delay * 1000',
        'fields["next_attempt_timestamp"] = now + delay * 500',
    ),
    named(
        "retry due-time comparison 1 ms early (due <= now + 1)",
        RETRY_TEST,
        SERVICE,
        "due = op.next_attempt_timestamp\n            if due is not None and due <= now:",
        "due = op.next_attempt_timestamp\n            if due is not None and due <= now + 1:",
    ),
    named(
        "retry due-time comparison flipped in the service alone (due < now: late)",
        READY_TEST,
        SERVICE,
        FIRE_DUE,
        FIRE_DUE.replace("due <= now", "due < now"),
    ),
    named(
        "interpreter runs a PENDING retry 1 ms early (due > now + 1)",
        RETRY_TEST,
        STEPS,
        PENDING_DUE,
        PENDING_DUE.replace("due > self.now", "due > self.now + 1"),
        count=2,
    ),
    Named(
        "retry due-time comparison flipped in the service and the interpreter (late)",
        RETRY_TEST,
        (
            Edit(SERVICE, FIRE_DUE, FIRE_DUE.replace("due <= now", "due < now")),
            Edit(STEPS, PENDING_DUE, PENDING_DUE.replace("due > self.now", "due >= self.now"), 2),
        ),
    ),
    named(
        "next_timer wakes a pending retry 1 ms after its due time",
        AUTO_RETRY_TEST,
        SERVICE,
        "due = op.next_attempt_timestamp\n        elif op.type is _WAIT",
        "due = op.next_attempt_timestamp + 1\n        elif op.type is _WAIT",
    ),
    named(
        "callback times out at twice its timeout (deadline and check)",
        CALLBACK_TEST,
        SERVICE,
        "op.start_timestamp + op.callback_timeout * 1000",
        "op.start_timestamp + op.callback_timeout * 2000",
        count=2,
    ),
    named(
        "callback timeout check at twice its timeout (deadline kept)",
        CALLBACK_TEST,
        SERVICE,
        "op.start_timestamp + op.callback_timeout * 1000 <= now",
        "op.start_timestamp + op.callback_timeout * 2000 <= now",
    ),
    named(
        "callback timer deadline at twice its timeout (check kept)",
        DEADLINE_TEST,
        SERVICE,
        "out.append(op.start_timestamp + op.callback_timeout * 1000)",
        "out.append(op.start_timestamp + op.callback_timeout * 2000)",
    ),
    named(
        "callback timeout comparison flipped (< now: 1 ms late)",
        CALLBACK_TEST,
        SERVICE,
        "op.start_timestamp + op.callback_timeout * 1000 <= now",
        "op.start_timestamp + op.callback_timeout * 1000 < now",
    ),
]


def _copy(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("durable_gen", "tests", "examples"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)


def _pytest(copy: Path, test: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", test],
        check=False,
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
    )


def run_named() -> int:
    """Apply each named mutant to a fresh copy; report killed/survived; 1 if any survived."""
    failures = 0
    with tempfile.TemporaryDirectory(prefix="durable_gen-named-") as tmp:
        base = Path(tmp) / "clean"
        _copy(base)
        where = subprocess.run(
            [sys.executable, "-c", "import durable_gen; print(durable_gen.__file__)"],
            cwd=base,
            env=dict(os.environ, PYTHONPATH=str(base)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not where.startswith(str(base)):
            raise SystemExit(f"the copy is not the code under test: durable_gen from {where}")
        for test in sorted({n.test for n in NAMED}):
            clean = _pytest(base, test)
            verdict = "passes" if clean.returncode == 0 else "FAILS"
            print(f"real code: {verdict}  {test.split('::')[1]}")
            failures += clean.returncode != 0
        for i, mutant in enumerate(NAMED):
            copy = Path(tmp) / f"mutant{i}"
            shutil.copytree(base, copy)
            for edit in mutant.edits:
                target = copy / edit.path
                text = target.read_text()
                found = text.count(edit.old)
                if found != edit.count:
                    raise SystemExit(
                        f"{mutant.name}: expected {edit.count} occurrence(s) of {edit.old!r} "
                        f"in {edit.path}, found {found}; update mutation/named.py"
                    )
                target.write_text(text.replace(edit.old, edit.new))
            proc = _pytest(copy, mutant.test)
            killed = proc.returncode != 0
            failures += not killed
            reason = ""
            if killed:
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("E ")]
                reason = f"  ({lines[0][1:].strip()[:90]})" if lines else ""
            print(f"{'killed  ' if killed else 'SURVIVED'}  {mutant.name}{reason}")
            shutil.rmtree(copy)
    return 1 if failures else 0
