"""Customers, orders and events files end to end through moto: reports, rejects, profiles, score requests."""

import gzip
import json
import time

import pytest

from cadence.errors import InvalidInputError, TransientError
from cadence.ingest import service
from cadence.ingest.models import FileRef

CUSTOMERS_CSV = (
    "customer_id,email,phone,first_name,last_name,country,city,timezone,language,signup_date,"
    "consent_email,consent_sms,updated_at\n"
    "007, Alice@Example.COM ,138 0013 8000,Alice,Wang,cn,Shanghai,asia/shanghai,zh_CN,2024/03/01,yes,no,"
    "2024-03-02T10:00:00Z\n"
    "008,not-an-email,,Bob,Li,CN,,,,2024-03-01,true,false,2024-03-02T10:00:00Z\n"
    ",carol@example.com,,Carol,,,,,,,,,\n"
    "010,dan@example.com,12345,Dan,,XX,,Mars/Base,,,,,\n"
)


def test_customers_become_profiles_when_rows_are_valid(stack, ingest):
    report = ingest("incoming/customers/crm.csv", CUSTOMERS_CSV)

    assert report["rows_read"] == 4
    assert report["rows_accepted"] == 2
    assert report["rows_rejected"] == 2
    assert report["rejected_by_reason"] == {"invalid:email": 1, "missing:customer_id": 1}
    assert report["values_cleared"] == {"invalid:phone": 1, "invalid:country": 1, "invalid:timezone": 1}
    assert report["format"] == "csv"
    assert report["delimiter"] == ","
    assert report["duration_s"] >= 0
    assert stack.profile("007") == {
        "customer_id": "007",
        "email": "alice@example.com",
        "phone": "+8613800138000",
        "first_name": "Alice",
        "last_name": "Wang",
        "country": "CN",
        "city": "Shanghai",
        "timezone": "Asia/Shanghai",
        "language": "zh-CN",
        "signup_date": "2024-03-01",
        "consent_email": True,
        "consent_sms": False,
        "updated_at": "2024-03-02T10:00:00Z",
    }
    # Invalid optional values are cleared, not stored: the row still counts as accepted.
    dan = stack.profile("010")
    assert dan is not None
    assert "phone" not in dan
    assert "country" not in dan
    assert stack.profile("008") is None


def test_rejected_rows_carry_line_and_reason_when_rows_fail(stack, ingest):
    ingest("incoming/customers/crm.csv", CUSTOMERS_CSV)

    rejected = stack.rejected("incoming/customers/crm.csv")

    assert [(row["line"], row["reason"]) for row in rejected] == [
        ("3", "invalid:email"),
        ("4", "missing:customer_id"),
    ]
    assert rejected[0]["customer_id"] == "008"
    assert rejected[0]["email"] == "not-an-email"


def test_accepted_customers_are_queued_for_scoring_in_batches(stack, ingest):
    rows = "".join(f"{i:04d},c{i}@example.com\n" for i in range(25))
    ingest("incoming/customers/many.csv", "customer_id,email\n" + rows, score_batch_size=10)

    messages = stack.score_messages()

    assert [len(body["customer_ids"]) for body in messages] == [10, 10, 5]
    assert {body["reason"] for body in messages} == {"ingest"}
    assert {body["source_key"] for body in messages} == {"incoming/customers/many.csv"}
    assert sorted(stack.queued_customer_ids()) == [f"{i:04d}" for i in range(25)]


def test_customer_upsert_keeps_attributes_other_stages_own(stack, ingest):
    stack.client("dynamodb").put_item(
        TableName=stack.settings.profiles_table,
        Item={
            "customer_id": {"S": "007"},
            "score": {"N": "1"},
            "decile": {"N": "3"},
            "model_version": {"S": "m1"},
            "order_count": {"N": "2"},
        },
    )

    ingest("incoming/customers/crm.csv", CUSTOMERS_CSV)

    profile = stack.profile("007")
    assert profile is not None
    assert (profile["score"], profile["decile"], profile["model_version"], profile["order_count"]) == (1, 3, "m1", 2)
    assert profile["email"] == "alice@example.com"


