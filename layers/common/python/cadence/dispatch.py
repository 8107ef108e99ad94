"""Sending a batch of planned messages, each at most once: claim the batch under a lease, check consent, send,
settle every outcome in one ledger write.

Three channels: email (SES SendBulkEmail, one call per template), SMS (SNS, one publish each) and webhook (one
signed HTTPS POST each, cadence.webhooks). Webhooks go out from this function rather than through an EventBridge
API destination: an API destination would be a second delivery path with its own retries (up to 24 hours, at
least once) and its own dead-letter queue, outside the send ledger, so a message could be POSTed twice, after a
campaign was paused or to a customer who withdrew consent, and the run could not tell sent from failed; and its
connection authorizes with a fixed API key, basic or OAuth header, so it cannot sign each body. Here a
webhook is claimed, checked (consent, suppression, campaign state) and settled like an SMS, and retried only
through the dispatch queue, only when it provably was not delivered.
"""

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence import email_templates, feedback_tags, run_report, suppression, unsubscribe, webhooks
from cadence.campaigns import CampaignDefinition, is_reachable
from cadence.campaigns.definition import MESSAGE_FIELDS, PLACEHOLDERS, EmailMessage, SmsMessage, WebhookMessage
from cadence.campaigns.lifecycle import SENDING, State
from cadence.config import DispatchSettings
from cadence.conversations.email_replies import reply_address
from cadence.dal import (
    campaigns_table,
    clients,
    conversations_table,
    email,
    profiles_table,
    secrets,
    sends_table,
    sms,
    suppression_table,
    webhook,
)
from cadence.dal.sends_table import BatchStatus, Outcome, SendStatus
from cadence.errors import (
    InvalidInputError,
    PermanentError,
    RetryLaterError,
    ThrottledError,
    TransientError,
    UncertainOutcomeError,
)
from cadence.events import BatchRecipient, DispatchBatch
from cadence.observability import logger, metrics
from cadence.pacing import Pacer
from cadence.sms_countries import calling_code_allowed

_PLACEHOLDER = re.compile(r"\{(first_name|last_name|city|offer_value|coupon_code)\}")
# The metric each settled outcome is counted under (SUPPRESSED is counted where it is decided, by its reason).
_METRICS = {
    SendStatus.SENT.value: "MessagesSent",
    SendStatus.REJECTED.value: "SendsRejected",
    SendStatus.IN_DOUBT.value: "SendsInDoubt",
    SendStatus.FAILED.value: "SendsFailed",
}


def render(template: str, profile: Mapping[str, Any], request: BatchRecipient | None = None) -> str:
    """Fill {first_name}, {last_name}, {city} from the profile and {offer_value}, {coupon_code} from the run's
    decision; nothing else in a template is interpreted."""
    values = {
        **profile,
        "offer_value": request.offer_value if request else None,
        "coupon_code": request.coupon_code if request else None,
    }
    return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1)) or "").strip(), template)


@dataclass(frozen=True)
class _Outgoing:
    """One message, ready to send: an SMS or webhook text rendered, an email as its template's message and the
    recipient's fields."""

    customer_id: str
    channel: str
    address: str
    text: str = ""
    email: EmailMessage | None = None
    webhook: WebhookMessage | None = None
    variant: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


# A redelivery that waits for a lease or a quiet run comes this much after it, not on its very edge.
_REDELIVERY_MARGIN_SECONDS = 1.0
# How long a worker trusts the account's send rate it read from GetAccount before reading it again.
_QUOTA_TTL_SECONDS = 600.0


@dataclass
class SettledTally:
    """What one invocation's settles add to each run's counter, written once a run when the invocation ends
    (`flush`) rather than once a batch: one UpdateItem for the invocation's ten batches instead of ten.

    An invocation that dies before flushing has its messages back (none was deleted), each batch found settled:
    the run's completion then comes from its ledger (`run_report.complete_once_quiet`), as after any death between
    a settle and its count.
    """

    runs: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)

    def add(self, campaign_id: str, run_id: str, *, sends: int, newly_final: bool) -> None:
        counted, final = self.runs.get((campaign_id, run_id), (0, False))
        self.runs[campaign_id, run_id] = (counted + sends, final or newly_final)

    def flush(self, settings: DispatchSettings) -> None:
        """Add each run's share to its counter, completing the runs this brings to what they queued."""
        while self.runs:
            (campaign_id, run_id), (sends, newly_final) = self.runs.popitem()
            _record_settled(settings, campaign_id, run_id, sends=sends, newly_final=newly_final)


