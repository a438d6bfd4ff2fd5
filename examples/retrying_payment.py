"""A payment that fails transiently and succeeds on retry.

Run it:  durable-gen run examples/retrying_payment.py:payment_flow --input '{"amount": 42}'
"""

from durable_gen import (
    AT_MOST_ONCE_PER_RETRY,
    RetryPolicy,
    Step,
    StepError,
    Workflow,
    current_attempt,
)


class GatewayBusy(Exception):
    """The payment gateway asked us to come back later."""


def charge(amount: int) -> dict[str, object]:
    # The gateway is busy on the first two attempts; a real one would be called here.
    if current_attempt() < 3:
        raise GatewayBusy(f"gateway busy (attempt {current_attempt()})")
    return {"charged": amount, "attempts": current_attempt()}


def refuse(amount: int) -> None:
    raise ValueError(f"amount {amount} refused")


def payment_flow(event: dict[str, int]) -> Workflow[dict[str, object]]:
    amount = event["amount"]
    receipt = yield from Step(
        charge,
        amount,
        name="charge",
        retry=RetryPolicy(
            max_attempts=5, initial_delay=1, max_delay=2, retryable_error_types=[GatewayBusy]
        ),
        semantics=AT_MOST_ONCE_PER_RETRY,
    )
    try:
        yield Step(refuse, amount, name="bonus", retry=RetryPolicy.none())
        bonus: bool | str = True
    except StepError as e:
        bonus = f"no bonus: {e.error_message}"
    return {"receipt": receipt, "bonus": bonus}
