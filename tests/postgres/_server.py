"""A throw-away PostgreSQL cluster for the tests, started from the installed server binaries.

:func:`server` starts one cluster per test process, on first use (``initdb`` into a
temporary folder, ``pg_ctl start`` on a unix socket in that folder and a free port,
``fsync=on``, ``synchronous_commit=on``, ``full_page_writes=on``: the durability
settings durable_gen promises on), and stops it when the process exits (the
session fixture in ``tests/postgres/conftest.py`` stops it at the end of the
session). :func:`fresh_database` makes an empty database on it for one test.

``DURABLE_GEN_PG_URL`` points the tests at an existing server instead (a URL of a
role that may ``CREATE DATABASE``); nothing is started then.

Where are the binaries: ``$DURABLE_GEN_PG_BIN``, else ``pg_config --bindir``, else
the newest ``/usr/lib/postgresql/*/bin`` (Debian's layout), else ``initdb`` on the
PATH. None found: :func:`server` raises :class:`Unavailable`, which the fixtures
turn into a skip naming the reason -- or a failure when
``DURABLE_GEN_REQUIRE_POSTGRES=1`` (CI sets it: there, no server is a broken build,
never a silent skip).

Running as root: ``initdb`` and ``postgres`` refuse to run as root. The cluster is
then run as an unprivileged user -- ``$DURABLE_GEN_PG_USER``, else ``nobody`` (made
with ``useradd`` if the system has none) -- through ``runuser -u USER --``, and the
temporary folder (data directory, socket, log) is given to that user. The tests
themselves connect as the cluster's superuser ``postgres`` over the unix socket with
``trust`` authentication: a cluster nothing else can reach, gone when the tests end.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

ENV_URL = "DURABLE_GEN_PG_URL"
ENV_REQUIRE = "DURABLE_GEN_REQUIRE_POSTGRES"


class Unavailable(Exception):
    """No PostgreSQL server can be had here (the message says why)."""


def required() -> bool:
    return os.environ.get(ENV_REQUIRE, "") not in ("", "0")


def find_bindir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``."""
    env = os.environ.get("DURABLE_GEN_PG_BIN")
    candidates: list[Path] = [Path(env)] if env else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    candidates += [Path(p) for p in reversed(debian)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise Unavailable(
        "no PostgreSQL server binaries found (initdb, pg_ctl, postgres: looked in "
        "$DURABLE_GEN_PG_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin and the PATH); "
        "install PostgreSQL (Debian: apt-get install postgresql) or set "
        f"{ENV_URL} to a server's URL"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The user the server runs as (None: this one), made if missing."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("DURABLE_GEN_PG_USER", "nobody")
    try:
        pwd.getpwnam(user)
    except KeyError:
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", user],
                capture_output=True,
                check=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise Unavailable(
                f"running as root, and the unprivileged user {user!r} to run PostgreSQL "
                f"as is missing and could not be made ({e}); set DURABLE_GEN_PG_USER to "
                "an existing user"
            ) from None
    if shutil.which("runuser") is None:
        raise Unavailable("running as root without runuser: cannot start PostgreSQL as a user")
    return user


class Cluster:
    """One PostgreSQL cluster in a temporary folder."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="durable-gen-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.log = self.dir / "server.log"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.dir.chmod(0o755)  # the tests (root) reach the socket inside it
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            # only skips initdb's final flush of the new files; the server runs fsync=on
            "--no-sync",
        )
        self.start()
        self.url = f"postgresql://postgres@/postgres?host={self.dir}&port={self.port}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        try:
            subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.CalledProcessError as e:
            log = self.log.read_text() if self.log.exists() else ""
            raise Unavailable(
                f"{tool} failed ({e.returncode}): {e.stderr.strip() or e.stdout.strip()}\n{log}"
            ) from None

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.dir}",
                "-c listen_addresses=''",
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c full_page_writes=on",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, no shutdown checkpoint) and
        start it again on the same socket."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Unavailable):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


_CLUSTER: Cluster | None = None
_FAILED: str | None = None


def server() -> str:
    """The admin URL of the test server: ``$DURABLE_GEN_PG_URL``, or a cluster started
    here once per process. :class:`Unavailable` when there can be none."""
    global _CLUSTER, _FAILED
    url = os.environ.get(ENV_URL)
    if url:
        return url
    if _FAILED is not None:
        raise Unavailable(_FAILED)
    if _CLUSTER is None:
        try:
            _CLUSTER = Cluster()
        except Unavailable as e:
            _FAILED = str(e)
            raise
        atexit.register(shutdown)
    return _CLUSTER.url


def cluster() -> Cluster | None:
    """The cluster started here (None: an existing server is used, or none yet)."""
    return _CLUSTER


def shutdown() -> None:
    global _CLUSTER
    if _CLUSTER is not None:
        _CLUSTER.destroy()
        _CLUSTER = None


def with_database(url: str, dbname: str) -> str:
    """``url`` (a ``postgresql://`` URL) with its database replaced by ``dbname``."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def fresh_database(prefix: str = "t") -> str:
    """A new empty database on the test server; its URL (conninfo)."""
    import psycopg

    admin = server()
    name = f"dg_{prefix}_{secrets.token_hex(6)}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # e.g. a test restarted the server a moment ago
    return with_database(admin, name)


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (one :func:`fresh_database` made), ending its
    sessions; errors are ignored (the cluster goes at the end anyway)."""
    import psycopg

    name = urllib.parse.urlsplit(url).path.lstrip("/")
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(server(), autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
