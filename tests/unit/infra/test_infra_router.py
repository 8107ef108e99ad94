"""Pure parts of the router: which SQS messages a batch response settles, SQS records, schedule context."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.router import settled_messages, sqs_record, substitute_context
from infra.runtime import InvocationResult

RECORDS = [{"messageId": f"m{i}", "receiptHandle": f"r{i}"} for i in range(3)]


def result(payload: Any, *, error: bool = False) -> InvocationResult:
    failure = {"errorType": "ValueError", "errorMessage": "x"} if error else None
    return InvocationResult("req", json.dumps(failure if error else payload), failure, 1.0)


def test_a_function_error_keeps_the_whole_batch() -> None:
    assert settled_messages(RECORDS, result(None, error=True), report_batch_item_failures=True) == []


def test_only_the_listed_failures_stay_when_the_function_reports_them() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    assert settled_messages(RECORDS, result(response), report_batch_item_failures=True) == ["r0", "r2"]


@pytest.mark.parametrize("payload", [None, {}, "", {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_an_empty_response_settles_everything(payload: Any) -> None:
    assert settled_messages(RECORDS, result(payload), report_batch_item_failures=True) == ["r0", "r1", "r2"]


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "m1"}]},
        ["m1"],
    ],
)
def test_a_malformed_response_keeps_the_whole_batch(payload: Any) -> None:
    assert settled_messages(RECORDS, result(payload), report_batch_item_failures=True) == []


def test_reported_failures_are_ignored_without_report_batch_item_failures() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    assert settled_messages(RECORDS, result(response), report_batch_item_failures=False) == ["r0", "r1", "r2"]


def test_sqs_record_has_lambdas_shape() -> None:
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "handle",
        "MD5OfBody": "md5",
        "Body": "hello",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MD5OfMessageAttributes": "md5a",
        "MessageAttributes": {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
    }

    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")

    assert record == {
        "messageId": "id-1",
        "receiptHandle": "handle",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "messageAttributes": {
            "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"}
        },
        "md5OfBody": "md5",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
        "md5OfMessageAttributes": "md5a",
    }


def test_schedule_context_attributes_are_substituted_in_the_input() -> None:
    text = '{"t": "<aws.scheduler.scheduled-time>", "a": "<aws.scheduler.schedule-arn>", ' + (
        '"e": "<aws.scheduler.execution-id>", "n": "<aws.scheduler.attempt-number>"}'
    )

    substituted = substitute_context(text, datetime(2025, 1, 2, 2, 0, tzinfo=UTC), "arn:s", "exec-1", attempt=1)

    assert json.loads(substituted or "") == {"t": "2025-01-02T02:00:00Z", "a": "arn:s", "e": "exec-1", "n": "1"}
    assert substitute_context(None, datetime.now(UTC), "arn:s", "e", 1) is None
