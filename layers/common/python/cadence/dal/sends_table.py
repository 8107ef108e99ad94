"""The send ledger: one item per batch of a run (up to 50 sends of one channel), claimed under a lease.

Items sit under partition `BATCH#<run_id>`, sort key `<channel>#<batch_id>`, with a `recipients` map holding each
send's outcome: a run's ledger is one Query, and a batch costs two writes however many sends it holds (the claim
and the settle). The claim carries a token and a lease (an expiry time), and is one of:

- SENDING, for a worker that read everything it needs before claiming and calls the provider next: a SENDING batch
  whose lease expired may have been sent, so its unsettled sends are settled IN_DOUBT and never sent again by
  themselves (a worker that dies before claiming leaves nothing, and the next delivery starts at once);
- CLAIMED, for a batch that will not send (its campaign paused, cancelled or gone): a claim whose lease expired was
  provably not sent, and the next delivery takes it over (a new token).

Settled, the batch is SETTLED, or PARTIAL while some sends FAILED or are HELD and may go out later. Every write after
the claim is conditional on the token, so a worker that lost its claim cannot send or settle.
"""

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import Binary
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
    # Not sent because the campaign was paused: kept in the ledger and queued again when it is resumed (or ended
    # CANCELLED when it is cancelled instead). Not final, so the batch can be claimed again for it.
    HELD = "HELD"
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


class BatchStatus(StrEnum):
    CLAIMED = "CLAIMED"  # a worker holds the lease and has not called the provider yet
    SENDING = "SENDING"  # the provider calls have started
    PARTIAL = "PARTIAL"  # settled, but some sends FAILED or HELD (not sent): a later delivery claims it for those
    SETTLED = "SETTLED"  # every send has a final outcome


# Provider message ids in their binary form, a tag byte first: SES's (60 characters: 16 hex digits, a UUID, 6 hex
# digits) in 28 bytes, SNS's and webhooks' UUIDs in 17. Anything else is kept as the text it is.
_SES_ID = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-([0-9a-f]{6})$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SES_TAG, _UUID_TAG = b"\x01", b"\x02"


def pack_message_id(message_id: str) -> str | bytes:
    """The id as the ledger stores it: bytes for the shapes SES, SNS and webhooks give, else the text."""
    if match := _SES_ID.match(message_id):
        head, middle, tail = match.groups()
        return _SES_TAG + bytes.fromhex(head) + uuid.UUID(middle).bytes + bytes.fromhex(tail)
    if _UUID.match(message_id):
        return _UUID_TAG + uuid.UUID(message_id).bytes
    return message_id


def unpack_message_id(stored: str | bytes | Binary) -> str:
    """`pack_message_id`'s inverse; a text id (also as items before packing stored every id) is returned as is."""
    if isinstance(stored, str):
        return stored
    # boto3 reads a Binary, whose bytes its stubs leave out
    data = stored if isinstance(stored, bytes) else bytes(stored.value)  # type: ignore[attr-defined]
    if data[:1] == _SES_TAG and len(data) == 28:
        return f"{data[1:9].hex()}-{uuid.UUID(bytes=data[9:25])}-{data[25:].hex()}"
    if data[:1] == _UUID_TAG and len(data) == 17:
        return str(uuid.UUID(bytes=data[1:]))
    raise ValueError("not a packed message id")


