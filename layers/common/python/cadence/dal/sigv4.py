"""AWS Signature Version 4 for one shape of request: a POST of a body to a service's root path, no query.

Why not botocore's `SigV4Auth`: it builds an email-message header map three times per request and derives
the signing key (four HMACs) every time; for DynamoDB's bulk calls that was most of the CPU a call costs
(`make bench` ingest-cpu). Here the key is derived once a day per secret, region and service, the
canonical header block of a set of headers is laid out once (only the date and token change), and the
headers are a plain dict. The result is the same, byte for byte: tests/unit/cadence/test_sigv4.py signs the
same requests with both at the same instant and compares every header.

The rules followed are botocore's: every header is signed except the hop-by-hop and tracing ones it leaves
out (its SIGNED_HEADERS_BLACKLIST, imported so the two lists cannot drift), `host` is added without a
default port, values have their runs of whitespace folded to one space, the payload is always hashed.
"""

import hashlib
import hmac
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

from botocore.auth import SIGNED_HEADERS_BLACKLIST

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FrozenCredentials(Protocol):
    access_key: str
    secret_key: str
    token: str | None


def sign_post(
    credentials: FrozenCredentials,
    *,
    service: str,
    region: str,
    host: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> dict[str, str]:
    """`headers` with X-Amz-Date, the session token (temporary credentials) and Authorization added.

    `host` is the Host header as sent (botocore's rule: lower case, the port only when not the scheme's
    default); `now` is the signing time in UTC.
    """
    timestamp = _timestamp(math.floor(now.timestamp())) if now.tzinfo is UTC else _fields(now)
    day = timestamp[:8]
    token = credentials.token or None
    base, canonical_headers, signed_names = _layout(host, tuple(headers.items()), token is not None)
    signed = dict(base)
    signed["X-Amz-Date"] = timestamp
    if token is not None:
        signed["X-Amz-Security-Token"] = token
    request = "\n".join(
        (
            "POST",
            "/",
            "",
            canonical_headers.format(date=timestamp, token=" ".join(token.split()) if token else ""),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = f"{_ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    key = _signing_key(credentials.secret_key, day, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed


@lru_cache(maxsize=4)
def _timestamp(seconds: int) -> str:
    """X-Amz-Date of a second since the epoch: made once a second, not per request (it cost 2.6 µs of a call)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def _fields(now: datetime) -> str:
    """X-Amz-Date of any datetime read as UTC (its fields written out)."""
    return f"{now.year:04d}{now.month:02d}{now.day:02d}T{now.hour:02d}{now.minute:02d}{now.second:02d}Z"


@lru_cache(maxsize=64)
def _layout(host: str, headers: tuple[tuple[str, str], ...], with_token: bool) -> tuple[dict[str, str], str, str]:
    """What a request's signing takes from headers that are the same call after call: the headers to send
    before the date and token are added, the canonical header block as a format string with {date} and {token}
    in their sorted places, and the signed names. Built once per set of headers (a bulk call's are constant)."""
    base = {name: value for name, value in headers if name.lower() not in {"authorization", "x-amz-date"}}
    if with_token:
        base.pop("X-Amz-Security-Token", None)
    dated = {**base, "X-Amz-Date": _DATE_MARK} | ({"X-Amz-Security-Token": _SESSION_MARK} if with_token else {})
    canonical = {name.lower(): " ".join(value.split()) for name, value in dated.items()}
    canonical = {name: value for name, value in canonical.items() if name not in _UNSIGNED}
    canonical.setdefault("host", host)
    names = sorted(canonical)
    block = "".join(f"{name}:{canonical[name]}\n" for name in names).replace("{", "{{").replace("}", "}}")
    return base, block.replace(_DATE_MARK, "{date}").replace(_SESSION_MARK, "{token}"), ";".join(names)


# Stand-ins for the values that change per request while the canonical block is laid out (no whitespace, no
# braces, nothing a header value holds).
_DATE_MARK = "\x00date\x00"
_SESSION_MARK = "\x00session\x00"


def host_of(url: str) -> str:
    """The Host header `url` gives: the host in lower case, an IPv6 one in brackets, a port unless the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


@lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
