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
