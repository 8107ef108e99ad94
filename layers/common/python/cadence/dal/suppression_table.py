"""The suppression table (see cadence.suppression): the list, its change log, soft-bounce counts.

Items (partition `pk`, sort key `sk`):
- an entry: `SUPP#<channel>#<first hex digit of the hash>` / `<hash>#<reason>`, with source, at, customer_id.
  Sixteen partitions per channel let the planner read the whole list with a few Queries; one item per reason, so
  a later reason never overwrites an earlier one (a consent change cannot lift a hard bounce);
- a change: `LOG#<UTC day>` / `<at>#<channel>#<hash>#<reason>#<customer_id>`, the same entry once more, expiring
  after LOG_DAYS (no run waits that long between planning and sending);
- a soft-bounce count: `SOFT#<channel>#<digit>` / `<hash>`, with the message ids counted (a redelivered event
  counts once).
"""

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import batches, clients
from cadence.suppression import ADDRESS_REASONS, Channel, Reason, Suppression

LOG_DAYS = 30
_DIGITS = "0123456789abcdef"


def _entry_pk(channel: str, hashed: str) -> str:
    return f"SUPP#{channel}#{hashed[0]}"


def _items(entry: Suppression) -> list[dict[str, Any]]:
    at = entry.at.astimezone(UTC)
    common = {
        "channel": entry.channel,
        "address_hash": entry.address_hash,
        "reason": entry.reason.value,
        "source": entry.source,
        "at": at.isoformat(),
        **({"customer_id": entry.customer_id} if entry.customer_id else {}),
    }
    log_sk = f"{at.isoformat()}#{entry.channel}#{entry.address_hash}#{entry.reason.value}#{entry.customer_id or '-'}"
    return [
        {
            "pk": _entry_pk(entry.channel, entry.address_hash),
            "sk": f"{entry.address_hash}#{entry.reason.value}",
            **common,
        },
        {
            "pk": f"LOG#{at.date().isoformat()}",
            "sk": log_sk,
            **common,
            "expires_at": int((at + timedelta(days=LOG_DAYS)).timestamp()),
        },
    ]


def _entry(item: dict[str, Any]) -> Suppression:
    return Suppression(
        channel=item["channel"],
        address_hash=item["address_hash"],
        reason=Reason(item["reason"]),
        source=str(item.get("source", "")),
        at=datetime.fromisoformat(item["at"]),
        customer_id=item.get("customer_id"),
    )


def add(table_name: str, entries: Sequence[Suppression], *, workers: int = 1) -> None:
    """Put the entries on the list and in the change log (BatchWriteItem; writing one again changes nothing
    but its time).

    Raises:
        TransientError: DynamoDB kept items unprocessed, or throttled.
    """
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        for item in _items(entry):
            items[(item["pk"], item["sk"])] = item  # one key once per BatchWriteItem
    batches.put_items(table_name, list(items.values()), action="suppression.add", workers=workers)


def _query(table_name: str, action: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    return clients.query_items(table_name, action, **arguments)


def changes_since(table_name: str, since: datetime, now: datetime | None = None) -> list[Suppression]:
    """Every change stamped at or after `since` (strongly consistent: a change written is a change read), one
    Query per UTC day from `since` to `now`.

    Raises:
        TransientError: DynamoDB throttled or timed out.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = since.astimezone(UTC)
    found = []
    day = start.date()
    while day <= now.date():
        condition = "pk = :pk AND sk >= :from"
        found += [
            _entry(item)
            for item in _query(
                table_name,
                "suppression.changes_since",
                KeyConditionExpression=condition,
                ExpressionAttributeValues={":pk": f"LOG#{day.isoformat()}", ":from": start.isoformat()},
                ConsistentRead=True,
            )
        ]
        day += timedelta(days=1)
    return found


def suppressed_addresses(
    table_name: str, channels: Iterable[Channel], reasons: frozenset[Reason] = ADDRESS_REASONS
) -> frozenset[tuple[str, str]]:
    """(channel, address hash) of every entry with one of `reasons` (by default the address reasons: what the
    planner leaves out).

    Sixteen Queries per channel (eventually consistent: the dispatch check covers what arrives after planning).
    """
    found = set()
    for channel in channels:
        for digit in _DIGITS:
            for item in _query(
                table_name,
                "suppression.suppressed_addresses",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": f"SUPP#{channel}#{digit}"},
                ProjectionExpression="address_hash, reason",
            ):
                if item["reason"] in reasons:
                    found.add((channel, str(item["address_hash"])))
    return frozenset(found)


def entries_of(table_name: str, channel: Channel, hashed: str) -> list[Suppression]:
    """The list's entries (one per reason) of one address."""
    items = _query(
        table_name,
        "suppression.entries_of",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :hash)",
        ExpressionAttributeValues={":pk": _entry_pk(channel, hashed), ":hash": f"{hashed}#"},
    )
    return [_entry(item) for item in items]


