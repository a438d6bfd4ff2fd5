"""Which store a database name means: a PostgreSQL URL, else a SQLite file path."""

from __future__ import annotations

import os
from typing import Any

from .._core.contract import DurableStore
from .._core.errors import StoreError
from .sqlite import SqliteStore
from .urls import is_postgres_url

__all__ = ["is_postgres_url", "open_store"]


def open_store(
    db: str | os.PathLike[str] | None = None, *, create: bool = True, **kw: Any
) -> DurableStore:
    """The durable store ``db`` names: a :class:`~durable_gen.PostgresStore` for a
    ``postgresql://`` (or ``postgres://``) URL, else a :class:`~durable_gen.SqliteStore`
    on that path. None: ``$DURABLE_GEN_DB`` (a URL or a path), else the default SQLite
    file. ``create``: make the database's tables (and a missing SQLite file) when
    missing; other keyword arguments go to the store's constructor."""
    if db is None:
        db = os.environ.get("DURABLE_GEN_DB") or None
    if is_postgres_url(db):
        try:
            from .postgres import PostgresStore
        except ImportError as e:  # psycopg is an optional dependency
            raise StoreError(
                f"a PostgreSQL database needs psycopg 3 ({e}): pip install 'durable-gen[postgres]'"
            ) from None
        return PostgresStore(str(db), create=create, **kw)
    return SqliteStore(db, create=create, **kw)
