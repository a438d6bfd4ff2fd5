"""Fuzzing a workflow of your own for replay safety (the README's "Testing your workflows").

``fuzz_replay`` draws orders from a hypothesis strategy, runs the workflow, then
crashes it at random points -- after checkpoints, while steps run, inside the
Parallel -- and resumes it: the result and the log must be the ones of the
uninterrupted run, no recorded success may run again, and the body must be
deterministic. ``check_replay`` does the same for one input, crashing at every
point in turn. Run it with ``python -m pytest examples/test_fuzz_order.py``.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from durable_gen import (
    Parallel,
    RetryPolicy,
    Step,
    StepError,
    Wait,
    WaitForCallback,
    Workflow,
)
from durable_gen.testing import (
    CallbackAnswer,
    PendingCallback,
    check_replay,
    fuzz_replay,
    lint_workflow,
    succeed,
)

# -- the workflow under test ------------------------------------------------------


def reserve(sku: str, qty: int) -> str:
    if qty > 5:
        raise ValueError(f"only 5 {sku} left")
    return f"hold-{sku}-{qty}"


def price(sku: str, qty: int) -> int:
    return 10 * qty + len(sku)


def notify(callback_id: str) -> None:  # would e-mail the approver the callback id
    return None


def order_flow(order: dict[str, object]) -> Workflow[dict[str, object]]:
    try:
        hold = yield from Step(
            reserve, order["sku"], order["qty"], name="reserve", retry=RetryPolicy.none()
        )
    except StepError as e:
        return {"status": "rejected", "reason": e.error_message}

    def total() -> Workflow[int]:
        return (yield from Step(price, order["sku"], order["qty"], name="price"))

    def fraud_check() -> Workflow[str]:
        yield Wait(seconds=30, name="cool-off")
        return (yield from Step(lambda: "clean", name="fraud-check"))

    batch = yield from Parallel([total, fraud_check], name="checks")
    amount, verdict = batch.get_results()
    if amount > 40:
        approval: str = yield WaitForCallback(notify, "manager", timeout=3600)
        if approval != "approve":
            return {"status": "refused", "hold": hold}
    return {"status": "paid", "hold": hold, "amount": amount, "verdict": verdict}


orders = st.fixed_dictionaries(
    {"sku": st.text(alphabet="ABC-0123", min_size=1, max_size=6), "qty": st.integers(1, 7)}
)


def approve(cb: PendingCallback) -> CallbackAnswer:
    return succeed("approve")


# -- the tests -------------------------------------------------------------------


def test_order_flow_survives_crashes_anywhere() -> None:
    fuzz_replay(order_flow, orders, callbacks=approve, settings=settings(max_examples=25))


@settings(max_examples=5, deadline=None)
@given(order=orders)
def test_every_crash_point_of_an_order(order: dict[str, object]) -> None:
    report = check_replay(order_flow, order, callbacks=approve)
    assert report.result.status == "SUCCEEDED"


def test_order_flow_is_clean_for_the_linter() -> None:
    assert lint_workflow(order_flow) == []
