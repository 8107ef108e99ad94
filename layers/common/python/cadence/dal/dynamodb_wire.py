"""DynamoDB's bulk calls (BatchWriteItem, BatchGetItem) sent as bodies this module encodes, signs and posts.

Why: a botocore client spends about 1 ms of CPU on every call before the request leaves (endpoint rules, the
user agent rebuilt per request, parameter walks, eight layers of events), which at 25 items a call was most
of ingest's CPU per row (`make bench` ingest-cpu). DynamoDB's protocol is one JSON body per POST, so a bulk
call here is: the body encoded by `json` (C), a SigV4 signature (cadence.dal.sigv4, equal to botocore's
header for header; 19 µs a call where botocore's SigV4Auth took 112), and one HTTP send through botocore's
connection pool.

What stays botocore's: credentials (the session's provider chain, refreshed as they near expiry), the
endpoint (the client's resolved URL, AWS_ENDPOINT_URL included), proxies and CA bundle from the environment,
and the client's `before-send` event, which is emitted for every request as botocore does: moto's mock_aws
and the bench's stubbed DynamoDB answer these requests as they answer the client's own.

Retries: both operations are idempotent (whole-item puts and deletes, reads), so throttling, 5xx answers, a
response failing its CRC32 and network failures are retried, with full-jitter exponential backoff, up to
ATTEMPTS sends, as the clients' own retry mode would; the last failure is raised as the domain's error.
"""

import json
import os
import random
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import boto3
import botocore
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

from cadence.dal import clients, sigv4
from cadence.errors import TransientError

ATTEMPTS = 8
_BACKOFF_BASE_SECONDS = 0.05
_BACKOFF_CAP_SECONDS = 20.0
_CONNECT_SECONDS = 5
_READ_SECONDS = 30
# Enough for ingest's parallel writers (INGEST_WRITE_WORKERS) and the scans beside them.
_POOL_CONNECTIONS = 32
_TARGET_PREFIX = "DynamoDB_20120810."
_USER_AGENT = f"cadence-bulk botocore/{botocore.__version__}"


@dataclass(frozen=True)
class _Wire:
    url: str  # the endpoint with DynamoDB's one path, "/"
    host: str  # the Host header the URL gives, as signed
    region: str
    events: Any
    credentials: Any
    http: URLLib3Session


@lru_cache(maxsize=4)
def _wire_of(client: Any) -> _Wire:
    """The connection beside the container's DynamoDB client, built once per client (tests rebuild clients)."""
    credentials = boto3.session.Session().get_credentials()
    # A CA bundle path and a (connect, read) pair are what botocore's own endpoint passes; the stubs say less.
    http = URLLib3Session(
        verify=os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE") or True,  # type: ignore[arg-type]
        proxies=get_environ_proxies(client.meta.endpoint_url),
        timeout=(_CONNECT_SECONDS, _READ_SECONDS),  # type: ignore[arg-type]
        max_pool_connections=_POOL_CONNECTIONS,
    )
    url = client.meta.endpoint_url.rstrip("/") + "/"
    return _Wire(url, sigv4.host_of(url), client.meta.region_name, client.meta.events, credentials, http)


def call(operation: str, request: Mapping[str, Any] | str, *, action: str) -> dict[str, Any]:
    """DynamoDB's answer to `operation` with `request` (the operation's low-level JSON shape, or its JSON text),
    retried as above.

    Raises:
        ThrottledError / TransientError: DynamoDB throttled or failed, or the network did, on every attempt.
        PermanentError: DynamoDB refused the request (a ValidationException, a missing table).
    """
    body = (request if isinstance(request, str) else json.dumps(request, separators=(",", ":"))).encode()
    wire = _wire_of(clients.client("dynamodb"))
    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        try:
            response = _send(wire, operation, body)
        except clients.NETWORK_ERRORS as exc:
            if last:
                raise TransientError(f"{action}: {type(exc).__name__}") from exc
        else:
            answer = _answer(operation, response)
            if not isinstance(answer, ClientError):
                return answer
            if last or not clients.is_transient(answer):
                raise clients.translate(answer, action) from answer
        time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))  # noqa: S311
    raise AssertionError("unreachable: the last attempt returns or raises")


def _send(wire: _Wire, operation: str, body: bytes) -> AWSResponse:
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": _TARGET_PREFIX + operation,
        "User-Agent": _USER_AGENT,
        "Accept-Encoding": "identity",
    }
    signed = sigv4.sign_post(
        _frozen(wire.credentials),
        service="dynamodb",
        region=wire.region,
        host=wire.host,
        headers=headers,
        body=body,
        now=datetime.now(UTC),
    )
    signed["Content-Length"] = str(len(body))  # after signing, as botocore's prepare adds it
    # HeadersDict (case-insensitive) is what botocore's own prepare gives; its stubs name HTTPHeaders.
    prepared = AWSPreparedRequest("POST", wire.url, HeadersDict(signed), body, stream_output=False)  # type: ignore[arg-type]
    _, answered = wire.events.emit_until_response(f"before-send.dynamodb.{operation}", request=prepared)
    if answered is not None:
        return answered  # type: ignore[no-any-return]
    return wire.http.send(prepared)


def _frozen(credentials: Any) -> Credentials:
    if credentials is None:
        raise NoCredentialsError
    return credentials.get_frozen_credentials()  # type: ignore[no-any-return]


def _answer(operation: str, response: AWSResponse) -> dict[str, Any] | ClientError:
    """The parsed answer, or the error DynamoDB gave as botocore would raise it (a damaged answer is a 5xx)."""
    content = response.content
    status = response.status_code
    expected_crc = response.headers.get("x-amz-crc32")
    if expected_crc is not None and zlib.crc32(content) != int(expected_crc):
        return _error(operation, 500, "CRC32CheckFailed", "the answer's CRC32 did not match its body")
    try:
        parsed = json.loads(content) if content else {}
    except ValueError:
        return _error(operation, 500, "UnparsableAnswer", "the answer was not JSON")
    if status == 200:
        return dict(parsed)
    code = str(parsed.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
    return _error(operation, status, code, str(parsed.get("message") or parsed.get("Message") or ""))


def _error(operation: str, status: int, code: str, message: str) -> ClientError:
    answer = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(answer, operation)  # type: ignore[arg-type]
