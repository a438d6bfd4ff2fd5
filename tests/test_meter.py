"""Metering: one test per row of issue 10's table, then the table/JSON output and estimates.

Expected bytes are computed here from the payload texts the workflow produces
(``len('"ok"')``) or, for errors whose stack trace depends on this file, from
the ErrorObject the history recorded, serialized as compact JSON.
"""

import json
import re

import pytest

from durable_gen import (
    All,
    AllSettled,
    Any,
    ChildContext,
    CreateCallback,
    ErrorObject,
    InMemoryEngine,
    Invoke,
    Jitter,
    Map,
    Nesting,
    NonDeterminismError,
    OperationAction,
    OperationType,
    OperationUpdate,
    Parallel,
    Race,
    RetryPolicy,
    Step,
    ValidationError,
    Wait,
    WaitForCallback,
    WaitForCondition,
    WaitStrategy,
)
from durable_gen._core.serdes import BATCH_SERDES
from durable_gen._engine.meter import Meter, MeterKind, compute_meter, meter_execution
from durable_gen._engine.pricing import Prices, estimate, load_prices, prices_from_flags

RETRY = RetryPolicy(max_attempts=5, initial_delay=1, jitter=Jitter.NONE)


def n(text: str) -> int:
    return len(text.encode("utf-8"))


def err_json(err: dict) -> int:
    return n(json.dumps(err, separators=(",", ":"), ensure_ascii=False))


def errors_in(engine, ex, event_type: str, **match) -> list[dict]:
    """The error objects of ``event_type`` events, read straight from the history."""
    out = []
    for e in engine.store.history(ex):
        if e["EventType"] != event_type:
            continue
        if any(e.get(k) != v for k, v in match.items()):
            continue
        out.append(e[f"{event_type}Details"]["Error"]["Payload"])
    return out


class HistoryOnly:
    """A store exposing only ``history`` and ``load`` (as the SQLite store does)."""

    def __init__(self, store):
        self._store = store

    def history(self, execution_id):
        return self._store.history(execution_id)

    def load(self, execution_id):
        return self._store.load(execution_id)


def metered(engine, ex, **kw) -> Meter:
    """The meter from updates, checked against the meter rebuilt from history only."""
    m = meter_execution(engine.store, ex, **kw)
    assert meter_execution(HistoryOnly(engine.store), ex, **kw).rows == m.rows
    return m


def only(m: Meter, **expected: tuple[int, int]) -> None:
    """Each named row has (operations, bytes); every other row is (0, 0)."""
    want = {MeterKind[k.upper()]: v for k, v in expected.items()}
    got = {r.kind: (r.operations, r.bytes) for r in m.rows if r.operations or r.bytes}
    assert got == {k: v for k, v in want.items() if v != (0, 0)}


def nothing(_):
    return "ok"
    yield  # pragma: no cover


def run(workflow, input=None, engine=None):
    engine = engine or InMemoryEngine()
    result = engine.run(workflow, input)
    return engine, result


# ------------------------------------------------------------------ Execution


def test_execution_row_input_and_output():
    engine, r = run(nothing, {"a": 1})
    m = metered(engine, r.execution_id)
    only(m, execution=(1, n('{"a":1}') + n('"ok"')))
    assert m.operations == 1
    assert m.status == "SUCCEEDED"


def test_execution_row_failed_counts_the_error_object():
    def fails(_):
        raise ValueError("nope")
        yield  # pragma: no cover

    engine, r = run(fails, "in")
    assert r.status == "FAILED"
    (error,) = [
        e["ExecutionFailedDetails"]["Error"]["Payload"]
        for e in engine.store.history(r.execution_id)
        if e["EventType"] == "ExecutionFailed"
    ]
    assert error["ErrorMessage"] == "nope"
    m = metered(engine, r.execution_id)
    only(m, execution=(1, n('"in"') + err_json(error)))
    assert m.status == "FAILED"


# ------------------------------------------------------------------ Step


def test_step_row_one_plus_retries_with_each_attempts_payload():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"down {len(calls)}")
        return "ok"

    def wf(_):
        return (yield Step(flaky, name="charge", retry=RETRY))

    engine, r = run(wf)
    ex = r.execution_id
    errors = errors_in(engine, ex, "StepFailed", Name="charge")
    assert [e["ErrorMessage"] for e in errors] == ["down 1", "down 2"]
    m = metered(engine, ex)
    only(
        m,
        execution=(1, n("null") + n('"ok"')),
        step=(1 + 2, sum(map(err_json, errors)) + n('"ok"')),
    )


