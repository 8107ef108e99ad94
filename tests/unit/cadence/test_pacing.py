"""A dispatch worker's pace: it slows down when the provider throttles, and only then."""

import pytest
from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import PermanentError, ThrottledError, TransientError
from cadence.pacing import Pacer


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendBulkEmail")


@pytest.mark.parametrize(
    ("code", "status"), [("TooManyRequestsException", 429), ("Throttling", 400), ("Throttled", 429), ("SlowDown", 503)]
)
def test_throttling_is_told_apart_from_an_outage(code: str, status: int) -> None:
    assert isinstance(clients.translate(client_error(code, status), "sesv2.send_bulk_email"), ThrottledError)


@pytest.mark.parametrize(("code", "status"), [("InternalFailure", 500), ("ServiceUnavailable", 503)])
def test_an_outage_is_transient_but_not_throttling(code: str, status: int) -> None:
    translated = clients.translate(client_error(code, status), "sesv2.send_bulk_email")
    assert isinstance(translated, TransientError)
    assert not isinstance(translated, ThrottledError)


def test_a_refusal_is_permanent() -> None:
    assert isinstance(clients.translate(client_error("MessageRejected", 400), "ses"), PermanentError)


def test_a_worker_halves_its_rate_when_throttled_down_to_a_floor_and_speeds_up_after_calls_taken_whole() -> None:
    pacer = Pacer(account_rate=100.0, concurrency=4)
    assert pacer.rate == 25.0

    pacer.sent(0.0, 50, throttled=True)
    assert pacer.rate == 12.5
    assert pacer.delay(0.0) == pytest.approx(50 / 12.5)

    for _ in range(5):
        pacer.sent(10.0, 50, throttled=True)
    assert pacer.rate == pytest.approx(25.0 * 0.25)  # a throttled fleet still makes progress

    for _ in range(30):
        pacer.sent(100.0, 50, throttled=False)
    assert pacer.rate == 100.0  # never beyond the account's rate
