import gc
import importlib.util
from collections.abc import Iterator

import pytest

import tests._profiles  # noqa: F401  (registers and loads the hypothesis profile)

# AWS's conformance package declares Python >= 3.14, so the `test` extra cannot
# install it (pip needs --ignore-requires-python). The default run does not select
# the conformance tests; without the package it does not collect them either, and
# asking for them without it is an error that says how to install it.
_HAS_CONFORMANCE = importlib.util.find_spec("aws_durable_execution_conformance_tests") is not None
collect_ignore = [] if _HAS_CONFORMANCE else ["conformance"]


def pytest_configure(config):
    markexpr = config.getoption("markexpr", "") or ""
    wanted = "conformance" in markexpr.replace("not conformance", "")
    if wanted and not _HAS_CONFORMANCE:
        raise pytest.UsageError(
            "the conformance tests need AWS's requirements: pip install "
            "--ignore-requires-python aws-durable-execution-conformance-tests"
        )


@pytest.fixture(autouse=True)
def _close_boto3_clients():
    """Close the boto3 clients a test made (see tests/_procs.OPEN_CLIENTS)."""
    yield
    from tests._procs import close_clients

    close_clients()
    gc.collect()  # what the test left open is found now, in its own teardown


# --------------------------------------------------------------------- PostgreSQL
# One throw-away PostgreSQL server for the whole session, for every folder that
# needs one (tests/postgres, tests/conformance's and tests/differential's
# PostgreSQL targets, ...): see tests/postgres/_server.py. No server to be had
# (no binaries, no psycopg, no $DURABLE_GEN_PG_URL): the tests that ask for it are
# skipped with the reason, unless DURABLE_GEN_REQUIRE_POSTGRES=1 (CI), which makes
# that a failure.


def postgres_admin_url() -> str:
    """The test server's admin URL (started on first use); skip or fail without one."""
    from tests.postgres import _server

    try:
        import psycopg  # noqa: F401  (the postgres extra)

        return _server.server()
    except (ImportError, _server.Unavailable) as e:
        if _server.required():
            pytest.fail(f"PostgreSQL is required here (DURABLE_GEN_REQUIRE_POSTGRES=1): {e}")
        pytest.skip(f"no PostgreSQL server: {e}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of the session's throw-away PostgreSQL server (stopped, its folder
    removed, at the end of the session)."""
    from tests.postgres import _server

    yield postgres_admin_url()
    _server.shutdown()


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    """A fresh, empty database on the test server, for one test."""
    from tests.postgres import _server

    return _server.fresh_database()
