"""The exceptions a workflow catches, as AWS's SDK users know them (docs/aws-parity.md)."""

from __future__ import annotations

import pytest

from durable_gen import (
    DurableGenError,
    InMemoryEngine,
    OperationError,
    RetryPolicy,
    Step,
    StepError,
)
from durable_gen._engine.targets import TargetError
from durable_gen._http.serve import load_hooks


def boom() -> None:
    raise KeyError("sku-9")


def flow(_):
    try:
        yield Step(boom, name="reserve", retry=RetryPolicy.none())
    except OperationError as e:  # AWS: except DurableOperationError
        return [type(e).__name__, isinstance(e, StepError), isinstance(e, DurableGenError)]
    return None


def test_a_failed_operation_is_caught_as_the_operation_error_base():
    assert InMemoryEngine().run(flow).result == ["StepError", True, True]


def test_a_hooks_target_that_cannot_be_loaded_is_a_target_error():  # AWS: PluginLoadError
    with pytest.raises(TargetError, match=r"^cannot load hooks 'no_such_module:hooks': "):
        load_hooks("no_such_module:hooks")