def hold_customers_lease(stack, *, until: int) -> None:
    stack.client("dynamodb").put_item(
        TableName=stack.settings.ingest_ledger_table,
        Item={"record_key": {"S": "lease#customers"}, "owner": {"S": "other"}, "lease_until": {"N": str(until)}},
    )


def test_customers_wait_while_another_file_holds_the_write_lease(stack):
    key = "incoming/customers/crm.csv"
    version = stack.put(key, CUSTOMERS_CSV)
    hold_customers_lease(stack, until=int(time.time()) + 600)
    settings = stack.settings.model_copy(update={"ingest_customers_lease_seconds": 1})

    with pytest.raises(TransientError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=settings)

    assert stack.profile("007") is None


def test_customers_take_over_a_lease_its_holder_left_to_expire(stack, ingest):
    hold_customers_lease(stack, until=int(time.time()) - 1)

    ingest("incoming/customers/crm.csv", CUSTOMERS_CSV)

    assert stack.profile("007")["email"] == "alice@example.com"
    ledger = stack.client("dynamodb").scan(TableName=stack.settings.ingest_ledger_table)["Items"]
    assert not [item for item in ledger if item["record_key"]["S"].startswith("lease#")]  # released after use


def test_duplicate_customers_merge_latest_value_per_column(stack, ingest):
    body = (
        "customer_id,email,phone,city,updated_at\n"
        "1,new@example.com,,Beijing,2024-05-01T00:00:00Z\n"
        "1,old@example.com,13800138000,Shanghai,2024-01-01T00:00:00Z\n"
        "1,new@example.com,,Beijing,2024-05-01T00:00:00Z\n"
    )
    report = ingest("incoming/customers/dupes.csv", body)

    assert report["rows_accepted"] == 3
    assert report["duplicates_merged"] == 2
    profile = stack.profile("1")
    assert profile is not None
    # Newest row wins per column; the older row still supplies the phone the newer rows leave empty.
    assert (profile["email"], profile["city"], profile["phone"]) == ("new@example.com", "Beijing", "+8613800138000")


def test_older_customer_file_does_not_overwrite_newer_profile(stack, ingest):
    ingest("incoming/customers/new.csv", "customer_id,email,city,updated_at\n1,new@example.com,,2024-05-01T00:00:00Z\n")
    report = ingest(
        "incoming/customers/old.csv",
        "customer_id,email,city,updated_at\n1,old@example.com,Shanghai,2024-01-01T00:00:00Z\n",
    )

    assert report["writes_skipped"] == 1
    profile = stack.profile("1")
    assert profile is not None
    assert (profile["email"], profile["city"], profile["updated_at"]) == (
        "new@example.com",
        "Shanghai",  # a gap the newer row left is filled
        "2024-05-01T00:00:00Z",
    )


ORDERS_CSV = (
    "order_id,customer_id,order_date,amount,currency,items,channel\n"
    'A1,007,2024-03-01 10:00:00,"1,234.50",CNY,2,web\n'
    "A2,007,2024-02-01T08:00:00+08:00,100,CNY,1,app\n"
    "A3,008,2024-03-05,20.5,CNY,1,web\n"
    "A4,008,not a date,20.5,CNY,1,web\n"
    "A5,009,2024-03-05,abc,CNY,1,web\n"
    'A1,007,2024-03-01 10:00:00,"1,234.50",CNY,2,web\n'
)


def test_orders_add_aggregates_to_activity(stack, ingest):
    report = ingest("incoming/orders/o.csv", ORDERS_CSV)

    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (6, 4, 2)
    assert report["rejected_by_reason"] == {"invalid:order_date": 1, "invalid:amount": 1}
    assert report["duplicates_merged"] == 1
    alice = stack.activity("007")
    assert alice == {
        "customer_id": "007",
        "order_count": 2,
        "total_spend": 1334.5,
        "first_order_at": "2024-02-01T00:00:00Z",
        "last_order_at": "2024-03-01T10:00:00Z",
    }
    assert stack.activity("008")["order_count"] == 1
    assert stack.profile("007") is None  # the customer row has not arrived: activity waits beside it
    assert sorted(set(stack.queued_customer_ids())) == ["007", "008"]


