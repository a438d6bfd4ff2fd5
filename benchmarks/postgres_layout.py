"""Which layout for a step's commit on PostgreSQL: an append-only journal, or an
operations table updated in place? (``python -m benchmarks.postgres_layout``)

Both write what a step's result needs, fenced in the statement that writes and
committed with ``synchronous_commit = on``, from ``THREADS`` connections at once
(each its own execution), ``STEPS`` steps each:

- journal: ``journal.FAST_APPEND`` (a HOT update of the execution's row bumping
  ``seq``, one INSERT of the row with the operation and its two events);
- upsert: the fence UPDATE, an ``INSERT ... ON CONFLICT DO UPDATE`` of the
  operation's row (STARTED, then SUCCEEDED: two versions of one row, as a step
  recorded START then SUCCEED leaves), and an INSERT of the events into a table of
  their own (the history has to live somewhere).

Prints commits per second of each, and the dead rows each left for autovacuum.
"""

from __future__ import annotations

import json
import threading
import time

import psycopg

from durable_gen._stores.postgres import PostgresStore
from durable_gen._stores.postgres.journal import FAST_APPEND
from tests.postgres import _server

THREADS = 8
STEPS = 300

_UPSERT_SCHEMA = (
    "CREATE SCHEMA bench",
    "CREATE TABLE IF NOT EXISTS bench.operations (execution bigint, op_id text, body text, "
    "PRIMARY KEY (execution, op_id))",
    "CREATE TABLE IF NOT EXISTS bench.history (execution bigint, seq integer, body text, "
    "PRIMARY KEY (execution, seq))",
)
_UPSERT = (
    "WITH fence AS (UPDATE executions SET seq = seq + 1 WHERE pk = %(pk)s "
    "AND version = %(version)s AND lease_owner = %(owner)s AND status = 'RUNNING' "
    "RETURNING pk, seq), op AS (INSERT INTO bench.operations (execution, op_id, body) "
    "SELECT pk, %(op_id)s, %(ops)s FROM fence ON CONFLICT (execution, op_id) DO UPDATE "
    "SET body = excluded.body RETURNING execution) "
    "INSERT INTO bench.history (execution, seq, body) SELECT pk, seq, %(events)s FROM fence "
    "RETURNING seq"
)


def _run(url: str, layout: str) -> float:
    store = PostgresStore(url)
    pks = []
    for t in range(THREADS):
        ex = f"{layout}-{t}"
        store.create(ex, "null", 0)
        store.acquire(ex, 0)
        pks.append(store._cached(ex).pk)
    version = {pk: store._cached(f"{layout}-{t}").version for t, pk in enumerate(pks)}
    op = json.dumps([{"Id": "x" * 16, "Type": "STEP", "Status": "SUCCEEDED", "Result": "42"}])
    events = json.dumps([{"EventType": "StepStarted"}, {"EventType": "StepSucceeded"}])

    def work(pk: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path = durable_gen")
            for i in range(STEPS):
                params = {
                    "pk": pk,
                    "version": version[pk],
                    "owner": store.owner,
                    "ops": op,
                    "events": events,
                    "op_id": f"op{i // 2}",  # two versions of each operation
                }
                row = conn.execute(
                    FAST_APPEND if layout == "journal" else _UPSERT, params
                ).fetchone()
                assert row is not None

    threads = [threading.Thread(target=work, args=(pk,)) for pk in pks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    store.close()
    return THREADS * STEPS / elapsed


def main() -> None:
    url = _server.fresh_database("bench")
    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path = durable_gen")
        for stmt in _UPSERT_SCHEMA:
            conn.execute(stmt)
    for layout in ("journal", "upsert", "journal", "upsert"):
        rate = _run(url, layout)
        print(f"{layout:8} {rate:8.0f} commits/s ({THREADS} connections x {STEPS} steps)")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("executions", "journal", "operations", "history"):
            conn.execute("SELECT pg_stat_force_next_flush()")
            dead = conn.execute(
                "SELECT n_dead_tup, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables "
                "WHERE relname = %s",
                (table,),
            ).fetchone()
            print(f"  {table:10} dead rows {dead[0]:6}  hot updates {dead[1]:6} of {dead[2]}")


if __name__ == "__main__":
    main()
