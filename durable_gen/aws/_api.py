"""Calls to the Lambda durable-execution API: batching, retries, error classification.

:class:`Checkpointer` owns the checkpoint token of one invocation. It sends
OperationUpdates with ``CheckpointDurableExecution`` in batches that respect the
service limits, chains the single-use token, follows ``NextMarker`` pages of each
returned delta, and retries transient failures with bounded exponential backoff.
No background thread and no timer: a batch is sent exactly when the handler asks
for durability, so an invocation never waits on a clock.

Errors from botocore are classified (see :func:`classify`):

- *transient* (throttling, HTTP 429 and 5xx, timeouts, connection errors): retried
  here with backoff, each retry reusing the call's ``ClientToken`` and checkpoint
  token, so a call that reached the service before the connection broke is
  answered idempotently; when the attempts run out the invocation raises a
  retryable :class:`StoreError` and Lambda re-invokes the function;
- *stale token* (``InvalidParameterValueException`` "Invalid checkpoint token"):
  the token cannot become valid again, so retrying the same call is pointless;
  the invocation raises a retryable :class:`StoreError` at once and the next
  invocation gets a fresh token (this is the AWS SDK's choice too);
- anything else (validation errors, missing execution, access denied, an
  unusable KMS key even though it arrives as HTTP 502): a non-retryable
  :class:`StoreError` naming the call, the code and the message.

The emulator (``dex-local-runner``) writes error bodies botocore cannot read the
code from, so its errors arrive with ``Code`` ``"400"``; classification therefore
looks at the HTTP status and the message as well as the code.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._core.errors import StoreError
from .._core.log import (
    Operation,
    OperationAction,
    OperationType,
    OperationUpdate,
)

__all__ = [
    "ApiRetry",
    "BatchLimits",
    "Checkpointer",
    "PayloadTooLargeError",
    "TokenRevoked",
    "classify",
    "split_batches",
]

_log = logging.getLogger("durable_gen.aws")

#: Largest ``Payload`` of one OperationUpdate the API model allows (6 MiB).
MAX_UPDATE_PAYLOAD = 6_291_456

_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
_SERVER_CODES = frozenset(
    {"ServiceException", "InternalFailure", "InternalError", "ServiceUnavailable"}
)
#: The customer's KMS key is unusable: the service answers 5xx, but no retry can cure it.
_CUSTOMER_CODES = frozenset(
    {
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
    }
)
_STALE_TOKEN = "Invalid checkpoint token"


@attrs.frozen(kw_only=True)
class BatchLimits:
    """Limits of one ``CheckpointDurableExecution`` call (the service's, by default).

    ``max_updates`` and ``max_bytes`` bound a batch (250 updates, 750 KiB of
    serialized updates); a single update larger than ``max_bytes`` travels alone.
    ``max_payload_bytes`` bounds one update's ``Payload`` (the API model's 6 MiB);
    a larger payload is refused before anything is sent. ``state_page_size`` is the
    ``MaxItems`` asked of ``GetDurableExecutionState`` (1 to 1000).
    """

    max_updates: int = attrs.field(default=250, validator=attrs.validators.ge(1))
    max_bytes: int = attrs.field(default=750 * 1024, validator=attrs.validators.ge(1))
    max_payload_bytes: int = attrs.field(
        default=MAX_UPDATE_PAYLOAD, validator=attrs.validators.ge(1)
    )
    state_page_size: int = attrs.field(
        default=1000, validator=[attrs.validators.ge(1), attrs.validators.le(1000)]
    )


@attrs.frozen(kw_only=True)
class ApiRetry:
    """Retries of transient API failures within one invocation.

    Attempt ``n`` (1-based) that fails transiently is followed, after a delay of
    ``min(base_delay * 2**(n-1), max_delay)`` seconds with full jitter, by attempt
    ``n+1``, up to ``max_attempts`` in all; then the invocation raises and Lambda
    retries it. ``sleep`` is injectable for tests.
    """

    max_attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


class PayloadTooLargeError(StoreError):
    """An update's payload exceeds what the checkpoint API accepts."""

    def __init__(self, update: OperationUpdate, size: int, limit: int) -> None:
        self.operation_id = update.id
        self.size = size
        self.limit = limit
        what = f"{update.type.value} {update.name!r}" if update.name else update.type.value
        super().__init__(
            f"the {update.action.value} update of {what} (id {update.id!r}) carries a "
            f"{size:,}-byte payload; the checkpoint API accepts at most {limit:,} bytes. "
            "Return a smaller value (for example a key to data kept elsewhere)."
        )


