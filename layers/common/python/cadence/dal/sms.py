"""SMS through SNS, published straight to a phone number."""

from botocore.exceptions import ClientError

from cadence.dal import clients


def send_sms(phone_e164: str, text: str, sender_id: str) -> str:
    """Send one promotional SMS; returns SNS's message id.

    Raises:
        PermanentError: SNS refused the number or the message.
        TransientError: throttling or an SNS outage.
    """
    try:
        response = clients.client("sns").publish(
            PhoneNumber=phone_e164,
            Message=text,
            MessageAttributes={
                "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": sender_id},
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Promotional"},
            },
        )
    except ClientError as exc:
        raise clients.translate(exc, "sns.publish") from exc
    return str(response["MessageId"])
