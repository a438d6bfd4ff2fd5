"""What a database name is: a PostgreSQL URL, or else a SQLite file path."""

from __future__ import annotations


def is_postgres_url(db: object) -> bool:
    """Whether ``db`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(db, str) and db.lower().startswith(("postgresql://", "postgres://"))
