"""Leases: one worker advances an execution at a time; a dead holder's lease is taken over.

See ``_core.contract`` ("Leases", "Fencing") for the promises and ``_stores.owners``
for how a holder is proven dead."""

from __future__ import annotations

import contextlib
from typing import Any

from ..._core import service as _service
from ..._core.contract import (
    LeaseHeldError,
    describe_owner,
)
from ..._core.errors import (
    DurableGenError,
    ErrorObject,
    ExecutionNotFoundError,
)
from ..owners import (
    owner_is_dead,
)
from .queues import _Queues
from .schema import _now_ms


class _Leases(_Queues):
    """Taking, renewing and letting go of executions' leases."""

    def _register(self) -> None:
        """Before the first lease: hold this owner's lock file (proof of life), and
        remove those of dead owners that hold no lease any more."""
        if self._registered:
            return
        self._registered = True
        self._locks.hold(self.owner)
        self._locks.sweep(
            lambda owner: bool(
                self._query("SELECT 1 FROM executions WHERE lease_owner = ? LIMIT 1", (owner,))
            )
        )

    def owner_is_dead(self, owner: str) -> bool:
        """True only when the lease holder ``owner`` is proven dead (see ``_stores.owners``)."""
        return owner_is_dead(owner, self._locks)

    def acquire(self, execution_id: str, now: int) -> None:
        """Take the lease of ``execution_id`` for this store.

        Free, expired, or held by a dead process of this machine: taken (an
        invocation the dead holder was running gets its InvocationCompleted event
        with ``Runtime.ExitError``). Otherwise :class:`LeaseHeldError`.
        """
        real = _now_ms()
        with self._lock:
            self._register()
            with self._tx() as conn:
                row = conn.execute(
                    "SELECT pk, lease_owner, lease_expires, invocation_id, invocation_started, "
                    "version FROM executions WHERE id = ?",
                    (execution_id,),
                ).fetchone()
                if row is None:
                    raise ExecutionNotFoundError(f"no execution with id {execution_id!r}")
                pk, owner, expires, invocation_id, invocation_started, version = row
                if (
                    owner is not None
                    and owner != self.owner
                    and expires > real
                    and not self.owner_is_dead(owner)
                ):
                    raise LeaseHeldError(execution_id, owner, expires)
                # a queued execution: its queue's room, in this transaction (QueueFullError)
                first = self._admit(conn, pk, execution_id, real)
                conn.execute(
                    "UPDATE executions SET lease_owner = ?, lease_expires = ?, "
                    "version = version + 1"
                    + (", first_admitted_at = ?" if first is not None else "")
                    + " WHERE pk = ?",
                    (self.owner, real + self.lease_ms, *(() if first is None else (first,)), pk),
                )
                if invocation_id is not None and owner != self.owner:
                    who = describe_owner(owner) if owner else "a worker"
                    event = _service.invocation_completed_event(
                        execution_id,
                        invocation_started,
                        now,
                        invocation_id,
                        ErrorObject(
                            type="Runtime.ExitError",
                            message=f"the worker running this invocation ({who}) stopped "
                            "before it ended",
                        ),
                    )
                    self._append(conn, pk, [], [event])
                    conn.execute(
                        "UPDATE executions SET invocation_id = NULL, invocation_started = NULL "
                        "WHERE pk = ?",
                        (pk,),
                    )
            self._acquired[execution_id] = version + 1
            c = self._cache.get(execution_id)
            if c is not None and c.version == version and not c.pending_ops:
                c.version = version + 1  # nobody wrote since this store last did
            else:
                self._cache.pop(execution_id, None)  # read what the last holder wrote
            self._held.add(execution_id)

    def release_all(self) -> None:
        """Let go of every lease this store holds, leaving each execution due as it was
        (a shutdown that cannot wait for a running step; its outcome is fenced off)."""
        with self._lock:
            for execution_id in list(self._held):
                with contextlib.suppress(DurableGenError):
                    self.release(execution_id, None, keep_wake=True)

    def release(self, execution_id: str, wake_at: int | None, *, keep_wake: bool = False) -> None:
        """Give the lease up; a RUNNING execution is due again at ``wake_at``.

        ``wake_at`` was computed from what the last invocation saw. If another
        process wrote since that invocation began (a callback completed, an invoked
        execution ended: both make the execution due), the earlier of ``wake_at`` and
        the wake time that process set is kept, so such a wake-up is never lost.
        """
        with self._lock:
            self._held.discard(execution_id)
            acquired = self._acquired.pop(execution_id, None)
            c = self._cache.get(execution_id)
            if c is not None and (c.pending_ops or c.pending_events):
                del self._cache[execution_id]  # never written: as if the process had died
                c, acquired = None, None
            # a pause asked for while this store advanced the execution takes effect now
            sql = (
                "UPDATE executions SET lease_owner = NULL, lease_expires = NULL, "
                "status = CASE WHEN status = 'PAUSING' THEN 'PAUSED' ELSE status END"
            )
            args: tuple[Any, ...] = ()
            if not keep_wake:
                sql += (
                    ", wake_at = CASE WHEN status NOT IN ('RUNNING', 'PAUSING') THEN NULL "
                    "WHEN version = ? THEN ? "
                    "ELSE MIN(COALESCE(?, wake_at), COALESCE(wake_at, ?)) END"
                )
                # no cache: this store has not touched the log since it took the lease
                known = acquired if c is None else None if c.stale or c.foreign else c.version
                args = (known, wake_at, wake_at, wake_at)
            with self._tx() as conn:
                conn.execute(
                    sql + " WHERE id = ? AND lease_owner = ?", (*args, execution_id, self.owner)
                )

    def renew(self, execution_id: str) -> bool:
        """Extend the lease (from any thread); False when it is no longer ours or ended."""
        with self._renew_lock:
            if self._renew_conn is None:
                self._renew_conn = self._connect()
                self._renew_conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            with self._tx(self._renew_conn) as conn:
                cur = conn.execute(
                    "UPDATE executions SET lease_expires = ? "
                    "WHERE id = ? AND lease_owner = ? AND status IN ('RUNNING', 'PAUSING')",
                    (_now_ms() + self.lease_ms, execution_id, self.owner),
                )
                return cur.rowcount == 1
