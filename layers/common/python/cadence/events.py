"""Shapes of what triggers our functions, validated at the edge."""

import json
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    channel: Literal["email", "sms"]
    # What the run decided for this customer (cadence.campaigns.plan.Send): arm, offer value and coupon code.
    variant: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    offer_value: str | None = Field(default=None, max_length=40)
    coupon_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,24}$")


def _json_body(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class ScoreSqsRecord(SqsRecordModel):
    body: ScoreRequest  # type: ignore[assignment]

    _parse_body = field_validator("body", mode="before")(_json_body)


class DispatchSqsRecord(SqsRecordModel):
    body: DispatchRequest  # type: ignore[assignment]

    _parse_body = field_validator("body", mode="before")(_json_body)
