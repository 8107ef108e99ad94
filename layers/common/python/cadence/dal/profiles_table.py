"""The profiles table: one item per customer, keyed on customer_id."""

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item, to_item
from cadence.errors import TransientError

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
