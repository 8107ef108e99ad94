"""The profiles table: one item per customer, keyed on customer_id.

Ingest owns it: the customer columns (customer_id ... consent_sms, updated_at), written as whole items in
batches. Order and event aggregates live in the activity table, scores in the scores table, so no other
writer can be overwritten by those batch writes.
"""

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import activity_table as activity_table_dal
from cadence.dal import batches, clients
from cadence.dal.items import from_item


def get(table_name: str, customer_id: str) -> dict[str, Any] | None:
    """One profile, or None when the customer is unknown."""
    try:
        response = clients.table(table_name).get_item(Key={"customer_id": customer_id}, ConsistentRead=True)
    except ClientError as exc:
        raise clients.translate(exc, "profiles.get") from exc
    item = response.get("Item")
    return from_item(item) if item else None


def get_many(
    table_name: str, customer_ids: Sequence[str], *, activity_table: str | None = None
) -> dict[str, dict[str, Any]]:
    """Profiles by customer id, each with its order and event aggregates when `activity_table` is given.

    One BatchGetItem reads both tables (100 keys a call across both, so 50 customers a call); unprocessed
    keys are retried with backoff. Only customers with a profile are returned: activity of a customer whose
    customer row has not arrived yet has nothing to be scored onto.

    Raises:
        TransientError: DynamoDB kept keys unprocessed after every retry.
    """
    profiles = iter_many(table_name, customer_ids, activity_table=activity_table)
    return {profile["customer_id"]: profile for profile in profiles}


def iter_many(
    table_name: str,
    customer_ids: Sequence[str],
    *,
    activity_table: str | None = None,
    workers: int = 1,
    attributes: Sequence[str] | None = None,
    consistent: bool = True,
) -> Iterator[dict[str, Any]]:
    """The profiles of these customers (with activity, as `get_many`), in the order of `customer_ids`.

    `workers` BatchGetItem calls run at once, a few more wait read ahead, so the caller's work on one page
    overlaps the reads of the next; `attributes` limits what is read of a profile (customer_id always);
    `consistent=False` reads eventually consistent, for half the read units.

    Raises:
        TransientError: DynamoDB kept keys unprocessed after every retry.
    """
    unique_ids = list(dict.fromkeys(customer_ids))
    per_call = batches.GET_LIMIT // 2 if activity_table else batches.GET_LIMIT
    projections: dict[str, Sequence[str]] = {}
    if activity_table:
        projections[activity_table] = ("customer_id", *activity_table_dal.ATTRIBUTES)
    if attributes:
        projections[table_name] = tuple(dict.fromkeys(("customer_id", *attributes)))

    def read(ids: Sequence[str]) -> list[dict[str, Any]]:
        keys = [{"customer_id": cid} for cid in ids]
        request = {table_name: keys, **({activity_table: keys} if activity_table else {})}
        items = batches.get_items(request, projections=projections, action="profiles.batch_get", consistent=consistent)
        activity = {item["customer_id"]: item for item in items.get(activity_table, [])} if activity_table else {}
        found = {item["customer_id"]: item for item in items[table_name]}
        return [from_item({**found[cid], **activity.get(cid, {})}) for cid in ids if cid in found]

    calls = (unique_ids[start : start + per_call] for start in range(0, len(unique_ids), per_call))
    if workers <= 1:
        for ids in calls:
            yield from read(ids)
        return
    # The low-level client is thread-safe; botocore's pool holds 10 connections, so a handful of calls at once.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-get") as pool:
        ahead: deque[Future[list[dict[str, Any]]]] = deque()
        for ids in calls:
            ahead.append(pool.submit(read, ids))
            if len(ahead) >= 2 * workers:
                yield from ahead.popleft().result()
        while ahead:
            yield from ahead.popleft().result()


