"""DynamoDB batch writes: items go out as boto3 would serialise them, and every held-back item is written."""

import json
import math
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.awsrequest import AWSResponse
from hypothesis import given
from hypothesis import strategies as st

from cadence.dal import batches, clients
from cadence.dal.items import to_item
from tests.unit.functions.provider_faults import json_answer

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


plain_values = st.one_of(
    values,
    st.floats(),  # NaN and infinities are left out of an item, as to_item leaves them
    st.datetimes(),
    st.dates(),
)


@given(values=st.dictionaries(st.text(min_size=1, max_size=6), plain_values, max_size=6))
def test_plain_item_json_is_to_item_then_serialize_as_json_text_in_one_pass(values: dict[str, Any]) -> None:
    try:
        expected: str | Exception = json.dumps(batches.serialize(to_item(values)), separators=(",", ":"))
    except Exception as exc:  # a value DynamoDB cannot hold fails the same way by both paths
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            batches.plain_item_json(values)
    else:
        assert batches.plain_item_json(values) == expected
        assert batches.plain_item_json(values) == batches.item_json(to_item(values))


@given(
    keys=st.lists(
        st.one_of(
            st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=8), min_size=1, max_size=1),
            st.dictionaries(st.text(min_size=1, max_size=6), scalars.filter(lambda v: v is not None), max_size=2),
        ),
        max_size=5,
    )
)
def test_keys_json_is_the_serialised_keys_as_json_text(keys: list[dict[str, Any]]) -> None:
    try:
        expected: str | Exception = json.dumps([batches.serialize(key) for key in keys], separators=(",", ":"))
    except Exception as exc:  # a value DynamoDB cannot hold fails the same way by both paths
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(type(expected)):
            batches.keys_json(keys)
    else:
        assert f"[{batches.keys_json(keys)}]" == expected


@given(name=st.text(min_size=1, max_size=6), values=st.lists(st.text(max_size=8), max_size=5))
def test_string_keys_are_written_as_the_same_keys_one_at_a_time(name: str, values: list[str]) -> None:
    assert batches.keys_json(batches.StringKeys(name, values)) == batches.keys_json([{name: v} for v in values])


column_values = st.one_of(
    st.text(max_size=6),
    st.text(alphabet=st.characters(codec="ascii"), max_size=6),  # mostly the unescaped path
    st.sampled_from(["%s", "%", '"', "\\", "\x7f", "é", "\n"]),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(min_value=-1e9, max_value=1e9).map(lambda value: round(value, 4)),  # what a profile holds
    st.sampled_from([math.nan, math.inf, -math.inf]),  # left out of an item, as to_item leaves them
    st.dates(),
    st.none(),
)


@st.composite
def value_columns(draw: st.DrawFn) -> dict[str, list[Any]]:
    rows = draw(st.integers(min_value=0, max_value=8))
    names = draw(st.lists(st.text(min_size=1, max_size=5), unique=True, max_size=5))
    columns = {}
    for name in names:
        # A column of one kind (as a profile's are) or of several, with or without absent rows.
        kind = draw(st.sampled_from([st.text(max_size=6), st.booleans(), column_values]))
        cells = st.one_of(kind, st.none()) if draw(st.booleans()) else kind
        columns[name] = draw(st.lists(cells, min_size=rows, max_size=rows))
    return columns


@given(columns=value_columns())
def test_plain_items_json_is_plain_item_json_of_each_row(columns: dict[str, list[Any]]) -> None:
    rows = len(next(iter(columns.values()), []))
    expected = [
        batches.plain_item_json({name: column[row] for name, column in columns.items() if column[row] is not None})
        for row in range(rows)
    ]

    assert batches.plain_items_json(columns) == expected


class HeldBack:
    """DynamoDB under load: the first `times` BatchWriteItem calls store all but the last 10 puts and hand those
    back as UnprocessedItems (the stored part written through a separate client, as DynamoDB would have)."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.bodies: list[bytes] = []
        self.direct = boto3.client("dynamodb")
        clients.client("dynamodb").meta.events.register_first("before-send.dynamodb.BatchWriteItem", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        self.bodies.append(request.body)
        if self.left <= 0:
            return None  # moto answers
        self.left -= 1
        request_items = json.loads(request.body)["RequestItems"]
        stored = {table: puts[:-10] for table, puts in request_items.items() if puts[:-10]}
        if stored:
            self.direct.batch_write_item(RequestItems=stored)
        unprocessed = {table: puts[-10:] for table, puts in request_items.items()}
        return json_answer(request, {"UnprocessedItems": unprocessed})


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
