"""Group commit: the step results of many executions in one transaction, one fsync.

A worker pool (``DurableEngine.work(concurrency=N)``) advances N executions on N
threads, each with a store of its own (its own lease owner). Without this, each
step result is its own durable commit: N threads wait in line for N fsyncs. With
it, the stores of one pool share a :class:`GroupCommit`: a thread that has a step
result to write hands it over and waits; whichever waiting thread finds no write
in progress becomes the leader, takes every result queued so far, and writes them
in one ``BEGIN IMMEDIATE ... COMMIT`` on the group's own connection, then wakes
them all. Results that arrive while that commit's fsync runs form the next batch.

Nothing waits on purpose (no timer, no batch size to reach): a lone execution is
written at once, as a single autocommit statement exactly as without a group, so
its latency does not change. Durability does not change either: ``synchronous``
stays what the store uses (FULL by default), and no thread returns -- so no step
result is acted on -- before the commit that holds it is durable.

Fencing is kept per execution: every result is the store's fenced INSERT (it
writes only while its store holds the execution's lease and the execution is
RUNNING), evaluated inside the shared transaction; a result whose fence does not
hold is not written and its thread is told so (it takes the slow path, which
raises ``LeaseLostError``). An error of one statement fails that result only; an
error of the transaction (a full disk, an I/O error) fails every result of the
batch, and none of them is written.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any


class _Write:
    __slots__ = ("error", "lead", "params", "woken", "written")

    def __init__(self, params: tuple[Any, ...]) -> None:
        self.params = params
        self.written = False
        self.error: BaseException | None = None
        self.lead = False  # set when leadership is handed to this write's thread
        self.woken = threading.Event()


class GroupCommit:
    """Fenced journal appends from many threads, written in shared transactions."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], statement: str) -> None:
        self._connect = connect
        self._statement = statement
        self._conn: sqlite3.Connection | None = None
        self._mutex = threading.Lock()
        self._queue: list[_Write] = []
        self._leading = False
        #: Held by every write transaction of the group's stores and by the leader's
        #: batch: the pool's threads queue for SQLite's write lock here, in order,
        #: instead of in SQLite's busy handler, which sleeps 1 to 100 ms between
        #: tries and so leaves the database idle while threads wait.
        self.write_lock = threading.Lock()
        #: durable commits made, and results written by them (benchmarks read these)
        self.commits = 0
        self.writes = 0

    def append(self, params: tuple[Any, ...]) -> bool:
        """Write one fenced append; True once durable, False when its fence did not hold."""
        write = _Write(params)
        with self._mutex:
            self._queue.append(write)
            lead = not self._leading
            self._leading = True
        if not lead:
            write.woken.wait()  # written by a leader, or made the next leader
            lead = write.lead
        while lead:
            with self._mutex:
                batch, self._queue = self._queue, []
            try:
                self._write(batch)
            finally:
                # wake exactly the writers of this batch, and hand leadership to the
                # first writer that queued meanwhile (no herd of woken threads)
                with self._mutex:
                    following = self._queue[0] if self._queue else None
                    self._leading = following is not None
                for w in batch:
                    if w is not write:
                        w.woken.set()
                if following is not None:
                    following.lead = True
                    following.woken.set()
            lead = False
        if write.error is not None:
            raise write.error
        return write.written

    def _write(self, batch: list[_Write]) -> None:
        with self.write_lock:
            self._write_locked(batch)

    def _write_locked(self, batch: list[_Write]) -> None:
        try:
            conn = self._connection()
            if len(batch) == 1:  # alone: one autocommit statement, as without a group
                batch[0].written = conn.execute(self._statement, batch[0].params).rowcount == 1
                self.commits += 1
                self.writes += batch[0].written
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                for w in batch:
                    try:
                        w.written = conn.execute(self._statement, w.params).rowcount == 1
                    except sqlite3.IntegrityError as e:  # this statement only was undone
                        w.error = e
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self.commits += 1
            self.writes += sum(w.written for w in batch)
        except BaseException as e:
            for w in batch:
                w.written = False
                w.error = w.error or e

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        with self.write_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
