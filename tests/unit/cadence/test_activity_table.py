"""The activity table's per-chunk updates: atomic adds, once per batch id, first/last times as min/max."""

from decimal import Decimal

import boto3
import pytest

from cadence.dal import activity_table, clients
from cadence.ingest.models import ActivityDelta

WEEK = 7 * 86_400
NOW = 1_800_000_000.0


def orders(customer_id: str, count: int, spend: str, first: str, last: str) -> ActivityDelta:
    return ActivityDelta(
        customer_id=customer_id,
        added={"order_count": count, "total_spend": Decimal(spend)},
        records=count,
        earliest={"first_order_at": first},
        latest={"last_order_at": last},
    )


@pytest.fixture
def table(tables: dict[str, str]) -> str:
    clients.client.cache_clear()
    return tables["ActivityTable"]


def stored(table: str, customer_id: str) -> dict:
    return boto3.resource("dynamodb").Table(table).get_item(Key={"customer_id": customer_id})["Item"]


def apply(table: str, delta: ActivityDelta, batch_id: str, now: float = NOW):
    return activity_table.apply_deltas(table, [delta], batch_id=batch_id, workers=1, clock=lambda: now)


def test_batches_add_up_and_keep_earliest_and_latest_times(table):
    apply(table, orders("c1", 2, "10.5", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"), "f1:0")
    apply(table, orders("c1", 1, "4.5", "2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z"), "f2:0")
    apply(table, orders("c1", 3, "1", "2024-02-10T00:00:00Z", "2024-04-01T00:00:00Z"), "f3:0")

    item = stored(table, "c1")
    assert (item["order_count"], item["total_spend"]) == (6, Decimal("16"))
    assert (item["first_order_at"], item["last_order_at"]) == ("2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z")


def test_a_repeated_batch_adds_nothing(table):
    delta = orders("c1", 2, "10.5", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")

    first = apply(table, delta, "f1:0")
    again = apply(table, delta, "f1:0", now=NOW + WEEK)  # next week: last week's set still holds it

    assert ((first.applied, first.skipped), (again.applied, again.skipped)) == ((2, 0), (0, 2))
    assert stored(table, "c1")["order_count"] == 2


def test_batch_ids_are_forgotten_after_two_weeks_so_sets_stay_small(table):
    for week in range(6):
        apply(
            table, orders("c1", 1, "1", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"), f"f{week}:0", NOW + week * WEEK
        )

    item = stored(table, "c1")
    remembered = set().union(*(value for name, value in item.items() if name.startswith("applied_batches_")))
    assert remembered == {"f4:0", "f5:0"}
    assert item["order_count"] == 6


def test_a_repeat_heals_times_a_crash_left_behind(table):
    # given a batch whose ADD landed but whose follow-up SET of the later last_order_at did not
    apply(table, orders("c1", 1, "1", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"), "f1:0")
    slot = activity_table.batch_slots(NOW)[0]
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key={"customer_id": {"S": "c1"}},
        UpdateExpression="ADD order_count :one, #slot :batch",
        ExpressionAttributeNames={"#slot": slot},
        ExpressionAttributeValues={":one": {"N": "1"}, ":batch": {"SS": ["f2:0"]}},
    )

    # when the batch is delivered again
    outcome = apply(table, orders("c1", 1, "1", "2024-06-01T00:00:00Z", "2024-06-01T00:00:00Z"), "f2:0")

    # then it counts nothing more but its last order time is kept
    assert (outcome.applied, outcome.skipped) == (0, 1)
    item = stored(table, "c1")
    assert (item["order_count"], item["last_order_at"]) == (2, "2024-06-01T00:00:00Z")
    assert item["first_order_at"] == "2024-01-01T00:00:00Z"


def test_engagement_times_each_keep_their_latest(table):
    def events(visit: str, click: str) -> ActivityDelta:
        return ActivityDelta("c1", {"event_count": 2}, 2, latest={"last_visit_at": visit, "last_click_at": click})

    apply(table, events("2024-03-01T00:00:00Z", "2024-03-05T00:00:00Z"), "e1:0")
    apply(table, events("2024-03-09T00:00:00Z", "2024-03-02T00:00:00Z"), "e2:0")

    item = stored(table, "c1")
    assert (item["event_count"], item["last_visit_at"], item["last_click_at"]) == (
        4,
        "2024-03-09T00:00:00Z",
        "2024-03-05T00:00:00Z",
    )


def test_a_batch_cut_off_after_some_items_counts_each_customer_once_when_repeated(table):
    # given a batch whose first run wrote c1's item and died before the others'
    batch = [orders(f"c{i}", i, "1", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z") for i in (1, 2, 3)]
    apply(table, batch[0], "f1")

    # when the whole batch runs again
    outcome = activity_table.apply_deltas(table, batch, batch_id="f1", workers=1, clock=lambda: NOW)

    # then c1 is skipped and the others count once
    assert (outcome.applied, outcome.skipped) == (2 + 3, 1)
    assert [stored(table, f"c{i}")["order_count"] for i in (1, 2, 3)] == [1, 2, 3]


def test_a_batch_beyond_one_read_and_one_write_reaches_every_customer_once(table):
    # 250 customers: three BatchGetItem calls of at most 100 keys, ten BatchWriteItem calls of at most 25 items
    batch = [orders(f"c{i:03d}", 1, "2.5", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z") for i in range(250)]

    first = activity_table.apply_deltas(table, batch, batch_id="f1", workers=1, clock=lambda: NOW)
    again = activity_table.apply_deltas(table, batch, batch_id="f1", workers=1, clock=lambda: NOW)

    assert ((first.applied, first.skipped), (again.applied, again.skipped)) == ((250, 0), (0, 250))
    items = boto3.resource("dynamodb").Table(table).scan()["Items"]
    assert len(items) == 250
    assert {(item["order_count"], item["total_spend"]) for item in items} == {(1, Decimal("2.5"))}


def test_one_batch_moves_a_first_time_earlier_and_leaves_a_later_last_time_alone(table):
    apply(table, orders("c1", 1, "1", "2024-02-01T00:00:00Z", "2024-05-01T00:00:00Z"), "f1")

    apply(table, orders("c1", 1, "1", "2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z"), "f2")

    item = stored(table, "c1")
    assert (item["first_order_at"], item["last_order_at"]) == ("2024-01-01T00:00:00Z", "2024-05-01T00:00:00Z")
    assert item["order_count"] == 2