def read_for_merge(table_name: str, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored items of these customers as they are (numbers as Decimal), 100 keys a BatchGetItem call.

    Raises:
        TransientError: DynamoDB kept keys unprocessed after every retry.
    """
    return batches.items_by_key(table_name, "customer_id", customer_ids, action="profiles.read_for_merge")


def put_many(table_name: str, profiles: Sequence[Mapping[str, Any]], *, workers: int = 1) -> None:
    """Write whole profiles with BatchWriteItem (25 a call, unprocessed items retried with backoff).

    A put replaces the item: callers pass the stored item merged with the new values (see read_for_merge).

    Raises:
        TransientError: DynamoDB kept items unprocessed after every retry.
    """
    batches.put_items(table_name, profiles, action="profiles.put_many", workers=workers, encode=batches.plain_item_json)


def put_columns(table_name: str, columns: Mapping[str, Sequence[Any]], *, workers: int = 1) -> None:
    """`put_many` of the profiles these columns hold (a row each; None: the profile lacks the attribute), written
    as JSON text a column at a time (batches.plain_items_json).

    Raises:
        TransientError: DynamoDB kept items unprocessed after every retry.
    """
    texts = batches.plain_items_json(columns) if columns else []
    batches.put_item_texts(table_name, texts, action="profiles.put_many", workers=workers)


def withdraw_consent(table_name: str, customer_id: str, channel: str, *, at: str, source: str) -> str | None:
    """Set the channel's consent to no, with when and why; returns the channel's address (None: no such customer).

    `<channel>_updated_at` moves to `at` too, so a file row older than the withdrawal cannot give consent back
    (cadence.ingest.merge goes by the channel's own time).

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    return set_consent(table_name, customer_id, channel, False, at=at, source=source)


def set_consent(table_name: str, customer_id: str, channel: str, consent: bool, *, at: str, source: str) -> str | None:
    """Set the channel's consent (a STOP, a START, an unsubscribe), with when and why, as `withdraw_consent` says;
    returns the channel's address (None: no such customer).

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    address_name = "email" if channel == "email" else "phone"
    try:
        response = clients.table(table_name).update_item(
            Key={"customer_id": customer_id},
            UpdateExpression="SET #consent = :consent, #at = :at, #source = :source, #stamp = :at",
            ConditionExpression="attribute_exists(customer_id)",
            ExpressionAttributeNames={
                "#consent": f"consent_{channel}",
                "#at": f"consent_{channel}_at",
                "#source": f"consent_{channel}_source",
                "#stamp": f"{channel}_updated_at",
            },
            ExpressionAttributeValues={":consent": consent, ":at": at, ":source": source},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise clients.translate(exc, "profiles.set_consent") from exc
    value = response.get("Attributes", {}).get(address_name)
    return str(value) if value else ""


def set_quiet_until(table_name: str, customer_id: str, until: str, *, source: str) -> bool:
    """No campaign plans the customer before `until` (ISO UTC; a later quiet period is never shortened); False when
    the customer is unknown.

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    try:
        clients.table(table_name).update_item(
            Key={"customer_id": customer_id},
            UpdateExpression="SET quiet_until = :until, quiet_source = :source",
            ConditionExpression=(
                "attribute_exists(customer_id) AND (attribute_not_exists(quiet_until) OR quiet_until < :until)"
            ),
            ExpressionAttributeValues={":until": until, ":source": source},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return get(table_name, customer_id) is not None
        raise clients.translate(exc, "profiles.set_quiet_until") from exc
    return True


# The profiles' indexes by address (template.yaml: keys only and sparse: a profile without the address is not in it).
PHONE_INDEX = "by-phone"
EMAIL_INDEX = "by-email"


def customers_with_phones(table_name: str, phones: Sequence[str]) -> dict[str, list[str]]:
    """Customer ids by phone number, for these numbers: one Query of the by-phone index a number (eventually
    consistent, as every index read is).

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    return _holders(table_name, PHONE_INDEX, "phone", phones)


def customers_with_emails(table_name: str, emails: Sequence[str]) -> dict[str, list[str]]:
    """Customer ids by email address (as ingest stores it: trimmed, lower-cased), one Query of by-email each.

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    return _holders(table_name, EMAIL_INDEX, "email", emails)


def _holders(table_name: str, index: str, attribute: str, values: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for value in dict.fromkeys(values):
        items = clients.query_items(
            table_name,
            f"profiles.customers_with_{attribute}",
            IndexName=index,
            KeyConditionExpression="#address = :value",
            ExpressionAttributeNames={"#address": attribute},
            ExpressionAttributeValues={":value": value},
        )
        holders = sorted(str(item["customer_id"]) for item in items)
        if holders:
            found[value] = holders
    return found
