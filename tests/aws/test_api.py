"""Error classification and batch splitting of the checkpoint API layer."""

import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from durable_gen import OperationAction, OperationType, OperationUpdate
from durable_gen.aws import BatchLimits, PayloadTooLargeError
from durable_gen.aws._api import classify, split_batches

from .proxy import client_error


def no_status(code, message):
    err = client_error(400, code, message, "Checkpoint")
    del err.response["ResponseMetadata"]
    return err


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error(429, "TooManyRequestsException", "slow", "C"), "transient"),
        (client_error(400, "ThrottlingException", "slow", "C"), "transient"),
        (client_error(500, "ServiceException", "boom", "C"), "transient"),
        (client_error(503, "503", "unavailable", "C"), "transient"),
        (no_status("502", "bad gateway"), "transient"),
        (
            client_error(400, "InvalidParameterValueException", "Invalid checkpoint token", "C"),
            "stale-token",
        ),
        (client_error(400, "400", "Invalid checkpoint token", "C"), "stale-token"),  # emulator
        (client_error(400, "400", "Cannot checkpoint multiple EXECUTION updates.", "C"), "fatal"),
        (client_error(404, "ResourceNotFoundException", "no execution", "C"), "fatal"),
        (client_error(403, "AccessDeniedException", "denied", "C"), "fatal"),
        (client_error(502, "KMSDisabledException", "key disabled", "C"), "fatal"),
        (EndpointConnectionError(endpoint_url="http://x"), "transient"),
        (ConnectTimeoutError(endpoint_url="http://x"), "transient"),
        (ReadTimeoutError(endpoint_url="http://x"), "transient"),
        (NoCredentialsError(), "fatal"),
        (ValueError("not botocore"), "unknown"),
    ],
)
def test_classify(exc, kind):
    assert classify(exc) == kind


def upd(op_id, action="START", type_="STEP", payload=None):
    return OperationUpdate(
        id=op_id,
        type=OperationType(type_),
        action=OperationAction(action),
        name="n",
        sub_type="Step" if type_ == "STEP" else None,
        payload=payload,
    )


def actions(batches):
    return [[(u.id, u.action.value) for u in b] for b in batches]


def test_start_and_one_more_action_share_a_batch_but_not_a_third():
    ups = [upd("a"), upd("a", "RETRY"), upd("a", "START"), upd("a", "SUCCEED")]
    assert actions(split_batches(ups, BatchLimits())) == [
        [("a", "START"), ("a", "RETRY")],
        [("a", "START"), ("a", "SUCCEED")],
    ]


def test_an_id_whose_first_update_is_not_start_is_not_repeated():
    ups = [upd("a", "SUCCEED"), upd("b"), upd("a", "FAIL")]
    assert actions(split_batches(ups, BatchLimits())) == [
        [("a", "SUCCEED"), ("b", "START")],
        [("a", "FAIL")],
    ]


def test_wait_start_is_not_followed_by_its_own_update_in_a_batch():
    ups = [upd("w", "START", "WAIT"), upd("w", "CANCEL", "WAIT")]
    assert len(split_batches(ups, BatchLimits())) == 2


def test_count_limit_and_execution_update_last():
    ups = [upd(str(i)) for i in range(5)] + [upd("exec", "SUCCEED", "EXECUTION", "1")]
    batches = split_batches(ups, BatchLimits(max_updates=4))
    assert [len(b) for b in batches] == [4, 2]
    assert batches[-1][-1].type is OperationType.EXECUTION


def test_an_update_over_the_byte_limit_travels_alone():
    ups = [upd("a"), upd("b", "SUCCEED", payload="x" * 2000), upd("c")]
    assert actions(split_batches(ups, BatchLimits(max_bytes=1000))) == [
        [("a", "START")],
        [("b", "SUCCEED")],
        [("c", "START")],
    ]


def test_payload_limit_counts_utf8_bytes():
    ups = [upd("a", "SUCCEED", payload="é" * 600)]  # 1200 bytes, 600 characters
    with pytest.raises(PayloadTooLargeError, match=r"carries a 1,200-byte payload") as ei:
        split_batches(ups, BatchLimits(max_payload_bytes=1000))
    assert (ei.value.size, ei.value.limit, ei.value.operation_id) == (1200, 1000, "a")
    assert not ei.value.retryable


def test_no_updates_no_batches():
    assert split_batches([], BatchLimits()) == []


@pytest.mark.parametrize(
    "kwargs", [{"max_updates": 0}, {"max_bytes": 0}, {"state_page_size": 1001}]
)
def test_limits_are_validated(kwargs):
    with pytest.raises(ValueError, match="must be"):
        BatchLimits(**kwargs)
