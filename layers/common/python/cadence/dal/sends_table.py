"""The send ledger: one item per (customer, campaign run, channel), claimed under a lease before anything is sent.

A send moves CLAIMED -> SENDING -> one final outcome. The claim carries a token and a lease (an expiry time):

- CLAIMED means the worker has not yet started the provider call, so a claim whose lease expired was provably not
  sent and the next delivery takes it over (a new token);
- SENDING is written (conditional on the token) just before the provider call, so a SENDING item whose lease
  expired may have been sent: it is settled IN_DOUBT and never sent again by itself;
- every write after the claim is conditional on the token, so a worker that lost its claim cannot send or settle.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item

# Ledger items outlive every redelivery window (SQS retention + DLQ redrive) by far.
LEDGER_RETENTION = timedelta(days=400)


class SendStatus(StrEnum):
    CLAIMED = "CLAIMED"  # a worker holds the lease and has not called the provider yet
    SENDING = "SENDING"  # the provider call has started (or is about to)
    SENT = "SENT"
    FAILED = "FAILED"  # a transient failure showed nothing was sent: a retry may claim it again
    REJECTED = "REJECTED"  # the provider refused it for good (reason: the provider's code)
    SUPPRESSED = "SUPPRESSED"  # not sent on purpose: no consent or address, or the campaign was stopped
    # The provider may have accepted it (no answer came, or the worker died mid-call). Never claimed again, so no
    # redelivery sends it a second time; counted and reported for an operator to check the provider's logs.
    IN_DOUBT = "IN_DOUBT"
    CANCELLED = "CANCELLED"  # the run was cancelled before it was sent
    UNCERTAIN = "UNCERTAIN"  # what IN_DOUBT was called before leases; still final when read from older items


FINAL_STATUSES = frozenset(
    {
        SendStatus.SENT,
        SendStatus.REJECTED,
        SendStatus.SUPPRESSED,
        SendStatus.IN_DOUBT,
        SendStatus.CANCELLED,
        SendStatus.UNCERTAIN,
    }
)


@dataclass(frozen=True)
class Claim:
    """What claiming a send found: a token when this delivery holds it, else the stored status and lease."""

    token: str | None
    status: SendStatus | None = None
    lease_expired: bool = False
    holder_token: str | None = None


def send_key(run_id: str, channel: str) -> str:
    return f"{run_id}#{channel}"


def _now() -> datetime:
    return datetime.now(UTC)


def _table(table_name: str) -> Any:
    return clients.table(table_name, clients.LEDGER_BUDGET)


def _key(customer_id: str, run_id: str, channel: str) -> dict[str, str]:
    return {"customer_id": customer_id, "send_key": send_key(run_id, channel)}


def claim(
    table_name: str,
    customer_id: str,
    run_id: str,
    channel: str,
    campaign_id: str,
    *,
    lease_seconds: float,
    details: Mapping[str, str] | None = None,
) -> Claim:
    """Claim the send under a lease: new, FAILED, or CLAIMED with an expired lease (its worker never sent it).

    `details` (variant, offer_value, coupon_code) are kept with the send, so a later order carrying the
    coupon code is attributed to it exactly.
    """
    now = _now()
    token = uuid.uuid4().hex
    try:
        _table(table_name).put_item(
            Item={
                **{name: value for name, value in (details or {}).items() if value},
                **_key(customer_id, run_id, channel),
                "campaign_id": campaign_id,
                "run_id": run_id,
                "channel": channel,
                "status": SendStatus.CLAIMED.value,
                "claim_token": token,
                "claimed_at": now.isoformat(),
                "lease_until": (now + timedelta(seconds=lease_seconds)).isoformat(),
                "expires_at": int((now + LEDGER_RETENTION).timestamp()),
            },
            ConditionExpression=(
                "attribute_not_exists(send_key) OR #status = :failed OR (#status = :claimed AND lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":failed": SendStatus.FAILED.value,
                ":claimed": SendStatus.CLAIMED.value,
                ":now": now.isoformat(),
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "sends.claim") from exc
        # A consistent read rather than ReturnValuesOnConditionCheckFailure: the Table resource leaves that item in
        # DynamoDB's wire format. Only contended or repeated deliveries pay for it.
        return _found(_get(table_name, customer_id, run_id, channel), now)
    return Claim(token=token)


def _get(table_name: str, customer_id: str, run_id: str, channel: str) -> dict[str, Any]:
    try:
        item = _table(table_name).get_item(Key=_key(customer_id, run_id, channel), ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise clients.translate(exc, "sends.get") from exc
    return from_item(item) if item else {}


def _found(stored: Mapping[str, Any], now: datetime) -> Claim:
    status = SendStatus(stored["status"]) if stored.get("status") else None
    lease_until = stored.get("lease_until")
    # Items written before leases have none: a CLAIMED one of those is as old as any expired lease.
    expired = lease_until is None or datetime.fromisoformat(str(lease_until)) < now
    return Claim(token=None, status=status, lease_expired=expired, holder_token=stored.get("claim_token"))


def start_sending(
    table_name: str, customer_id: str, run_id: str, channel: str, token: str, *, lease_seconds: float
) -> bool:
    """Mark the claimed send SENDING just before the provider call; False when this worker no longer holds it."""
    now = _now()
    return _conditional_update(
        table_name,
        _key(customer_id, run_id, channel),
        update="SET #status = :sending, sending_at = :now, lease_until = :lease",
        condition="claim_token = :token AND #status = :claimed",
        values={
            ":sending": SendStatus.SENDING.value,
            ":claimed": SendStatus.CLAIMED.value,
            ":token": token,
            ":now": now.isoformat(),
            ":lease": (now + timedelta(seconds=lease_seconds)).isoformat(),
        },
        action="sends.start_sending",
    )


def settle(
    table_name: str,
    customer_id: str,
    run_id: str,
    channel: str,
    *,
    token: str,
    status: SendStatus,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record the outcome of this worker's claim; False when another delivery took the claim over.

    The condition is the token alone: a known outcome replaces an IN_DOUBT another delivery wrote meanwhile.
    """
    values: dict[str, Any] = {":status": status.value, ":at": _now().isoformat(), ":token": token}
    assignments = ["#status = :status", "completed_at = :at"]
    if provider_message_id:
        values[":mid"] = provider_message_id
        assignments.append("provider_message_id = :mid")
    if reason:
        values[":reason"] = reason
        assignments.append("reason = :reason")
    return _conditional_update(
        table_name,
        _key(customer_id, run_id, channel),
        update="SET " + ", ".join(assignments),
        condition="claim_token = :token",
        values=values,
        action="sends.settle",
    )


