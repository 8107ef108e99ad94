from datetime import UTC, datetime, timedelta

import pytest

from cadence import unsubscribe
from cadence.unsubscribe import InvalidTokenError, UnsubscribeClaims

KEY = b"k" * 32
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CLAIMS = UnsubscribeClaims("C1", "email", "winback", "winback@2026-11-23T02:00:00Z", NOW + timedelta(days=365))


def test_a_token_verifies_to_the_claims_it_was_signed_with() -> None:
    token = unsubscribe.sign(KEY, CLAIMS)

    assert unsubscribe.verify(KEY, token, NOW) == CLAIMS


def test_a_token_signed_with_another_key_is_refused() -> None:
    forged = unsubscribe.sign(b"attacker-key", CLAIMS)

    with pytest.raises(InvalidTokenError, match="signature"):
        unsubscribe.verify(KEY, forged, NOW)


def test_a_token_whose_payload_was_altered_is_refused() -> None:
    # given someone swaps in another customer's payload, keeping the signature
    version, _, signature = unsubscribe.sign(KEY, CLAIMS).split(".")
    other = unsubscribe.sign(KEY, UnsubscribeClaims("C2", "email", "winback", CLAIMS.run_id, CLAIMS.expires_at))
    altered = f"{version}.{other.split('.')[1]}.{signature}"

    with pytest.raises(InvalidTokenError):
        unsubscribe.verify(KEY, altered, NOW)


def test_an_expired_token_is_refused() -> None:
    token = unsubscribe.sign(KEY, CLAIMS)

    with pytest.raises(InvalidTokenError, match="expired"):
        unsubscribe.verify(KEY, token, CLAIMS.expires_at)


@pytest.mark.parametrize("token", ["", "v1.abc", "v2.a.b", "v1.!!.x", "v1..", "a.b.c.d"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        unsubscribe.verify(KEY, token, NOW)


def test_the_link_carries_the_token_as_a_query_parameter() -> None:
    assert unsubscribe.link("https://x.example/u", "v1.a.b") == "https://x.example/u?token=v1.a.b"
    assert unsubscribe.link("https://x.example/u?s=1", "v1.a.b") == "https://x.example/u?s=1&token=v1.a.b"
