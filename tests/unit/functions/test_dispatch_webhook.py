"""The dispatch function's webhook channel against a real receiver on 127.0.0.1: one signed POST per recipient,
retried only when it provably was not delivered, never after the ledger settled it."""

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cadence import config, webhooks
from cadence.campaigns import CampaignDefinition
from cadence.dal import suppression_table
from cadence.suppression import Reason, Suppression
from functions.dispatch import app
from tests.unit import webhook_receiver
from tests.unit.functions.test_dispatch_app import batch, dispatch_event, ledger, put_profile, store_campaign
from tests.unit.webhook_receiver import Receiver

RUN = "winback@2026-11-23T02:00:00Z"
BATCH = "webhook-20261123T0200Z-00000"
SECRET = "test-webhook-signing-key"  # noqa: S105 - moto's secret, for this test only


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver.running() as running:
        yield running


@pytest.fixture
def webhook_settings(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stack's signing secret (as WebhookSigningSecret gives it), and http to 127.0.0.1 allowed (local only)."""
    boto3.client("secretsmanager").create_secret(Name="cadence-test-webhook", SecretString=SECRET)
    monkeypatch.setenv("WEBHOOK_SECRET_ARN", "cadence-test-webhook")
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
    config.dispatch_settings.cache_clear()
    yield
    config.dispatch_settings.cache_clear()


@pytest.fixture
def campaign(tables: dict[str, str], receiver: Receiver) -> CampaignDefinition:
    definition = CampaignDefinition.model_validate(
        {
            "campaign_id": "winback",
            "name": "Win back on WeChat",
            "channels": ["webhook"],
            "webhook": {
                "url": receiver.url,
                "text": "{first_name}, {offer_value}% off with {coupon_code}",
                "event": "wechat_template_message",
                "address_attribute": "attr_wechat_openid",
                "consent_attribute": "attr_wechat_consent",
            },
        }
    )
    store_campaign(tables, definition)
    return definition


def put_recipient(tables: dict[str, str], customer_id: str, **overrides: Any) -> None:
    put_profile(
        tables, customer_id, **{"attr_wechat_openid": f"oWx-{customer_id}", "attr_wechat_consent": "yes", **overrides}
    )


def webhook_batch(*customer_ids: str) -> dict[str, Any]:
    message = batch(list(customer_ids), "webhook", batch_id=BATCH)
    for send in message["sends"]:
        send.update(offer_value="15", coupon_code=f"CODE{send['customer_id']}")
    return message


def status(tables: dict[str, str], customer_id: str) -> tuple[str, str | None]:
    entry = ledger(tables, customer_id)[f"{RUN}#webhook"]
    return entry["status"], entry.get("reason")


def test_each_recipient_gets_one_signed_post_and_a_redelivered_batch_posts_nothing_more(
    tables: dict[str, str],
    webhook_settings: None,
    campaign: CampaignDefinition,
    receiver: Receiver,
    load_event: Any,
    lambda_context: Any,
    captured_logs: io.StringIO,
) -> None:
    for customer_id in ("W1", "W2", "W3"):
        put_recipient(tables, customer_id, first_name=f"Li{customer_id}")

    first = app.lambda_handler(dispatch_event(load_event, webhook_batch("W1", "W2", "W3")), lambda_context)
    again = app.lambda_handler(dispatch_event(load_event, webhook_batch("W1", "W2", "W3")), lambda_context)

    assert first == again == {"batchItemFailures": []}
    assert len(receiver.posts) == 3  # the redelivery found the batch settled and posted nothing
    for post in receiver.posts:
        assert post.path == "/hooks/cadence"
        assert webhooks.verify(SECRET.encode(), post.headers, post.body, now=time.time())
        body = json.loads(post.body)
        customer_id = body["customer_id"]
        assert body == {
            "event": "wechat_template_message",
            "delivery_id": webhooks.delivery_id(RUN, BATCH, customer_id),
            "campaign_id": "winback",
            "run_id": RUN,
            "customer_id": customer_id,
            "address": f"oWx-{customer_id}",
            "text": f"Li{customer_id}, 15% off with CODE{customer_id}",
            "variant": None,
            "offer_value": "15",
            "coupon_code": f"CODE{customer_id}",
        }
        assert post.headers["X-Cadence-Delivery"] == body["delivery_id"]
        entry = ledger(tables, customer_id)[f"{RUN}#webhook"]
        assert (entry["status"], entry["provider_message_id"]) == ("SENT", body["delivery_id"])
    assert {json.loads(post.body)["customer_id"] for post in receiver.posts} == {"W1", "W2", "W3"}
    logged = captured_logs.getvalue()
    assert BATCH in logged  # real log output, which holds no address or text
    assert "oWx-" not in logged
    assert "% off" not in logged


def test_a_receiver_failing_with_500_is_posted_again_on_redelivery_and_sent_once(
    tables: dict[str, str],
    webhook_settings: None,
    campaign: CampaignDefinition,
    receiver: Receiver,
    load_event: Any,
    lambda_context: Any,
) -> None:
    put_recipient(tables, "W1")
    receiver.answer(500)

    # the only record failed: the processor fails the invocation and SQS redelivers the batch
    with pytest.raises(BatchProcessingError):
        app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context)

    assert status(tables, "W1") == ("FAILED", "http_500")
    assert app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context) == {
        "batchItemFailures": []
    }
    assert status(tables, "W1") == ("SENT", None)
    app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context)
    assert len(receiver.posts) == 2  # the failed attempt and the one that was sent; nothing after
    first, second = receiver.posts
    assert first.headers["X-Cadence-Delivery"] == second.headers["X-Cadence-Delivery"]  # the receiver can dedupe
    assert webhooks.verify(SECRET.encode(), second.headers, second.body, now=time.time())


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (400, ("REJECTED", "http_400")),  # the receiver refused it for good
        (webhook_receiver.SILENT, ("IN_DOUBT", "webhook: read_timeout")),  # it may have been delivered
    ],
)
def test_a_post_refused_or_left_unanswered_is_final_and_never_posted_again(
    tables: dict[str, str],
    webhook_settings: None,
    campaign: CampaignDefinition,
    receiver: Receiver,
    load_event: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    answer: int,
    outcome: tuple[str, str],
) -> None:
    monkeypatch.setenv("SEND_READ_TIMEOUT_SECONDS", "0.3")
    config.dispatch_settings.cache_clear()
    put_recipient(tables, "W1")
    receiver.answer(answer)

    first = app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context)
    app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context)

    assert first == {"batchItemFailures": []}
    assert status(tables, "W1") == outcome
    assert len(receiver.posts) == 1