def send_batch(
    batch: DispatchBatch,
    settings: DispatchSettings,
    time_left: Callable[[], float],
    *,
    last_delivery: bool = False,
    tally: SettledTally | None = None,
) -> dict[str, SendStatus]:
    """Send each of the batch's messages unless an earlier delivery did; returns every send's outcome ({} for a
    duplicate delivery).

    `last_delivery`: SQS moves the message to the dead-letter queue if this delivery fails too, so its FAILED
    sends are final for the run's completion (`cadence campaign retry-failed` can still queue them again).

    `tally`: what the settles add to the run's counter is kept there for the caller to flush once for many batches;
    without one it is written at once.

    `time_left` gives the seconds left in the invocation: with less than the reserve, the batch is not started;
    with less than one send's budget before a send, that send and the rest are FAILED (not sent) for a retry.

    The batch's claim carries a lease. A claim left by a worker that died before the provider calls is taken over
    once its lease expired; one left while sending is settled IN_DOUBT for its unsettled sends, never re-sent.
    A send of a paused campaign is HELD in the ledger (not sent, not lost) until the campaign is resumed or
    cancelled, which queues it again; of a cancelled campaign it is CANCELLED; of a campaign no longer defined, or
    to a customer without consent or address, SUPPRESSED.

    Raises:
        RetryLaterError: another delivery holds an unexpired lease on the batch (ask again once it ran out), or
            the batch was settled already while its run is still open (ask the ledger again once the run could
            have gone quiet, see `_already_claimed`).
        TransientError: too little time is left, some sends failed in a way that shows they were not sent (they
            are FAILED, and the redelivery of the batch sends only those), or the campaign was resumed while this
            delivery held its sends.
        InvalidInputError: the stored campaign definition is invalid.
    """
    if time_left() < settings.dispatch_reserve_seconds:
        # A batch started now might be cut off by the function's timeout after the provider accepted it, leaving
        # its outcome unrecorded: leave it unclaimed for SQS to redeliver.
        metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=len(batch.sends))
        raise TransientError("dispatch: too little time left in the invocation to start a batch")
    # Everything sending needs is read before the claim: a worker dying in these reads leaves nothing behind, and
    # the next delivery starts at once. A batch that will send is claimed straight as SENDING (one ledger write);
    # one of a stopped campaign is claimed, then settled without sending.
    definition, state = _campaign(settings.campaigns_table, batch.campaign_id)
    reads = _read_for_sending(batch, definition, settings) if definition and state in SENDING else None
    claim = sends_table.claim_batch(
        settings.sends_table,
        batch.run_id,
        batch.channel,
        batch.batch_id,
        batch.campaign_id,
        lease_seconds=settings.dispatch_lease_seconds,
        sending=reads is not None,
    )
    if claim.token is None:
        return _already_claimed(batch, settings, claim, last_delivery=last_delivery, tally=tally)
    token = claim.token
    # Every earlier outcome stays, also of sends this message does not name (retry-failed queues only the failed).
    outcomes: dict[str, Outcome] = dict(claim.outcomes or {})
    pending = [
        send
        for send in batch.sends
        if send.customer_id not in outcomes or outcomes[send.customer_id].status not in sends_table.FINAL_STATUSES
    ]
    outgoing, held = _prepare(batch, pending, outcomes, campaign=(definition, state), reads=reads)
    if outgoing:
        deliver = _deliver_emails if batch.channel == "email" else _deliver_all
        deliver(
            outgoing,
            {send.customer_id: send for send in pending},
            settings,
            time_left,
            outcomes=outcomes,
            on_crash=lambda: _settle(settings, batch, token, outcomes, exhausted=last_delivery),
            batch=batch,
            token=token,
        )
    if _settle(settings, batch, token, outcomes, exhausted=last_delivery):
        _count_settled(settings, batch, claim, outcomes, exhausted=last_delivery, tally=tally)
        if batch.channel == "sms" and outgoing:
            _remember_threads(batch, [outcomes[message.customer_id] for message in outgoing], settings)
    if held:
        _keep_held(batch, settings)
    failed = sum(outcomes[send.customer_id].status is SendStatus.FAILED for send in batch.sends)
    if failed:
        # The batch is PARTIAL: SQS redelivers it and only the FAILED sends go out again.
        raise TransientError(f"dispatch: {failed} of {len(batch.sends)} sends of the batch failed transiently")
    return {send.customer_id: outcomes[send.customer_id].status for send in batch.sends}