def test_orders_count_once_when_event_is_redelivered_or_file_reuploaded(stack, ingest):
    ingest("incoming/orders/o.csv", ORDERS_CSV)
    # The same S3 event again (same version), then the same orders in another file.
    service.ingest_files([FileRef(stack.bucket, "incoming/orders/o.csv", None)], settings=stack.settings)
    again = ingest("incoming/orders/copy.csv", ORDERS_CSV)

    assert again["writes_applied"] == 0
    assert again["writes_skipped"] == 3  # A1, A2, A3 (A1 appears twice in the file)
    assert (again["rows_read"], again["rows_accepted"]) == (6, 4)  # still read and reported in full
    alice = stack.activity("007")
    assert (alice["order_count"], alice["total_spend"]) == (2, 1334.5)


def test_orders_count_once_when_a_copy_arrives_before_the_first_upload_finished(stack, ingest):
    # given a first upload whose counting stopped before its file was marked finished (a crash, or both at once)
    ingest("incoming/orders/o.csv", ORDERS_CSV)
    ledger = stack.client("dynamodb")
    for item in ledger.scan(TableName=stack.settings.ingest_ledger_table)["Items"]:
        ledger.delete_item(TableName=stack.settings.ingest_ledger_table, Key={"record_key": item["record_key"]})

    # when the same bytes arrive under another key
    again = ingest("incoming/orders/copy.csv", ORDERS_CSV)

    # then every customer's batch was already applied
    assert (again["writes_applied"], again["writes_skipped"]) == (0, 3)
    alice = stack.activity("007")
    assert (alice["order_count"], alice["total_spend"]) == (2, 1334.5)


def test_same_order_id_in_a_later_chunk_of_the_file_counts_once(stack, ingest):
    body = "order_id,customer_id,order_date,amount\n" + "".join(f"o{i % 12},1,2024-01-01,1\n" for i in range(25))

    report = ingest("incoming/orders/repeats.csv", body, ingest_chunk_rows=10)

    assert (report["rows_accepted"], report["duplicates_merged"]) == (25, 13)
    assert stack.activity("1")["order_count"] == 12


def test_new_orders_extend_aggregates_from_earlier_files(stack, ingest):
    ingest("incoming/orders/o.csv", ORDERS_CSV)
    ingest(
        "incoming/orders/later.csv",
        "order_id,customer_id,order_date,amount\nB1,007,2023-12-31T00:00:00Z,10\nB2,007,2024-06-01T00:00:00Z,5\n",
    )

    alice = stack.activity("007")
    assert (alice["order_count"], alice["total_spend"]) == (4, 1349.5)
    assert (alice["first_order_at"], alice["last_order_at"]) == ("2023-12-31T00:00:00Z", "2024-06-01T00:00:00Z")


EVENTS_JSONL = "\n".join(
    [
        json.dumps({"customer_id": "007", "event_type": "visit", "event_time": "2024-03-01T10:00:00Z"}),
        json.dumps({"customer_id": "007", "event_type": "open", "event_time": "2024-03-02T10:00:00Z"}),
        json.dumps({"customer_id": "007", "event_type": "click", "event_time": "2024-03-03T10:00:00Z"}),
        json.dumps({"customer_id": "007", "event_type": "visit", "event_time": "2024-03-04T10:00:00Z"}),
        json.dumps({"customer_id": "007", "event_type": "visit", "event_time": "2024-03-04T10:00:00Z"}),
        json.dumps(
            {"customer_id": 8, "event_type": "Add To Cart", "event_time": 1709258400, "attributes": {"sku": "X"}}
        ),
        '{"customer_id": "009", "event_type": "visit"',
        "[1, 2]",
        json.dumps({"customer_id": "009", "event_type": "visit"}),
        "",
    ]
)


