"""The send ledger: one item per (customer, campaign run, channel), claimed before anything is sent."""

from collections.abc import Mapping
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
    CLAIMED = "CLAIMED"
    SENT = "SENT"
    FAILED = "FAILED"  # transient failure: a retry may claim it again
    REJECTED = "REJECTED"  # the provider refused it for good
    SUPPRESSED = "SUPPRESSED"  # not sent on purpose: no consent or address, or the campaign was stopped
    # The provider got the request but never answered: it may have sent. Never claimed again (only FAILED is), so
    # no redelivery sends it a second time; an operator can check the provider's delivery logs.
    UNCERTAIN = "UNCERTAIN"


def send_key(run_id: str, channel: str) -> str:
    return f"{run_id}#{channel}"


def claim(
    table_name: str,
    customer_id: str,
    run_id: str,
    channel: str,
    campaign_id: str,
    *,
    details: Mapping[str, str] | None = None,
) -> bool:
    """Claim the send; False when an earlier delivery already claimed or completed it.

    `details` (variant, offer_value, coupon_code) are kept with the send, so a later order carrying the
    coupon code is attributed to it exactly.
    """
    now = datetime.now(UTC)
    try:
        clients.table(table_name).put_item(
            Item={
                **{name: value for name, value in (details or {}).items() if value},
                "customer_id": customer_id,
                "send_key": send_key(run_id, channel),
                "campaign_id": campaign_id,
                "run_id": run_id,
                "channel": channel,
                "status": SendStatus.CLAIMED.value,
                "claimed_at": now.isoformat(),
                "expires_at": int((now + LEDGER_RETENTION).timestamp()),
            },
            ConditionExpression="attribute_not_exists(send_key) OR #status = :failed",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":failed": SendStatus.FAILED.value},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "sends.claim") from exc
    return True


def record_outcome(
    table_name: str,
    customer_id: str,
    run_id: str,
    channel: str,
    status: SendStatus,
    *,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> None:
    """Move a claimed send to its outcome."""
    values: dict[str, Any] = {":status": status.value, ":at": datetime.now(UTC).isoformat()}
    assignments = ["#status = :status", "completed_at = :at"]
    if provider_message_id:
        values[":mid"] = provider_message_id
        assignments.append("provider_message_id = :mid")
    if reason:
        values[":reason"] = reason
        assignments.append("reason = :reason")
    try:
        clients.table(table_name).update_item(
            Key={"customer_id": customer_id, "send_key": send_key(run_id, channel)},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        raise clients.translate(exc, "sends.record_outcome") from exc


def sends_for_customer(table_name: str, customer_id: str) -> list[dict[str, Any]]:
    """Every ledger item of one customer (frequency caps and erasure build on this)."""
    try:
        items = clients.table(table_name).query(KeyConditionExpression=Key("customer_id").eq(customer_id))["Items"]
    except ClientError as exc:
        raise clients.translate(exc, "sends.for_customer") from exc
    return [from_item(item) for item in items]
