"""A campaign as a marketer writes it (YAML), validated before it is stored.

Everything a run needs to decide who gets what, when: the audience rule (cadence.campaigns.rules), an
offer (fixed or tiered by decile or score, with a coupon code per recipient), A/B variants and the
holdout, the schedule, the re-entry rule, local-time delivery, frequency caps and quiet hours.

Three channels: email (`email`, consent_email), SMS (`phone`, consent_sms) and a signed webhook per recipient
(`webhook`): an HTTPS POST for chat and social platforms (cadence.webhooks), whose address and consent are profile
attributes the campaign's webhook block names (see WebhookChannel).
"""

import re
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from cadence.campaigns import schedule
from cadence.campaigns.rules import All, AnyOf, Compare, Not, Rule, RuleError, parse_rule

Channel = Literal["email", "sms", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "webhook")
# The profile fields a message may name ({first_name}, ...), then what the run decides per member.
MESSAGE_FIELDS = ("first_name", "last_name", "city")
PLACEHOLDERS = (*MESSAGE_FIELDS, "offer_value", "coupon_code")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# The audience shorthand campaigns were written with before rules existed.
_LEGACY_AUDIENCE = {"max_decile", "min_score", "countries"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


def _check_placeholders(text: str) -> str:
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: {', '.join(PLACEHOLDERS)})")
    return text


def _iana_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


class EmailMessage(_Model):
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)

    _placeholders = field_validator("subject", "body")(_check_placeholders)


class SmsMessage(_Model):
    text: str = Field(min_length=1, max_length=670)

    _placeholders = field_validator("text")(_check_placeholders)


# A custom attribute's text that says yes (Pinpoint's attributes arrive as text); anything else is no.
# Each channel's address and consent on the profile.
_CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {"email": ("email", "consent_email"), "sms": ("phone", "consent_sms")}
_YES = frozenset({"true", "yes", "y", "1", "on", "是", "同意"})
# Where a webhook finds its recipient: a profile column ingest writes (attr_<name> for custom attributes).
_ATTRIBUTE = r"^[a-z][a-z0-9_]{0,62}$"


class WebhookMessage(_Model):
    """What a webhook POST carries: the receiver's `url` (https), the `text` (SMS placeholders) and an `event` name.

    `http://127.0.0.1:<port>/` is accepted for a receiver on the same machine (the local stack, tests); dispatch sends
    to it only when its settings allow it (WEBHOOK_ALLOW_LOOPBACK_HTTP), never on AWS.
    """

    url: str = Field(max_length=2048)
    text: str = Field(min_length=1, max_length=4000)
    event: str = Field(default="campaign_message", pattern=r"^[a-z][a-z0-9_.-]{0,62}$")

    _placeholders = field_validator("text")(_check_placeholders)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        loopback = parts.scheme == "http" and parts.hostname == "127.0.0.1"
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise ValueError("a webhook url is https://<host>/... (or http://127.0.0.1:<port>/ for a local receiver)")
        if parts.username or parts.password:
            raise ValueError("a webhook url carries no credentials: the receiver verifies the signature")
        return value


class WebhookChannel(WebhookMessage):
    """The campaign's webhook: its message (variants may replace it) and where each recipient's address and consent
    are on the profile.

    Profiles have no webhook column: the address is the custom attribute `address_attribute` names (a chat id such
    as `attr_wechat_openid`). Consent must be named too (`consent_attribute`), with no default: consent is given per
    channel, and borrowing SMS consent silently would message the chat handle of people who agreed only to texts.
    Naming `consent_sms` (or `consent_email`) is allowed when that consent's wording covers this channel; a custom
    attribute consents when it is true or says yes ("true", "yes", "1", ...).
    """

    address_attribute: str = Field(pattern=_ATTRIBUTE)
    consent_attribute: str = Field(pattern=_ATTRIBUTE)

    def address(self, profile: Mapping[str, Any]) -> str | None:
        """The recipient's address on the profile, trimmed; None without one (or with several values)."""
        value = profile.get(self.address_attribute)
        return (value.strip() or None) if isinstance(value, str) else None

    def consented(self, profile: Mapping[str, Any]) -> bool:
        value = profile.get(self.consent_attribute)
        return value is True or (isinstance(value, str) and value.strip().lower() in _YES)


class OfferTier(_Model):
    """A band of decile or score, bounds inclusive; the first band that holds the customer sets the value."""

    min: float | None = None
    max: float | None = None
    value: float | str

    @model_validator(mode="after")
    def _bounded(self) -> "OfferTier":
        if self.min is None and self.max is None:
            raise ValueError("a tier needs min, max or both")
        return self