def test_step_row_failed_step_counts_its_error():
    def boom():
        raise KeyError("k")

    def wf(_):
        try:
            yield Step(boom, name="boom", retry=RetryPolicy.none())
        except Exception:
            return "caught"

    engine, r = run(wf)
    (error,) = errors_in(engine, r.execution_id, "StepFailed", Name="boom")
    m = metered(engine, r.execution_id)
    only(m, execution=(1, n("null") + n('"caught"')), step=(1, err_json(error)))


# ------------------------------------------------------------------ Wait


def test_wait_row():
    def wf(_):
        yield Wait(seconds=10, name="pause")
        yield Wait(minutes=1)
        return None

    engine, r = run(wf)
    only(metered(engine, r.execution_id), execution=(1, n("null") * 2), wait=(2, 0))


# ------------------------------------------------------------------ WaitForCondition


def test_wait_for_condition_row_one_plus_polls_with_each_polls_payload():
    strategy = WaitStrategy(should_continue=lambda s: s < 3, initial_delay=2, jitter=Jitter.NONE)

    def wf(_):
        return (yield WaitForCondition(lambda s: s + 1, 0, strategy, name="ready"))

    engine, r = run(wf)
    assert r.result == 3
    # polls return 1 (RETRY), 2 (RETRY), 3 (SUCCEED)
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") + n("3")),
        wait_for_condition=(3, n("1") + n("2") + n("3")),
    )


# ------------------------------------------------------------------ Invocation-level retry


def test_invocation_level_retry_row():
    def v1(_):
        yield Step(lambda: "a", name="a")
        yield Wait(seconds=5)
        return "done"

    def v2(_):  # deployed mid-flight with a renamed step: the invocation fails
        yield Step(lambda: "a", name="renamed")
        yield Wait(seconds=5)
        return "done"

    engine = InMemoryEngine()
    ex = engine.start(v1, None)
    assert engine.resume(v1, ex, wait=False).status == "RUNNING"
    engine.clock.advance(5)
    with pytest.raises(NonDeterminismError):
        engine.resume(v2, ex)
    assert engine.resume(v1, ex).status == "SUCCEEDED"  # the retry, with the fixed code
    (error,) = [
        e["InvocationCompletedDetails"]["Error"]["Payload"]
        for e in engine.store.history(ex)
        if e["EventType"] == "InvocationCompleted" and "Error" in e["InvocationCompletedDetails"]
    ]
    only(
        metered(engine, ex),
        execution=(1, n("null") + n('"done"')),
        step=(1, n('"a"')),
        wait=(1, 0),
        invocation_retry=(1, err_json(error)),
    )


# ------------------------------------------------------------------ callbacks


def approval(_):
    handle = yield CreateCallback("approval")
    try:
        return (yield handle.result())
    except Exception as e:
        return type(e).__name__


def test_create_callback_and_callback_completion_rows():
    engine, r = run(approval)
    ex = r.execution_id
    (cb,) = [op for op in engine.store.load(ex).values() if op.name == "approval"]
    engine.store.complete_callback(
        cb.callback_id, "succeed", engine.clock.now(), payload='{"ok":1}'
    )
    assert engine.resume(approval, ex).result == '{"ok":1}'
    only(
        metered(engine, ex),
        execution=(1, n("null") + n(json.dumps('{"ok":1}'))),
        create_callback=(1, 0),
        callback_completion=(0, n('{"ok":1}')),
    )


def test_callback_completion_row_failure_counts_the_error_sent():
    engine, r = run(approval)
    ex = r.execution_id
    (cb,) = [op for op in engine.store.load(ex).values() if op.name == "approval"]
    sent = ErrorObject(type="Rejected", message="no budget")
    engine.store.complete_callback(cb.callback_id, "fail", engine.clock.now(), error=sent)
    assert engine.resume(approval, ex).result == "CallbackFailedError"
    only(
        metered(engine, ex),
        execution=(1, n("null") + n('"CallbackFailedError"')),
        create_callback=(1, 0),
        callback_completion=(0, n('{"ErrorType":"Rejected","ErrorMessage":"no budget"}')),
    )


