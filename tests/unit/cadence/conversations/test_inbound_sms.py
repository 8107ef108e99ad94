import json
from typing import Any

import pytest
from pydantic import ValidationError

from cadence.conversations.keywords import Keyword, keyword_of
from cadence.events import InboundSms, SnsRecord


def test_an_inbound_sms_in_the_shape_end_user_messaging_publishes_names_its_sender_reply_and_prompting_send(
    load_event: Any,
) -> None:
    (record,) = load_event("sns_inbound_sms")["Records"]

    message = SnsRecord.model_validate(record).message_as(InboundSms)

    assert message.origination_number == "+8613800138000"
    assert message.inbound_message_id == "cae173d2-66b9-564c-8309-21f858e9fb84"
    assert message.previous_published_message_id == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert keyword_of(message.message_body) == Keyword.STOP


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"originationNumber": "13800138000"}, "originationNumber"),  # not E.164: no customer can be found by it
        ({"inboundMessageId": ""}, "inboundMessageId"),  # nothing to recognise a redelivery by
        ({"messageBody": None}, "messageBody"),
    ],
)
def test_a_malformed_inbound_sms_is_refused_naming_the_field(
    load_event: Any, change: dict[str, Any], field: str
) -> None:
    (record,) = load_event("sns_inbound_sms")["Records"]
    record["Sns"]["Message"] = json.dumps({**json.loads(record["Sns"]["Message"]), **change})

    with pytest.raises(ValidationError, match=field):
        SnsRecord.model_validate(record).message_as(InboundSms)
