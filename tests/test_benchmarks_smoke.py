"""Keep the benchmark scripts from rotting: run them quickly, durable_gen only.

No timing is asserted; only that every scenario runs and prints its table.
"""

from __future__ import annotations

import pytest

from benchmarks import run


def test_quick_run_without_peers_prints_every_durable_gen_table(capsys):
    results = run.main(
        ["--quick", "--no-peers", "--repeat", "1", "--only", "replay,forward,fanout"]
    )
    out = capsys.readouterr().out
    for title in ("## 1. Replay", "## 2. Forward, in memory", "## 5. Fan-out", "## Targets"):
        assert title in out
    assert set(results) == {"replay", "forward", "fanout"}
    assert all("durable_gen" in samples for samples in results["replay"].values())
    assert "AWS SDK test runner" not in out


def test_memory_scenario_measures_a_replay_in_a_fresh_process():
    from benchmarks.peers import memory

    m = memory.measure_in_subprocess("durable_gen", 50)
    assert m["kind"] == "durable_gen"
    assert m["tracemalloc_peak_mib"] > 0
    assert m["log_mib"] > 0


def test_unknown_scenario_is_refused():
    with pytest.raises(SystemExit):
        run.main(["--only", "nope"])


def test_queue_dispatch_benchmark_prints_its_table(capsys):
    from benchmarks import queues

    samples = queues.main(["--executions", "5", "--rounds", "1", "--no-dbos"])
    out = capsys.readouterr().out
    assert "### Queue dispatch: 5 one-step executions" in out
    assert "| durable_gen |" in out
    assert set(samples) == {"durable_gen"}
    assert all(len(v) == 1 for v in samples["durable_gen"].values())


def test_schedule_latency_benchmark_prints_its_table(capsys):
    from benchmarks import schedules

    samples = schedules.main(["--seconds", "4", "--rounds", "1", "--no-dbos"])
    out = capsys.readouterr().out
    assert "| durable_gen |" in out
    # ticks after the 2 s warm-up, each measured by its own step, late but not by seconds
    assert 1 <= len(samples["durable_gen"]) <= 3
    assert all(0 <= late < 1000 for late in samples["durable_gen"])


def test_postgres_vs_dbos_benchmark_prints_its_table(postgres_server, capsys):
    from benchmarks import postgres_vs_dbos

    argv = ["--rounds", "1", "--workflows", "3", "--steps", "2", "--sequential", "5"]
    samples = postgres_vs_dbos.main([*argv, "--no-dbos"])
    out = capsys.readouterr().out
    assert "synchronous_commit=on" in out
    assert "| 3 x 2 across executions" in out
    assert "| one execution of 5 sequential steps |" in out
    assert set(samples) == {"dg fanout", "dg sequential"}
    assert all(len(v) == 1 and v[0]["synchronous_commit"] == "on" for v in samples.values())