def test_events_update_engagement_from_json_lines(stack, ingest):
    report = ingest("incoming/events/e.jsonl", EVENTS_JSONL)

    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (9, 6, 3)
    assert report["rejected_by_reason"] == {"malformed_json": 1, "not_an_object": 1, "missing:event_time": 1}
    assert report["duplicates_merged"] == 1
    assert stack.activity("007") == {
        "customer_id": "007",
        "event_count": 4,
        "last_visit_at": "2024-03-04T10:00:00Z",
        "last_open_at": "2024-03-02T10:00:00Z",
        "last_click_at": "2024-03-03T10:00:00Z",
    }
    assert stack.activity("8") == {"customer_id": "8", "event_count": 1}
    assert [row["line"] for row in stack.rejected("incoming/events/e.jsonl")] == ["7", "8", "9"]


def test_events_count_once_when_the_file_is_uploaded_twice(stack, ingest):
    ingest("incoming/events/e.jsonl", EVENTS_JSONL)
    ingest("incoming/events/e.jsonl", EVENTS_JSONL)  # a new version of the same key

    assert stack.activity("007")["event_count"] == 4


def test_customers_file_leaves_activity_alone_and_activity_leaves_profiles_alone(stack, ingest):
    ingest("incoming/orders/o.csv", ORDERS_CSV)
    ingest("incoming/customers/crm.csv", CUSTOMERS_CSV)

    assert stack.activity("007")["order_count"] == 2
    assert "order_count" not in stack.profile("007")
    assert stack.profile("007")["email"] == "alice@example.com"


def test_gzipped_csv_is_read_when_suffix_is_gz(stack, ingest):
    report = ingest("incoming/customers/crm.csv.gz", gzip.compress(CUSTOMERS_CSV.encode()))

    assert report["compression"] == "gzip"
    assert (report["rows_read"], report["rows_accepted"]) == (4, 2)


def test_gzipped_json_lines_are_read_when_only_magic_bytes_tell(stack, ingest):
    report = ingest("incoming/events/e.jsonl", gzip.compress(EVENTS_JSONL.encode()))

    assert (report["compression"], report["format"]) == ("gzip", "jsonl")
    assert report["rows_accepted"] == 6


def test_unreadable_file_is_moved_aside_reported_and_raised(stack):
    key = "incoming/customers/no-id.csv"
    version = stack.put(key, "email,phone\na@example.com,13800138000\n")

    with pytest.raises(InvalidInputError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=stack.settings)

    report = stack.report(key)
    assert (report["status"], report["reason"]) == ("unreadable", "missing_columns:customer_id")
    assert report["quarantined_key"] == f"rejected/{key}/{version}/no-id.csv"
    assert stack.read(report["quarantined_key"]) == b"email,phone\na@example.com,13800138000\n"
    assert not stack.exists(key)


def test_unreadable_file_raises_again_when_event_is_retried(stack):
    key = "incoming/orders/empty.csv"
    version = stack.put(key, "")
    ref = FileRef(stack.bucket, key, version)
    with pytest.raises(InvalidInputError):
        service.ingest_files([ref], settings=stack.settings)

    # The async retry names the same version, which the delete marker does not hide.
    with pytest.raises(InvalidInputError):
        service.ingest_files([ref], settings=stack.settings)
    assert stack.report(key)["reason"] == "empty_file"


def test_file_outside_known_feeds_is_moved_aside(stack):
    key = "incoming/unknown/x.csv"
    version = stack.put(key, "a,b\n1,2\n")

    with pytest.raises(InvalidInputError):
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=stack.settings)

    assert stack.report(key)["reason"] == "unknown_feed"


def test_folder_marker_is_skipped_without_a_report(stack):
    stack.put("incoming/customers/", b"")

    summaries = service.ingest_files([FileRef(stack.bucket, "incoming/customers/")], settings=stack.settings)

    assert summaries[0]["status"] == "skipped"
    assert not stack.exists("reports/ingest/incoming/customers/.json")
