"""Email through SESv2: one SendBulkEmail call per batch (up to 50 destinations), each filled from a template."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import PermanentError, TransientError, UncertainOutcomeError

# SendBulkEmail takes at most 50 entries a call.
BULK_LIMIT = 50
# Call-level refusals that no retry fixes (an unverified sender, a malformed request), whatever their status.
_REJECTIONS = frozenset(
    {"MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException", "InvalidParameterValue"}
)
# Per-destination statuses that say SES refused that message for good; the reason recorded is the status.
_REJECTED_STATUSES = frozenset({"MESSAGE_REJECTED", "MAIL_FROM_DOMAIN_NOT_VERIFIED", "INVALID_PARAMETER"})
# Statuses of throttling: the destination may go out once the rate allows (dispatch backs off and resends).
THROTTLED_STATUSES = frozenset({"ACCOUNT_THROTTLED"})
# Every other non-SUCCESS status (a transient failure, a missing template or configuration set, sending paused,
# the daily quota) means SES did not send that message: FAILED, retried after the cause is gone.


@dataclass(frozen=True)
class BulkEntry:
    """One destination of a bulk call: its address, its template data, and its own headers."""

    address: str
    template_data: str
    headers: tuple[tuple[str, str], ...] = ()
    # Message tags (name, value), published with every event of the message.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DestinationResult:
    """What SES said of one destination: sent (with its message id), rejected for good, or failed (not sent)."""

    outcome: Literal["sent", "rejected", "failed"]
    message_id: str | None = None
    reason: str | None = None

    @property
    def throttled(self) -> bool:
        return self.outcome == "failed" and self.reason in THROTTLED_STATUSES


def _result(entry: dict[str, str]) -> DestinationResult:
    status = str(entry.get("Status", ""))
    if status == "SUCCESS":
        return DestinationResult("sent", message_id=str(entry["MessageId"]))
    return DestinationResult("rejected" if status in _REJECTED_STATUSES else "failed", reason=status or "FAILED")


def send_bulk(
    *,
    sender: str,
    template_name: str,
    configuration_set: str,
    entries: Sequence[BulkEntry],
    timeouts: clients.SendTimeouts,
    reply_to: str | None = None,
) -> list[DestinationResult]:
    """Send one templated email to each entry in one SendBulkEmail call (one attempt); results in entry order.
    `reply_to` is where replies to every one of them go (SES takes one Reply-To a call, none per destination).

    Raises:
        PermanentError: SES refused the whole call (e.g. an unverified sender).
        TransientError: throttling, an SES outage, or SES could not be reached (nothing was sent).
        UncertainOutcomeError: SES got the request but its answer never came (any of them may have been sent).
    """
    if not 0 < len(entries) <= BULK_LIMIT:
        raise ValueError(f"a bulk call takes 1 to {BULK_LIMIT} destinations, not {len(entries)}")
    try:
        response = clients.send_client("sesv2", timeouts).send_bulk_email(
            FromEmailAddress=sender,
            DefaultContent={"Template": {"TemplateName": template_name, "TemplateData": "{}"}},
            BulkEmailEntries=[
                {
                    "Destination": {"ToAddresses": [entry.address]},
                    "ReplacementEmailContent": {
                        "ReplacementTemplate": {"ReplacementTemplateData": entry.template_data}
                    },
                    "ReplacementHeaders": [{"Name": name, "Value": value} for name, value in entry.headers],
                    "ReplacementTags": [{"Name": name, "Value": value} for name, value in entry.tags],
                }
                for entry in entries
            ],
            ConfigurationSetName=configuration_set,
            **({"ReplyToAddresses": [reply_to]} if reply_to else {}),
        )
    except ClientError as exc:
        code = clients.error_code(exc)
        if code in _REJECTIONS:
            raise PermanentError(f"sesv2.send_bulk_email: {code}") from exc
        if code == "NotFoundException":
            # No such template or configuration set: nothing was sent, and it may be once the campaign is stored again.
            raise TransientError(f"sesv2.send_bulk_email: {code}") from exc
        raise clients.translate(exc, "sesv2.send_bulk_email") from exc
    except clients.NETWORK_ERRORS as exc:
        raise clients.translate_network_error(exc, "sesv2.send_bulk_email") from exc
    results = [_result(entry) for entry in response.get("BulkEmailEntryResults", [])]
    if len(results) != len(entries):
        # SES answers every entry; a short answer leaves the missing ones unknown, which is in doubt, not failed.
        raise UncertainOutcomeError(f"sesv2.send_bulk_email: {len(results)} results for {len(entries)} destinations")
    return results


def max_send_rate() -> float:
    """The account's maximum send rate (messages per second) from GetAccount.

    Raises:
        TransientError: throttling or an outage.
        PermanentError: SES refused the call.
    """
    try:
        account = clients.client("sesv2").get_account()
    except ClientError as exc:
        raise clients.translate(exc, "sesv2.get_account") from exc
    return float(account.get("SendQuota", {}).get("MaxSendRate") or 1.0)