def test_wait_for_callback_row_three_plus_retries_and_two_copies_of_the_payload():
    calls = []

    def submit(callback_id):
        calls.append(callback_id)
        if len(calls) == 1:
            raise ConnectionError("mail server down")
        # returns None: the submitter step persists "null"

    def wf(_):
        return (yield WaitForCallback(submit, "approve", retry=RETRY))

    engine, r = run(wf)
    ex = r.execution_id
    assert r.status == "RUNNING"
    (cb,) = [op for op in engine.store.load(ex).values() if op.type.value == "CALLBACK"]
    engine.store.complete_callback(cb.callback_id, "succeed", engine.clock.now(), payload="yes")
    assert engine.resume(wf, ex).result == "yes"
    (error,) = errors_in(engine, ex, "StepFailed", Name="approve submitter")
    only(
        metered(engine, ex),
        execution=(1, n("null") + n('"yes"')),
        # context + callback + submitter (1 + 1 retry)
        # the payload twice: raw on the callback, as JSON on the context (as AWS's SDK)
        wait_for_callback=(3 + 1, err_json(error) + n("null") + n("yes") + n('"yes"')),
    )


# ------------------------------------------------------------------ Parallel / Map


def const(value):
    def branch():
        return value
        yield  # pragma: no cover

    return branch


def test_parallel_row_one_plus_branches_two_copies_and_statuses():
    def wf(_):
        r = yield Parallel([const("a"), const("bb"), const("ccc")], name="fan")
        return BATCH_SERDES.serialize(r)  # the parent context's payload, as stored

    engine, r = run(wf)
    batch_payload = r.result
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") + n(json.dumps(batch_payload))),
        parallel_map=(1 + 3, n('"a"') + n('"bb"') + n('"ccc"') + n(batch_payload)),
    )


def test_map_row_with_steps_metered_as_steps():
    def item(x, i):
        return (yield Step(lambda: x * 2, name=f"double {i}"))

    def wf(_):
        r = yield Map([1, 2], item, name="m")
        return BATCH_SERDES.serialize(r)

    engine, r = run(wf)
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") + n(json.dumps(r.result))),
        parallel_map=(1 + 2, n("2") + n("4") + n(r.result)),
        step=(2, n("2") + n("4")),
    )


def test_parallel_flat_nesting_has_no_branch_contexts():
    def wf(_):
        r = yield Parallel([const("a"), const("b")], name="flat", nesting=Nesting.FLAT)
        return BATCH_SERDES.serialize(r)

    engine, r = run(wf)
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") + n(json.dumps(r.result))),
        parallel_map=(1, n(r.result)),  # one copy: no branch contexts are recorded
    )


# ------------------------------------------------------------------ Promise helpers


@pytest.mark.parametrize(
    ("combinator", "payload", "steps"),
    [
        (All, "[1,2]", ("1", "2")),
        # Any and Race finish at the first outcome: the other step's START was
        # checkpointed, its outcome never was, so it is not a metered attempt
        (Any, "1", ("1",)),
        (Race, "1", ("1",)),
        (
            AllSettled,
            '[{"status":"fulfilled","value":1},{"status":"fulfilled","value":2}]',
            ("1", "2"),
        ),
    ],
)
def test_promise_helpers_row(combinator, payload, steps):
    def wf(_):
        yield combinator([Step(lambda: 1, name="one"), Step(lambda: 2, name="two")], name="c")
        return None

    engine, r = run(wf)
    (comb,) = [op for op in engine.store.load(r.execution_id).values() if op.name == "c"]
    assert comb.result == payload  # the known payload text
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") * 2),
        promise=(1, n(payload)),
        step=(len(steps), sum(map(n, steps))),
    )


def test_promise_helpers_row_over_waits():
    def wf(_):
        yield All([Wait(seconds=1), Wait(seconds=2)], name="both")
        return None

    engine, r = run(wf)
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") * 2),
        promise=(1, n("[null,null]")),
        wait=(2, 0),
    )


# ------------------------------------------------------------------ RunInChildContext


def test_run_in_child_context_row():
    def kid(x):
        return f"kid {x}"
        yield  # pragma: no cover

    def wf(_):
        return (yield ChildContext(kid, 7, name="kid"))

    engine, r = run(wf)
    m = metered(engine, r.execution_id)
    only(m, execution=(1, n("null") + n('"kid 7"')), run_in_child_context=(1, n('"kid 7"')))
    assert m.replay_children == ()


def test_run_in_child_context_over_256_kib_is_not_stored():
    big = "x" * (256 * 1024 + 1)

    def kid():
        return big
        yield  # pragma: no cover

    def wf(_):
        r = yield ChildContext(kid, name="big")
        return len(r)

    engine, r = run(wf)
    assert r.result == len(big)
    m = metered(engine, r.execution_id)
    only(m, execution=(1, n("null") + n(str(len(big)))), run_in_child_context=(1, 0))
    assert m.replay_children == ("ChildContext 'big'",)
    assert "not stored (ReplayChildren): ChildContext 'big'" in m.to_table()


# ------------------------------------------------------------------ ChainedInvoke