def _already_claimed(
    batch: DispatchBatch,
    settings: DispatchSettings,
    claim: sends_table.BatchClaim,
    *,
    last_delivery: bool,
    tally: SettledTally | None,
) -> dict[str, SendStatus]:
    """A delivery of a batch this one could not claim: a duplicate, a batch left in doubt, or one held by a lease."""
    log_ids = {"run_id": batch.run_id, "batch_id": batch.batch_id, "channel": batch.channel}
    if claim.status is BatchStatus.SETTLED:
        logger.info("batch already settled", extra=log_ids)
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=len(batch.sends))
        # A worker that died after settling and before counting left the run's counter short, so no later batch
        # would complete the run. This delivery cannot tell whether it was counted: once the run has gone quiet (a
        # lease with no batch counted) it asks the ledger, and while the run is still open it comes back later (not
        # on its last delivery, which asks the ledger whatever) to ask again once the rest settled.
        completed, ask_again_in = run_report.complete_once_quiet(
            settings.campaigns_table,
            settings.sends_table,
            batch.campaign_id,
            batch.run_id,
            quiet_seconds=0 if last_delivery else settings.dispatch_lease_seconds,
        )
        if completed:
            metrics.add_metric(name="RunsCompleted", unit=MetricUnit.Count, value=1)
        elif ask_again_in is not None and not last_delivery:
            raise RetryLaterError(
                "dispatch: the batch is settled and its run still open: asking again later",
                after_seconds=ask_again_in + _REDELIVERY_MARGIN_SECONDS,
            )
        return {}
    if claim.status is BatchStatus.SENDING and claim.lease_expired:
        # Its worker started the provider calls and never settled them (killed, timed out): they may have been sent.
        outcomes = sends_table.settle_in_doubt(
            settings.sends_table,
            batch.run_id,
            batch.channel,
            batch.batch_id,
            claim=claim,
            customer_ids=[send.customer_id for send in batch.sends],
        )
        if outcomes is None:
            return {}
        _count_settled(settings, batch, claim, outcomes, exhausted=claim.exhausted, tally=tally)
        in_doubt = sum(outcome.status is SendStatus.IN_DOUBT for outcome in outcomes.values())
        logger.warning(
            "batch lease expired while sending: in doubt, not sent again", extra={**log_ids, "in_doubt": in_doubt}
        )
        metrics.add_metric(name="SendsInDoubt", unit=MetricUnit.Count, value=in_doubt)
        return {send.customer_id: outcomes[send.customer_id].status for send in batch.sends}
    # Another delivery holds the lease: come back once the lease has run out, rather than drop the batch while
    # the holder may still die before sending.
    logger.info("batch held by another delivery", extra={**log_ids, "status": str(claim.status)})
    metrics.add_metric(name="SendsLeaseHeld", unit=MetricUnit.Count, value=1)
    lease_left = (claim.lease_until - datetime.now(UTC)).total_seconds() if claim.lease_until else 0.0
    raise RetryLaterError(
        "dispatch: the batch is held by another delivery's lease",
        after_seconds=max(lease_left, 0.0) + _REDELIVERY_MARGIN_SECONDS,
    )


@dataclass(frozen=True)
class _Reads:
    """What sending a batch reads before its claim: each send's contact and the suppressions since planning."""

    contacts: Mapping[str, Mapping[str, Any]]
    changes: suppression.Changes


def _read_for_sending(batch: DispatchBatch, definition: CampaignDefinition, settings: DispatchSettings) -> _Reads:
    planned_at = _planned_at(batch.run_id)
    return _Reads(
        contacts=_contacts(batch.sends, definition, settings, planned_at),
        changes=_feed(settings.suppression_table, settings.suppression_cache_seconds).since(planned_at),
    )


