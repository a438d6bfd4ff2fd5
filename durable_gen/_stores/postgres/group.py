"""Group commit on PostgreSQL: the step results of many executions in one transaction.

The design is SQLite's (``_stores.sqlite.group``): the stores of one worker pool
(:meth:`PostgresStore.clone`) share a :class:`GroupCommit`. A thread with a step
result to write queues it and waits; whichever waiting thread finds no write in
progress leads: it takes every result queued so far and writes them on the
group's own connection in one transaction -- the statements sent together in
pipeline mode, so a batch costs one round trip and one WAL flush
(``synchronous_commit`` stays ``on``: no thread returns before the commit holding
its result is durable) -- then wakes them. Results that arrive while that commit
flushes form the next batch. Nothing waits on purpose: a lone result is one
autocommit statement, as without a group.

Each result is its store's fenced statement (``journal.FAST_APPEND``: it writes
only while that store holds the execution's lease and nobody else wrote), run
inside the shared transaction; one whose fence does not hold writes nothing and
its thread is told so (it takes the slow path, which says why). A batch whose
transaction fails on a statement is retried one result per transaction, so one
bad result never fails the others; a batch whose connection fails (perhaps while
committing: whether it was recorded is then unknown) fails as a whole, never
written twice, and the connection is replaced at the next batch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from .schema import lost_connection


class _Write:
    __slots__ = ("error", "lead", "params", "seq", "woken")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.seq: int | None = None  # the journal row's number once written
        self.error: BaseException | None = None
        self.lead = False  # set when leadership is handed to this write's thread
        self.woken = threading.Event()


class GroupCommit:
    """Fenced journal appends from many threads, written in shared transactions."""

    def __init__(self, connect: Callable[[], Any], statement: str) -> None:
        self._connect = connect
        self._statement = statement
        self._conn: Any = None
        self._mutex = threading.Lock()
        self._queue: list[_Write] = []
        self._leading = False
        #: durable commits made, and results written by them (benchmarks read these)
        self.commits = 0
        self.writes = 0

    def append(self, params: dict[str, Any]) -> int | None:
        """Write one fenced append; its journal number once durable, None when its
        fence did not hold. A failure raises the store error of its cause."""
        write = _Write(params)
        with self._mutex:
            self._queue.append(write)
            lead = not self._leading
            self._leading = True
        if not lead:
            write.woken.wait()  # written by a leader, or made the next leader
            lead = write.lead
        if lead:
            with self._mutex:
                batch, self._queue = self._queue, []
            try:
                self._write(batch)
            finally:
                # wake the writers of this batch, and hand leadership to the first
                # writer that queued meanwhile (no herd of woken threads)
                with self._mutex:
                    following = self._queue[0] if self._queue else None
                    self._leading = following is not None
                for w in batch:
                    if w is not write:
                        w.woken.set()
                if following is not None:
                    following.lead = True
                    following.woken.set()
        if write.error is not None:
            raise write.error
        return write.seq

    def _write(self, batch: list[_Write]) -> None:
        try:
            conn = self._connection()
            if len(batch) == 1:
                self._one(conn, batch[0])
                return
            with conn.pipeline(), conn.transaction():
                cursors = []
                for w in batch:
                    cur = conn.cursor()
                    cur.execute(self._statement, w.params)
                    cursors.append(cur)
            for w, cur in zip(batch, cursors, strict=True):
                row = cur.fetchone()
                w.seq = None if row is None else int(row[0])
            self.commits += 1
            self.writes += sum(w.seq is not None for w in batch)
        except BaseException as e:
            if not isinstance(e, psycopg.Error) or self._drop_broken(e):
                # the connection failed (perhaps during COMMIT: whether the batch was
                # recorded is unknown, so nothing is written again) or not a database
                # error: the whole batch fails, each writer rereads what was recorded
                for w in batch:
                    w.seq, w.error = None, e
                return
            # a statement failed and the transaction was rolled back: nothing of the
            # batch was written; one at a time, one bad result fails only itself
            for w in batch:
                try:
                    self._one(self._connection(), w)
                except BaseException as e1:
                    self._drop_broken(e1)
                    w.error = e1

    def _one(self, conn: Any, w: _Write) -> None:
        row = conn.execute(self._statement, w.params).fetchone()
        w.seq = None if row is None else int(row[0])
        self.commits += 1
        self.writes += w.seq is not None

    def _drop_broken(self, e: BaseException) -> bool:
        """Forget a connection that ``e`` says is gone (the next batch makes a new
        one): broken, or ended by the server (``pg_terminate_backend``, a restart),
        which psycopg does not mark broken until its next use; whether it was."""
        conn = self._conn
        if conn is not None and lost_connection(conn, e):
            self._conn = None
            with contextlib.suppress(psycopg.Error):
                conn.close()
            return True
        return False

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        with self._mutex:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
