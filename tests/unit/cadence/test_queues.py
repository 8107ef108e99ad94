"""The SQS helpers dispatch uses to send a message back later than the queue's timeout."""

import boto3
import pytest

from cadence.dal import queues


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            "arn:aws:sqs:us-east-1:123456789012:cadence-dispatch",
            "https://sqs.us-east-1.amazonaws.com/123456789012/cadence-dispatch",
        ),
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:cadence-dispatch",
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/cadence-dispatch",
        ),
    ],
)
def test_the_queue_url_is_the_one_sqs_gives_for_the_arn_an_event_names(arn: str, url: str) -> None:
    assert queues.queue_url_of(arn) == url


def test_a_received_message_comes_back_after_the_time_asked_not_at_the_queues_timeout(aws: None) -> None:
    sqs = boto3.client("sqs")
    # a queue whose messages come back at once when a consumer fails them
    url = sqs.create_queue(QueueName="postponed", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]

    assert queues.redeliver_after(arn, message["ReceiptHandle"], 120)

    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_message_that_cannot_be_postponed_is_reported_not_raised(aws: None) -> None:
    assert not queues.redeliver_after("arn:aws:sqs:us-east-1:123456789012:no-such-queue", "handle", 60)
