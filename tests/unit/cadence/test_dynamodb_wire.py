"""DynamoDB's bulk calls sent by cadence.dal.dynamodb_wire: signed as botocore signs, answered by moto, and every
failure either retried (throttling, outages, damaged answers, the network) or raised as the domain's error."""

import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError

from cadence.dal import clients, dynamodb_wire
from cadence.errors import PermanentError, ThrottledError, TransientError
from tests.unit.functions.provider_faults import json_answer, json_error

Step = Callable[[AWSPreparedRequest], AWSResponse] | None  # None: moto answers


class Scripted:
    """Answers the wire's sends in DynamoDB's place, one planned step per send, then lets moto answer."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[AWSPreparedRequest] = []
        clients.client("dynamodb").meta.events.register_first("before-send.dynamodb", self._answer)

    def _answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        self.requests.append(request)
        step = self.steps.pop(0) if self.steps else None
        return step(request) if step else None


@pytest.fixture
def profiles(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the backoff's waits, not what is tested here
    return tables["ProfilesTable"]


def put(table: str, customer_id: str) -> dict[str, Any]:
    request = {"RequestItems": {table: [{"PutRequest": {"Item": {"customer_id": {"S": customer_id}}}}]}}
    return dynamodb_wire.call("BatchWriteItem", request, action="test.put")


def stored(table: str) -> list[str]:
    return sorted(item["customer_id"] for item in boto3.resource("dynamodb").Table(table).scan()["Items"])


def test_a_write_is_signed_for_dynamodb_in_the_region_and_stored(profiles: str) -> None:
    sends = Scripted()

    answer = put(profiles, "C1")

    assert answer["UnprocessedItems"] == {}
    assert stored(profiles) == ["C1"]
    (request,) = sends.requests
    assert request.headers["X-Amz-Target"] == "DynamoDB_20120810.BatchWriteItem"
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/dynamodb/aws4_request" in authorization
    assert "x-amz-target" in authorization  # the target header is signed, so it cannot be swapped in transit
    assert json.loads(request.body) == {
        "RequestItems": {profiles: [{"PutRequest": {"Item": {"customer_id": {"S": "C1"}}}}]}
    }


def test_temporary_credentials_send_their_session_token(profiles: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-of-the-role")
    clients.client.cache_clear()
    sends = Scripted()

    put(profiles, "C1")

    assert sends.requests[0].headers["X-Amz-Security-Token"] == "session-token-of-the-role"


def test_reads_come_back_in_dynamodbs_shape(profiles: str) -> None:
    put(profiles, "C1")

    answer = dynamodb_wire.call(
        "BatchGetItem",
        {"RequestItems": {profiles: {"Keys": [{"customer_id": {"S": "C1"}}, {"customer_id": {"S": "C2"}}]}}},
        action="test.get",
    )

    assert answer["Responses"] == {profiles: [{"customer_id": {"S": "C1"}}]}


def test_throttling_is_retried_with_growing_waits_until_dynamodb_answers(
    profiles: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    monkeypatch.setattr(dynamodb_wire.random, "uniform", lambda low, high: high)  # the longest wait of each
    throttled = json_error("ProvisionedThroughputExceededException", 400)
    sends = Scripted(throttled, throttled, json_error("InternalServerError", 500))

    put(profiles, "C1")

    assert len(sends.requests) == 4
    assert waits == [0.05, 0.1, 0.2]
    assert stored(profiles) == ["C1"]


def test_a_refused_request_is_a_permanent_error_at_once(profiles: str) -> None:
    sends = Scripted(json_error("ValidationException", 400))

    with pytest.raises(PermanentError, match=r"test\.put: ValidationException"):
        put(profiles, "C1")

    assert len(sends.requests) == 1
    assert stored(profiles) == []


def test_throttling_on_every_attempt_is_a_throttled_error(profiles: str) -> None:
    sends = Scripted(*[json_error("ThrottlingException", 400)] * dynamodb_wire.ATTEMPTS)

    with pytest.raises(ThrottledError):
        put(profiles, "C1")

    assert len(sends.requests) == dynamodb_wire.ATTEMPTS


def test_an_outage_on_every_attempt_is_a_transient_error(profiles: str) -> None:
    sends = Scripted(*[json_error("InternalServerError", 500)] * dynamodb_wire.ATTEMPTS)

    with pytest.raises(TransientError) as raised:
        put(profiles, "C1")

    assert not isinstance(raised.value, ThrottledError)  # an outage is not a reason to slow down
    assert len(sends.requests) == dynamodb_wire.ATTEMPTS


def damaged(request: AWSPreparedRequest) -> AWSResponse:
    """An answer whose body does not match its CRC32: cut or corrupted on the way."""
    response = json_answer(request, {"UnprocessedItems": {}})
    response.headers["x-amz-crc32"] = str(zlib.crc32(b"something else"))
    return response


def test_a_damaged_answer_is_not_trusted_and_the_call_is_made_again(profiles: str) -> None:
    sends = Scripted(damaged)

    put(profiles, "C1")

    assert len(sends.requests) == 2
    assert stored(profiles) == ["C1"]


def unreachable(request: AWSPreparedRequest) -> AWSResponse:
    raise ConnectTimeoutError(endpoint_url=request.url)


def test_a_network_failure_is_retried_and_on_every_attempt_is_transient(profiles: str) -> None:
    Scripted(unreachable)
    put(profiles, "C1")
    assert stored(profiles) == ["C1"]

    sends = Scripted(*[unreachable] * dynamodb_wire.ATTEMPTS)
    with pytest.raises(TransientError, match="ConnectTimeoutError"):
        put(profiles, "C2")
    assert len(sends.requests) == dynamodb_wire.ATTEMPTS
