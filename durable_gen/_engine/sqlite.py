"""The embedded engine: the durable engine on a SQLite database."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._core.errors import StoreError
from .._core.retry import RetryPolicy
from .._core.serdes import DEFAULT_SERDES
from .._stores.sqlite import SqliteStore
from .clock import Clock
from .durable import DurableEngine
from .hooks import Hooks
from .local import INVOCATION_RETRY

__all__ = ["SqliteEngine", "result_value"]


class SqliteEngine(DurableEngine):
    """The durable engine on a SQLite database (the embedded engine).

    ``SqliteEngine(path)`` opens (or creates) the database (or give ``store=``);
    everything else is :class:`~durable_gen._engine.durable.DurableEngine`'s:
    ``timeout`` (seconds) and ``retention_days`` are the defaults of the executions
    it starts (Lambda's ExecutionTimeout and RetentionPeriodInDays; none: no timeout,
    kept forever), ``function_configs`` those of functions ``Invoke``d by name
    (``{"name": {"DurableConfig": {"ExecutionTimeout": 3600}}}``).
    """

    store: SqliteStore

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: SqliteStore | None = None,
        clock: Clock | None = None,
        check_args: bool = True,
        max_invocations: int = 100_000,
        wait_for_lease: bool = True,
        functions: Mapping[str, Callable[..., Any]] | None = None,
        hooks: Sequence[Hooks] = (),
        invocation_retry: RetryPolicy = INVOCATION_RETRY,
        version: str | None = None,
        timeout: float | None = None,
        retention_days: float | None = None,
        function_configs: Mapping[str, Any] | None = None,
    ) -> None:
        if store is not None and path is not None:
            raise StoreError("pass a path or a store, not both")
        super().__init__(
            store if store is not None else SqliteStore(path),
            clock=clock,
            check_args=check_args,
            max_invocations=max_invocations,
            wait_for_lease=wait_for_lease,
            functions=functions,
            hooks=hooks,
            invocation_retry=invocation_retry,
            version=version,
            timeout=timeout,
            retention_days=retention_days,
            function_configs=function_configs,
        )

    def __enter__(self) -> SqliteEngine:
        return self


def result_value(payload: str | None) -> Any:
    """The value of a stored result payload."""
    return None if payload is None else DEFAULT_SERDES.deserialize(payload)
