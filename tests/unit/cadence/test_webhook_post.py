"""One webhook POST (cadence.dal.webhook) against a receiver on 127.0.0.1: what each answer means for a retry."""

import socket
from collections.abc import Iterator

import pytest

from cadence.dal import clients, webhook
from cadence.errors import PermanentError, TransientError, UncertainOutcomeError
from tests.unit import webhook_receiver
from tests.unit.webhook_receiver import Receiver

TIMEOUTS = clients.SendTimeouts(connect_seconds=1.0, read_seconds=0.3)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver.running() as running:
        yield running


def post(url: str, *, allow_loopback_http: bool = True) -> int:
    return webhook.post(url, b'{"text":"hi"}', {"X-Test": "1"}, TIMEOUTS, allow_loopback_http=allow_loopback_http)


def test_a_2xx_answer_is_delivered_with_the_body_and_headers_at_the_urls_path(receiver: Receiver) -> None:
    receiver.answer(202)

    assert post(receiver.url + "?team=7") == 202

    [received] = receiver.posts
    assert (received.path, received.body) == ("/hooks/cadence?team=7", b'{"text":"hi"}')
    assert received.headers["X-Test"] == "1"
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_a_busy_or_failing_receiver_is_retried_later(receiver: Receiver, status: int) -> None:
    receiver.answer(status)

    with pytest.raises(TransientError, match=f"http_{status}"):
        post(receiver.url)


@pytest.mark.parametrize("status", [301, 400, 401, 404, 410])
def test_a_refusal_or_a_redirect_is_permanent_and_not_followed(receiver: Receiver, status: int) -> None:
    receiver.answer(status)

    with pytest.raises(PermanentError, match=f"^http_{status}$"):
        post(receiver.url)

    assert len(receiver.posts) == 1


def test_a_request_sent_without_an_answer_is_in_doubt(receiver: Receiver) -> None:
    receiver.answer(webhook_receiver.SILENT)

    with pytest.raises(UncertainOutcomeError, match="read_timeout"):
        post(receiver.url)

    assert len(receiver.posts) == 1  # it did arrive: a retry could deliver it twice


def test_a_receiver_that_cannot_be_reached_was_never_sent_to() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(TransientError, match="unreachable"):
        post(f"http://127.0.0.1:{port}/hooks")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/hooks", False),  # loopback http without the local setting
        ("http://example.com/hooks", True),  # plain http anywhere else, even with it
        ("http://localhost:8080/hooks", True),
        ("ftp://example.com/hooks", True),
    ],
)
def test_only_https_leaves_and_http_only_to_loopback_when_allowed(url: str, allowed: bool) -> None:
    with pytest.raises(PermanentError, match="webhook_url_not_allowed"):
        post(url, allow_loopback_http=allowed)
