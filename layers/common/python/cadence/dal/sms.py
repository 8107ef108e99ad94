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


def opted_out_numbers() -> list[str]:
    """Every phone number that replied STOP (or was opted out) to the account's SMS, all pages of
    ListPhoneNumbersOptedOut.

    Raises:
        TransientError / PermanentError: SNS refused.
    """
    numbers: list[str] = []
    arguments: dict[str, str] = {}
    while True:
        try:
            page = clients.client("sns").list_phone_numbers_opted_out(**arguments)
        except ClientError as exc:
            raise clients.translate(exc, "sns.list_phone_numbers_opted_out") from exc
        numbers += [str(number) for number in page.get("phoneNumbers", [])]
        if not page.get("nextToken"):
            return numbers
        arguments = {"nextToken": str(page["nextToken"])}


def opt_in(phone_e164: str) -> None:
    """Take a number off SNS's opted-out list after the customer texted START (SNS allows this once in 30 days).

    Raises:
        TransientError / PermanentError: SNS refused.
    """
    try:
        clients.client("sns").opt_in_phone_number(phoneNumber=phone_e164)
    except ClientError as exc:
        raise clients.translate(exc, "sns.opt_in_phone_number") from exc
