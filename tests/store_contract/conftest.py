"""The stores the contract suite runs against: every store passes the same tests.

A store is offered by a :class:`Kind`: how to open a handle on fresh data, and
how to open another handle on the *same* data (another process's view, for a
store that processes share). The durable store contract's tests run on kinds with
``durable=True``; the resume loop's (``EngineStore``) on every kind. A new store
(PostgreSQL) is a new ``Kind`` here, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from durable_gen import MemoryStore, SqliteStore


@attrs.define
class Kind:
    name: str
    #: shared by processes: leases, fencing, due work (``DurableStore``)
    durable: bool
    #: another handle on the same data (``lease_seconds`` where leases exist)
    open: Callable[..., Any]
    opened: list[Any] = attrs.field(factory=list)

    def view(self, **kw: Any) -> Any:
        store = self.open(**kw)
        self.opened.append(store)
        return store


def _memory(tmp_path: Any) -> Kind:
    shared = MemoryStore()
    return Kind("memory", durable=False, open=lambda **kw: shared)


def _sqlite(tmp_path: Any) -> Kind:
    path = tmp_path / "contract.db"
    return Kind("sqlite", durable=True, open=lambda **kw: SqliteStore(path, **kw))


def _postgres(tmp_path: Any) -> Kind:
    # a fresh database on the test server (tests/postgres/_server.py: a throw-away
    # cluster, or $DURABLE_GEN_PG_URL); none to be had: skipped, or failed in CI
    from tests.postgres import _server

    try:
        from durable_gen._stores.postgres import PostgresStore

        url = _server.fresh_database("contract")
    except (ImportError, _server.Unavailable) as e:  # no psycopg, or no server
        if _server.required():
            pytest.fail(f"PostgreSQL is required (DURABLE_GEN_REQUIRE_POSTGRES=1): {e}")
        pytest.skip(f"no PostgreSQL server: {e}")
    return Kind("postgres", durable=True, open=lambda **kw: PostgresStore(url, **kw))


KINDS = {"memory": _memory, "sqlite": _sqlite, "postgres": _postgres}
DURABLE = [name for name in KINDS if name != "memory"]


def _close(kind: Kind) -> None:
    for store in reversed(kind.opened):
        close = getattr(store, "close", None)
        if close is not None:
            close()


@pytest.fixture(params=list(KINDS))
def kind(request, tmp_path) -> Iterator[Kind]:
    """Every store."""
    k = KINDS[request.param](tmp_path)
    yield k
    _close(k)


@pytest.fixture(params=DURABLE)
def durable(request, tmp_path) -> Iterator[Kind]:
    """Every store that processes share (the durable store contract)."""
    k = KINDS[request.param](tmp_path)
    yield k
    _close(k)
