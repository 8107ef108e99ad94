"""Settings for each function, read from the environment variables template.yaml sets.

Each loader is cached, so a missing or malformed variable fails the cold start rather than
the tenth record, and domain code receives settings as arguments instead of reading os.environ.
"""

import os
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from cadence.errors import InvalidInputError


class _EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls) -> "_EnvSettings":
        """Build the settings from upper-case environment variables named like the fields."""
        return cls.model_validate({key.lower(): value for key, value in os.environ.items()})


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class IngestSettings(_EnvSettings):
    profiles_table: str
    # Consent a file withdraws goes on the suppression list too, so sends already planned stop.
    suppression_table: str
    # Order and event aggregates; see cadence.dal.activity_table.
    activity_table: str
    data_bucket: str
    score_queue_url: str
    default_phone_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    score_batch_size: int = Field(default=100, ge=1, le=2000)
    # Finished files and file contents; see cadence.dal.ingest_ledger.
    ingest_ledger_table: str
    # The IANA zone of times written without an offset (e.g. Asia/Shanghai for CN exports).
    default_timezone: str = Field(default="UTC", pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
    # Optional key in DATA_BUCKET of a JSON column mapping that extends the shipped one.
    ingest_mapping_key: str | None = None
    # Rows a chunk; also customers an activity slice writes under one hold of the activity lease.
    ingest_chunk_rows: int = Field(default=50_000, ge=10, le=1_000_000)
    # Seconds of the invocation kept free: with less left, the rest of the file goes to a new invocation.
    ingest_reserve_seconds: int = Field(default=120, ge=10, le=600)
    # A file's content marker outlives every re-upload we expect; after it, the same bytes would count again.
    ingest_ledger_ttl_days: int = Field(default=400, ge=1)
    # How long one chunk of customers may hold the write lease (and another waits for it at most).
    ingest_customers_lease_seconds: int = Field(default=600, ge=1, le=900)
    # Concurrent DynamoDB calls per chunk: batch writes, activity updates (botocore's pool holds 10 connections).
    ingest_write_workers: int = Field(default=8, ge=1, le=10)
    # A file that decompresses past this is unreadable (a gzip bomb); it also bounds a Parquet file's spool in
    # /tmp, so keep it below the function's ephemeral storage.
    ingest_max_uncompressed_bytes: int = Field(default=3 * 1024**3, ge=1024)
    # A longer JSON Lines line makes the file unreadable (one line is held in memory whole).
    ingest_max_line_chars: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)


class ScoreSettings(_EnvSettings):
    profiles_table: str
    activity_table: str
    scores_table: str
    model_bucket: str
    model_version: str


def _stack_caps(value: Any) -> Any:
    """CAMPAIGN_CAPS as cadence.campaigns.definition.Caps (empty: no caps)."""
    # Imported here: only the campaign function and the CLI build CampaignSettings, so the other functions' cold
    # starts do not import the campaign domain.
    from cadence.campaigns.definition import Caps  # noqa: PLC0415

    if isinstance(value, Caps):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return Caps()
    return Caps.model_validate_json(value) if isinstance(value, str | bytes) else Caps.model_validate(value)


