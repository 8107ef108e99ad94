"""Sending one planned message exactly once: claim it in the ledger, check consent, send, record the outcome."""

import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence.campaigns import CampaignDefinition, is_reachable
from cadence.config import DispatchSettings
from cadence.dal import campaigns_table, email, profiles_table, sends_table, sms
from cadence.dal.sends_table import SendStatus
from cadence.errors import InvalidInputError, PermanentError
from cadence.events import DispatchRequest
from cadence.observability import logger, metrics

_PLACEHOLDER = re.compile(r"\{(first_name|last_name|city)\}")


def render(template: str, profile: Mapping[str, Any]) -> str:
    """Fill {first_name}, {last_name} and {city}; nothing else in a template is interpreted."""
    return _PLACEHOLDER.sub(lambda match: str(profile.get(match.group(1)) or "").strip(), template)


def send_once(request: DispatchRequest, settings: DispatchSettings) -> SendStatus | None:
    """Send the requested message unless an earlier delivery did; returns the outcome, None for a duplicate.

    Raises:
        TransientError: the provider failed in a retryable way; the claim is released for the retry.
        InvalidInputError: the campaign no longer exists.
    """
    definition = _definition(settings.campaigns_table, request.campaign_id)
    log_ids = {"run_id": request.run_id, "customer_id": request.customer_id, "channel": request.channel}
    if not sends_table.claim(
        settings.sends_table, request.customer_id, request.run_id, request.channel, request.campaign_id
    ):
        logger.info("send already claimed", extra=log_ids)
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
        return None
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
    except Exception:
        _record(settings, request, SendStatus.FAILED, reason="transient")
        raise
    _record(settings, request, SendStatus.SENT, provider_message_id=message_id)
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=1)
    return SendStatus.SENT


def _deliver(
    request: DispatchRequest, definition: CampaignDefinition, profile: Mapping[str, Any], settings: DispatchSettings
) -> str:
    if request.channel == "email":
        if definition.email is None:
            raise PermanentError("campaign has no email message")
        return email.send_email(
            sender=settings.sender_email,
            recipient=str(profile["email"]),
            subject=render(definition.email.subject, profile),
            text_body=render(definition.email.body, profile),
        )
    if definition.sms is None:
        raise PermanentError("campaign has no sms message")
    return sms.send_sms(str(profile["phone"]), render(definition.sms.text, profile), settings.sms_sender_id)


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


def _definition(table_name: str, campaign_id: str) -> CampaignDefinition:
    # Read per send rather than cached: an edited or withdrawn campaign takes effect at once.
    stored = campaigns_table.get_definition(table_name, campaign_id)
    if stored is None:
        raise InvalidInputError(f"campaign {campaign_id} is not defined")
    return CampaignDefinition.model_validate(stored)
