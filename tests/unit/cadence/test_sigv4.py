"""cadence.dal.sigv4 signs as botocore's SigV4Auth does, header for header, for the requests it is used for."""

from datetime import UTC, datetime, timedelta

import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.dal.sigv4 import host_of, sign_post

NOW = datetime(2026, 12, 3, 18, 59, 7, tzinfo=UTC)
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem",
    "User-Agent": "cadence-bulk botocore/1",
    "Accept-Encoding": "identity",
}


def ours(
    credentials: ReadOnlyCredentials, host: str, headers: dict[str, str], body: bytes, now: datetime, region: str
) -> dict[str, str]:
    return sign_post(credentials, service="dynamodb", region=region, host=host, headers=headers, body=body, now=now)


def botocore_signed(
    credentials: ReadOnlyCredentials, url: str, region: str, headers: dict[str, str], body: bytes, now: datetime
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
        auth.SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com/", "dynamodb.us-east-1.amazonaws.com"),
        ("http://127.0.0.1:4566/", "127.0.0.1:4566"),
        ("https://DynamoDB.eu-west-1.amazonaws.com:443/", "dynamodb.eu-west-1.amazonaws.com"),
        ("http://[::1]:4566/", "[::1]:4566"),
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session+token/="])
def test_the_signed_headers_equal_botocores(url: str, host: str, token: str | None) -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = b'{"RequestItems":{"profiles":[{"PutRequest":{"Item":{"customer_id":{"S":"C1"}}}}]}}'

    signed = ours(credentials, host_of(url), HEADERS, body, NOW, "us-east-1")

    assert host_of(url) == host
    assert signed == botocore_signed(credentials, url, "us-east-1", HEADERS, body, NOW)
    assert ("X-Amz-Security-Token" in signed) is (token is not None)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=2_000),
    secret=st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=40),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2"]),
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    target=st.text(st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=30),
)
def test_any_body_key_region_instant_and_header_value_signs_as_botocore_does(
    body: bytes, secret: str, region: str, now: datetime, target: str
) -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", secret, None)
    headers = {**HEADERS, "X-Amz-Target": target}  # runs of spaces inside a value are folded by both
    host = f"dynamodb.{region}.amazonaws.com"

    assert ours(credentials, host, headers, body, now, region) == botocore_signed(
        credentials, f"https://{host}/", region, headers, body, now
    )


def test_a_request_signed_again_replaces_its_old_date_and_signature() -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token-1")
    host = "dynamodb.us-east-1.amazonaws.com"
    first = sign_post(
        credentials, service="dynamodb", region="us-east-1", host=host, headers=HEADERS, body=b"{}", now=NOW
    )
    later = NOW + timedelta(minutes=1)

    again = sign_post(
        credentials, service="dynamodb", region="us-east-1", host=host, headers=first, body=b"{}", now=later
    )

    assert again == sign_post(
        credentials, service="dynamodb", region="us-east-1", host=host, headers=HEADERS, body=b"{}", now=later
    )
    assert again["Authorization"] != first["Authorization"]