class CampaignSettings(_EnvSettings):
    profiles_table: str
    # The planner leaves out every address on the suppression list (cadence.suppression); a stack from before the
    # list has none.
    suppression_table: str | None = None
    scores_table: str
    campaigns_table: str
    # The send ledger: a run completes when it shows every queued send done; resuming reads the held sends there.
    sends_table: str
    dispatch_queue_url: str
    # Order and event aggregates the audience rules read (cadence.campaigns.rules).
    activity_table: str
    # Where each run's members (state, variant, offer, coupon code) and the contact history are written.
    data_bucket: str
    # Frequency caps over every campaign, e.g. {"overall": {"max": 3, "days": 7}}; a campaign's own caps replace them.
    campaign_caps: Annotated[Any, BeforeValidator(_stack_caps)] = Field(default=None, validate_default=True)
    # Sends a run plans for later (local time, quiet hours) are released by one-time schedules invoking this
    # function; without these settings such a run is refused rather than sent at the wrong hour.
    campaign_function_arn: str | None = None
    campaign_schedule_group: str | None = None
    campaign_scheduler_role_arn: str | None = None
    async_failure_queue_arn: str | None = None
    # The audience is read with a parallel Scan of the scores table in this many segments, and its profiles with
    # this many BatchGetItem calls at once (botocore's pool holds 10 connections).
    audience_scan_segments: int = Field(default=8, ge=1, le=1000)
    audience_read_workers: int = Field(default=8, ge=1, le=10)
    # A run over more scored customers than this is split across invocations, one per this many (DescribeTable's
    # ItemCount of the scores table); each reads its share with AUDIENCE_SCAN_SEGMENTS parallel segments.
    audience_segment_size: int = Field(default=125_000, ge=1)
    # A split run not fanned out this long after it started is failed (a segment or its finisher failed every
    # retry, or never ran): the campaign shows failed instead of staying running for ever.
    audience_run_deadline_minutes: int = Field(default=60, ge=5, le=1440)
    # The stack's prefix of SESv2 email template names (cadence.email_templates); without it (a stack from before
    # bulk email) storing a campaign makes no templates.
    email_template_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,30}$")

    def schedule_target(self) -> tuple[str, str, str]:
        """(schedule group, campaign function ARN, scheduler role ARN): what a schedule invoking this function needs.

        Raises:
            InvalidInputError: the settings do not name them all.
        """
        group, target, role = self.campaign_schedule_group, self.campaign_function_arn, self.campaign_scheduler_role_arn
        if not (group and target and role):
            raise InvalidInputError("schedules need CAMPAIGN_SCHEDULE_GROUP, CAMPAIGN_FUNCTION_ARN and its role")
        return group, target, role


def _sms_codes(value: Any) -> frozenset[str]:
    from cadence.sms_countries import parse_codes  # noqa: PLC0415 - only dispatch reads it

    return parse_codes("" if value is None else value)


