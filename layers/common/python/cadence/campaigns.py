"""Campaign definitions and run planning: who gets which message, who is held out.

Pure logic: the campaign function's data access happens in cadence.dal and the handler wires them.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Channel = Literal["email", "sms"]
HOLDOUT_BUCKETS = 10_000


class EmailMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)


class SmsMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str = Field(min_length=1, max_length=670)


class Audience(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_decile: int = Field(default=10, ge=1, le=10, description="Include customers in deciles 1..max_decile.")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    countries: tuple[str, ...] = Field(default=(), description="ISO alpha-2 codes; empty means every country.")


class CampaignDefinition(BaseModel):
    """A campaign as a marketer writes it (YAML), validated before it is stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    campaign_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    active: bool = True
    channels: tuple[Channel, ...] = Field(min_length=1)
    audience: Audience = Audience()
    holdout_percent: float = Field(default=10.0, ge=0.0, le=50.0)
    email: EmailMessage | None = None
    sms: SmsMessage | None = None

    @model_validator(mode="after")
    def _messages_for_every_channel(self) -> "CampaignDefinition":
        for channel in self.channels:
            if getattr(self, channel) is None:
                raise ValueError(f"channel {channel} is listed but has no {channel} message")
        return self


@dataclass(frozen=True)
class SendRequest:
    """One planned message; the dispatch function turns it into at most one send."""

    campaign_id: str
    run_id: str
    customer_id: str
    channel: Channel

    def to_message(self) -> dict[str, str]:
        return {
            "campaign_id": self.campaign_id,
            "run_id": self.run_id,
            "customer_id": self.customer_id,
            "channel": self.channel,
        }


@dataclass
class RunPlan:
    run_id: str
    audience_size: int = 0
    holdout_size: int = 0
    sends: list[SendRequest] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    def sends_by_channel(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for send in self.sends:
            counts[send.channel] = counts.get(send.channel, 0) + 1
        return counts

    def _skip(self, reason: str) -> None:
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1


def run_id_for(campaign_id: str, scheduled_time: datetime) -> str:
    """The same schedule firing (or a retry of it) always yields the same run id."""
    return f"{campaign_id}@{scheduled_time.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def in_holdout(campaign_id: str, customer_id: str, holdout_percent: float) -> bool:
    """Deterministic per campaign and customer, so a customer stays held out across runs."""
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % HOLDOUT_BUCKETS
    return bucket < holdout_percent * HOLDOUT_BUCKETS / 100


def is_reachable(profile: Mapping[str, Any], channel: Channel) -> bool:
    """The customer consented to the channel and has an address for it."""
    if channel == "email":
        return bool(profile.get("email")) and profile.get("consent_email") is True
    return bool(profile.get("phone")) and profile.get("consent_sms") is True


def matches_audience(profile: Mapping[str, Any], audience: Audience) -> str | None:
    """None when the profile belongs to the audience, else the reason it does not."""
    decile = profile.get("decile")
    score = profile.get("score")
    if decile is None or score is None:
        return "not_scored"
    if int(decile) > audience.max_decile or float(score) < audience.min_score:
        return "below_threshold"
    if audience.countries and profile.get("country") not in audience.countries:
        return "outside_countries"
    return None


def plan_run(definition: CampaignDefinition, run_id: str, profiles: Iterable[Mapping[str, Any]]) -> RunPlan:
    """Pick the audience, split off the holdout and plan one send per reachable channel."""
    plan = RunPlan(run_id=run_id)
    for profile in profiles:
        reason = matches_audience(profile, definition.audience)
        if reason:
            plan._skip(reason)
            continue
        plan.audience_size += 1
        customer_id = str(profile["customer_id"])
        if in_holdout(definition.campaign_id, customer_id, definition.holdout_percent):
            plan.holdout_size += 1
            continue
        reachable = [channel for channel in definition.channels if is_reachable(profile, channel)]
        if not reachable:
            plan._skip("no_consented_channel")
        for channel in reachable:
            plan.sends.append(SendRequest(definition.campaign_id, run_id, customer_id, channel))
    return plan
