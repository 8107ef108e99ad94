"""Orders files reach the activity table by read-merge-write under the activity lease: exactly once, no lost updates
between two files, and no erased customer brought back by a file applied late."""

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadence import erasure
from cadence.config import ErasureSettings
from cadence.dal import activity_table, clients, suppression_table
from cadence.errors import TransientError
from cadence.ingest import service
from cadence.ingest.models import FileRef
from cadence.suppression import customer_hash
from tests.unit.cadence.ingest.stack import IngestStack, create_table

HEADER = "order_id,customer_id,order_date,amount,currency,items,channel\n"
FILE_A = HEADER + "A1,c1,2024-02-01T10:00:00Z,10.00,CNY,1,web\nA2,c2,2024-02-01T11:00:00Z,5.00,CNY,1,web\n"
FILE_B = HEADER + "B1,c1,2024-01-15T09:00:00Z,7.00,CNY,1,app\nB2,c2,2024-03-01T12:00:00Z,3.00,CNY,1,app\n"


def upload(stack: IngestStack, key: str, body: str) -> FileRef:
    return FileRef(stack.bucket, key, stack.put(key, body))


def run(stack: IngestStack, ref: FileRef, *, seconds_to_wait: float | None = None) -> None:
    """Ingest as an S3 event would; with `seconds_to_wait`, an invocation that can wait that long for a lease."""
    if seconds_to_wait is None:
        service.ingest_files([ref], settings=stack.settings)
        return
    left = stack.settings.ingest_reserve_seconds + seconds_to_wait
    service.ingest_files([ref], settings=stack.settings, invocation=service.Invocation(time_left=lambda: left))


@pytest.fixture
def during_activity_write(stack: IngestStack) -> Iterator[Callable[[Callable[[], None]], list[BaseException]]]:
    """Run a step once, right before ingest's first activity BatchWriteItem (after it read the stored items).

    What the step raises is collected, not raised, so the write it interrupted goes on.
    """
    # Every DynamoDB request of the DAL, the bulk wire's too, emits this client's before-send (moto answers after).
    bulk = clients.client("dynamodb")
    registered: list[Any] = []

    def arrange(step: Callable[[], None]) -> list[BaseException]:
        raised: list[BaseException] = []

        def before_write(request: Any, **_: Any) -> None:
            written = json.loads(request.body).get("RequestItems", {})
            if stack.settings.activity_table not in written or registered[-1] is None:
                return
            registered[-1] = None  # once
            try:
                step()
            except Exception as exc:  # handed to the test, which asserts on it
                raised.append(exc)

        bulk.meta.events.register_first("before-send.dynamodb.BatchWriteItem", before_write)
        registered.append(before_write)
        return raised

    yield arrange
    for handler in registered:
        if handler is not None:
            bulk.meta.events.unregister("before-send.dynamodb.BatchWriteItem", handler)


def test_two_files_for_the_same_customers_keep_each_others_counts_when_one_lands_mid_write(
    stack, during_activity_write
):
    # given file B arriving while file A has read its customers' items and not yet written them
    file_a, file_b = upload(stack, "incoming/orders/a.csv", FILE_A), upload(stack, "incoming/orders/b.csv", FILE_B)
    raised = during_activity_write(lambda: run(stack, file_b, seconds_to_wait=1))

    # when A finishes, and B's retry (the async retry of its invocation) runs after it
    run(stack, file_a)
    run(stack, file_b)

    # then B waited for A's lease instead of writing between A's read and write, and both files count
    assert [type(exc) for exc in raised] == [TransientError]
    c1, c2 = stack.activity("c1"), stack.activity("c2")
    assert (c1["order_count"], c1["total_spend"], c2["order_count"], c2["total_spend"]) == (2, 17, 2, 8)
    assert (c1["first_order_at"], c1["last_order_at"]) == ("2024-01-15T09:00:00Z", "2024-02-01T10:00:00Z")
    assert (c2["first_order_at"], c2["last_order_at"]) == ("2024-02-01T11:00:00Z", "2024-03-01T12:00:00Z")


def test_a_file_uploaded_before_a_customers_erasure_adds_nothing_for_them_however_late_it_is_applied(stack):
    file_a = upload(stack, "incoming/orders/a.csv", FILE_A)
    suppression_table.put_tombstone(stack.settings.suppression_table, customer_hash("c1"), at=datetime.now(UTC))

    run(stack, file_a)

    assert stack.activity("c1") is None
    assert stack.activity("c2")["order_count"] == 1
    assert "c1" not in stack.queued_customer_ids()
    report = stack.report("incoming/orders/a.csv", file_a.version_id)
    assert (report["writes_applied"], report["writes_skipped"]) == (1, 1)


def test_a_file_uploaded_after_a_customers_erasure_counts_for_the_customer_it_brings_back(stack):
    erased_at = datetime.now(UTC) - timedelta(days=1)
    suppression_table.put_tombstone(stack.settings.suppression_table, customer_hash("c1"), at=erased_at)

    run(stack, upload(stack, "incoming/orders/a.csv", FILE_A))

    assert stack.activity("c1")["order_count"] == 1


@pytest.fixture
def erasure_settings(stack: IngestStack) -> ErasureSettings:
    names = {"ScoresTable": "SCORES_TABLE", "SendsTable": "SENDS_TABLE", "ConversationsTable": "CONVERSATIONS_TABLE"}
    existing = set(stack.client("dynamodb").list_tables()["TableNames"])
    for logical_id, variable in names.items():
        if os.environ[variable] not in existing:
            create_table(logical_id, os.environ[variable])
    return ErasureSettings(
        profiles_table=stack.settings.profiles_table,
        activity_table=stack.settings.activity_table,
        ingest_ledger_table=stack.settings.ingest_ledger_table,
        scores_table=os.environ["SCORES_TABLE"],
        sends_table=os.environ["SENDS_TABLE"],
        suppression_table=stack.settings.suppression_table,
        conversations_table=os.environ["CONVERSATIONS_TABLE"],
        data_bucket=stack.bucket,
        erasure_activity_lease_wait_seconds=1,
    )


def test_an_erasure_landing_mid_write_waits_for_the_write_then_deletes_what_it_left(
    stack, during_activity_write, erasure_settings
):
    # given an erasure of c1 requested while a file has read c1's item and not yet written it
    file_a = upload(stack, "incoming/orders/a.csv", FILE_A)
    raised = during_activity_write(lambda: erasure.erase("c1", erasure_settings))

    # when the file's write lands, and the erasure is retried (the CLI reports the failure; the operator repeats it)
    run(stack, file_a)
    written = stack.activity("c1")
    report = erasure.erase("c1", erasure_settings)

    # then the erasure waited for the write instead of deleting under it, and deleted what the write left
    assert [type(exc) for exc in raised] == [TransientError]
    assert written is not None
    assert report.tables["activity"] == 1
    assert stack.activity("c1") is None
    assert stack.activity("c2")["order_count"] == 1


def test_ingest_writes_no_activity_while_another_writer_holds_the_activity_lease(stack):
    stack.client("dynamodb").put_item(
        TableName=stack.settings.ingest_ledger_table,
        Item={
            "record_key": {"S": f"lease#{activity_table.LEASE}"},
            "owner": {"S": "erasure"},
            "lease_until": {"N": str(int(time.time()) + 600)},
        },
    )

    with pytest.raises(TransientError):
        run(stack, upload(stack, "incoming/orders/a.csv", FILE_A), seconds_to_wait=1)

    assert stack.activity("c1") is None