def _prepare(
    batch: DispatchBatch,
    pending: Sequence[BatchRecipient],
    outcomes: dict[str, Outcome],
    *,
    campaign: tuple[CampaignDefinition | None, State | None],
    reads: _Reads | None,
) -> tuple[list[_Outgoing], bool]:
    """(the messages to send, whether the campaign is paused), after recording in `outcomes` what must not go out:
    HELD for a paused campaign, CANCELLED or SUPPRESSED otherwise."""
    if not pending:
        return [], False
    definition, state = campaign
    if definition is not None and state is State.PAUSED:
        outcomes |= {send.customer_id: _outcome(send, SendStatus.HELD, reason="campaign_paused") for send in pending}
        metrics.add_metric(name="SendsHeld", unit=MetricUnit.Count, value=len(pending))
        return [], True
    if definition is None or reads is None:
        # Read per batch: a campaign stopped after planning stops here, and is accounted for.
        status = SendStatus.CANCELLED if state is State.CANCELLED else SendStatus.SUPPRESSED
        reason = "campaign_cancelled" if state is State.CANCELLED else "campaign_inactive"
        reason = reason if definition is not None else "campaign_not_defined"
        outcomes |= {send.customer_id: _outcome(send, status, reason=reason) for send in pending}
        metrics.add_metric(name="SendsCampaignInactive", unit=MetricUnit.Count, value=len(pending))
        return [], False
    outgoing = []
    for send in pending:
        profile = reads.contacts.get(send.customer_id)
        if profile is None or not is_reachable(profile, batch.channel, definition):
            # Consent can be withdrawn between planning and sending: check it again at the last moment.
            outcomes[send.customer_id] = _outcome(send, SendStatus.SUPPRESSED, reason="no_consent_or_address")
            metrics.add_metric(name="SendsSuppressed", unit=MetricUnit.Count, value=1)
            continue
        address = definition.address(profile, batch.channel) or ""
        if suppressed := reads.changes.stops(batch.channel, send.customer_id, address):
            outcomes[send.customer_id] = _outcome(send, SendStatus.SUPPRESSED, reason=f"suppressed_{suppressed}")
            metrics.add_metric(name="SendsSuppressed", unit=MetricUnit.Count, value=1)
            continue
        outgoing.append(_compose(batch, send, definition, profile))
    return outgoing, False


def _contacts(
    pending: Sequence[BatchRecipient], definition: CampaignDefinition, settings: DispatchSettings, planned_at: datetime
) -> dict[str, Mapping[str, Any]]:
    """Each send's address, consent and message fields: the contact its batch carries, as planning read it, else the
    profile (eventually consistent), for messages queued before contacts were carried.

    What changed since planning (consent withdrawn, unsubscribed, bounced, complained, erased) is the suppression
    log's to say, read strongly consistent. A send planned so long ago that the log may have let go of a change
    since (a campaign paused for weeks) reads the profile instead.
    """
    trust_carried = planned_at > datetime.now(UTC) - timedelta(days=suppression_table.LOG_DAYS - 1)
    contacts: dict[str, Mapping[str, Any]] = {
        send.customer_id: send.contact for send in pending if send.contact is not None and trust_carried
    }
    unread = [send.customer_id for send in pending if send.customer_id not in contacts]
    if unread:
        attributes = (*_CONTACT_ATTRIBUTES, *definition.contact_attributes())
        for profile in profiles_table.iter_many(
            settings.profiles_table, unread, attributes=attributes, consistent=False
        ):
            contacts[profile["customer_id"]] = profile
    return contacts


# What dispatch reads of a profile when the batch carries no contact: the addresses, their consent and the fields a
# message may carry.
_CONTACT_ATTRIBUTES = ("email", "phone", "consent_email", "consent_sms", *MESSAGE_FIELDS)
# The planner reads the audience at (or after) the firing its run id names; writers' clocks may be a little off.
_PLANNING_MARGIN = timedelta(minutes=5)


