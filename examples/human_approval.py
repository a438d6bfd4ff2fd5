"""An expense that waits for a human's approval through a callback.

The workflow creates a callback, e-mails its id to an approver (a step), and waits
for the approver's answer -- or gives up after 3 days. Anyone holding the
callback id completes it from outside (the engine's API, `durable-gen callback`,
or AWS's SendDurableExecutionCallbackSuccess on Lambda).

Run it (waits for the callback):
    durable-gen run examples/human_approval.py:expense_flow --input '{"amount": 120}'
"""

import json

from durable_gen import (
    CallbackFailedError,
    CallbackTimeoutError,
    Step,
    WaitForCallback,
    Workflow,
    get_logger,
)

log = get_logger(__name__)

OUTBOX: list[dict[str, object]] = []  # stands for the mail server


def send_approval_request(callback_id: str, amount: int) -> None:
    OUTBOX.append({"to": "approver@example.com", "amount": amount, "callback_id": callback_id})


def pay(amount: int) -> str:
    return f"paid {amount}"


def expense_flow(event: dict[str, int]) -> Workflow[dict[str, object]]:
    amount = event["amount"]
    log.info("requesting approval for %s", amount)
    try:
        answer: str = yield WaitForCallback(
            lambda callback_id: send_approval_request(callback_id, amount),
            "manager-approval",
            timeout=3 * 24 * 3600,
        )
    except CallbackTimeoutError:
        return {"status": "expired"}
    except CallbackFailedError as e:
        return {"status": "rejected", "reason": e.error_message}
    decision = json.loads(answer)
    if not decision.get("approved"):
        return {"status": "rejected", "reason": decision.get("reason")}
    receipt = yield from Step(pay, amount)
    return {"status": "paid", "receipt": receipt}
