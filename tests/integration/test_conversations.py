"""Two-way SMS on the local stack: an inbound message published to the template's InboundSmsTopic reaches the
conversations function as SNS delivers it; a question lands in the human queue, a STOP turns SMS consent off and is
confirmed once. Customer ids and numbers are this module's own, so it shares the session's stack in any order."""

import json
import uuid
from pathlib import Path

import pytest

from infra.local_stack import LocalStack
from model_build.intent import DEFAULT_DATA, build_intent_model

ASKING, STOPPING = ("CONV-ASK", "+8613700000101"), ("CONV-STOP", "+8613700000102")


@pytest.fixture(scope="module")
def reply_model(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reply model built from the shipped sample, published under the version the stack loads."""
    out = tmp_path_factory.mktemp("intent-model")
    version = local_stack.deployment.parameters["IntentModelVersion"]
    build_intent_model(DEFAULT_DATA, out, version=version)
    assert local_stack.publish_model(out) == version
    return version


def inbound(local_stack: LocalStack, number: str, body: str) -> None:
    """What AWS End User Messaging publishes for a two-way SMS to the stack's number."""
    message = {
        "originationNumber": number,
        "destinationNumber": "+12125550101",
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": body,
        "inboundMessageId": str(uuid.uuid4()),
        "previousPublishedMessageId": None,
    }
    topic = local_stack.outputs["InboundSmsTopicArn"]
    local_stack.client("sns").publish(TopicArn=topic, Message=json.dumps(message, ensure_ascii=False))


@pytest.mark.usefixtures("reply_model")
def test_a_question_reaches_the_human_queue_and_a_stop_turns_sms_consent_off(local_stack: LocalStack) -> None:
    profiles = local_stack.client("dynamodb")
    for customer_id, phone in (ASKING, STOPPING):
        profiles.put_item(
            TableName=local_stack.outputs["ProfilesTableName"],
            Item={"customer_id": {"S": customer_id}, "phone": {"S": phone}, "consent_sms": {"BOOL": True}},
        )

    inbound(local_stack, ASKING[1], "我的订单什么时候到")
    inbound(local_stack, STOPPING[1], "退订")
    local_stack.wait_idle(timeout=120)

    sqs = local_stack.client("sqs")
    queued = sqs.receive_message(QueueUrl=local_stack.outputs["HumanQueueUrl"], MaxNumberOfMessages=10)
    routed = [json.loads(message["Body"]) for message in queued.get("Messages", [])]
    mine = [body for body in routed if body["customer_id"] == ASKING[0]]
    assert [(body["intent"], body["reason"]) for body in mine] == [("order_question", "intent")]
    stopped = profiles.get_item(
        TableName=local_stack.outputs["ProfilesTableName"], Key={"customer_id": {"S": STOPPING[0]}}
    )["Item"]
    assert stopped["consent_sms"] == {"BOOL": False}
    answers = [sms["message"] for sms in local_stack.sent_sms() if sms["phone_number"] == STOPPING[1]]
    assert len(answers) == 1
    assert "unsubscribed" in answers[0]
    assert [sms for sms in local_stack.sent_sms() if sms["phone_number"] == ASKING[1]] == []
    # The function's logs name the customers and what was read in their replies, never the replies themselves.
    logged = Path(local_stack.log_path("ConversationsFunction")).read_text(encoding="utf-8")
    assert "reply handled" in logged
    assert "订单" not in logged
    assert "退订" not in logged
