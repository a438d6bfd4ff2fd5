"""Encryption at rest and the meter on PostgreSQL (issue 27: everything the SQLite
engine does works on it), through the CLI as a user runs them: with keys in the
environment the rows on the server hold no payload in clear while the owner reads
them; ``show --meter`` meters an execution stored on the server as on a file."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from durable_gen import KeyRing
from tests._procs import cli_env, run_cli
from tests.test_cli_sqlite import WF


def _raw_rows(url: str) -> str:
    """Every row of durable_gen's tables, as text, read straight from the server."""
    with psycopg.connect(url, autocommit=True) as conn:
        parts = []
        for table in ("executions", "journal", "callbacks"):
            rows = conn.execute(f"SELECT * FROM durable_gen.{table}").fetchall()
            parts.append(repr(rows))
    return "\n".join(parts)


def test_keys_in_the_environment_seal_the_payloads_on_the_server(
    pg_url: str, tmp_path: Path
) -> None:
    (tmp_path / "clwf.py").write_text(WF)
    env = cli_env(
        DG_COUNT_FILE=str(tmp_path / "count"),
        DURABLE_GEN_DB=pg_url,
        DURABLE_GEN_KEYS=f"k1:{KeyRing.generate_key()}",
    )
    done = run_cli(
        "run", f"{tmp_path / 'clwf.py'}:flow", "--input", '{"n": 123457}', "--id", "enc", env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": 246914, "b": 493828}
    shown = run_cli("show", "enc", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "493828" in shown.stdout  # the owner reads it in clear
    raw = _raw_rows(pg_url)  # the server does not
    assert "enc" in raw  # (the rows are there)
    for clear in ("123457", "246914", "493828"):
        assert clear not in raw
    # another key: a clear error, not garbage, and the rows stay as they were
    other = {**env, "DURABLE_GEN_KEYS": f"k1:{KeyRing.generate_key()}"}
    refused = run_cli("show", "enc", env=other)
    assert refused.returncode == 1
    assert "does not authenticate with key 'k1'" in refused.stderr
    assert _raw_rows(pg_url) == raw


def test_show_meter_meters_an_execution_on_the_server(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "clwf.py").write_text(WF)
    env = cli_env(DG_COUNT_FILE=str(tmp_path / "count"))
    target = f"{tmp_path / 'clwf.py'}:flow"
    for db in (pg_url, str(tmp_path / "m.db")):
        done = run_cli("--db", db, "run", target, "--input", '{"n": 5}', "--id", "m", env=env)
        assert done.returncode == 0, done.stderr
    meters = {}
    for db, name in ((pg_url, "pg"), (str(tmp_path / "m.db"), "file")):
        shown = run_cli("--db", db, "show", "m", "--meter", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        meters[name] = json.loads(shown.stdout)
    # the same execution, metered the same on both stores
    assert meters["pg"]["status"] == "SUCCEEDED"
    assert meters["pg"]["operations"] == meters["file"]["operations"] > 0
    assert meters["pg"]["bytes_persisted"] == meters["file"]["bytes_persisted"] > 0
    assert meters["pg"]["by_kind"] == meters["file"]["by_kind"]
