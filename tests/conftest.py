import gc
import importlib.util

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