@dataclass(frozen=True)
class Outcome:
    """What became of one send of a batch, with what the run decided for it (kept for coupon attribution)."""

    status: SendStatus
    reason: str | None = None
    message_id: str | None = None
    variant: str | None = None
    offer_value: str | None = None
    coupon_code: str | None = None

    def to_attribute(self) -> dict[str, str | bytes]:
        # One-letter names and packed message ids: the map is most of a batch item's size, and DynamoDB bills
        # writes by the kilobyte.
        values: dict[str, str | bytes | None] = {"s": self.status.value, "r": self.reason}
        values |= {"m": pack_message_id(self.message_id) if self.message_id else None}
        values |= {"v": self.variant, "o": self.offer_value, "c": self.coupon_code}
        return {name: value for name, value in values.items() if value}

    @classmethod
    def from_attribute(cls, value: Mapping[str, Any]) -> "Outcome":
        message_id = value.get("m")
        return cls(
            status=SendStatus(value["s"]),
            reason=value.get("r"),
            message_id=unpack_message_id(message_id) if message_id is not None else None,
            variant=value.get("v"),
            offer_value=value.get("o"),
            coupon_code=value.get("c"),
        )


@dataclass(frozen=True)
class BatchClaim:
    """What claiming a batch found: a token when this delivery holds it, else the stored status and lease.

    `outcomes` are the sends an earlier delivery settled (a PARTIAL batch's final ones are kept).
    """

    token: str | None
    status: BatchStatus | None = None
    lease_expired: bool = False
    holder_token: str | None = None
    outcomes: Mapping[str, Outcome] | None = None
    # When the holder's lease runs out (None: no lease was stored).
    lease_until: datetime | None = None
    # The earlier settle was the batch's last delivery before the dead-letter queue: its FAILED sends were final.
    exhausted: bool = False


def batch_partition(run_id: str) -> str:
    """The ledger's partition of a run's batches (the table's hash key is named customer_id, for history)."""
    return f"BATCH#{run_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def _table(table_name: str) -> Any:
    return clients.table(table_name, clients.LEDGER_BUDGET)


def _key(run_id: str, channel: str, batch_id: str) -> dict[str, str]:
    return {"customer_id": batch_partition(run_id), "send_key": f"{channel}#{batch_id}"}


def claim_batch(
    table_name: str,
    run_id: str,
    channel: str,
    batch_id: str,
    campaign_id: str,
    *,
    lease_seconds: float,
    sending: bool = False,
) -> BatchClaim:
    """Claim the batch under a lease: new, PARTIAL, or CLAIMED with an expired lease (its worker never sent).

    `sending`: the claim is the mark that the provider calls start (SENDING), for a worker that has read all it
    needs and sends next; without it the batch is CLAIMED (settled without sending: held, cancelled, suppressed).
    """
    now = _now()
    token = uuid.uuid4().hex
    try:
        response = _table(table_name).update_item(
            Key=_key(run_id, channel, batch_id),
            UpdateExpression=(
                "SET #status = :status, claim_token = :token, claimed_at = :now, lease_until = :lease, "
                "campaign_id = :campaign, run_id = :run, channel = :channel, batch_id = :batch, "
                "expires_at = if_not_exists(expires_at, :expires)"
            ),
            ConditionExpression=(
                "attribute_not_exists(send_key) OR #status = :partial OR (#status = :claimed AND lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": (BatchStatus.SENDING if sending else BatchStatus.CLAIMED).value,
                ":claimed": BatchStatus.CLAIMED.value,
                ":partial": BatchStatus.PARTIAL.value,
                ":token": token,
                ":now": now.isoformat(),
                ":lease": (now + timedelta(seconds=lease_seconds)).isoformat(),
                ":campaign": campaign_id,
                ":run": run_id,
                ":channel": channel,
                ":batch": batch_id,
                ":expires": int((now + LEDGER_RETENTION).timestamp()),
            },
            # What the item held before this claim: earlier outcomes, and whether they were settled as final.
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "sends.claim_batch") from exc
        # A consistent read rather than ReturnValuesOnConditionCheckFailure: the Table resource leaves that item in
        # DynamoDB's wire format. Only contended or repeated deliveries pay for it.
        return _found(_get(table_name, run_id, channel, batch_id), now)
    earlier = from_item(response.get("Attributes", {}))
    return BatchClaim(token=token, outcomes=_outcomes(earlier), exhausted=bool(earlier.get("exhausted")))