class Offer(_Model):
    """A fixed `value`, or `tiers` by decile or score with an `otherwise` value; rendered as {offer_value}."""

    value: float | str | None = None
    by: Literal["decile", "score"] | None = None
    tiers: tuple[OfferTier, ...] = ()
    otherwise: float | str | None = None
    # Each recipient gets a unique, unguessable code ({coupon_code}), recorded with the send.
    coupon: bool = True
    coupon_prefix: str = Field(default="", pattern=r"^[A-Z0-9]{0,8}$")

    @model_validator(mode="after")
    def _one_form(self) -> "Offer":
        tiered = bool(self.tiers) or self.by is not None or self.otherwise is not None
        if self.value is not None and tiered:
            raise ValueError("an offer is either a fixed value or tiers (by, tiers, otherwise), not both")
        if self.value is None and not (self.by and self.tiers and self.otherwise is not None):
            raise ValueError("a tiered offer needs by (decile or score), tiers and otherwise")
        return self

    def value_for(self, decile: float | None, score: float | None) -> str:
        """The offer's value for a customer, as the text a message shows."""
        if self.value is not None:
            return _offer_text(self.value)
        key = decile if self.by == "decile" else score
        if key is not None:
            for tier in self.tiers:
                if (tier.min is None or key >= tier.min) and (tier.max is None or key <= tier.max):
                    return _offer_text(tier.value)
        return _offer_text(self.otherwise)  # type: ignore[arg-type]


