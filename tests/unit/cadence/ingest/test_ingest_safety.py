"""Ingest never mixes customers' data, never keeps half a broken file, and fails closed on consent.

Each test reproduces a defect a review of 42980b1 found (issue 8).
"""

import gzip
import io
import json

import pandas as pd
import pytest

from cadence.errors import InvalidInputError
from cadence.ingest import service
from cadence.ingest.models import FileRef

ORDERS_HEADER = "order_id,customer_id,order_date,amount\n"


def ingest_raising(stack, key: str, body: bytes | str, **overrides) -> dict:
    """Upload a file ingest must refuse; returns its report."""
    version = stack.put(key, body)
    settings = stack.settings.model_copy(update=overrides)
    with pytest.raises(InvalidInputError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=settings)
    return stack.report(key, version)


# ---------- a stray quote ----------


def test_stray_quote_rejects_the_record_it_swallows_lines_into(stack, ingest):
    key = "incoming/customers/quote.csv"
    body = 'customer_id,email,first_name\nc1,a@x.com,"Bob\nc2,b@x.com,Carl\nc3,c@x.com,Dan"\nc4,d@x.com,Eve\n'

    report = ingest(key, body)

    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (2, 1, 1)
    assert report["rejected_by_reason"] == {"line_break:first_name": 1}
    # Five physical lines hold two records: the swallowed block shows.
    assert (report["lines_read"], report["multiline_records"]) == (5, 1)
    assert stack.profile("c1") is None
    assert stack.profile("c4")["first_name"] == "Eve"
    assert [(row["line"], row["reason"]) for row in stack.rejected(key)] == [("2", "line_break:first_name")]


@pytest.mark.parametrize("column", ["customer_id", "email", "phone", "last_name"])
def test_line_break_in_an_identifying_field_rejects_the_record_in_json_lines(stack, ingest, column):
    row = {"customer_id": "c1", "email": "a@example.com", "phone": "13800138000", "last_name": "Li"}
    row[column] = row[column][:3] + "\n" + row[column][3:]
    body = json.dumps(row) + "\n" + json.dumps({"customer_id": "c2", "email": "b@example.com"}) + "\n"

    report = ingest("incoming/customers/c.jsonl", body)

    assert report["rejected_by_reason"] == {f"line_break:{column}": 1}
    assert stack.profile("c2") is not None
    assert stack.profile("c1") is None


# ---------- a file that breaks part-way ----------


