"""A real PostgreSQL server for the tests of this folder (see ``_server``).

The fixtures are defined in ``tests/conftest.py``, shared with the other folders
that run on PostgreSQL (the conformance and differential suites' PostgreSQL
targets, the store contract); what they give:

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
