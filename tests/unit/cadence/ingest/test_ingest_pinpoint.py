"""Amazon Pinpoint endpoint exports (incoming/pinpoint-endpoints/): a user's endpoints become one profile."""

import gzip
import json
from typing import Any

import pytest

from tests.unit.cadence.ingest.test_ingest_splitting import Relay

KEY = "incoming/pinpoint-endpoints/export/part-0001.gz"


def endpoint(user_id: str | None, channel: str, address: str, **overrides: Any) -> dict[str, Any]:
    """An endpoint as CreateExportJob writes it (an EndpointResponse), changed only where a test says."""
    record: dict[str, Any] = {
        "ApplicationId": "6f0e2a1b7c3d4e5f8a9b0c1d2e3f4a5b",
        "Id": f"ep-{channel.lower()}-{user_id}-{address[-4:]}",
        "ChannelType": channel,
        "Address": address,
        "EndpointStatus": "ACTIVE",
        "OptOut": "NONE",
        "RequestId": "0b2d8f3c-4c6e-11e9-9f3b-0123456789ab",
        "Location": {"City": "Seattle", "Country": "US", "PostalCode": "98109", "Region": "WA", "Latitude": 47.6},
        "Demographic": {"Locale": "en_US", "Platform": "iOS", "Timezone": "America/Los_Angeles", "Make": "Apple"},
        "EffectiveDate": "2025-03-01T10:00:00.000Z",
        "Attributes": {"Interests": ["hiking"]},
        "Metrics": {"sessions": 3.0},
        "User": {"UserId": user_id, "UserAttributes": {"FirstName": ["Ana"], "LastName": ["Silva"], "Plan": ["gold"]}},
        "CohortId": "42",
        "CreationDate": "2024-01-05T08:00:00.000Z",
    }
    if user_id is None:
        del record["User"]["UserId"]
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(record.get(name), dict):
            record[name] = {**record[name], **value}
        else:
            record[name] = value
    return record


def export(*endpoints: dict[str, Any]) -> bytes:
    return gzip.compress("".join(json.dumps(e) + "\n" for e in endpoints).encode("utf-8"))


