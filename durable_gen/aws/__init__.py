"""Run durable_gen workflows as AWS Lambda durable functions.

The only part of durable_gen that imports boto3 (install ``durable-gen[aws]``)::

    from durable_gen.aws import durable_handler

    handler = durable_handler(order_flow)      # the Lambda handler: handler(event, context)

:mod:`durable_gen.aws.local` serves handlers over the Lambda Invoke HTTP API, so
AWS's emulator (``dex-local-runner start-server --lambda-endpoint ...``) can
drive them on a developer machine.
"""

from ._api import ApiRetry, BatchLimits, PayloadTooLargeError
from ._handler import LAMBDA_RESPONSE_LIMIT, DurableHandler, InvalidEventError, durable_handler

__all__ = [
    "LAMBDA_RESPONSE_LIMIT",
    "ApiRetry",
    "BatchLimits",
    "DurableHandler",
    "InvalidEventError",
    "PayloadTooLargeError",
    "durable_handler",
]