def _get(table_name: str, run_id: str, channel: str, batch_id: str) -> dict[str, Any]:
    try:
        item = _table(table_name).get_item(Key=_key(run_id, channel, batch_id), ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise clients.translate(exc, "sends.get_batch") from exc
    return from_item(item) if item else {}


def _outcomes(stored: Mapping[str, Any]) -> dict[str, Outcome]:
    return {customer_id: Outcome.from_attribute(value) for customer_id, value in stored.get("recipients", {}).items()}


def _found(stored: Mapping[str, Any], now: datetime) -> BatchClaim:
    stored_lease = stored.get("lease_until")
    lease_until = datetime.fromisoformat(str(stored_lease)) if stored_lease is not None else None
    return BatchClaim(
        token=None,
        status=BatchStatus(stored["status"]) if stored.get("status") else None,
        lease_expired=lease_until is None or lease_until < now,
        lease_until=lease_until,
        holder_token=stored.get("claim_token"),
        outcomes=_outcomes(stored),
        exhausted=bool(stored.get("exhausted")),
    )


def _status_of(outcomes: Mapping[str, Outcome]) -> BatchStatus:
    waiting = any(outcome.status not in FINAL_STATUSES for outcome in outcomes.values())
    return BatchStatus.PARTIAL if waiting else BatchStatus.SETTLED


def counted(outcomes: Mapping[str, Outcome], *, exhausted: bool) -> int:
    """How many of a batch's sends are done for the run's completion: final, or FAILED on its last delivery."""
    return sum(
        outcome.status in FINAL_STATUSES or (exhausted and outcome.status is SendStatus.FAILED)
        for outcome in outcomes.values()
    )


def settle(
    table_name: str,
    run_id: str,
    channel: str,
    batch_id: str,
    *,
    token: str,
    outcomes: Mapping[str, Outcome],
    exhausted: bool = False,
) -> bool:
    """Record every send's outcome in one write; False when another delivery took the claim over.

    `exhausted`: this was the batch's last delivery before the dead-letter queue, so its FAILED sends stay failed
    (until `cadence campaign retry-failed` queues them again). The condition is the token alone: known outcomes
    replace the IN_DOUBT another delivery wrote meanwhile.
    """
    return _conditional_update(
        table_name,
        _key(run_id, channel, batch_id),
        update="SET #status = :status, completed_at = :at, recipients = :recipients, exhausted = :exhausted",
        condition="claim_token = :token",
        values={
            ":status": _status_of(outcomes).value,
            ":at": _now().isoformat(),
            ":token": token,
            ":recipients": {customer_id: outcome.to_attribute() for customer_id, outcome in outcomes.items()},
            ":exhausted": exhausted,
        },
        action="sends.settle",
    )


def checkpoint(
    table_name: str, run_id: str, channel: str, batch_id: str, *, token: str, outcomes: Mapping[str, Outcome]
) -> bool:
    """Record the outcomes known so far while the batch stays SENDING (before sending some of it again, e.g. the
    destinations SES throttled); False when another delivery took the claim over.

    A worker that dies after this leaves the known outcomes in place: only the sends not final yet become IN_DOUBT.
    """
    return _conditional_update(
        table_name,
        _key(run_id, channel, batch_id),
        update="SET recipients = :recipients",
        condition="claim_token = :token AND #status = :sending",
        values={
            ":token": token,
            ":sending": BatchStatus.SENDING.value,
            ":recipients": {customer_id: outcome.to_attribute() for customer_id, outcome in outcomes.items()},
        },
        action="sends.checkpoint",
    )


def settle_in_doubt(
    table_name: str, run_id: str, channel: str, batch_id: str, *, claim: BatchClaim, customer_ids: Sequence[str]
) -> dict[str, Outcome] | None:
    """Settle a batch whose worker started the provider calls and never finished: its unsettled sends IN_DOUBT.

    Returns every outcome, or None when the batch was settled meanwhile.
    """
    in_doubt = Outcome(SendStatus.IN_DOUBT, reason="lease_expired_while_sending")
    earlier = dict(claim.outcomes or {})
    # Final outcomes stay; the message's other sends were being sent and may have gone out.
    unsettled = [c for c in customer_ids if c not in earlier or earlier[c].status not in FINAL_STATUSES]
    outcomes = {**earlier, **dict.fromkeys(unsettled, in_doubt)}
    condition = "#status = :sending AND lease_until < :now"
    values: dict[str, Any] = {
        ":sending": BatchStatus.SENDING.value,
        ":settled": BatchStatus.SETTLED.value,
        ":now": _now().isoformat(),
        ":recipients": {customer_id: outcome.to_attribute() for customer_id, outcome in outcomes.items()},
    }
    if claim.holder_token:
        condition += " AND claim_token = :token"
        values[":token"] = claim.holder_token
    settled = _conditional_update(
        table_name,
        _key(run_id, channel, batch_id),
        update="SET #status = :settled, completed_at = :now, recipients = :recipients",
        condition=condition,
        values=values,
        action="sends.settle_in_doubt",
    )
    return outcomes if settled else None


def reopen_batch(table_name: str, run_id: str, channel: str, batch_id: str) -> bool:
    """Sends that failed on the batch's last delivery are queued again: they no longer count as done. False when
    the batch was not marked so (reopened already)."""
    return _conditional_update(
        table_name,
        _key(run_id, channel, batch_id),
        update="SET exhausted = :no",
        condition="exhausted = :yes AND #status = :partial",
        values={":no": False, ":yes": True, ":partial": BatchStatus.PARTIAL.value},
        action="sends.reopen_batch",
    )


@dataclass(frozen=True)
class StoredBatch:
    """A batch item as the ledger holds it."""

    channel: str
    batch_id: str
    status: BatchStatus
    lease_expired: bool
    outcomes: Mapping[str, Outcome]
    exhausted: bool = False


def run_batches(table_name: str, run_id: str) -> dict[tuple[str, str], StoredBatch]:
    """Every batch item of a run by (channel, batch id): one paged Query over the run's partition."""
    found: dict[tuple[str, str], StoredBatch] = {}
    arguments: dict[str, Any] = {"KeyConditionExpression": Key("customer_id").eq(batch_partition(run_id))}
    now = _now()
    while True:
        try:
            page = clients.table(table_name).query(**arguments)
        except ClientError as exc:
            raise clients.translate(exc, "sends.run_batches") from exc
        for item in page.get("Items", []):
            stored = from_item(item)
            claim = _found(stored, now)
            channel, batch_id = str(stored["channel"]), str(stored["batch_id"])
            status = claim.status or BatchStatus.CLAIMED
            outcomes = claim.outcomes or {}
            found[(channel, batch_id)] = StoredBatch(
                channel, batch_id, status, claim.lease_expired, outcomes, exhausted=claim.exhausted
            )
        if "LastEvaluatedKey" not in page:
            return found
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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


def note_feedback(table_name: str, run_id: str, channel: str, batch_id: str, *, customer_id: str, kind: str) -> bool:
    """Note a provider event (delivery, bounce, complaint, open, click, reject) of a send on its batch item;
    False when the batch is unknown or this kind of event was noted for the send already (a redelivered event).

    One string set per send (`fb#<customer id>`), beside the outcomes: the settle writes never touch it.
    """
    try:
        _table(table_name).update_item(
            Key=_key(run_id, channel, batch_id),
            UpdateExpression="ADD #fb :kinds",
            ConditionExpression=(
                "attribute_exists(send_key) AND (attribute_not_exists(#fb) OR NOT contains(#fb, :kind))"
            ),
            ExpressionAttributeNames={"#fb": f"fb#{customer_id}"},
            ExpressionAttributeValues={":kinds": {kind}, ":kind": kind},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "sends.note_feedback") from exc
    return True
