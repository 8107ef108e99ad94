"""DynamoDB batch writes: items go out as boto3 would serialise them, and every held-back item is written."""

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from cadence.dal import batches, clients

scalars = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
    st.none(),
)
values = st.one_of(
    scalars,
    st.sets(st.text(min_size=1, max_size=4), min_size=1, max_size=3),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=4), scalars, max_size=3),
)


def boto3_serialised(item: dict[str, Any]) -> dict[str, Any] | Exception:
    try:
        return {name: TypeSerializer().serialize(value) for name, value in item.items()}
    except Exception as exc:
        return exc


@given(item=st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=6))
def test_serialize_gives_what_boto3s_type_serializer_gives(item: dict[str, Any]) -> None:
    expected = boto3_serialised(item)
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            batches.serialize(item)
    else:
        assert batches.serialize(item) == expected
        assert batches.deserialize(expected) == {
            name: TypeDeserializer().deserialize(value) for name, value in expected.items()
        }


class HeldBack:
    """DynamoDB under load: the first `times` BatchWriteItem answers hand back the last 10 puts as UnprocessedItems."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.bodies: list[bytes] = []
        events = clients.client("dynamodb", validated=False).meta.events
        events.register("before-send.dynamodb.BatchWriteItem", self._remember)
        events.register("after-call.dynamodb.BatchWriteItem", self._hold_back)

    def _remember(self, request: Any, **_: Any) -> None:
        self.bodies.append(request.body)

    def _hold_back(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.left <= 0:
            return
        self.left -= 1
        request = json.loads(self.bodies[-1])["RequestItems"]
        parsed["UnprocessedItems"] = {table: puts[-10:] for table, puts in request.items()}


@pytest.fixture
def profiles(tables: dict[str, str]) -> str:
    clients.client.cache_clear()
    return tables["ProfilesTable"]


def test_put_items_writes_every_item_when_dynamodb_holds_some_back(profiles: str) -> None:
    # given 60 profiles (three calls) and DynamoDB holding back ten puts of each of the first two answers
    items = [
        {"customer_id": f"c{i:03d}", "email": f"u{i}@example.com", "consent_email": i % 2 == 0, "visits": i}
        for i in range(60)
    ]
    held = HeldBack(times=2)

    batches.put_items(profiles, items, action="test.put_items")

    # then every item is stored as given; the held-back puts went out again (chunk one took three calls)
    table = boto3.resource("dynamodb").Table(profiles)
    stored = sorted(table.scan()["Items"], key=lambda item: item["customer_id"])
    assert stored == [{**item, "visits": Decimal(item["visits"])} for item in items]
    assert held.left == 0
    assert len(held.bodies) == 3 + 2
