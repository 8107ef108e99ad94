"""Email through SES."""

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import PermanentError

# SES refusals that no retry fixes, checked before clients.translate so they stay refusals whatever their status.
_REJECTIONS = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameterValue"})


def send_email(sender: str, recipient: str, subject: str, text_body: str, timeouts: clients.SendTimeouts) -> str:
    """Send one email (one attempt); returns SES's message id.

    Raises:
        PermanentError: SES refused the message.
        TransientError: throttling, an SES outage, or SES could not be reached (nothing was sent).
        UncertainOutcomeError: SES got the request but its answer never came (it may have sent).
    """
    try:
        response = clients.send_client("ses", timeouts).send_email(
            Source=sender,
            Destination={"ToAddresses": [recipient]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text_body, "Charset": "UTF-8"}},
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) in _REJECTIONS:
            raise PermanentError(f"ses.send_email: {clients.error_code(exc)}") from exc
        raise clients.translate(exc, "ses.send_email") from exc
    except clients.NETWORK_ERRORS as exc:
        raise clients.translate_network_error(exc, "ses.send_email") from exc
    return str(response["MessageId"])
