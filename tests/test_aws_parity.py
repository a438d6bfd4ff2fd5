"""Every public name of AWS's Python SDK has its row in docs/aws-parity.md (issue 28).

The test introspects the installed SDK: ``DurableContext``'s methods and their
parameters, the config classes of ``aws_durable_execution_sdk_python.config`` and
their fields, its enums and their members, its exception classes, and the names the
package exports. A name with no row fails the test, naming it: a new AWS release
shows up here, not as a surprise to a user. Each row's durable_gen spelling must
exist, and an equivalent must be used by some test.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import re
from pathlib import Path

import pytest

sdk = pytest.importorskip("aws_durable_execution_sdk_python")  # in the test extra
from aws_durable_execution_sdk_python import config, exceptions  # noqa: E402
from aws_durable_execution_sdk_python.context import DurableContext  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "aws-parity.md"
ROW = re.compile(
    r"^\| `(?P<aws>[^`]+)` \| (?:`(?P<ours>[^`]+)`)? *\| (?P<status>\w+) \| (?P<note>.*)\|$"
)
STATUSES = {"equivalent", "absent", "gap"}


def _rows() -> dict[str, tuple[str | None, str, str]]:
    rows: dict[str, tuple[str | None, str, str]] = {}
    for line in TABLE.read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[m["aws"]] = (m["ours"], m["status"], m["note"].strip())
    return rows


def _sdk_names() -> list[str]:
    names: list[str] = []
    for name, member in inspect.getmembers(DurableContext):
        if name.startswith("_") or not callable(member):
            continue
        names.append(f"DurableContext.{name}")
        params = [p for p in inspect.signature(member).parameters if p != "self"]
        names += [f"DurableContext.{name}.{p}" for p in params]
    for name, cls in inspect.getmembers(config, inspect.isclass):
        if cls.__module__ != config.__name__:
            continue
        if dataclasses.is_dataclass(cls):
            names.append(name)
            names += [f"{name}.{f.name}" for f in dataclasses.fields(cls)]
        elif issubclass(cls, enum.Enum):
            names += [f"{name}.{m.name}" for m in cls]
    for name, cls in inspect.getmembers(exceptions, inspect.isclass):
        if issubclass(cls, BaseException) and cls.__module__ == exceptions.__name__:
            names.append(name)
    names += [n for n in sdk.__all__ if not n.startswith("_") and not hasattr(exceptions, n)]
    return sorted(set(names))


def _resolve(spelling: str) -> object:
    module, _, attr = spelling.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_sdk_name_has_a_row():
    rows = _rows()
    missing = [name for name in _sdk_names() if name not in rows]
    assert missing == [], f"AWS's SDK names with no row in {TABLE.name}: {missing}"


def test_every_row_is_well_formed_and_names_what_exists():
    problems = []
    for aws, (ours, status, note) in _rows().items():
        if status not in STATUSES:
            problems.append(f"{aws}: status {status!r} is not one of {sorted(STATUSES)}")
        elif status == "equivalent" and not ours:
            problems.append(f"{aws}: an equivalent must name durable_gen's spelling")
        elif status == "absent" and not note:
            problems.append(f"{aws}: an absent name needs the reason")
        if ours:
            try:
                _resolve(ours)
            except (ImportError, AttributeError) as e:
                problems.append(f"{aws}: {ours} does not exist ({e})")
    assert problems == []


def test_every_equivalent_is_used_by_a_test():
    texts = "\n".join(
        p.read_text()
        for folder in ("tests", "property_tests", "examples")
        for p in (ROOT / folder).rglob("*.py")
        if p.name != Path(__file__).name
    )
    unused = sorted(
        {
            ours
            for ours, status, _ in _rows().values()
            if status == "equivalent"
            and ours
            and not re.search(
                r"\b" + re.escape(ours.rpartition(":")[2].split(".")[-1]) + r"\b", texts
            )
        }
    )
    assert unused == []