def test_truncated_gzip_applies_nothing_and_its_fixed_upload_counts_once(stack):
    key = "incoming/orders/o.csv.gz"
    # Past the 64 KiB read to recognise the file, so the break comes after chunks could have been applied.
    rows = "".join(f"o{i},c{i % 7},2024-01-{1 + i % 28:02d},{i % 50}.25\n" for i in range(20_000))
    data = gzip.compress((ORDERS_HEADER + rows).encode())

    report = ingest_raising(stack, key, data[: len(data) * 7 // 10], ingest_chunk_rows=2_000)

    assert (report["reason"], report["rows_read"]) == ("corrupt_gzip", 0)
    assert [stack.activity(f"c{i}") for i in range(7)] == [None] * 7

    version = stack.put(key, data)
    service.ingest_files(
        [FileRef(stack.bucket, key, version)], settings=stack.settings.model_copy(update={"ingest_chunk_rows": 2_000})
    )
    assert sum(stack.activity(f"c{i}")["order_count"] for i in range(7)) == 20_000


def test_csv_framing_error_late_in_the_file_applies_nothing(stack):
    key = "incoming/orders/long-field.csv"
    rows = "".join(f"o{i},c{i % 3},2024-01-01,1\n" for i in range(300))
    # A field past the csv module's limit (1 MiB) at the end: the file cannot be read to its end.
    body = ORDERS_HEADER + rows + 'o9,c1,2024-01-01,"' + "x" * (1024 * 1024 + 10) + '"\n'

    report = ingest_raising(stack, key, body, ingest_chunk_rows=50)

    assert report["reason"] == "csv_error"
    assert [stack.activity(f"c{i}") for i in range(3)] == [None] * 3


# ---------- consent fails closed ----------


@pytest.mark.parametrize("value", ["unsubscribed", "opt-out", "N/A", "withdrawn?"])
def test_unreadable_consent_withdraws_rather_than_keeping_an_earlier_yes(stack, ingest, value):
    key = "incoming/customers/consent.csv"
    ingest(key, "customer_id,email,consent_email,updated_at\nc1,a@example.com,true,2024-01-01T00:00:00Z\n")
    assert stack.profile("c1")["consent_email"] is True

    report = ingest(key, f"customer_id,email,consent_email,updated_at\nc1,a@example.com,{value},2024-02-01T00:00:00Z\n")

    assert stack.profile("c1")["consent_email"] is False
    assert report["rows_accepted"] == 1
    assert report["values_coerced"] == {"unreadable_as_no:consent_email": 1}


def test_empty_consent_cell_leaves_the_stored_consent_alone(stack, ingest):
    key = "incoming/customers/consent.csv"
    ingest(key, "customer_id,email,consent_sms,updated_at\nc1,a@example.com,yes,2024-01-01T00:00:00Z\n")

    ingest(key, "customer_id,email,consent_sms,updated_at\nc1,a@example.com,,2024-02-01T00:00:00Z\n")

    assert stack.profile("c1")["consent_sms"] is True


def test_file_without_updated_at_cannot_turn_a_withdrawal_back_into_consent(stack, ingest):
    ingest(
        "incoming/customers/crm.csv",
        "customer_id,email,consent_email,city,updated_at\nc1,a@example.com,false,Beijing,2024-06-01T00:00:00Z\n",
    )

    # An old export re-uploaded: no timestamps, so the upload time stands in for them.
    ingest("incoming/customers/old-export.csv", "customer_id,email,consent_email,city\nc1,a@example.com,true,Xi'an\n")

    profile = stack.profile("c1")
    assert profile["consent_email"] is False
    assert profile["city"] == "Xi'an"  # everything else the newer upload says still applies


def test_file_without_updated_at_still_records_a_new_customers_consent(stack, ingest):
    ingest("incoming/customers/new.csv", "customer_id,email,consent_email\nc9,z@example.com,yes\n")

    assert stack.profile("c9")["consent_email"] is True


# ---------- limits ----------


def test_gzip_that_expands_past_the_cap_is_quarantined_with_nothing_applied(stack):
    rows = "".join(f"o{i},c1,2024-01-01,1\n" for i in range(5_000))
    data = gzip.compress((ORDERS_HEADER + rows).encode())

    report = ingest_raising(stack, "incoming/orders/bomb.csv.gz", data, ingest_max_uncompressed_bytes=20_000)

    assert (report["reason"], report["rows_read"]) == ("too_large_uncompressed", 0)
    assert stack.exists(report["quarantined_key"])
    assert stack.activity("c1") is None


def test_json_line_longer_than_the_cap_quarantines_the_file(stack):
    lines = [
        json.dumps({"customer_id": "c1", "event_type": "visit", "event_time": "2024-01-01T00:00:00Z"}),
        json.dumps({"customer_id": "c1", "event_type": "visit", "event_time": "2024-01-02T00:00:00Z", "x": "y" * 5000}),
    ]

    report = ingest_raising(stack, "incoming/events/long.jsonl", "\n".join(lines) + "\n", ingest_max_line_chars=2048)

    assert report["reason"] == "line_too_long"
    assert stack.activity("c1") is None


def test_parquet_past_the_spool_cap_is_quarantined(stack):
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(3_000)], "email": "a@example.com"})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)

    report = ingest_raising(
        stack, "incoming/customers/big.parquet", buffer.getvalue(), ingest_max_uncompressed_bytes=4096
    )

    assert report["reason"] == "too_large_uncompressed"
    assert stack.profile("c1") is None
