"""Provider message ids are kept packed in the send ledger (DynamoDB bills a batch item's writes by its size)."""

import boto3
import pytest

from cadence.dal.sends_table import Outcome, SendStatus, pack_message_id, unpack_message_id

SES_ID = "0100019ad3e1c5f2-1935807e-9707-4b1b-b61f-d7b248f54e94-000000"
SNS_ID = "1935807e-9707-4b1b-b61f-d7b248f54e94"


@pytest.mark.parametrize(("message_id", "packed_size"), [(SES_ID, 28), (SNS_ID, 17)])
def test_ses_and_sns_ids_are_stored_in_under_half_their_length_and_read_back_exactly(
    message_id: str, packed_size: int
) -> None:
    packed = pack_message_id(message_id)

    assert isinstance(packed, bytes)
    assert len(packed) == packed_size
    assert unpack_message_id(packed) == message_id


@pytest.mark.parametrize("message_id", ["webhook-1a2b", SES_ID.upper(), "", "0100-not-an-id"])
def test_any_other_id_is_kept_as_the_text_it_is(message_id: str) -> None:
    assert pack_message_id(message_id) == message_id
    assert unpack_message_id(message_id) == message_id


def test_an_outcome_written_to_dynamodb_reads_back_the_same_and_older_text_ids_still_read(aws: None) -> None:
    dynamodb = boto3.resource("dynamodb")
    table = dynamodb.create_table(
        TableName="ledger-ids",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sent = Outcome(SendStatus.SENT, message_id=SES_ID, variant="a", coupon_code="ABC123")
    table.put_item(Item={"pk": "new", "recipients": {"C1": sent.to_attribute()}})
    table.put_item(Item={"pk": "old", "recipients": {"C1": {"s": "SENT", "m": SES_ID}}})

    new = table.get_item(Key={"pk": "new"})["Item"]["recipients"]["C1"]
    old = table.get_item(Key={"pk": "old"})["Item"]["recipients"]["C1"]

    assert Outcome.from_attribute(new) == sent
    assert Outcome.from_attribute(old) == Outcome(SendStatus.SENT, message_id=SES_ID)
