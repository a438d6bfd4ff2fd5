"""The schedule acceptance run (tests/test_schedule_processes.py) on PostgreSQL: a
schedule every second, 3 worker processes, one killed with SIGKILL and restarted,
exactly one execution per tick; pause; backfill."""

from __future__ import annotations

import json

import psycopg

from tests.test_schedule_processes import SELECT, Rows, acceptance


def _pg_rows(url: str) -> Rows:
    def read() -> list[tuple[str, str, int, str]]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO durable_gen")
            rows = conn.execute(SELECT).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])["scheduled_time"]) for r in rows]

    return read


def test_one_execution_per_tick_across_three_workers_one_killed(pg_url, tmp_path):
    acceptance(pg_url, _pg_rows(pg_url), tmp_path / "logs")
