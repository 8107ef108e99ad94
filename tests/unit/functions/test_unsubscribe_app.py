"""The one-click unsubscribe endpoint through its handler, with function URL events (payload 2.0): an RFC 8058
POST withdraws consent and suppresses; a GET only asks; forged, altered or expired tokens change nothing."""

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from cadence import config, unsubscribe
from cadence.dal import suppression_table
from cadence.suppression import Reason, address_hash
from functions.unsubscribe import app

KEY = b"test-unsubscribe-signing-key"  # the secret tests/conftest.py creates


def token(customer_id: str = "U1", channel: str = "email", *, days: int = 30, key: bytes = KEY) -> str:
    claims = unsubscribe.UnsubscribeClaims(
        customer_id=customer_id,
        channel=channel,
        campaign_id="winback",
        run_id="winback@2026-11-23T02:00:00Z",
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    return unsubscribe.sign(key, claims)


def url_event(method: str, token_value: str, body: str | None = None, *, encoded: bool = True) -> dict[str, Any]:
    """A Lambda function URL request as AWS delivers it (form bodies arrive base64-encoded)."""
    raw_body = base64.b64encode(body.encode()).decode() if body is not None and encoded else body
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": urlencode({"token": token_value}),
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "host": "abcdefg.lambda-url.us-east-1.on.aws",
            "user-agent": "Mozilla/5.0 (compatible; GoogleOneClickUnsubscribe)",
        },
        "queryStringParameters": {"token": token_value},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "Mozilla/5.0 (compatible; GoogleOneClickUnsubscribe)",
            },
            "requestId": "0b6f1e6a-2a3c-4c1e-9a0e-000000000000",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:03:00:00 +0000",
            "timeEpoch": 1795316400000,
        },
        **({"body": raw_body, "isBase64Encoded": encoded} if body is not None else {"isBase64Encoded": False}),
    }


@pytest.fixture
def profile(tables: dict[str, str]) -> dict[str, Any]:
    item = {
        "customer_id": "U1",
        "email": "u1@example.com",
        "phone": "+8613800138001",
        "consent_email": True,
        "consent_sms": True,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    boto3.resource("dynamodb").Table(tables["ProfilesTable"]).put_item(Item=item)
    config.unsubscribe_settings.cache_clear()
    return item


def stored(tables: dict[str, str]) -> dict[str, Any]:
    return boto3.resource("dynamodb").Table(tables["ProfilesTable"]).get_item(Key={"customer_id": "U1"})["Item"]


def suppressed(address: str, channel: str = "email") -> set[Reason]:
    entries = suppression_table.entries_of(os.environ["SUPPRESSION_TABLE"], channel, address_hash(address))
    return {entry.reason for entry in entries}


def test_an_rfc_8058_one_click_post_withdraws_consent_with_time_and_source_and_suppresses(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any
) -> None:
    response = app.lambda_handler(url_event("POST", token(), "List-Unsubscribe=One-Click"), lambda_context)

    assert response["statusCode"] == 200
    item = stored(tables)
    assert item["consent_email"] is False
    assert item["consent_sms"] is True  # per channel
    assert item["consent_email_source"] == "unsubscribe:winback/winback@2026-11-23T02:00:00Z"
    assert datetime.fromisoformat(item["consent_email_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert suppressed("u1@example.com") == {Reason.UNSUBSCRIBE}
    # a repeated POST (providers retry) answers the same and changes nothing more
    again = app.lambda_handler(url_event("POST", token(), "List-Unsubscribe=One-Click"), lambda_context)
    assert again["statusCode"] == 200


def test_an_sms_token_withdraws_sms_consent_only(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any
) -> None:
    body = "List-Unsubscribe=One-Click"
    app.lambda_handler(url_event("POST", token(channel="sms"), body, encoded=False), lambda_context)

    assert (stored(tables)["consent_email"], stored(tables)["consent_sms"]) == (True, False)
    assert suppressed("+8613800138001", "sms") == {Reason.UNSUBSCRIBE}


def test_a_get_shows_a_confirmation_page_and_changes_nothing(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any
) -> None:
    value = token()
    response = app.lambda_handler(url_event("GET", value), lambda_context)

    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "method='post'" in response["body"]
    assert "name='List-Unsubscribe' value='One-Click'" in response["body"]
    assert urlencode({"token": value}) in response["body"]
    assert stored(tables) == profile
    assert suppressed("u1@example.com") == set()


def _altered(value: str) -> str:
    version, payload, signature = value.split(".")
    claims = base64.urlsafe_b64decode(payload + "==").replace(b'"U1"', b'"U2"')
    return ".".join([version, base64.urlsafe_b64encode(claims).rstrip(b"=").decode(), signature])


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(token(key=b"someone else's key"), id="forged"),
        pytest.param(_altered(token()), id="altered"),
        pytest.param(token(days=-1), id="expired"),
        pytest.param("v1.garbage", id="malformed"),
        pytest.param("", id="missing"),
    ],
)
def test_a_forged_altered_or_expired_token_is_refused_and_changes_nothing(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any, bad_token: str
) -> None:
    response = app.lambda_handler(url_event("POST", bad_token, "List-Unsubscribe=One-Click"), lambda_context)

    assert response["statusCode"] == 400
    assert stored(tables) == profile
    assert suppressed("u1@example.com") == set()


def test_a_post_without_the_one_click_field_changes_nothing(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any
) -> None:
    response = app.lambda_handler(url_event("POST", token(), "something=else"), lambda_context)

    assert response["statusCode"] == 400
    assert stored(tables) == profile


def test_an_older_file_cannot_give_consent_back_after_an_unsubscribe(
    tables: dict[str, str], profile: dict[str, Any], lambda_context: Any
) -> None:
    from cadence.ingest.merge import resolve_customer  # noqa: PLC0415
    from cadence.ingest.models import CustomerUpsert  # noqa: PLC0415

    app.lambda_handler(url_event("POST", token(), "List-Unsubscribe=One-Click"), lambda_context)
    # an export written before the click, uploaded after it, says yes
    row = CustomerUpsert(
        customer_id="U1",
        updated_at="2026-06-01T00:00:00Z",
        fields={"email": "u1@example.com", "consent_email": True},
        updated_at_carried=True,
        channel_updated_at={"email": "2026-06-01T00:00:00Z"},
    )

    merged, _ = resolve_customer(row, stored(tables))

    assert merged["consent_email"] is False
