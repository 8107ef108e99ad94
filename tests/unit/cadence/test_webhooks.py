"""Webhook signatures: a receiver accepts exactly what was signed with the secret, recently."""

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

from cadence import webhooks

SECRET = b"test-webhook-signing-key"
NOW = 1_795_000_000
BODY = webhooks.Delivery(
    delivery_id=webhooks.delivery_id("winback@2026-11-23T02:00:00Z", "webhook-20261123T0200Z-00000", "C1"),
    event="campaign_message",
    campaign_id="winback",
    run_id="winback@2026-11-23T02:00:00Z",
    customer_id="C1",
    address="oWx-openid-1",
    text="李, 10% off with ABC123",
    coupon_code="ABC123",
).body()


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    headers = webhooks.sign(SECRET, NOW, BODY)

    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {"X-Cadence-Timestamp": str(NOW), "X-Cadence-Signature": f"v1={expected}"}


def test_a_signed_body_verifies_with_any_header_case_within_the_tolerance() -> None:
    headers = {name.lower(): value for name, value in webhooks.sign(SECRET, NOW, BODY).items()}

    assert webhooks.verify(SECRET, headers, BODY, now=NOW + 299)
    assert webhooks.verify(SECRET, headers, BODY, now=NOW - 299)  # a receiver's clock a little behind


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        (SECRET, BODY.replace(b"ABC123", b"ABC124"), NOW),  # tampered body
        (SECRET, BODY + b" ", NOW),  # a byte added
        (SECRET, BODY, NOW + 301),  # signed too long ago: a replayed capture
        (SECRET, BODY, NOW - 301),
        (b"another-stack-secret", BODY, NOW),  # wrong secret
    ],
    ids=["tampered", "byte-added", "too-old", "from-the-future", "wrong-secret"],
)
def test_a_tampered_old_or_foreign_delivery_is_refused(secret: bytes, body: bytes, now: int) -> None:
    assert not webhooks.verify(secret, webhooks.sign(SECRET, NOW, BODY), body, now=now)


def test_a_changed_timestamp_is_refused_even_within_the_tolerance() -> None:
    headers = webhooks.sign(SECRET, NOW, BODY)

    headers["X-Cadence-Timestamp"] = str(NOW + 1)

    assert not webhooks.verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Cadence-Timestamp": "soon", "X-Cadence-Signature": "v1=00"},
        {"X-Cadence-Timestamp": str(NOW)},
        {"X-Cadence-Timestamp": str(NOW), "X-Cadence-Signature": "v0=" + "0" * 64},
        {"X-Cadence-Timestamp": str(NOW), "X-Cadence-Signature": "v1=é"},
    ],
)
def test_missing_or_malformed_headers_are_refused(headers: dict[str, str]) -> None:
    assert not webhooks.verify(SECRET, headers, BODY, now=NOW)


def test_one_matching_signature_of_several_is_enough_while_a_secret_rotates() -> None:
    old = webhooks.sign(b"old-secret", NOW, BODY)["X-Cadence-Signature"]
    new = webhooks.sign(SECRET, NOW, BODY)["X-Cadence-Signature"]

    headers = {"X-Cadence-Timestamp": str(NOW), "X-Cadence-Signature": f"{old}, {new}"}

    assert webhooks.verify(SECRET, headers, BODY, now=NOW)
    assert webhooks.verify(b"old-secret", headers, BODY, now=NOW)


def test_the_delivery_id_is_the_same_for_a_send_and_differs_between_sends() -> None:
    one = webhooks.delivery_id("run", "batch", "C1")

    assert one == webhooks.delivery_id("run", "batch", "C1")
    assert len({one, webhooks.delivery_id("run", "batch", "C2"), webhooks.delivery_id("run2", "batch", "C1")}) == 3
    assert webhooks.delivery_id("a", "b:c", "d") != webhooks.delivery_id("a:b", "c", "d")


def test_the_body_is_compact_utf8_json_with_every_field() -> None:
    fields = json.loads(BODY)

    assert set(fields) == {"event", "delivery_id", "campaign_id", "run_id", "customer_id", "address", "text",
                           "variant", "offer_value", "coupon_code"}  # fmt: skip
    assert fields["text"] == "李, 10% off with ABC123"
    assert "李".encode() in BODY  # not \\u escaped


def test_the_readmes_verification_snippet_accepts_what_we_sign_and_refuses_a_tampered_body() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("### Webhook campaigns") :]
    snippet = section[section.index("```python\n") + len("```python\n") :]
    namespace: dict[str, Any] = {}
    exec(snippet[: snippet.index("```")], namespace)  # noqa: S102 - our own README's code, to keep it true
    verified = namespace["verified"]
    headers = webhooks.sign(SECRET, int(time.time()), BODY)

    assert verified(SECRET, headers, BODY)
    assert not verified(SECRET, headers, BODY.replace(b"ABC123", b"ABC124"))
    assert not verified(b"another-stack-secret", headers, BODY)
    assert not verified(SECRET, webhooks.sign(SECRET, int(time.time()) - 301, BODY), BODY)
