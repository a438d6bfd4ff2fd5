"""Who may call ``durable-gen serve``: the bearer token, or AWS Signature Version 4 made with it.

A server started with a token accepts a request that carries either

- ``Authorization: Bearer <token>``, or
- an ``AWS4-HMAC-SHA256`` signature (AWS Signature Version 4, as boto3, the AWS CLI
  and every AWS SDK send it) made with the token as the secret access key. Any
  access key id, region and service are accepted: the key id only names the caller,
  and the signature is checked against the region and service of its own credential
  scope.

The signature is verified in full, as AWS does: the canonical request is rebuilt
from the method, the path (percent-encoded once more, as botocore and the SigV4
specification do for every service but S3; dot segments and repeated slashes
removed), the query (decoded, encoded again with only ``A-Za-z0-9-_.~`` left as
they are, sorted), the headers named by ``SignedHeaders`` (values trimmed,
whitespace runs collapsed, repeated headers joined with ``,``), ``SignedHeaders``
itself and the SHA-256 of the body (``X-Amz-Content-SHA256``, when sent, must be
that hash). ``host`` and ``x-amz-date`` must be signed, the credential scope's date
must be the day of ``X-Amz-Date``, and that time must be within 5 minutes of the
server's clock. Query-string (presigned URL) authentication is not supported.

Refusals carry Lambda's error codes; botocore reads ``x-amzn-ErrorType`` into
``ClientError.response["Error"]["Code"]``:

- 401 ``UnauthorizedException``: no credentials, a wrong bearer token, another
  ``Authorization`` scheme, or more than one ``Authorization`` header. None of the
  candidate codes is in Lambda's model or retried by botocore, so botocore surfaces
  any of them alike; 401 is HTTP's status for missing credentials and what this
  server has always answered, while API Gateway's 403
  ``MissingAuthenticationTokenException`` is also its answer to an unknown path and
  would mislead.
- 403 ``IncompleteSignatureException``: a malformed ``AWS4-HMAC-SHA256`` header
  (a missing or bad ``Credential``, ``SignedHeaders`` or ``Signature``; ``host`` or
  ``x-amz-date`` not signed; no usable ``X-Amz-Date``; an unsigned payload).
- 403 ``InvalidSignatureException``: the signature does not match, the body is not
  the one signed, the credential scope's date is not ``X-Amz-Date``'s day, or the
  signature is expired or not yet current (``Signature expired: ...``, as AWS says).

No message repeats the token or a credential that was sent.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import math
import re
import urllib.parse
from email.message import Message

__all__ = ["MAX_SKEW_SECONDS", "AuthError", "check_request", "signed_with_sigv4"]

#: Largest difference between ``X-Amz-Date`` and the server's clock (AWS's rule).
MAX_SKEW_SECONDS = 5 * 60

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_TEXT = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_DAY = re.compile(r"[0-9]{8}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_UNRESERVED = "-_.~"
_PARTS = ("Credential", "SignedHeaders", "Signature")
_FIX = (
    "send 'Authorization: Bearer <token>', or sign the request with AWS Signature "
    "Version 4 (as boto3 and the AWS CLI do) with AWS_SECRET_ACCESS_KEY set to the token "
    "`durable-gen serve` was started with (--token or DURABLE_GEN_TOKEN; any access key id "
    "and region)"
)


class AuthError(Exception):
    """A request refused for its credentials: the HTTP status, the error code and why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _unauthorized(what: str) -> AuthError:
    return AuthError(401, "UnauthorizedException", f"{what}; {_FIX}")


def _incomplete(what: str) -> AuthError:
    return AuthError(
        403,
        "IncompleteSignatureException",
        f"{what}; sign the request with an AWS SDK or the AWS CLI, or send "
        "'Authorization: Bearer <token>'",
    )


def _invalid(what: str) -> AuthError:
    return AuthError(403, "InvalidSignatureException", what)


def signed_with_sigv4(headers: Message) -> bool:
    """Whether the request's one ``Authorization`` header is an ``AWS4-HMAC-SHA256`` one.

    Such a request's signature covers its body, so it can only be checked once the
    body is read; any other request can be checked (and refused) before.
    """
    values = headers.get_all("Authorization") or []
    return len(values) == 1 and str(values[0]).strip().partition(" ")[0] == _ALGORITHM


def check_request(
    *, method: str, target: str, headers: Message, body: bytes, token: str, now: float
) -> None:
    """Return if the request carries the bearer ``token`` or a valid SigV4 signature made
    with it, else raise :class:`AuthError`.

    ``target`` is the request-target as received (path and ``?query``, percent-encoded
    as the client sent them), ``headers`` the request's headers, ``body`` its whole
    body and ``now`` the server's time in epoch seconds.
    """
    values = [str(v) for v in headers.get_all("Authorization") or []]
    if not values:
        raise _unauthorized("this server was started with a token and the request has none")
    if len(values) > 1:
        raise _unauthorized(f"the request has {len(values)} Authorization headers; send one")
    scheme, _, credentials = values[0].strip().partition(" ")
    if scheme.lower() == "bearer":
        if not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            raise _unauthorized("the bearer token is not the one this server was started with")
        return
    if scheme != _ALGORITHM:
        raise _unauthorized(
            f"the Authorization scheme {scheme[:40]!r} is not supported (only Bearer and "
            f"{_ALGORITHM})"
        )
    _check_sigv4(
        method=method,
        target=target,
        headers=headers,
        body=body,
        token=token,
        now=now,
        credentials=credentials,
    )