def _offer_text(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Variant(_Model):
    """One arm of an A/B test: its share of the treated audience and what it changes."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    weight: float = Field(gt=0)
    email: EmailMessage | None = None
    sms: SmsMessage | None = None
    # Replaces the campaign's url, text and event; the address and consent stay the campaign's.
    webhook: WebhookMessage | None = None
    offer: Offer | None = None


class Schedule(_Model):
    """When runs start: once (`at`), or recurring (`cron` / `rate`) between optional `start` and `end`."""

    at: datetime | None = None
    cron: str | None = None
    rate: str | None = None
    # The zone of cron/at wall times and of naive start/end; without one, the campaign's default_timezone.
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _iana_zone(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 6:
            raise ValueError("cron takes six fields: minutes hours day-of-month month day-of-week year")
        return value

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[1-9]\d* (minute|minutes|hour|hours|day|days)", value):
            raise ValueError("rate is '<n> minutes|hours|days', e.g. '7 days'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "Schedule":
        given = [name for name in ("at", "cron", "rate") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a schedule has exactly one of at, cron, rate; found {given or 'none'}")
        if self.at is not None and (self.start or self.end):
            raise ValueError("a one-off schedule (at) takes no start or end")
        if self.start and self.end and in_zone(self.end, "UTC") <= in_zone(self.start, "UTC"):
            raise ValueError("a schedule's end must come after its start")
        try:
            schedule.parse(self.expression("UTC"))  # what EventBridge Scheduler would refuse, refused here
        except schedule.ScheduleExpressionError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @property
    def recurring(self) -> bool:
        return self.at is None

    def expression(self, zone: str) -> str:
        """The EventBridge Scheduler expression, wall times in `zone` (the schedule's time zone)."""
        if self.at is not None:
            return f"at({in_zone(self.at, zone).replace(tzinfo=None).isoformat(timespec='seconds')})"
        return f"cron({self.cron})" if self.cron else f"rate({self.rate})"


def in_zone(moment: datetime, zone: str) -> datetime:
    """`moment` as an aware time in `zone`; a naive one is a wall time there."""
    tz = zoneinfo.ZoneInfo(zone)
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


class Reentry(_Model):
    """A customer receives the campaign at most once (`days` None), or at most once per `days` days."""

    days: int | None = Field(default=None, ge=1, le=366)


class CapRule(_Model):
    max: int = Field(ge=0, le=100)
    days: int = Field(ge=1, le=90)


class Caps(_Model):
    """At most `max` messages per customer in `days` days, over every campaign: overall and per channel."""

    overall: CapRule | None = None
    email: CapRule | None = None
    sms: CapRule | None = None
    webhook: CapRule | None = None

    def rules(self) -> dict[str, CapRule]:
        return {name: rule for name in ("overall", *CHANNELS) if (rule := getattr(self, name)) is not None}

    @property
    def window_days(self) -> int:
        return max((rule.days for rule in self.rules().values()), default=0)


class QuietHours(_Model):
    """Local hours without messages (start may be after end: 21:00-08:00 spans midnight)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class CampaignDefinition(_Model):
    """A campaign as a marketer writes it."""

    campaign_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    # Kept for definitions stored before the lifecycle: false stops every send (see cadence.dispatch).
    active: bool = True
    channels: tuple[Channel, ...] = Field(min_length=1)
    # Without a rule: every scored customer.
    audience: Rule = Field(default_factory=lambda: Compare("decile", "exists", True))
    holdout_percent: float = Field(default=10.0, ge=0.0, le=50.0)
    email: EmailMessage | None = None
    sms: SmsMessage | None = None
    webhook: WebhookChannel | None = None
    offer: Offer | None = None
    variants: tuple[Variant, ...] = ()
    schedule: Schedule | None = None
    reentry: Reentry = Reentry()
    # "10:00": deliver at that wall time in each customer's zone (profile, else country or phone prefix).
    send_at_local: time | None = None
    # The zone of customers whose zone nothing tells (also the schedule's, unless it names one).
    default_timezone: str = "UTC"
    caps: Caps | None = None  # overrides the stack's CAMPAIGN_CAPS
    quiet_hours: QuietHours | None = None  # overrides the stack's QUIET_HOURS
    # Orders this many days after a run count for it (its report): by coupon code, else by last touch.
    attribution_window_days: int = Field(default=7, ge=1, le=90)

    @field_validator("audience", mode="before")
    @classmethod
    def _parse_audience(cls, value: Any) -> Rule:
        if isinstance(value, Rule):
            return value
        if isinstance(value, dict) and value and set(value) <= _LEGACY_AUDIENCE:
            value = _legacy_audience(value)
        try:
            return parse_rule(value)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc

    @field_serializer("audience")
    def _audience_as_data(self, rule: Rule) -> dict[str, Any]:
        return rule_to_data(rule)

    _zone = field_validator("default_timezone")(_iana_zone)

    @model_validator(mode="after")
    def _messages_for_every_channel(self) -> "CampaignDefinition":
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if "webhook" in self.channels and self.webhook is None:
            raise ValueError("channel webhook is listed but the campaign has no webhook (address_attribute, ...)")
        for channel in self.channels:
            arms = self.variants or (None,)
            for variant in arms:
                if self.message(channel, variant.name if variant else None) is None:
                    where = f"variant {variant.name}" if variant else "the campaign"
                    raise ValueError(f"channel {channel} is listed but {where} has no {channel} message")
        return self

    @property
    def schedule_zone(self) -> str:
        """The time zone the schedule's wall times are in."""
        return (self.schedule.timezone if self.schedule else None) or self.default_timezone

    def variant(self, name: str | None) -> Variant | None:
        return next((variant for variant in self.variants if variant.name == name), None)

    def message(self, channel: Channel, variant: str | None) -> EmailMessage | SmsMessage | WebhookMessage | None:
        """The message a variant sends on a channel: its own, else the campaign's."""
        arm = self.variant(variant)
        own = getattr(arm, channel) if arm else None
        message: EmailMessage | SmsMessage | WebhookMessage | None = own or getattr(self, channel)
        return message

    def address(self, profile: Mapping[str, Any], channel: Channel) -> str | None:
        """The customer's address on a channel as the profile holds it (trimmed), or None."""
        if channel == "webhook":
            return self.webhook.address(profile) if self.webhook else None
        value = profile.get("email" if channel == "email" else "phone")
        return (str(value).strip() or None) if value else None

    def consented(self, profile: Mapping[str, Any], channel: Channel) -> bool:
        """The customer consented to messages on the channel (email and SMS: the profile's own consent columns)."""
        if channel == "webhook":
            return self.webhook.consented(profile) if self.webhook else False
        return profile.get(f"consent_{channel}") is True

    def contact(self, profile: Mapping[str, Any], channels: Iterable[Channel]) -> dict[str, str | bool]:
        """What sending on `channels` reads of the profile: each channel's address and consent, and the fields a
        message may carry. The planner carries it in the batch, so dispatch need not read the profile again."""
        names = [*MESSAGE_FIELDS]
        for channel in channels:
            names += self.contact_attributes() if channel == "webhook" else _CHANNEL_FIELDS[channel]
        return {
            name: value
            for name in dict.fromkeys(names)
            if isinstance(value := profile.get(name), str | bool) and value != ""
        }

    def contact_attributes(self) -> tuple[str, ...]:
        """Profile attributes beyond the standard ones that sending on the campaign's channels reads."""
        if self.webhook is None or "webhook" not in self.channels:
            return ()
        return tuple(dict.fromkeys((self.webhook.address_attribute, self.webhook.consent_attribute)))

    def offer_for(self, variant: str | None) -> Offer | None:
        arm = self.variant(variant)
        return (arm.offer if arm else None) or self.offer

    def stored_form(self) -> dict[str, Any]:
        """The definition as JSON-ready data, audience in its YAML form (what the table stores)."""
        return self.model_dump(mode="json", exclude_none=True)


def _legacy_audience(value: dict[str, Any]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if "max_decile" in value:
        rules.append({"field": "decile", "lte": value["max_decile"]})
    if value.get("min_score"):
        rules.append({"field": "score", "gte": value["min_score"]})
    if value.get("countries"):
        rules.append({"field": "country", "in": list(value["countries"])})
    return {"all": rules} if rules else {"all": [{"field": "decile", "exists": True}]}


def rule_to_data(rule: Rule) -> dict[str, Any]:
    """The YAML form of a rule tree (parse_rule's inverse)."""
    if isinstance(rule, All):
        return {"all": [rule_to_data(child) for child in rule.rules]}
    if isinstance(rule, AnyOf):
        return {"any": [rule_to_data(child) for child in rule.rules]}
    if isinstance(rule, Not):
        return {"not": rule_to_data(rule.rule)}
    if not isinstance(rule, Compare):
        raise TypeError(f"not a rule node: {rule!r}")
    value = sorted(rule.value, key=str) if isinstance(rule.value, frozenset) else rule.value
    return {"field": rule.field, rule.op: value}
