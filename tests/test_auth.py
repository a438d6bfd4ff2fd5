"""``durable-gen serve --token``: a bearer token, or SigV4 made with the token (boto3, AWS CLI)."""

from __future__ import annotations

import calendar
import http.client
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from durable_gen import Step
from durable_gen._http.auth import (
    AuthError,
    check_request,
)
from durable_gen._http.serve import make_server
from tests._procs import keep

T = "the-server-token-" + "x" * 8
HOST = "127.0.0.1:8123"
ARN_PATH = (
    "/2025-12-01/durable-executions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction"
    "%3Afn%3A%24LATEST%2Fdurable-execution%2Fx%2Fx/history"
)
INVOKE_PATH = "/2015-03-31/functions/double/invocations"


def double(event: Any) -> Any:
    return (yield Step(lambda x: x * 2, event["n"], name="double"))


# ---------------------------------------------------------------- check_request


def _headers(pairs: list[tuple[str, str]]) -> Message:
    raw = "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n"
    return http.client.parse_headers(io.BytesIO(raw.encode("latin-1")))


def sign(
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = T,
) -> dict[str, Any]:
    """check_request's arguments for a request botocore's own SigV4 signer signed."""
    request = AWSRequest(
        method=method, url=f"http://{HOST}{target}", data=body, headers=headers or {}
    )
    SigV4Auth(Credentials("ANYKEY", secret), "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    pairs = [("Host", HOST), *prepared.headers.items()]
    return {
        "method": method,
        "target": target,
        "headers": _headers(pairs),
        "body": body,
        "token": T,
        "now": time.time(),
    }


def with_headers(kw: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    """``kw`` with headers set (a str) or removed (None); ``_`` in a name is ``-``."""
    pairs = list(kw["headers"].items())
    for name, value in changes.items():
        header = name.replace("_", "-")
        pairs = [(k, v) for k, v in pairs if k.lower() != header.lower()]
        if value is not None:
            pairs.append((header, value))
    return {**kw, "headers": _headers(pairs)}


def refused(kw: dict[str, Any]) -> AuthError:
    with pytest.raises(AuthError) as e:
        check_request(**kw)
    assert T not in e.value.message
    return e.value


def test_botocore_signed_requests_are_accepted():
    check_request(**sign("GET", "/2025-12-01/functions/double/durable-executions?MaxItems=5"))
    check_request(
        **sign(
            "GET",
            "/2025-12-01/functions/double/durable-executions"
            "?Statuses=RUNNING&Statuses=FAILED&Marker=a%20b%2Bc%2F%3A~&MaxItems=5",
        )
    )
    check_request(
        **sign(
            "POST",
            INVOKE_PATH,
            b'{"n": 21, "text": "\xc3\xa9t\xc3\xa9"}',
            {"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
        )
    )
    # an ARN in a path segment (':', '/' and '$' percent-encoded): signed encoded once more
    check_request(**sign("GET", ARN_PATH))
    check_request(**sign("POST", ARN_PATH.replace("/history", "/stop"), b"{}"))
    # header values are signed trimmed, with runs of spaces collapsed
    check_request(**sign("POST", INVOKE_PATH, b"{}", {"X-Custom": "  a   b  c "}))


def test_unsigned_headers_may_change_and_x_amz_content_sha256_is_checked():
    kw = sign("POST", INVOKE_PATH, b'{"n": 1}')
    check_request(**with_headers(kw, User_Agent="another/1.0", X_Extra="not signed"))
    import hashlib

    right = hashlib.sha256(b'{"n": 1}').hexdigest()
    kw = sign("POST", INVOKE_PATH, b'{"n": 1}', {"X-Amz-Content-SHA256": right})
    check_request(**kw)
    e = refused({**kw, "body": b'{"n": 2}'})
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith("X-Amz-Content-SHA256 is not the SHA-256 of the request body")
    kw = sign("POST", INVOKE_PATH, b"{}", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    e = refused(kw)
    assert (e.status, e.code) == (403, "IncompleteSignatureException")
    assert e.message.startswith(
        "X-Amz-Content-SHA256 is 'UNSIGNED-PAYLOAD': this server needs the payload signed"
    )


MISMATCH = "the request signature does not match the one calculated for it: sign with "


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda kw: {**kw, "body": b'{"n": 22}'}, id="body changed"),
        pytest.param(
            lambda kw: with_headers(kw, X_Amz_Invocation_Type="RequestResponse"),
            id="signed header changed",
        ),
        pytest.param(lambda kw: with_headers(kw, Host="127.0.0.1:8124"), id="host changed"),
        pytest.param(
            lambda kw: {**kw, "target": kw["target"].replace("double", "triple")},
            id="path changed",
        ),
        pytest.param(
            lambda kw: {**kw, "target": kw["target"].replace("a=1", "a=2")}, id="query changed"
        ),
        pytest.param(
            lambda kw: {**kw, "target": kw["target"] + "&b=2"}, id="query parameter added"
        ),
        pytest.param(lambda kw: {**kw, "method": "PUT"}, id="method changed"),
        pytest.param(lambda kw: {**kw, "token": T + "-other"}, id="wrong secret"),
        pytest.param(
            lambda kw: with_headers(
                kw,
                Authorization=kw["headers"]["Authorization"].rsplit("=", 1)[0]
                + "="
                + secrets.token_hex(32),
            ),
            id="forged signature",
        ),
        pytest.param(
            lambda kw: with_headers(
                kw,
                Authorization=kw["headers"]["Authorization"].replace("/us-east-1/", "/eu-west-1/"),
            ),
            id="region changed",
        ),
    ],
)
def test_a_tampered_request_is_refused(tamper):
    kw = sign(
        "POST",
        INVOKE_PATH + "?a=1",
        b'{"n": 21}',
        {"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
    )
    check_request(**kw)
    e = refused(tamper(kw))
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith(MISMATCH)
    assert "AWS_SECRET_ACCESS_KEY set to the token `durable-gen serve` was started with" in (
        e.message
    )


def test_a_signature_made_with_another_secret_is_refused():
    e = refused(sign("GET", ARN_PATH, secret="not-the-token"))
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith(MISMATCH)


def test_a_signed_header_the_request_lacks_is_refused():
    kw = sign("POST", INVOKE_PATH, b"{}", {"X-Amz-Invocation-Type": "Event"})
    e = refused(with_headers(kw, X_Amz_Invocation_Type=None))
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith(
        "SignedHeaders names 'x-amz-invocation-type', which the request does not carry"
    )


@pytest.mark.parametrize(
    ("shift", "prefix"),
    [
        (360, "Signature expired: "),
        (-360, "Signature not yet current: "),
    ],
)
def test_a_skewed_clock_is_refused(shift, prefix):
    kw = sign("GET", ARN_PATH)
    signed_at = calendar.timegm(time.strptime(kw["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    check_request(**{**kw, "now": signed_at + 300})
    check_request(**{**kw, "now": signed_at - 300})
    e = refused({**kw, "now": signed_at + shift})
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith(prefix)

    def amz(epoch: int) -> str:
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))

    signed, now = amz(signed_at), amz(signed_at + shift)
    if shift > 0:
        assert e.message.startswith(
            f"Signature expired: {signed} is now earlier than {amz(signed_at + 60)} "
            f"({now} - 5 min.); the request was signed 360 s ago"
        )
    else:
        assert e.message.startswith(
            f"Signature not yet current: {signed} is still later than {amz(signed_at - 60)} "
            f"({now} + 5 min.); the request is dated 360 s ahead"
        )
    ago = "ago" if shift > 0 else "ahead of this server's clock"
    assert f"360 s {ago}" in e.message
    assert "more than the 300 s allowed: check the client's clock" in e.message


def test_the_credential_date_must_be_the_x_amz_date_day():
    kw = sign("GET", ARN_PATH)
    day = kw["headers"]["X-Amz-Date"][:8]
    other = "19990101"
    e = refused(with_headers(kw, Authorization=kw["headers"]["Authorization"].replace(day, other)))
    assert (e.status, e.code) == (403, "InvalidSignatureException")
    assert e.message.startswith(
        f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: '{other}' != '{day}'"
    )


@pytest.mark.parametrize(
    ("change", "prefix"),
    [
        (
            lambda a: a.replace("SignedHeaders=host;", "SignedHeaders="),
            "SignedHeaders must include 'host'",
        ),
        (
            lambda a: a.replace(";x-amz-date", ""),
            "SignedHeaders must include 'x-amz-date'",
        ),
        (
            lambda a: a.split(", Signature=")[0],
            "the AWS4-HMAC-SHA256 Authorization header lacks Signature=",
        ),
        (
            lambda a: a.replace("/aws4_request", ""),
            "Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request",
        ),
        (
            lambda a: a.replace("Credential=", "Credentials="),
            "the AWS4-HMAC-SHA256 Authorization header must be 'Credential=..., "
            "SignedHeaders=..., Signature=...'; it has a part 'Credentials'",
        ),
        (
            lambda a: a + ", Signature=" + "0" * 64,
            "the AWS4-HMAC-SHA256 Authorization header has Signature= twice",
        ),
        (
            lambda a: a[:-10],
            "Signature must be 64 hexadecimal digits",
        ),
        (lambda a: "AWS4-HMAC-SHA256", "the AWS4-HMAC-SHA256 Authorization header must be"),
    ],
)
def test_a_malformed_authorization_header_is_incomplete(change, prefix):
    kw = sign("GET", ARN_PATH)
    e = refused(with_headers(kw, Authorization=change(kw["headers"]["Authorization"])))
    assert (e.status, e.code) == (403, "IncompleteSignatureException")
    assert e.message.startswith(prefix)
    assert e.message.endswith(
        "; sign the request with an AWS SDK or the AWS CLI, or send 'Authorization: Bearer <token>'"
    )


@pytest.mark.parametrize("date", [None, "2026-12-06T03:31:14Z", "20261341T000000Z"])
def test_a_missing_or_bad_x_amz_date_is_incomplete(date):
    kw = sign("GET", ARN_PATH)
    e = refused(with_headers(kw, X_Amz_Date=date))
    assert (e.status, e.code) == (403, "IncompleteSignatureException")
    assert e.message.startswith(("the request needs one X-Amz-Date header", "X-Amz-Date "))


FIX = (
    "; send 'Authorization: Bearer <token>', or sign the request with AWS Signature Version 4 "
    "(as boto3 and the AWS CLI do) with AWS_SECRET_ACCESS_KEY set to the token "
    "`durable-gen serve` was started with (--token or DURABLE_GEN_TOKEN; any access key id "
    "and region)"
)


def _plain(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "method": "GET",
        "target": "/2025-12-01/functions/double/durable-executions",
        "headers": _headers([("Host", HOST), *pairs]),
        "body": b"",
        "token": T,
        "now": time.time(),
    }


def test_bearer_tokens_and_unsigned_requests():
    check_request(**_plain(("Authorization", f"Bearer {T}")))
    check_request(**_plain(("Authorization", f"bearer  {T} ")))
    cases = [
        ((), "this server was started with a token and the request has none"),
        ((("Authorization", "Bearer wrong"),), "the bearer token is not the one"),
        ((("Authorization", "Bearer"),), "the bearer token is not the one"),
        ((("Authorization", f"Bearer {T}x"),), "the bearer token is not the one"),
        ((("Authorization", "Basic dXNlcjpwYXNz"),), "the Authorization scheme 'Basic' is not"),
        (
            (("Authorization", f"Bearer {T}"), ("Authorization", f"Bearer {T}")),
            "the request has 2 Authorization headers; send one",
        ),
    ]
    for pairs, prefix in cases:
        e = refused(_plain(*pairs))
        assert (e.status, e.code) == (401, "UnauthorizedException")
        assert e.message.startswith(prefix)
        assert e.message.endswith(FIX)
        assert "dXNlcjpwYXNz" not in e.message


def test_a_signed_request_with_a_second_authorization_header_is_refused():
    kw = sign("GET", ARN_PATH)
    pairs = [*kw["headers"].items(), ("Authorization", f"Bearer {T}")]
    e = refused({**kw, "headers": _headers(pairs)})
    assert (e.status, e.code) == (401, "UnauthorizedException")
    assert e.message.startswith("the request has 2 Authorization headers")


# ---------------------------------------------------------------- a real server


def _serve(tmp_path: Path, token: str | None) -> Any:
    server = make_server(
        "127.0.0.1",
        0,
        db=str(tmp_path / "x.db"),
        functions={"double": "tests.test_auth:double"},
        token=token,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def served(tmp_path):
    server = _serve(tmp_path, T)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_server(tmp_path):
    server = _serve(tmp_path, None)
    yield server
    server.shutdown()
    server.server_close()


def _url(server: Any) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


def _client(server: Any, secret: str = T) -> Any:
    return keep(
        boto3.client(
            "lambda",
            endpoint_url=_url(server),
            region_name="us-east-1",
            aws_access_key_id="anything",
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )
    )


def _get(server: Any, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(_url(server) + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), json.loads(e.read())


def test_boto3_signs_with_the_token(served):
    lam = _client(served)
    out = lam.invoke(
        FunctionName="double", Payload=json.dumps({"n": 21}), DurableExecutionName="b1"
    )
    assert out["StatusCode"] == 200
    assert json.loads(out["Payload"].read()) == 42
    arn = out["DurableExecutionArn"]
    assert {"/", ":", "$"} <= set(arn)  # every character the path must encode
    desc = lam.get_durable_execution(DurableExecutionArn=arn)
    assert desc["Status"] == "SUCCEEDED"
    assert json.loads(desc["Result"]) == 42
    page = lam.get_durable_execution_history(DurableExecutionArn=arn, MaxItems=1)
    assert len(page["Events"]) == 1
    listed = lam.list_durable_executions_by_function(FunctionName="double", Statuses=["SUCCEEDED"])
    assert [e["DurableExecutionArn"] for e in listed["DurableExecutions"]] == [arn]


def _aws() -> str:
    beside = Path(sys.executable).parent / "aws"
    found = str(beside) if beside.exists() else shutil.which("aws")
    assert found, "the AWS CLI is not installed: pip install awscli (it is in the test extra)"
    return found


def test_the_aws_cli_signs_with_the_token(served, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": "anything",
        "AWS_SECRET_ACCESS_KEY": T,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    (tmp_path / "in.json").write_text('{"n": 4}')

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_aws(), "lambda", *args, "--endpoint-url", _url(served)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = aws(
        "invoke",
        "--function-name",
        "double",
        "--durable-execution-name",
        "cli1",
        "--payload",
        f"fileb://{tmp_path / 'in.json'}",
        str(tmp_path / "out.json"),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == 8
    arn = json.loads(done.stdout)["DurableExecutionArn"]
    done = aws("get-durable-execution", "--durable-execution-arn", arn)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Status"] == "SUCCEEDED"

    env["AWS_SECRET_ACCESS_KEY"] = "not-the-token"
    done = aws("get-durable-execution", "--durable-execution-arn", arn)
    assert done.returncode != 0
    assert "(InvalidSignatureException)" in done.stderr
    assert T not in done.stderr


def test_a_bearer_token_works_with_urllib(served):
    path = "/2025-12-01/functions/double/durable-executions"
    status, _, body = _get(served, path, {"Authorization": f"Bearer {T}"})
    assert (status, body) == (200, {"DurableExecutions": []})


def test_requests_without_the_token_are_refused(served):
    path = "/2025-12-01/functions/double/durable-executions"
    status, headers, body = _get(served, path, {})
    assert status == 401
    assert headers["x-amzn-ErrorType"] == "UnauthorizedException"
    assert body["__type"] == "UnauthorizedException"
    assert body["message"].startswith(
        "this server was started with a token and the request has none; send "
        "'Authorization: Bearer <token>', or sign"
    )
    status, headers, body = _get(served, path, {"Authorization": "Bearer wrong"})
    assert (status, body["__type"]) == (401, "UnauthorizedException")

    with pytest.raises(ClientError) as e:
        _client(served, secret="another-secret").list_durable_executions_by_function(
            FunctionName="double"
        )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["Error"]["Message"].startswith(MISMATCH)

    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    forged = {
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKID/{amz_date[:8]}/us-east-1/lambda/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature={secrets.token_hex(32)}",
    }
    status, headers, body = _get(served, path, forged)
    assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    assert body["message"].startswith(MISMATCH)
    status, _, body = _get(served, path, {**forged, "Authorization": "AWS4-HMAC-SHA256 x"})
    assert (status, body["__type"]) == (403, "IncompleteSignatureException")


def test_a_refusal_before_the_body_is_read_closes_the_connection(served):
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", INVOKE_PATH, body=b'{"n": 1}')
        resp = conn.getresponse()
        resp.read()
        assert (resp.status, resp.getheader("Connection")) == (401, "close")
    finally:
        conn.close()
    # a SigV4 request's body is read before it is checked: the connection stays open
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        kw = sign("POST", INVOKE_PATH, b'{"n": 1}', secret="another-secret")
        headers = {k: v for k, v in kw["headers"].items() if k.lower() != "host"}
        conn.request("POST", INVOKE_PATH, body=b'{"n": 1}', headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert (resp.status, resp.getheader("Connection")) == (403, None)
        conn.request(
            "GET",
            "/2025-12-01/functions/double/durable-executions",
            headers={"Authorization": f"Bearer {T}"},
        )
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (200, {"DurableExecutions": []})
    finally:
        conn.close()


def test_without_a_token_everything_is_let_in(open_server):
    path = "/2025-12-01/functions/double/durable-executions"
    assert _get(open_server, path, {})[0] == 200
    assert _get(open_server, path, {"Authorization": "Bearer whatever"})[0] == 200
    assert _get(open_server, path, {"Authorization": "AWS4-HMAC-SHA256 junk"})[0] == 200
    out = _client(open_server, secret="any").invoke(
        FunctionName="double", Payload=json.dumps({"n": 5})
    )
    assert json.loads(out["Payload"].read()) == 10
