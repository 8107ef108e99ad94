"""SMS through SNS, published straight to a phone number."""

from botocore.exceptions import ClientError

from cadence.dal import clients


def send_sms(phone_e164: str, text: str, sender_id: str, timeouts: clients.SendTimeouts) -> str:
    """Send one promotional SMS (one attempt); returns SNS's message id.

    Raises:
        PermanentError: SNS refused the number or the message.
        TransientError: throttling, an SNS outage, or SNS could not be reached (nothing was sent).
        UncertainOutcomeError: SNS got the request but its answer never came (it may have sent).
    """
    try:
        response = clients.send_client("sns", timeouts).publish(
            PhoneNumber=phone_e164,
            Message=text,
            MessageAttributes={
                "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": sender_id},
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"},
            },
        )
    except ClientError as exc:
        raise clients.translate(exc, "sns.publish") from exc
    except clients.NETWORK_ERRORS as exc:
        raise clients.translate_network_error(exc, "sns.publish") from exc
    return str(response["MessageId"])
