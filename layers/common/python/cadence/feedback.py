"""What SES tells us after a send (bounces, complaints, deliveries, opens, clicks): each event noted against its
send in the ledger, bounced and complained addresses suppressed at once, and each run's bounce and complaint rates
guarded (a run past the stack's thresholds pauses its campaign, its remaining sends then HELD by dispatch).

Events are matched to sends by the message tags dispatch gives every SendBulkEmail call (campaign, run, batch) and
destination (customer); tag values are base64url, as SES allows only letters, digits, `_` and `-` in them.
"""

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from cadence.config import FeedbackSettings
from cadence.dal import alerts, campaigns_table, sends_table, suppression_table
from cadence.events import SesEvent
from cadence.feedback_tags import TAG_BATCH, TAG_CAMPAIGN, TAG_CUSTOMER, TAG_RUN, from_tag
from cadence.observability import logger, metrics
from cadence.suppression import Reason, Suppression, address_hash


@dataclass(frozen=True, slots=True)
class SendRef:
    """The send an event is of, from its tags."""

    campaign_id: str
    run_id: str
    batch_id: str
    customer_id: str

    @classmethod
    def of(cls, tags: Mapping[str, list[str]]) -> "SendRef | None":
        try:
            values = [from_tag(tags[name][0]) for name in (TAG_CAMPAIGN, TAG_RUN, TAG_BATCH, TAG_CUSTOMER)]
        except (KeyError, IndexError, ValueError, binascii.Error):
            return None
        return cls(*values)


def kind_of(event: SesEvent) -> str:
    """delivery, hard_bounce, soft_bounce, ses_suppressed, complaint, open, click, reject, ... (lower case)."""
    if event.event_type == "Bounce":
        bounce = event.bounce or {}
        if bounce.get("bounceSubType") == "OnAccountSuppressionList":
            return "ses_suppressed"
        return "hard_bounce" if bounce.get("bounceType") == "Permanent" else "soft_bounce"
    if (
        event.event_type == "Complaint"
        and (event.complaint or {}).get("complaintSubType") == "OnAccountSuppressionList"
    ):
        return "ses_suppressed"
    return event.event_type.lower().replace(" ", "_")


def record(event: SesEvent, settings: FeedbackSettings) -> str:
    """Act on one SES event; returns its kind. Safe to repeat: SNS delivers at least once."""
    kind = kind_of(event)
    ref = SendRef.of(event.mail.tags)
    new = ref is not None and sends_table.note_feedback(
        settings.sends_table, ref.run_id, "email", ref.batch_id, customer_id=ref.customer_id, kind=kind
    )
    _suppress(event, kind, ref, settings)
    metrics.add_metric(name=f"Feedback_{kind}", unit=MetricUnit.Count, value=1)
    if ref is None:
        # Not one of our sends (or its tags were lost): the addresses are still suppressed, nothing else is known.
        logger.info("feedback without cadence tags", extra={"kind": kind})
        return kind
    if new and kind in _GUARDED:
        _guard(ref, kind, settings)
    return kind


# What a run's rates are made of; SES leaves sends to its own suppression list out of the bounce rate.
_GUARDED = frozenset({"delivery", "hard_bounce", "complaint"})


def _addresses(event: SesEvent, kind: str) -> list[str]:
    if event.event_type == "Complaint":
        recipients = (event.complaint or {}).get("complainedRecipients", [])
    else:
        recipients = (event.bounce or {}).get("bouncedRecipients", [])
    found = [str(r["emailAddress"]) for r in recipients if isinstance(r, dict) and r.get("emailAddress")]
    return found or list(event.mail.destination)


