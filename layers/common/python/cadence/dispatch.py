"""Sending one planned message exactly once: claim it in the ledger, check consent, send, record the outcome."""

import re
from collections.abc import Callable, Mapping
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


def send_once(
    request: DispatchRequest, settings: DispatchSettings, time_left: Callable[[], float]
) -> SendStatus | None:
    """Send the requested message unless an earlier delivery did; returns the outcome, None for a duplicate.

    `time_left` gives the seconds left in the invocation: with less than the reserve, the send is not started.

    A send of a campaign that is no longer active (or no longer defined) is recorded SUPPRESSED, not sent:
    deactivating a campaign stops the sends already queued for it.

    Raises:
        TransientError: too little time is left (nothing was claimed), or the provider failed in a way that
            shows nothing was sent; the claim is released for the retry.
        InvalidInputError: the stored campaign definition is invalid.
    """
    log_ids = {"run_id": request.run_id, "customer_id": request.customer_id, "channel": request.channel}
    if time_left() < settings.dispatch_reserve_seconds:
        # A send started now might be cut off by the function's timeout after the provider accepted it, leaving
        # its outcome unrecorded: leave it unclaimed for SQS to redeliver.
        metrics.add_metric(name="SendsDeferred", unit=MetricUnit.Count, value=1)
        raise TransientError("dispatch: too little time left in the invocation to start a send")
    details = {"variant": request.variant, "offer_value": request.offer_value, "coupon_code": request.coupon_code}
    if not sends_table.claim(
        settings.sends_table,
        request.customer_id,
        request.run_id,
        request.channel,
        request.campaign_id,
        details={name: value for name, value in details.items() if value},
    ):
        logger.info("send already claimed", extra=log_ids)
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return None
    definition = _definition(settings.campaigns_table, request.campaign_id)
    if definition is None or not definition.active:
        # Read per send, after the claim: a campaign switched off after planning stops here, and is accounted for.
        _record(settings, request, SendStatus.SUPPRESSED, reason=_CAMPAIGN_STOPPED[definition is None])
        metrics.add_metric(name="SendsCampaignInactive", unit=MetricUnit.Count, value=1)
        return SendStatus.SUPPRESSED
    profile = profiles_table.get(settings.profiles_table, request.customer_id)
    if profile is None or not is_reachable(profile, request.channel):
        # Consent can be withdrawn between planning and sending: check it again at the last moment.
        _record(settings, request, SendStatus.SUPPRESSED, reason="no_consent_or_address")
        metrics.add_metric(name="SendsSuppressed", unit=MetricUnit.Count, value=1)
        return SendStatus.SUPPRESSED
    try:
        message_id = _deliver(request, definition, profile, settings)
    except PermanentError as exc:
        _record(settings, request, SendStatus.REJECTED, reason=str(exc))
        logger.warning("provider rejected send", extra={**log_ids, "reason": str(exc)})
        metrics.add_metric(name="SendsRejected", unit=MetricUnit.Count, value=1)
        return SendStatus.REJECTED
    except UncertainOutcomeError as exc:
        # Not raised: a redelivery could send the message twice. The ledger keeps it for an operator to check.
        _record(settings, request, SendStatus.UNCERTAIN, reason=str(exc))
        logger.warning("send outcome unknown, not sent again", extra={**log_ids, "reason": str(exc)})
        metrics.add_metric(name="SendsUncertain", unit=MetricUnit.Count, value=1)
        return SendStatus.UNCERTAIN
    except Exception:
        _record(settings, request, SendStatus.FAILED, reason="transient")
        raise
    _record(settings, request, SendStatus.SENT, provider_message_id=message_id)
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=1)
    return SendStatus.SENT


def _deliver(
    request: DispatchRequest, definition: CampaignDefinition, profile: Mapping[str, Any], settings: DispatchSettings
) -> str:
    timeouts = clients.SendTimeouts(settings.send_connect_timeout_seconds, settings.send_read_timeout_seconds)
    message = definition.message(request.channel, request.variant)
    if isinstance(message, EmailMessage):
        return email.send_email(
            sender=settings.sender_email,
            recipient=str(profile["email"]),
            subject=render(message.subject, profile, request),
            text_body=render(message.body, profile, request),
            timeouts=timeouts,
        )
    if isinstance(message, SmsMessage):
        text = render(message.text, profile, request)
        return sms.send_sms(str(profile["phone"]), text, settings.sms_sender_id, timeouts)
    raise PermanentError(f"campaign has no {request.channel} message")


def _record(
    settings: DispatchSettings,
    request: DispatchRequest,
    status: SendStatus,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> None:
    sends_table.record_outcome(
        settings.sends_table,
        request.customer_id,
        request.run_id,
        request.channel,
        status,
        provider_message_id=provider_message_id,
        reason=reason,
    )
    logger.info(
        "send recorded",
        extra={
            "run_id": request.run_id,
            "customer_id": request.customer_id,
            "channel": request.channel,
            "status": status.value,
        },
    )


def _definition(table_name: str, campaign_id: str) -> CampaignDefinition | None:
    # Read per send rather than cached: an edited or withdrawn campaign takes effect at once.
    stored = campaigns_table.get_definition(table_name, campaign_id)
    if stored is None:
        return None
    try:
        return CampaignDefinition.model_validate(stored)
    except ValueError as exc:
        raise InvalidInputError(f"stored campaign {campaign_id} is invalid") from exc
