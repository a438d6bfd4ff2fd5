"""Crash anywhere, for workflows mixing every operation kind: same result, same final log."""

import random

from hypothesis import given
from hypothesis import strategies as st

from durable_gen import MemoryStore

from .programs import Ledger, build, drive, new_engine, ops_strategy, snapshot


class Crash(BaseException):
    pass


class CrashingStore(MemoryStore):
    def __init__(self, crash_after):
        super().__init__()
        self.crash_after = crash_after
        self.checkpoints = 0

    def checkpoint(self, execution_id, updates, now, *, durable):
        delta = super().checkpoint(execution_id, updates, now, durable=durable)
        if updates:
            self.checkpoints += 1
            if self.checkpoints in self.crash_after:
                raise Crash
        return delta


def chooser(seed):
    waits = [0]

    def choose(pending):
        waits[0] += 1
        rnd = random.Random(f"{seed}-{waits[0]}")
        return rnd.sample(pending, rnd.randint(1, len(pending)))

    return choose


def run(program, crash_after=(), choose=None):
    store = CrashingStore(set(crash_after))
    ledger = Ledger(store)
    engine = new_engine(store)
    workflow = build(program, ledger)
    # the same execution id in every run: retry jitter is keyed by it
    ex = engine.start(workflow, {}, execution_id="prop-execution")
    result = drive(engine, workflow, ex, choose=choose, crash=Crash)
    return result, snapshot(engine, ex), store.checkpoints, ledger


@given(program=ops_strategy(), data=st.data())
def test_crash_after_any_checkpoint_same_result_and_log(program, data):
    baseline, base_log, total, base_ledger = run(program)
    assert baseline.status == "SUCCEEDED", baseline.error
    assert base_ledger.violations == []
    crashes = data.draw(st.sets(st.integers(1, max(total, 1)), max_size=4), label="crash after")
    seed = data.draw(st.integers(0, 2**32), label="callback seed")
    # Complete a random non-empty subset of the pending callbacks each time the
    # execution waits on them. The choice depends on the seed and on how many times
    # it has waited so far -- logical points that crashes do not move -- so both runs
    # see the outside world act at the same points.
    baseline, base_log, _, _ = run(program, (), chooser(seed))
    result, log, _, ledger = run(program, crashes, chooser(seed))
    assert result.status == baseline.status
    assert result.result == baseline.result
    assert log == base_log
    assert ledger.violations == []
