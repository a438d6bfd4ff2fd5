"""Import targets for ``durable-gen serve`` (``--function`` / ``--hooks`` values).

``tests.conformance.targets:handler__<suite>__<id>`` is the requirement's
workflow; ``tests.conformance.targets:hooks__<suite>__<id>`` its hooks factory.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from ._requirements import suite_module

    kind, _, rest = name.partition("__")
    suite, _, rid = rest.partition("__")
    module = suite_module(suite) if kind in ("handler", "hooks") and rid else None
    table = getattr(module, "HANDLERS" if kind == "handler" else "HOOKS", {}) if module else {}
    if rid not in table:
        raise AttributeError(name)
    return table[rid]


def handler_target(suite: str, rid: str) -> str:
    return f"{__name__}:handler__{suite}__{rid}"


def hooks_target(suite: str, rid: str) -> str:
    return f"{__name__}:hooks__{suite}__{rid}"