def test_chained_invoke_row_input_and_result():
    def double(x):
        return x * 2
        yield  # pragma: no cover

    def wf(_):
        return (yield Invoke("double", 21, name="call"))

    engine = InMemoryEngine(functions={"double": double})
    r = engine.run(wf)
    assert r.result == 42
    only(
        metered(engine, r.execution_id),
        execution=(1, n("null") + n("42")),
        chained_invoke=(1, n("21") + n("42")),
    )


# ------------------------------------------------------------------ output & API


def order(_):
    yield Step(lambda: "x" * 40, name="reserve")
    yield Wait(seconds=30)
    return "done"


def test_to_table_to_dict_and_summary():
    engine, r = run(order, {"sku": "A1"})
    m = meter_execution(engine.store, r.execution_id, retention_days=30, largest=2)
    total = n('{"sku":"A1"}') + n('"done"') + n(json.dumps("x" * 40))
    assert m.operations == 3
    assert m.bytes_persisted == total
    assert m.retained_byte_days == total * 30
    table = m.to_table()
    lines = table.splitlines()
    assert lines[0] == f"durable operations and data persisted by execution {r.execution_id} " + (
        "(SUCCEEDED)"
    )
    assert re.fullmatch(r"  kind\s+operations\s+bytes persisted", lines[1])
    assert re.fullmatch(rf"  Step\s+1\s+{n(json.dumps('x' * 40))}", lines[3])
    assert re.fullmatch(rf"  total\s+3\s+{total}", lines[-5])
    assert lines[-4] == "largest payloads"
    assert lines[-3].endswith("B  Step 'reserve' attempt 1 result")
    assert lines[-1] == f"data retained: {total} B x 30 days = {total * 30:,} byte-days"
    assert "Wait" in m.to_table()
    assert "CreateCallback" not in m.to_table()
    assert "CreateCallback" in m.to_table(all_rows=True)
    d = m.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["operations"] == 3
    assert d["by_kind"]["Step"] == {"operations": 1, "bytes": n(json.dumps("x" * 40))}
    assert list(d["by_kind"]) == [k.value for k in MeterKind]
    assert [p["what"] for p in d["largest_payloads"]] == ["attempt 1 result", "input"]
    execution_bytes = n('{"sku":"A1"}') + n('"done"')
    assert m.summary_line() == (
        f"durable-gen meter {r.execution_id}: 3 operations, {total} B persisted "
        f"(Execution 1/{execution_bytes} B, Step 1/42 B, Wait 1/0 B)"
    )


def test_meter_of_updates_alone_is_what_one_invocation_checkpointed():
    engine, r = run(order, {"sku": "A1"})
    m = compute_meter(updates=engine.store.updates(r.execution_id))
    assert m.status is None
    assert m.operations_by_kind["Step"] == 1
    assert m.operations == 2  # step + wait; the execution row is the service's
    assert m.bytes_persisted == n(json.dumps("x" * 40))


def test_running_execution_is_metered_so_far():
    engine = InMemoryEngine()
    ex = engine.start(order, None)
    engine.resume(order, ex, wait=False)
    m = meter_execution(engine.store, ex)
    assert m.status == "RUNNING"
    only(m, execution=(1, n("null")), step=(1, n(json.dumps("x" * 40))), wait=(1, 0))


def test_bad_arguments():
    with pytest.raises(ValidationError, match=r"^retention_days must be a number of days >= 0"):
        compute_meter(retention_days=-1)
    with pytest.raises(ValidationError, match=r"^largest must be an int >= 0"):
        compute_meter(largest=-1)


# ------------------------------------------------------------------ estimate


PRICES = {"per_million_operations": 8, "per_gb_persisted": 0.25, "per_gb_month_retained": 0.15}


def test_estimate_per_execution_and_per_month():
    engine, r = run(order, {"sku": "A1"})
    m = meter_execution(engine.store, r.execution_id, retention_days=15)
    prices = Prices(**PRICES, currency="USD")
    e = estimate(m, prices, 1_000_000)
    gb = m.bytes_persisted / 2**30
    assert e.per_execution.operations == pytest.approx(3 / 1e6 * 8)
    assert e.per_execution.persisted == pytest.approx(gb * 0.25)
    assert e.per_execution.retained == pytest.approx(gb * 15 / 30 * 0.15)
    assert e.per_month.total == pytest.approx(e.per_execution.total * 1_000_000)
    assert e.per_month.operations == pytest.approx(24.0)
    d = e.to_dict()
    assert json.loads(json.dumps(d)) == d
    table = e.to_table()
    assert table.splitlines()[1].split()[:2] == ["cost", "USD"]
    assert "24.00" in table
    no_retention = estimate(meter_execution(engine.store, r.execution_id), prices, 10)
    assert no_retention.per_execution.retained == 0
    assert "no retention period given" in no_retention.to_table()