def settle_in_doubt(table_name: str, customer_id: str, run_id: str, channel: str, holder_token: str | None) -> bool:
    """Settle a send whose worker started the provider call and never finished: IN_DOUBT, never sent again."""
    condition = "#status = :sending AND lease_until < :now"
    values: dict[str, Any] = {
        ":sending": SendStatus.SENDING.value,
        ":in_doubt": SendStatus.IN_DOUBT.value,
        ":now": _now().isoformat(),
        ":reason": "lease_expired_while_sending",
    }
    if holder_token:
        condition += " AND claim_token = :token"
        values[":token"] = holder_token
    return _conditional_update(
        table_name,
        _key(customer_id, run_id, channel),
        update="SET #status = :in_doubt, completed_at = :now, reason = :reason",
        condition=condition,
        values=values,
        action="sends.settle_in_doubt",
    )


def _conditional_update(
    table_name: str, key: dict[str, str], *, update: str, condition: str, values: dict[str, Any], action: str
) -> bool:
    try:
        _table(table_name).update_item(
            Key=key,
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, action) from exc
    return True


def sends_for_customer(table_name: str, customer_id: str) -> list[dict[str, Any]]:
    """Every ledger item of one customer (frequency caps and erasure build on this)."""
    try:
        items = clients.table(table_name).query(KeyConditionExpression=Key("customer_id").eq(customer_id))["Items"]
    except ClientError as exc:
        raise clients.translate(exc, "sends.for_customer") from exc
    return [from_item(item) for item in items]