def _planned_at(run_id: str) -> datetime:
    """The earliest moment the run can have been planned: its firing time (run_id_for), less a margin."""
    try:
        fired = datetime.strptime(run_id.rsplit("@", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        # Not a run id of ours: check against the whole log kept.
        return datetime.now(UTC) - timedelta(days=suppression_table.LOG_DAYS)
    return fired - _PLANNING_MARGIN


@cache
def _feed(table_name: str, ttl_seconds: float) -> suppression.ChangeFeed:
    # One per container: a worker reads only what was logged since its last read, every few seconds at most.
    return suppression.ChangeFeed(
        fetch=lambda since: suppression_table.changes_since(table_name, since),
        ttl_seconds=ttl_seconds,
        clock=time.monotonic,
    )


def _keep_held(batch: DispatchBatch, settings: DispatchSettings) -> None:
    """Leave the held sends for the resume to queue again, unless the campaign was resumed meanwhile.

    A resume that read the campaign's held runs before this batch was noted would never queue it: reading the
    state after noting closes that gap (this delivery then fails, and SQS brings the batch back to be sent).
    """
    campaigns_table.note_held_run(settings.campaigns_table, batch.campaign_id, batch.run_id)
    _, state = _campaign(settings.campaigns_table, batch.campaign_id)
    if state is not State.PAUSED:
        raise TransientError("dispatch: the campaign was resumed or cancelled while its sends were held")
    logger.info("sends held for the paused campaign", extra={"run_id": batch.run_id, "batch_id": batch.batch_id})


def _count_settled(
    settings: DispatchSettings,
    batch: DispatchBatch,
    claim: sends_table.BatchClaim,
    outcomes: Mapping[str, Outcome],
    *,
    exhausted: bool,
    tally: SettledTally | None,
) -> None:
    """Count what this settle added to the run's done sends (from what the claim found to what it wrote)."""
    before = claim.outcomes or {}
    added = sends_table.counted(outcomes, exhausted=exhausted) - sends_table.counted(before, exhausted=claim.exhausted)
    # A send retried after failing for good (retry-failed) adds nothing, but may be the run's last one to settle.
    newly_final = any(
        outcome.status in sends_table.FINAL_STATUSES
        and (customer_id not in before or before[customer_id].status not in sends_table.FINAL_STATUSES)
        for customer_id, outcome in outcomes.items()
    )
    if tally is not None:
        tally.add(batch.campaign_id, batch.run_id, sends=added, newly_final=newly_final)
    else:
        _record_settled(settings, batch.campaign_id, batch.run_id, sends=added, newly_final=newly_final)


def _record_settled(
    settings: DispatchSettings, campaign_id: str, run_id: str, *, sends: int, newly_final: bool
) -> None:
    if run_report.record_settled(
        settings.campaigns_table, settings.sends_table, campaign_id, run_id, sends=sends, newly_final=newly_final
    ):
        metrics.add_metric(name="RunsCompleted", unit=MetricUnit.Count, value=1)


def _deliver_all(
    outgoing: Sequence[_Outgoing],
    sends: Mapping[str, BatchRecipient],
    settings: DispatchSettings,
    time_left: Callable[[], float],
    *,
    outcomes: dict[str, Outcome],
    on_crash: Callable[[], object],
    batch: DispatchBatch,
    **_: Any,
) -> None:
    """Send each SMS or webhook once, recording its outcome; a failure to record leaves the batch SENDING (in
    doubt)."""
    for index, message in enumerate(outgoing):
        send = sends[message.customer_id]
        if time_left() < settings.send_budget_seconds:
            # A send started now could outlive the invocation: this one and the rest go back unsent.
            outcomes |= {
                m.customer_id: _outcome(sends[m.customer_id], SendStatus.FAILED, reason="deferred")
                for m in outgoing[index:]
            }
            metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=len(outgoing) - index)
            return
        try:
            message_id = _deliver(message, send, batch, settings)
        except PermanentError as exc:
            outcomes[send.customer_id] = _outcome(send, SendStatus.REJECTED, reason=str(exc))
        except UncertainOutcomeError as exc:
            # Not retried: a redelivery could send the message twice. The ledger keeps it for an operator to check.
            outcomes[send.customer_id] = _outcome(send, SendStatus.IN_DOUBT, reason=str(exc))
        except TransientError as exc:
            # Throttling, an outage or no connection: the provider shows it did not send, so a retry may.
            outcomes[send.customer_id] = _outcome(send, SendStatus.FAILED, reason=str(exc))
        except Exception:
            # Anything else during the provider call may have come after it accepted the message; the rest were
            # not attempted.
            outcomes[send.customer_id] = _outcome(send, SendStatus.IN_DOUBT, reason="unexpected_error")
            outcomes |= {
                m.customer_id: _outcome(sends[m.customer_id], SendStatus.FAILED, reason="not_attempted")
                for m in outgoing[index + 1 :]
            }
            on_crash()
            raise
        else:
            outcomes[send.customer_id] = _outcome(send, SendStatus.SENT, message_id=message_id)


def _outcome(
    send: BatchRecipient, status: SendStatus, *, reason: str | None = None, message_id: str | None = None
) -> Outcome:
    return Outcome(
        status=status,
        reason=reason,
        message_id=message_id,
        variant=send.variant,
        offer_value=send.offer_value,
        coupon_code=send.coupon_code,
    )


def _compose(
    batch: DispatchBatch, send: BatchRecipient, definition: CampaignDefinition, profile: Mapping[str, Any]
) -> _Outgoing:
    message = definition.message(batch.channel, send.variant)
    if isinstance(message, EmailMessage):
        values = {**profile, "offer_value": send.offer_value, "coupon_code": send.coupon_code}
        fields = {name: str(values.get(name) or "").strip() for name in PLACEHOLDERS}
        return _Outgoing(
            customer_id=send.customer_id,
            channel="email",
            address=str(profile["email"]),
            email=message,
            variant=send.variant,
            fields=fields,
        )
    if isinstance(message, SmsMessage):
        text = render(message.text, profile, send)
        return _Outgoing(send.customer_id, channel="sms", address=str(profile["phone"]), text=text)
    if isinstance(message, WebhookMessage):
        text = render(message.text, profile, send)
        address = definition.address(profile, "webhook") or ""
        return _Outgoing(send.customer_id, channel="webhook", address=address, text=text, webhook=message)
    raise PermanentError(f"campaign has no {batch.channel} message")


def _remember_threads(batch: DispatchBatch, sent: Sequence[Outcome], settings: DispatchSettings) -> None:
    """Which run sent each SMS, so a reply to it counts on the run (cadence.conversations.inbound); one write per 25
    messages, beside SMS fees a thousand times larger. Best effort: a reply without it is still acted on."""
    message_ids = [o.message_id for o in sent if o.status is SendStatus.SENT and o.message_id]
    if not settings.conversations_table or not message_ids:
        return
    ref = {"campaign_id": batch.campaign_id, "run_id": batch.run_id, "batch_id": batch.batch_id}
    try:
        conversations_table.put_threads(settings.conversations_table, "sms", message_ids, ref, at=datetime.now(UTC))
    except (TransientError, PermanentError):
        logger.warning("sms threads not recorded", extra={"run_id": batch.run_id, "batch_id": batch.batch_id})
        metrics.add_metric(name="ThreadsNotRecorded", unit=MetricUnit.Count, value=len(message_ids))


def _timeouts(settings: DispatchSettings) -> clients.SendTimeouts:
    return clients.SendTimeouts(settings.send_connect_timeout_seconds, settings.send_read_timeout_seconds)


def _deliver(outgoing: _Outgoing, send: BatchRecipient, batch: DispatchBatch, settings: DispatchSettings) -> str:
    if outgoing.webhook is not None:
        return _post_webhook(outgoing, outgoing.webhook, send, batch, settings)
    if not calling_code_allowed(outgoing.address, settings.sms_allowed_country_codes):
        raise PermanentError("sms_country_not_allowed")  # REJECTED, never sent: see cadence.sms_countries
    return sms.send_sms(outgoing.address, outgoing.text, settings.sms_sender_id, _timeouts(settings))


def _post_webhook(
    outgoing: _Outgoing, message: WebhookMessage, send: BatchRecipient, batch: DispatchBatch, settings: DispatchSettings
) -> str:
    """One signed POST (cadence.webhooks); returns its delivery id, which the ledger keeps as the message id."""
    if settings.webhook_secret_arn is None:
        raise PermanentError("webhook_not_configured")  # REJECTED: this stack has no signing secret
    delivery = webhooks.Delivery(
        delivery_id=webhooks.delivery_id(batch.run_id, batch.batch_id, send.customer_id),
        event=message.event,
        campaign_id=batch.campaign_id,
        run_id=batch.run_id,
        customer_id=send.customer_id,
        address=outgoing.address,
        text=outgoing.text,
        variant=send.variant,
        offer_value=send.offer_value,
        coupon_code=send.coupon_code,
    )
    body = delivery.body()
    # Signed at each attempt: a retry carries a fresh timestamp and the same delivery id.
    headers = webhooks.sign(secrets.signing_key(settings.webhook_secret_arn), int(time.time()), body)
    headers[webhooks.DELIVERY_HEADER] = delivery.delivery_id
    webhook.post(
        message.url, body, headers, _timeouts(settings), allow_loopback_http=settings.webhook_allow_loopback_http
    )
    return delivery.delivery_id


@dataclass
class _Quota:
    """A worker's pacer and when it last read the account's send rate."""

    pacer: Pacer
    read_at: float


@cache
def _quota(concurrency: int) -> _Quota:
    # One per container: the pacer's state (its rate, its next send) outlives the invocation, as the fleet's does.
    return _Quota(Pacer(email.max_send_rate(), concurrency), time.monotonic())


def _pacer(settings: DispatchSettings) -> Pacer:
    quota = _quota(settings.dispatch_max_concurrency)
    if time.monotonic() - quota.read_at > _QUOTA_TTL_SECONDS:
        quota.pacer.set_account_rate(email.max_send_rate())
        quota.read_at = time.monotonic()
    return quota.pacer


def _entry(batch: DispatchBatch, message: _Outgoing, settings: DispatchSettings, key: bytes) -> email.BulkEntry:
    """One destination: the recipient's template data and one-click unsubscribe headers (RFC 8058)."""
    claims = unsubscribe.UnsubscribeClaims(
        customer_id=message.customer_id,
        channel="email",
        campaign_id=batch.campaign_id,
        run_id=batch.run_id,
        expires_at=datetime.now(UTC) + timedelta(days=settings.unsubscribe_token_days),
    )
    url = unsubscribe.link(settings.unsubscribe_base_url, unsubscribe.sign(key, claims))
    data = email_templates.replacement_data({**message.fields, email_templates.UNSUBSCRIBE_FIELD: url})
    headers = (("List-Unsubscribe", f"<{url}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    # SES publishes the tags with every event of the message: how feedback finds the send (cadence.feedback).
    tags = (
        (feedback_tags.TAG_CAMPAIGN, feedback_tags.tag_value(batch.campaign_id)),
        (feedback_tags.TAG_RUN, feedback_tags.tag_value(batch.run_id)),
        (feedback_tags.TAG_BATCH, feedback_tags.tag_value(batch.batch_id)),
        (feedback_tags.TAG_CUSTOMER, feedback_tags.tag_value(message.customer_id)),
    )
    return email.BulkEntry(address=message.address, template_data=data, headers=headers, tags=tags)


def _deliver_emails(
    outgoing: Sequence[_Outgoing],
    sends: Mapping[str, BatchRecipient],
    settings: DispatchSettings,
    time_left: Callable[[], float],
    *,
    outcomes: dict[str, Outcome],
    on_crash: Callable[[], object],
    batch: DispatchBatch,
    token: str,
) -> None:
    """Send the batch's emails with one SendBulkEmail call per template (variant), paced to the account's rate.

    Destinations SES throttled (ACCOUNT_THROTTLED) are sent again after the pacer slowed down, with what is known
    recorded first (the batch stays SENDING); still throttled after the last round, or out of time, they are FAILED,
    as are the destinations of a call that failed whole (throttled, an outage), for SQS's redelivery.
    """
    key = secrets.signing_key(settings.unsubscribe_secret_arn)
    by_template: dict[str, list[tuple[_Outgoing, email.BulkEntry]]] = {}
    for message in outgoing:
        assert message.email is not None  # noqa: S101 - _compose gives every email its message
        name = email_templates.template_name(
            settings.email_template_prefix, batch.campaign_id, message.variant, message.email
        )
        by_template.setdefault(name, []).append((message, _entry(batch, message, settings, key)))
    pacer = _pacer(settings)
    # Replies go to an address naming the run (cadence.conversations.email_replies), so they count on it.
    reply_to = reply_address(settings.inbound_email_domain, batch.run_id) if settings.inbound_email_domain else None
    groups = list(by_template.items())
    for index, (name, group) in enumerate(groups):
        remaining = group
        for attempt in range(settings.dispatch_throttle_rounds + 1):
            if attempt:
                # Known outcomes first: a worker dying in the next call leaves only these destinations in doubt.
                sends_table.checkpoint(
                    settings.sends_table, batch.run_id, batch.channel, batch.batch_id, token=token, outcomes=outcomes
                )
            wait = pacer.delay(time.monotonic())
            if time_left() - wait < settings.send_budget_seconds:
                # Waiting for the rate and then sending could outlive the invocation: these go back unsent.
                unsent = [message for _, group_rest in groups[index + 1 :] for message, _ in group_rest]
                unsent += [message for message, _ in remaining]
                outcomes |= {
                    m.customer_id: _outcome(sends[m.customer_id], SendStatus.FAILED, reason="deferred") for m in unsent
                }
                metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=len(unsent))
                return
            if wait:
                time.sleep(wait)
            remaining = _send_group(
                name,
                remaining,
                sends,
                settings,
                pacer,
                outcomes=outcomes,
                on_crash=on_crash,
                later=groups[index + 1 :],
                reply_to=reply_to,
            )
            if not remaining:
                break
            metrics.add_metric(name="SendsThrottled", unit=MetricUnit.Count, value=len(remaining))


def _send_group(
    template_name: str,
    group: Sequence[tuple[_Outgoing, email.BulkEntry]],
    sends: Mapping[str, BatchRecipient],
    settings: DispatchSettings,
    pacer: Pacer,
    *,
    outcomes: dict[str, Outcome],
    on_crash: Callable[[], object],
    later: Sequence[tuple[str, Sequence[tuple[_Outgoing, email.BulkEntry]]]],
    reply_to: str | None = None,
) -> list[tuple[_Outgoing, email.BulkEntry]]:
    """One SendBulkEmail call; records each destination's outcome and returns those SES throttled."""

    def settle_all(status: SendStatus, reason: str) -> None:
        outcomes.update(
            {message.customer_id: _outcome(sends[message.customer_id], status, reason=reason) for message, _ in group}
        )

    started = time.monotonic()
    try:
        results = email.send_bulk(
            sender=settings.sender_email,
            template_name=template_name,
            configuration_set=settings.ses_configuration_set,
            entries=[entry for _, entry in group],
            timeouts=_timeouts(settings),
            reply_to=reply_to,
        )
    except PermanentError as exc:
        settle_all(SendStatus.REJECTED, str(exc))
        pacer.sent(started, len(group), throttled=False)
        return []
    except UncertainOutcomeError as exc:
        # Not retried: a redelivery could send these twice. The ledger keeps them for an operator to check.
        settle_all(SendStatus.IN_DOUBT, str(exc))
        return []
    except TransientError as exc:
        # Throttling, an outage or no connection for the whole call: nothing was sent, so SQS's redelivery may send
        # it. The worker slows down for throttling; an outage says nothing about the rate (halving on every 5xx
        # left a worker at its floor after a few failed calls).
        settle_all(SendStatus.FAILED, str(exc))
        if isinstance(exc, ThrottledError):
            pacer.sent(started, len(group), throttled=True)
        return []
    except Exception:
        # Anything else during the call may have come after SES accepted it; later groups were not attempted.
        settle_all(SendStatus.IN_DOUBT, "unexpected_error")
        outcomes.update(
            {
                message.customer_id: _outcome(sends[message.customer_id], SendStatus.FAILED, reason="not_attempted")
                for _, rest in later
                for message, _ in rest
            }
        )
        on_crash()
        raise
    throttled = []
    for (message, entry), result in zip(group, results, strict=True):
        send = sends[message.customer_id]
        if result.outcome == "sent":
            outcomes[message.customer_id] = _outcome(send, SendStatus.SENT, message_id=result.message_id)
        elif result.outcome == "rejected":
            outcomes[message.customer_id] = _outcome(send, SendStatus.REJECTED, reason=result.reason)
        else:
            outcomes[message.customer_id] = _outcome(send, SendStatus.FAILED, reason=result.reason)
            if result.throttled:
                throttled.append((message, entry))
    pacer.sent(started, len(group), throttled=bool(throttled))
    return throttled


def _settle(
    settings: DispatchSettings,
    batch: DispatchBatch,
    token: str,
    outcomes: Mapping[str, Outcome],
    *,
    exhausted: bool,
) -> bool:
    log_ids = {"run_id": batch.run_id, "batch_id": batch.batch_id, "channel": batch.channel}
    if not sends_table.settle(
        settings.sends_table,
        batch.run_id,
        batch.channel,
        batch.batch_id,
        token=token,
        outcomes=outcomes,
        exhausted=exhausted,
    ):
        # Only a claim taken over after its lease expired loses its token, and that happens before any send.
        logger.warning("batch outcome not recorded: the claim was taken over", extra=log_ids)
        return False
    counts = Counter(outcome.status.value for outcome in outcomes.values())
    for status, count in counts.items():
        if status in _METRICS:
            metrics.add_metric(name=_METRICS[status], unit=MetricUnit.Count, value=count)
    logger.info("batch recorded", extra={**log_ids, **{f"sends_{status.lower()}": n for status, n in counts.items()}})
    return True


def _campaign(table_name: str, campaign_id: str) -> tuple[CampaignDefinition | None, State | None]:
    """The campaign's definition and lifecycle state; (None, None) when it is not stored."""
    # Read per batch rather than cached: an edited, paused or cancelled campaign takes effect at once.
    stored = campaigns_table.get_campaign(table_name, campaign_id)
    if stored is None:
        return None, None
    try:
        return CampaignDefinition.model_validate(stored.definition), stored.state
    except ValueError as exc:
        raise InvalidInputError(f"stored campaign {campaign_id} is invalid") from exc
