"""Email through SES."""

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import PermanentError

# SES refusals that no retry fixes, checked before clients.translate so they stay refusals whatever their status.
_REJECTIONS = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameterValue"})


def send_email(sender: str, recipient: str, subject: str, text_body: str) -> str:
    """Send one email; returns SES's message id.

    Raises:
        PermanentError: SES refused the message.
        TransientError: throttling or an SES outage.
    """
    try:
        response = clients.client("ses").send_email(
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
    return str(response["MessageId"])