class TokenRevoked(Exception):
    """The service answered a checkpoint without a new token: stop and return PENDING."""


def classify(exc: BaseException) -> str:
    """``"transient"``, ``"stale-token"``, ``"fatal"`` for botocore errors; else ``"unknown"``."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectionError,
        HTTPClientError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        err = exc.response.get("Error") or {}
        code = str(err.get("Code") or "")
        message = str(err.get("Message") or "")
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if not isinstance(status, int):
            status = int(code) if code.isdigit() else 0
        if message.startswith(_STALE_TOKEN):
            return "stale-token"
        if code in _CUSTOMER_CODES:
            return "fatal"
        if code in _THROTTLING_CODES or code in _SERVER_CODES or status == 429 or status >= 500:
            return "transient"
        return "fatal"
    if isinstance(
        exc, ConnectionError | HTTPClientError | ReadTimeoutError | ConnectionClosedError
    ):
        return "transient"
    if isinstance(exc, BotoCoreError):
        return "fatal"
    return "unknown"


def _describe(exc: BaseException) -> str:
    resp = getattr(exc, "response", None)
    if isinstance(resp, Mapping):
        err = resp.get("Error") or {}
        status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return f"{err.get('Code')} (HTTP {status}): {err.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def call_api(name: str, fn: Callable[..., Any], retry: ApiRetry, **kwargs: Any) -> Any:
    """Call one API operation, retrying transient failures; raise StoreError otherwise."""
    attempt = 1
    while True:
        try:
            return fn(**kwargs)
        except Exception as e:
            kind = classify(e)
            if kind == "unknown":
                raise
            if kind == "transient" and attempt < retry.max_attempts:
                delay = retry.delay(attempt)
                _log.warning(
                    "%s failed (attempt %d of %d), retrying in %.2fs: %s",
                    name,
                    attempt,
                    retry.max_attempts,
                    delay,
                    _describe(e),
                )
                retry.sleep(delay)
                attempt += 1
                continue
            if kind == "transient":
                raise StoreError(
                    f"{name} failed {attempt} times with transient errors, last: "
                    f"{_describe(e)}; the invocation ends so that Lambda retries it",
                    retryable=True,
                ) from e
            if kind == "stale-token":
                raise StoreError(
                    f"{name} was refused: {_describe(e)}; the checkpoint token is stale "
                    "(another invocation moved the execution on); the invocation ends "
                    "so that Lambda retries it with a fresh token",
                    retryable=True,
                ) from e
            raise StoreError(f"{name} failed: {_describe(e)}") from e


def update_size(update: OperationUpdate) -> int:
    """Bytes of the update as sent (JSON)."""
    return len(json.dumps(update.to_dict(), separators=(",", ":")).encode())


def split_batches(
    updates: list[OperationUpdate], limits: BatchLimits
) -> list[list[OperationUpdate]]:
    """Split ``updates`` (in order) into batches the service accepts.

    A batch holds at most ``limits.max_updates`` updates and ``limits.max_bytes``
    bytes (an update larger than that alone goes in a batch of its own). An id
    appears in a batch at most twice, and then first as a STEP or CONTEXT START
    (the service's rule). A payload over ``limits.max_payload_bytes`` raises
    :class:`PayloadTooLargeError` before anything is sent.
    """
    batches: list[list[OperationUpdate]] = []
    cur: list[OperationUpdate] = []
    cur_bytes = 0
    seen: dict[str, OperationUpdate] = {}  # id -> its first update in the batch
    twice: set[str] = set()
    for upd in updates:
        payload = upd.payload
        if payload is not None:
            psize = len(payload.encode())
            if psize > limits.max_payload_bytes:
                raise PayloadTooLargeError(upd, psize, limits.max_payload_bytes)
        size = update_size(upd)
        first = seen.get(upd.id)
        id_ok = first is None or (
            upd.id not in twice
            and first.action is OperationAction.START
            and first.type in (OperationType.STEP, OperationType.CONTEXT)
        )
        if cur and (
            len(cur) >= limits.max_updates or cur_bytes + size > limits.max_bytes or not id_ok
        ):
            batches.append(cur)
            cur, cur_bytes = [], 0
            seen.clear()
            twice.clear()
            first = None
        cur.append(upd)
        cur_bytes += size
        if first is None:
            seen[upd.id] = upd
        else:
            twice.add(upd.id)
    if cur:
        batches.append(cur)
    return batches


def parse_operations(items: Iterable[Any]) -> dict[str, Operation]:
    out: dict[str, Operation] = {}
    for d in items:
        op = Operation.from_dict(d)
        out[op.id] = op
    return out


class Checkpointer:
    """The checkpoint token of one invocation and the API calls made with it.

    ``calls`` counts ``CheckpointDurableExecution`` calls that succeeded.
    """

    def __init__(
        self,
        client: Any,
        arn: str,
        token: str,
        *,
        limits: BatchLimits,
        retry: ApiRetry,
    ) -> None:
        self.client = client
        self.arn = arn
        self.token: str | None = token
        self.limits = limits
        self.retry = retry
        self.calls = 0

    def get_state_pages(self, marker: str) -> dict[str, Operation]:
        """Every operation of the state pages from ``marker`` on.

        A page that cannot be read -- refused, answered without its required
        ``Operations``, or a marker chain that loops -- raises a retryable
        :class:`StoreError`: replaying without the whole log would run recorded
        operations again, and reading state has no side effect, so the
        invocation ends and Lambda retries it with a fresh event.
        """
        out: dict[str, Operation] = {}
        seen: set[str] = set()
        while marker:
            if self.token is None:
                raise TokenRevoked
            if marker in seen:
                raise StoreError(
                    f"GetDurableExecutionState returned marker {marker!r:.80} twice; the "
                    "state pages loop, so the log cannot be read whole. The invocation "
                    "ends so that Lambda retries it",
                    retryable=True,
                )
            seen.add(marker)
            try:
                resp = call_api(
                    "GetDurableExecutionState",
                    self.client.get_durable_execution_state,
                    self.retry,
                    DurableExecutionArn=self.arn,
                    CheckpointToken=self.token,
                    Marker=marker,
                    MaxItems=self.limits.state_page_size,
                )
            except StoreError as e:
                if e.retryable:
                    raise
                raise StoreError(
                    f"{e}; a page of the execution's state could not be read (marker "
                    f"{marker!r:.80}), and replaying without it would run recorded "
                    "operations again. The invocation ends so that Lambda retries it",
                    retryable=True,
                ) from e
            if resp.get("Operations") is None:
                raise StoreError(
                    f"GetDurableExecutionState answered the page at marker {marker!r:.80} "
                    "without Operations; replaying without it would run recorded "
                    "operations again. The invocation ends so that Lambda retries it",
                    retryable=True,
                )
            out.update(parse_operations(_list(resp, "Operations")))
            marker = _marker(resp)
        return out

    def checkpoint(self, updates: list[OperationUpdate]) -> dict[str, Operation]:
        """Make ``updates`` durable, in order; returns the merged deltas.

        Raises :class:`TokenRevoked` when the service ends the token (a response
        without ``CheckpointToken`` to a batch that did not finish the execution).
        """
        delta: dict[str, Operation] = {}
        if not updates:
            return delta
        for batch in split_batches(updates, self.limits):
            if self.token is None:
                raise TokenRevoked
            finishing = batch[-1].type is OperationType.EXECUTION
            resp = call_api(
                "CheckpointDurableExecution",
                self.client.checkpoint_durable_execution,
                self.retry,
                DurableExecutionArn=self.arn,
                CheckpointToken=self.token,
                ClientToken=uuid.uuid4().hex,
                Updates=[u.to_dict() for u in batch],
            )
            self.calls += 1
            new_token = resp.get("CheckpointToken")
            self.token = new_token if isinstance(new_token, str) and new_token else None
            state = resp.get("NewExecutionState") or {}
            delta.update(parse_operations(_list(state, "Operations")))
            marker = _marker(state)
            if self.token is None:
                if finishing:
                    return delta
                raise TokenRevoked
            if marker:
                delta.update(self.get_state_pages(marker))
        return delta


def _list(resp: Mapping[str, Any], key: str) -> list[Any]:
    v = resp.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise StoreError(f"the durable API answered with a {key} that is not a list: {v!r:.80}")
    return v


def _marker(resp: Mapping[str, Any]) -> str:
    m = resp.get("NextMarker")
    if m is None or m == "":
        return ""
    if not isinstance(m, str):
        raise StoreError(f"the durable API answered with a non-string NextMarker: {m!r:.80}")
    return m
