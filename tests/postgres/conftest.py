"""A real PostgreSQL server for the tests of this folder (see ``_server``).

``postgres_server`` (session): the admin URL of a throw-away cluster started from the
installed binaries -- initdb into a temporary folder, started on a unix socket in
that folder and a free port, with ``fsync=on`` and ``synchronous_commit=on``; run as
the unprivileged user ``nobody`` (made with useradd if missing) through ``runuser``
when the tests run as root, since initdb and postgres refuse root, with the folder
given to that user -- and stopped (its folder removed) at the end of the session.
``$DURABLE_GEN_PG_URL`` uses an existing server instead. No binaries and no URL: the
tests are skipped with the reason, unless ``DURABLE_GEN_REQUIRE_POSTGRES=1`` (CI),
which makes that a failure.

``pg_url``: a fresh, empty database on it for one test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import _server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    try:
        import psycopg  # noqa: F401  (the postgres extra)

        url = _server.server()
    except (ImportError, _server.Unavailable) as e:
        if _server.required():
            pytest.fail(f"PostgreSQL is required here (DURABLE_GEN_REQUIRE_POSTGRES=1): {e}")
        pytest.skip(f"no PostgreSQL server: {e}")
    yield url
    _server.shutdown()


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    return _server.fresh_database()
