"""The conversations table: what customers said back, and what we need to act on it exactly once.

Items (partition `pk`, sort key `sk`):
- a receipt: `RECEIPT#<channel>#<provider message id>` / `-`: the inbound message was seen (`handled` once every
  action on it is done, and each step that must happen once flagged
  when claimed, see `claim_step`). It holds no address and no text, and
  expires after RECEIPT_DAYS, long after SNS and SES stop redelivering;
- a timeline entry: `CUSTOMER#<customer id>` / `<received at>#<channel>#<message id>` (or `ADDRESS#<channel>#<hash>`
  when no profile holds the sender): the reply with its keyword, intent and routing, for `cadence customer show`;
- a thread: `THREAD#<channel>#<provider message id of a send>` / `-`: which campaign run and batch sent it, so a
  reply naming it (End User Messaging's previousPublishedMessageId) is counted against that run. No customer data.
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import batches, clients
from cadence.dal.items import from_item, to_item

RECEIPT_DAYS = 30
THREAD_DAYS = 30


def _receipt_key(channel: str, message_id: str) -> dict[str, str]:
    return {"pk": f"RECEIPT#{channel}#{message_id}", "sk": "-"}


def customer_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


def address_pk(channel: str, hashed: str) -> str:
    return f"ADDRESS#{channel}#{hashed}"


def receive(table_name: str, channel: str, message_id: str, *, at: datetime) -> bool:
    """Note an inbound message; False when it was handled already (a redelivery: nothing more to do).

    A receipt left unhandled by a delivery cut short is taken again: every action on a message is safe to repeat
    except its reply, which `claim_answer` lets out once.
    """
    try:
        clients.table(table_name).put_item(
            Item={
                **_receipt_key(channel, message_id),
                "received_at": at.isoformat(),
                "expires_at": int((at + timedelta(days=RECEIPT_DAYS)).timestamp()),
            },
            ConditionExpression="attribute_not_exists(pk) OR attribute_not_exists(handled)",
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "conversations.receive") from exc
    return True


def claim_step(table_name: str, channel: str, message_id: str, step: str) -> bool:
    """Claim a step of acting on an inbound message that must happen once (its answer, the hand-over to a person,
    the run's counters); False when an earlier delivery claimed it (and did it, or was cut off doing it)."""
    return _set_once(table_name, channel, message_id, step, f"conversations.claim_{step}")


def mark_handled(table_name: str, channel: str, message_id: str) -> None:
    """Every action on the message is done: a redelivery is dropped from now on."""
    _set_once(table_name, channel, message_id, "handled", "conversations.mark_handled")


def _set_once(table_name: str, channel: str, message_id: str, flag: str, action: str) -> bool:
    try:
        clients.table(table_name).update_item(
            Key=_receipt_key(channel, message_id),
            UpdateExpression="SET #flag = :yes",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#flag)",
            ExpressionAttributeNames={"#flag": flag},
            ExpressionAttributeValues={":yes": True},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, action) from exc
    return True


def put_entries(table_name: str, entries: Sequence[Mapping[str, Any]]) -> None:
    """Write timeline entries (each with its pk and sk); the keys are the message's, so a repeat overwrites itself."""
    batches.put_items(table_name, [to_item(entry) for entry in entries], action="conversations.put_entries")


def timeline(table_name: str, pk: str) -> list[dict[str, Any]]:
    """Every timeline entry under a customer (or an unknown sender), oldest first."""
    return [from_item(item) for item in _query(table_name, pk, "conversations.timeline")]


def delete_partition(table_name: str, pk: str) -> int:
    """Delete every item under `pk` (erasure); returns how many."""
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in _query(table_name, pk, "conversations.delete_partition")]
    table = clients.table(table_name)
    try:
        with table.batch_writer() as writer:
            for key in keys:
                writer.delete_item(Key=key)
    except ClientError as exc:
        raise clients.translate(exc, "conversations.delete_partition") from exc
    return len(keys)


def put_threads(
    table_name: str, channel: str, message_ids: Sequence[str], ref: Mapping[str, str], *, at: datetime
) -> None:
    """Remember which run and batch sent each of these provider message ids (see the module docstring)."""
    expires_at = int((at + timedelta(days=THREAD_DAYS)).timestamp())
    items = [{"pk": f"THREAD#{channel}#{mid}", "sk": "-", **ref, "expires_at": expires_at} for mid in message_ids]
    batches.put_items(table_name, items, action="conversations.put_threads")


def thread(table_name: str, channel: str, message_id: str) -> dict[str, Any] | None:
    """The run and batch that sent this provider message id, or None (not ours, or older than THREAD_DAYS)."""
    try:
        item = clients.table(table_name).get_item(Key={"pk": f"THREAD#{channel}#{message_id}", "sk": "-"}).get("Item")
    except ClientError as exc:
        raise clients.translate(exc, "conversations.thread") from exc
    return from_item(item) if item else None


def _query(table_name: str, pk: str, action: str) -> Iterator[dict[str, Any]]:
    return clients.query_items(
        table_name, action, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": pk}
    )