def _check_sigv4(
    *,
    method: str,
    target: str,
    headers: Message,
    body: bytes,
    token: str,
    now: float,
    credentials: str,
) -> None:
    fields: dict[str, str] = {}
    for part in credentials.split(","):
        key, eq, value = part.strip().partition("=")
        if not eq or key not in _PARTS:
            raise _incomplete(
                f"the {_ALGORITHM} Authorization header must be 'Credential=..., "
                f"SignedHeaders=..., Signature=...'; it has a part {key[:40]!r}"
            )
        if key in fields:
            raise _incomplete(f"the {_ALGORITHM} Authorization header has {key}= twice")
        fields[key] = value.strip()
    missing = [k for k in _PARTS if k not in fields]
    if missing:
        raise _incomplete(f"the {_ALGORITHM} Authorization header lacks {' and '.join(missing)}=")
    scope = fields["Credential"].rsplit("/", 4)
    if (
        len(scope) != 5
        or not scope[0]
        or not _DAY.fullmatch(scope[1])
        or not scope[2]
        or not scope[3]
        or scope[4] != "aws4_request"
    ):
        raise _incomplete(
            "Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request, got one "
            f"of {len(scope)} parts"
        )
    _, day, region, service, _ = scope
    signed = fields["SignedHeaders"].split(";")
    if not all(_HEADER_NAME.fullmatch(name) for name in signed) or len(set(signed)) != len(signed):
        raise _incomplete("SignedHeaders must be distinct lower-case header names separated by ';'")
    for needed in ("host", "x-amz-date"):
        if needed not in signed:
            raise _incomplete(
                f"SignedHeaders must include {needed!r} (it has {';'.join(signed)!r:.200})"
            )
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise _incomplete("Signature must be 64 hexadecimal digits")

    dates = [str(v) for v in headers.get_all("X-Amz-Date") or []]
    if len(dates) != 1 or not _AMZ_DATE_TEXT.fullmatch(dates[0].strip()):
        raise _incomplete(
            "the request needs one X-Amz-Date header in ISO 8601 basic format (YYYYMMDDTHHMMSSZ)"
        )
    amz_date = dates[0].strip()
    try:
        signed_at = (
            datetime.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=datetime.UTC).timestamp()
        )
    except ValueError:
        raise _incomplete(f"X-Amz-Date {amz_date!r} is not a valid date and time") from None
    if day != amz_date[:8]:
        raise _invalid(
            f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: {day!r} != "
            f"{amz_date[:8]!r}, from {amz_date!r}; sign the request again"
        )
    skew = now - signed_at
    if abs(skew) > MAX_SKEW_SECONDS:
        server, limit = _amz(now), _amz(now + (-MAX_SKEW_SECONDS if skew > 0 else MAX_SKEW_SECONDS))
        if skew > 0:
            what = (
                f"Signature expired: {amz_date} is now earlier than {limit} ({server} - 5 min.); "
                f"the request was signed {math.ceil(skew)} s ago"
            )
        else:
            what = (
                f"Signature not yet current: {amz_date} is still later than {limit} ({server} "
                f"+ 5 min.); the request is dated {math.ceil(-skew)} s ahead of this server's clock"
            )
        raise _invalid(
            f"{what}, more than the {MAX_SKEW_SECONDS} s allowed: check the client's clock "
            "and sign the request again"
        )

    body_hash = hashlib.sha256(body).hexdigest()
    sent = [str(v).strip() for v in headers.get_all("X-Amz-Content-SHA256") or []]
    if sent:
        if len(sent) > 1:
            raise _incomplete("the request has more than one X-Amz-Content-SHA256 header")
        if sent[0] == "UNSIGNED-PAYLOAD" or sent[0].startswith("STREAMING-"):
            raise _incomplete(
                f"X-Amz-Content-SHA256 is {sent[0][:60]!r}: this server needs the payload "
                "signed (its SHA-256 in X-Amz-Content-SHA256, or the header left out)"
            )
        if sent[0] != body_hash:
            raise _invalid(
                "X-Amz-Content-SHA256 is not the SHA-256 of the request body: the body "
                "changed after signing, or the hash is wrong"
            )

    canonical_headers = []
    for name in signed:
        values = headers.get_all(name)
        if values is None:
            raise _invalid(
                f"SignedHeaders names {name!r}, which the request does not carry; sign the "
                "request as it is sent"
            )
        canonical_headers.append(f"{name}:{','.join(' '.join(str(v).split()) for v in values)}")
    path, _, query = target.partition("?")
    canonical_request = "\n".join(
        [
            method.upper(),
            _canonical_path(path),
            _canonical_query(query),
            "\n".join(canonical_headers) + "\n",
            ";".join(signed),
            body_hash,
        ]
    )
    credential_scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            _ALGORITHM,
            amz_date,
            credential_scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    signing_key = f"AWS4{token}".encode()
    for step in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, step.encode("utf-8"), hashlib.sha256).digest()
    expected = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), fields["Signature"].lower().encode()):
        raise _invalid(
            "the request signature does not match the one calculated for it: sign with "
            "AWS_SECRET_ACCESS_KEY set to the token `durable-gen serve` was started with "
            "(--token or DURABLE_GEN_TOKEN; any access key id and region), and send the "
            "request exactly as signed; or send 'Authorization: Bearer <token>'"
        )


def _amz(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime(_AMZ_DATE)


def _canonical_path(path: str) -> str:
    """The path as signed: dot segments and empty segments removed, then encoded again.

    The path is encoded as it arrived (``%3A`` becomes ``%253A``), as botocore's
    ``SigV4Auth`` and the SigV4 specification do for every service but S3.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return urllib.parse.quote(normalized, safe="/~")


def _canonical_query(query: str) -> str:
    """The query as signed: each name and value decoded, encoded again, the pairs sorted."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(text: str) -> str:
    return urllib.parse.quote(urllib.parse.unquote_to_bytes(text), safe=_UNRESERVED)
