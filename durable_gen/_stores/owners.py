"""Who holds a lease, and whether that holder is still alive.

A worker that advances an execution holds its lease as an *owner*: a string
``host:pid:start-token:random`` made once per store. When a lease's owner is a
process of this machine that has died, another worker may take the lease over at
once instead of waiting for it to expire (30 s by default). Judging a live owner
dead would let two workers advance one execution together, so every answer here
errs towards "alive": only proof of death counts.

The proof is an OS lock that the owner holds for as long as it lives. Before its
first lease, an owner creates the file ``<database>-owners/<owner>`` and holds an
exclusive ``flock`` on it; the kernel drops that lock the moment the process
dies, however it dies (SIGKILL included), and never while it lives. Another
process that can take a shared ``flock`` on the file knows the owner is dead; one
that cannot knows it is alive. The file is created under a temporary name and
renamed into place once locked, so nobody ever sees an owner's file unlocked
while that owner lives. ``flock`` locks belong to the open file, not to the
process, so closing some other descriptor (the hazard of POSIX ``fcntl`` locks
that SQLite's own files suffer from) cannot drop them; and the lock files are not
the database file, which only SQLite ever opens.

Where there is no lock file (an owner that could not create one: a read-only
folder, a platform without ``flock``), ``/proc`` is consulted when it is mounted
(a pid that is gone, a zombie, or a pid reused by a later process), and nothing
else: without ``/proc`` (macOS, some containers) such an owner is presumed alive
and its lease is taken over only when it expires. Owners on another host are
always presumed alive.

Lock files of dead owners that hold no lease any more are removed by the next
owner that registers (:meth:`OwnerLocks.sweep`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from .._core.contract import (
    describe_owner,
    parse_owner,
)

if sys.platform != "win32":
    import fcntl

__all__ = [
    "HOST",
    "OwnerLocks",
    "describe_owner",
    "new_owner",
    "owner_is_dead",
    "parse_owner",
]

#: Where the kernel's process table is read; tests point it at a missing folder.
PROC = Path("/proc")


def process_start_token(pid: int) -> str | None:
    """The boot id and start time of ``pid`` (from /proc), or None where unknown."""
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    return f"{BOOT_ID}.{fields[19].decode()}"


def _read_boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


BOOT_ID = _read_boot_id()
HOST = socket.gethostname()
#: Owners of this process whose stores are open: the liveness of our own pid.
LIVE_OWNERS: set[str] = set()


def new_owner() -> str:
    """A new owner of this process: ``host:pid:start-token:random``."""
    pid = os.getpid()
    token = process_start_token(pid) or "-"
    return f"{HOST}:{pid}:{token}:{secrets.token_hex(4)}"


class OwnerLocks:
    """The lock files of one database's owners, in ``<database>-owners/``."""

    def __init__(self, db_path: Path) -> None:
        self.dir = Path(f"{db_path}-owners")
        self._held: dict[str, int] = {}  # owner -> descriptor of its locked file

    def _file(self, owner: str) -> Path:
        return self.dir / urllib.parse.quote(owner, safe="")

    def hold(self, owner: str) -> bool:
        """Create and lock ``owner``'s file for as long as this process lives.

        False when that cannot be done here (no ``flock``, a read-only folder): the
        owner's liveness is then judged without it.
        """
        if owner in self._held:
            return True
        if sys.platform == "win32":  # no flock: liveness by lease expiry
            return False
        tmp = self.dir / f".new-{secrets.token_hex(8)}"
        try:
            self.dir.mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, self._file(owner))
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        self._held[owner] = fd
        return True

    def release(self, owner: str) -> None:
        """Remove ``owner``'s file and drop its lock (the owner's store is closing)."""
        fd = self._held.pop(owner, None)
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self._file(owner).unlink()
        os.close(fd)

    def probe(self, owner: str) -> bool | None:
        """True: ``owner`` is dead (its lock is free); False: alive; None: no file to tell."""
        if sys.platform == "win32":
            return None
        try:
            fd = os.open(self._file(owner), os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner holds the lock: alive
        except OSError:
            return None
        finally:
            os.close(fd)  # also drops the shared lock, if it was taken
        return True

    def sweep(self, holds_leases: Callable[[str], bool]) -> None:
        """Remove the files of dead owners that no longer hold any lease."""
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if name.startswith("."):
                continue
            owner = urllib.parse.unquote(name)
            if owner in self._held or self.probe(owner) is not True:
                continue
            if not holds_leases(owner):
                with contextlib.suppress(OSError):
                    (self.dir / name).unlink()


def owner_is_dead(owner: str, locks: OwnerLocks | None = None) -> bool:
    """True only when ``owner`` is proven to be a process of this machine that is gone."""
    parsed = parse_owner(owner)
    if parsed is None:
        return False
    host, pid, token = parsed
    if host != HOST:
        return False  # cannot tell: wait for the lease to expire
    if pid == os.getpid() and token == (process_start_token(pid) or "-"):
        return owner not in LIVE_OWNERS
    if locks is not None:
        dead = locks.probe(owner)
        if dead is not None:
            return dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # no process has that pid
    except PermissionError:
        pass  # exists, owned by someone else
    if not (PROC / "self").exists():
        return False  # no /proc: a process with that pid lives; presume it is the owner
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
    except FileNotFoundError:
        return True  # exited since kill() looked
    except OSError:
        return False
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields and fields[0] in (b"Z", b"X"):
        return True  # a zombie: dead, not yet reaped
    return token != "-" and token != process_start_token(pid)