def count_soft_bounce(table_name: str, channel: Channel, hashed: str, message_id: str) -> int | None:
    """Count one soft bounce of the address; its count so far, or None when this message was counted already.

    Raises:
        TransientError: DynamoDB throttled or timed out.
    """
    try:
        response = clients.table(table_name).update_item(
            Key={"pk": f"SOFT#{channel}#{hashed[0]}", "sk": hashed},
            UpdateExpression="ADD bounces :one, message_ids :ids",
            ConditionExpression="attribute_not_exists(message_ids) OR NOT contains(message_ids, :id)",
            ExpressionAttributeValues={":one": 1, ":ids": {message_id}, ":id": message_id},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise clients.translate(exc, "suppression.count_soft_bounce") from exc
    return int(response["Attributes"]["bounces"])


def put_tombstone(table_name: str, customer_hash: str, *, at: datetime) -> None:
    """Note an erased customer (by the hash of their id): ingest gives a re-imported customer no consent."""
    try:
        clients.table(table_name).put_item(
            Item={"pk": f"TOMB#{customer_hash[0]}", "sk": customer_hash, "at": at.astimezone(UTC).isoformat()}
        )
    except ClientError as exc:
        raise clients.translate(exc, "suppression.put_tombstone") from exc


def tombstones(table_name: str) -> frozenset[str]:
    """The hashes of every erased customer's id (sixteen Queries)."""
    return frozenset(erasures(table_name))


def erasures(table_name: str) -> dict[str, datetime]:
    """When each erased customer (by the hash of their id) was erased: sixteen strongly consistent Queries.

    Consistent, as erasure notes its tombstone before it deletes: a writer reading after that delete sees it.

    Raises:
        TransientError: DynamoDB throttled or timed out.
    """
    found = {}
    for digit in _DIGITS:
        for item in _query(
            table_name,
            "suppression.erasures",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":pk": f"TOMB#{digit}"},
            ProjectionExpression="sk, #at",
            ConsistentRead=True,
        ):
            found[str(item["sk"])] = datetime.fromisoformat(str(item["at"]))
    return found


def forget_customer(table_name: str, customer_id: str) -> int:
    """Take the customer id off every entry and change naming it (their hashes stay); returns how many.

    A Scan: erasure is rare, and the list holds no index by customer.
    """
    changed = 0
    table = clients.table(table_name)
    for page in clients.scan_pages(
        table_name,
        "suppression.forget_customer",
        FilterExpression="customer_id = :cid",
        ExpressionAttributeValues={":cid": customer_id},
    ):
        for item in page:
            key = {"pk": item["pk"], "sk": item["sk"]}
            try:
                if str(item["pk"]).startswith("LOG#"):
                    # the change's key names the customer: put it again under a key without the id
                    table.delete_item(Key=key)
                    table.put_item(
                        Item={
                            **{k: v for k, v in item.items() if k != "customer_id"},
                            "sk": str(item["sk"]).rsplit("#", 1)[0] + "#-",
                        }
                    )
                else:
                    table.update_item(Key=key, UpdateExpression="REMOVE customer_id")
            except ClientError as exc:
                raise clients.translate(exc, "suppression.forget_customer") from exc
            changed += 1
    return changed


def lift(table_name: str, channel: Channel, hashed: str, reason: Reason) -> bool:
    """Take one reason off an address (a START after a STOP lifts `sms_opt_out`; a bounce or an erasure stays);
    True when it was on the list. The change log keeps the entry: a run planned while it held stays stopped.

    Raises:
        TransientError / PermanentError: DynamoDB refused.
    """
    try:
        response = clients.table(table_name).delete_item(
            Key={"pk": _entry_pk(channel, hashed), "sk": f"{hashed}#{reason.value}"}, ReturnValues="ALL_OLD"
        )
    except ClientError as exc:
        raise clients.translate(exc, "suppression.lift") from exc
    return bool(response.get("Attributes"))