def test_customers_without_consent_or_suppressed_since_planning_are_left_out(
    tables: dict[str, str],
    webhook_settings: None,
    campaign: CampaignDefinition,
    receiver: Receiver,
    load_event: Any,
    lambda_context: Any,
) -> None:
    put_recipient(tables, "W1", attr_wechat_consent="no")  # consent withdrawn after planning
    put_recipient(tables, "W2")
    put_recipient(tables, "W3", attr_wechat_openid=None)  # the address is gone
    put_recipient(tables, "W4", consent_sms=False)  # another channel's consent changes nothing here
    planned = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    suppression_table.add(
        tables["SuppressionTable"],
        [Suppression.of_address("webhook", "oWx-W2", Reason.UNSUBSCRIBE, "test", at=planned + timedelta(minutes=5))],
    )

    app.lambda_handler(dispatch_event(load_event, webhook_batch("W1", "W2", "W3", "W4")), lambda_context)

    assert [json.loads(post.body)["customer_id"] for post in receiver.posts] == ["W4"]
    assert status(tables, "W1") == ("SUPPRESSED", "no_consent_or_address")
    assert status(tables, "W2") == ("SUPPRESSED", "suppressed_unsubscribe")
    assert status(tables, "W3") == ("SUPPRESSED", "no_consent_or_address")
    assert status(tables, "W4") == ("SENT", None)


def test_a_stack_without_a_signing_secret_rejects_webhook_sends_unsent(
    tables: dict[str, str], campaign: CampaignDefinition, receiver: Receiver, load_event: Any, lambda_context: Any
) -> None:
    put_recipient(tables, "W1")

    response = app.lambda_handler(dispatch_event(load_event, webhook_batch("W1")), lambda_context)

    assert response == {"batchItemFailures": []}
    assert status(tables, "W1") == ("REJECTED", "webhook_not_configured")
    assert receiver.posts == []
