"""Shapes of what triggers our functions, validated at the edge."""

import json
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class CampaignTrigger(BaseModel):
    """The Input of an EventBridge Scheduler schedule targeting the campaign function.

    Each campaign's own schedule names it. scheduled_time is Scheduler's <aws.scheduler.scheduled-time>: identical
    across retries of one firing, so run ids are too.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    campaign_id: str = Field(min_length=1)
    scheduled_time: datetime
    schedule_arn: str | None = None

    @field_validator("scheduled_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ReleaseRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    campaign_id: str
    run_id: str
    key: str = Field(pattern=r"^campaign-runs/.+/release-\d{8}T\d{4}Z\.jsonl$")


class ReleaseTrigger(BaseModel):
    """The Input of a one-time schedule releasing the sends a run deferred (local time, quiet hours)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    release: ReleaseRef


class RunStep(BaseModel):
    """One step of a campaign run split across invocations (cadence.campaign_runs): plan `segment` of `total`,
    finish the run once every segment is done, or check at its deadline that it finished."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    step: Literal["segment", "finish", "deadline"]
    campaign_id: str = Field(min_length=1)
    # The firing's time: the run id derives from it, and every step plans as of it.
    scheduled_time: datetime
    segment: int | None = Field(default=None, ge=0)
    total: int | None = Field(default=None, ge=1)

    @field_validator("scheduled_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _segment_of_total(self) -> "RunStep":
        is_segment = self.step == "segment"
        if is_segment != (self.segment is not None and self.total is not None):
            raise ValueError("a segment step names its segment and total, and only it does")
        if is_segment and self.segment >= self.total:  # type: ignore[operator]
            raise ValueError("segment must be below total")
        return self


class RunStepTrigger(BaseModel):
    """An asynchronous invocation of the campaign function by itself (or a run's deadline schedule)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    run_step: RunStep


class RescoreTrigger(BaseModel):
    """What starts a full re-score: the daily schedule's Input, or any payload (even none) from a hand invocation."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    scheduled_time: datetime | None = None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    customer_ids: list[str] = Field(min_length=1, max_length=2000)
    reason: str = "unspecified"


class DispatchRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    campaign_id: str
    run_id: str
    customer_id: str
    channel: Literal["email", "sms", "webhook"]
    # What the run decided for this customer (cadence.campaigns.plan.Send): arm, offer value and coupon code.
    variant: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    offer_value: str | None = Field(default=None, max_length=40)
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,24}$")


class BatchRecipient(BaseModel):
    """One send of a batch: the customer and what the run decided for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128)
    variant: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    offer_value: str | None = Field(default=None, max_length=40)
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,24}$")
    # The profile's address, consent and message fields as planning read them (CampaignDefinition.contact); a
    # message queued before contacts were carried has none, and dispatch reads the profile.
    contact: dict[str, str | bool] | None = Field(default=None, max_length=16)


class DispatchBatch(BaseModel):
    """One SQS message of a run: up to 50 sends of one channel (cadence.campaigns.plan.Batch), settled together."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    campaign_id: str
    run_id: str
    channel: Literal["email", "sms", "webhook"]
    batch_id: str = Field(min_length=1, max_length=200)
    sends: list[BatchRecipient] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one_send_per_customer(self) -> "DispatchBatch":
        if len({send.customer_id for send in self.sends}) != len(self.sends):
            raise ValueError("a batch names each customer once")
        return self

    @classmethod
    def of_request(cls, request: DispatchRequest) -> "DispatchBatch":
        """A one-send batch for a message queued before batches (same ids: the customer is its own batch)."""
        details = request.model_dump(include={"customer_id", "variant", "offer_value", "coupon_code"})
        return cls(
            campaign_id=request.campaign_id,
            run_id=request.run_id,
            channel=request.channel,
            batch_id=f"customer-{request.customer_id}",
            sends=[BatchRecipient(**details)],
        )


def _json_body(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class ScoreSqsRecord(SqsRecordModel):
    body: ScoreRequest

    _parse_body = field_validator("body", mode="before")(_json_body)


def _dispatch_body(value: Any) -> Any:
    body = _json_body(value)
    if isinstance(body, dict) and "sends" not in body and "customer_id" in body:
        return DispatchBatch.of_request(DispatchRequest.model_validate(body))
    return body


class DispatchSqsRecord(SqsRecordModel):
    body: DispatchBatch

    _parse_body = field_validator("body", mode="before")(_dispatch_body)


class SesMail(BaseModel):
    """The `mail` object of an SES event record: the message id and the tags the send carried."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    message_id: str = Field(alias="messageId", min_length=1)
    destination: list[str] = Field(default_factory=list)
    tags: dict[str, list[str]] = Field(default_factory=dict)


