"""Signed webhook deliveries (pure): what a webhook POST carries and how its receiver checks it came from us.

Each POST of the webhook channel (cadence.dispatch) carries, Stripe/Slack style:

- `X-Cadence-Timestamp`: unix seconds when it was signed;
- `X-Cadence-Signature`: `v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` over the exact body bytes;
- `X-Cadence-Delivery`: one id per send (run, batch, customer), the same on every retry, so a receiver that saw
  it already can drop the retry.

A receiver recomputes the signature with the stack's secret (WebhookSigningSecret) and refuses a body whose
signature differs or whose timestamp is more than a few minutes off its clock (a replayed capture). `verify` is
that check, for receivers written in Python and for the tests; the README shows the same in ten lines.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

TIMESTAMP_HEADER = "X-Cadence-Timestamp"
SIGNATURE_HEADER = "X-Cadence-Signature"
DELIVERY_HEADER = "X-Cadence-Delivery"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST, ready to sign: the JSON body's fields and the delivery id."""

    delivery_id: str
    event: str
    campaign_id: str
    run_id: str
    customer_id: str
    address: str
    text: str
    variant: str | None = None
    offer_value: str | None = None
    coupon_code: str | None = None

    def body(self) -> bytes:
        """The JSON body: compact, keys sorted, UTF-8 (the bytes that are signed and sent)."""
        fields = {
            "event": self.event,
            "delivery_id": self.delivery_id,
            "campaign_id": self.campaign_id,
            "run_id": self.run_id,
            "customer_id": self.customer_id,
            "address": self.address,
            "text": self.text,
            "variant": self.variant,
            "offer_value": self.offer_value,
            "coupon_code": self.coupon_code,
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def delivery_id(run_id: str, batch_id: str, customer_id: str) -> str:
    """The send's stable id: the same for every delivery of it (retries included), different for any other send."""
    # A unit separator between the parts: ("a", "b:c") and ("a:b", "c") cannot meet.
    return hashlib.sha256("\x1f".join((run_id, batch_id, customer_id)).encode()).hexdigest()[:32]


def _signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers of a body signed at `timestamp` (unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"{SCHEME}={_signature(secret, timestamp, body)}"}


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance_seconds: int = TOLERANCE_SECONDS
) -> bool:
    """Whether `body` was signed with `secret` no more than `tolerance_seconds` from `now` (header names in any case).

    The signature header may list several `v1=` values (comma-separated, e.g. during a secret's rotation): one
    matching is enough. Compared in constant time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = _signature(secret, timestamp, body)
    for part in lowered.get(SIGNATURE_HEADER.lower(), "").split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(expected.encode(), value.strip().encode()):
            return True
    return False