def _suppress(event: SesEvent, kind: str, ref: SendRef | None, settings: FeedbackSettings) -> None:
    reason = {
        "hard_bounce": Reason.HARD_BOUNCE,
        "complaint": Reason.COMPLAINT,
        "ses_suppressed": Reason.SES_SUPPRESSED,
    }.get(kind)
    customer_id = ref.customer_id if ref else None
    source = f"ses:{event.mail.message_id}"
    entries = []
    for address in _addresses(event, kind) if reason or kind == "soft_bounce" else []:
        if reason is None:
            # A soft bounce (mailbox full, a timeout) may pass: the address is suppressed after a few.
            count = suppression_table.count_soft_bounce(
                settings.suppression_table, "email", address_hash(address), event.mail.message_id
            )
            if count is None or count < settings.soft_bounce_limit:
                continue
            entries.append(
                Suppression.of_address("email", address, Reason.SOFT_BOUNCES, source, customer_id=customer_id)
            )
        else:
            entries.append(Suppression.of_address("email", address, reason, source, customer_id=customer_id))
    if entries:
        suppression_table.add(settings.suppression_table, entries)
        metrics.add_metric(name="AddressesSuppressed", unit=MetricUnit.Count, value=len(entries))


@dataclass(frozen=True, slots=True)
class RunRisk:
    """A run's bounce and complaint rates from the events so far."""

    delivered: int
    bounced: int
    complained: int

    @property
    def reached(self) -> int:
        return self.delivered + self.bounced

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.reached if self.reached else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.reached if self.reached else 0.0

    def breach(self, settings: FeedbackSettings) -> str | None:
        """Which threshold the run crossed ("bounce_rate", "complaint_rate"), once enough events arrived."""
        if self.reached < settings.risk_min_events:
            return None
        if self.bounce_rate > settings.risk_bounce_rate:
            return "bounce_rate"
        if self.complaint_rate > settings.risk_complaint_rate:
            return "complaint_rate"
        return None


def _guard(ref: SendRef, kind: str, settings: FeedbackSettings) -> None:
    counts = campaigns_table.add_feedback(settings.campaigns_table, ref.campaign_id, ref.run_id, {kind: 1})
    risk = RunRisk(counts.get("delivery", 0), counts.get("hard_bounce", 0), counts.get("complaint", 0))
    breach = risk.breach(settings)
    if breach is None:
        return
    figures = {
        "breach": breach,
        "delivered": risk.delivered,
        "hard_bounces": risk.bounced,
        "complaints": risk.complained,
        "bounce_rate": round(risk.bounce_rate, 6),
        "complaint_rate": round(risk.complaint_rate, 6),
        "bounce_threshold": settings.risk_bounce_rate,
        "complaint_threshold": settings.risk_complaint_rate,
        "at": datetime.now(UTC).isoformat(),
    }
    if not campaigns_table.mark_risk_paused(settings.campaigns_table, ref.campaign_id, ref.run_id, figures):
        return  # paused for this run already: resuming is a person's decision, not ours to undo or repeat
    _pause(ref.campaign_id, settings)
    logger.warning("campaign paused by the risk guard", extra={"campaign_id": ref.campaign_id, **figures})
    metrics.add_metric(name="CampaignsRiskPaused", unit=MetricUnit.Count, value=1)
    alerts.publish(
        settings.alarm_topic_arn,
        f"cadence: campaign {ref.campaign_id} paused ({breach})",
        json.dumps({"campaign_id": ref.campaign_id, "run_id": ref.run_id, **figures}, indent=2),
    )


def _pause(campaign_id: str, settings: FeedbackSettings) -> None:
    # Imported here: only a breach needs the campaign lifecycle (and its settings).
    from cadence import campaign_control, config  # noqa: PLC0415
    from cadence.campaigns.lifecycle import IllegalTransitionError  # noqa: PLC0415

    try:
        campaign_control.pause(campaign_id, config.campaign_settings())
    except IllegalTransitionError:
        # Paused, completed or cancelled meanwhile: nothing is left to hold.
        logger.info("risk guard: the campaign could not be paused from its state", extra={"campaign_id": campaign_id})