def test_endpoints_of_a_user_become_one_profile_when_export_is_gzipped(stack, ingest):
    report = ingest(
        KEY,
        export(
            endpoint("u-1", "EMAIL", " Ana@Example.COM "),
            endpoint("u-1", "SMS", "+12065550100"),
            endpoint("u-1", "APNS", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"),
        ),
    )

    assert (report["status"], report["compression"], report["format"]) == ("ok", "gzip", "jsonl")
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (3, 2, 1)
    assert report["rejected_by_reason"] == {"invalid:channel_type": 1}
    profile = stack.profile("u-1")
    assert {k: profile.get(k) for k in ("email", "phone", "consent_email", "consent_sms")} == {
        "email": "ana@example.com",
        "phone": "+12065550100",
        "consent_email": True,
        "consent_sms": True,
    }
    assert (profile["country"], profile["city"], profile["timezone"], profile["language"]) == (
        "US",
        "Seattle",
        "America/Los_Angeles",
        "en-US",
    )
    assert (profile["first_name"], profile["last_name"], profile["attr_plan"]) == ("Ana", "Silva", "gold")
    assert profile["updated_at"] == "2025-03-01T10:00:00Z"
    assert stack.queued_customer_ids() == ["u-1"]


def test_opted_out_or_inactive_endpoints_give_no_consent(stack, ingest):
    report = ingest(
        KEY,
        export(
            endpoint("u-1", "EMAIL", "out@example.com", OptOut="ALL"),
            endpoint("u-1", "SMS", "+12065550101", EndpointStatus="INACTIVE"),
            endpoint("u-2", "EMAIL", "odd@example.com", OptOut="SOMETIMES"),
        ),
    )

    assert (stack.profile("u-1")["consent_email"], stack.profile("u-1")["consent_sms"]) == (False, False)
    assert stack.profile("u-1")["phone"] == "+12065550101"
    assert stack.profile("u-2")["consent_email"] is False
    assert report["values_coerced"] == {"unreadable_as_no:opt_out": 1}


def test_unusable_endpoints_are_rejected_with_a_reason_and_every_row_is_counted(stack, ingest):
    report = ingest(
        KEY,
        export(
            endpoint(None, "EMAIL", "nobody@example.com"),
            endpoint("u-1", "EMAIL", "not-an-email"),
            endpoint("u-2", "SMS", "12"),
            endpoint("u-3", "GCM", "fcm-token"),
            endpoint("u-4", "EMAIL", "ok@example.com"),
        )
        + gzip.compress(b"[1, 2]\n{broken\n"),
    )

    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"] == 7
    assert report["rejected_by_reason"] == {
        "missing:user_id": 1,
        "invalid:email": 1,
        "invalid:phone": 1,
        "invalid:channel_type": 1,
        "not_an_object": 1,
        "malformed_json": 1,
    }
    rejected = {row["line"]: row for row in stack.rejected(KEY)}
    assert rejected["4"]["endpoint_id"] == "ep-gcm-u-3-oken"
    assert set(stack.profiles()) == {"u-4"}


@pytest.mark.parametrize("chunk_rows", [1, 2, 50_000])
def test_newer_opt_out_wins_over_older_opt_in_wherever_the_endpoints_fall(stack, ingest, chunk_rows):
    # given a user whose newest email endpoint opted out, listed before an older opt-in and after an SMS
    # endpoint that is newer than both: in one chunk, or spread over several
    ingest(
        KEY,
        export(
            endpoint("u-1", "SMS", "+12065550100", EffectiveDate="2025-06-01T00:00:00Z"),
            endpoint("u-1", "EMAIL", "new@example.com", OptOut="ALL", EffectiveDate="2025-05-01T00:00:00Z"),
            endpoint("u-1", "EMAIL", "old@example.com", EffectiveDate="2025-01-01T00:00:00Z"),
        ),
        ingest_chunk_rows=chunk_rows,
    )

    profile = stack.profile("u-1")
    assert (profile["email"], profile["consent_email"], profile["consent_sms"]) == ("new@example.com", False, True)


def test_newer_opt_out_applies_although_another_channel_made_the_profile_newer(stack, ingest):
    # given an email consent from an earlier export, then an SMS endpoint newer than the email opt-out
    ingest(KEY, export(endpoint("u-1", "EMAIL", "a@example.com", EffectiveDate="2025-01-01T00:00:00Z")))
    ingest(
        "incoming/pinpoint-endpoints/export/part-0002.gz",
        export(
            endpoint("u-1", "SMS", "+12065550100", EffectiveDate="2025-07-01T00:00:00Z"),
            endpoint("u-1", "EMAIL", "a@example.com", OptOut="ALL", EffectiveDate="2025-05-01T00:00:00Z"),
        ),
        ingest_chunk_rows=1,
    )

    profile = stack.profile("u-1")
    assert (profile["consent_email"], profile["consent_sms"], profile["updated_at"]) == (
        False,
        True,
        "2025-07-01T00:00:00Z",
    )


def test_older_export_does_not_undo_a_newer_opt_out(stack, ingest):
    ingest(KEY, export(endpoint("u-1", "EMAIL", "a@example.com", OptOut="ALL", EffectiveDate="2025-05-01T00:00:00Z")))
    report = ingest(
        "incoming/pinpoint-endpoints/old.jsonl",
        json.dumps(endpoint("u-1", "EMAIL", "a@example.com", EffectiveDate="2025-01-01T00:00:00Z")) + "\n",
    )

    assert report["writes_skipped"] == 1
    assert stack.profile("u-1")["consent_email"] is False


def test_customers_file_and_pinpoint_export_merge_into_the_same_profile(stack, ingest):
    ingest(
        "incoming/customers/crm.csv",
        "customer_id,first_name,phone,consent_sms,updated_at\nu-1,Ana,+12065550100,true,2025-02-01T00:00:00Z\n",
    )
    ingest(KEY, export(endpoint("u-1", "EMAIL", "a@example.com", EffectiveDate="2025-01-01T00:00:00Z")))

    profile = stack.profile("u-1")
    assert (profile["first_name"], profile["consent_sms"], profile["email"], profile["consent_email"]) == (
        "Ana",
        True,
        "a@example.com",
        True,
    )


def test_endpoints_of_a_user_merge_when_the_file_is_split_across_invocations(stack):
    # given an export whose user u-1 has an opted-out email endpoint in the first part and an older opt-in,
    # plus an SMS endpoint, in later parts (one chunk each, every invocation hands the rest on)
    key = "incoming/pinpoint-endpoints/big.jsonl"
    relay = Relay(stack, key=key, chunk_rows=1)
    version = stack.put(
        key,
        "".join(
            json.dumps(e) + "\n"
            for e in (
                endpoint("u-1", "EMAIL", "a@example.com", OptOut="ALL", EffectiveDate="2025-05-01T00:00:00Z"),
                endpoint(None, "EMAIL", "x@example.com"),
                endpoint("u-1", "EMAIL", "b@example.com", EffectiveDate="2025-02-01T00:00:00Z"),
                endpoint("u-1", "SMS", "+12065550100", EffectiveDate="2025-08-01T00:00:00Z"),
            )
        ),
    )

    relay.start(version)
    while relay.events:
        relay.run_next()

    report = stack.report(key)
    assert (report["status"], len(report["parts"])) == ("ok", 4)
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (4, 3, 1)
    profile = stack.profile("u-1")
    assert (profile["email"], profile["consent_email"], profile["phone"], profile["consent_sms"]) == (
        "a@example.com",
        False,
        "+12065550100",
        True,
    )
