"""Complaints past the threshold mid-run pause the campaign: the rest of the run is HELD (not sent, not lost),
the team is alerted with the figures, and a person's resume sends each held message once."""

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from cadence import campaign_control, config, run_report
from cadence.campaigns import CampaignDefinition
from cadence.campaigns.lifecycle import State
from cadence.dal import campaigns_table
from functions.campaign import app as campaign_app
from functions.feedback import app as feedback_app
from tests.unit.functions.feedback_events import sent, ses_record, sns_event
from tests.unit.functions.test_run_completion import _record

CAMPAIGN = {
    "campaign_id": "winback",
    "name": "Win back",
    "channels": ["email"],
    "holdout_percent": 0,
    "email": {"subject": "Hello {first_name}", "body": "We miss you"},
    "schedule": {"cron": "0 2 * * ? *"},
}
FIRING = "2026-11-23T02:00:00Z"
RUN_ID = f"winback@{FIRING}"
CUSTOMERS = 150  # three batches of 50


@pytest.fixture
def stack(
    tables: dict[str, str],
    queues: dict[str, str],
    data_bucket: str,
    ses_sender: str,
    release_settings: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """CUSTOMERS scored customers consenting to email, the campaign stored, the alarm topic with a queue subscribed
    to it, and a risk guard judging a run after 40 events. Returns the alarm queue's URL."""
    dynamodb = boto3.resource("dynamodb")
    with (
        dynamodb.Table(tables["ProfilesTable"]).batch_writer() as profiles,
        dynamodb.Table(tables["ScoresTable"]).batch_writer() as scores,
    ):
        for i in range(CUSTOMERS):
            customer_id = f"C{i:04d}"
            profiles.put_item(
                Item={"customer_id": customer_id, "email": f"{customer_id.lower()}@example.com", "consent_email": True}
            )
            scores.put_item(Item={"customer_id": customer_id, "decile": 1 + i % 10, "score": Decimal("0.5")})
    campaign_control.store(CampaignDefinition.model_validate(CAMPAIGN), config.campaign_settings())
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="cadence-test-alarms")["TopicArn"]
    alarms = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    alarms_arn = sqs.get_queue_attributes(QueueUrl=alarms, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alarms_arn, Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    monkeypatch.setenv("RISK_MIN_EVENTS", "40")
    monkeypatch.setenv("RISK_COMPLAINT_RATE", "0.05")
    config.feedback_settings.cache_clear()
    yield alarms
    config.feedback_settings.cache_clear()


def deliver(queues: dict[str, str], lambda_context: Any, messages: int) -> None:
    """Deliver `messages` messages of the dispatch queue to the dispatch handler (one invocation each)."""
    from functions.dispatch import app as dispatch_app  # noqa: PLC0415

    sqs = boto3.client("sqs")
    url = queues["DISPATCH_QUEUE_URL"]
    for _ in range(messages):
        (message,) = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], VisibilityTimeout=30
        )["Messages"]
        response = dispatch_app.lambda_handler({"Records": [_record(message)]}, lambda_context)
        assert response == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def held_and_sent() -> Counter[str]:
    settings = config.campaign_settings()
    run = campaigns_table.get_run(settings.campaigns_table, "winback", RUN_ID)
    assert run is not None
    return Counter(run_report.run_counters(settings.sends_table, RUN_ID, run_report.queued_sends(run)))


def test_complaints_past_the_threshold_mid_run_pause_it_and_hold_the_rest_until_resumed(
    stack: str, queues: dict[str, str], lambda_context: Any
) -> None:
    queued = campaign_app.lambda_handler({"campaign_id": "winback", "scheduled_time": FIRING}, lambda_context)
    assert queued["runs"][0]["sends_queued"] == CUSTOMERS

    # given the first batch went out and its events arrive: 47 delivered, then 3 complaints (2 / 47 is under 5 %,
    # 3 / 47 over)
    deliver(queues, lambda_context, 1)
    first = sent()
    assert len(first) == 50
    records = [ses_record("delivery", message) for message in first[3:]]
    records += [ses_record("complaint", message) for message in first[:3]]
    for record in records:
        feedback_app.lambda_handler(sns_event(record), lambda_context)
    # (SNS delivers at least once: a repeated complaint changes nothing)
    feedback_app.lambda_handler(sns_event(records[-1]), lambda_context)

    # then the campaign is paused, and the team told why, with the figures
    settings = config.campaign_settings()
    stored = campaigns_table.get_campaign(settings.campaigns_table, "winback")
    assert stored is not None and stored.state is State.PAUSED
    alerts = boto3.client("sqs").receive_message(QueueUrl=stack, MaxNumberOfMessages=10).get("Messages", [])
    assert len(alerts) == 1
    figures = json.loads(alerts[0]["Body"])
    assert (figures["breach"], figures["complaints"], figures["delivered"]) == ("complaint_rate", 3, 47)
    assert figures["complaint_rate"] == pytest.approx(3 / 47, abs=1e-6)
    assert figures["run_id"] == RUN_ID

    # when dispatch reaches the run's other two batches, they are held: not sent, not lost
    deliver(queues, lambda_context, 2)
    assert len(sent()) == 50
    counts = held_and_sent()
    assert (counts["sent"], counts["held"]) == (50, 100)

    # when a person resumes the campaign, each held message goes out once (the complainers were not in them)
    campaign_control.resume("winback", settings)
    deliver(queues, lambda_context, 2)
    recipients = Counter(address for message in sent() for address in message.destinations["ToAddresses"])
    assert len(recipients) == CUSTOMERS
    assert set(recipients.values()) == {1}
    assert held_and_sent()["sent"] == CUSTOMERS
