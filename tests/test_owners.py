"""Lease holders' liveness: lock files held for life, /proc only as a fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from durable_gen import (
    LeaseHeldError,
)
from durable_gen._stores import owners as _owners
from durable_gen._stores.owners import (
    OwnerLocks,
    owner_is_dead,
)
from durable_gen._stores.sqlite import SqliteStore

T0 = 1_767_225_600_000

HOLDER = textwrap.dedent(
    """
    import sys, time
    from durable_gen._stores.sqlite import SqliteStore
    store = SqliteStore(sys.argv[1], lease_seconds=float(sys.argv[2]))
    if not store.exists("ex"):
        store.create("ex", "null", 0)
    store.acquire("ex", 0)
    print(store.owner, flush=True)
    time.sleep(60)
    """
)


def _hold(db: Path, lease_seconds: float) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(lease_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    owner = p.stdout.readline().strip()
    assert owner, "the holder process did not start"
    return p, owner


def _kill(p: subprocess.Popen[str]) -> None:
    p.kill()
    p.communicate()


@pytest.fixture
def no_proc(monkeypatch, tmp_path):
    """The liveness code sees no /proc (as on macOS or in some containers)."""
    monkeypatch.setattr(_owners, "PROC", tmp_path / "no-proc")


def test_a_live_holder_is_alive_by_its_lock_file_and_dead_once_killed(tmp_path, no_proc):
    db = tmp_path / "x.db"
    p, owner = _hold(db, lease_seconds=600)
    try:
        locks = OwnerLocks(db)
        assert (locks.dir / os.listdir(locks.dir)[0]).is_file()
        assert locks.probe(owner) is False
        with SqliteStore(db) as other:
            assert not other.owner_is_dead(owner)
            with pytest.raises(LeaseHeldError):
                other.acquire("ex", T0)
            assert other.due(2**62) == []
    finally:
        _kill(p)
    assert locks.probe(owner) is True
    with SqliteStore(db) as other:
        assert other.owner_is_dead(owner)
        assert other.due(2**62) == ["ex"]
        other.acquire("ex", T0)  # taken over at once, long before the lease expires
        assert other.info("ex").lease_owner == other.owner


def test_without_proc_an_owner_with_no_lock_file_waits_for_expiry(tmp_path, no_proc):
    # A live process with no lock file: never judged dead without /proc.
    parent = os.getppid()
    assert not owner_is_dead(f"{_owners.HOST}:{parent}:-:x")
    assert not owner_is_dead(f"{_owners.HOST}:{parent}:{_owners.BOOT_ID}.1:x")
    # A pid that no process has is dead, /proc or not (kill() says so).
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert owner_is_dead(f"{_owners.HOST}:{gone.pid}:-:x")


def test_a_holder_that_could_not_make_a_lock_file_is_taken_over_after_expiry(tmp_path, no_proc):
    db = tmp_path / "x.db"
    (tmp_path / "x.db-owners").write_text("")  # a file where the folder should be
    p, owner = _hold(db, lease_seconds=1)  # it never renews its lease
    try:
        with SqliteStore(db) as other:
            assert not other.owner_is_dead(owner)  # alive as far as anyone can tell
            with pytest.raises(LeaseHeldError):
                other.acquire("ex", T0)
            expires = other.info("ex").lease_expires
            assert expires is not None
            time.sleep(max(0.0, expires / 1000 - time.time()) + 0.05)
            other.acquire("ex", T0)  # expired: taken over
            assert other.info("ex").lease_owner == other.owner
    finally:
        _kill(p)


def test_lock_files_of_dead_owners_without_leases_are_swept(tmp_path):
    db = tmp_path / "x.db"
    p, owner = _hold(db, lease_seconds=600)
    _kill(p)
    locks = OwnerLocks(db)
    with SqliteStore(db) as a:
        a.acquire("ex", T0)  # takes the dead owner's lease over; sweeps after
        assert locks.probe(owner) is True  # still there: it held a lease when a looked
        a.release("ex", None)
    with SqliteStore(db) as b:
        b.acquire("ex", T0)
        assert locks.probe(owner) is None  # swept: it held no lease any more
        assert locks.probe(b.owner) is False
    assert os.listdir(locks.dir) == []  # b removed its own file on close
