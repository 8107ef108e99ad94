"""The profiles table: one item per customer, keyed on customer_id."""

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item, to_attribute, to_item
from cadence.errors import TransientError
from cadence.ingest.models import AggregateDelta, CustomerUpsert, WriteOutcome

_BATCH_GET_LIMIT = 100
_MAX_UNPROCESSED_ROUNDS = 8


def get(table_name: str, customer_id: str) -> dict[str, Any] | None:
    """One profile, or None when the customer is unknown."""
    try:
        response = clients.table(table_name).get_item(Key={"customer_id": customer_id}, ConsistentRead=True)
    except ClientError as exc:
        raise clients.translate(exc, "profiles.get") from exc
    item = response.get("Item")
    return from_item(item) if item else None


def get_many(table_name: str, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Profiles by customer id via BatchGetItem (100 keys a call, unprocessed keys retried with backoff).

    Raises:
        TransientError: DynamoDB kept keys unprocessed after every retry.
    """
    resource = clients.table(table_name).meta.client
    found: dict[str, dict[str, Any]] = {}
    unique_ids = list(dict.fromkeys(customer_ids))
    for start in range(0, len(unique_ids), _BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table_name: {"Keys": [{"customer_id": cid} for cid in unique_ids[start : start + _BATCH_GET_LIMIT]]}
        }
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            try:
                response = resource.batch_get_item(RequestItems=request)
            except ClientError as exc:
                raise clients.translate(exc, "profiles.batch_get") from exc
            for item in response.get("Responses", {}).get(table_name, []):
                profile = from_item(item)
                found[profile["customer_id"]] = profile
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise TransientError("profiles.batch_get: keys left unprocessed")
    return found


def scan(table_name: str) -> Iterator[dict[str, Any]]:
    """Every profile, page by page."""
    table = clients.table(table_name)
    kwargs: dict[str, Any] = {}
    while True:
        try:
            page = table.scan(**kwargs)
        except ClientError as exc:
            raise clients.translate(exc, "profiles.scan") from exc
        for item in page.get("Items", []):
            yield from_item(item)
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def update_fields(table_name: str, updates: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """SET the given attributes on existing profiles only, leaving every other attribute as it is.

    Returns how many profiles were updated; customers without a profile (e.g. erased) are skipped.
    """
    table = clients.table(table_name)
    updated = 0
    for customer_id, fields in updates:
        item = to_item(fields)
        if not item:
            continue
        names = {f"#f{i}": name for i, name in enumerate(item)}
        values = {f":v{i}": value for i, value in enumerate(item.values())}
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(item)))
        try:
            table.update_item(
                Key={"customer_id": customer_id},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(customer_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if clients.error_code(exc) == "ConditionalCheckFailedException":
                continue
            raise clients.translate(exc, "profiles.update_fields") from exc
        updated += 1
    return updated


# ---------- ingest's writes ----------
# UpdateItem rather than BatchWriteItem: a batch put replaces whole items and would clobber what other
# stages own (score, decile, order aggregates). The low-level client is thread-safe, so a small pool
# overlaps the round trips.

_WRITE_WORKERS = 8
_TRANSACTION_LIMIT = 100
_MAX_TRANSACTION_ROUNDS = 8
_serializer = TypeSerializer()


def _av(value: Any) -> dict[str, Any]:
    return _serializer.serialize(to_attribute(value))


def _in_parallel[T](work: Callable[[T], tuple[int, int]], items: Sequence[T], workers: int) -> WriteOutcome:
    if not items:
        return WriteOutcome()
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        results = list(pool.map(work, items))
    return WriteOutcome(applied=sum(r[0] for r in results), skipped=sum(r[1] for r in results))


def upsert_customers(
    table_name: str, upserts: Sequence[CustomerUpsert], *, workers: int = _WRITE_WORKERS
) -> WriteOutcome:
    """SET each customer's columns unless the profile holds a newer updated_at; then only fill its gaps.

    Returns how many rows were applied and how many were older than the profile (skipped but gap-filled).
    """
    client = clients.client("dynamodb")

    def upsert(record: CustomerUpsert) -> tuple[int, int]:
        fields = {name: value for name, value in record.fields.items() if to_attribute(value) is not None}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _av(value) for i, value in enumerate(fields.values())}
        assignments = [f"#f{i} = :v{i}" for i in range(len(fields))]
        try:
            client.update_item(
                TableName=table_name,
                Key={"customer_id": {"S": record.customer_id}},
                UpdateExpression="SET " + ", ".join([*assignments, "#u = :u"]),
                ConditionExpression="attribute_not_exists(#u) OR #u <= :u",
                ExpressionAttributeNames={**names, "#u": "updated_at"},
                ExpressionAttributeValues={**values, ":u": {"S": record.updated_at}},
            )
        except ClientError as exc:
            if clients.error_code(exc) != "ConditionalCheckFailedException":
                raise clients.translate(exc, "profiles.upsert_customers") from exc
        else:
            return 1, 0
        if fields:
            # An older row may still know what the profile lacks (say, a phone number).
            fill = [f"#f{i} = if_not_exists(#f{i}, :v{i})" for i in range(len(fields))]
            try:
                client.update_item(
                    TableName=table_name,
                    Key={"customer_id": {"S": record.customer_id}},
                    UpdateExpression="SET " + ", ".join(fill),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                raise clients.translate(exc, "profiles.upsert_customers") from exc
        return 0, 1

    return _in_parallel(upsert, upserts, workers)


def apply_deltas(
    table_name: str,
    ledger_table: str,
    deltas: Sequence[AggregateDelta],
    *,
    expires_at: int,
    source_key: str,
    workers: int = _WRITE_WORKERS,
) -> WriteOutcome:
    """Add orders or events to profiles, each record exactly once however often it is delivered.

    One transaction per customer (per 99 records) claims every record in the ledger with
    attribute_not_exists and ADDs the count (and amount) of the records it claimed; records the ledger
    already holds are dropped and the rest retried. Earliest/latest times are then kept with
    conditional SETs, which are safe to repeat.

    Returns records applied and records the ledger had already counted.

    Raises:
        TransientError: DynamoDB kept cancelling for conflicts or throttling after every retry.
    """
    client = clients.client("dynamodb")

    def apply(delta: AggregateDelta) -> tuple[int, int]:
        applied = skipped = 0
        step = _TRANSACTION_LIMIT - 1
        for start in range(0, len(delta.records), step):
            claimed, repeated = _claim_and_add(
                client,
                table_name,
                ledger_table=ledger_table,
                delta=delta,
                records=delta.records[start : start + step],
                expires_at=expires_at,
                source_key=source_key,
            )
            applied, skipped = applied + claimed, skipped + repeated
        for attribute, value in delta.earliest.items():
            _keep_extreme(client, table_name, delta.customer_id, attribute=attribute, value=value, beaten_by=">")
        for attribute, value in delta.latest.items():
            _keep_extreme(client, table_name, delta.customer_id, attribute=attribute, value=value, beaten_by="<")
        return applied, skipped

    return _in_parallel(apply, deltas, workers)


def _claim_and_add(
    client: Any,
    table_name: str,
    *,
    ledger_table: str,
    delta: AggregateDelta,
    records: Sequence[Any],
    expires_at: int,
    source_key: str,
) -> tuple[int, int]:
    remaining = list(records)
    for attempt in range(_MAX_TRANSACTION_ROUNDS):
        if not remaining:
            return 0, len(records)
        claims = [
            {
                "Put": {
                    "TableName": ledger_table,
                    "Item": {
                        "record_key": {"S": record.record_key},
                        "customer_id": {"S": delta.customer_id},
                        "source_key": {"S": source_key},
                        "expires_at": {"N": str(expires_at)},
                    },
                    "ConditionExpression": "attribute_not_exists(record_key)",
                }
            }
            for record in remaining
        ]
        names = {"#c": delta.counter}
        values = {":n": {"N": str(len(remaining))}}
        expression = "ADD #c :n"
        if delta.total:
            names["#t"] = delta.total
            values[":t"] = {"N": str(sum(record.amount for record in remaining))}
            expression += ", #t :t"
        update = {
            "Update": {
                "TableName": table_name,
                "Key": {"customer_id": {"S": delta.customer_id}},
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        try:
            client.transact_write_items(TransactItems=[*claims, update])
        except ClientError as exc:
            if clients.error_code(exc) != "TransactionCanceledException":
                raise clients.translate(exc, "profiles.apply_deltas") from exc
            reasons = exc.response.get("CancellationReasons", [])
            counted = {
                index
                for index, reason in enumerate(reasons[: len(remaining)])
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if counted:
                remaining = [record for index, record in enumerate(remaining) if index not in counted]
                continue
            time.sleep(min(0.05 * 2**attempt, 2.0))  # a conflict with a concurrent writer, or throttling
        else:
            return len(remaining), len(records) - len(remaining)
    raise TransientError("profiles.apply_deltas: transaction kept being cancelled")


def _keep_extreme(
    client: Any, table_name: str, customer_id: str, *, attribute: str, value: str, beaten_by: str
) -> None:
    """SET attribute = value when it is missing or `value` is earlier ('>') / later ('<') than it."""
    try:
        client.update_item(
            TableName=table_name,
            Key={"customer_id": {"S": customer_id}},
            UpdateExpression="SET #a = :v",
            ConditionExpression=f"attribute_not_exists(#a) OR #a {beaten_by} :v",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": {"S": value}},
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "profiles.keep_extreme") from exc