class SesEvent(BaseModel):
    """An SES event record a configuration set's event destination publishes to SNS (Bounce, Complaint, Delivery,
    Reject, Open, Click, ...); only what cadence acts on is read."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    event_type: str = Field(alias="eventType")
    mail: SesMail
    bounce: dict[str, Any] | None = None
    complaint: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _notification_type(cls, value: Any) -> Any:
        # Identity feedback notifications name it notificationType; the configuration set's records eventType.
        if isinstance(value, dict) and "eventType" not in value and "notificationType" in value:
            return {**value, "eventType": value["notificationType"]}
        return value


class SnsRecord(BaseModel):
    """One SNS record a topic delivers to a function; its Message is JSON in the shape of what the topic carries."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    sns: dict[str, Any] = Field(alias="Sns")

    def message_as[Shape: BaseModel](self, shape: type[Shape]) -> Shape:
        return shape.model_validate_json(str(self.sns["Message"]))


class SnsSesRecord(SnsRecord):
    """One SNS record of the feedback topic, its Message an SES event record (JSON)."""

    def event(self) -> SesEvent:
        return self.message_as(SesEvent)


class InboundSms(BaseModel):
    """A reply to an SMS, as AWS End User Messaging SMS (formerly Pinpoint SMS) publishes two-way messages to SNS
    (read with `SnsRecord.message_as(InboundSms)`).

    inbound_message_id makes a redelivery recognisable; previous_published_message_id names the send it answers."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    origination_number: str = Field(alias="originationNumber", pattern=r"^\+[1-9]\d{6,14}$")
    destination_number: str = Field(alias="destinationNumber", min_length=1)
    message_body: str = Field(alias="messageBody")
    inbound_message_id: str = Field(alias="inboundMessageId", min_length=1)
    previous_published_message_id: str | None = Field(default=None, alias="previousPublishedMessageId")
    message_keyword: str | None = Field(default=None, alias="messageKeyword")


class SesReceipt(BaseModel):
    """What SES receiving tells a Lambda action of one inbound email (the message itself is in S3, stored by the
    rule's S3 action under its message id)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    mail: dict[str, Any]
    receipt: dict[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.mail["messageId"])

    @property
    def received_at(self) -> datetime:
        return datetime.fromisoformat(str(self.receipt.get("timestamp") or self.mail["timestamp"]))

    @property
    def authenticated(self) -> bool:
        """SPF or DKIM passed: the From address is the sender's own, so a keyword in it may be acted on."""
        return any(
            str((self.receipt.get(verdict) or {}).get("status", "")).upper() == "PASS"
            for verdict in ("spfVerdict", "dkimVerdict")
        )

    @property
    def harmful(self) -> bool:
        """SES found spam or a virus in it."""
        return any(
            str((self.receipt.get(verdict) or {}).get("status", "")).upper() == "FAIL"
            for verdict in ("spamVerdict", "virusVerdict")
        )


class SesReceiptRecord(BaseModel):
    """One record of an SES receipt rule's Lambda action."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    event_source: Literal["aws:ses"] = Field(alias="eventSource")
    ses: SesReceipt
