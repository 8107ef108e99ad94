"""Sending one planned message at most once: claim it under a lease, check consent, send, settle the outcome."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence.campaigns import CampaignDefinition, is_reachable
from cadence.campaigns.definition import EmailMessage, SmsMessage
from cadence.config import DispatchSettings
from cadence.dal import campaigns_table, clients, email, profiles_table, sends_table, sms
from cadence.dal.sends_table import SendStatus
from cadence.errors import InvalidInputError, PermanentError, TransientError, UncertainOutcomeError
from cadence.events import DispatchRequest
from cadence.observability import logger, metrics

_PLACEHOLDER = re.compile(r"\{(first_name|last_name|city|offer_value|coupon_code)\}")
# The ledger reason of a send whose campaign was stopped, by whether its definition is gone.
_CAMPAIGN_STOPPED = {False: "campaign_inactive", True: "campaign_not_defined"}


def render(template: str, profile: Mapping[str, Any], request: DispatchRequest | None = None) -> str:
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
    """One rendered message, ready for a single provider call."""

    channel: str
    address: str
    text: str
    subject: str = ""


def send_once(
    request: DispatchRequest, settings: DispatchSettings, time_left: Callable[[], float]
) -> SendStatus | None:
    """Send the requested message unless an earlier delivery did; returns the outcome, None for a duplicate.

    `time_left` gives the seconds left in the invocation: with less than the reserve, the send is not started, and
    with less than one send's budget after the checks, the claim is given back (FAILED) before the provider call.

    The claim carries a lease. A claim left by a worker that died before calling the provider is taken over once
    its lease expired; one left while calling the provider (SENDING) is settled IN_DOUBT and never sent again.
    A send of a campaign that is no longer active (or no longer defined) is recorded SUPPRESSED, not sent:
    deactivating a campaign stops the sends already queued for it.

    Raises:
        TransientError: too little time is left, another delivery holds an unexpired lease on the send, or the
            provider failed in a way that shows nothing was sent (the send is FAILED, so a retry may claim it).
        InvalidInputError: the stored campaign definition is invalid.
    """
    log_ids = {"run_id": request.run_id, "customer_id": request.customer_id, "channel": request.channel}
    if time_left() < settings.dispatch_reserve_seconds:
        # A send started now might be cut off by the function's timeout after the provider accepted it, leaving
        # its outcome unrecorded: leave it unclaimed for SQS to redeliver.
        metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=1)
        raise TransientError("dispatch: too little time left in the invocation to start a send")
    details = {"variant": request.variant, "offer_value": request.offer_value, "coupon_code": request.coupon_code}
    claim = sends_table.claim(
        settings.sends_table,
        request.customer_id,
        request.run_id,
        request.channel,
        request.campaign_id,
        lease_seconds=settings.dispatch_lease_seconds,
        details={name: value for name, value in details.items() if value},
    )
    if claim.token is None:
        return _already_claimed(request, settings, claim)
    token = claim.token
    definition = _definition(settings.campaigns_table, request.campaign_id)
    active = definition is not None and definition.active
    profile = profiles_table.get(settings.profiles_table, request.customer_id) if active else None
    suppressed = _suppression(request, definition, profile)
    if suppressed or definition is None or profile is None:
        reason, metric = suppressed or ("campaign_not_defined", "SendsCampaignInactive")
        _settle(settings, request, token, SendStatus.SUPPRESSED, reason=reason)
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        return SendStatus.SUPPRESSED
    outgoing = _compose(request, definition, profile)
    if time_left() < settings.send_budget_seconds:
        # The reads above were slow: a send started now could outlive the invocation. Nothing was sent yet.
        _settle(settings, request, token, SendStatus.FAILED, reason="deferred")
        metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=1)
        raise TransientError("dispatch: too little time left in the invocation to send")
    if not sends_table.start_sending(
        settings.sends_table,
        request.customer_id,
        request.run_id,
        request.channel,
        token,
        lease_seconds=settings.dispatch_lease_seconds,
    ):
        # Our lease ran out before the send and another delivery took the claim over: it sends, we do not.
        logger.warning("send claim taken over before sending", extra=log_ids)
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return None
    try:
        message_id = _deliver(outgoing, settings)
    except PermanentError as exc:
        _settle(settings, request, token, SendStatus.REJECTED, reason=str(exc))
        logger.warning("provider rejected send", extra={**log_ids, "reason": str(exc)})
        metrics.add_metric(name="SendsRejected", unit=MetricUnit.Count, value=1)
        return SendStatus.REJECTED
    except UncertainOutcomeError as exc:
        # Not raised: a redelivery could send the message twice. The ledger keeps it for an operator to check.
        _settle(settings, request, token, SendStatus.IN_DOUBT, reason=str(exc))
        logger.warning("send outcome unknown, not sent again", extra={**log_ids, "reason": str(exc)})
        metrics.add_metric(name="SendsInDoubt", unit=MetricUnit.Count, value=1)
        return SendStatus.IN_DOUBT
    except TransientError as exc:
        # Throttling, an outage or no connection: the provider shows it did not send, so a retry may.
        _settle(settings, request, token, SendStatus.FAILED, reason=str(exc))
        raise
    except Exception:
        # Anything else during the provider call may have come after it accepted the message.
        _settle(settings, request, token, SendStatus.IN_DOUBT, reason="unexpected_error")
        metrics.add_metric(name="SendsInDoubt", unit=MetricUnit.Count, value=1)
        raise
    _settle(settings, request, token, SendStatus.SENT, provider_message_id=message_id)
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=1)
    return SendStatus.SENT


def _already_claimed(
    request: DispatchRequest, settings: DispatchSettings, claim: sends_table.Claim
) -> SendStatus | None:
    """A delivery of a send this one could not claim: a duplicate, a send left in doubt, or one held by a lease."""
    log_ids = {"run_id": request.run_id, "customer_id": request.customer_id, "channel": request.channel}
    if claim.status in sends_table.FINAL_STATUSES:
        logger.info("send already settled", extra=log_ids)
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return None
    if claim.status is SendStatus.SENDING and claim.lease_expired:
        # Its worker started the provider call and never settled it (killed, timed out): it may have been sent.
        if sends_table.settle_in_doubt(
            settings.sends_table, request.customer_id, request.run_id, request.channel, claim.holder_token
        ):
            logger.warning("send lease expired while sending: in doubt, not sent again", extra=log_ids)
            metrics.add_metric(name="SendsInDoubt", unit=MetricUnit.Count, value=1)
            return SendStatus.IN_DOUBT
        return None
    # Another delivery holds the lease (or settled FAILED just now): come back once the lease has run out, rather
    # than drop the message while the holder may still die before sending.
    logger.info("send held by another delivery", extra={**log_ids, "status": str(claim.status)})
    metrics.add_metric(name="SendsLeaseHeld", unit=MetricUnit.Count, value=1)
    raise TransientError("dispatch: the send is held by another delivery's lease")


def _suppression(
    request: DispatchRequest, definition: CampaignDefinition | None, profile: Mapping[str, Any] | None
) -> tuple[str, str] | None:
    """Why a claimed send is not sent after all (ledger reason, metric name), or None to send it."""
    if definition is None or not definition.active:
        # Read per send, after the claim: a campaign switched off after planning stops here, and is accounted for.
        return _CAMPAIGN_STOPPED[definition is None], "SendsCampaignInactive"
    if profile is None or not is_reachable(profile, request.channel):
        # Consent can be withdrawn between planning and sending: check it again at the last moment.
        return "no_consent_or_address", "SendsSuppressed"
    return None


def _compose(request: DispatchRequest, definition: CampaignDefinition, profile: Mapping[str, Any]) -> _Outgoing:
    message = definition.message(request.channel, request.variant)
    if isinstance(message, EmailMessage):
        return _Outgoing(
            channel="email",
            address=str(profile["email"]),
            subject=render(message.subject, profile, request),
            text=render(message.body, profile, request),
        )
    if isinstance(message, SmsMessage):
        return _Outgoing(channel="sms", address=str(profile["phone"]), text=render(message.text, profile, request))
    raise PermanentError(f"campaign has no {request.channel} message")


def _deliver(outgoing: _Outgoing, settings: DispatchSettings) -> str:
    timeouts = clients.SendTimeouts(settings.send_connect_timeout_seconds, settings.send_read_timeout_seconds)
    if outgoing.channel == "email":
        return email.send_email(
            sender=settings.sender_email,
            recipient=outgoing.address,
            subject=outgoing.subject,
            text_body=outgoing.text,
            timeouts=timeouts,
        )
    return sms.send_sms(outgoing.address, outgoing.text, settings.sms_sender_id, timeouts)


def _settle(
    settings: DispatchSettings,
    request: DispatchRequest,
    token: str,
    status: SendStatus,
    *,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> None:
    log_ids = {"run_id": request.run_id, "customer_id": request.customer_id, "channel": request.channel}
    settled = sends_table.settle(
        settings.sends_table,
        request.customer_id,
        request.run_id,
        request.channel,
        token=token,
        status=status,
        provider_message_id=provider_message_id,
        reason=reason,
    )
    if not settled:
        # Only a claim taken over after its lease expired loses its token, and that happens before any send.
        logger.warning("send outcome not recorded: the claim was taken over", extra={**log_ids, "status": status.value})
        return
    logger.info("send recorded", extra={**log_ids, "status": status.value})


def _definition(table_name: str, campaign_id: str) -> CampaignDefinition | None:
    # Read per send rather than cached: an edited or withdrawn campaign takes effect at once.
    stored = campaigns_table.get_definition(table_name, campaign_id)
    if stored is None:
        return None
    try:
        return CampaignDefinition.model_validate(stored)
    except ValueError as exc:
        raise InvalidInputError(f"stored campaign {campaign_id} is invalid") from exc