class DispatchSettings(_EnvSettings):
    profiles_table: str
    campaigns_table: str
    sends_table: str
    # Suppressions since a run was planned (cadence.suppression), read once per batch from a per-container copy
    # of the change log at most this many seconds old.
    suppression_table: str
    suppression_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    sender_email: str
    sms_sender_id: str
    # Email goes out with SESv2 SendBulkEmail from the campaign's templates, through the configuration set.
    email_template_prefix: str = Field(pattern=r"^[A-Za-z0-9_-]{1,30}$")
    ses_configuration_set: str = Field(min_length=1)
    # One-click unsubscribe links (RFC 8058): the endpoint's URL and the secret their tokens are signed with.
    unsubscribe_base_url: str = Field(pattern=r"^https?://\S+$")
    unsubscribe_secret_arn: str = Field(min_length=1)
    unsubscribe_token_days: int = Field(default=365, ge=1, le=3650)
    # The fleet's MaximumConcurrency: each worker starts at this share of the account's SES send rate.
    dispatch_max_concurrency: int = Field(default=5, ge=1, le=1000)
    # How many more times a batch's email destinations SES throttled are sent in the same invocation (the worker
    # slows down in between); still throttled after that, they are FAILED for SQS's redelivery.
    dispatch_throttle_rounds: int = Field(default=3, ge=0, le=10)
    # Country calling codes SMS may go to (SMS_ALLOWED_COUNTRY_CODES, e.g. "86,852"); unset: no SMS leaves.
    sms_allowed_country_codes: Annotated[frozenset[str], BeforeValidator(_sms_codes)] = Field(
        default=frozenset(), validate_default=True
    )
    # One attempt per SES/SNS send: connect quickly (a failure to connect is retried through SQS) and wait a few
    # seconds for the answer (SendEmail and SMS Publish answer in well under a second).
    send_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    send_read_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # A record is started only with this much of the invocation left: one record's worst case is a send that times
    # out plus its ledger and profile calls, so twice the send timeouts and a margin.
    dispatch_reserve_seconds: float = Field(default=20.0, gt=0, le=600)
    # How long a claim in the send ledger holds a send before another delivery may judge it (take over a claim
    # never sent, or settle a send cut off mid-call as in doubt): at least the function's timeout, which bounds
    # how long any worker can hold it.
    dispatch_lease_seconds: float = Field(default=900.0, ge=1, le=43_200)
    # The dispatch queue's maxReceiveCount: a delivery with this receive count is the batch's last before the
    # dead-letter queue, so what failed in it stays failed for the run's completion.
    dispatch_max_receive_count: int = Field(default=5, ge=1, le=1000)
    # Which run sent each SMS, for replies (cadence.conversations); a stack from before conversations has none.
    conversations_table: str | None = None
    # Emails ask replies to go to reply+<run>@ this domain (an SES receipt rule receives them); unset: no Reply-To.
    inbound_email_domain: Annotated[str | None, BeforeValidator(_empty_is_none)] = None
    # The secret webhook POSTs are signed with (cadence.webhooks); a stack without one rejects every webhook send
    # (webhook_not_configured). Plain http goes only to 127.0.0.1 and only with the flag (the local stack, tests).
    webhook_secret_arn: str | None = Field(default=None, min_length=1)
    webhook_allow_loopback_http: bool = False

    @property
    def send_budget_seconds(self) -> float:
        """The longest a send can take from the provider call to its settled outcome in the ledger."""
        # Imported here: the settings module stays free of boto3 for the functions that never send.
        from cadence.dal.clients import LEDGER_BUDGET  # noqa: PLC0415

        provider = self.send_connect_timeout_seconds + self.send_read_timeout_seconds
        return provider + LEDGER_BUDGET.worst_case_seconds

    @model_validator(mode="after")
    def _reserve_covers_a_send(self) -> "DispatchSettings":
        if self.dispatch_reserve_seconds < self.send_budget_seconds:
            raise ValueError(
                "dispatch_reserve_seconds must cover one send's connect and read timeouts and settling it "
                f"({self.send_budget_seconds:g} s)"
            )
        if self.dispatch_lease_seconds < self.dispatch_reserve_seconds:
            raise ValueError("dispatch_lease_seconds must be at least dispatch_reserve_seconds")
        return self


@cache
def ingest_settings() -> IngestSettings:
    return IngestSettings.from_env()  # type: ignore[return-value]


@cache
def score_settings() -> ScoreSettings:
    return ScoreSettings.from_env()  # type: ignore[return-value]


@cache
def campaign_settings() -> CampaignSettings:
    return CampaignSettings.from_env()  # type: ignore[return-value]


@cache
def dispatch_settings() -> DispatchSettings:
    return DispatchSettings.from_env()  # type: ignore[return-value]


class FeedbackSettings(_EnvSettings):
    sends_table: str
    suppression_table: str
    campaigns_table: str
    # Where the risk guard's alerts go (the stack's AlarmTopic).
    alarm_topic_arn: str = Field(min_length=1)
    # Soft bounces (mailbox full, timeouts) of one address before it is suppressed.
    soft_bounce_limit: int = Field(default=3, ge=1, le=100)
    # A run whose hard bounces or complaints pass these shares of its delivered + bounced emails (once it has
    # RISK_MIN_EVENTS of them) pauses its campaign; SES reviews an account at about 5 % and 0.1 %.
    risk_bounce_rate: float = Field(default=0.02, gt=0, lt=1)
    risk_complaint_rate: float = Field(default=0.0005, gt=0, lt=1)
    risk_min_events: int = Field(default=500, ge=1)