def test_prices_from_files_and_flags(tmp_path):
    j = tmp_path / "p.json"
    j.write_text(json.dumps(PRICES))
    assert load_prices(j) == Prices(**PRICES)
    t = tmp_path / "p.toml"
    t.write_text(
        "[prices]\nper_million_operations = 8\nper_gb_persisted = 0.25\n"
        'per_gb_month_retained = 0.15\ncurrency = "EUR"\n'
    )
    assert load_prices(t) == Prices(**PRICES, currency="EUR")
    flags = {
        "--price-per-million-operations": "9.5",
        "price_per_gb_persisted": "0.3",
        "per-gb-month-retained": "0",
        "currency": None,
    }
    assert prices_from_flags(flags) == Prices(
        per_million_operations=9.5, per_gb_persisted=0.3, per_gb_month_retained=0
    )
    # a file first, flags override it
    assert prices_from_flags({"prices_file": str(t), "price_per_gb_persisted": "1"}) == Prices(
        **{**PRICES, "per_gb_persisted": 1}, currency="EUR"
    )


def test_prices_errors(tmp_path):
    with pytest.raises(ValidationError, match=r"missing price\(s\) per_gb_month_retained"):
        prices_from_flags({"per_million_operations": 1, "per_gb_persisted": 1})
    with pytest.raises(ValidationError, match=r"unknown setting\(s\) per_op"):
        Prices.from_mapping({**PRICES, "per_op": 1})
    with pytest.raises(ValidationError, match=r"price per_gb_persisted must be a number"):
        Prices.from_mapping({**PRICES, "per_gb_persisted": "cheap"})
    with pytest.raises(ValidationError, match=r"must be a finite number >= 0"):
        Prices(**{**PRICES, "per_million_operations": -1})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValidationError, match=r"cannot be parsed"):
        load_prices(bad)
    with pytest.raises(ValidationError, match=r"cannot read the prices file"):
        load_prices(tmp_path / "missing.json")
    with pytest.raises(ValidationError, match=r"executions_per_month must be an int >= 0"):
        estimate(compute_meter(), Prices(**PRICES), -1)


def test_wait_for_condition_poll_that_raised_persists_state_and_error():
    calls = []

    def check(s):
        calls.append(s)
        if len(calls) == 1:
            raise ConnectionError("probe failed")
        return s + 1

    strategy = WaitStrategy(should_continue=lambda s: s < 1, initial_delay=1, jitter=Jitter.NONE)

    def wf(_):
        return (yield WaitForCondition(check, 0, strategy, name="probe", retry=RETRY))

    engine, r = run(wf)
    ex = r.execution_id
    assert r.result == 1
    (error,) = errors_in(engine, ex, "StepFailed", Name="probe")
    m = meter_execution(engine.store, ex)
    # poll 1 raised: RETRY with the state it was given ("0") and its error; poll 2: "1"
    only(
        m,
        execution=(1, n("null") + n("1")),
        wait_for_condition=(2, n("0") + err_json(error) + n("1")),
    )
    assert m.notes == ()
    # the history records that poll's error but not its state: a lower bound, noted
    h = meter_execution(HistoryOnly(engine.store), ex)
    assert h.bytes_of(MeterKind.WAIT_FOR_CONDITION) == err_json(error) + n("1")
    assert h.operations == m.operations
    assert h.notes == (
        "a WaitForCondition poll raised and was retried: the history records its error but "
        "not its state, so its state is not counted",
    )


def test_truncated_history_payloads_are_noted():
    m = compute_meter(
        history=[
            {
                "EventType": "ExecutionStarted",
                "Id": "e1",
                "ExecutionStartedDetails": {"Input": {"Payload": "abc", "Truncated": True}},
            }
        ]
    )
    assert (m.execution_id, m.status, m.operations, m.bytes_persisted) == ("e1", "RUNNING", 1, 3)
    assert m.notes == ("some history payloads are truncated; their bytes are a lower bound",)


def test_large_result_checkpointed_as_execution_update_counts_as_output():
    final = OperationUpdate(
        id="e1", type=OperationType.EXECUTION, action=OperationAction.SUCCEED, payload='"big"'
    )
    m = compute_meter(updates=[final], execution_id="e1")
    assert (m.status, m.operations, m.bytes_of(MeterKind.EXECUTION)) == ("SUCCEEDED", 0, 5)
