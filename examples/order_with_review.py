"""An order that reserves stock in a child context, waits, then ships.

Run it:
    durable-gen run examples/order_with_review.py:order_flow --input '{"sku": "B-42", "qty": 2}'
"""

from typing import TypedDict

from durable_gen import ChildContext, Step, Wait, Workflow


class Reservation(TypedDict):
    hold: str
    available: int


def check_stock(sku: str) -> int:
    return 10


def reserve(sku: str, qty: int) -> str:
    return f"hold-{sku}-{qty}"


def ship(hold: str) -> str:
    return f"shipped:{hold}"


def reservation(sku: str, qty: int) -> Workflow[Reservation]:
    available = yield from Step(check_stock, sku)
    if available < qty:
        raise ValueError(f"only {available} of {sku} left")
    hold = yield from Step(reserve, sku, qty)
    return {"hold": hold, "available": available}


def order_flow(event: dict[str, object]) -> Workflow[dict[str, str]]:
    res: Reservation = yield ChildContext(
        reservation, event["sku"], event["qty"], name="reserve-stock"
    )
    yield Wait(seconds=2, name="cooling-off")
    tracking = yield from Step(ship, res["hold"])
    return {"hold": res["hold"], "tracking": tracking}