@cache
def feedback_settings() -> FeedbackSettings:
    return FeedbackSettings.from_env()  # type: ignore[return-value]


class UnsubscribeSettings(_EnvSettings):
    profiles_table: str
    suppression_table: str
    # The secret the links' tokens are signed with (cadence.unsubscribe), the one dispatch signs with.
    unsubscribe_secret_arn: str = Field(min_length=1)


@cache
def unsubscribe_settings() -> UnsubscribeSettings:
    return UnsubscribeSettings.from_env()  # type: ignore[return-value]


class SmsOptOutSettings(_EnvSettings):
    profiles_table: str
    suppression_table: str


@cache
def sms_opt_out_settings() -> SmsOptOutSettings:
    return SmsOptOutSettings.from_env()  # type: ignore[return-value]


class ErasureSettings(_EnvSettings):
    profiles_table: str
    activity_table: str
    # Its activity write lease, which ingest honours too (see cadence.dal.activity_table).
    ingest_ledger_table: str
    # Ingest holds that lease for one slice of a file's totals; the function's own timeout is 900 s.
    erasure_activity_lease_wait_seconds: int = Field(default=300, ge=1, le=600)
    scores_table: str
    sends_table: str
    suppression_table: str
    conversations_table: str
    data_bucket: str


@cache
def erasure_settings() -> ErasureSettings:
    return ErasureSettings.from_env()  # type: ignore[return-value]


class RescoreSettings(_EnvSettings):
    profiles_table: str
    scores_table: str
    score_queue_url: str
    # The version the score function loads: profiles scored by any other version are queued again.
    model_version: str
    # Customer ids per ScoreQueue message; the score function reads them with one BatchGetItem (100 keys).
    rescore_batch_size: int = Field(default=100, ge=1, le=100)


@cache
def rescore_settings() -> RescoreSettings:
    return RescoreSettings.from_env()  # type: ignore[return-value]


class ConversationSettings(_EnvSettings):
    profiles_table: str
    suppression_table: str
    conversations_table: str
    # A reply to a send counts on its run (replies, opt-outs by keyword, routed).
    campaigns_table: str
    # Replies a person must read (questions, complaints, anything the model is unsure of), and the team's alerts.
    human_queue_url: str = Field(min_length=1)
    alarm_topic_arn: str = Field(min_length=1)
    sms_sender_id: str
    # The only answers an inbound SMS ever gets: to STOP (once), to START, to HELP.
    sms_help_text: str = Field(min_length=1, max_length=320)
    sms_stop_text: str = Field(min_length=1, max_length=320)
    sms_start_text: str = Field(min_length=1, max_length=320)
    # The reply model (cadence.conversations.intent_model) in MODEL_BUCKET; without a version every reply that is
    # not a keyword goes to a person.
    model_bucket: str | None = None
    intent_model_version: str | None = None
    # Below this probability the model's intent is not acted on: a person reads the reply. Unset (or empty): the
    # threshold the model was built with (its manifest's confidence_threshold, chosen on held-out replies).
    intent_confidence_threshold: Annotated[float | None, BeforeValidator(_empty_is_none)] = Field(
        default=None, gt=0, le=1
    )
    # "Not interested": no campaign plans the customer for this many days.
    quiet_days: int = Field(default=30, ge=1, le=365)
    send_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    send_read_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # Inbound email (an SES receipt rule): the raw messages' bucket and prefix, and the domain whose reply addresses
    # name a run (cadence.conversations.email_replies); without a domain, email replies are not tied to a run.
    data_bucket: str | None = None
    inbound_email_prefix: str = "inbound-email/"
    inbound_email_domain: Annotated[str | None, BeforeValidator(_empty_is_none)] = None


@cache
def conversation_settings() -> ConversationSettings:
    return ConversationSettings.from_env()  # type: ignore[return-value]
