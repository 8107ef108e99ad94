"""Signed one-click unsubscribe links (RFC 8058): who asked to stop, on which channel, from which campaign run.

A token is `v1.<payload>.<signature>`: the payload is base64url JSON of the customer id, channel, campaign, run and
expiry; the signature is HMAC-SHA256 over `v1.<payload>` under the stack's secret key. Nothing in it is encrypted
(it names a customer id, never an address): what matters is that no one can make or alter a token for someone else,
and that a link from an old email stops working once it expired. Pure code: the key is read by cadence.dal.secrets.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

_VERSION = "v1"
# Mail clients and list providers act on a List-Unsubscribe link long after the send; a year covers the re-sends
# and late clicks we expect while keeping a leaked link from working for ever.
DEFAULT_VALIDITY = timedelta(days=365)


class InvalidTokenError(ValueError):
    """The token is malformed, its signature does not match, or it has expired."""


@dataclass(frozen=True)
class UnsubscribeClaims:
    """What a token asks for: stop `channel` for `customer_id`, asked from a message of that campaign run."""

    customer_id: str
    channel: str
    campaign_id: str
    run_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())


def sign(key: bytes, claims: UnsubscribeClaims) -> str:
    """The token for these claims under `key`."""
    payload = {
        "c": claims.customer_id,
        "ch": claims.channel,
        "cp": claims.campaign_id,
        "r": claims.run_id,
        "exp": int(claims.expires_at.timestamp()),
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_VERSION}.{body}"
    return f"{signed}.{_signature(key, signed)}"


def verify(key: bytes, token: str, now: datetime) -> UnsubscribeClaims:
    """The claims of a token made under `key` that has not expired at `now`.

    Raises:
        InvalidTokenError: malformed, signed with another key or altered, or expired.
    """
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise InvalidTokenError("malformed token")
    signed = f"{parts[0]}.{parts[1]}"
    # Compared in constant time, and before the payload is parsed: nothing of an unsigned payload is trusted.
    if not hmac.compare_digest(_signature(key, signed), parts[2]):
        raise InvalidTokenError("bad signature")
    try:
        payload = json.loads(_unb64(parts[1]))
        expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo)
        claims = UnsubscribeClaims(
            customer_id=str(payload["c"]),
            channel=str(payload["ch"]),
            campaign_id=str(payload["cp"]),
            run_id=str(payload["r"]),
            expires_at=expires_at,
        )
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidTokenError("malformed token") from exc
    if claims.expires_at <= now:
        raise InvalidTokenError("expired token")
    return claims


def link(base_url: str, token: str) -> str:
    """The unsubscribe URL carrying the token (the endpoint answers both the click and the one-click POST)."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode({'token': token})}"
