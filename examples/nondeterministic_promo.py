"""A deliberately non-deterministic workflow: it branches on the wall clock.

The body reads ``time.time()`` directly, so a replay after the promotion ended
takes the other branch: the discount step recorded by the first run is not
yielded again. ``check_replay`` catches it, and so does the linter::

    from durable_gen.testing import check_replay, lint_file
    lint_file("examples/nondeterministic_promo.py")   # DG101 at line 32
    check_replay(promo_flow, {"sku": "B-42", "price": 100})

The fix is in ``promo_flow_fixed``: read the clock in a step, so the replay sees
the recorded time.
"""

import time

from durable_gen import Step, Workflow

PROMO_ENDS = 1_767_225_600  # 2026-01-01T00:00:00Z


def quote(sku: str, price: int) -> int:
    return price


def charge(amount: int) -> str:
    return f"charged {amount}"


def promo_flow(order: dict[str, object]) -> Workflow[str]:
    price = yield from Step(quote, order["sku"], order["price"], name="quote")
    if time.time() < PROMO_ENDS:  # non-deterministic: replays may take the other branch
        price = yield from Step(lambda p: p * 9 // 10, price, name="discount")
    return (yield from Step(charge, price, name="charge"))


def promo_flow_fixed(order: dict[str, object]) -> Workflow[str]:
    price = yield from Step(quote, order["sku"], order["price"], name="quote")
    now = yield from Step(time.time, name="now")  # recorded: every replay sees the same time
    if now < PROMO_ENDS:
        price = yield from Step(lambda p: p * 9 // 10, price, name="discount")
    return (yield from Step(charge, price, name="charge"))
